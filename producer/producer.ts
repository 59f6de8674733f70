/**
 * The typed library API that enqueues work. It validates before anything is enqueued,
 * and enqueuing the same fileName while an upload of it is in flight returns the
 * existing job (BullMQ deduplication keyed by the file name), so two producers never
 * start a second upload of one package.
 */
import { randomUUID } from 'node:crypto';
import type { Job, JobsOptions, Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { AppError } from '../shared/errors.ts';
import { identifiedFile } from '../shared/file-identity.ts';
import { checkUploadFile } from '../shared/files.ts';
import {
  connectProducer,
  describeRedisUrl,
  isConnectionError,
} from '../shared/queues/connection.ts';
import { openQueue } from '../shared/queues/factory.ts';
import type { IfExists, PackageMetadata, UploadJobData } from '../shared/queues/jobs.ts';
import {
  downloadJobName,
  jobDisplayName,
  parsePartJobId,
  QUEUES,
  syncJobName,
  uploadDedupId,
  uploadJobName,
} from '../shared/queues/names.ts';

export { uploadDedupId };
import type { Transport } from '../shared/config.ts';
import { buildDownloadJob, type DownloadRequest } from './download.ts';
import {
  addSchedule,
  listSchedules,
  removeSchedule,
  type ScheduleInfo,
  type ScheduleRequest,
} from './schedules.ts';
import { buildSyncJob, type SyncRequest } from './sync.ts';

export interface UploadRequest {
  path: string;
  /** The name in Jamf/JCDS; defaults to the file's base name. */
  fileName?: string;
  ifExists?: IfExists;
  package?: PackageMetadata;
  transport?: Transport;
  /** BullMQ priority (1 = highest). */
  priority?: number;
}

export interface Enqueued {
  jobId: string;
  fileName: string;
  size: number;
  /** False when an upload of this fileName was already in flight (its id is returned). */
  created: boolean;
}

/** A failed job sent back to its queue by `Producer.retry`. */
export interface Retried {
  queue: 'upload' | 'download' | 'sync';
  jobId: string;
  /** The job's name (`upload Office.pkg`). */
  name: string;
  /** The file name (upload, download) or the folder (sync). */
  label: string;
  size: number | undefined;
  /** Why it had failed (`[CODE] message`). */
  previousReason: string;
}

const RETRYABLE_QUEUES = [QUEUES.upload, QUEUES.download, QUEUES.sync] as const;

export interface ProducerOptions {
  redisUrl: string;
}

export class Producer {
  readonly connection: Redis;
  readonly queues: { upload: Queue; download: Queue; sync: Queue };

  private readonly redisUrl: string;

  private constructor(connection: Redis, redisUrl: string) {
    this.connection = connection;
    this.redisUrl = redisUrl;
    this.queues = {
      upload: openQueue(QUEUES.upload, connection),
      download: openQueue(QUEUES.download, connection),
      sync: openQueue(QUEUES.sync, connection),
    };
    for (const queue of Object.values(this.queues)) queue.on('error', () => undefined);
  }

  /** Connects to Redis (failing fast with REDIS_UNAVAILABLE) and returns a producer. */
  static async connect(options: ProducerOptions): Promise<Producer> {
    return new Producer(await connectProducer(options.redisUrl), options.redisUrl);
  }

  private async uploadJob(req: UploadRequest): Promise<{ data: UploadJobData; opts: JobsOptions }> {
    const file = await checkUploadFile(req.path, req.fileName);
    const ifExists = req.ifExists ?? 'skip';
    if (!['skip', 'replace', 'fail'].includes(ifExists)) {
      throw new AppError(
        'USAGE',
        `ifExists is ${JSON.stringify(ifExists)}: use skip, replace or fail.`,
      );
    }
    const data: UploadJobData = {
      // The identity the worker checks before it reads and before it publishes.
      ...identifiedFile(file),
      ifExists,
      package: req.package ?? {},
      step: 'prepare',
      requestId: randomUUID(),
      ...(req.transport ? { transport: req.transport } : {}),
    };
    const opts: JobsOptions = {
      deduplication: { id: uploadDedupId(file.fileName) },
      ...(req.priority !== undefined ? { priority: req.priority } : {}),
    };
    return { data, opts };
  }

  /** Validates one file and enqueues its upload; returns the job id. */
  async upload(req: UploadRequest): Promise<Enqueued> {
    const [result] = await this.uploadMany([req]);
    if (!result) throw new AppError('INTERNAL', 'enqueue returned nothing');
    return result;
  }

  /**
   * Validates every file first (nothing is enqueued if one is invalid), then enqueues
   * them in bulk. Duplicated names inside the batch are refused.
   */
  async uploadMany(reqs: UploadRequest[]): Promise<Enqueued[]> {
    const jobs = await Promise.all(reqs.map(r => this.uploadJob(r)));
    const seen = new Set<string>();
    for (const j of jobs) {
      if (seen.has(j.data.fileName)) {
        throw new AppError(
          'USAGE',
          `${j.data.fileName} is given twice in one batch: each JCDS file name can be uploaded once at a time.`,
        );
      }
      seen.add(j.data.fileName);
    }
    const out: Enqueued[] = [];
    const CHUNK = 500;
    for (let i = 0; i < jobs.length; i += CHUNK) {
      const slice = jobs.slice(i, i + CHUNK);
      const enqueued =
        out.length === 0
          ? 'nothing was enqueued'
          : `${out.length} of ${jobs.length} uploads were enqueued before it failed`;
      const added = await this.redis(enqueued, () =>
        this.queues.upload.addBulk(
          slice.map(j => ({ name: uploadJobName(j.data.fileName), data: j.data, opts: j.opts })),
        ),
      );
      // A deduplicated add returns the id of the upload already in flight; the request id
      // in the stored data tells whether the stored job is ours.
      const stored = await this.redis(
        `${out.length + added.length} of ${jobs.length} uploads were enqueued`,
        () => Promise.all(added.map(job => this.queues.upload.getJob(String(job.id)))),
      );
      for (const [k, job] of added.entries()) {
        const req = slice[k]!;
        out.push({
          jobId: String(job.id),
          fileName: req.data.fileName,
          size: req.data.size,
          created: (stored[k]?.data as UploadJobData | undefined)?.requestId === req.data.requestId,
        });
      }
    }
    return out;
  }

  /**
   * Checks a download (safe name, destination folder exists, no existing file unless
   * overwrite) and enqueues it; returns the job id. A download already in flight to the
   * same destination is returned instead of a second one.
   */
  async download(req: DownloadRequest): Promise<string> {
    const { data, opts } = await buildDownloadJob(req);
    const job = await this.redis('nothing was enqueued', () =>
      this.queues.download.add(downloadJobName(data.fileName), data, opts),
    );
    return String(job.id);
  }

  /** Checks the folder and enqueues one sync run (up or down); returns the job id. */
  async sync(req: SyncRequest): Promise<string> {
    const data = await buildSyncJob(req);
    const job = await this.redis('nothing was enqueued', () =>
      this.queues.sync.add(syncJobName(data.direction, data.dir), data),
    );
    return String(job.id);
  }

  /**
   * Retries a failed upload, download or sync job (`12`, or `upload:12` when ids collide
   * across queues) with its attempts reset: BullMQ's Job.retry('failed'). A failed upload
   * resumes where it stopped (its next run takes its failed part children back and sends
   * only the parts S3 does not hold: worker/processors/upload/complete.ts); a download
   * resumes from the ranges it fetched. JOB_NOT_FOUND when no such job exists (a part job
   * is retried with its upload), JOB_NOT_FAILED when the job is not failed.
   */
  async retry(ref: string): Promise<Retried> {
    const job = await this.redis('nothing was retried', () => this.findRetryable(ref));
    const state = await this.redis('nothing was retried', () => job.getState());
    const queue = job.queueName as Retried['queue'];
    const data = (job.data ?? {}) as Record<string, unknown>;
    const label = String(data['fileName'] ?? data['dir'] ?? job.name);
    const what = `${queue}:${String(job.id)} (${label})`;
    if (state !== 'failed') {
      throw new AppError(
        'JOB_NOT_FAILED',
        `${what} is ${state}, not failed: there is nothing to retry.`,
        { details: { queue, jobId: String(job.id), state } },
      );
    }
    const previousReason = job.failedReason || 'failed (no reason recorded)';
    try {
      await this.redis('nothing was retried', () =>
        job.retry('failed', { resetAttemptsMade: true, resetAttemptsStarted: true }),
      );
    } catch (err) {
      if (err instanceof AppError) throw err;
      // Another client retried or removed it between the read and the retry.
      throw new AppError(
        'JOB_NOT_FAILED',
        `${what} could not be retried: ${(err as Error).message}. See \`jcds status ${String(job.id)}\`.`,
        { cause: err },
      );
    }
    return {
      queue,
      jobId: String(job.id),
      name: jobDisplayName(queue, job.name, job.data),
      label,
      size: typeof data['size'] === 'number' ? data['size'] : undefined,
      previousReason,
    };
  }

  /** The upload, download or sync job `ref` names (QUEUE:ID, or an id looked up in each). */
  private async findRetryable(ref: string): Promise<Job> {
    const m = /^([a-z-]+):(.+)$/.exec(ref.trim());
    const id = m ? m[2]! : ref.trim();
    // A part or hash job of an upload (`12-p3`, `12-hash`): retried with its upload.
    const uploadOf =
      parsePartJobId(id)?.uploadJobId ?? (id.endsWith('-hash') ? id.slice(0, -5) : undefined);
    const partHint = uploadOf
      ? ` ${id} is a part job of upload ${uploadOf}: retry the upload (\`jcds retry upload:${uploadOf}\`), which sends the parts not done.`
      : '';
    if (m && !(RETRYABLE_QUEUES as readonly string[]).includes(m[1]!)) {
      throw new AppError(
        'USAGE',
        `${ref}: only upload, download and sync jobs can be retried.${partHint}`,
      );
    }
    const names = m ? [m[1] as Retried['queue']] : [...RETRYABLE_QUEUES];
    const found: Job[] = [];
    for (const name of names) {
      const job = await this.queues[name].getJob(id);
      if (job) found.push(job);
    }
    if (found.length > 1) {
      const failed: Job[] = [];
      for (const j of found) if ((await j.getState()) === 'failed') failed.push(j);
      if (failed.length === 1) return failed[0]!;
      throw new AppError(
        'USAGE',
        `${id} names a job in ${found.map(j => j.queueName).join(' and ')}: say which, e.g. \`jcds retry ${found[0]!.queueName}:${id}\`.`,
      );
    }
    if (found[0]) return found[0];
    throw new AppError(
      'JOB_NOT_FOUND',
      `No job ${JSON.stringify(ref)} in ${names.join(', ')}.${partHint || ' `jcds status` lists recent jobs; failed jobs are kept for 14 days (sync runs 30).'}`,
    );
  }

  /** Adds (or replaces, by name) a sync schedule: cron syntax, optional IANA time zone. */
  addSchedule(req: ScheduleRequest): Promise<ScheduleInfo> {
    return this.redis('the schedule was not saved', () => addSchedule(this.queues.sync, req));
  }

  listSchedules(): Promise<ScheduleInfo[]> {
    return this.redis('nothing was changed', () => listSchedules(this.queues.sync));
  }

  /** Removes a schedule and its pending run; USAGE error when no schedule has this name. */
  removeSchedule(name: string): Promise<void> {
    return removeSchedule(this.queues.sync, name);
  }

  /**
   * Runs a Redis operation; a lost connection becomes REDIS_UNAVAILABLE naming the URL and
   * saying what was and was not done, instead of ioredis's "Stream isn't writeable".
   */
  private async redis<T>(done: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof AppError || !isConnectionError(err)) throw err;
      throw new AppError(
        'REDIS_UNAVAILABLE',
        `Lost the connection to Redis at ${describeRedisUrl(this.redisUrl)} (${(err as Error).message}): ${done}. Check that redis-server is running, then enqueue again (uploads already in flight are not started twice).`,
        { cause: err },
      );
    }
  }

  async close(): Promise<void> {
    await Promise.allSettled(Object.values(this.queues).map(q => q.close()));
    this.connection.disconnect();
  }
}
