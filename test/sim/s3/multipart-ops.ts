/**
 * Multipart operations: CreateMultipartUpload, UploadPart, ListParts,
 * CompleteMultipartUpload, AbortMultipartUpload, ListMultipartUploads.
 */
import { createHash } from 'node:crypto';
import type { WriteOptions } from '../store.ts';
import { MAX_PART_NUMBER } from '../store.ts';
import { planBody } from './body.ts';
import { s3Errors } from './errors.ts';
import type { OpContext } from './object-ops.ts';
import { continueBody, header, sendEmpty, sendXml, type S3Request } from './respond.ts';
import type { AuthResult } from './sigv4.ts';
import { doc, el, parseCompleteBody, partXml } from './xml.ts';

/** Largest CompleteMultipartUpload body read (10,000 parts with checksums fit easily). */
const MAX_COMPLETE_BODY = 8 * 1024 * 1024;

const OWNER = '<ID>jcds-sim</ID><DisplayName>jcds-sim</DisplayName>';

function requireUpload(ctx: OpContext, r: S3Request): string {
  const uploadId = r.query.get('uploadId') ?? '';
  if (!ctx.store.getUpload(r.bucket, r.key, uploadId)) throw s3Errors.noSuchUpload(uploadId);
  return uploadId;
}

export async function createMultipartUpload(ctx: OpContext, r: S3Request): Promise<void> {
  const upload = await ctx.store.createMultipartUpload(r.bucket, r.key, header(r, 'content-type'));
  const algorithm = header(r, 'x-amz-checksum-algorithm');
  sendXml(
    r,
    200,
    doc(
      'InitiateMultipartUploadResult',
      el('Bucket', r.bucket) + el('Key', r.key) + el('UploadId', upload.uploadId),
    ),
    algorithm ? { 'x-amz-checksum-algorithm': algorithm } : {},
  );
}

export async function uploadPart(ctx: OpContext, r: S3Request, auth: AuthResult): Promise<void> {
  const text = r.query.get('partNumber') ?? '';
  const partNumber = Number(text);
  ctx.counters.uploadPartByNumber[text] = (ctx.counters.uploadPartByNumber[text] ?? 0) + 1;
  if (!/^\d+$/.test(text) || partNumber < 1 || partNumber > MAX_PART_NUMBER) {
    throw s3Errors.invalidArgument(
      `Part number must be an integer between 1 and ${MAX_PART_NUMBER}, inclusive`,
      'partNumber',
      text,
    );
  }
  const uploadId = requireUpload(ctx, r);
  if (ctx.faults.failPartNumbers?.includes(partNumber)) throw s3Errors.internal();
  const plan = planBody(r.req, auth, {
    ...ctx,
    ...(r.dropAfterBytes === undefined ? {} : { dropAfterBytes: r.dropAfterBytes }),
  });
  continueBody(r);
  const options: WriteOptions = {
    verify: written => {
      plan.verify(written);
      const sum = plan.checksum();
      if (sum) options.checksum = sum;
    },
  };
  const part = await ctx.store.uploadPart(
    r.bucket,
    r.key,
    uploadId,
    partNumber,
    plan.body,
    options,
  );
  sendEmpty(r, 200, {
    ETag: part.etag,
    ...(part.checksum
      ? { [`x-amz-checksum-${part.checksum.algorithm}`]: part.checksum.value }
      : {}),
  });
}

function intParam(r: S3Request, name: string, dflt: number, max: number): number {
  const text = r.query.get(name);
  if (text === undefined || text === '') return dflt;
  const n = Number(text);
  if (!/^\d+$/.test(text) || n > 2147483647) {
    throw s3Errors.invalidArgument(
      `Provided ${name} not an integer or within integer range`,
      name,
      text,
    );
  }
  return Math.min(n, max);
}

/** ListParts, paginated with max-parts and part-number-marker. */
export async function listParts(ctx: OpContext, r: S3Request): Promise<void> {
  const uploadId = requireUpload(ctx, r);
  const maxParts = intParam(r, 'max-parts', 1000, 1000);
  const marker = intParam(r, 'part-number-marker', 0, Number.MAX_SAFE_INTEGER);
  const all = (ctx.store.listParts(r.bucket, r.key, uploadId) ?? []).filter(
    p => p.partNumber > marker,
  );
  const page = all.slice(0, maxParts);
  const truncated = all.length > page.length;
  const next = page.at(-1)?.partNumber ?? marker;
  sendXml(
    r,
    200,
    doc(
      'ListPartsResult',
      el('Bucket', r.bucket) +
        el('Key', r.key) +
        el('UploadId', uploadId) +
        `<Initiator>${OWNER}</Initiator><Owner>${OWNER}</Owner>` +
        el('StorageClass', 'STANDARD') +
        el('PartNumberMarker', marker) +
        el('NextPartNumberMarker', next) +
        el('MaxParts', maxParts) +
        el('IsTruncated', truncated) +
        page.map(partXml).join(''),
    ),
  );
}

export async function completeMultipartUpload(
  ctx: OpContext,
  r: S3Request,
  auth: AuthResult,
): Promise<void> {
  const uploadId = r.query.get('uploadId') ?? '';
  const plan = planBody(r.req, auth, { ...ctx, ignoreChecksumHeaders: true });
  continueBody(r);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of plan.body) {
    size += chunk.length;
    if (size > MAX_COMPLETE_BODY) throw s3Errors.malformedXml();
    chunks.push(chunk);
  }
  const body = Buffer.concat(chunks);
  plan.verify({ size, md5: createHash('md5').update(body).digest() });
  const parts = parseCompleteBody(body.toString('utf8'));
  if (!parts) throw s3Errors.malformedXml();
  const info = await ctx.store.completeMultipartUpload(r.bucket, r.key, uploadId, parts);
  const host = header(r, 'host') ?? 'localhost';
  sendXml(
    r,
    200,
    doc(
      'CompleteMultipartUploadResult',
      el('Location', `http://${host}/${r.bucket}/${r.key}`) +
        el('Bucket', r.bucket) +
        el('Key', r.key) +
        el('ETag', info.etag),
    ),
  );
  ctx.onObjectStored?.(r.bucket, r.key);
}

export async function abortMultipartUpload(ctx: OpContext, r: S3Request): Promise<void> {
  const uploadId = r.query.get('uploadId') ?? '';
  if (!(await ctx.store.abortMultipartUpload(r.bucket, r.key, uploadId))) {
    throw s3Errors.noSuchUpload(uploadId);
  }
  sendEmpty(r, 204);
}

/** ListMultipartUploads with prefix and max-uploads (key-marker pagination by key). */
export async function listMultipartUploads(ctx: OpContext, r: S3Request): Promise<void> {
  const prefix = r.query.get('prefix') ?? '';
  const keyMarker = r.query.get('key-marker') ?? '';
  const maxUploads = intParam(r, 'max-uploads', 1000, 1000);
  const all = (await ctx.store.listMultipartUploads(r.bucket)).filter(
    u => u.key.startsWith(prefix) && (!keyMarker || u.key > keyMarker),
  );
  const page = all.slice(0, maxUploads);
  const truncated = all.length > page.length;
  const last = page.at(-1);
  sendXml(
    r,
    200,
    doc(
      'ListMultipartUploadsResult',
      el('Bucket', r.bucket) +
        el('KeyMarker', keyMarker) +
        el('UploadIdMarker', r.query.get('upload-id-marker') ?? '') +
        (truncated && last
          ? el('NextKeyMarker', last.key) + el('NextUploadIdMarker', last.uploadId)
          : '') +
        el('Prefix', prefix) +
        el('MaxUploads', maxUploads) +
        el('IsTruncated', truncated) +
        page
          .map(
            u =>
              '<Upload>' +
              el('Key', u.key) +
              el('UploadId', u.uploadId) +
              `<Initiator>${OWNER}</Initiator><Owner>${OWNER}</Owner>` +
              el('StorageClass', 'STANDARD') +
              el('Initiated', u.initiated.toISOString()) +
              '</Upload>',
          )
          .join(''),
    ),
  );
}
