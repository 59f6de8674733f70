/**
 * Multipart operations: CreateMultipartUpload, UploadPart, ListParts,
 * CompleteMultipartUpload, AbortMultipartUpload, ListMultipartUploads.
 *
 * Checksums, as S3 applies them
 * (https://docs.aws.amazon.com/AmazonS3/latest/userguide/checking-object-integrity.html):
 * an upload created with x-amz-checksum-algorithm takes parts that carry a checksum of
 * that algorithm, verified against the bytes (body.ts: BadDigest on a mismatch); a part
 * without one (COMPOSITE uploads) or with another algorithm is refused with InvalidRequest
 * "Checksum Type mismatch occurred, expected checksum Type: crc32, actual checksum Type:
 * null" before its body is stored (checkPartAlgorithm). Complete of a COMPOSITE upload
 * must list each part's checksum, and each must match (multipart-rules.ts).
 */
import { createHash } from 'node:crypto';
import type { UploadChecksum, UploadInfo, WriteOptions } from '../store.ts';
import { MAX_PART_NUMBER } from '../store.ts';
import { planBody } from './body.ts';
import { createChecksum, isChecksumAlgorithm } from './checksums.ts';
import { s3Errors } from './errors.ts';
import type { OpContext } from './object-ops.ts';
import { continueBody, header, sendEmpty, sendXml, type S3Request } from './respond.ts';
import type { AuthResult } from './sigv4.ts';
import type { CompletePart } from './multipart-rules.ts';
import { checksumElementName, doc, el, parseCompleteBody, partXml } from './xml.ts';

/** Largest CompleteMultipartUpload body read (10,000 parts with checksums fit easily). */
const MAX_COMPLETE_BODY = 8 * 1024 * 1024;

const OWNER = '<ID>jcds-sim</ID><DisplayName>jcds-sim</DisplayName>';

function requireUpload(ctx: OpContext, r: S3Request): UploadInfo {
  const uploadId = r.query.get('uploadId') ?? '';
  const upload = ctx.store.getUpload(r.bucket, r.key, uploadId);
  if (!upload) throw s3Errors.noSuchUpload(uploadId);
  return upload;
}

/**
 * The checksum CreateMultipartUpload asks for. CreateMultipartUpload's x-amz-checksum-type
 * (https://docs.aws.amazon.com/AmazonS3/latest/API/API_CreateMultipartUpload.html) and the
 * user guide's table of algorithms: CRC64NVME is FULL_OBJECT only, SHA1 and SHA256
 * COMPOSITE only, CRC32 and CRC32C either; without a type, CRC64NVME is FULL_OBJECT and the
 * others COMPOSITE.
 */
function uploadChecksum(r: S3Request): UploadChecksum | undefined {
  const algorithmText = header(r, 'x-amz-checksum-algorithm');
  const typeText = header(r, 'x-amz-checksum-type');
  if (algorithmText === undefined) {
    if (typeText !== undefined) {
      throw s3Errors.invalidRequest(
        'The x-amz-checksum-type header can only be used with the x-amz-checksum-algorithm header.',
      );
    }
    return undefined;
  }
  const algorithm = algorithmText.toLowerCase();
  if (!isChecksumAlgorithm(algorithm)) {
    throw s3Errors.invalidRequest(
      'Checksum algorithm provided is unsupported. Please try again with any of the valid types: [CRC32, CRC32C, CRC64NVME, SHA1, SHA256]',
    );
  }
  const type = typeText?.toUpperCase() ?? (algorithm === 'crc64nvme' ? 'FULL_OBJECT' : 'COMPOSITE');
  if (type !== 'COMPOSITE' && type !== 'FULL_OBJECT') {
    throw s3Errors.invalidRequest('Value for x-amz-checksum-type header is invalid.');
  }
  if (
    (type === 'COMPOSITE' && algorithm === 'crc64nvme') ||
    (type === 'FULL_OBJECT' && (algorithm === 'sha1' || algorithm === 'sha256'))
  ) {
    throw s3Errors.invalidRequest(
      `The ${type} checksum type cannot be used with the ${algorithm} checksum algorithm.`,
    );
  }
  return { algorithm, type };
}

export async function createMultipartUpload(ctx: OpContext, r: S3Request): Promise<void> {
  const checksum = uploadChecksum(r);
  const upload = await ctx.store.createMultipartUpload(
    r.bucket,
    r.key,
    header(r, 'content-type'),
    checksum,
  );
  sendXml(
    r,
    200,
    doc(
      'InitiateMultipartUploadResult',
      el('Bucket', r.bucket) + el('Key', r.key) + el('UploadId', upload.uploadId),
    ),
    checksum
      ? {
          'x-amz-checksum-algorithm': checksum.algorithm.toUpperCase(),
          'x-amz-checksum-type': checksum.type,
        }
      : {},
  );
}

/**
 * A part's checksum algorithm against its upload's. An upload created with an algorithm
 * refuses a part with another one, and (COMPOSITE) one without any, with S3's
 * InvalidRequest "Checksum Type mismatch occurred, expected checksum Type: sha256, actual
 * checksum Type: null" (a FULL_OBJECT upload takes parts without one: S3 computes theirs).
 * An upload created without an algorithm takes a part with one and checks it: S3 does
 * since its default integrity protections (the SDKs' WHEN_SUPPORTED default sends a CRC32
 * with every part: https://docs.aws.amazon.com/sdkref/latest/guide/feature-dataintegrity.html);
 * before them it answered "expected checksum Type: null".
 */
function checkPartAlgorithm(upload: UploadInfo, sent: string | undefined): void {
  const expected = upload.checksum;
  if (!expected) return;
  if (sent === undefined && expected.type === 'FULL_OBJECT') return;
  if (sent !== expected.algorithm) {
    throw s3Errors.invalidRequest(
      `Checksum Type mismatch occurred, expected checksum Type: ${expected.algorithm}, actual checksum Type: ${sent ?? 'null'}`,
    );
  }
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
  const upload = requireUpload(ctx, r);
  const uploadId = upload.uploadId;
  if (ctx.faults.failPartNumbers?.includes(partNumber)) throw s3Errors.internal();
  const plan = planBody(r.req, auth, {
    ...ctx,
    ...(r.dropAfterBytes === undefined ? {} : { dropAfterBytes: r.dropAfterBytes }),
    ...(ctx.faults.corruptPartNumbers?.includes(partNumber) ? { corruptInFlight: true } : {}),
  });
  checkPartAlgorithm(upload, plan.algorithm);
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
  const upload = requireUpload(ctx, r);
  const uploadId = upload.uploadId;
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
        (upload.checksum
          ? el('ChecksumAlgorithm', upload.checksum.algorithm.toUpperCase()) +
            el('ChecksumType', upload.checksum.type)
          : '') +
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
  const checksum = ctx.store.getUpload(r.bucket, r.key, uploadId)?.checksum;
  const info = await ctx.store.completeMultipartUpload(r.bucket, r.key, uploadId, parts);
  const composite = checksum?.type === 'COMPOSITE' ? compositeChecksum(checksum, parts) : '';
  const host = header(r, 'host') ?? 'localhost';
  sendXml(
    r,
    200,
    doc(
      'CompleteMultipartUploadResult',
      el('Location', `http://${host}/${r.bucket}/${r.key}`) +
        el('Bucket', r.bucket) +
        el('Key', r.key) +
        el('ETag', info.etag) +
        composite,
    ),
  );
  ctx.onObjectStored?.(r.bucket, r.key);
}

/**
 * A COMPOSITE object's checksum, as Complete answers it: the checksum of the parts' binary
 * checksums, base64, then "-" and the part count (the user guide's "Using part-level
 * checksums for multipart uploads"). The parts were checked against the listed values.
 */
function compositeChecksum(checksum: UploadChecksum, parts: CompletePart[]): string {
  if (!isChecksumAlgorithm(checksum.algorithm)) return '';
  const c = createChecksum(checksum.algorithm);
  for (const p of parts) c.update(Buffer.from(p.checksum?.value ?? '', 'base64'));
  return (
    el(
      checksumElementName(checksum.algorithm),
      `${c.digest().toString('base64')}-${parts.length}`,
    ) + el('ChecksumType', 'COMPOSITE')
  );
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
