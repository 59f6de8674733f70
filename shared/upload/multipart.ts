/**
 * The S3 multipart protocol of one upload, over S3Sessions (credentials that renew
 * themselves): create, send a part, list parts, complete or confirm, abort, and abort the
 * strays an earlier attempt left. Pure S3: no job, no queue. The upload processors in
 * worker/processors/upload/ call it and checkpoint what it returns.
 *
 * Integrity of each part: a flexible checksum, CRC32, that S3 verifies on every UploadPart
 * (BadDigest on a mismatch) instead of Content-MD5: node:zlib's crc32 is native and runs
 * several times faster than MD5. As S3 requires
 * (https://docs.aws.amazon.com/AmazonS3/latest/userguide/checking-object-integrity.html):
 * CreateMultipartUpload declares ChecksumAlgorithm CRC32 with ChecksumType COMPOSITE (the
 * per-part type; FULL_OBJECT would need a CRC of the whole file, computed in order), each
 * UploadPart carries x-amz-checksum-crc32 (S3 refuses a part without it, "Checksum Type
 * mismatch"), and CompleteMultipartUpload lists each part's ChecksumCRC32 beside its ETag
 * ("The upload was created using a crc32 checksum. The complete request must include the
 * checksum for each part"). An upload created without an algorithm (by an earlier version,
 * or by a server that did not echo the algorithm: no flexible checksums) keeps Content-MD5
 * and completes with ETags only: S3 refused a checksum on the parts of such an upload
 * ("expected checksum Type: null") before its default integrity protections of 2025, and
 * Content-MD5 is checked by every S3.
 */
import { crc32 } from 'node:zlib';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListPartsCommand,
  UploadPartCommand,
  type Part,
} from '@aws-sdk/client-s3';
import { AppError } from '../errors.ts';
import { md5Base64, md5Hex } from '../hash/index.ts';
import type { Logger } from '../logger.ts';
import type { MultipartState, PartChecksumAlgorithm, PartResult } from '../queues/jobs.ts';
import { isAccessDenied, isNoSuchUpload, toS3AppError } from '../s3/errors.ts';
import { multipartEtag } from './part-plan.ts';
import type { S3Sessions } from './s3-sessions.ts';

/** Where an object goes: the bucket and key JCDS gave, and the upload's vault entry. */
export interface ObjectTarget {
  bucket: string;
  key: string;
  region: string;
  vaultKey: string;
}

/** An open multipart upload (the part of MultipartState the protocol needs). */
export type OpenUpload = ObjectTarget & {
  uploadId: string;
  /** Set when S3 created it with this checksum algorithm; absent: Content-MD5 parts. */
  checksumAlgorithm?: PartChecksumAlgorithm | undefined;
};

/** A created multipart upload. */
export interface CreatedUpload {
  uploadId: string;
  /**
   * The algorithm S3 confirmed (CreateMultipartUpload echoes x-amz-checksum-algorithm);
   * undefined when the server did not, so it knows no flexible checksums: parts then go
   * with Content-MD5, which every S3 checks.
   */
  checksumAlgorithm: PartChecksumAlgorithm | undefined;
}

/** A sent part: S3's ETag and the CRC32 S3 verified (when the upload has an algorithm). */
export interface SentPart {
  etag: string;
  checksumCRC32?: string;
}

/** The flexible checksum new multipart uploads are created with. */
export const PART_CHECKSUM: PartChecksumAlgorithm = 'CRC32';

/** x-amz-checksum-crc32's value: base64 of the big-endian 4 bytes of the CRC32 (zlib, native). */
export function crc32Base64(body: Uint8Array): string {
  const out = Buffer.allocUnsafe(4);
  out.writeUInt32BE(crc32(body) >>> 0, 0);
  return out.toString('base64');
}

export interface CompleteResult {
  /** The ETag of the object (S3's md5-N form). */
  etag: string;
  /** True when an earlier attempt had completed it already (confirmed with HeadObject). */
  confirmed: boolean;
  /** Part numbers whose ETag was taken from ListParts instead of the part job's. */
  replacedParts: number[];
}

function opts(signal: AbortSignal | undefined): { abortSignal?: AbortSignal } {
  return signal ? { abortSignal: signal } : {};
}

export class MultipartEngine {
  readonly sessions: S3Sessions;
  private readonly logger: Logger;

  constructor(sessions: S3Sessions, logger: Logger) {
    this.sessions = sessions;
    this.logger = logger;
  }

  private send<T>(t: ObjectTarget, call: (s3: ReturnType<S3Sessions['client']>) => Promise<T>) {
    const s3 = this.sessions.client(t.vaultKey, t.region);
    return this.sessions.withRenewal(t.vaultKey, () => call(s3));
  }

  /**
   * CreateMultipartUpload with ChecksumAlgorithm CRC32, ChecksumType COMPOSITE (see the
   * top of this file); returns the UploadId and the algorithm S3 confirmed.
   */
  async create(t: ObjectTarget, what: string, signal?: AbortSignal): Promise<CreatedUpload> {
    const mpu = await this.send(t, s3 =>
      s3.send(
        new CreateMultipartUploadCommand({
          Bucket: t.bucket,
          Key: t.key,
          ContentType: 'application/octet-stream',
          ChecksumAlgorithm: PART_CHECKSUM,
          ChecksumType: 'COMPOSITE',
        }),
        opts(signal),
      ),
    ).catch(err => {
      throw toS3AppError(err, `CreateMultipartUpload for ${what}`);
    });
    if (!mpu.UploadId)
      throw new AppError('S3_ERROR', `CreateMultipartUpload for ${what} returned no UploadId.`);
    const echoed = mpu.ChecksumAlgorithm?.toUpperCase();
    if (echoed !== undefined && echoed !== PART_CHECKSUM)
      throw new AppError(
        'S3_ERROR',
        `CreateMultipartUpload for ${what} answered checksum algorithm ${echoed}, not the ${PART_CHECKSUM} requested: the S3 endpoint does not honour x-amz-checksum-algorithm. Point AWS_ENDPOINT_URL_S3 at S3 (or unset it).`,
      );
    if (echoed === undefined)
      this.logger.warn(
        { key: t.key },
        'S3 did not confirm the CRC32 checksum algorithm (no flexible checksums): parts go with Content-MD5',
      );
    return {
      uploadId: mpu.UploadId,
      checksumAlgorithm: echoed === undefined ? undefined : PART_CHECKSUM,
    };
  }

  /**
   * UploadPart with a checksum that S3 verifies: x-amz-checksum-crc32 when the upload was
   * created with CRC32, else Content-MD5 (an upload created without an algorithm). The
   * SDK adds none of its own: it skips a request that carries an x-amz-checksum-* header,
   * and computes nothing under WHEN_REQUIRED (shared/s3/client.ts).
   */
  async sendPart(
    u: OpenUpload,
    part: { partNumber: number; body: Buffer; what: string },
    signal?: AbortSignal,
  ): Promise<SentPart> {
    const checksumCRC32 = u.checksumAlgorithm === 'CRC32' ? crc32Base64(part.body) : undefined;
    const out = await this.send(u, s3 =>
      s3.send(
        new UploadPartCommand({
          Bucket: u.bucket,
          Key: u.key,
          UploadId: u.uploadId,
          PartNumber: part.partNumber,
          Body: part.body,
          ContentLength: part.body.length,
          ...(checksumCRC32
            ? { ChecksumCRC32: checksumCRC32 }
            : { ContentMD5: md5Base64(part.body) }),
        }),
        opts(signal),
      ),
    ).catch(err => {
      throw toS3AppError(err, `UploadPart ${part.partNumber} of ${part.what}`);
    });
    if (!out.ETag)
      throw new AppError(
        'S3_ERROR',
        `UploadPart ${part.partNumber} of ${part.what} returned no ETag.`,
        { retryable: true },
      );
    if (checksumCRC32 && out.ChecksumCRC32 !== undefined && out.ChecksumCRC32 !== checksumCRC32)
      throw new AppError(
        'S3_ERROR',
        `UploadPart ${part.partNumber} of ${part.what}: S3 stored CRC32 ${out.ChecksumCRC32}, not the ${checksumCRC32} sent.`,
        { retryable: true },
      );
    return { etag: out.ETag, ...(checksumCRC32 ? { checksumCRC32 } : {}) };
  }

  /**
   * Every part S3 holds for the upload, or undefined when the credentials may not list
   * them (JCDS credentials may lack ListParts: jamf-api.md 2.2). NoSuchUpload is thrown.
   */
  async listParts(u: OpenUpload): Promise<Part[] | undefined> {
    const out: Part[] = [];
    let marker: string | undefined;
    try {
      for (;;) {
        const page = await this.send(u, s3 =>
          s3.send(
            new ListPartsCommand({
              Bucket: u.bucket,
              Key: u.key,
              UploadId: u.uploadId,
              ...(marker ? { PartNumberMarker: marker } : {}),
            }),
          ),
        );
        out.push(...(page.Parts ?? []));
        if (!page.IsTruncated || !page.NextPartNumberMarker) return out;
        marker = page.NextPartNumberMarker;
      }
    } catch (err) {
      if (isAccessDenied(err)) return undefined;
      throw err;
    }
  }

  /**
   * CompleteMultipartUpload from the parts' ETags (and CRC32s, for an upload created with
   * that algorithm), cross-checked with ListParts where the credentials allow it. Idempotent: a repeat that finds NoSuchUpload (an earlier attempt
   * completed it and died before its checkpoint) confirms the object with HeadObject: its
   * size, and its md5-N ETag where S3 gives one.
   */
  async completeOrConfirm(
    u: OpenUpload,
    done: PartResult[],
    expected: { size: number; what: string },
  ): Promise<CompleteResult> {
    const sorted = [...done].sort((a, b) => a.partNumber - b.partNumber);
    const expectedEtag = multipartEtag(
      sorted.map(p => p.etag),
      md5Hex,
    );
    const listed = await this.listParts(u).catch(err => {
      if (isNoSuchUpload(err)) return 'gone' as const;
      throw toS3AppError(err, `ListParts for ${expected.what}`);
    });
    const withChecksums = u.checksumAlgorithm === 'CRC32';
    const replacedParts: number[] = [];
    if (Array.isArray(listed)) {
      const byNumber = new Map(listed.map(p => [p.PartNumber, p]));
      for (const [i, p] of sorted.entries()) {
        const held = byNumber.get(p.partNumber);
        if (held?.ETag === p.etag) {
          if (withChecksums && !p.checksumCRC32 && held.ChecksumCRC32)
            sorted[i] = { ...p, checksumCRC32: held.ChecksumCRC32 };
          continue;
        }
        // A zombie worker may have re-sent a part after its lock was lost; S3 holds the
        // latest bytes of that part number, which are the same file range: use S3's ETag
        // (and the checksum S3 verified for those bytes).
        if (!held?.ETag)
          throw new AppError(
            'UPLOAD_INCOMPLETE',
            `S3 does not hold part ${p.partNumber} of ${expected.what}.`,
          );
        sorted[i] = {
          partNumber: p.partNumber,
          etag: held.ETag,
          size: p.size,
          ...(held.ChecksumCRC32 ? { checksumCRC32: held.ChecksumCRC32 } : {}),
        };
        replacedParts.push(p.partNumber);
      }
    }
    const missingChecksum = withChecksums ? sorted.find(p => !p.checksumCRC32) : undefined;
    if (missingChecksum)
      throw new AppError(
        'UPLOAD_INCOMPLETE',
        `Part ${missingChecksum.partNumber} of ${expected.what} has no CRC32 checkpointed and S3 listed none: S3 requires each part's CRC32 to complete an upload created with CRC32. A worker of an earlier version (Content-MD5 parts) may have sent it: run every worker on this version, then upload the file again.`,
      );
    const etag = multipartEtag(
      sorted.map(p => p.etag),
      md5Hex,
    );
    try {
      await this.send(u, s3 =>
        s3.send(
          new CompleteMultipartUploadCommand({
            Bucket: u.bucket,
            Key: u.key,
            UploadId: u.uploadId,
            MultipartUpload: {
              Parts: sorted.map(p => ({
                PartNumber: p.partNumber,
                ETag: p.etag,
                ...(withChecksums ? { ChecksumCRC32: p.checksumCRC32 } : {}),
              })),
            },
          }),
        ),
      );
      return { etag, confirmed: false, replacedParts };
    } catch (err) {
      if (!isNoSuchUpload(err))
        throw toS3AppError(err, `CompleteMultipartUpload for ${expected.what}`);
    }
    const head = await this.send(u, s3 =>
      s3.send(new HeadObjectCommand({ Bucket: u.bucket, Key: u.key })),
    ).catch(e => {
      throw toS3AppError(e, `HeadObject for ${expected.what}`);
    });
    if (
      head.ContentLength !== expected.size ||
      (head.ETag && head.ETag !== etag && head.ETag !== expectedEtag)
    ) {
      throw new AppError(
        'UPLOAD_INCOMPLETE',
        `The multipart upload of ${expected.what} is gone and the stored object does not match (size ${head.ContentLength}, ETag ${head.ETag}, expected ${expected.size} and ${etag}).`,
      );
    }
    return { etag: head.ETag ?? etag, confirmed: true, replacedParts };
  }

  /** AbortMultipartUpload; true when aborted, false when S3 no longer had it. */
  async abort(u: OpenUpload): Promise<boolean> {
    return this.abortRaw(u).catch((err: unknown) => {
      throw toS3AppError(err, 'AbortMultipartUpload');
    });
  }

  private async abortRaw(u: OpenUpload): Promise<boolean> {
    try {
      await this.send(u, s3 =>
        s3.send(
          new AbortMultipartUploadCommand({ Bucket: u.bucket, Key: u.key, UploadId: u.uploadId }),
        ),
      );
      return true;
    } catch (err) {
      if (isNoSuchUpload(err)) return false;
      throw err;
    }
  }

  /**
   * Aborts the open multipart uploads of `t.key` other than `keep`: leftovers of an attempt
   * cut off after S3 created its upload but before the UploadId was checkpointed (a
   * cancelled CreateMultipartUpload, a worker that lost its lock while Redis was away). One
   * upload per file name is in flight at a time (the producer deduplicates by file name),
   * so any other upload of this key is ours to clean. Best effort: credentials that may
   * not list uploads skip it; other errors are logged.
   */
  async abortStrays(t: ObjectTarget, keep?: string): Promise<void> {
    try {
      const listed = await this.send(t, s3 =>
        s3.send(new ListMultipartUploadsCommand({ Bucket: t.bucket, Prefix: t.key })),
      );
      for (const u of listed.Uploads ?? []) {
        if (u.Key !== t.key || !u.UploadId || u.UploadId === keep) continue;
        await this.abortRaw({ ...t, uploadId: u.UploadId });
        this.logger.info(
          { key: t.key, uploadId: u.UploadId },
          'stray multipart upload of an earlier attempt aborted',
        );
      }
    } catch (err) {
      if (!isAccessDenied(err))
        this.logger.warn(
          { err: toS3AppError(err, 'ListMultipartUploads'), key: t.key },
          'could not clean up stray multipart uploads',
        );
    }
  }

  /** Drops the upload's S3 client: nothing will use its credentials any more. */
  release(t: Pick<ObjectTarget, 'vaultKey'>): void {
    this.sessions.release(t.vaultKey);
  }
}

/** The protocol view of a checkpointed multipart state. */
export function openUpload(mp: MultipartState): OpenUpload {
  return {
    bucket: mp.bucket,
    key: mp.key,
    region: mp.region,
    vaultKey: mp.vaultKey,
    uploadId: mp.uploadId,
    ...(mp.checksumAlgorithm ? { checksumAlgorithm: mp.checksumAlgorithm } : {}),
  };
}
