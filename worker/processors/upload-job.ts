/** Helpers shared by the upload step functions. */
import type { Job } from 'bullmq';
import type { Logger } from '../../shared/logger.ts';
import type { UploadJobData, UploadResult } from '../../shared/queues/jobs.ts';
import type { WorkerContext } from '../context.ts';

export type UploadJob = Job<UploadJobData, UploadResult>;

export interface StepArgs {
  ctx: WorkerContext;
  job: UploadJob;
  token: string | undefined;
  log: Logger;
  signal: AbortSignal | undefined;
}

/** Persists a step transition (the checkpoint) before anything depends on it. */
export async function saveStep(job: UploadJob, patch: Partial<UploadJobData>): Promise<void> {
  await job.updateData({ ...job.data, ...patch });
}

export async function progress(job: UploadJob, bytesSent: number, phase: string): Promise<void> {
  await job.updateProgress({ bytesSent, total: job.data.size, phase });
}

export function vaultKeyFor(job: UploadJob): string {
  return `upload-${job.id}`;
}
