/**
 * The multipart protocol (shared/upload/multipart.ts) over a fake S3 client: create (with
 * CRC32), send a part (x-amz-checksum-crc32, or Content-MD5 for an upload created without
 * an algorithm; credential renewal), list parts, complete or confirm (with the parts'
 * CRC32s, or ETags only for such an upload), abort, and the clean-up of stray uploads.
 */
import { createHash } from 'node:crypto';
import { NoSuchUpload } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import { AppError } from '../../../../shared/errors.ts';
import type { PartResult } from '../../../../shared/queues/jobs.ts';
import {
  crc32Base64,
  MultipartEngine,
  type ObjectTarget,
  type OpenUpload,
} from '../../../../shared/upload/multipart.ts';
import { captureLogger, fail, FakeS3, FakeS3Sessions, fakeVault, ok, s3Error } from './fake-s3.ts';

const target: ObjectTarget = {
  bucket: 'jcds-bucket',
  key: 'files/Firefox.pkg',
  region: 'us-east-1',
  vaultKey: 'upload-1',
};
/** An upload an earlier version created without a checksum algorithm (Content-MD5 parts). */
const upload: OpenUpload = { ...target, uploadId: 'mpu-1' };
/** An upload created with CRC32, as this version creates them. */
const crcUpload: OpenUpload = { ...target, uploadId: 'mpu-2', checksumAlgorithm: 'CRC32' };

/** S3's x-amz-checksum-crc32 of a body, computed here independently of multipart.ts. */
function s3Crc32(body: Buffer): string {
  let c = 0xffffffff;
  for (const byte of body) {
    c ^= byte;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xedb88320 : c >>> 1;
  }
  const out = Buffer.alloc(4);
  out.writeUInt32BE((c ^ 0xffffffff) >>> 0, 0);
  return out.toString('base64');
}

function setup(maxRenewals?: number) {
  const s3 = new FakeS3();
  const vault = fakeVault();
  const sessions = new FakeS3Sessions(s3, {
    vault: vault.source,
    ...(maxRenewals === undefined ? {} : { maxRenewals }),
  });
  const log = captureLogger();
  const engine = new MultipartEngine(sessions, log.logger);
  return { s3, vault, sessions, engine, lines: log.lines };
}

async function rejection(p: Promise<unknown>): Promise<AppError> {
  const err = await p.then(
    () => {
      throw new Error('expected a rejection');
    },
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(AppError);
  return err as AppError;
}

const md5hex = (s: string | Buffer): string => createHash('md5').update(s).digest('hex');
const quoted = (s: string): string => `"${s}"`;

/** S3's ETag of a multipart object, computed here independently of part-plan.ts. */
function s3MultipartEtag(etags: string[]): string {
  const digests = Buffer.concat(etags.map(e => Buffer.from(e.replaceAll('"', ''), 'hex')));
  return `"${md5hex(digests)}-${etags.length}"`;
}

const parts: PartResult[] = [1, 2, 3].map(n => ({
  partNumber: n,
  etag: quoted(md5hex(`part ${n}`)),
  size: n === 3 ? 100 : 5 * 1024 * 1024,
}));
const objectSize = parts.reduce((n, p) => n + p.size, 0);
const listed = (ps: PartResult[]) => ({
  Parts: ps.map(p => ({ PartNumber: p.partNumber, ETag: p.etag, Size: p.size })),
  IsTruncated: false,
});

describe('crc32Base64', () => {
  it("is S3's x-amz-checksum-crc32: base64 of the big-endian CRC32", () => {
    // The CRC-32 check value: crc32("123456789") = 0xCBF43926.
    expect(crc32Base64(Buffer.from('123456789'))).toBe(
      Buffer.from([0xcb, 0xf4, 0x39, 0x26]).toString('base64'),
    );
    const body = Buffer.from('the bytes of a part, with a high bit: \xff\x80');
    expect(crc32Base64(body)).toBe(s3Crc32(body));
    expect(crc32Base64(Buffer.alloc(0))).toBe('AAAAAA==');
  });
});

describe('MultipartEngine.create', () => {
  it('creates with ChecksumAlgorithm CRC32 (COMPOSITE) and returns what S3 confirmed', async () => {
    const { s3, engine } = setup();
    s3.on(
      'CreateMultipartUploadCommand',
      ok({ UploadId: 'mpu-9', ChecksumAlgorithm: 'CRC32', ChecksumType: 'COMPOSITE' }),
    );
    await expect(engine.create(target, 'Firefox.pkg')).resolves.toEqual({
      uploadId: 'mpu-9',
      checksumAlgorithm: 'CRC32',
    });
    expect(s3.sent).toHaveLength(1);
    expect(s3.sent[0]).toMatchObject({
      name: 'CreateMultipartUploadCommand',
      input: {
        Bucket: 'jcds-bucket',
        Key: 'files/Firefox.pkg',
        ContentType: 'application/octet-stream',
        ChecksumAlgorithm: 'CRC32',
        ChecksumType: 'COMPOSITE',
      },
    });
  });

  it('falls back to Content-MD5 parts when S3 does not confirm the algorithm', async () => {
    const { s3, engine, lines } = setup();
    s3.on('CreateMultipartUploadCommand', ok({ UploadId: 'mpu-9' }));
    await expect(engine.create(target, 'Firefox.pkg')).resolves.toEqual({
      uploadId: 'mpu-9',
      checksumAlgorithm: undefined,
    });
    expect(lines().map(l => l['msg'])).toContainEqual(
      expect.stringMatching(/did not confirm the CRC32 checksum algorithm/),
    );
  });

  it('refuses an upload S3 created with another algorithm', async () => {
    const { s3, engine } = setup();
    s3.on('CreateMultipartUploadCommand', ok({ UploadId: 'mpu-9', ChecksumAlgorithm: 'SHA256' }));
    const err = await rejection(engine.create(target, 'Firefox.pkg'));
    expect(err.code).toBe('S3_ERROR');
    expect(err.message).toMatch(/answered checksum algorithm SHA256, not the CRC32 requested/);
  });

  it('fails with S3_ERROR when S3 gives no UploadId', async () => {
    const { s3, engine } = setup();
    s3.on('CreateMultipartUploadCommand', ok({}));
    const err = await rejection(engine.create(target, 'Firefox.pkg'));
    expect(err.code).toBe('S3_ERROR');
    expect(err.message).toMatch(/CreateMultipartUpload for Firefox.pkg returned no UploadId/);
  });

  it('turns an S3 refusal into an AppError naming the call', async () => {
    const { s3, engine } = setup();
    s3.on('CreateMultipartUploadCommand', fail(s3Error('AccessDenied', 403)));
    const err = await rejection(engine.create(target, 'Firefox.pkg'));
    expect(err).toMatchObject({ code: 'S3_ERROR', retryable: false });
    expect(err.message).toMatch(/CreateMultipartUpload for Firefox.pkg: AccessDenied \(HTTP 403\)/);
  });
});

describe('MultipartEngine.sendPart', () => {
  const body = Buffer.from('the bytes of part two');

  it('sends the part with its CRC32 (no Content-MD5) and returns the ETag and CRC32', async () => {
    const { s3, engine } = setup();
    s3.on('UploadPartCommand', ok({ ETag: '"etag-2"', ChecksumCRC32: s3Crc32(body) }));
    await expect(
      engine.sendPart(crcUpload, { partNumber: 2, body, what: 'Firefox.pkg' }),
    ).resolves.toEqual({ etag: '"etag-2"', checksumCRC32: s3Crc32(body) });
    const sent = s3.commands('UploadPartCommand')[0]!.input;
    expect(sent).toMatchObject({
      UploadId: 'mpu-2',
      PartNumber: 2,
      ContentLength: body.length,
      ChecksumCRC32: s3Crc32(body),
    });
    expect(sent).not.toHaveProperty('ContentMD5');
    expect(sent).not.toHaveProperty('ChecksumAlgorithm');
    expect(sent['Body']).toBe(body);
  });

  it('fails retryable when S3 reports another CRC32 than the one sent', async () => {
    const { s3, engine } = setup();
    s3.on('UploadPartCommand', ok({ ETag: '"etag-2"', ChecksumCRC32: 'AAAAAA==' }));
    const err = await rejection(
      engine.sendPart(crcUpload, { partNumber: 2, body, what: 'Firefox.pkg' }),
    );
    expect(err).toMatchObject({ code: 'S3_ERROR', retryable: true });
    expect(err.message).toMatch(/S3 stored CRC32 AAAAAA==, not the .* sent/);
  });

  it('sends Content-MD5 (no CRC32) to an upload created without an algorithm', async () => {
    const { s3, engine } = setup();
    s3.on('UploadPartCommand', ok({ ETag: '"etag-2"' }));
    await expect(
      engine.sendPart(upload, { partNumber: 2, body, what: 'Firefox.pkg' }),
    ).resolves.toEqual({ etag: '"etag-2"' });
    expect(s3.commands('UploadPartCommand')).toHaveLength(1);
    const sent = s3.commands('UploadPartCommand')[0]!.input;
    expect(sent).toMatchObject({
      Bucket: 'jcds-bucket',
      Key: 'files/Firefox.pkg',
      UploadId: 'mpu-1',
      PartNumber: 2,
      ContentLength: body.length,
      ContentMD5: createHash('md5').update(body).digest('base64'),
    });
    expect(sent['Body']).toBe(body);
    expect(sent).not.toHaveProperty('ChecksumCRC32');
  });

  it('fails retryable S3_ERROR when S3 gives no ETag', async () => {
    const { s3, engine } = setup();
    s3.on('UploadPartCommand', ok({}));
    const err = await rejection(
      engine.sendPart(upload, { partNumber: 2, body, what: 'Firefox.pkg' }),
    );
    expect(err).toMatchObject({ code: 'S3_ERROR', retryable: true });
    expect(err.message).toMatch(/UploadPart 2 of Firefox.pkg returned no ETag/);
  });

  it('renews past the stale key after ExpiredToken and sends again', async () => {
    const { s3, engine, vault } = setup();
    s3.on('UploadPartCommand', (_input, keyId) => {
      if (keyId === 'AKID1') throw s3Error('ExpiredToken', 400, 'The provided token has expired.');
      return { ETag: '"etag-renewed"' };
    });
    await expect(
      engine.sendPart(upload, { partNumber: 1, body, what: 'Firefox.pkg' }),
    ).resolves.toEqual({ etag: '"etag-renewed"' });
    expect(vault.renewals()).toEqual([['upload-1', 'AKID1']]);
    expect(s3.commands('UploadPartCommand').map(c => c.accessKeyId)).toEqual(['AKID1', 'AKID2']);
  });

  it('gives up after maxRenewals renewals with S3_CREDENTIALS_EXPIRED', async () => {
    const { s3, engine, vault } = setup(2);
    s3.on('UploadPartCommand', fail(s3Error('ExpiredToken', 400)));
    const err = await rejection(
      engine.sendPart(upload, { partNumber: 1, body, what: 'Firefox.pkg' }),
    );
    expect(err).toMatchObject({ code: 'S3_CREDENTIALS_EXPIRED', retryable: true });
    expect(vault.renewals()).toHaveLength(2);
    expect(s3.commands('UploadPartCommand')).toHaveLength(3);
  });

  it('does not renew on another error', async () => {
    const { s3, engine, vault } = setup();
    s3.on('UploadPartCommand', fail(s3Error('InvalidDigest', 400)));
    const err = await rejection(
      engine.sendPart(upload, { partNumber: 1, body, what: 'Firefox.pkg' }),
    );
    expect(err).toMatchObject({ code: 'S3_ERROR', retryable: false });
    expect(vault.renewals()).toEqual([]);
    expect(s3.commands('UploadPartCommand')).toHaveLength(1);
  });
});

describe('MultipartEngine.listParts', () => {
  it('follows IsTruncated / NextPartNumberMarker pages', async () => {
    const { s3, engine } = setup();
    s3.on('ListPartsCommand', input =>
      input['PartNumberMarker'] === undefined
        ? {
            Parts: [
              { PartNumber: 1, ETag: '"a"' },
              { PartNumber: 2, ETag: '"b"' },
            ],
            IsTruncated: true,
            NextPartNumberMarker: '2',
          }
        : input['PartNumberMarker'] === '2'
          ? { Parts: [{ PartNumber: 3, ETag: '"c"' }], IsTruncated: false }
          : { Parts: [] },
    );
    const got = await engine.listParts(upload);
    expect(got?.map(p => p.PartNumber)).toEqual([1, 2, 3]);
    const calls = s3.commands('ListPartsCommand');
    expect(calls).toHaveLength(2);
    expect(calls[0]!.input).not.toHaveProperty('PartNumberMarker');
    expect(calls[1]!.input).toMatchObject({ UploadId: 'mpu-1', PartNumberMarker: '2' });
  });

  it('returns undefined when the credentials may not list parts', async () => {
    const { s3, engine } = setup();
    s3.on('ListPartsCommand', fail(s3Error('AccessDenied', 403)));
    await expect(engine.listParts(upload)).resolves.toBeUndefined();
  });

  it('throws NoSuchUpload', async () => {
    const { s3, engine } = setup();
    const gone = new NoSuchUpload({ message: 'gone', $metadata: { httpStatusCode: 404 } });
    s3.on('ListPartsCommand', fail(gone));
    await expect(engine.listParts(upload)).rejects.toBe(gone);
  });
});

describe('MultipartEngine.completeOrConfirm', () => {
  const expected = { size: objectSize, what: 'Firefox.pkg' };
  const noSuchUpload = () =>
    new NoSuchUpload({
      message:
        'The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.',
      $metadata: { httpStatusCode: 404 },
    });

  const crcParts: PartResult[] = parts.map(p => ({
    ...p,
    checksumCRC32: s3Crc32(Buffer.from(`part ${p.partNumber}`)),
  }));
  const crcListed = (ps: PartResult[]) => ({
    Parts: ps.map(p => ({
      PartNumber: p.partNumber,
      ETag: p.etag,
      Size: p.size,
      ...(p.checksumCRC32 ? { ChecksumCRC32: p.checksumCRC32 } : {}),
    })),
    IsTruncated: false,
  });

  it("completes an upload created with CRC32 listing each part's ChecksumCRC32", async () => {
    const { s3, engine } = setup();
    s3.on('ListPartsCommand', ok(crcListed(crcParts)));
    s3.on('CompleteMultipartUploadCommand', ok({}));
    const done = await engine.completeOrConfirm(crcUpload, [...crcParts].reverse(), expected);
    expect(done).toEqual({
      etag: s3MultipartEtag(parts.map(p => p.etag)),
      confirmed: false,
      replacedParts: [],
    });
    expect(s3.commands('CompleteMultipartUploadCommand')[0]!.input['MultipartUpload']).toEqual({
      Parts: crcParts.map(p => ({
        PartNumber: p.partNumber,
        ETag: p.etag,
        ChecksumCRC32: p.checksumCRC32,
      })),
    });
  });

  it("takes S3's ETag and CRC32 where ListParts differs (a part sent again)", async () => {
    const { s3, engine } = setup();
    const again = Buffer.from('part 2, sent again by a zombie worker');
    const resent = { etag: quoted(md5hex(again)), checksumCRC32: s3Crc32(again) };
    s3.on(
      'ListPartsCommand',
      ok(crcListed(crcParts.map(p => (p.partNumber === 2 ? { ...p, ...resent } : p)))),
    );
    s3.on('CompleteMultipartUploadCommand', ok({}));
    const done = await engine.completeOrConfirm(crcUpload, crcParts, expected);
    expect(done.replacedParts).toEqual([2]);
    const sent = s3.commands('CompleteMultipartUploadCommand')[0]!.input['MultipartUpload'] as {
      Parts: unknown[];
    };
    expect(sent.Parts[1]).toEqual({
      PartNumber: 2,
      ETag: resent.etag,
      ChecksumCRC32: resent.checksumCRC32,
    });
  });

  it('takes a missing CRC32 from ListParts when the ETag matches', async () => {
    const { s3, engine } = setup();
    s3.on('ListPartsCommand', ok(crcListed(crcParts)));
    s3.on('CompleteMultipartUploadCommand', ok({}));
    const withoutSecond = crcParts.map(p =>
      p.partNumber === 2 ? { partNumber: p.partNumber, etag: p.etag, size: p.size } : p,
    );
    const done = await engine.completeOrConfirm(crcUpload, withoutSecond, expected);
    expect(done.replacedParts).toEqual([]);
    const sent = s3.commands('CompleteMultipartUploadCommand')[0]!.input['MultipartUpload'] as {
      Parts: Array<Record<string, unknown>>;
    };
    expect(sent.Parts.map(p => p['ChecksumCRC32'])).toEqual(crcParts.map(p => p.checksumCRC32));
  });

  it('fails UPLOAD_INCOMPLETE, without completing, when a part has no CRC32 anywhere', async () => {
    const { s3, engine } = setup();
    s3.on('ListPartsCommand', fail(s3Error('AccessDenied', 403)));
    s3.on('CompleteMultipartUploadCommand', ok({}));
    const withoutThird = crcParts.map(p =>
      p.partNumber === 3 ? { partNumber: p.partNumber, etag: p.etag, size: p.size } : p,
    );
    const err = await rejection(engine.completeOrConfirm(crcUpload, withoutThird, expected));
    expect(err.code).toBe('UPLOAD_INCOMPLETE');
    expect(err.message).toMatch(/Part 3 of Firefox.pkg has no CRC32/);
    expect(s3.commands('CompleteMultipartUploadCommand')).toEqual([]);
  });

  it('completes an upload created without an algorithm with ETags only', async () => {
    const { s3, engine } = setup();
    s3.on('ListPartsCommand', ok(crcListed(crcParts)));
    s3.on('CompleteMultipartUploadCommand', ok({}));
    await engine.completeOrConfirm(upload, crcParts, expected);
    expect(s3.commands('CompleteMultipartUploadCommand')[0]!.input['MultipartUpload']).toEqual({
      Parts: parts.map(p => ({ PartNumber: p.partNumber, ETag: p.etag })),
    });
  });

  it('completes with the parts sorted by number', async () => {
    const { s3, engine } = setup();
    s3.on('ListPartsCommand', ok(listed(parts)));
    s3.on('CompleteMultipartUploadCommand', ok({ ETag: 'whatever' }));
    const shuffled = [parts[2]!, parts[0]!, parts[1]!];
    const done = await engine.completeOrConfirm(upload, shuffled, expected);
    expect(done).toEqual({
      etag: s3MultipartEtag(parts.map(p => p.etag)),
      confirmed: false,
      replacedParts: [],
    });
    const complete = s3.commands('CompleteMultipartUploadCommand');
    expect(complete).toHaveLength(1);
    expect(complete[0]!.input).toMatchObject({
      UploadId: 'mpu-1',
      MultipartUpload: { Parts: parts.map(p => ({ PartNumber: p.partNumber, ETag: p.etag })) },
    });
    expect(s3.commands('HeadObjectCommand')).toEqual([]);
  });

  it("uses S3's ETag where ListParts differs, and reports the part", async () => {
    const { s3, engine } = setup();
    const resent = quoted(md5hex('part 2, sent again by a zombie worker'));
    s3.on(
      'ListPartsCommand',
      ok(listed(parts.map(p => (p.partNumber === 2 ? { ...p, etag: resent } : p)))),
    );
    s3.on('CompleteMultipartUploadCommand', ok({}));
    const done = await engine.completeOrConfirm(upload, parts, expected);
    expect(done.replacedParts).toEqual([2]);
    expect(done.etag).toBe(s3MultipartEtag([parts[0]!.etag, resent, parts[2]!.etag]));
    const sent = s3.commands('CompleteMultipartUploadCommand')[0]!.input;
    expect(sent['MultipartUpload']).toEqual({
      Parts: [
        { PartNumber: 1, ETag: parts[0]!.etag },
        { PartNumber: 2, ETag: resent },
        { PartNumber: 3, ETag: parts[2]!.etag },
      ],
    });
  });

  it('fails UPLOAD_INCOMPLETE when S3 does not hold a part, and does not complete', async () => {
    const { s3, engine } = setup();
    s3.on('ListPartsCommand', ok(listed([parts[0]!, parts[2]!])));
    s3.on('CompleteMultipartUploadCommand', ok({}));
    const err = await rejection(engine.completeOrConfirm(upload, parts, expected));
    expect(err.code).toBe('UPLOAD_INCOMPLETE');
    expect(err.retryable).toBe(true);
    expect(err.message).toMatch(/part 2 of Firefox.pkg/);
    expect(s3.commands('CompleteMultipartUploadCommand')).toEqual([]);
  });

  it('completes without the cross-check when ListParts is denied', async () => {
    const { s3, engine } = setup();
    s3.on('ListPartsCommand', fail(s3Error('AccessDenied', 403)));
    s3.on('CompleteMultipartUploadCommand', ok({}));
    const done = await engine.completeOrConfirm(upload, parts, expected);
    expect(done.confirmed).toBe(false);
    expect(s3.commands('CompleteMultipartUploadCommand')).toHaveLength(1);
  });

  it('confirms with HeadObject after NoSuchUpload (an earlier attempt completed it)', async () => {
    const { s3, engine } = setup();
    s3.on('ListPartsCommand', fail(noSuchUpload()));
    s3.on('CompleteMultipartUploadCommand', fail(noSuchUpload()));
    const etag = s3MultipartEtag(parts.map(p => p.etag));
    s3.on('HeadObjectCommand', ok({ ContentLength: objectSize, ETag: etag }));
    const done = await engine.completeOrConfirm(upload, parts, expected);
    expect(done).toEqual({ etag, confirmed: true, replacedParts: [] });
    expect(s3.commands('HeadObjectCommand')[0]!.input).toEqual({
      Bucket: 'jcds-bucket',
      Key: 'files/Firefox.pkg',
    });
  });

  it('confirms by size alone when S3 gives no ETag', async () => {
    const { s3, engine } = setup();
    s3.on('ListPartsCommand', ok(listed(parts)));
    s3.on('CompleteMultipartUploadCommand', fail(noSuchUpload()));
    s3.on('HeadObjectCommand', ok({ ContentLength: objectSize }));
    const done = await engine.completeOrConfirm(upload, parts, expected);
    expect(done).toMatchObject({ confirmed: true, etag: s3MultipartEtag(parts.map(p => p.etag)) });
  });

  it('fails UPLOAD_INCOMPLETE when the stored object has another size', async () => {
    const { s3, engine } = setup();
    s3.on('ListPartsCommand', fail(noSuchUpload()));
    s3.on('CompleteMultipartUploadCommand', fail(noSuchUpload()));
    s3.on(
      'HeadObjectCommand',
      ok({ ContentLength: objectSize - 1, ETag: s3MultipartEtag(parts.map(p => p.etag)) }),
    );
    const err = await rejection(engine.completeOrConfirm(upload, parts, expected));
    expect(err.code).toBe('UPLOAD_INCOMPLETE');
    expect(err.message).toMatch(/does not match/);
  });

  it('fails UPLOAD_INCOMPLETE when the stored object has another md5-N ETag', async () => {
    const { s3, engine } = setup();
    s3.on('ListPartsCommand', fail(noSuchUpload()));
    s3.on('CompleteMultipartUploadCommand', fail(noSuchUpload()));
    s3.on('HeadObjectCommand', ok({ ContentLength: objectSize, ETag: `"${md5hex('other')}-3"` }));
    const err = await rejection(engine.completeOrConfirm(upload, parts, expected));
    expect(err.code).toBe('UPLOAD_INCOMPLETE');
  });

  it('turns another Complete failure into an S3 AppError (no HeadObject)', async () => {
    const { s3, engine } = setup();
    s3.on('ListPartsCommand', ok(listed(parts)));
    s3.on('CompleteMultipartUploadCommand', fail(s3Error('InvalidPart', 400)));
    const err = await rejection(engine.completeOrConfirm(upload, parts, expected));
    expect(err).toMatchObject({ code: 'S3_ERROR', retryable: false });
    expect(err.message).toMatch(/CompleteMultipartUpload for Firefox.pkg: InvalidPart/);
    expect(s3.commands('HeadObjectCommand')).toEqual([]);
  });
});

describe('MultipartEngine.abort', () => {
  it('is true when the upload was aborted', async () => {
    const { s3, engine } = setup();
    s3.on('AbortMultipartUploadCommand', ok({}));
    await expect(engine.abort(upload)).resolves.toBe(true);
    expect(s3.commands('AbortMultipartUploadCommand')[0]!.input).toEqual({
      Bucket: 'jcds-bucket',
      Key: 'files/Firefox.pkg',
      UploadId: 'mpu-1',
    });
  });

  it('is false when S3 no longer has it', async () => {
    const { s3, engine } = setup();
    s3.on(
      'AbortMultipartUploadCommand',
      fail(new NoSuchUpload({ message: 'gone', $metadata: { httpStatusCode: 404 } })),
    );
    await expect(engine.abort(upload)).resolves.toBe(false);
  });

  it('throws an AppError on another failure', async () => {
    const { s3, engine } = setup();
    s3.on('AbortMultipartUploadCommand', fail(s3Error('InternalError', 500)));
    const err = await rejection(engine.abort(upload));
    expect(err).toMatchObject({ code: 'S3_ERROR', retryable: true });
    expect(err.message).toMatch(/AbortMultipartUpload: InternalError \(HTTP 500\)/);
  });
});

describe('MultipartEngine.abortStrays', () => {
  it('aborts the other uploads of the same key only', async () => {
    const { s3, engine, lines } = setup();
    s3.on(
      'ListMultipartUploadsCommand',
      ok({
        Uploads: [
          { Key: 'files/Firefox.pkg', UploadId: 'mpu-1' },
          { Key: 'files/Firefox.pkg', UploadId: 'stray-a' },
          { Key: 'files/Firefox.pkg.old', UploadId: 'other-key' },
          { Key: 'files/Firefox.pkg', UploadId: 'stray-b' },
          { Key: 'files/Firefox.pkg' },
        ],
      }),
    );
    s3.on('AbortMultipartUploadCommand', ok({}));
    await engine.abortStrays(target, 'mpu-1');
    expect(s3.commands('ListMultipartUploadsCommand')[0]!.input).toEqual({
      Bucket: 'jcds-bucket',
      Prefix: 'files/Firefox.pkg',
    });
    expect(s3.commands('AbortMultipartUploadCommand').map(c => c.input)).toEqual([
      { Bucket: 'jcds-bucket', Key: 'files/Firefox.pkg', UploadId: 'stray-a' },
      { Bucket: 'jcds-bucket', Key: 'files/Firefox.pkg', UploadId: 'stray-b' },
    ]);
    const info = lines().filter(
      l => l['msg'] === 'stray multipart upload of an earlier attempt aborted',
    );
    expect(info.map(l => l['uploadId'])).toEqual(['stray-a', 'stray-b']);
  });

  it('aborts every upload of the key when there is none to keep', async () => {
    const { s3, engine } = setup();
    s3.on(
      'ListMultipartUploadsCommand',
      ok({ Uploads: [{ Key: 'files/Firefox.pkg', UploadId: 'mpu-1' }] }),
    );
    s3.on('AbortMultipartUploadCommand', ok({}));
    await engine.abortStrays(target);
    expect(s3.commands('AbortMultipartUploadCommand').map(c => c.input['UploadId'])).toEqual([
      'mpu-1',
    ]);
  });

  it('is silent when the credentials may not list uploads', async () => {
    const { s3, engine, lines } = setup();
    s3.on('ListMultipartUploadsCommand', fail(s3Error('AccessDenied', 403)));
    await expect(engine.abortStrays(target, 'mpu-1')).resolves.toBeUndefined();
    expect(lines()).toEqual([]);
    expect(s3.commands('AbortMultipartUploadCommand')).toEqual([]);
  });

  it('logs other errors instead of throwing them', async () => {
    const { s3, engine, lines } = setup();
    s3.on('ListMultipartUploadsCommand', fail(s3Error('InternalError', 500)));
    await expect(engine.abortStrays(target, 'mpu-1')).resolves.toBeUndefined();
    const warn = lines().filter(l => l['msg'] === 'could not clean up stray multipart uploads');
    expect(warn).toHaveLength(1);
    expect(warn[0]).toMatchObject({ level: 40, key: 'files/Firefox.pkg' });
  });
});

describe('MultipartEngine.release', () => {
  it("drops the upload's client (a later call builds a new one)", () => {
    const { engine, sessions } = setup();
    const first = sessions.client(target.vaultKey, target.region);
    engine.release(target);
    expect(sessions.client(target.vaultKey, target.region)).not.toBe(first);
    sessions.close();
  });
});
