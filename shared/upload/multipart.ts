/**
 * The S3 multipart protocol of one upload, over S3Sessions (credentials that renew
 * themselves): create, send a part, list parts, complete or confirm, abort, and abort the
 * strays an earlier attempt left. Pure S3: no job, no queue. The upload processors in
 * worker/processors/upload/ call it and checkpoint what it returns.
 */
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
import type { MultipartState, PartResult } from '../queues/jobs.ts';
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
export type OpenUpload = ObjectTarget & { uploadId: string };

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

  /** CreateMultipartUpload; returns the UploadId. */
  async create(t: ObjectTarget, what: string, signal?: AbortSignal): Promise<string> {
    const mpu = await this.send(t, s3 =>
      s3.send(
        new CreateMultipartUploadCommand({
          Bucket: t.bucket,
          Key: t.key,
          ContentType: 'application/octet-stream',
        }),
        opts(signal),
      ),
    ).catch(err => {
      throw toS3AppError(err, `CreateMultipartUpload for ${what}`);
    });
    if (!mpu.UploadId)
      throw new AppError('S3_ERROR', `CreateMultipartUpload for ${what} returned no UploadId.`);
    return mpu.UploadId;
  }

  /** UploadPart with a Content-MD5 that S3 checks; returns the part's ETag. */
  async sendPart(
    u: OpenUpload,
    part: { partNumber: number; body: Buffer; what: string },
    signal?: AbortSignal,
  ): Promise<string> {
    const contentMd5 = md5Base64(part.body);
    const out = await this.send(u, s3 =>
      s3.send(
        new UploadPartCommand({
          Bucket: u.bucket,
          Key: u.key,
          UploadId: u.uploadId,
          PartNumber: part.partNumber,
          Body: part.body,
          ContentLength: part.body.length,
          ContentMD5: contentMd5,
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
    return out.ETag;
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
   * CompleteMultipartUpload from the parts' ETags, cross-checked with ListParts where the
   * credentials allow it. Idempotent: a repeat that finds NoSuchUpload (an earlier attempt
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
    const replacedParts: number[] = [];
    if (Array.isArray(listed)) {
      const byNumber = new Map(listed.map(p => [p.PartNumber, p.ETag]));
      for (const [i, p] of sorted.entries()) {
        if (byNumber.get(p.partNumber) === p.etag) continue;
        // A zombie worker may have re-sent a part after its lock was lost; S3 holds the
        // latest bytes of that part number, which are the same file range: use S3's ETag.
        const etag = byNumber.get(p.partNumber);
        if (!etag)
          throw new AppError(
            'UPLOAD_INCOMPLETE',
            `S3 does not hold part ${p.partNumber} of ${expected.what}.`,
          );
        sorted[i] = { partNumber: p.partNumber, etag, size: p.size };
        replacedParts.push(p.partNumber);
      }
    }
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
              Parts: sorted.map(p => ({ PartNumber: p.partNumber, ETag: p.etag })),
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
  };
}
