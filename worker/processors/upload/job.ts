/**
 * What the upload steps share: the job's type, the narrow collaborators they are given
 * (built once in worker/start.ts), and the arguments each step gets.
 */
import type { Job } from 'bullmq';
import type { Clock } from '../../../shared/clock.ts';
import type { Config } from '../../../shared/config.ts';
import { identifiedFile } from '../../../shared/file-identity.ts';
import type { JamfClient } from '../../../shared/jamf/client.ts';
import type { UploadJobData, UploadResult } from '../../../shared/queues/jobs.ts';
import type { MultipartEngine } from '../../../shared/upload/multipart.ts';
import type { UploadPartJobs, UploadRef } from '../../../shared/upload/part-queue.ts';
import type { CredentialStore } from '../../../shared/vault.ts';
import type { Run } from '../../failure-policy.ts';
import type { FleetMetrics } from '../../metrics.ts';
import type { WorkerPreflight } from '../../preflight.ts';

export type UploadJob = Job<UploadJobData, UploadResult>;

/** The Jamf Pro calls an upload makes (a slice of JamfClient). */
export type PackagesApi = Pick<
  JamfClient,
  | 'findCategoryId'
  | 'findPackageByFileName'
  | 'getPackage'
  | 'createPackage'
  | 'updatePackage'
  | 'deletePackage'
  | 'uploadPackageFile'
  | 'createJcdsFile'
  | 'listJcdsFiles'
  | 'refreshJcdsInventory'
  | 'refreshCdpInventory'
>;

/** The multipart protocol calls the upload steps make (a slice of MultipartEngine). */
export type UploadEngine = Pick<
  MultipartEngine,
  'sessions' | 'create' | 'completeOrConfirm' | 'abort' | 'abortStrays' | 'release'
>;

/** The part queue calls the upload steps make (a slice of UploadPartJobs). */
export type PartJobs = Pick<
  UploadPartJobs,
  'addHash' | 'awaitHash' | 'hashFailure' | 'removeHash' | 'addMissingParts'
>;

export interface UploadDeps {
  config: Pick<Config, 'splitThreshold' | 'partSize' | 'verifyTimeoutMs'>;
  jamf: PackagesApi;
  engine: UploadEngine;
  vault: CredentialStore;
  parts: PartJobs;
  transport: Pick<WorkerPreflight, 'choose'>;
  metrics: FleetMetrics;
  clock: Clock;
}

export interface StepArgs {
  deps: UploadDeps;
  job: UploadJob;
  run: Run;
  /** Saves an intermediate checkpoint of this step (the step machine's one writer). */
  save(data: UploadJobData): Promise<void>;
}

export async function progress(job: UploadJob, bytesSent: number, phase: string): Promise<void> {
  await job.updateProgress({ bytesSent, total: job.data.size, phase });
}

/** The upload as its part queue jobs see it. */
export function uploadRef(job: UploadJob): UploadRef {
  const d = job.data;
  return { jobId: String(job.id), ...identifiedFile(d) };
}
