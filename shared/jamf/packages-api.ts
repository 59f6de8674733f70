/**
 * Packages through the Jamf Pro API (11.5+): list (all pages), find, get, create, update,
 * delete, the streamed file upload, refresh-inventory, and the category lookup.
 *
 * - Listing fetches page 0, then every other page concurrently; the HTTP layer's
 *   concurrency cap bounds how many run at once. Results are in page order and
 *   de-duplicated by id (a package created mid-listing shifts later pages by one).
 * - Exact lookups filter with RSQL and compare the results themselves, because `*` in an
 *   RSQL value is a wildcard on Jamf's side.
 * - createPackage is retried on transient errors like every call; if a retry meets
 *   DUPLICATE_FIELD after an attempt whose answer was lost, the package that attempt made
 *   is looked up and returned (same packageName and fileName), so a retry never fails
 *   on the package it created itself.
 * - The upload is a multipart/form-data body streamed from disk (form-data.ts) with no overall
 *   timeout; it is retried only whole, and only on retryable errors.
 */
import { stat, type FileHandle } from 'node:fs/promises';
import { basename } from 'node:path';
import type { z } from 'zod';
import { AppError } from '../errors.ts';
import { JamfApiError } from './errors.ts';
import { encodePathSegment, type JamfHttp } from './http.ts';
import { refreshInventory, type CallOptions } from './jcds-api.ts';
import { multipartFileBody } from './form-data.ts';
import { rsql } from './rsql.ts';
import {
  CategoryPageSchema,
  CreatedSchema,
  PACKAGE_DEFAULTS,
  PACKAGE_READ_ONLY,
  PackagePageSchema,
  PackageSchema,
  type Created,
  type JamfPackage,
  type NewPackage,
} from './types.ts';

export const PACKAGES_PATH = '/api/v1/packages';
/** Page size for listings. Jamf documents no maximum below 2000. */
export const DEFAULT_PAGE_SIZE = 200;
/** After the last byte, how long Jamf may take to answer an upload (it stores the file). */
export const UPLOAD_ANSWER_TIMEOUT_MS = 60 * 60_000;

export interface ListPackagesOptions extends CallOptions {
  /** RSQL filter, e.g. `rsql.eq('fileName', name)`. */
  filter?: string;
  /** @defaultValue `id:asc` (a stable order, so pages neither skip nor repeat) */
  sort?: string;
  /** @defaultValue 200 */
  pageSize?: number;
}

type PackagePage = z.output<typeof PackagePageSchema>;

function fetchPage(
  http: JamfHttp,
  page: number,
  options: ListPackagesOptions,
  pageSize: number,
): Promise<PackagePage> {
  return http
    .request<PackagePage>({
      method: 'GET',
      path: PACKAGES_PATH,
      query: {
        page,
        'page-size': pageSize,
        sort: options.sort ?? 'id:asc',
        filter: options.filter,
      },
      schema: PackagePageSchema,
      signal: options.signal,
    })
    .then(r => r.body);
}

/** Every package matching the filter, all pages. */
export async function listPackages(
  http: JamfHttp,
  options: ListPackagesOptions = {},
): Promise<JamfPackage[]> {
  const pageSize = options.pageSize ?? DEFAULT_PAGE_SIZE;
  if (!Number.isInteger(pageSize) || pageSize < 1) {
    throw new TypeError(`Expected \`pageSize\` to be a whole number ≥ 1, got ${pageSize}`);
  }
  const first = await fetchPage(http, 0, options, pageSize);
  const pages = Math.ceil(first.totalCount / pageSize);
  const rest = await Promise.allSettled(
    Array.from({ length: Math.max(0, pages - 1) }, (_, i) =>
      fetchPage(http, i + 1, options, pageSize),
    ),
  );
  const failed = rest.find(r => r.status === 'rejected');
  if (failed) throw failed.reason;
  const seen = new Set<string>();
  const out: JamfPackage[] = [];
  for (const page of [first, ...rest.map(r => (r as PromiseFulfilledResult<PackagePage>).value)]) {
    for (const p of page.results) {
      if (seen.has(p.id)) continue;
      seen.add(p.id);
      out.push(p);
    }
  }
  return out;
}

async function findExact(
  http: JamfHttp,
  field: 'fileName' | 'packageName',
  value: string,
  options: CallOptions,
): Promise<JamfPackage | undefined> {
  const found = await listPackages(http, {
    filter: rsql.eq(field, value),
    pageSize: 100,
    signal: options.signal,
  });
  return found.find(p => p[field] === value);
}

/** The package whose fileName is exactly `fileName` (lowest id if several). */
export function findPackageByFileName(
  http: JamfHttp,
  fileName: string,
  options: CallOptions = {},
): Promise<JamfPackage | undefined> {
  return findExact(http, 'fileName', fileName, options);
}

/** The package whose packageName is exactly `packageName`. */
export function findPackageByName(
  http: JamfHttp,
  packageName: string,
  options: CallOptions = {},
): Promise<JamfPackage | undefined> {
  return findExact(http, 'packageName', packageName, options);
}

const pkgPath = (id: string): string => `${PACKAGES_PATH}/${encodePathSegment(id)}`;

export async function getPackage(
  http: JamfHttp,
  id: string,
  options: CallOptions = {},
): Promise<JamfPackage> {
  const res = await http.request<JamfPackage>({
    method: 'GET',
    path: pkgPath(id),
    template: `${PACKAGES_PATH}/{id}`,
    schema: PackageSchema,
    signal: options.signal,
  });
  return res.body;
}

export async function deletePackage(
  http: JamfHttp,
  id: string,
  options: CallOptions = {},
): Promise<void> {
  await http.request({
    method: 'DELETE',
    path: pkgPath(id),
    template: `${PACKAGES_PATH}/{id}`,
    responseType: 'none',
    signal: options.signal,
  });
}

/** The JSON body of a new package: Jamf's required fields defaulted. */
export function newPackageBody(pkg: NewPackage): Record<string, unknown> {
  const { extra, ...fields } = pkg;
  const body: Record<string, unknown> = { ...PACKAGE_DEFAULTS, ...(extra ?? {}) };
  for (const [k, v] of Object.entries(fields)) if (v !== undefined) body[k] = v;
  for (const k of PACKAGE_READ_ONLY) delete body[k];
  return body;
}

/** POST /api/v1/packages → the new id. */
export async function createPackage(
  http: JamfHttp,
  pkg: NewPackage,
  options: CallOptions = {},
): Promise<Created> {
  let retried = false;
  try {
    const res = await http.request<z.output<typeof CreatedSchema>>({
      method: 'POST',
      path: PACKAGES_PATH,
      json: newPackageBody(pkg),
      schema: CreatedSchema,
      signal: options.signal,
      onRetry: () => {
        retried = true;
      },
    });
    return { id: res.body.id, href: res.body.href ?? undefined };
  } catch (err) {
    if (retried && err instanceof JamfApiError && err.code === 'JAMF_CONFLICT') {
      const mine = await findPackageByName(http, pkg.packageName, options);
      if (mine !== undefined && mine.fileName === pkg.fileName) {
        return { id: mine.id, href: undefined };
      }
    }
    throw err;
  }
}

/** The body of a PUT: the package without server-managed fields (never `size`). */
export function updatePackageBody(pkg: Partial<JamfPackage>): Record<string, unknown> {
  const body: Record<string, unknown> = { ...PACKAGE_DEFAULTS };
  for (const [k, v] of Object.entries(pkg)) if (v !== undefined && v !== null) body[k] = v;
  for (const k of PACKAGE_READ_ONLY) delete body[k];
  return body;
}

/** PUT /api/v1/packages/{id} with the full package (read-only fields dropped). */
export async function updatePackage(
  http: JamfHttp,
  id: string,
  pkg: Partial<JamfPackage> & Pick<JamfPackage, 'packageName' | 'fileName'>,
  options: CallOptions = {},
): Promise<JamfPackage> {
  const res = await http.request<JamfPackage>({
    method: 'PUT',
    path: pkgPath(id),
    template: `${PACKAGES_PATH}/{id}`,
    json: updatePackageBody(pkg),
    schema: PackageSchema,
    signal: options.signal,
  });
  return res.body;
}

export interface UploadOptions extends CallOptions {
  /** The name Jamf stores; defaults to the file's base name. */
  fileName?: string;
  /** File bytes handed to the connection so far (restarts at 0 on a retry). */
  onProgress?: (bytesSent: number) => void;
  /**
   * Opens the file (for its size, then for each attempt's body) instead of `open(filePath)`:
   * the worker passes one that checks it is the file enqueued (shared/file-identity.ts).
   */
  openFile?: () => Promise<FileHandle>;
}

export interface UploadResult extends Created {
  /** File bytes sent in the attempt that succeeded. */
  size: number;
}

/** POST /api/v1/packages/{id}/upload: the file as multipart field `file`, streamed. */
export async function uploadPackageFile(
  http: JamfHttp,
  id: string,
  filePath: string,
  options: UploadOptions = {},
): Promise<UploadResult> {
  let info;
  try {
    if (options.openFile) {
      const fh = await options.openFile();
      try {
        info = await fh.stat();
      } finally {
        await fh.close();
      }
    } else info = await stat(filePath);
  } catch (err) {
    if (err instanceof AppError) throw err;
    const code = (err as { code?: unknown }).code;
    throw code === 'ENOENT'
      ? new AppError('FILE_NOT_FOUND', `${filePath} does not exist`, { cause: err })
      : new AppError('FILE_UNREADABLE', `${filePath} cannot be read (${String(code)})`, {
          cause: err,
        });
  }
  if (!info.isFile()) {
    throw new AppError('FILE_NOT_REGULAR', `${filePath} is not a regular file`);
  }
  const body = multipartFileBody({
    filePath,
    fieldName: 'file',
    fileName: options.fileName ?? basename(filePath),
    size: info.size,
    mtimeMs: info.mtimeMs,
    openFile: options.openFile,
    ...(options.onProgress ? { onProgress: options.onProgress } : {}),
  });
  const res = await http.request<z.output<typeof CreatedSchema>>({
    method: 'POST',
    path: `${pkgPath(id)}/upload`,
    template: `${PACKAGES_PATH}/{id}/upload`,
    stream: { contentType: body.contentType, length: body.length, open: body.stream },
    schema: CreatedSchema,
    headersTimeoutMs: UPLOAD_ANSWER_TIMEOUT_MS,
    signal: options.signal,
  });
  return { id: res.body.id, href: res.body.href ?? undefined, size: info.size };
}

/** POST /api/v1/cloud-distribution-point/refresh-inventory[?file-name=]. */
export function refreshCdpInventory(
  http: JamfHttp,
  fileName?: string,
  options: CallOptions = {},
): Promise<void> {
  return refreshInventory(
    http,
    '/api/v1/cloud-distribution-point/refresh-inventory',
    fileName,
    options,
  );
}

/** The id of the category named exactly `name`, or undefined. */
export async function findCategoryId(
  http: JamfHttp,
  name: string,
  options: CallOptions = {},
): Promise<string | undefined> {
  const res = await http.request<z.output<typeof CategoryPageSchema>>({
    method: 'GET',
    path: '/api/v1/categories',
    query: { page: 0, 'page-size': 100, sort: 'id:asc', filter: rsql.eq('name', name) },
    schema: CategoryPageSchema,
    signal: options.signal,
  });
  return res.body.results.find(c => c.name === name)?.id;
}
