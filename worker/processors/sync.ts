/**
 * The `sync` processor: a folder against Jamf, up (publish new and changed packages) or
 * down (fetch missing and different JCDS files). A step job (its step in its data):
 *
 *   plan  take the folder's lock (or finish at once as skipped: another run of the same
 *         folder and direction is active); compare (sync-up.ts / sync-down.ts); enqueue
 *         the upload or download jobs; save their ids; → wait
 *   wait  read the outcome of the jobs not finished yet; while some are running, move
 *         itself back to delayed for a second or more (DelayedError) instead of holding a
 *         worker slot and a lock renewal for hours; when all are done, release the lock
 *         and return the summary.
 *
 * Why polling rather than parent/child flows: upload jobs are deduplicated by file name
 * (an upload already in flight is returned instead of a new one), and a deduplicated add
 * does not become a child of the sync job, so a parent would not wait for it. Polling the
 * ids we got back covers both cases the same way, and the uploads keep their own
 * children (parts) without a nested-flow corner case (bullmq #3235, #3122).
 */
import { resolve } from 'node:path';
import { DelayedError, type Job, type Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { checkDownloadFolder } from '../../shared/download/destination.ts';
import type { JamfClient } from '../../shared/jamf/client.ts';
import type { Logger } from '../../shared/logger.ts';
import type { SyncJobData, SyncResult } from '../../shared/queues/jobs.ts';
import { QUEUES } from '../../shared/queues/names.ts';
import { defineProcessor, type Run } from '../failure-policy.ts';
import type { FitnessHook } from '../fitness.ts';
import type { LockFences } from '../fence.ts';
import type { FleetMetrics } from '../metrics.ts';
import { planSyncDown } from './sync-down.ts';
import { HashCache } from './sync-hash-cache.ts';
import { SyncLock } from './sync-lock.ts';
import { emptyResult, enqueuePlanned, pollTracked, summarize } from './sync-track.ts';
import { planSyncUp } from './sync-up.ts';

export type SyncJob = Job<SyncJobData, SyncResult>;

export interface SyncDeps {
  jamf: Pick<JamfClient, 'listPackages' | 'listJcdsFiles'>;
  redis: Redis;
  metrics: FleetMetrics;
  logger: Logger;
  fences: LockFences;
  fitness?: FitnessHook;
  /** The queues a sync enqueues into and follows (upload, download). */
  queueOf(name: string): Queue;
  /** JCDS_DOWNLOAD_DIRS: a sync down into another folder is refused at once. */
  downloadDirs?: readonly string[];
}

/** How long a waiting sync sleeps between two looks at its jobs. */
export function pollDelayMs(elapsedMs: number): number {
  if (elapsedMs < 2 * 60_000) return 1_000;
  if (elapsedMs < 30 * 60_000) return 3_000;
  return 10_000;
}

async function runSync(
  ctx: SyncDeps,
  job: SyncJob,
  lock: SyncLock,
  { token, signal, log, lock: jobLock }: Run,
): Promise<SyncResult> {
  const { queueOf } = ctx;
  if ((job.data.step ?? 'plan') === 'plan') {
    // Job data is input: a sync down writes only where downloads may go (not file by file).
    if (job.data.direction === 'down' && ctx.downloadDirs)
      await checkDownloadFolder(
        resolve(job.data.dir),
        ctx.downloadDirs,
        `The sync down folder ${job.data.dir}`,
      );
    const started = job.data.startedAt ?? Date.now();
    const got = await lock.acquire();
    if (!got.acquired) {
      const skipped = `a sync ${job.data.direction} of ${job.data.dir} is already running (job ${got.holder ?? 'unknown'}): this run did nothing`;
      await job.log(`skipped: ${skipped}`);
      log.info({ holder: got.holder }, 'sync skipped: another run of this folder is active');
      return { ...emptyResult(job.data, Date.now() - started), skipped };
    }
    const cache = new HashCache(ctx.redis, job.data.dir);
    const plan =
      job.data.direction === 'up'
        ? await planSyncUp(ctx, job.data, cache, signal)
        : await planSyncDown(ctx, job.data, String(job.id), cache, signal);
    // The folder's hash cache keeps only the files still in it (bounded by the folder).
    const hashCachePruned = await cache.prune().catch((err: unknown) => {
      log.warn({ err }, 'could not prune the hash cache of the folder');
      return 0;
    });
    const tracked = await enqueuePlanned(queueOf, plan.jobs);
    const c = plan.counts;
    await job.log(
      `planned: ${c.considered} files, ${c.unchanged} unchanged, ${tracked.length} ${job.data.direction === 'up' ? 'uploads' : 'downloads'} enqueued, ${c.failures.length} refused; hashes computed ${c.hashesComputed}, from cache ${c.hashCacheHits}`,
    );
    log.info(
      {
        considered: c.considered,
        unchanged: c.unchanged,
        enqueued: tracked.length,
        hashesComputed: c.hashesComputed,
        hashCacheHits: c.hashCacheHits,
        hashCachePruned,
      },
      'sync planned',
    );
    await jobLock.saveData({ ...job.data, step: 'wait', startedAt: started, counts: c, tracked });
  } else if (!(await lock.extend())) {
    log.warn('the sync lock lapsed while this run waited; it carries on following its jobs');
  }

  const tracked = job.data.tracked ?? [];
  if (await pollTracked(queueOf, tracked)) await jobLock.saveData({ ...job.data, tracked });
  const finished = tracked.filter(t => t.state !== undefined).length;
  await job.updateProgress({ done: finished, total: tracked.length });
  const started = job.data.startedAt ?? Date.now();
  if (finished < tracked.length) {
    if (!token) throw new Error('the sync job has no lock token: it cannot wait for its jobs');
    await job.moveToDelayed(Date.now() + pollDelayMs(Date.now() - started), token);
    throw new DelayedError();
  }
  await lock.release();
  const result = summarize(job.data, Date.now() - started);
  await job.log(
    `done: ${result.uploaded} uploaded, ${result.downloaded} downloaded, ${result.unchanged} unchanged, ${result.failed} failed`,
  );
  log.info(
    {
      uploaded: result.uploaded,
      downloaded: result.downloaded,
      unchanged: result.unchanged,
      failed: result.failed,
    },
    'sync done',
  );
  return result;
}

function lockOf(deps: SyncDeps, job: SyncJob): SyncLock {
  return new SyncLock(deps.redis, job.data.direction, job.data.dir, String(job.id));
}

export function syncProcessor(deps: SyncDeps) {
  return defineProcessor<SyncJobData, SyncResult>(
    {
      queue: 'sync',
      rateLimit: deps.queueOf(QUEUES.sync),
      logFields: job => ({ direction: job.data.direction, dir: job.data.dir }),
      run: (job, run) => runSync(deps, job, lockOf(deps, job), run),
      // Failed for good: the folder is free for the next run.
      cleanup: job => lockOf(deps, job).release(),
    },
    deps,
  );
}
