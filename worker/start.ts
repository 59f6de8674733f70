/**
 * Starts the BullMQ workers of one process: upload (step jobs), upload-part (part
 * children and hash jobs), download and sync. Every Worker gets an 'error' listener; a lost lock
 * cancels the job's work (the processor's AbortSignal), because BullMQ does not stop a
 * processor whose lock renewal failed and another worker may already own the job.
 * `close()` drains gracefully: jobs in flight finish within a grace period, after which
 * they are cancelled and left for another worker to pick up.
 */
import { Worker, type Processor, type Queue, type WorkerOptions } from 'bullmq';
import { Redis } from 'ioredis';
import { systemClock } from '../shared/clock.ts';
import type { Config } from '../shared/config.ts';
import { AppError } from '../shared/errors.ts';
import { JamfClient } from '../shared/jamf/client.ts';
import { createLogger, type Logger } from '../shared/logger.ts';
import { redisOptions } from '../shared/queues/connection.ts';
import { openQueue } from '../shared/queues/factory.ts';
import { QUEUE_PREFIX, QUEUES, type QueueName } from '../shared/queues/names.ts';
import { MultipartEngine } from '../shared/upload/multipart.ts';
import { UploadPartJobs } from '../shared/upload/part-queue.ts';
import { S3Sessions } from '../shared/upload/s3-sessions.ts';
import { CredentialVault, fromJcds, missingVault } from '../shared/vault.ts';
import { RedisFleetMetrics, type FleetMetrics } from './metrics.ts';
import { downloadProcessor } from './processors/download.ts';
import { syncProcessor } from './processors/sync.ts';
import { partProcessor } from './processors/upload-part.ts';
import { uploadProcessor } from './processors/upload/index.ts';
import { WorkerPreflight } from './preflight.ts';

export interface StartWorkerOptions {
  config: Config;
  logger?: Logger;
  metrics?: FleetMetrics;
  /** Which queues this process works on (default: all). */
  queues?: QueueName[];
}

export interface WorkerHandle {
  workers: Worker[];
  /** Graceful: waits up to graceMs for jobs in flight, then cancels them. */
  close(graceMs?: number): Promise<void>;
}

/** The Jamf client of this process (one, so the 5-request cap and the token are per process). */
function jamfClientFor(config: Config, logger: Logger): JamfClient {
  const { jamfUrl, jamfAuth } = config;
  if (!jamfUrl || !jamfAuth) {
    throw new AppError(
      'CONFIG_INVALID',
      'The worker needs JAMF_URL and Jamf credentials (JAMF_CLIENT_ID + JAMF_CLIENT_SECRET, or JAMF_USERNAME + JAMF_PASSWORD).',
    );
  }
  return new JamfClient({
    baseUrl: jamfUrl,
    auth: jamfAuth,
    concurrency: config.jamfConcurrency,
    logger: logger.child({ component: 'jamf' }),
  });
}

export async function startWorker(options: StartWorkerOptions): Promise<WorkerHandle> {
  const { config } = options;
  const logger = options.logger ?? createLogger({ level: config.logLevel, name: 'jcds-worker' });
  const jamf = jamfClientFor(config, logger);
  const connection = redisOptions(config.redisUrl, 'worker');
  const redis = new Redis(connection);
  redis.on('error', err => logger.debug({ err }, 'redis connection error (reconnecting)'));
  const metrics = options.metrics ?? new RedisFleetMetrics(redis, logger);

  const queues = new Map<QueueName, Queue>(
    Object.values(QUEUES).map(name => {
      const q = openQueue(name, redis);
      q.on('error', err => logger.warn({ err, queue: name }, 'queue error'));
      return [name, q];
    }),
  );
  const queueOf = (name: string): Queue => {
    const q = queues.get(name as QueueName);
    if (!q) throw new AppError('INTERNAL', `no queue named ${JSON.stringify(name)}`);
    return q;
  };
  const partQueue = queueOf(QUEUES.uploadPart);
  // A fleet-wide cap on parts in flight (every worker process agrees on the same value).
  await partQueue.setGlobalConcurrency(config.globalPartConcurrency);

  // The collaborators, built once: each processor gets the ones it uses.
  const vault = config.fleetSecret
    ? new CredentialVault({
        redis,
        secret: config.fleetSecret,
        renew: async () => {
          const renewed = fromJcds(await jamf.renewJcdsCredentials());
          metrics.credentialRenewal();
          return renewed;
        },
      })
    : missingVault();
  const sessions = new S3Sessions({ vault, endpoint: config.s3Endpoint });
  const engine = new MultipartEngine(sessions, logger);
  const clock = systemClock;
  const parts = new UploadPartJobs(
    partQueue,
    { attempts: config.partAttempts, delayMs: config.retryDelayMs },
    clock,
  );
  const transport = new WorkerPreflight(config.transport, jamf, logger);

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
      processor: uploadProcessor(
        { config, jamf, engine, vault, parts, transport, metrics, clock, logger },
        queueOf(QUEUES.upload),
      ) as Processor,
      opts: { concurrency: config.workerConcurrency, maxStalledCount: 3 },
    },
    {
      name: QUEUES.uploadPart,
      processor: partProcessor({ engine, redis, metrics, logger }, partQueue) as Processor,
      opts: { concurrency: config.partConcurrency, maxStalledCount: 5 },
    },
    {
      name: QUEUES.download,
      processor: downloadProcessor(
        { jamf, redis, metrics, logger },
        queueOf(QUEUES.download),
      ) as Processor,
      opts: { concurrency: config.workerConcurrency, maxStalledCount: 3 },
    },
    {
      // A sync job is short-lived per wake-up (it waits for its jobs in the delayed set).
      name: QUEUES.sync,
      processor: syncProcessor({ jamf, redis, metrics, logger, queueOf }) as Processor,
      opts: { concurrency: config.workerConcurrency, maxStalledCount: 3 },
    },
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
      sessions.close();
      await jamf.close().catch(() => undefined);
      redis.disconnect();
    })());
  return { workers, close };
}
