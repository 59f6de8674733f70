/**
 * The `download` processor: one JCDS file to a local path, resumable and verified
 * (shared/download/downloader.ts does the transfer). Per attempt:
 *   1. the destination's folder still exists; a destination that already holds exactly
 *      this file (an earlier attempt finished but did not report) completes at once;
 *   2. Jamf's listing gives the size and the hashes to verify against (a 404 there means
 *      the JCDS v1 endpoints are gone: JCDS_UNAVAILABLE); at the same time the package
 *      records of that file name are read: when one describes the same stored bytes as the
 *      listing (its MD5 or SHA3-512 equal the listed ones, none differs) and carries the
 *      `sha256` Jamf computed, the download is verified by SHA-256 alone (one thread at
 *      about 1 GB/s instead of SHA3-512 at 130-240 MiB/s); otherwise, or when the records
 *      cannot be read, by MD5 and SHA3-512 against the listing, as before (verifySha256);
 *   3. the checkpoint (doneRanges) is kept only if it belongs to the same JCDS file
 *      (same size and MD5), otherwise the download starts over;
 *   4. the presigned URL comes from Jamf and lives only in memory: never in job data,
 *      logs or errors; a 403 fetches a fresh one.
 */
import { lstat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Job, Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { AppError, describeError, errorCode } from '../../shared/errors.ts';
import { validateFileName } from '../../shared/files.ts';
import { hashFileWith, type HashKind } from '../../shared/hash/index.ts';
import {
  checkDestinationPath,
  checkDownloadAllowed,
  isPartialName,
} from '../../shared/download/destination.ts';
import { downloadFile } from '../../shared/download/downloader.ts';
import { PresignedUrl } from '../../shared/download/range-fetcher.ts';
import { parseRanges, type ByteRange } from '../../shared/download/ranges.ts';
import { rsql } from '../../shared/jamf/rsql.ts';
import type { JamfPackage, JcdsFile } from '../../shared/jamf/types.ts';
import type { Logger } from '../../shared/logger.ts';
import type { DownloadJobData, DownloadResult } from '../../shared/queues/jobs.ts';
import { formatBytes } from '../../shared/units.ts';
import type { JamfClient } from '../../shared/jamf/client.ts';
import { defineProcessor, type Run } from '../failure-policy.ts';
import type { FitnessHook } from '../fitness.ts';
import type { LockFences } from '../fence.ts';
import type { FleetMetrics } from '../metrics.ts';
import { HashCache } from './sync-hash-cache.ts';

export type DownloadJob = Job<DownloadJobData, DownloadResult>;

/** The JCDS calls a download makes (a slice of JamfClient). */
export type JcdsFilesApi = Pick<JamfClient, 'listJcdsFiles' | 'getJcdsDownloadUrl'>;

/** Every Jamf Pro call a download makes: JCDS, and the package records of the file name. */
export type DownloadJamfApi = JcdsFilesApi & Pick<JamfClient, 'listPackages'>;

export interface DownloadDeps {
  jamf: DownloadJamfApi;
  redis: Redis;
  metrics: FleetMetrics;
  logger: Logger;
  fences: LockFences;
  fitness?: FitnessHook;
  /** The folders downloads may be written to (JCDS_DOWNLOAD_DIRS: job data is input). */
  downloadDirs: readonly string[];
}

const PROGRESS_INTERVAL_MS = 500;

/** The JCDS listing entry of `fileName`; a 404 on the listing means JCDS v1 is gone. */
export async function findJcdsFile(
  jamf: Pick<JcdsFilesApi, 'listJcdsFiles'>,
  fileName: string,
  signal?: AbortSignal,
): Promise<JcdsFile> {
  const files = await listJcdsFilesOrUnavailable(jamf, signal);
  const file = files.find(f => f.fileName === fileName);
  if (!file) {
    throw new AppError(
      'JAMF_NOT_FOUND',
      `JCDS holds no file named ${JSON.stringify(fileName)}: check the name (jcds ls lists the files).`,
    );
  }
  return file;
}

export async function listJcdsFilesOrUnavailable(
  jamf: Pick<JcdsFilesApi, 'listJcdsFiles'>,
  signal?: AbortSignal,
): Promise<JcdsFile[]> {
  try {
    return await jamf.listJcdsFiles(signal ? { signal } : {});
  } catch (err) {
    if (errorCode(err) === 'JAMF_NOT_FOUND') throw jcdsUnavailable(err);
    throw err;
  }
}

function jcdsUnavailable(cause: unknown): AppError {
  return new AppError(
    'JCDS_UNAVAILABLE',
    'This Jamf Pro server does not offer the JCDS download endpoints (GET /api/v1/jcds/files answered 404: Jamf deprecated them in 11.24 and this server removed them). Downloads need them; fetch the package from a distribution point or the Jamf Pro web interface instead.',
    { cause },
  );
}

const HEX64 = /^[0-9a-f]{64}$/;

/** How a download is verified: the record's SHA-256, or the listing's hashes (and why). */
export type Verification =
  { sha256: string; packageId: string } | { sha256?: undefined; reason: string };

/**
 * Chooses the cheapest hash to verify a download of `file` against. The package record's
 * `sha256` counts only when the record describes the same stored bytes as the JCDS
 * listing: its MD5 or SHA3-512 equals the listed one and none of them (nor its size, when
 * shown) differs. A record whose hashes disagree describes another upload of that name (or
 * holds a client's claims: Jamf stores what a client sends, jamf-wire-2026.md 1), so the
 * listing's MD5 and SHA3-512 are checked instead. Records are taken in id order; the first
 * that qualifies is used.
 */
export function verifySha256(file: JcdsFile, records: readonly JamfPackage[]): Verification {
  const mine = records.filter(r => r.fileName === file.fileName);
  if (mine.length === 0) return { reason: 'no package record has this file name' };
  const reasons: string[] = [];
  for (const r of mine) {
    const sha256 = r.sha256?.toLowerCase();
    if (!sha256 || !HEX64.test(sha256)) {
      reasons.push(`package ${r.id} shows no sha256`);
      continue;
    }
    const pairs: Array<[string, string | undefined, string | undefined]> = [
      ['md5', r.md5 ?? undefined, file.md5],
      ['sha3512', r.sha3512 ?? undefined, file.sha3],
    ];
    const differ = pairs.filter(([, a, b]) => a && b && a.toLowerCase() !== b.toLowerCase());
    const agree = pairs.filter(([, a, b]) => a && b && a.toLowerCase() === b.toLowerCase());
    if (r.size !== undefined && r.size !== file.length)
      reasons.push(`package ${r.id} shows ${r.size} bytes, the listing ${file.length}`);
    else if (differ.length > 0)
      reasons.push(
        `package ${r.id}'s ${differ.map(d => d[0]).join(' and ')} ${differ.length > 1 ? 'differ' : 'differs'} from the listing's (another upload of that name)`,
      );
    else if (agree.length === 0)
      reasons.push(`package ${r.id} shows no md5 or sha3512 to match with the listing`);
    else return { sha256, packageId: r.id };
  }
  return { reason: reasons.join('; ') };
}

/** The package records whose fileName is `fileName`; an error (no privilege…) is returned, not thrown. */
async function recordsOf(
  jamf: Pick<DownloadJamfApi, 'listPackages'>,
  fileName: string,
  signal?: AbortSignal,
): Promise<JamfPackage[] | Error> {
  try {
    return await jamf.listPackages({
      filter: rsql.eq('fileName', fileName),
      pageSize: 100,
      ...(signal ? { signal } : {}),
    });
  } catch (err) {
    return err instanceof Error ? err : new Error(String(err));
  }
}

/**
 * True when `dest` already holds exactly `file` (a finished attempt that did not report),
 * checked with the hash the download would use.
 */
async function alreadyPresent(
  dest: string,
  file: JcdsFile,
  check: Verification,
  signal?: AbortSignal,
): Promise<Partial<Record<HashKind, string>> | undefined> {
  const st = await lstat(dest).catch(() => undefined);
  if (!st?.isFile() || st.size !== file.length || (!file.md5 && !file.sha3)) return undefined;
  const options = signal ? { signal } : {};
  if (check.sha256 !== undefined) {
    const h = await hashFileWith(dest, ['sha256'], options);
    return h.sha256 === check.sha256 ? { sha256: h.sha256, ...listedHashes(file) } : undefined;
  }
  const h = await hashFileWith(dest, ['md5', 'sha3_512'], options);
  const same =
    (!file.md5 || file.md5.toLowerCase() === h.md5) &&
    (!file.sha3 || file.sha3.toLowerCase() === h.sha3_512);
  return same ? { md5: h.md5, sha3_512: h.sha3_512 } : undefined;
}

/**
 * The listing's MD5 and SHA3-512 of `file`: the hashes of a file verified by the SHA-256
 * of a record that matched them (verifySha256), so they need not be computed again.
 */
function listedHashes(file: JcdsFile): { md5?: string; sha3_512?: string } {
  return {
    ...(file.md5 ? { md5: file.md5.toLowerCase() } : {}),
    ...(file.sha3 ? { sha3_512: file.sha3.toLowerCase() } : {}),
  };
}

async function runDownload(
  ctx: DownloadDeps,
  job: DownloadJob,
  { log, signal, lock }: Pick<Run, 'log' | 'signal' | 'lock'>,
): Promise<DownloadResult> {
  const d = job.data;
  validateFileName(d.fileName);
  // Job data is input (a dashboard user can add any job): the destination must lie in a
  // folder the operator allows, on real paths.
  await checkDownloadAllowed(d.dest, ctx.downloadDirs);
  const started = d.startedAt ?? Date.now();
  const destExists = await checkDestinationPath(d.dest, true);
  // The listing and the package records in parallel: one round trip's wait, not two.
  const recordsRead = recordsOf(ctx.jamf, d.fileName, signal);
  const file = await findJcdsFile(ctx.jamf, d.fileName, signal);
  const records = await recordsRead;
  signal?.throwIfAborted();
  const check: Verification =
    records instanceof Error
      ? {
          reason: `the package records could not be read (${describeError(records)})`,
        }
      : verifySha256(file, records);

  const sameFile = d.size === file.length && (d.md5 ?? null) === (file.md5 ?? null);
  let done: ByteRange[] = sameFile ? parseRanges(d.doneRanges, file.length) : [];
  if (!sameFile && (d.doneRanges?.length ?? 0) > 0) {
    await job.log('the JCDS file changed since the last checkpoint: starting over');
  }
  const partialExists =
    isPartialName(d.partial?.name) &&
    (await lstat(join(dirname(d.dest), d.partial.name)).then(
      () => true,
      () => false,
    ));
  if (destExists && !partialExists) {
    const present = await alreadyPresent(d.dest, file, check, signal);
    if (present) {
      await job.log(`${d.dest} already holds this file (hashes equal Jamf's): nothing to fetch`);
      return {
        path: d.dest,
        fileName: d.fileName,
        size: file.length,
        ...(present.md5 ? { md5: present.md5 } : {}),
        ...(file.sha3 && present.sha3_512 ? { sha3_512: present.sha3_512 } : {}),
        ...(present.sha256 ? { sha256: present.sha256 } : {}),
        verified: true,
        verifiedBy: check.sha256 !== undefined ? 'sha256' : 'listing',
        bytesFetched: 0,
        resumedBytes: 0,
        urlRefreshes: 0,
        durationMs: Date.now() - started,
        alreadyPresent: true,
      };
    }
    if (!d.overwrite) await checkDestinationPath(d.dest, false);
  }

  const identity: Partial<DownloadJobData> = {
    size: file.length,
    startedAt: started,
    doneRanges: done,
  };
  if (file.md5) identity.md5 = file.md5;
  if (file.sha3) identity.sha3 = file.sha3;
  await lock.saveData({ ...job.data, ...identity });
  if (done.length === 0)
    await job.log(`downloading ${d.fileName} (${formatBytes(file.length)}) to ${d.dest}`);
  await job.log(
    check.sha256 !== undefined
      ? `verifying by SHA-256, computed by Jamf for package ${check.packageId} (its hashes match the JCDS listing)`
      : `verifying by MD5${file.sha3 ? ' and SHA3-512' : ''} of the JCDS listing: ${check.reason}`,
  );

  const url = new PresignedUrl(async () => {
    try {
      return await ctx.jamf.getJcdsDownloadUrl(d.fileName, signal ? { signal } : {});
    } catch (err) {
      if (errorCode(err) === 'JAMF_NOT_FOUND') {
        throw new AppError(
          'DOWNLOAD_FAILED',
          `JCDS no longer holds ${d.fileName} (its download URL answered 404): list the files again (jcds ls).`,
          { cause: err },
        );
      }
      throw err;
    }
  });

  // Progress and the bytes_downloaded metric go to Redis at most every 500 ms (and at the
  // end), not once per write: at wire speed that is thousands of commands per GiB.
  let lastProgress = 0;
  let reported = 0;
  const progress = (bytes: number): void => {
    const now = Date.now();
    if (now - lastProgress < PROGRESS_INTERVAL_MS && bytes < file.length) return;
    lastProgress = now;
    ctx.metrics.bytesDownloaded(bytes - reported);
    reported = bytes;
    job
      .updateProgress({
        bytes,
        total: file.length,
        percent: file.length ? Math.floor((bytes / file.length) * 100) : 100,
      })
      .catch(() => undefined);
  };

  const result = await downloadFile({
    fileName: d.fileName,
    dest: d.dest,
    overwrite: d.overwrite,
    expected: { size: file.length, md5: file.md5, sha3: file.sha3, sha256: check.sha256 },
    done,
    partial: d.partial,
    url,
    signal,
    checkpoint: async (ranges, partial) => {
      done = ranges;
      await lock.saveData({ ...job.data, doneRanges: ranges, partial });
    },
    progress,
    log: line => {
      log.info(line);
      job.log(line).catch(() => undefined);
    },
  });
  await job.updateProgress({ bytes: file.length, total: file.length, percent: 100 });

  // Verified by the record's SHA-256, the file is the one the listing describes (the
  // record's MD5 or SHA3-512 equal the listed ones): its MD5 and SHA3-512 are the listed.
  const hashes = {
    ...(result.verifiedBy === 'sha256' ? listedHashes(file) : {}),
    ...(result.md5 ? { md5: result.md5 } : {}),
    ...(result.sha3_512 ? { sha3_512: result.sha3_512 } : {}),
    ...(result.sha256 ? { sha256: result.sha256 } : {}),
  };
  // The bytes are Jamf's and verified: remember their hashes for sync (no re-read).
  if (result.verified) {
    const st = await lstat(result.path);
    await new HashCache(ctx.redis, dirname(result.path)).set(
      result.path,
      { size: st.size, mtimeMs: st.mtimeMs },
      hashes,
    );
  }
  const durationMs = Date.now() - started;
  log.info(
    {
      bytes: result.size,
      bytesFetched: result.bytesFetched,
      resumedBytes: result.resumedBytes,
      durationMs,
    },
    'download done',
  );
  return {
    path: result.path,
    fileName: d.fileName,
    size: result.size,
    ...hashes,
    verified: result.verified,
    ...(result.verifiedBy ? { verifiedBy: result.verifiedBy } : {}),
    bytesFetched: result.bytesFetched,
    resumedBytes: result.resumedBytes,
    urlRefreshes: result.urlRefreshes,
    fetchMs: result.fetchMs,
    verifyTailMs: result.verifyTailMs,
    durationMs,
  };
}

export function downloadProcessor(deps: DownloadDeps, queue: Queue) {
  return defineProcessor<DownloadJobData, DownloadResult>(
    {
      queue: 'download',
      rateLimit: queue,
      logFields: job => ({ fileName: job.data.fileName }),
      // Its checkpoints (the ranges done) are fenced by the job's lock (worker/fence.ts).
      run: (job, run) => runDownload(deps, job, run),
    },
    deps,
  );
}
