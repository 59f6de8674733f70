/**
 * The Jamf Pro API package endpoints (jamf-api.md 2.3, jamf-wire-2026.md 1): list with
 * page/page-size/sort/filter, create (required fields, UNSUPPORTED_FILE_TYPE,
 * DUPLICATE_FIELD; a client's `size` ignored; hash fields stored exactly as sent), get,
 * update (ids in the body ignored; fields merged into the record; hash fields stored as
 * sent; ANY update blanks a known `size` to "" until refresh-inventory), delete and
 * delete-multiple (the stored file goes with the last package that uses it). Every create
 * and update is counted in counters.packageWrites (field names only).
 */
import { recordPackageWrite } from '../counters.ts';
import type { JamfContext } from './context.ts';
import { JamfApiError } from './errors.ts';
import { baseUrl, readJsonObject, sendEmpty, sendJson } from './http.ts';
import { listRows, type ListSpec } from './list-query.ts';
import {
  blankSize,
  duplicatePackageName,
  fieldString,
  fieldsFromBody,
  hasAllowedExtension,
  missingRequired,
  unsupportedFileType,
  type FieldValue,
  type PackageRecord,
} from './package-model.ts';
import {
  deleteFileIfUnused,
  packageById,
  packageByName,
  packageHref,
  presentPackage,
} from './package-view.ts';
import type { RequestCtx, RouteDef } from './router.ts';

const PACKAGE_LIST: ListSpec<PackageRecord> = {
  filterFields: [
    'id',
    'fileName',
    'packageName',
    'categoryId',
    'info',
    'notes',
    'manifestFileName',
    'cloudTransferStatus',
  ],
  sortFields: [
    'id',
    'packageName',
    'fileName',
    'categoryId',
    'info',
    'notes',
    'manifestFileName',
    'priority',
  ],
  numericFields: ['id', 'categoryId', 'priority'],
  get: (rec, field) => {
    if (field === 'id') return rec.id;
    if (field === 'cloudTransferStatus') return rec.cloudTransferStatus;
    return rec.fields[field] ?? null;
  },
};

/** The hashType values Jamf accepts on a write (jamf-wire-2026.md 1.3). */
export const ACCEPTED_HASH_TYPES = ['MD5', 'SHA_256', 'SHA_512', 'SHA3_512'];

/** Checks what create and update share: file type, hashType, category, name uniqueness. */
function validate(ctx: JamfContext, fields: Record<string, FieldValue>, exceptId: number): void {
  const hashType = fields['hashType'];
  if (typeof hashType === 'string' && !ACCEPTED_HASH_TYPES.includes(hashType)) {
    throw new JamfApiError(
      400,
      'INVALID_FIELD',
      `hashType must be one of ${ACCEPTED_HASH_TYPES.join(', ')}`,
      'hashType',
    );
  }
  const fileName = fields['fileName'];
  if (typeof fileName === 'string' && !hasAllowedExtension(fileName)) throw unsupportedFileType();
  const categoryId = fields['categoryId'];
  if (typeof categoryId === 'string' && categoryId !== '-1') {
    const id = Number(categoryId);
    if (!Number.isSafeInteger(id) || !ctx.categories.get(id)) {
      throw new JamfApiError(
        400,
        'INVALID_FIELD',
        `Category with id ${categoryId} does not exist`,
        'categoryId',
      );
    }
  }
  const name = fields['packageName'];
  if (typeof name === 'string' && packageByName(ctx, name, exceptId)) throw duplicatePackageName();
}

function listPackages({ ctx, res, url }: RequestCtx): void {
  const page = listRows(ctx.packages.all(), url.searchParams, PACKAGE_LIST);
  sendJson(res, 200, {
    totalCount: page.totalCount,
    results: page.results.map(rec => presentPackage(rec, ctx.settings)),
  });
}

function getPackage({ ctx, res, params }: RequestCtx): void {
  sendJson(res, 200, presentPackage(packageById(ctx, params['id']), ctx.settings));
}

async function createPackage({ ctx, req, res }: RequestCtx): Promise<void> {
  const body = await readJsonObject(req);
  recordPackageWrite(ctx.counters, { method: 'POST', api: 'pro', fields: Object.keys(body) });
  const fields = fieldsFromBody(body);
  const missing = missingRequired(fields);
  if (missing.length > 0) throw JamfApiError.many(400, missing);
  validate(ctx, fields, 0);
  const rec = ctx.packages.insert({ fields, cloudTransferStatus: '', size: null });
  ctx.logger.info({ id: rec.id, fileName: fields['fileName'] }, 'package created');
  await ctx.processing.recordWritten(rec.id);
  sendJson(res, 201, { id: String(rec.id), href: packageHref(baseUrl(req), rec.id) });
}

async function updatePackage({ ctx, req, res, params }: RequestCtx): Promise<void> {
  const rec = packageById(ctx, params['id']);
  const body = await readJsonObject(req);
  recordPackageWrite(ctx.counters, { method: 'PUT', api: 'pro', fields: Object.keys(body) });
  const fields = fieldsFromBody(body);
  for (const f of ['packageName', 'fileName', 'categoryId', 'priority']) {
    if (Object.hasOwn(fields, f) && fields[f] === null) {
      throw new JamfApiError(400, 'INVALID_FIELD', 'must not be null', f);
    }
  }
  validate(ctx, fields, rec.id);
  // The record may have changed while the body was read (processing): merge into the latest.
  const latest = ctx.packages.get(rec.id) ?? rec;
  ctx.packages.update(blankSize({ ...latest, fields: { ...latest.fields, ...fields } }));
  await ctx.processing.recordWritten(rec.id);
  sendJson(res, 200, presentPackage(ctx.packages.get(rec.id) ?? rec, ctx.settings));
}

async function deletePackage({ ctx, res, params }: RequestCtx): Promise<void> {
  const rec = packageById(ctx, params['id']);
  ctx.packages.delete(rec.id);
  await deleteFileIfUnused(ctx, fieldString(rec, 'fileName'));
  sendEmpty(res, 204);
}

async function deleteMultiple({ ctx, req, res }: RequestCtx): Promise<void> {
  const body = await readJsonObject(req);
  const ids = body['ids'];
  if (!Array.isArray(ids) || ids.length === 0) {
    throw new JamfApiError(400, 'INVALID_FIELD', 'ids must be a non-empty array', 'ids');
  }
  const records = ids.map(id => packageById(ctx, String(id)));
  for (const rec of records) ctx.packages.delete(rec.id);
  for (const rec of records) await deleteFileIfUnused(ctx, fieldString(rec, 'fileName'));
  sendEmpty(res, 204);
}

export const packageRoutes: RouteDef[] = [
  { method: 'GET', template: '/api/v1/packages', api: 'pro', handler: listPackages },
  { method: 'POST', template: '/api/v1/packages', api: 'pro', handler: createPackage },
  {
    method: 'POST',
    template: '/api/v1/packages/delete-multiple',
    api: 'pro',
    handler: deleteMultiple,
  },
  { method: 'GET', template: '/api/v1/packages/{id}', api: 'pro', handler: getPackage },
  { method: 'PUT', template: '/api/v1/packages/{id}', api: 'pro', handler: updatePackage },
  { method: 'DELETE', template: '/api/v1/packages/{id}', api: 'pro', handler: deletePackage },
];
