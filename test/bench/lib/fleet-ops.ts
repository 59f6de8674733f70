/**
 * The fleet as a user drives it: Producer.upload (and download, when the producer has it)
 * into real worker processes, timed from the call until the job completed.
 */
import { performance } from 'node:perf_hooks';
import type { Producer } from '../../../producer/producer.ts';
import type { UploadResult } from '../../../shared/queues/jobs.ts';
import type { JobWatcher } from './jobs.ts';

export interface FleetUploadTiming {
  /** Enqueue → the object is complete in S3 (the job enters its `verifying` phase). */
  storedMs: number;
  /** Enqueue → job completed (package record written and Jamf's hash verified). */
  totalMs: number;
  result: UploadResult;
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
  };
}

interface DownloadCapable {
  download(req: {
    fileName: string;
    dest: string;
    overwrite?: boolean;
  }): Promise<{ jobId: string }>;
}

/** The producer's download method, when another helper has added it. */
export function producerDownload(producer: Producer): DownloadCapable['download'] | undefined {
  const p = producer as unknown as Partial<DownloadCapable>;
  return typeof p.download === 'function' ? p.download.bind(producer) : undefined;
}

export async function fleetDownload(
  producer: Producer,
  watcher: JobWatcher,
  fileName: string,
  dest: string,
): Promise<{ totalMs: number; result: unknown }> {
  const download = producerDownload(producer);
  if (!download) throw new Error('Producer has no download method yet');
  const t0 = performance.now();
  const { jobId } = await download({ fileName, dest, overwrite: true });
  const times = await watcher.wait(jobId);
  return { totalMs: (times.doneAt ?? performance.now()) - t0, result: times.returnvalue };
}
