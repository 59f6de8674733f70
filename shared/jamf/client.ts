/**
 * JamfClient: the typed Jamf Pro API client the producer and the workers use.
 *
 *   JamfClient ── JamfHttp (http.ts): undici pool, concurrency cap, cookies, retries
 *             └─ JamfTokenProvider (auth.ts): OAuth or user tokens, one refresh at a time
 *
 * The endpoint groups live in jcds-api.ts (deprecated JCDS v1), packages-api.ts (Jamf Pro
 * API packages, upload, categories) and classic-api.ts (Classic API fallback); this class
 * wires them to one HTTP layer and one token provider. Every method takes an optional
 * AbortSignal. Errors are JamfApiError (errors.ts) or, for local files, AppError.
 *
 * One client per process (or per worker) is the intent: the concurrency cap and the token
 * are per client. `close()` invalidates the token and closes the connection pool.
 */
import type { JamfAuthConfig } from '../config.ts';
import { coalesceFresh, waitFor } from '../coalesce.ts';
import type { Logger } from '../logger.ts';
import { JamfTokenProvider } from './auth.ts';
import { JamfHttp } from './http.ts';
import * as classic from './classic-api.ts';
import * as jcds from './jcds-api.ts';
import type { CallOptions } from './jcds-api.ts';
import * as packages from './packages-api.ts';
import type { ListPackagesOptions, UploadOptions, UploadResult } from './packages-api.ts';
import {
  CloudDistributionPointSchema,
  type CloudDistributionPoint,
  UploadCapabilitySchema,
  VersionSchema,
  type Capabilities,
  type ClassicNewPackage,
  type ClassicPackage,
  type ClassicPackageRef,
  type Created,
  type JamfPackage,
  type JcdsCredentials,
  type JcdsFile,
  type NewPackage,
} from './types.ts';
import { parseJamfVersion, versionAtLeast } from './version.ts';

export interface JamfClientOptions {
  /** The Jamf Pro URL, e.g. `https://example.jamfcloud.com` (JAMF_URL). */
  baseUrl: string;
  auth: JamfAuthConfig;
  /** Max concurrent requests to Jamf from this client. @defaultValue 5 (Jamf's guidance) */
  concurrency?: number;
  logger?: Logger | undefined;
  /** @defaultValue `jcds-fleet/0.1` */
  userAgent?: string;
  /** Retries after a transient failure. @defaultValue 5 */
  retries?: number;
  /** First backoff delay, ms. @defaultValue 500 */
  retryBaseMs?: number;
  /** Cap of one backoff delay, ms. @defaultValue 30000 */
  retryMaxMs?: number;
  /** Longest Retry-After waited out in-process; longer ones are thrown at once. @defaultValue 60000 */
  maxRetryAfterMs?: number;
  /** Headers/body timeout of ordinary calls, ms (uploads have none overall). @defaultValue 60000 */
  timeoutMs?: number;
  /** Token refresh margin cap, ms. @defaultValue 60000 */
  tokenMarginMs?: number;
  /** The clock token expiry is judged by (tests simulate skew with it). @defaultValue Date.now */
  now?: () => number;
}

/** How long a category's id found by name is kept (JamfClient.findCategoryId). */
export const CATEGORY_TTL_MS = 60_000;

export class JamfClient {
  readonly baseUrl: string;
  readonly host: string;
  private readonly http: JamfHttp;
  private readonly tokens: JamfTokenProvider;
  private closed = false;

  constructor(options: JamfClientOptions) {
    this.http = new JamfHttp({
      baseUrl: options.baseUrl,
      logger: options.logger,
      ...pick(options, [
        'concurrency',
        'userAgent',
        'retries',
        'retryBaseMs',
        'retryMaxMs',
        'maxRetryAfterMs',
        'timeoutMs',
      ]),
    });
    this.tokens = new JamfTokenProvider({
      http: this.http,
      auth: options.auth,
      logger: options.logger,
      ...(options.tokenMarginMs === undefined ? {} : { maxMarginMs: options.tokenMarginMs }),
      ...(options.now === undefined ? {} : { now: options.now }),
    });
    this.http.tokens = this.tokens;
    this.baseUrl = this.http.baseUrl;
    this.host = this.http.host;
  }

  /** Token requests this client made (diagnostics). */
  get tokenRequests(): number {
    return this.tokens.tokenRequests;
  }

  /** The sticky-session Cookie header being sent (diagnostics; holds no secret). */
  get cookieHeader(): string | undefined {
    return this.http.cookieHeader;
  }

  // --- JCDS v1 (deprecated in Jamf Pro 11.24, still supported) --------------------------

  /** POST /api/v1/jcds/files: a temporary upload record and its S3 credentials. */
  createJcdsFile(options?: CallOptions): Promise<JcdsCredentials> {
    return jcds.createJcdsFile(this.http, options);
  }

  /** POST /api/v1/jcds/renew-credentials. */
  renewJcdsCredentials(options?: CallOptions): Promise<JcdsCredentials> {
    return jcds.renewJcdsCredentials(this.http, options);
  }

  /**
   * GET /api/v1/jcds/files (a bare array of every file, no pagination). Concurrent callers
   * share one listing that started after they asked (coalesceFresh): each sees every file
   * stored before its call, and a burst of uploads checking the listing makes one or two
   * requests, not one each (a listing is O(files) for Jamf to build and for us to parse).
   */
  async listJcdsFiles(options: CallOptions = {}): Promise<JcdsFile[]> {
    return [...(await waitFor(this.listing(), options.signal))];
  }

  private readonly listing = coalesceFresh(() => jcds.listJcdsFiles(this.http));

  /** GET /api/v1/jcds/files/{fileName}: a presigned URL (secret: do not log it). */
  getJcdsDownloadUrl(fileName: string, options?: CallOptions): Promise<string> {
    return jcds.getJcdsDownloadUrl(this.http, fileName, options);
  }

  /** DELETE /api/v1/jcds/files/{fileName}. */
  deleteJcdsFile(fileName: string, options?: CallOptions): Promise<void> {
    return jcds.deleteJcdsFile(this.http, fileName, options);
  }

  /** POST /api/v1/jcds/refresh-inventory[?file-name=]. */
  refreshJcdsInventory(fileName?: string, options?: CallOptions): Promise<void> {
    return jcds.refreshJcdsInventory(this.http, fileName, options);
  }

  // --- Jamf Pro API packages -------------------------------------------------------------

  /** Every package matching `filter` (all pages). */
  listPackages(options?: ListPackagesOptions): Promise<JamfPackage[]> {
    return packages.listPackages(this.http, options);
  }

  findPackageByFileName(fileName: string, options?: CallOptions): Promise<JamfPackage | undefined> {
    return packages.findPackageByFileName(this.http, fileName, options);
  }

  findPackageByName(packageName: string, options?: CallOptions): Promise<JamfPackage | undefined> {
    return packages.findPackageByName(this.http, packageName, options);
  }

  getPackage(id: string, options?: CallOptions): Promise<JamfPackage> {
    return packages.getPackage(this.http, id, options);
  }

  deletePackage(id: string, options?: CallOptions): Promise<void> {
    return packages.deletePackage(this.http, id, options);
  }

  /** POST /api/v1/packages, required fields defaulted (categoryId "-1", priority 10, …). */
  createPackage(pkg: NewPackage, options?: CallOptions): Promise<Created> {
    return packages.createPackage(this.http, pkg, options);
  }

  /** PUT /api/v1/packages/{id}: the full package, without `size` or read-only fields. */
  updatePackage(
    id: string,
    pkg: Partial<JamfPackage> & Pick<JamfPackage, 'packageName' | 'fileName'>,
    options?: CallOptions,
  ): Promise<JamfPackage> {
    return packages.updatePackage(this.http, id, pkg, options);
  }

  /** POST /api/v1/packages/{id}/upload: the file streamed as multipart field `file`. */
  uploadPackageFile(id: string, filePath: string, options?: UploadOptions): Promise<UploadResult> {
    return packages.uploadPackageFile(this.http, id, filePath, options);
  }

  /** POST /api/v1/cloud-distribution-point/refresh-inventory[?file-name=]. */
  refreshCdpInventory(fileName?: string, options?: CallOptions): Promise<void> {
    return packages.refreshCdpInventory(this.http, fileName, options);
  }

  /** The id of the category named exactly `name`, or undefined. */
  async findCategoryId(name: string, options?: CallOptions): Promise<string | undefined> {
    const hit = this.categoryIds.get(name);
    if (hit && hit.until > Date.now()) return hit.id;
    const id = await packages.findCategoryId(this.http, name, options);
    // A found id is kept for a minute: an upload looks its category up in prepare and
    // again for the record, and a batch uses the same few categories. A miss is not kept
    // (a category created meanwhile is seen at once).
    if (id !== undefined) {
      if (this.categoryIds.size >= 256) this.categoryIds.clear();
      this.categoryIds.set(name, { id, until: Date.now() + CATEGORY_TTL_MS });
    }
    return id;
  }

  private readonly categoryIds = new Map<string, { id: string; until: number }>();

  // --- Classic API fallback --------------------------------------------------------------

  classicListPackages(options?: CallOptions): Promise<ClassicPackageRef[]> {
    return classic.classicListPackages(this.http, options);
  }

  classicGetPackage(id: number | string, options?: CallOptions): Promise<ClassicPackage> {
    return classic.classicGetPackage(this.http, id, options);
  }

  classicCreatePackage(pkg: ClassicNewPackage, options?: CallOptions): Promise<{ id: number }> {
    return classic.classicCreatePackage(this.http, pkg, options);
  }

  // --- Server ----------------------------------------------------------------------------

  /**
   * GET /api/v1/jamf-pro-version → e.g. `11.24.0-t1718802727`. `retries` overrides the
   * client's (a worker's start-up check: the token request retries on its own already).
   */
  async getVersion(options: CallOptions & { retries?: number } = {}): Promise<string> {
    const res = await this.http.request<{ version: string }>({
      method: 'GET',
      path: '/api/v1/jamf-pro-version',
      schema: VersionSchema,
      signal: options.signal,
      ...(options.retries === undefined ? {} : { retries: options.retries }),
    });
    return res.body.version;
  }

  /**
   * What this server offers. `jcds`: GET /api/v1/jcds/files answers 200 (present) or 404
   * (removed); other errors (403 for a missing privilege, 5xx) are thrown, not guessed.
   * `packageUpload`: Jamf Pro 11.5+, or, when the version cannot be read, the
   * upload-capability endpoint answering.
   */
  async probeCapabilities(options: CallOptions = {}): Promise<Capabilities> {
    const [version, jcdsProbe] = await Promise.all([
      this.getVersion(options),
      this.http.request({
        method: 'GET',
        path: jcds.JCDS_FILES_PATH,
        acceptStatuses: [404],
        responseType: 'none',
        signal: options.signal,
      }),
    ]);
    const parsed = parseJamfVersion(version);
    let packageUpload: boolean;
    if (parsed !== undefined) {
      packageUpload = versionAtLeast(parsed, 11, 5);
    } else {
      const cap = await this.http.request<{
        principalDistributionTechnology?: boolean | null;
        directUploadCapable?: boolean | null;
      }>({
        method: 'GET',
        path: '/api/v1/cloud-distribution-point/upload-capability',
        schema: UploadCapabilitySchema,
        acceptStatuses: [404],
        signal: options.signal,
      });
      packageUpload =
        cap.status !== 404 &&
        Boolean(cap.body.principalDistributionTechnology || cap.body.directUploadCapable);
    }
    return { version, jcds: jcdsProbe.status !== 404, packageUpload };
  }

  /**
   * GET /api/v1/cloud-distribution-point: the cloud distribution point's type and whether
   * it is the principal one; undefined on a server without the endpoint (404).
   */
  async getCloudDistributionPoint(
    options: CallOptions = {},
  ): Promise<CloudDistributionPoint | undefined> {
    const res = await this.http.request<{ cdnType?: string | null; master?: boolean | null }>({
      method: 'GET',
      path: '/api/v1/cloud-distribution-point',
      schema: CloudDistributionPointSchema,
      acceptStatuses: [404],
      signal: options.signal,
    });
    if (res.status === 404) return undefined;
    return { cdnType: res.body.cdnType ?? undefined, master: res.body.master ?? undefined };
  }

  /** Invalidates the token (best effort) and closes the connection pool. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      await this.tokens.invalidate();
    } finally {
      await this.http.close();
    }
  }
}

function pick<T extends object, K extends keyof T>(
  obj: T,
  keys: readonly K[],
): Partial<Pick<T, K>> {
  const out: Partial<Pick<T, K>> = {};
  for (const k of keys) if (obj[k] !== undefined) out[k] = obj[k];
  return out;
}
