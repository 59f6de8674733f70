/**
 * Starts the BullMQ workers of one process: upload (step jobs), upload-part (part
 * children and hash jobs), download and sync. Every Worker gets an 'error' listener; a lost lock
 * cancels the job's work (the processor's AbortSignal), because BullMQ does not stop a
 * processor whose lock renewal failed and another worker may already own the job.
 * `close()` drains gracefully: jobs in flight finish within a grace period, after which
 * they are cancelled and left for another worker to pick up.
 */
import { Queue, Worker, type Processor, type WorkerOptions } from 'bullmq';
import { Redis } from 'ioredis';
import type { Config } from '../shared/config.ts';
import { createLogger, type Logger } from '../shared/logger.ts';
import { redisOptions } from '../shared/queues/connection.ts';
import { QUEUE_PREFIX, QUEUES, type QueueName } from '../shared/queues/names.ts';
import { WorkerContext, type FleetMetrics } from './context.ts';
import { RedisFleetMetrics } from './metrics.ts';
import { partProcessor } from './processors/part.ts';
import { uploadProcessor } from './processors/upload.ts';
import { extraProcessors } from './processors/registry.ts';

export interface StartWorkerOptions {
  config: Config;
  logger?: Logger;
  metrics?: FleetMetrics;
  /** Which queues this process works on (default: all). */
  queues?: QueueName[];
}

export interface WorkerHandle {
  ctx: WorkerContext;
  workers: Worker[];
  /** Graceful: waits up to graceMs for jobs in flight, then cancels them. */
  close(graceMs?: number): Promise<void>;
}

export async function startWorker(options: StartWorkerOptions): Promise<WorkerHandle> {
  const { config } = options;
  const logger = options.logger ?? createLogger({ level: config.logLevel, name: 'jcds-worker' });
  const connection = redisOptions(config.redisUrl, 'worker');
  const redis = new Redis(connection);
  redis.on('error', err => logger.debug({ err }, 'redis connection error (reconnecting)'));
  const ctx = new WorkerContext(
    config,
    logger,
    redis,
    options.metrics ?? new RedisFleetMetrics(redis, logger),
  );

  const queueOf = (name: string): Queue => {
    const q = new Queue(name, { connection: redis, prefix: QUEUE_PREFIX });
    q.on('error', err => logger.warn({ err, queue: name }, 'queue error'));
    return q;
  };
  const queues = new Map<string, Queue>(Object.values(QUEUES).map(n => [n, queueOf(n)]));
  const q = (name: string): Queue => queues.get(name)!;
  ctx.partQueue = q(QUEUES.uploadPart);
  // A fleet-wide cap on parts in flight (every worker process agrees on the same value).
  await ctx.partQueue.setGlobalConcurrency(config.globalPartConcurrency);

  const common: Omit<WorkerOptions, 'concurrency'> = {
    connection,
    prefix: QUEUE_PREFIX,
    lockDuration: config.lockDurationMs,
    stalledInterval: config.stalledIntervalMs,
    // A manual rate limit (queue.rateLimit on 429/SlowDown) needs a limiter configured.
    limiter: { max: 100_000, duration: 1_000 },
    metrics: { maxDataPoints: 60 * 24 * 7 },
  };
  const table: Array<{ name: QueueName; processor: Processor; opts: Partial<WorkerOptions> }> = [
    {
      name: QUEUES.upload,
      processor: uploadProcessor(ctx, q(QUEUES.upload)),
      opts: { concurrency: config.workerConcurrency, maxStalledCount: 3 },
    },
    {
      name: QUEUES.uploadPart,
      processor: partProcessor(ctx, q(QUEUES.uploadPart)),
      opts: { concurrency: config.partConcurrency, maxStalledCount: 5 },
    },
    ...extraProcessors(ctx, q).map(e => ({
      ...e,
      opts: { concurrency: config.workerConcurrency, maxStalledCount: 3, ...e.opts },
    })),
  ];
  const wanted = new Set(options.queues ?? Object.values(QUEUES));
  const workers: Worker[] = [];
  for (const entry of table) {
    if (!wanted.has(entry.name)) continue;
    const w = new Worker(entry.name, entry.processor, { ...common, ...entry.opts });
    w.on('error', err => logger.warn({ err, queue: entry.name }, 'worker error'));
    w.on('lockRenewalFailed', ids => {
      logger.warn(
        { queue: entry.name, jobIds: ids },
        'lock renewal failed; cancelling the work (another worker may take over)',
      );
      for (const id of ids) w.cancelJob(id, 'lock lost');
    });
    w.on('stalled', jobId =>
      logger.warn({ queue: entry.name, jobId }, 'stalled job moved back to wait'),
    );
    w.on('failed', (job, err) =>
      logger.info({ queue: entry.name, jobId: job?.id, reason: err.message }, 'job failed'),
    );
    workers.push(w);
  }
  await Promise.all(workers.map(w => w.waitUntilReady()));
  logger.info({ queues: workers.map(w => w.name), pid: process.pid }, 'worker ready');

  let closing: Promise<void> | undefined;
  const close = (graceMs = 30_000): Promise<void> =>
    (closing ??= (async () => {
      const graceful = Promise.all(workers.map(w => w.close()));
      const timer = setTimeout(() => {
        logger.warn(
          { graceMs },
          'grace period over: cancelling jobs in flight; they will be picked up again',
        );
        for (const w of workers) w.cancelAllJobs('worker shutting down');
        void Promise.all(workers.map(w => w.close(true)));
      }, graceMs);
      await graceful.finally(() => clearTimeout(timer));
      await Promise.allSettled([...queues.values()].map(x => x.close()));
      await ctx.close();
      redis.disconnect();
    })());
  return { ctx, workers, close };
}
