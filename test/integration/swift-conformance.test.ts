/**
 * S3 conformance of the project's transfer code, against a real S3 implementation
 * (OpenStack Swift's s3api, started by scripts/swift/swift-s3.sh) and against the
 * simulator's S3, with the same assertions, so the two are proven to agree.
 *
 * What runs is the product's own code: createS3Client (WHEN_REQUIRED checksums,
 * path-style), planParts/allParts/multipartEtag, parts with Content-MD5 (as
 * worker/processors/upload-part.ts sends the parts of an upload created without a checksum
 * algorithm), ListParts paginated, Complete and Abort as shared/upload/multipart.ts does,
 * its MultipartEngine end to end (CRC32 parts where the server confirms the algorithm),
 * lib-storage Upload over a stream as its small-file path does, and shared/s3/errors.ts
 * classifying what the servers answer.
 *
 * Swift 2.30's s3api has no flexible checksums: it does not confirm CreateMultipartUpload's
 * x-amz-checksum-algorithm, ignores x-amz-checksum-crc32 (a wrong one is stored), and its
 * CompleteMultipartUpload schema (complete_multipart_upload.rng: PartNumber and ETag only)
 * would refuse ChecksumCRC32 elements as MalformedXML. So against Swift the product falls
 * back to Content-MD5 parts, and per-part CRC32 is checked against the simulator only.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { PassThrough, Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListPartsCommand,
  PutObjectCommand,
  UploadPartCommand,
  type Part,
  type S3Client,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { JamfClient } from '../../shared/jamf/client.ts';
import { md5Base64, md5Hex } from '../../shared/hash/index.ts';
import { createLogger } from '../../shared/logger.ts';
import { createS3Client } from '../../shared/s3/client.ts';
import {
  isAccessDenied,
  isNoSuchUpload,
  isNotFound,
  isRetryableS3,
  isSlowDown,
  s3Code,
  s3Status,
  toS3AppError,
} from '../../shared/s3/errors.ts';
import {
  allParts,
  MIN_PART_SIZE,
  multipartEtag,
  planParts,
} from '../../shared/upload/part-plan.ts';
import { MiB } from '../../shared/units.ts';
import { MultipartEngine } from '../../shared/upload/multipart.ts';
import { S3Sessions } from '../../shared/upload/s3-sessions.ts';
import { spawnSimulator, type SpawnedSimulator } from '../helpers/sim.ts';
import { startSwift, type SwiftS3 } from '../helpers/swift.ts';

interface Target {
  s3: S3Client;
  /** Same access key id, wrong secret. */
  badSecret: S3Client;
  bucket: string;
  /** Key prefix (the JCDS `path` on the simulator). */
  prefix: string;
  secret: string;
  /** S3Sessions over the same endpoint and credentials, for the product's MultipartEngine. */
  sessions: S3Sessions;
  region: string;
  close(): Promise<void>;
}

/** S3Sessions whose vault always gives these credentials. */
function fixedSessions(
  endpoint: string,
  region: string,
  creds: { accessKeyId: string; secretAccessKey: string; sessionToken?: string },
): S3Sessions {
  return new S3Sessions({
    endpoint,
    vault: {
      get: async () => ({
        sessionToken: '',
        ...creds,
        expiration: Date.now() + 3_600_000,
        issuedAt: Date.now(),
        region,
        bucketName: '',
        path: '',
      }),
    },
  });
}

/** What each endpoint answered where S3 implementations may legitimately differ. */
const observed: Record<string, Record<string, string>> = { swift: {}, simulator: {} };

async function swiftTarget(): Promise<Target> {
  const swift: SwiftS3 = await startSwift();
  const creds = { accessKeyId: swift.accessKeyId, secretAccessKey: swift.secretAccessKey };
  const s3 = createS3Client({ region: swift.region, endpoint: swift.endpoint, credentials: creds });
  const badSecret = createS3Client({
    region: swift.region,
    endpoint: swift.endpoint,
    credentials: { ...creds, secretAccessKey: 'not-the-secret-0000' },
  });
  const bucket = 'jcds-conformance';
  try {
    await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  } catch (err) {
    s3.destroy();
    badSecret.destroy();
    await swift.stop();
    throw new Error(`Swift answered CreateBucket with an error; its logs:\n${swift.logs()}`, {
      cause: err,
    });
  }
  return {
    s3,
    badSecret,
    bucket,
    prefix: 'jcds/',
    secret: swift.secretAccessKey,
    sessions: fixedSessions(swift.endpoint, swift.region, creds),
    region: swift.region,
    close: async () => {
      s3.destroy();
      badSecret.destroy();
      await swift.stop();
    },
  };
}

async function simulatorTarget(): Promise<Target> {
  const sim: SpawnedSimulator = await spawnSimulator();
  const jamf = new JamfClient({
    baseUrl: sim.info.jamfUrl,
    auth: { kind: 'oauth', id: sim.info.clientId, secret: sim.info.clientSecret },
  });
  const c = await jamf.createJcdsFile().catch(async (err: unknown) => {
    await jamf.close();
    await sim.stop();
    throw err;
  });
  const creds = {
    accessKeyId: c.accessKeyID,
    secretAccessKey: c.secretAccessKey,
    sessionToken: c.sessionToken,
  };
  const s3 = createS3Client({
    region: c.region,
    endpoint: sim.info.s3Endpoint,
    credentials: creds,
  });
  const badSecret = createS3Client({
    region: c.region,
    endpoint: sim.info.s3Endpoint,
    credentials: { ...creds, secretAccessKey: 'not-the-secret-0000' },
  });
  return {
    s3,
    badSecret,
    bucket: c.bucketName,
    prefix: c.path,
    secret: c.secretAccessKey,
    sessions: fixedSessions(sim.info.s3Endpoint, c.region, creds),
    region: c.region,
    close: async () => {
      s3.destroy();
      badSecret.destroy();
      await jamf.close();
      await sim.stop();
    },
  };
}

/**
 * One part with Content-MD5, as worker/processors/upload-part.ts sends the parts of an
 * upload created without a checksum algorithm.
 */
async function sendPart(
  t: Target,
  key: string,
  uploadId: string,
  partNumber: number,
  body: Buffer,
  contentMd5 = md5Base64(body),
): Promise<string> {
  const out = await t.s3.send(
    new UploadPartCommand({
      Bucket: t.bucket,
      Key: key,
      UploadId: uploadId,
      PartNumber: partNumber,
      Body: body,
      ContentLength: body.length,
      ContentMD5: contentMd5,
    }),
  );
  expect(out.ETag).toBe(`"${md5Hex(body)}"`);
  return out.ETag!;
}

/** ListParts with pagination, as MultipartEngine.listParts (shared/upload/multipart.ts) does. */
async function listAllParts(
  t: Target,
  key: string,
  uploadId: string,
  maxParts?: number,
): Promise<{ parts: Part[]; pages: number }> {
  const parts: Part[] = [];
  let marker: string | undefined;
  for (let pages = 1; ; pages++) {
    const page = await t.s3.send(
      new ListPartsCommand({
        Bucket: t.bucket,
        Key: key,
        UploadId: uploadId,
        ...(marker ? { PartNumberMarker: marker } : {}),
        ...(maxParts ? { MaxParts: maxParts } : {}),
      }),
    );
    parts.push(...(page.Parts ?? []));
    if (!page.IsTruncated || !page.NextPartNumberMarker) return { parts, pages };
    marker = page.NextPartNumberMarker;
  }
}

async function create(t: Target, key: string): Promise<string> {
  const mpu = await t.s3.send(
    new CreateMultipartUploadCommand({
      Bucket: t.bucket,
      Key: key,
      ContentType: 'application/octet-stream',
    }),
  );
  expect(mpu.UploadId).toBeTruthy();
  return mpu.UploadId!;
}

async function complete(
  t: Target,
  key: string,
  uploadId: string,
  parts: Array<{ partNumber: number; etag: string }>,
): Promise<void> {
  await t.s3.send(
    new CompleteMultipartUploadCommand({
      Bucket: t.bucket,
      Key: key,
      UploadId: uploadId,
      MultipartUpload: { Parts: parts.map(p => ({ PartNumber: p.partNumber, ETag: p.etag })) },
    }),
  );
}

async function failure(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error('expected the S3 call to fail, but it succeeded');
}

async function readAll(t: Target, key: string, range?: string): Promise<Buffer> {
  const out = await t.s3.send(
    new GetObjectCommand({ Bucket: t.bucket, Key: key, ...(range ? { Range: range } : {}) }),
  );
  return Buffer.from(await out.Body!.transformToByteArray());
}

const DATA = randomBytes(12 * MiB + 123);
const PLAN = planParts(DATA.length, MIN_PART_SIZE);
const RANGES = allParts(DATA.length, PLAN);
const slice = (n: number): Buffer => {
  const r = RANGES[n - 1]!;
  return DATA.subarray(r.offset, r.offset + r.length);
};

describe.each([
  ['swift', swiftTarget],
  ['simulator', simulatorTarget],
] as const)('S3 conformance: %s', (name, makeTarget) => {
  let t: Target;
  const key = (what: string): string => `${t.prefix}conformance/${what}-${randomUUID()}.pkg`;

  beforeAll(async () => {
    t = await makeTarget();
  }, 120_000);
  afterAll(async () => {
    await t?.close();
  });

  it('plans 3 parts for 12 MiB + 123 bytes at the 5 MiB minimum', () => {
    expect(PLAN).toEqual({ partSize: 5 * MiB, partCount: 3 });
    expect(RANGES.map(r => r.length)).toEqual([5 * MiB, 5 * MiB, 2 * MiB + 123]);
  });

  it('multipart upload with parts sent out of order: ListParts, Complete (md5-N), whole and ranged reads', async () => {
    const k = key('out-of-order');
    const uploadId = await create(t, k);
    const etags = new Map<number, string>();
    for (const n of [3, 1, 2]) etags.set(n, await sendPart(t, k, uploadId, n, slice(n)));

    const { parts } = await listAllParts(t, k, uploadId);
    expect(parts.map(p => [p.PartNumber, p.ETag, p.Size])).toEqual(
      RANGES.map(r => [r.partNumber, etags.get(r.partNumber), r.length]),
    );
    const listed = await t.s3.send(new ListMultipartUploadsCommand({ Bucket: t.bucket }));
    expect(listed.Uploads?.some(u => u.UploadId === uploadId && u.Key === k)).toBe(true);

    const sorted = [1, 2, 3].map(n => ({ partNumber: n, etag: etags.get(n)! }));
    await complete(t, k, uploadId, sorted);
    const head = await t.s3.send(new HeadObjectCommand({ Bucket: t.bucket, Key: k }));
    expect(head.ContentLength).toBe(DATA.length);
    expect(head.ETag).toBe(
      multipartEtag(
        sorted.map(p => p.etag),
        md5Hex,
      ),
    );
    expect(head.ETag).toMatch(/^"[0-9a-f]{32}-3"$/);
    expect(md5Hex(await readAll(t, k))).toBe(md5Hex(DATA));

    // Ranges inside a part, across the part 1/2 boundary, and the tail.
    const inside = await readAll(t, k, 'bytes=100-1099');
    expect(inside.equals(DATA.subarray(100, 1100))).toBe(true);
    const b = PLAN.partSize;
    const across = await readAll(t, k, `bytes=${b - 1000}-${b + 999}`);
    expect(across.equals(DATA.subarray(b - 1000, b + 1000))).toBe(true);
    const tail = await readAll(t, k, 'bytes=-77');
    expect(tail.equals(DATA.subarray(DATA.length - 77))).toBe(true);

    // A presigned GET with Range, as downloads fetch it.
    const url = await getSignedUrl(t.s3, new GetObjectCommand({ Bucket: t.bucket, Key: k }), {
      expiresIn: 300,
    });
    const res = await fetch(url, { headers: { Range: `bytes=${2 * b}-${2 * b + 4095}` } });
    expect(res.status).toBe(206);
    expect(Buffer.from(await res.arrayBuffer()).equals(DATA.subarray(2 * b, 2 * b + 4096))).toBe(
      true,
    );

    // Past the end: 416 InvalidRange, not retryable.
    const past = await failure(readAll(t, k, `bytes=${DATA.length + 10}-${DATA.length + 20}`));
    expect(s3Status(past)).toBe(416);
    expect(s3Code(past)).toBe('InvalidRange');
    expect(isRetryableS3(past)).toBe(false);
  });

  it('resume: a fresh client finds the parts already sent with ListParts (paginated) and completes', async () => {
    const k = key('resume');
    const uploadId = await create(t, k);
    const first = await sendPart(t, k, uploadId, 1, slice(1));
    const second = await sendPart(t, k, uploadId, 2, slice(2));

    // As a worker taking over would: what does S3 hold? One part per page to walk markers.
    const { parts, pages } = await listAllParts(t, k, uploadId, 1);
    expect(pages).toBe(2);
    expect(parts.map(p => p.PartNumber)).toEqual([1, 2]);
    expect(parts.map(p => p.ETag)).toEqual([first, second]);
    const have = new Set(parts.map(p => p.PartNumber));
    const missing = RANGES.filter(r => !have.has(r.partNumber)).map(r => r.partNumber);
    expect(missing).toEqual([3]);

    // A re-sent part (a zombie worker) overwrites that part number with the same bytes.
    expect(await sendPart(t, k, uploadId, 1, slice(1))).toBe(first);
    const third = await sendPart(t, k, uploadId, 3, slice(3));
    await complete(t, k, uploadId, [
      { partNumber: 1, etag: first },
      { partNumber: 2, etag: second },
      { partNumber: 3, etag: third },
    ]);
    expect(md5Hex(await readAll(t, k))).toBe(md5Hex(DATA));
  });

  it('a repeated CompleteMultipartUpload succeeds or answers NoSuchUpload; HeadObject confirms the object', async () => {
    const k = key('recomplete');
    const uploadId = await create(t, k);
    const parts = [];
    for (const r of RANGES)
      parts.push({
        partNumber: r.partNumber,
        etag: await sendPart(t, k, uploadId, r.partNumber, slice(r.partNumber)),
      });
    await complete(t, k, uploadId, parts);
    const again = await complete(t, k, uploadId, parts).then(
      () => 'ok',
      (err: unknown) => {
        // The product's completeS3 treats NoSuchUpload as "maybe done": HeadObject decides.
        expect(isNoSuchUpload(err), String(err)).toBe(true);
        return `NoSuchUpload (${s3Status(err)})`;
      },
    );
    observed[name]!['repeated Complete'] = again;
    const head = await t.s3.send(new HeadObjectCommand({ Bucket: t.bucket, Key: k }));
    expect(head.ContentLength).toBe(DATA.length);
    expect(head.ETag).toBe(
      multipartEtag(
        parts.map(p => p.etag),
        md5Hex,
      ),
    );
  });

  it('AbortMultipartUpload: the upload is gone (NoSuchUpload everywhere) and no longer listed', async () => {
    const k = key('abort');
    const uploadId = await create(t, k);
    const etag = await sendPart(t, k, uploadId, 1, slice(1));
    await t.s3.send(
      new AbortMultipartUploadCommand({ Bucket: t.bucket, Key: k, UploadId: uploadId }),
    );

    const listed = await t.s3.send(new ListMultipartUploadsCommand({ Bucket: t.bucket }));
    expect(listed.Uploads?.some(u => u.UploadId === uploadId) ?? false).toBe(false);
    for (const call of [
      () => listAllParts(t, k, uploadId),
      () => sendPart(t, k, uploadId, 2, slice(2)),
      () => complete(t, k, uploadId, [{ partNumber: 1, etag }]),
    ]) {
      const err = await failure(call());
      expect(s3Code(err), String(err)).toBe('NoSuchUpload');
      expect(isNoSuchUpload(err)).toBe(true);
      expect(isNotFound(err)).toBe(true);
      expect(s3Status(err)).toBe(404);
      const app = toS3AppError(err, `UploadPart 2 of abort.pkg`);
      expect(app.code).toBe('S3_ERROR');
      expect(app.retryable).toBe(false);
      expect(app.message).toMatch(/NoSuchUpload \(HTTP 404\)/);
    }
    const head = await failure(t.s3.send(new HeadObjectCommand({ Bucket: t.bucket, Key: k })));
    expect(isNotFound(head)).toBe(true);
  });

  it('maps InvalidPart (wrong ETag, part never sent) and EntityTooSmall to permanent S3_ERRORs', async () => {
    const k = key('invalid-part');
    const uploadId = await create(t, k);
    const e1 = await sendPart(t, k, uploadId, 1, slice(1));
    const e2 = await sendPart(t, k, uploadId, 2, slice(2));
    const wrong = `"${'0'.repeat(32)}"`;
    for (const parts of [
      [
        { partNumber: 1, etag: e1 },
        { partNumber: 2, etag: wrong },
      ],
      [
        { partNumber: 1, etag: e1 },
        { partNumber: 2, etag: e2 },
        { partNumber: 3, etag: `"${md5Hex(slice(3))}"` },
      ],
    ]) {
      const err = await failure(complete(t, k, uploadId, parts));
      expect(s3Code(err), String(err)).toBe('InvalidPart');
      expect(s3Status(err)).toBe(400);
      const app = toS3AppError(err, 'CompleteMultipartUpload for invalid-part.pkg');
      expect(app.code).toBe('S3_ERROR');
      expect(app.retryable).toBe(false);
      expect(app.message).toMatch(
        /^S3 refused CompleteMultipartUpload for invalid-part\.pkg: InvalidPart \(HTTP 400\)/,
      );
    }
    // The upload survives a refused Complete.
    const e3 = await sendPart(t, k, uploadId, 3, slice(3));
    await complete(t, k, uploadId, [
      { partNumber: 1, etag: e1 },
      { partNumber: 2, etag: e2 },
      { partNumber: 3, etag: e3 },
    ]);

    const small = key('too-small');
    const smallId = await create(t, small);
    const tiny = randomBytes(1 * MiB);
    const s1 = await sendPart(t, small, smallId, 1, tiny);
    const s2 = await sendPart(t, small, smallId, 2, tiny);
    const err = await failure(
      complete(t, small, smallId, [
        { partNumber: 1, etag: s1 },
        { partNumber: 2, etag: s2 },
      ]),
    );
    expect(s3Code(err), String(err)).toBe('EntityTooSmall');
    expect(s3Status(err)).toBe(400);
    const app = toS3AppError(err, 'CompleteMultipartUpload for too-small.pkg');
    expect(app.code).toBe('S3_ERROR');
    expect(app.retryable).toBe(false);
    await t.s3.send(
      new AbortMultipartUploadCommand({ Bucket: t.bucket, Key: small, UploadId: smallId }),
    );
  });

  it('maps NoSuchUpload for an unknown upload id, and BadDigest for a Content-MD5 that does not match', async () => {
    const k = key('unknown-upload');
    const bogus = await failure(sendPart(t, k, 'no-such-upload-id-0000', 1, slice(1)));
    expect(isNoSuchUpload(bogus), String(bogus)).toBe(true);
    expect(toS3AppError(bogus, 'UploadPart 1').retryable).toBe(false);

    const uploadId = await create(t, k);
    const digest = await failure(sendPart(t, k, uploadId, 1, slice(1), md5Base64(slice(2))));
    expect(s3Code(digest), String(digest)).toBe('BadDigest');
    expect(s3Status(digest)).toBe(400);
    const app = toS3AppError(digest, 'UploadPart 1 of unknown-upload.pkg');
    expect(app.code).toBe('S3_ERROR');
    expect(isSlowDown(digest)).toBe(false);
    // Nothing was stored for that part.
    expect((await listAllParts(t, k, uploadId)).parts).toEqual([]);
    await t.s3.send(
      new AbortMultipartUploadCommand({ Bucket: t.bucket, Key: k, UploadId: uploadId }),
    );
  });

  it('maps a signature error (wrong secret) to a permanent 403 whose message carries no secret', async () => {
    const k = key('signature');
    const calls: Array<[string, () => Promise<unknown>]> = [
      [
        'PutObject',
        () =>
          t.badSecret.send(
            new PutObjectCommand({ Bucket: t.bucket, Key: k, Body: Buffer.from('x') }),
          ),
      ],
      [
        'CreateMultipartUpload',
        () => t.badSecret.send(new CreateMultipartUploadCommand({ Bucket: t.bucket, Key: k })),
      ],
      ['HeadObject', () => t.badSecret.send(new HeadObjectCommand({ Bucket: t.bucket, Key: k }))],
    ];
    for (const [op, call] of calls) {
      const err = await failure(call());
      observed[name]![`${op} with a wrong secret`] = `${s3Code(err)} ${s3Status(err)}`;
      expect(s3Status(err), String(err)).toBe(403);
      expect(isAccessDenied(err)).toBe(true);
      expect(isRetryableS3(err)).toBe(false);
      const app = toS3AppError(err, `${op} for signature.pkg`);
      expect(app.code).toBe('S3_ERROR');
      expect(app.retryable).toBe(false);
      expect(app.message).not.toContain(t.secret);
      expect(app.message).not.toContain('not-the-secret-0000');
      // HEAD has no body: the SDK cannot read a code, so the status alone classifies it.
      if (op !== 'HeadObject') expect(s3Code(err)).toBe('SignatureDoesNotMatch');
    }
  });

  it('an error answered before a part body is read surfaces as that error, not as a broken pipe', async () => {
    // Part-sized bodies refused at authentication, several at once: the client must read the
    // answer (and classify it) rather than fail writing the body (EPIPE / ECONNRESET).
    const k = key('early-error');
    const uploadId = await create(t, k);
    const results = await Promise.allSettled(
      [1, 2, 3, 4].map(n =>
        t.badSecret.send(
          new UploadPartCommand({
            Bucket: t.bucket,
            Key: k,
            UploadId: uploadId,
            PartNumber: n,
            Body: slice(n === 4 ? 1 : n),
            ContentLength: slice(n === 4 ? 1 : n).length,
            ContentMD5: md5Base64(slice(n === 4 ? 1 : n)),
          }),
        ),
      ),
    );
    for (const r of results) {
      expect(r.status).toBe('rejected');
      const err = (r as PromiseRejectedResult).reason as unknown;
      expect(`${s3Code(err)} ${s3Status(err)}`, String(err)).toBe('SignatureDoesNotMatch 403');
    }
    await t.s3.send(
      new AbortMultipartUploadCommand({ Bucket: t.bucket, Key: k, UploadId: uploadId }),
    );
  });

  it('lib-storage Upload over a stream (the small-file path) stores the exact bytes, single and multipart', async () => {
    for (const size of [1 * MiB + 5, 11 * MiB + 7]) {
      const k = key(`stream-${size}`);
      const body = new PassThrough({ highWaterMark: 1 << 20 });
      Readable.from([DATA.subarray(0, size)]).pipe(body);
      const upload = new Upload({
        client: t.s3,
        // As shared/upload/single.ts: the SDK adds a CRC32 to PutObject and to each part.
        params: {
          Bucket: t.bucket,
          Key: k,
          Body: body,
          ContentType: 'application/octet-stream',
          ChecksumAlgorithm: 'CRC32',
        },
        partSize: 5 * MiB,
        queueSize: 4,
        leavePartsOnError: false,
      });
      await upload.done();
      const got = await readAll(t, k);
      expect(got.length).toBe(size);
      expect(createHash('md5').update(got).digest('hex')).toBe(md5Hex(DATA.subarray(0, size)));
      const head = await t.s3.send(new HeadObjectCommand({ Bucket: t.bucket, Key: k }));
      expect(head.ETag).toMatch(size > 5 * MiB ? /-3"$/ : /^"[0-9a-f]{32}"$/);
    }
  });

  it("the product's MultipartEngine: CRC32 parts where the server confirms the algorithm, Content-MD5 where not", async () => {
    const k = key('engine');
    const engine = new MultipartEngine(t.sessions, createLogger({ level: 'silent' }));
    const target = { bucket: t.bucket, key: k, region: t.region, vaultKey: `conformance-${name}` };
    const created = await engine.create(target, 'engine.pkg');
    observed[name]!['CreateMultipartUpload with ChecksumAlgorithm CRC32'] =
      created.checksumAlgorithm ?? 'not confirmed';
    const u = { ...target, ...created };
    const done = [];
    for (const n of [3, 1, 2]) {
      const sent = await engine.sendPart(u, { partNumber: n, body: slice(n), what: 'engine.pkg' });
      expect(sent.etag).toBe(`"${md5Hex(slice(n))}"`);
      expect(sent.checksumCRC32 !== undefined).toBe(created.checksumAlgorithm === 'CRC32');
      done.push({ partNumber: n, size: slice(n).length, ...sent });
    }
    const result = await engine.completeOrConfirm(u, done, {
      size: DATA.length,
      what: 'engine.pkg',
    });
    expect(result.confirmed).toBe(false);
    expect(result.replacedParts).toEqual([]);
    const head = await t.s3.send(new HeadObjectCommand({ Bucket: t.bucket, Key: k }));
    expect(head.ETag).toBe(result.etag);
    expect((await readAll(t, k)).equals(DATA)).toBe(true);
    engine.release(target);
  });

  it('PutObject with a wrong x-amz-checksum-crc32', async () => {
    const k = key('wrong-crc');
    const err = await t.s3
      .send(
        new PutObjectCommand({
          Bucket: t.bucket,
          Key: k,
          Body: slice(3),
          ChecksumCRC32: 'AAAAAA==',
        }),
      )
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    observed[name]!['PutObject with a wrong CRC32'] = err
      ? `${s3Code(err)} ${s3Status(err)}`
      : 'stored';
  });

  it('signs and stores keys with spaces, +, %, #, ?, unicode exactly', async () => {
    const names = ['Firefox 128 + ESR.pkg', '100% Pure #1?.dmg', 'Café Ünïcode – ✓.zip'];
    for (const n of names) {
      const k = `${t.prefix}conformance/${n}`;
      const bytes = randomBytes(4096);
      await t.s3.send(new PutObjectCommand({ Bucket: t.bucket, Key: k, Body: bytes }));
      expect((await readAll(t, k)).equals(bytes)).toBe(true);
      const url = await getSignedUrl(t.s3, new GetObjectCommand({ Bucket: t.bucket, Key: k }), {
        expiresIn: 300,
      });
      const res = await fetch(url);
      expect(res.status).toBe(200);
      expect(Buffer.from(await res.arrayBuffer()).equals(bytes)).toBe(true);
    }
  });
});

describe('S3 conformance: the two endpoints agree', () => {
  it('answered the same where S3 implementations may differ, except one known difference', () => {
    // Filled by the suites above (they run first, in file order).
    const swift = { ...observed['swift'] };
    const sim = { ...observed['simulator'] };
    expect(Object.keys(swift)).toHaveLength(6);
    // Known difference: Swift 2.30's s3api has no flexible checksums (see the top of this
    // file); the simulator checks them as real S3 does. The product works with both: it
    // falls back to Content-MD5 parts where the algorithm is not confirmed.
    expect(swift['CreateMultipartUpload with ChecksumAlgorithm CRC32']).toBe('not confirmed');
    expect(swift['PutObject with a wrong CRC32']).toBe('stored');
    expect(sim['CreateMultipartUpload with ChecksumAlgorithm CRC32']).toBe('CRC32');
    expect(sim['PutObject with a wrong CRC32']).toBe('BadDigest 400');
    for (const k of [
      'CreateMultipartUpload with ChecksumAlgorithm CRC32',
      'PutObject with a wrong CRC32',
    ]) {
      delete swift[k];
      delete sim[k];
    }
    // Known difference, reported to the simulator's owner: real S3 (and Swift) answer 200
    // to a CompleteMultipartUpload repeated after success; the simulator answers
    // NoSuchUpload. The product accepts both (completeS3 confirms with HeadObject).
    expect(swift['repeated Complete']).toBe('ok');
    expect(sim['repeated Complete']).toBe('NoSuchUpload (404)');
    delete swift['repeated Complete'];
    delete sim['repeated Complete'];
    expect(sim).toEqual(swift);
  });
});
