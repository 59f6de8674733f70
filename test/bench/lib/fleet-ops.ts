/**
 * The fleet as a user drives it: Producer.upload (and download, when the producer has it)
 * into real worker processes, timed from the call until the job completed.
 */
import { performance } from 'node:perf_hooks';
import { Job, type Queue } from 'bullmq';
import type { Producer } from '../../../producer/producer.ts';
import type { UploadResult } from '../../../shared/queues/jobs.ts';
import { hashJobId } from '../../../shared/queues/names.ts';
import type { JobWatcher } from './jobs.ts';

export interface FleetUploadTiming {
  /** Enqueue → the object is complete in S3 (the job enters its `verifying` phase). */
  storedMs: number;
  /** Enqueue → job completed (package record written and Jamf's hash verified). */
  totalMs: number;
  result: UploadResult;
  jobId: string;
}

export async function fleetUpload(
  producer: Producer,
  watcher: JobWatcher,
  path: string,
  fileName: string,
): Promise<FleetUploadTiming> {
  const t0 = performance.now();
  const { jobId } = await producer.upload({ path, fileName, ifExists: 'fail' });
  const times = await watcher.wait(jobId);
  const doneAt = times.doneAt ?? performance.now();
  return {
    storedMs: (times.storedAt ?? doneAt) - t0,
    totalMs: doneAt - t0,
    result: times.returnvalue as UploadResult,
    jobId,
  };
}

export async function fleetDownload(
  producer: Producer,
  watcher: JobWatcher,
  fileName: string,
  dest: string,
): Promise<{ totalMs: number; result: unknown }> {
  const t0 = performance.now();
  const jobId = await producer.download({ fileName, dest, overwrite: true });
  const times = await watcher.wait(jobId);
  return { totalMs: (times.doneAt ?? performance.now()) - t0, result: times.returnvalue };
}

/**
 * When the children of a multipart upload ran, in ms after the upload was enqueued (from
 * BullMQ's timestamps; the children ids are `<uploadJobId>-p<N>` and `<uploadJobId>-hash`).
 * Empty when the upload had no children (below the split threshold).
 */
export async function childTimeline(
  uploadQueue: Queue,
  partQueue: Queue,
  jobId: string,
): Promise<Record<string, number>> {
  const parent = await Job.fromId(uploadQueue, jobId);
  if (!parent) return {};
  const t0 = parent.timestamp;
  const out: Record<string, number> = {};
  const hash = await Job.fromId(partQueue, hashJobId(jobId));
  if (hash?.processedOn && hash.finishedOn) {
    out['hashStartMs'] = hash.processedOn - t0;
    out['hashEndMs'] = hash.finishedOn - t0;
  }
  let first = Infinity;
  let last = 0;
  for (let n = 1; ; n++) {
    const part = await Job.fromId(partQueue, `${jobId}-p${n}`);
    if (!part) break;
    if (part.processedOn) first = Math.min(first, part.processedOn - t0);
    if (part.finishedOn) last = Math.max(last, part.finishedOn - t0);
  }
  if (last > 0) {
    out['partsStartMs'] = first;
    out['partsEndMs'] = last;
  }
  return out;
}
