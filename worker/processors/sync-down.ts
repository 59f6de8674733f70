/**
 * Planning of `sync down DIR`: which JCDS files are missing in DIR or differ from the
 * local copy (size, then MD5; SHA3-512 when JCDS lists no MD5). Local hashes come from
 * the Redis cache (path + size + mtime) so a second run reads nothing: the download
 * processor records the hashes of every file it verified (one verified by its package
 * record's SHA-256 gets the MD5 and SHA3-512 of the listing, which that record's equal:
 * worker/processors/download.ts verifySha256), so the comparison below stays the
 * listing's own and costs no read.
 */
import { stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { AppError, describeError } from '../../shared/errors.ts';
import { downloadDedupId } from '../../shared/download/destination.ts';
import { validateFileName } from '../../shared/files.ts';
import type { DownloadJobData, SyncJobData } from '../../shared/queues/jobs.ts';
import { listJcdsFilesOrUnavailable, type JcdsFilesApi } from './download.ts';
import type { HashCache } from './sync-hash-cache.ts';
import { emptyCounts, mapLimit, type PlannedJob, type SyncPlan } from './sync-up.ts';

export async function planSyncDown(
  ctx: { jamf: Pick<JcdsFilesApi, 'listJcdsFiles'> },
  data: SyncJobData,
  syncJobId: string,
  cache: HashCache,
  signal?: AbortSignal,
): Promise<SyncPlan> {
  const dir = resolve(data.dir);
  const dirStat = await stat(dir).catch(() => undefined);
  if (!dirStat?.isDirectory()) {
    throw new AppError(
      'DESTINATION_INVALID',
      `The sync folder ${dir} ${dirStat ? 'is not a folder' : 'does not exist'}: create it (mkdir -p ${JSON.stringify(dir)}) or give an existing folder.`,
    );
  }
  const files = await listJcdsFilesOrUnavailable(ctx.jamf, signal);
  const counts = emptyCounts(files.length);
  const jobs: PlannedJob[] = [];
  await mapLimit(files, 2, async f => {
    signal?.throwIfAborted();
    try {
      validateFileName(f.fileName);
      const dest = join(dir, f.fileName);
      const st = await stat(dest).catch(() => undefined);
      if (st?.isDirectory())
        throw new AppError(
          'DESTINATION_INVALID',
          `${dest} is a folder: rename it so that ${f.fileName} can be downloaded.`,
        );
      let overwrite = false;
      if (st) {
        overwrite = true;
        if (st.size === f.length) {
          const local = await cache.hash(
            dest,
            { size: st.size, mtimeMs: st.mtimeMs },
            counts,
            signal,
            ['md5', 'sha3_512'],
          );
          const same = f.md5
            ? f.md5.toLowerCase() === local.md5
            : f.sha3
              ? f.sha3.toLowerCase() === local.sha3_512
              : true;
          if (same) {
            counts.unchanged++;
            return;
          }
        }
      }
      const download: DownloadJobData = { fileName: f.fileName, dest, overwrite, syncJobId };
      jobs.push({
        queue: 'download',
        fileName: f.fileName,
        data: download,
        opts: { deduplication: { id: downloadDedupId(dest) } },
      });
    } catch (err) {
      if (signal?.aborted) throw err;
      const reason =
        err instanceof AppError ? `[${err.code}] ${describeError(err)}` : describeError(err);
      counts.failures.push({ fileName: f.fileName, reason });
    }
  });
  jobs.sort((a, b) => a.fileName.localeCompare(b.fileName));
  return { counts, jobs };
}
