/**
 * Job data and return values for every queue. Job data is stored in clear text in
 * Redis and shown on the dashboard: it holds paths, names, sizes and checkpoints, never
 * a secret. Temporary S3 credentials live in the vault (shared/vault.ts), referenced by
 * `vaultKey`.
 */
import type { Transport } from '../config.ts';

export type IfExists = 'skip' | 'replace' | 'fail';
export type ConcreteTransport = Exclude<Transport, 'auto'>;

/** Package metadata a producer may set; the rest is defaulted by the Jamf client. */
export interface PackageMetadata {
  packageName?: string;
  category?: string;
  priority?: number;
  info?: string;
  notes?: string;
  rebootRequired?: boolean;
  osRequirements?: string;
}

export interface FileHashes {
  sha3_512: string;
  md5: string;
}

export type UploadStep = 'prepare' | 'stage' | 'complete' | 'finalize';

export interface MultipartState {
  uploadId: string;
  bucket: string;
  key: string;
  region: string;
  partSize: number;
  partCount: number;
  vaultKey: string;
}

export interface UploadJobData {
  path: string;
  fileName: string;
  size: number;
  mtimeMs: number;
  ifExists: IfExists;
  package: PackageMetadata;
  /** A per-job transport override; otherwise the worker's JCDS_TRANSPORT. */
  transport?: Transport;
  /** Unique per enqueue request (tells a deduplicated add from a new one). */
  requestId: string;
  /** Set by the producer (sync jobs pass the hash they already know). */
  hashes?: FileHashes;
  // --- step state (checkpoint) ---
  step: UploadStep;
  chosenTransport?: ConcreteTransport;
  existingPackageId?: string;
  /** The package record this upload writes (known from stage or finalize on). */
  packageId?: string;
  /** True when this job created that record (so a failure for good removes it again). */
  packageCreated?: boolean;
  multipart?: MultipartState;
  /** Set once the bytes are stored (object exists / package upload answered). */
  stored?: boolean;
  bytesSent?: number;
  startedAt?: number;
}

export type UploadOutcome = 'created' | 'replaced' | 'unchanged';

export interface UploadResult {
  packageId: string;
  fileName: string;
  size: number;
  sha3_512: string;
  md5: string;
  transport: ConcreteTransport;
  bytesSent: number;
  durationMs: number;
  outcome: UploadOutcome;
}

export interface PartJobData {
  uploadJobId: string;
  fileName: string;
  path: string;
  size: number;
  mtimeMs: number;
  bucket: string;
  key: string;
  region: string;
  uploadId: string;
  vaultKey: string;
  partNumber: number;
  offset: number;
  length: number;
}

export interface PartResult {
  partNumber: number;
  etag: string;
  size: number;
}

export interface HashJobData {
  uploadJobId: string;
  fileName: string;
  path: string;
  size: number;
  mtimeMs: number;
}

export type HashResult = FileHashes & { kind: 'hash' };

export interface DownloadJobData {
  fileName: string;
  /** The final path of the file (the folder already joined with the file name). */
  dest: string;
  overwrite: boolean;
  /** Checkpoint: [start, end] inclusive byte ranges already written to `<dest>.partial`. */
  doneRanges?: Array<[number, number]>;
  size?: number;
  md5?: string;
  sha3?: string;
  startedAt?: number;
}

export interface DownloadResult {
  path: string;
  fileName: string;
  size: number;
  md5: string;
  sha3_512?: string;
  verified: boolean;
  bytesFetched: number;
  durationMs: number;
}

export type SyncDirection = 'up' | 'down';

export interface SyncJobData {
  dir: string;
  direction: SyncDirection;
  options?: { ifExists?: IfExists; category?: string; wait?: boolean };
  /** The schedule that produced this run, if any. */
  schedule?: string;
}

export interface SyncResult {
  direction: SyncDirection;
  dir: string;
  uploaded: number;
  downloaded: number;
  unchanged: number;
  failed: number;
  failures: Array<{ fileName: string; reason: string }>;
  jobs: string[];
}
