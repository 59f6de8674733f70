/**
 * An upload's jobs in the part queue: its part children (one S3 part each, their return
 * values the ETag checkpoints) and its whole-file hash job.
 *
 * The hash job (SHA-256, compared with the `sha256` Jamf computes for the record) is a job
 * of the part queue but not a child: as a child it held the CompleteMultipartUpload back
 * until it was done (when it was SHA3-512 at about 240 MiB/s a core, slower than sending). The object is
 * completed as soon as the parts are in, Jamf starts on the stored file meanwhile, and
 * `finalize` waits for the local hash (`awaitHash`) before it writes the package record.
 */
import { Job, type JobsOptions, type Queue } from 'bullmq';
import type { Clock } from '../clock.ts';
import { AppError, parseReason } from '../errors.ts';
import { identifiedFile, type IdentifiedFile } from '../file-identity.ts';
import { PART_JOB_OPTIONS } from '../queues/defaults.ts';
import type {
  FileHashes,
  HashJobData,
  HashResult,
  MultipartState,
  PartJobData,
  PartResult,
} from '../queues/jobs.ts';
import { hashJobId, hashJobName, parsePartJobId, partJobId, partJobName } from '../queues/names.ts';
import { allParts } from './part-plan.ts';

/**
 * The file an upload job publishes, as its part queue jobs need it: with the identity
 * recorded at enqueue, which every part and the hash job check (shared/file-identity.ts).
 */
export interface UploadRef extends IdentifiedFile {
  jobId: string;
}

/** A BullMQ parent: the upload job's id and its queue's qualified name. */
export interface ParentRef {
  id: string;
  queue: string;
}

export interface PartRetry {
  /** Attempts per part job (JCDS_PART_ATTEMPTS). */
  attempts: number;
  /** First retry delay (JCDS_RETRY_DELAY), doubling with jitter. */
  delayMs: number;
}

/** Codes a failed hash job passes on as they are; any other failure is worth a retry. */
const FILE_CODES = new Set(['FILE_CHANGED', 'FILE_NOT_FOUND', 'FILE_UNREADABLE']);

export class UploadPartJobs {
  private readonly queue: Queue;
  private readonly clock: Clock;
  private readonly options: JobsOptions;

  constructor(queue: Queue, retry: PartRetry, clock: Clock) {
    this.queue = queue;
    this.clock = clock;
    this.options = {
      ...PART_JOB_OPTIONS,
      attempts: retry.attempts,
      backoff: { type: 'exponential', delay: retry.delayMs, jitter: 0.3 },
    };
  }

  /** Adds the hash job unless it exists (a deterministic id makes a repeat a no-op). */
  async addHash(u: UploadRef): Promise<void> {
    const data: HashJobData = { uploadJobId: u.jobId, ...identifiedFile(u) };
    // LIFO: at the head of the queue, so it starts before the parts added after it.
    await this.queue.add(hashJobName(u.fileName), data, {
      ...this.options,
      jobId: hashJobId(u.jobId),
      lifo: true,
    });
  }

  /**
   * The file's hashes from the upload's hash job, waiting for it to finish (polling its
   * state, 50 ms growing to 500 ms). A hash job that is gone (removed with the finished
   * jobs of a busy queue before this read it) is added again, and so is one that completed
   * with an earlier version's result (SHA3-512 and MD5, no SHA-256). One that failed for
   * good is removed (so a retry of the upload hashes again) and its failure thrown with its
   * code.
   */
  async awaitHash(u: UploadRef, signal?: AbortSignal): Promise<FileHashes> {
    let delay = 50;
    const id = hashJobId(u.jobId);
    for (;;) {
      signal?.throwIfAborted();
      // State first, then the job: a job read while active has no return value yet, and
      // completed and failed are final, so a read after them sees the outcome.
      const state = await this.queue.getJobState(id);
      if (state === 'completed' || state === 'failed' || state === 'unknown') {
        const hashJob = await Job.fromId<HashJobData, HashResult>(this.queue, id);
        if (!hashJob) {
          // Gone (or never added): hash again.
          await this.addHash(u);
          continue;
        }
        if (state === 'failed') throw await this.takeFailure(hashJob, u.fileName);
        if (state === 'completed') {
          const r = hashJob.returnvalue as Partial<HashResult> | null | undefined;
          if (typeof r?.sha256 === 'string' && /^[0-9a-f]{64}$/.test(r.sha256))
            return { sha256: r.sha256 };
          if (!r || typeof r !== 'object')
            throw new AppError('INTERNAL', `${u.fileName}: the hash job returned nothing`);
          // An earlier version's result (SHA3-512 and MD5): hash the file again.
          await hashJob.remove();
          await this.addHash(u);
          continue;
        }
        // 'unknown' with the job present: added a moment ago; look again.
      }
      await this.clock.sleep(delay, signal);
      delay = Math.min(delay * 2, 500);
    }
  }

  /** The hash job's failure when it has failed for good already (else undefined). */
  async hashFailure(u: UploadRef): Promise<AppError | undefined> {
    const id = hashJobId(u.jobId);
    if ((await this.queue.getJobState(id)) !== 'failed') return undefined;
    const failed = await Job.fromId(this.queue, id);
    return failed ? this.takeFailure(failed, u.fileName) : undefined;
  }

  /** Removes the hash job unless it runs (then it just finishes). */
  async removeHash(uploadJobId: string): Promise<void> {
    await this.queue.remove(hashJobId(uploadJobId)).catch(() => undefined);
  }

  /** A failed hash job is removed, and its reason returned as an error with the same code. */
  private async takeFailure(hashJob: Job, fileName: string): Promise<AppError> {
    const { code, message } = parseReason(hashJob.failedReason ?? 'unknown reason');
    await hashJob.remove().catch(() => undefined);
    const text = `the hash of ${fileName} failed: ${message}`;
    return code !== undefined && FILE_CODES.has(code)
      ? new AppError(code as 'FILE_CHANGED', text)
      : new AppError('UPLOAD_INCOMPLETE', text);
  }

  /**
   * Adds the part children not done yet; returns how many parts are not done.
   *
   * With `resume` (the upload failed for good and was retried: its next run resumes), the
   * child failures the upload recorded first are taken back (`takeBackFailures`), so that
   * they do not fail the retried upload at once and only those parts are sent again.
   */
  async addMissingParts(
    parent: ParentRef,
    u: UploadRef,
    mp: MultipartState,
    done: ReadonlyMap<number, PartResult>,
    options: { resume?: boolean } = {},
  ): Promise<number> {
    if (options.resume) await this.takeBackFailures(parent, mp.round ?? 0);
    const opts = { ...this.options, parent, continueParentOnFailure: true };
    const adds: Array<{ name: string; data: PartJobData; opts: JobsOptions }> = [];
    for (const r of allParts(u.size, { partSize: mp.partSize, partCount: mp.partCount })) {
      if (done.has(r.partNumber)) continue;
      const data: PartJobData = {
        uploadJobId: u.jobId,
        ...identifiedFile(u),
        bucket: mp.bucket,
        key: mp.key,
        region: mp.region,
        uploadId: mp.uploadId,
        vaultKey: mp.vaultKey,
        ...(mp.checksumAlgorithm ? { checksumAlgorithm: mp.checksumAlgorithm } : {}),
        partNumber: r.partNumber,
        offset: r.offset,
        length: r.length,
      };
      adds.push({
        name: partJobName(u.fileName, r.partNumber, mp.partCount, mp.round ?? 0),
        data,
        opts: { ...opts, jobId: partJobId(u.jobId, r.partNumber, mp.round ?? 0) },
      });
    }
    // Adding an id that exists is a no-op for the job (a retried child is among them); BullMQ
    // only makes sure it is in the parent's dependencies (or processed, once completed).
    for (let i = 0; i < adds.length; i += 500) await this.queue.addBulk(adds.slice(i, i + 500));
    return adds.length;
  }

  /**
   * Takes back the child failures a failed upload recorded, when it is retried.
   *
   * A part child that fails for good with `continueParentOnFailure` leaves its reason in the
   * parent's `failed` hash (BullMQ's "ignored" children: getIgnoredChildrenFailures) and
   * wakes the parent, which fails with it. Retrying the parent (Job.retry, from the
   * dashboard or `jcds retry`) moves only the parent back to wait: the hash still holds the
   * old failure, and the part child is still failed. So, for each entry:
   * - a child that is still failed is retried with fresh attempts: Job.retry('failed')
   *   runs BullMQ's moveChildBackToParentDependencies, which deletes the entry and puts the
   *   child back into the parent's dependencies, so the parent waits for it again;
   * - an entry whose child is gone (removed with old failed jobs), is no longer failed or
   *   belongs to another round (another multipart upload) is deleted; addMissingParts adds
   *   the parts not done again.
   * Returns how many children were retried.
   */
  async takeBackFailures(parent: ParentRef, round = 0): Promise<number> {
    const parentKey = `${parent.queue}:${parent.id}`;
    const client = await this.queue.getBackend().client;
    const failures = await client.hgetall(`${parentKey}:failed`);
    let retried = 0;
    for (const childKey of Object.keys(failures)) {
      const id = childKey.slice(childKey.lastIndexOf(':') + 1);
      const ours =
        childKey.startsWith(`${this.queue.qualifiedName}:`) && parsePartJobId(id)?.round === round;
      const child = ours ? await Job.fromId(this.queue, id) : undefined;
      if (child && (await child.getState()) === 'failed') {
        await child.retry('failed', { resetAttemptsMade: true, resetAttemptsStarted: true });
        retried++;
      } else {
        await client.hdel(`${parentKey}:failed`, childKey);
      }
    }
    return retried;
  }
}

/** The part children done so far (their ETags, checkpointed in the parent's `processed`). */
export async function partsDone(parent: Job, round = 0): Promise<Map<number, PartResult>> {
  const values = await parent.getChildrenValues<PartResult>();
  const parts = new Map<number, PartResult>();
  for (const [key, v] of Object.entries(values)) {
    // Only this round's parts: an earlier round's ETags belong to another multipart upload.
    if (!v || !('partNumber' in v) || (parsePartJobId(key)?.round ?? 0) !== round) continue;
    parts.set(v.partNumber, v);
  }
  return parts;
}

/** The first child that failed for good (continueParentOnFailure woke the parent), if any. */
export async function firstFailedChild(
  parent: Job,
): Promise<{ child: string; partNumber: number | undefined; reason: string } | undefined> {
  const failed = await parent.getIgnoredChildrenFailures();
  const first = Object.entries(failed)[0];
  if (!first) return undefined;
  const [childKey, reason] = first;
  const child = childKey.split(':').pop() ?? childKey;
  return { child, partNumber: parsePartJobId(childKey)?.partNumber, reason };
}
