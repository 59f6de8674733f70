/**
 * Starts the BullMQ workers of one process: upload (step jobs), upload-part (part
 * children and hash jobs), download and sync. Every Worker gets an 'error' listener; a lost lock
 * cancels the job's work (the processor's AbortSignal), because BullMQ does not stop a
 * processor whose lock renewal failed and another worker may already own the job.
 * `close()` drains gracefully: jobs in flight finish within a grace period, after which
 * they are cancelled and left for another worker to pick up.
 */
import { Readable } from 'node:stream';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { Worker, type Processor, type Queue, type WorkerOptions } from 'bullmq';
import { Redis } from 'ioredis';
import { systemClock } from '../shared/clock.ts';
import type { Config } from '../shared/config.ts';
import { AppError } from '../shared/errors.ts';
import { createS3Client } from '../shared/s3/client.ts';
import { JamfClient } from '../shared/jamf/client.ts';
import { createLogger, type Logger } from '../shared/logger.ts';
import { redisOptions } from '../shared/queues/connection.ts';
import { openQueue } from '../shared/queues/factory.ts';
import { QUEUE_PREFIX, QUEUES, type QueueName } from '../shared/queues/names.ts';
import { MultipartEngine } from '../shared/upload/multipart.ts';
import { UploadPartJobs } from '../shared/upload/part-queue.ts';
import { S3Sessions } from '../shared/upload/s3-sessions.ts';
import { CredentialVault, fromJcds, missingVault } from '../shared/vault.ts';
import { JobFences } from './fence.ts';
import { FleetSecret, fleetKeys } from '../shared/fleet-secret.ts';
import { WorkerFitness } from './fitness.ts';
import { RedisFleetMetrics, type FleetMetrics } from './metrics.ts';
import { downloadProcessor } from './processors/download.ts';
import { syncProcessor } from './processors/sync.ts';
import { partBuffers, partProcessor } from './processors/upload-part.ts';
import { uploadProcessor } from './processors/upload/index.ts';
import { checkJamfAtStart, WorkerPreflight } from './preflight.ts';
import { checkEvictionPolicy } from './redis-check.ts';

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

/**
 * After the grace period (or a close that Redis does not answer), how long closing may
 * still take: connections are dropped, not waited for. A worker's shutdown takes at most
 * graceMs + 2 × SHUTDOWN_FORCE_MS (the BullMQ workers, then the queues and the Jamf client);
 * worker/main.ts exits by force past that.
 */
export const SHUTDOWN_FORCE_MS = 2_000;

/** True when the promise settled within ms (its outcome is the caller's business). */
async function settlesWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<false>(resolve => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([
      p.then(
        () => true,
        () => true,
      ),
      late,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Runs one PutObject (CRC32 checksum, signed) through the S3 client's whole middleware
 * stack, answered in-process: nothing leaves the machine, and the credentials are
 * placeholders, not a secret. The SDK's first request costs about 70 ms of CPU (endpoint
 * rules, signer, serializers, checksum middleware: lazily built and not yet compiled); paid
 * here, before "worker ready", the first upload of a fresh worker does not wait for it.
 */
export async function warmS3(endpoint: string | undefined): Promise<void> {
  const client = createS3Client({
    region: 'us-east-1',
    endpoint: endpoint ?? 'http://127.0.0.1:9',
    credentials: { accessKeyId: 'WARMUP', secretAccessKey: 'warm-up-placeholder' },
  });
  client.middlewareStack.add(
    () => async () => ({
      response: { statusCode: 200, headers: { etag: '"0"' }, body: Readable.from([]) },
      output: { $metadata: {} },
    }),
    { step: 'finalizeRequest', priority: 'low', name: 'jcdsWarmUpAnswer' },
  );
  try {
    await client.send(
      new PutObjectCommand({
        Bucket: 'warm-up',
        Key: 'warm-up',
        Body: Buffer.alloc(1),
        ChecksumAlgorithm: 'CRC32',
      }),
    );
  } finally {
    client.destroy();
  }
}

export async function startWorker(options: StartWorkerOptions): Promise<WorkerHandle> {
  const { config } = options;
  const logger = options.logger ?? createLogger({ level: config.logLevel, name: 'jcds-worker' });
  const jamf = jamfClientFor(config, logger);
  const connection = redisOptions(config.redisUrl, 'worker');
  const redis = new Redis(connection);
  redis.on('error', err => logger.debug({ err }, 'redis connection error (reconnecting)'));
  // Before any job is taken: a Redis that may evict keys loses jobs (REDIS_EVICTION_POLICY).
  await checkEvictionPolicy(redis, config.redisUrl, config.allowRedisEviction, logger).catch(
    (err: unknown) => {
      redis.disconnect();
      throw err;
    },
  );
  // Before any job is taken: Jamf answers and accepts this worker's credentials, and its
  // fleet secret is the fleet's. A worker that cannot do jobs must not take any: it would
  // fail jobs healthy workers would publish (or poison the vault for them). Jamf first, so
  // a worker that cannot work does not define the fleet's secret either.
  const fleetSecret = config.fleetSecret
    ? new FleetSecret(redis, fleetKeys(config.fleetSecret, config.fleetSecretPrevious))
    : undefined;
  try {
    await checkJamfAtStart(jamf, logger);
    if (fleetSecret) {
      const check = await fleetSecret.ensure();
      logger.info(
        {
          verifier: check.created ? 'written' : 'matched',
          matchedVariable:
            check.matched === 'current' ? 'JCDS_FLEET_SECRET' : 'JCDS_FLEET_SECRET_PREVIOUS',
          verifierWrittenAt: check.record.writtenAt,
          verifierWrittenBy: check.record.writtenBy,
        },
        check.created
          ? "fleet secret: this worker set up the fleet's verifier"
          : "fleet secret matches the fleet's",
      );
    }
  } catch (err) {
    redis.disconnect();
    await jamf.close().catch(() => undefined);
    throw err;
  }
  const metrics = options.metrics ?? new RedisFleetMetrics(redis, logger);
  const fitness = new WorkerFitness({ redis, logger });

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
        previousSecret: config.fleetSecretPrevious,
        ...(fleetSecret ? { writeKey: fleetSecret.writeKey } : {}),
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
  // Every write on a job's behalf is fenced by its lock (fence.ts).
  const fences = new JobFences(redis);

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
        { config, jamf, engine, vault, parts, transport, metrics, clock, logger, fences, fitness },
        queueOf(QUEUES.upload),
      ) as Processor,
      opts: { concurrency: config.workerConcurrency, maxStalledCount: 3 },
    },
    {
      name: QUEUES.uploadPart,
      processor: partProcessor(
        { engine, redis, metrics, logger, fences, fitness, buffers: partBuffers(config) },
        partQueue,
      ) as Processor,
      opts: { concurrency: config.partConcurrency, maxStalledCount: 5 },
    },
    {
      name: QUEUES.download,
      processor: downloadProcessor(
        { jamf, redis, metrics, logger, fences, fitness, downloadDirs: config.downloadDirs },
        queueOf(QUEUES.download),
      ) as Processor,
      opts: { concurrency: config.workerConcurrency, maxStalledCount: 3 },
    },
    {
      // A sync job is short-lived per wake-up (it waits for its jobs in the delayed set).
      name: QUEUES.sync,
      processor: syncProcessor({
        jamf,
        redis,
        metrics,
        logger,
        fences,
        fitness,
        queueOf,
        downloadDirs: config.downloadDirs,
      }) as Processor,
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
  fitness.attach(workers);
  if (wanted.has(QUEUES.upload)) {
    // Paid before "worker ready", not by the first upload: the S3 client's first request;
    // and the preflight starts (kept for 10 minutes and shared with a job that asks
    // meanwhile; a failure is forgotten: the first upload tries again and fails with
    // its reason).
    await warmS3(config.s3Endpoint).catch((err: unknown) =>
      logger.debug({ err }, 'S3 warm-up failed (the first upload pays for it)'),
    );
    void transport.choose().catch(() => undefined);
  }
  await Promise.all(workers.map(w => w.waitUntilReady()));
  fitness.start();
  logger.info({ queues: workers.map(w => w.name), pid: process.pid }, 'worker ready');

  let closing: Promise<void> | undefined;
  const close = (graceMs = 30_000): Promise<void> =>
    (closing ??= (async () => {
      const graceful = Promise.allSettled(workers.map(w => w.close()));
      if (!(await settlesWithin(graceful, graceMs))) {
        logger.warn(
          { graceMs },
          'grace period over: cancelling jobs in flight; they will be picked up again',
        );
        for (const w of workers) w.cancelAllJobs('worker shutting down');
        // BullMQ's close(true) now would return the close already under way, and that one
        // waits on Redis (a QUIT queued until Redis answers, the fetch loop's retry delay):
        // with Redis unreachable it never ends. Dropping the connections ends those waits.
        for (const w of workers) void w.disconnect().catch(() => undefined);
      }
      const queuesClosed = Promise.allSettled([...queues.values()].map(x => x.close()));
      if (!(await settlesWithin(Promise.all([graceful, queuesClosed]), SHUTDOWN_FORCE_MS))) {
        logger.warn(
          { forceMs: SHUTDOWN_FORCE_MS },
          'Redis did not answer while closing: connections dropped',
        );
        for (const w of workers) void w.disconnect().catch(() => undefined);
        for (const q of queues.values()) void q.disconnect().catch(() => undefined);
      }
      sessions.close();
      await settlesWithin(fitness.close(), SHUTDOWN_FORCE_MS);
      await settlesWithin(
        jamf.close().catch(() => undefined),
        SHUTDOWN_FORCE_MS,
      );
      redis.disconnect();
    })());
  return { workers, close };
}
