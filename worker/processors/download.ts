/**
 * The `download` processor: one JCDS file to a local path, resumable and verified
 * (shared/download/downloader.ts does the transfer). Per attempt:
 *   1. the destination's folder still exists; a destination that already holds exactly
 *      this file (an earlier attempt finished but did not report) completes at once;
 *   2. Jamf's listing gives the size and the hashes to verify against (a 404 there means
 *      the JCDS v1 endpoints are gone: JCDS_UNAVAILABLE);
 *   3. the checkpoint (doneRanges) is kept only if it belongs to the same JCDS file
 *      (same size and MD5), otherwise the download starts over;
 *   4. the presigned URL comes from Jamf and lives only in memory: never in job data,
 *      logs or errors; a 403 fetches a fresh one.
 */
import { lstat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Job, Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { AppError, errorCode } from '../../shared/errors.ts';
import { validateFileName } from '../../shared/files.ts';
import { hashFile } from '../../shared/hash/index.ts';
import {
  checkDestinationPath,
  checkDownloadAllowed,
  isPartialName,
} from '../../shared/download/destination.ts';
import { downloadFile } from '../../shared/download/downloader.ts';
import { PresignedUrl } from '../../shared/download/range-fetcher.ts';
import { parseRanges, type ByteRange } from '../../shared/download/ranges.ts';
import type { JcdsFile } from '../../shared/jamf/types.ts';
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

/** The Jamf Pro calls a download makes (a slice of JamfClient). */
export type JcdsFilesApi = Pick<JamfClient, 'listJcdsFiles' | 'getJcdsDownloadUrl'>;

export interface DownloadDeps {
  jamf: JcdsFilesApi;
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

/** True when `dest` already holds exactly `file` (a finished attempt that did not report). */
async function alreadyPresent(
  dest: string,
  file: JcdsFile,
  signal?: AbortSignal,
): Promise<{ md5: string; sha3_512: string } | undefined> {
  const st = await lstat(dest).catch(() => undefined);
  if (!st?.isFile() || st.size !== file.length || (!file.md5 && !file.sha3)) return undefined;
  const h = await hashFile(dest, signal ? { signal } : {});
  const same =
    (!file.md5 || file.md5.toLowerCase() === h.md5) &&
    (!file.sha3 || file.sha3.toLowerCase() === h.sha3_512);
  return same ? { md5: h.md5, sha3_512: h.sha3_512 } : undefined;
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
  const file = await findJcdsFile(ctx.jamf, d.fileName, signal);

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
    const present = await alreadyPresent(d.dest, file, signal);
    if (present) {
      await job.log(`${d.dest} already holds this file (hashes equal Jamf's): nothing to fetch`);
      return {
        path: d.dest,
        fileName: d.fileName,
        size: file.length,
        md5: present.md5,
        ...(file.sha3 ? { sha3_512: present.sha3_512 } : {}),
        verified: true,
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

  let lastProgress = 0;
  let reported = 0;
  const progress = (bytes: number): void => {
    ctx.metrics.bytesDownloaded(bytes - reported);
    reported = bytes;
    const now = Date.now();
    if (now - lastProgress < PROGRESS_INTERVAL_MS && bytes < file.length) return;
    lastProgress = now;
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
    expected: { size: file.length, md5: file.md5, sha3: file.sha3 },
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

  // The bytes are Jamf's and verified: remember their hashes for sync (no re-read).
  if (result.verified && result.sha3_512) {
    const st = await lstat(result.path);
    await new HashCache(ctx.redis, dirname(result.path)).set(
      result.path,
      { size: st.size, mtimeMs: st.mtimeMs },
      { md5: result.md5, sha3_512: result.sha3_512 },
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
    md5: result.md5,
    ...(result.sha3_512 ? { sha3_512: result.sha3_512 } : {}),
    verified: result.verified,
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
