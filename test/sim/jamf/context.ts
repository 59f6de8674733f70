/**
 * Everything the Jamf handlers share: settings, the object store, credentials, the live
 * faults and counters objects (shared with the S3 side), tokens, and the package and
 * category tables persisted under `<dataDir>/jamf/`.
 */
import { join } from 'node:path';
import type { Logger } from '../../../shared/logger.ts';
import type { FileCredentialRegistry } from '../credentials.ts';
import type { Counters, Faults, ObjectHashes, ObjectStore } from '../types.ts';
import { JsonlTable } from './jsonl-table.ts';
import type { PackageRecord } from './package-model.ts';
import { TokenService } from './tokens.ts';

export interface JamfSettings {
  clientId: string;
  clientSecret: string;
  username: string;
  password: string;
  tokenTtlSeconds: number;
  oauthTtlSeconds: number;
  credentialTtlSeconds: number;
  presignTtlSeconds: number;
  /** False: every /api/v1/jcds/* endpoint answers 404 (a server where they were removed). */
  jcds: boolean;
  bucket: string;
  region: string;
  /** The JCDS `path`: S3 keys are path + fileName. Ends with "/". */
  jcdsPath: string;
  version: string;
}

export interface CategoryRecord {
  id: number;
  name: string;
  priority: number;
}

export type FileState =
  { state: 'missing' } | { state: 'pending' } | { state: 'ready'; hashes: ObjectHashes };

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
}

export function createJamfContext(deps: JamfContextDeps): JamfContext {
  const dir = join(deps.dataDir, 'jamf');
  return {
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
  };
}

/** The S3 key of a JCDS file. */
export function objectKey(ctx: JamfContext, fileName: string): string {
  return ctx.settings.jcdsPath + fileName;
}

/**
 * The stored file behind a package: missing, still being hashed (Jamf has not computed its
 * hashes yet), or ready with the hashes of the bytes actually stored.
 */
export async function fileState(
  ctx: JamfContext,
  fileName: string,
  waitMs = 2000,
): Promise<FileState> {
  const key = objectKey(ctx, fileName);
  const head = await ctx.store.head(ctx.settings.bucket, key);
  if (!head) return { state: 'missing' };
  const hashing = ctx.store.hashes(ctx.settings.bucket, key);
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>(resolve => {
    timer = setTimeout(() => resolve('timeout'), waitMs);
  });
  try {
    const result = await Promise.race([hashing, timeout]);
    if (result === 'timeout') {
      hashing.catch((err: unknown) => ctx.logger.warn({ err, fileName }, 'hashing failed'));
      return { state: 'pending' };
    }
    return result ? { state: 'ready', hashes: result } : { state: 'missing' };
  } finally {
    clearTimeout(timer);
  }
}
