/**
 * Job data and return values for every queue. Job data is stored in clear text in
 * Redis and shown on the dashboard: it holds paths, names, sizes and checkpoints, never
 * a secret. Temporary S3 credentials live in the vault (shared/vault.ts), referenced by
 * `vaultKey`.
 */
import type { Transport } from '../config.ts';
import type { PartialFile } from '../download/destination.ts';
import type { DownloadFileResult } from '../download/downloader.ts';
import type { FileIdentity } from '../file-identity.ts';

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

/**
 * A local file's whole-file hashes (hex). SHA-256 always: it is compared with the `sha256`
 * Jamf computes for the package record (jamf-wire-2026.md 1). SHA3-512 only when a record
 * carried no `sha256` and its `hashValue` (SHA3_512) was compared instead; MD5 only when a
 * record had nothing else (sync up's skip-unchanged). Checkpoints of earlier versions hold
 * `{ sha3_512, md5 }` without `sha256`: they are hashed again (shared/upload/content.ts
 * `knownHashes`).
 */
export interface FileHashes {
  sha256: string;
  sha3_512?: string;
  md5?: string;
}

export interface MultipartState {
  uploadId: string;
  bucket: string;
  key: string;
  region: string;
  partSize: number;
  partCount: number;
  vaultKey: string;
  /** The send round this multipart upload belongs to (Prepared.resends when it began). */
  round?: number;
  /**
   * The flexible checksum the upload was created with (CreateMultipartUpload's
   * ChecksumAlgorithm, COMPOSITE): every part carries it and S3 checks it, and Complete
   * lists it for each part. Absent on uploads begun by versions that sent Content-MD5
   * instead: their parts keep Content-MD5 and Complete lists ETags only, as S3 requires of
   * an upload created without an algorithm (shared/upload/multipart.ts).
   */
  checksumAlgorithm?: PartChecksumAlgorithm;
}

/** The per-part flexible checksum (x-amz-checksum-crc32: zlib.crc32, native). */
export type PartChecksumAlgorithm = 'CRC32';

/**
 * What a producer enqueues: the file, its identity at enqueue (device, inode, size, mtime,
 * ctime: shared/file-identity.ts), and what to do with it.
 */
export interface UploadRequest extends FileIdentity {
  path: string;
  fileName: string;
  /** `path` is a symbolic link the producer followed on purpose (shared/file-identity.ts). */
  followSymlink?: boolean;
  ifExists: IfExists;
  package: PackageMetadata;
  /** A per-job transport override; otherwise the worker's JCDS_TRANSPORT. */
  transport?: Transport;
  /** Unique per enqueue request (tells a deduplicated add from a new one). */
  requestId: string;
  /** Set by the producer (sync jobs pass the hash they already know). */
  hashes?: FileHashes;
  startedAt?: number;
}

/** What `prepare` decided: every later step has these. */
export interface Prepared extends UploadRequest {
  chosenTransport: ConcreteTransport;
  startedAt: number;
  /** The package this upload replaces (ifExists=replace found one). */
  existingPackageId?: string;
  /** The package record this upload writes (known from stage or finalize on). */
  packageId?: string;
  /** True when this job created that record (so a failure for good removes it again). */
  packageCreated?: boolean;
  /**
   * On a replace: the `hashValue` (SHA3-512) the record held before this upload. Until the
   * record shows another one, it still describes the old file (jamf-wire-2026.md 2).
   */
  priorHash?: string;
  /** On a replace: the `sha256` the record held before this upload (if it had one). */
  priorSha256?: string;
  /** Times the bytes were sent again because Jamf reported they never landed. */
  resends?: number;
  /**
   * The hash Jamf showed with size "0" for the send that never landed (its `sha256`, or its
   * `hashValue` on a record without one): until the record shows something else, it still
   * describes that send, not the one after it.
   */
  lostHash?: string;
}

/**
 * The upload job's data: a union keyed by `step`, each step's checkpoint with the fields
 * that step needs (worker/processors/upload/ runs them; each returns the next one):
 *   prepare -> stage -> (complete: s3 multipart only) -> finalize.
 */
export type UploadJobData =
  | (UploadRequest & { step: 'prepare' })
  | (Prepared & { step: 'stage' })
  | (Prepared & { step: 'complete'; chosenTransport: 's3'; multipart: MultipartState })
  | (Prepared & {
      step: 'finalize';
      /** The bytes are stored (the object exists / the package upload answered). */
      stored: true;
      bytesSent: number;
    } & (
        | { hashes: FileHashes; multipart?: MultipartState }
        | { hashes?: undefined; multipart: MultipartState }
      ));

export type UploadStep = UploadJobData['step'];

/** The data of an upload job at one step. */
export type UploadAt<S extends UploadStep> = Extract<UploadJobData, { step: S }>;

export type UploadOutcome = 'created' | 'replaced' | 'unchanged';

export interface UploadResult {
  packageId: string;
  fileName: string;
  size: number;
  /** The local SHA-256, equal to the `sha256` Jamf computed for the stored file. */
  sha256: string;
  /**
   * The local SHA3-512: only when the record carried no `sha256` and its `hashValue` was
   * compared instead.
   */
  sha3_512?: string;
  transport: ConcreteTransport;
  bytesSent: number;
  durationMs: number;
  outcome: UploadOutcome;
}

export interface PartJobData extends FileIdentity {
  uploadJobId: string;
  fileName: string;
  path: string;
  followSymlink?: boolean;
  bucket: string;
  key: string;
  region: string;
  uploadId: string;
  vaultKey: string;
  partNumber: number;
  offset: number;
  length: number;
  /** MultipartState.checksumAlgorithm: absent means Content-MD5 (an earlier version's upload). */
  checksumAlgorithm?: PartChecksumAlgorithm;
}

export interface PartResult {
  partNumber: number;
  etag: string;
  size: number;
  /** The part's CRC32 (base64 of the big-endian 4 bytes) as S3 checked it, for Complete. */
  checksumCRC32?: string;
}

export interface HashJobData extends FileIdentity {
  uploadJobId: string;
  fileName: string;
  path: string;
  followSymlink?: boolean;
}

/** The hash job's result (results of earlier versions hold sha3_512 and md5 instead). */
export interface HashResult {
  kind: 'hash';
  sha256: string;
}

export interface DownloadJobData {
  fileName: string;
  /** The final path of the file (the folder already joined with the file name). */
  dest: string;
  overwrite: boolean;
  /** Checkpoint: [start, end] inclusive byte ranges already written to the temporary file. */
  doneRanges?: Array<[number, number]>;
  /**
   * Checkpoint: the temporary file this download created in the destination's folder (a
   * random name, and its device and inode), so a resumed attempt finds its own file again
   * and nothing else (shared/download/downloader.ts).
   */
  partial?: PartialFile;
  /** The JCDS file the checkpoint belongs to (size and hashes as Jamf listed them). */
  size?: number;
  md5?: string;
  sha3?: string;
  startedAt?: number;
  /** Set by sync down: the sync job that enqueued this download. */
  syncJobId?: string;
}

/**
 * A download job's result: the downloaded file (DownloadFileResult, whose fetchMs and
 * verifyTailMs are absent when nothing was fetched) plus the job's own fields.
 */
export interface DownloadResult
  extends
    Omit<DownloadFileResult, 'fetchMs' | 'verifyTailMs'>,
    Partial<Pick<DownloadFileResult, 'fetchMs' | 'verifyTailMs'>> {
  fileName: string;
  durationMs: number;
  /** Set when the destination already held exactly this file (nothing fetched). */
  alreadyPresent?: boolean;
}

export type SyncDirection = 'up' | 'down';

/** One job a sync enqueued, and its outcome once known. */
export interface SyncTrackedJob {
  jobId: string;
  fileName: string;
  /** The queue of the job: upload (sync up) or download (sync down). */
  queue: 'upload' | 'download';
  state?: 'completed' | 'failed';
  /** created | replaced | unchanged (uploads), downloaded (downloads). */
  outcome?: string;
  reason?: string;
}

/** What a sync counted while planning (kept in its data between wake-ups). */
export interface SyncPlanCounts {
  /** Files looked at (local files for up, JCDS files for down). */
  considered: number;
  unchanged: number;
  failures: Array<{ fileName: string; reason: string }>;
  hashesComputed: number;
  hashCacheHits: number;
  bytesHashed: number;
}

export interface SyncJobData {
  dir: string;
  direction: SyncDirection;
  options?: {
    ifExists?: IfExists;
    category?: string;
    wait?: boolean;
    /** sync up: follow symbolic links that lead out of the folder (not by default). */
    followSymlinks?: boolean;
  };
  /** The schedule that produced this run, if any. */
  schedule?: string;
  // --- step state (checkpoint) ---
  /** plan: compare and enqueue; wait: follow the enqueued jobs to their end. */
  step?: 'plan' | 'wait';
  startedAt?: number;
  counts?: SyncPlanCounts;
  tracked?: SyncTrackedJob[];
}

export interface SyncResult {
  direction: SyncDirection;
  dir: string;
  uploaded: number;
  downloaded: number;
  unchanged: number;
  failed: number;
  failures: Array<{ fileName: string; reason: string }>;
  /** Ids of the upload/download jobs this run enqueued (or found in flight). */
  jobs: string[];
  /** Set when the run did nothing because another run of the same folder was active. */
  skipped?: string;
  considered: number;
  /** Local files hashed (read) by this run. */
  hashesComputed: number;
  /** Local files whose hash came from the cache (path + size + mtime): not read. */
  hashCacheHits: number;
  bytesHashed: number;
  durationMs: number;
  schedule?: string;
}
