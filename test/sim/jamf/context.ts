/**
 * Everything the Jamf handlers share: settings (some switchable at run time through
 * PUT /__sim/settings), the object store, credentials, the live faults and counters objects
 * (shared with the S3 side), tokens, the package and category tables persisted under
 * `<dataDir>/jamf/`, Jamf's processing of stored package files, and the download URL signer.
 */
import { join } from 'node:path';
import type { Logger } from '../../../shared/logger.ts';
import type { CdnSigner } from '../cdn.ts';
import type { FileCredentialRegistry } from '../credentials.ts';
import type { Counters, Faults, ObjectHashes, ObjectStore } from '../types.ts';
import { JsonlTable } from './jsonl-table.ts';
import type { PackageRecord } from './package-model.ts';
import { Processing } from './processing.ts';
import { TokenService } from './tokens.ts';

export type CdnType = 'JAMF_CLOUD' | 'AWS' | 'NONE';
export const CDN_TYPES: readonly CdnType[] = ['JAMF_CLOUD', 'AWS', 'NONE'];
export type DownloadUrlForm = 'cloudfront' | 's3-presigned';
export const DOWNLOAD_URL_FORMS: readonly DownloadUrlForm[] = ['cloudfront', 's3-presigned'];

export interface JamfSettings {
  clientId: string;
  clientSecret: string;
  username: string;
  password: string;
  tokenTtlSeconds: number;
  /** OAuth token lifetime. */
  oauthTtlSeconds: number;
  /** The `expires_in` OAuth token answers carry (Jamf answers 59 for its 60 s tokens). */
  oauthExpiresInSeconds: number;
  credentialTtlSeconds: number;
  /** Download URL lifetime (faults.presignTtlSeconds overrides it). Run-time switchable. */
  downloadUrlTtlSeconds: number;
  /**
   * The form of the download URLs: `cloudfront` (jamf-wire-2026.md 4, the default) or
   * `s3-presigned` (the pre-2026 simulator's S3 presigned GET). Run-time switchable.
   */
  downloadUrlForm: DownloadUrlForm;
  /** False: every /api/v1/jcds/* endpoint answers 404 (a server where they were removed). */
  jcds: boolean;
  bucket: string;
  region: string;
  version: string;
  /** Delay from an upload (or a new JCDS object) to its processing, ms. Run-time switchable. */
  processingMs: number;
  /**
   * The cloud distribution point's type. AWS: the JCDS endpoints answer 404 "JCDS Settings
   * record not found"; NONE: the same, and nothing uploaded is ever processed. Run-time
   * switchable.
   */
  cdnType: CdnType;
  /** Adds `Deprecation: date="2025-08-28T00:00:00Z"` to the JCDS answers. Run-time switchable. */
  deprecationHeader: boolean;
  /**
   * True (the default): processing computes the package record's `sha256` with the other
   * hashes (jamf-wire-2026.md 1). False: a tenant that does not fill it: processing leaves
   * it out and the Pro API's package JSON has no `sha256` key at all (clients compare the
   * SHA3-512 `hashValue` instead). Run-time switchable.
   */
  packageSha256: boolean;
}

export interface CategoryRecord {
  id: number;
  name: string;
  priority: number;
}

export interface JamfContext {
  settings: JamfSettings;
  store: ObjectStore;
  credentials: FileCredentialRegistry;
  faults: Faults;
  counters: Counters;
  logger: Logger;
  tokens: TokenService;
  packages: JsonlTable<PackageRecord>;
  categories: JsonlTable<CategoryRecord>;
  /** The S3 endpoint presigned URLs point at (http://127.0.0.1:PORT). */
  s3Endpoint: () => string;
  /** Closes the S3 server, waits downMs, listens again on the same port. */
  restartS3: (downMs: number) => Promise<void>;
  /** Jamf-side state that is not a counter of the shared Counters type. */
  stats: { requestsWithoutCookie: number };
  /** Epoch ms of the last refresh-inventory without a file name (the 15 s limit). */
  inventory: { lastFullRefresh: number };
  /** Jamf's processing of stored package files (processing.ts). */
  processing: Processing;
  /** Signs the CloudFront-style download URLs (../cdn.ts). */
  cdn: CdnSigner;
}

const SEED_CATEGORIES: Array<Omit<CategoryRecord, 'id'>> = [
  { name: 'Applications', priority: 9 },
  { name: 'Utilities', priority: 9 },
  { name: 'Security', priority: 9 },
  { name: 'Productivity', priority: 9 },
];

export interface JamfContextDeps {
  dataDir: string;
  settings: JamfSettings;
  store: ObjectStore;
  credentials: FileCredentialRegistry;
  faults: Faults;
  counters: Counters;
  logger: Logger;
  s3Endpoint: () => string;
  restartS3: (downMs: number) => Promise<void>;
  cdn: CdnSigner;
}

export function createJamfContext(deps: JamfContextDeps): JamfContext {
  const dir = join(deps.dataDir, 'jamf');
  const ctx: Omit<JamfContext, 'processing'> & { processing?: Processing } = {
    settings: deps.settings,
    store: deps.store,
    credentials: deps.credentials,
    faults: deps.faults,
    counters: deps.counters,
    logger: deps.logger,
    tokens: new TokenService(dir),
    packages: new JsonlTable<PackageRecord>(join(dir, 'packages.jsonl')),
    categories: new JsonlTable<CategoryRecord>(join(dir, 'categories.jsonl'), SEED_CATEGORIES),
    s3Endpoint: deps.s3Endpoint,
    restartS3: deps.restartS3,
    stats: { requestsWithoutCookie: 0 },
    inventory: { lastFullRefresh: 0 },
    cdn: deps.cdn,
  };
  ctx.processing = new Processing(ctx as JamfContext);
  return ctx as JamfContext;
}

/**
 * The hashes of a stored object, waiting at most `waitMs` for them (a just-stored object may
 * still be hashing): undefined when it is gone or not hashed within the wait.
 */
export async function hashesWithin(
  ctx: JamfContext,
  key: string,
  waitMs: number,
): Promise<ObjectHashes | undefined> {
  const hashing = ctx.store.hashes(ctx.settings.bucket, key);
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>(resolve => {
    timer = setTimeout(() => resolve(undefined), waitMs);
  });
  try {
    return await Promise.race([hashing, timeout]);
  } catch (err) {
    ctx.logger.warn({ err, key }, 'hashing failed');
    return undefined;
  } finally {
    clearTimeout(timer);
    hashing.catch(() => undefined);
  }
}
