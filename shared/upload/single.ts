/**
 * The single-request upload of a small file (below the split threshold): lib-storage's
 * `Upload` over the upload's renewing S3 client, hashing the bytes (SHA-256, what Jamf's
 * record reports as `sha256`) as they stream, so the file is read once and a file that changes mid-upload is caught by
 * its hash. Above one part size lib-storage itself sends parts; an earlier attempt cut off
 * mid-way may have left such an upload open, which the caller aborts with abortStrays.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { PassThrough } from 'node:stream';
import { Upload } from '@aws-sdk/lib-storage';
import type { FileHashes } from '../queues/jobs.ts';
import { toS3AppError } from '../s3/errors.ts';
import type { ObjectTarget } from './multipart.ts';
import { MIN_PART_SIZE } from './part-plan.ts';
import type { S3Sessions } from './s3-sessions.ts';

export interface SingleUploadOptions {
  path: string;
  /**
   * Read through this open handle (the file checked to be the one enqueued:
   * shared/file-identity.ts) instead of opening `path`; the caller closes it.
   */
  handle?: FileHandle | undefined;
  /** For messages: the JCDS file name. */
  fileName: string;
  /** lib-storage's part size (raised to S3's 5 MiB minimum). */
  partSize: number;
  onProgress?: (loaded: number) => void;
  signal?: AbortSignal | undefined;
}

/** lib-storage's part size for a preferred one: never below S3's minimum. */
export function singlePartSize(preferred: number): number {
  return Math.max(preferred, MIN_PART_SIZE);
}

/** Sends the file as one object; returns the SHA-256 of the bytes that were sent. */
export async function uploadSingle(
  sessions: S3Sessions,
  t: ObjectTarget,
  o: SingleUploadOptions,
): Promise<FileHashes> {
  const sha256 = createHash('sha256');
  const body = new PassThrough({ highWaterMark: 1 << 20 });
  const source = o.handle
    ? o.handle.createReadStream({ start: 0, autoClose: false, highWaterMark: 1 << 20 })
    : createReadStream(o.path, { highWaterMark: 1 << 20 });
  source.on('data', chunk => sha256.update(chunk as Buffer));
  source.on('error', err => body.destroy(err));
  source.pipe(body);
  const upload = new Upload({
    client: sessions.client(t.vaultKey, t.region),
    params: {
      Bucket: t.bucket,
      Key: t.key,
      Body: body,
      ContentType: 'application/octet-stream',
      // S3 verifies the bytes against a CRC32 (x-amz-checksum-crc32): lib-storage buffers
      // the body, so the SDK computes it over each Buffer with node:zlib's native crc32
      // and sends it as a header (no aws-chunked trailer). PutObject carries it; a file
      // above one part size goes as a multipart upload created with CRC32, whose parts
      // and Complete carry theirs (lib-storage passes these params to each command).
      ChecksumAlgorithm: 'CRC32',
    },
    partSize: singlePartSize(o.partSize),
    queueSize: 4,
    leavePartsOnError: false,
  });
  upload.on('httpUploadProgress', p => {
    if (p.loaded !== undefined) o.onProgress?.(p.loaded);
  });
  const onAbort = (): void => void upload.abort().catch(() => undefined);
  o.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    await sessions.withRenewal(t.vaultKey, () => upload.done());
  } catch (err) {
    throw toS3AppError(err, `the upload of ${o.fileName}`);
  } finally {
    o.signal?.removeEventListener('abort', onAbort);
  }
  return { sha256: sha256.digest('hex') };
}
