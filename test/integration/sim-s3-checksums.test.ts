/**
 * Flexible checksums on multipart uploads, over real HTTP against the simulator's S3, as
 * real S3 applies them (test/sim/s3/multipart-ops.ts and multipart-rules.ts cite the AWS
 * docs): CreateMultipartUpload's algorithm and type, each part's x-amz-checksum-crc32
 * verified against its bytes (BadDigest), a part without the declared checksum or with
 * another algorithm refused (InvalidRequest), Complete requiring and checking each part's
 * checksum. Then the product's own MultipartEngine (shared/upload/multipart.ts) through
 * the same endpoint: a whole upload, a part whose bytes are corrupted on the way, and an
 * upload created without an algorithm (an earlier version's, Content-MD5 parts).
 */
import {
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  ListPartsCommand,
  UploadPartCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { createHash, randomBytes } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AppError } from '../../shared/errors.ts';
import { createLogger } from '../../shared/logger.ts';
import type { PartResult } from '../../shared/queues/jobs.ts';
import { MultipartEngine, type OpenUpload } from '../../shared/upload/multipart.ts';
import { S3Sessions } from '../../shared/upload/s3-sessions.ts';
import { REGION, S3Harness } from '../sim/s3/harness.ts';

const MiB = 1024 * 1024;
const BUCKET = 'sim-s3-checksums';
let h: S3Harness;
/** A client that adds no checksum of its own (as shared/s3/client.ts). */
let s3: S3Client;

/** x-amz-checksum-crc32 of a body, computed here (base64 of the big-endian CRC32). */
function crc(body: Buffer): string {
  const out = Buffer.alloc(4);
  out.writeUInt32BE(crc32(body) >>> 0);
  return out.toString('base64');
}
const md5b64 = (b: Buffer): string => createHash('md5').update(b).digest('base64');
const sha256b64 = (b: Buffer): string => createHash('sha256').update(b).digest('base64');

async function errorOf(
  p: Promise<unknown>,
): Promise<{ name: string; status?: number; message: string }> {
  try {
    await p;
  } catch (err) {
    const e = err as { name: string; message: string; $metadata?: { httpStatusCode?: number } };
    return { name: e.name, status: e.$metadata?.httpStatusCode, message: e.message };
  }
  throw new Error('expected the request to fail');
}

async function createCrc32(key: string, type?: 'COMPOSITE' | 'FULL_OBJECT'): Promise<string> {
  const out = await s3.send(
    new CreateMultipartUploadCommand({
      Bucket: BUCKET,
      Key: key,
      ChecksumAlgorithm: 'CRC32',
      ...(type ? { ChecksumType: type } : {}),
    }),
  );
  expect(out.ChecksumAlgorithm).toBe('CRC32');
  return out.UploadId ?? '';
}

function uploadPart(
  key: string,
  uploadId: string,
  n: number,
  body: Buffer,
  checksum: Partial<Record<'ChecksumCRC32' | 'ChecksumSHA256' | 'ContentMD5', string>>,
) {
  return s3.send(
    new UploadPartCommand({
      Bucket: BUCKET,
      Key: key,
      UploadId: uploadId,
      PartNumber: n,
      Body: body,
      ...checksum,
    }),
  );
}

async function getBytes(key: string): Promise<Buffer> {
  const out = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
  return Buffer.from(
    await (out.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray(),
  );
}

const P1 = randomBytes(5 * MiB);
const P2 = randomBytes(MiB + 3);

beforeAll(async () => {
  h = await S3Harness.start();
  s3 = h.client({
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
});

afterAll(async () => {
  await h.close();
});

describe('CreateMultipartUpload with a checksum algorithm', () => {
  it('echoes CRC32 as COMPOSITE by default, and FULL_OBJECT when asked', async () => {
    const composite = await s3.send(
      new CreateMultipartUploadCommand({
        Bucket: BUCKET,
        Key: 'c.bin',
        ChecksumAlgorithm: 'CRC32',
      }),
    );
    expect([composite.ChecksumAlgorithm, composite.ChecksumType]).toEqual(['CRC32', 'COMPOSITE']);
    const full = await s3.send(
      new CreateMultipartUploadCommand({
        Bucket: BUCKET,
        Key: 'f.bin',
        ChecksumAlgorithm: 'CRC32',
        ChecksumType: 'FULL_OBJECT',
      }),
    );
    expect([full.ChecksumAlgorithm, full.ChecksumType]).toEqual(['CRC32', 'FULL_OBJECT']);
  });

  it('refuses a type the algorithm cannot have, as S3 does', async () => {
    const err = await errorOf(
      s3.send(
        new CreateMultipartUploadCommand({
          Bucket: BUCKET,
          Key: 'bad.bin',
          ChecksumAlgorithm: 'SHA256',
          ChecksumType: 'FULL_OBJECT',
        }),
      ),
    );
    expect(err).toMatchObject({
      name: 'InvalidRequest',
      status: 400,
      message: 'The FULL_OBJECT checksum type cannot be used with the sha256 checksum algorithm.',
    });
  });
});

describe('UploadPart of an upload created with CRC32', () => {
  it('stores a part whose CRC32 matches, echoes it, and ListParts shows it', async () => {
    const id = await createCrc32('good.bin');
    const out = await uploadPart('good.bin', id, 1, P1, { ChecksumCRC32: crc(P1) });
    expect(out.ChecksumCRC32).toBe(crc(P1));
    const listed = await s3.send(
      new ListPartsCommand({ Bucket: BUCKET, Key: 'good.bin', UploadId: id }),
    );
    expect(listed.ChecksumAlgorithm).toBe('CRC32');
    expect(listed.Parts?.map(p => [p.PartNumber, p.ChecksumCRC32])).toEqual([[1, crc(P1)]]);
  });

  it('refuses a wrong CRC32 with BadDigest and keeps no part', async () => {
    const id = await createCrc32('wrong.bin');
    const err = await errorOf(uploadPart('wrong.bin', id, 1, P1, { ChecksumCRC32: crc(P2) }));
    expect(err).toMatchObject({
      name: 'BadDigest',
      status: 400,
      message: 'The CRC32 you specified did not match the calculated checksum.',
    });
    const listed = await s3.send(
      new ListPartsCommand({ Bucket: BUCKET, Key: 'wrong.bin', UploadId: id }),
    );
    expect(listed.Parts ?? []).toEqual([]);
  });

  it('refuses a part without the declared checksum (Content-MD5 only), before storing it', async () => {
    const id = await createCrc32('md5only.bin');
    const err = await errorOf(uploadPart('md5only.bin', id, 1, P1, { ContentMD5: md5b64(P1) }));
    expect(err).toMatchObject({
      name: 'InvalidRequest',
      status: 400,
      message:
        'Checksum Type mismatch occurred, expected checksum Type: crc32, actual checksum Type: null',
    });
    const listed = await s3.send(
      new ListPartsCommand({ Bucket: BUCKET, Key: 'md5only.bin', UploadId: id }),
    );
    expect(listed.Parts ?? []).toEqual([]);
  });

  it('refuses a part with another algorithm', async () => {
    const id = await createCrc32('sha.bin');
    const err = await errorOf(uploadPart('sha.bin', id, 1, P1, { ChecksumSHA256: sha256b64(P1) }));
    expect(err).toMatchObject({
      name: 'InvalidRequest',
      message:
        'Checksum Type mismatch occurred, expected checksum Type: crc32, actual checksum Type: sha256',
    });
  });

  it('takes a part without a checksum on a FULL_OBJECT upload (S3 computes its own)', async () => {
    const id = await createCrc32('full.bin', 'FULL_OBJECT');
    const out = await uploadPart('full.bin', id, 1, P2, {});
    expect(out.ETag).toBeDefined();
  });
});

describe('CompleteMultipartUpload of a COMPOSITE CRC32 upload', () => {
  async function twoParts(key: string): Promise<{ id: string; etags: string[] }> {
    const id = await createCrc32(key);
    const a = await uploadPart(key, id, 1, P1, { ChecksumCRC32: crc(P1) });
    const b = await uploadPart(key, id, 2, P2, { ChecksumCRC32: crc(P2) });
    return { id, etags: [a.ETag ?? '', b.ETag ?? ''] };
  }

  it("completes with each part's CRC32 and answers the composite checksum", async () => {
    const { id, etags } = await twoParts('done.bin');
    const done = await s3.send(
      new CompleteMultipartUploadCommand({
        Bucket: BUCKET,
        Key: 'done.bin',
        UploadId: id,
        MultipartUpload: {
          Parts: [
            { PartNumber: 1, ETag: etags[0], ChecksumCRC32: crc(P1) },
            { PartNumber: 2, ETag: etags[1], ChecksumCRC32: crc(P2) },
          ],
        },
      }),
    );
    const digests = Buffer.concat([P1, P2].map(p => Buffer.from(crc(p), 'base64')));
    expect(done.ChecksumCRC32).toBe(`${crc(digests)}-2`);
    expect(done.ChecksumType).toBe('COMPOSITE');
    expect((await getBytes('done.bin')).equals(Buffer.concat([P1, P2]))).toBe(true);
  });

  it('refuses a Complete that lists ETags only, naming the first part without its checksum', async () => {
    const { id, etags } = await twoParts('etags-only.bin');
    const err = await errorOf(
      s3.send(
        new CompleteMultipartUploadCommand({
          Bucket: BUCKET,
          Key: 'etags-only.bin',
          UploadId: id,
          MultipartUpload: {
            Parts: [
              { PartNumber: 1, ETag: etags[0] },
              { PartNumber: 2, ETag: etags[1] },
            ],
          },
        }),
      ),
    );
    expect(err).toMatchObject({
      name: 'InvalidRequest',
      status: 400,
      message:
        'The upload was created using a crc32 checksum. The complete request must include the checksum for each part. It was missing for part 1 in the request.',
    });
  });

  it('refuses a Complete listing a wrong part checksum with InvalidPart', async () => {
    const { id, etags } = await twoParts('bad-list.bin');
    const err = await errorOf(
      s3.send(
        new CompleteMultipartUploadCommand({
          Bucket: BUCKET,
          Key: 'bad-list.bin',
          UploadId: id,
          MultipartUpload: {
            Parts: [
              { PartNumber: 1, ETag: etags[0], ChecksumCRC32: crc(P1) },
              { PartNumber: 2, ETag: etags[1], ChecksumCRC32: crc(P1) },
            ],
          },
        }),
      ),
    );
    expect(err).toMatchObject({ name: 'InvalidPart', status: 400 });
  });
});

describe("the product's MultipartEngine against the simulator", () => {
  function engine(): { engine: MultipartEngine; sessions: S3Sessions } {
    const c = h.credential;
    const sessions = new S3Sessions({
      endpoint: h.endpoint,
      vault: {
        get: async () => ({
          accessKeyId: c.accessKeyId,
          secretAccessKey: c.secretAccessKey,
          sessionToken: c.sessionToken,
          expiration: c.expiresAt,
          issuedAt: Date.now(),
          region: REGION,
          bucketName: BUCKET,
          path: '',
        }),
      },
    });
    return { engine: new MultipartEngine(sessions, createLogger({ level: 'silent' })), sessions };
  }
  const target = { bucket: BUCKET, region: REGION, vaultKey: 'v' };

  async function sendAll(
    e: MultipartEngine,
    u: OpenUpload,
    bodies: Buffer[],
  ): Promise<PartResult[]> {
    const out: PartResult[] = [];
    for (const [i, body] of bodies.entries())
      out.push({
        partNumber: i + 1,
        size: body.length,
        ...(await e.sendPart(u, { partNumber: i + 1, body, what: u.key })),
      });
    return out;
  }

  it('creates with CRC32, sends CRC32 parts and completes with them', async () => {
    const { engine: e, sessions } = engine();
    const t = { ...target, key: 'engine/ok.bin' };
    const created = await e.create(t, 'ok.bin');
    expect(created.checksumAlgorithm).toBe('CRC32');
    const u = { ...t, ...created };
    const parts = await sendAll(e, u, [P1, P2]);
    expect(parts.map(p => p.checksumCRC32)).toEqual([crc(P1), crc(P2)]);
    const done = await e.completeOrConfirm(u, parts, {
      size: P1.length + P2.length,
      what: 'ok.bin',
    });
    expect(done.confirmed).toBe(false);
    expect((await getBytes('engine/ok.bin')).equals(Buffer.concat([P1, P2]))).toBe(true);
    sessions.release('v');
  });

  it('a part whose bytes are corrupted on the way is refused (BadDigest): no object', async () => {
    const { engine: e, sessions } = engine();
    const t = { ...target, key: 'engine/corrupt.bin' };
    const u = { ...t, ...(await e.create(t, 'corrupt.bin')) };
    h.faults.corruptPartNumbers = [2];
    try {
      const err = await e.sendPart(u, { partNumber: 2, body: P2, what: 'corrupt.bin' }).then(
        () => undefined,
        (x: unknown) => x,
      );
      expect(err).toBeInstanceOf(AppError);
      expect((err as AppError).message).toMatch(
        /UploadPart 2 of corrupt.bin: BadDigest \(HTTP 400\)/,
      );
    } finally {
      delete h.faults.corruptPartNumbers;
    }
    expect(h.store.info(BUCKET, 'engine/corrupt.bin')).toBeUndefined();
    expect(h.store.listParts(BUCKET, 'engine/corrupt.bin', u.uploadId)).toEqual([]);
    sessions.release('v');
  });

  it('an upload created without an algorithm (an earlier version) sends Content-MD5 parts and completes without checksums', async () => {
    const { engine: e, sessions } = engine();
    const key = 'engine/legacy.bin';
    const legacy = await s3.send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: key }));
    expect(legacy.ChecksumAlgorithm).toBeUndefined();
    const u: OpenUpload = { ...target, key, uploadId: legacy.UploadId ?? '' };
    const parts = await sendAll(e, u, [P1, P2]);
    expect(parts.map(p => p.checksumCRC32)).toEqual([undefined, undefined]);
    expect(h.store.listParts(BUCKET, key, u.uploadId)?.map(p => p.checksum)).toEqual([
      undefined,
      undefined,
    ]);
    await e.completeOrConfirm(u, parts, { size: P1.length + P2.length, what: 'legacy.bin' });
    expect((await getBytes(key)).equals(Buffer.concat([P1, P2]))).toBe(true);
    sessions.release('v');
  });
});
