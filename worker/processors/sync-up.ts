/**
 * Planning of `sync up DIR`: which packages in DIR are new or changed compared with Jamf.
 * Only the folder's own files are read: a symbolic link whose real path leaves the folder
 * (`loot.pkg -> ../private/secret`) is not followed, hashed or published, and is reported
 * (SYMLINK_OUTSIDE, among the run's failures), unless the sync asks for it
 * (`--follow-symlinks`, options.followSymlinks). A link to a file inside the folder is
 * published under the link's name: it is the folder's own file. The upload records the
 * identity of the file reached, so a link re-pointed later fails FILE_CHANGED.
 * "Changed" means the local hash differs from the package record's, looked up by file
 * name, on the hash an upload converges on: SHA-256 against the `sha256` Jamf computed
 * (SHA3-512 against `hashValue` when the record carries no `sha256`, MD5 where that is all
 * it has: shared/upload/content.ts); local hashes come from the Redis cache when the file's
 * size and mtime are the ones hashed, so unchanged files are not read. The upload jobs are built the way Producer.upload builds them (same data, same
 * per-file-name deduplication) with the known hashes passed along, so the upload does
 * not hash the file again.
 */
import { randomUUID } from 'node:crypto';
import { lstat, readdir, realpath, stat } from 'node:fs/promises';
import { extname, join, resolve } from 'node:path';
import type { JobsOptions } from 'bullmq';
import { AppError, describeError } from '../../shared/errors.ts';
import {
  ALLOWED_EXTENSIONS,
  checkUploadFile,
  isInside,
  type CheckedFile,
} from '../../shared/files.ts';
import type { JamfPackage } from '../../shared/jamf/types.ts';
import type {
  FileHashes,
  IfExists,
  SyncJobData,
  SyncPlanCounts,
  UploadJobData,
} from '../../shared/queues/jobs.ts';
import { uploadDedupId } from '../../shared/queues/names.ts';
import type { JamfClient } from '../../shared/jamf/client.ts';
import type { HashCache } from './sync-hash-cache.ts';
import { identifiedFile } from '../../shared/file-identity.ts';
import { comparableHash, sameContent } from '../../shared/upload/content.ts';

export interface PlannedJob {
  queue: 'upload' | 'download';
  fileName: string;
  data: object;
  opts: JobsOptions;
}

export interface SyncPlan {
  counts: SyncPlanCounts;
  jobs: PlannedJob[];
}

/** A plan's counts before anything was looked at. */
export function emptyCounts(considered: number): SyncPlanCounts {
  return {
    considered,
    unchanged: 0,
    failures: [],
    hashesComputed: 0,
    hashCacheHits: 0,
    bytesHashed: 0,
  };
}

/** Runs `fn` over `items`, at most `limit` at a time, in order of the items. */
export async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<R>,
): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const run = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, run));
  return out;
}

/** The package files directly in `dir` (not hidden, an extension Jamf accepts). */
export async function listPackageFiles(dir: string): Promise<string[]> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT')
      throw new AppError(
        'FILE_NOT_FOUND',
        `The sync folder ${dir} does not exist: check the path (it must be reachable by every worker).`,
      );
    if (code === 'ENOTDIR')
      throw new AppError(
        'FILE_NOT_REGULAR',
        `${dir} is not a folder: sync up takes a folder of packages.`,
      );
    throw new AppError(
      'FILE_UNREADABLE',
      `Cannot list the sync folder ${dir}: ${(err as Error).message}`,
    );
  }
  return entries
    .filter(e => (e.isFile() || e.isSymbolicLink()) && !e.name.startsWith('.'))
    .map(e => e.name)
    .filter(name =>
      (ALLOWED_EXTENSIONS as readonly string[]).includes(extname(name).slice(1).toLowerCase()),
    )
    .sort();
}

/**
 * Checks one entry of the synced folder (`realDir`: the folder's real path): a symbolic
 * link must resolve inside it unless `follow`; then the upload checks (checkUploadFile).
 */
export async function checkSyncFile(
  path: string,
  realDir: string,
  follow: boolean,
): Promise<CheckedFile> {
  if ((await lstat(path)).isSymbolicLink()) {
    let real: string;
    try {
      real = await realpath(path);
    } catch (err) {
      throw new AppError(
        'FILE_NOT_FOUND',
        `${path} is a symbolic link to nothing (${(err as NodeJS.ErrnoException).code ?? 'unresolvable'}): remove it or point it at a package.`,
      );
    }
    if (!follow && !isInside(real, realDir)) {
      throw new AppError(
        'SYMLINK_OUTSIDE',
        `${path} is a symbolic link to ${real}, outside the synced folder ${realDir}: not followed, nothing read or published. Move the package into the folder, or sync with --follow-symlinks if the link is meant.`,
        { details: { path, target: real } },
      );
    }
    const file = await checkUploadFile(path);
    // The link must not have been re-pointed between the check above and the stat.
    const st = await stat(real, { bigint: true });
    if (st.dev.toString() !== file.dev || st.ino.toString() !== file.ino)
      throw new AppError(
        'FILE_CHANGED',
        `${path} was re-pointed while it was checked: not published; the next sync looks again.`,
      );
    return file;
  }
  return checkUploadFile(path);
}

/** Jamf's hashes of each package, by file name (the newest record wins on duplicates). */
function packagesByFileName(packages: readonly JamfPackage[]): Map<string, JamfPackage> {
  const map = new Map<string, JamfPackage>();
  for (const p of packages) map.set(p.fileName, p);
  return map;
}

export async function planSyncUp(
  ctx: { jamf: Pick<JamfClient, 'listPackages'> },
  data: SyncJobData,
  cache: HashCache,
  signal?: AbortSignal,
): Promise<SyncPlan> {
  const dir = resolve(data.dir);
  const names = await listPackageFiles(dir);
  const realDir = await realpath(dir);
  const follow = data.options?.followSymlinks === true;
  const packages = packagesByFileName(await ctx.jamf.listPackages(signal ? { signal } : {}));
  const counts = emptyCounts(names.length);
  const jobs: PlannedJob[] = [];
  // Two at a time: hashing is CPU-bound and runs in worker threads.
  await mapLimit(names, 2, async name => {
    signal?.throwIfAborted();
    try {
      const file = await checkSyncFile(join(dir, name), realDir, follow);
      const pkg = packages.get(file.fileName);
      // SHA-256 always (the upload converges on it); the record's own hash when it has
      // another (no sha256), to compare with it.
      const other = pkg ? comparableHash(pkg) : undefined;
      const hashes: FileHashes = await cache.hash(
        file.path,
        { size: file.size, mtimeMs: file.mtimeMs },
        counts,
        signal,
        other && other !== 'sha256' ? ['sha256', other] : ['sha256'],
      );
      if (pkg && sameContent(pkg, hashes)) {
        counts.unchanged++;
        return;
      }
      const ifExists: IfExists = pkg ? 'replace' : (data.options?.ifExists ?? 'skip');
      const upload: UploadJobData = {
        ...identifiedFile(file),
        ifExists,
        package: data.options?.category ? { category: data.options.category } : {},
        step: 'prepare',
        requestId: randomUUID(),
        hashes,
      };
      jobs.push({
        queue: 'upload',
        fileName: file.fileName,
        data: upload,
        opts: { deduplication: { id: uploadDedupId(file.fileName) } },
      });
    } catch (err) {
      if (signal?.aborted) throw err;
      const reason =
        err instanceof AppError ? `[${err.code}] ${describeError(err)}` : describeError(err);
      counts.failures.push({ fileName: name, reason });
    }
  });
  jobs.sort((a, b) => a.fileName.localeCompare(b.fileName));
  return { counts, jobs };
}
