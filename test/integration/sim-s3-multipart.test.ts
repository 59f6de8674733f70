/**
 * Multipart uploads against the simulator's S3 endpoint with the real AWS SDK: S3's rules
 * (5 MiB minimum, part numbers 1..10000, InvalidPart, InvalidPartOrder, NoSuchUpload),
 * md5-N ETags, ListParts pagination, Abort, a repeated Complete, and restarts.
 */
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListPartsCommand,
  UploadPartCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { createHash, randomBytes } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { crc32 } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { S3Harness } from '../sim/s3/harness.ts';
import { DiskObjectStore } from '../sim/store.ts';

const MiB = 1024 * 1024;
const BUCKET = 'sim-s3-multipart';
let h: S3Harness;
let s3: S3Client;

const md5 = (b: Buffer): string => createHash('md5').update(b).digest('hex');
const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

async function create(key: string): Promise<string> {
  const out = await s3.send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: key }));
  return out.UploadId ?? '';
}

async function part(key: string, uploadId: string, n: number, body: Buffer): Promise<string> {
  const out = await s3.send(
    new UploadPartCommand({
      Bucket: BUCKET,
      Key: key,
      UploadId: uploadId,
      PartNumber: n,
      Body: body,
    }),
  );
  return out.ETag ?? '';
}

function complete(key: string, uploadId: string, parts: Array<{ n: number; etag: string }>) {
  return s3.send(
    new CompleteMultipartUploadCommand({
      Bucket: BUCKET,
      Key: key,
      UploadId: uploadId,
      MultipartUpload: { Parts: parts.map(p => ({ PartNumber: p.n, ETag: p.etag })) },
    }),
  );
}

async function errorOf(p: Promise<unknown>): Promise<{ name: string; status: number | undefined }> {
  try {
    await p;
  } catch (err) {
    const e = err as { name: string; $metadata?: { httpStatusCode?: number } };
    return { name: e.name, status: e.$metadata?.httpStatusCode };
  }
  throw new Error('expected the request to fail');
}

async function getBytes(key: string, range?: string): Promise<Buffer> {
  const out = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: key, Range: range }));
  return Buffer.from(
    await (out.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray(),
  );
}

function multipartEtag(bodies: Buffer[]): string {
  const joined = Buffer.concat(bodies.map(b => createHash('md5').update(b).digest()));
  return `"${md5(joined)}-${bodies.length}"`;
}

const P1 = randomBytes(5 * MiB);
const P2 = randomBytes(5 * MiB);
const P3 = randomBytes(MiB + 7);

beforeAll(async () => {
  h = await S3Harness.start();
  s3 = h.client();
});

afterAll(async () => {
  await h.close();
});

describe('CompleteMultipartUpload', () => {
  it('joins the parts into the exact bytes, with the md5-N ETag', async () => {
    const id = await create('three.bin');
    const etags = [
      await part('three.bin', id, 1, P1),
      await part('three.bin', id, 2, P2),
      await part('three.bin', id, 3, P3),
    ];
    expect(etags).toEqual([P1, P2, P3].map(b => `"${md5(b)}"`));
    const done = await complete(
      'three.bin',
      id,
      etags.map((etag, i) => ({ n: i + 1, etag })),
    );
    expect(done.ETag).toBe(multipartEtag([P1, P2, P3]));
    const head = await s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: 'three.bin' }));
    expect([head.ContentLength, head.ETag]).toEqual([P1.length + P2.length + P3.length, done.ETag]);
    expect(sha256(await getBytes('three.bin'))).toBe(sha256(Buffer.concat([P1, P2, P3])));
  });

  it('accepts a full-object checksum header on Complete (not a checksum of the XML body)', async () => {
    const id = await create('full-crc.bin');
    const etag = await part('full-crc.bin', id, 1, P3);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(P3));
    const done = await s3.send(
      new CompleteMultipartUploadCommand({
        Bucket: BUCKET,
        Key: 'full-crc.bin',
        UploadId: id,
        ChecksumCRC32: crc.toString('base64'),
        ChecksumType: 'FULL_OBJECT',
        MultipartUpload: { Parts: [{ PartNumber: 1, ETag: etag }] },
      }),
    );
    expect(done.ETag).toBe(multipartEtag([P3]));
  });

  it('serves a range across a part boundary', async () => {
    const got = await getBytes('three.bin', `bytes=${5 * MiB - 10}-${5 * MiB + 9}`);
    expect(got.equals(Buffer.concat([P1.subarray(-10), P2.subarray(0, 10)]))).toBe(true);
    const tail = await getBytes('three.bin', `bytes=${10 * MiB - 3}-`);
    expect(tail.equals(Buffer.concat([P2.subarray(-3), P3]))).toBe(true);
  });

  it('a re-uploaded part number replaces the earlier part', async () => {
    const id = await create('reupload.bin');
    const first = await part('reupload.bin', id, 1, P2);
    const second = await part('reupload.bin', id, 1, P1);
    const parts = await s3.send(
      new ListPartsCommand({ Bucket: BUCKET, Key: 'reupload.bin', UploadId: id }),
    );
    expect(parts.Parts?.map(p => [p.PartNumber, p.ETag, p.Size])).toEqual([[1, second, P1.length]]);
    expect(await errorOf(complete('reupload.bin', id, [{ n: 1, etag: first }]))).toEqual({
      name: 'InvalidPart',
      status: 400,
    });
    await complete('reupload.bin', id, [{ n: 1, etag: second }]);
    expect(md5(await getBytes('reupload.bin'))).toBe(md5(P1));
  });

  it('refuses a small part before the last (EntityTooSmall)', async () => {
    const id = await create('small.bin');
    const a = await part('small.bin', id, 1, P3);
    const b = await part('small.bin', id, 2, P3);
    expect(
      await errorOf(
        complete('small.bin', id, [
          { n: 1, etag: a },
          { n: 2, etag: b },
        ]),
      ),
    ).toEqual({ name: 'EntityTooSmall', status: 400 });
  });

  it('refuses a wrong ETag or a part never uploaded (InvalidPart) and descending parts (InvalidPartOrder)', async () => {
    const id = await create('rules.bin');
    const a = await part('rules.bin', id, 1, P1);
    const b = await part('rules.bin', id, 2, P3);
    expect(
      await errorOf(
        complete('rules.bin', id, [
          { n: 1, etag: `"${md5(P2)}"` },
          { n: 2, etag: b },
        ]),
      ),
    ).toEqual({ name: 'InvalidPart', status: 400 });
    expect(
      await errorOf(
        complete('rules.bin', id, [
          { n: 1, etag: a },
          { n: 3, etag: b },
        ]),
      ),
    ).toEqual({ name: 'InvalidPart', status: 400 });
    expect(
      await errorOf(
        complete('rules.bin', id, [
          { n: 2, etag: b },
          { n: 1, etag: a },
        ]),
      ),
    ).toEqual({ name: 'InvalidPartOrder', status: 400 });
    // Still open after refusals: the right list completes it.
    await complete('rules.bin', id, [
      { n: 1, etag: a },
      { n: 2, etag: b },
    ]);
  });

  it('refuses part numbers outside 1..10000 (InvalidArgument)', async () => {
    const id = await create('numbers.bin');
    expect(await errorOf(part('numbers.bin', id, 10001, P3))).toEqual({
      name: 'InvalidArgument',
      status: 400,
    });
    expect(await errorOf(part('numbers.bin', id, 0, P3))).toEqual({
      name: 'InvalidArgument',
      status: 400,
    });
    expect(await part('numbers.bin', id, 10000, P3)).toBe(`"${md5(P3)}"`);
  });

  it("answers NoSuchUpload for an unknown uploadId and for another key's uploadId", async () => {
    const bogus = 'no-such-upload-id';
    expect(await errorOf(part('x.bin', bogus, 1, P3))).toEqual({
      name: 'NoSuchUpload',
      status: 404,
    });
    expect(
      await errorOf(
        s3.send(new ListPartsCommand({ Bucket: BUCKET, Key: 'x.bin', UploadId: bogus })),
      ),
    ).toEqual({ name: 'NoSuchUpload', status: 404 });
    expect(await errorOf(complete('x.bin', bogus, [{ n: 1, etag: `"${md5(P3)}"` }]))).toEqual({
      name: 'NoSuchUpload',
      status: 404,
    });
    expect(
      await errorOf(
        s3.send(new AbortMultipartUploadCommand({ Bucket: BUCKET, Key: 'x.bin', UploadId: bogus })),
      ),
    ).toEqual({ name: 'NoSuchUpload', status: 404 });
    const id = await create('owner.bin');
    const etag = await part('owner.bin', id, 1, P3);
    expect(await errorOf(complete('other.bin', id, [{ n: 1, etag }]))).toEqual({
      name: 'NoSuchUpload',
      status: 404,
    });
  });

  it('a repeated Complete answers NoSuchUpload; HeadObject shows the object', async () => {
    const id = await create('twice.bin');
    const etag = await part('twice.bin', id, 1, P3);
    const first = await complete('twice.bin', id, [{ n: 1, etag }]);
    expect(await errorOf(complete('twice.bin', id, [{ n: 1, etag }]))).toEqual({
      name: 'NoSuchUpload',
      status: 404,
    });
    const head = await s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: 'twice.bin' }));
    expect([head.ETag, head.ContentLength]).toEqual([first.ETag, P3.length]);
  });
});

describe('ListParts, ListMultipartUploads and Abort', () => {
  it('paginates ListParts with MaxParts and PartNumberMarker', async () => {
    const id = await create('paged.bin');
    for (let n = 1; n <= 5; n++) await part('paged.bin', id, n, Buffer.from(`part ${n}`));
    const seen: number[] = [];
    let marker: string | undefined;
    const pages: boolean[] = [];
    do {
      const page = await s3.send(
        new ListPartsCommand({
          Bucket: BUCKET,
          Key: 'paged.bin',
          UploadId: id,
          MaxParts: 2,
          PartNumberMarker: marker,
        }),
      );
      seen.push(...(page.Parts ?? []).map(p => p.PartNumber ?? 0));
      pages.push(page.IsTruncated ?? false);
      marker = page.IsTruncated ? page.NextPartNumberMarker : undefined;
    } while (marker !== undefined);
    expect(seen).toEqual([1, 2, 3, 4, 5]);
    expect(pages).toEqual([true, true, false]);
  });

  it('lists open uploads and Abort removes them', async () => {
    const a = await create('abort/a.bin');
    const b = await create('abort/b.bin');
    await part('abort/a.bin', a, 1, P3);
    const listed = await s3.send(
      new ListMultipartUploadsCommand({ Bucket: BUCKET, Prefix: 'abort/' }),
    );
    expect(listed.Uploads?.map(u => [u.Key, u.UploadId])).toEqual([
      ['abort/a.bin', a],
      ['abort/b.bin', b],
    ]);
    await s3.send(
      new AbortMultipartUploadCommand({ Bucket: BUCKET, Key: 'abort/a.bin', UploadId: a }),
    );
    await s3.send(
      new AbortMultipartUploadCommand({ Bucket: BUCKET, Key: 'abort/b.bin', UploadId: b }),
    );
    const after = await s3.send(
      new ListMultipartUploadsCommand({ Bucket: BUCKET, Prefix: 'abort/' }),
    );
    expect(after.Uploads ?? []).toEqual([]);
    expect(
      (await h.store.listMultipartUploads(BUCKET)).filter(u => u.key.startsWith('abort/')),
    ).toEqual([]);
    expect(await errorOf(part('abort/a.bin', a, 2, P3))).toEqual({
      name: 'NoSuchUpload',
      status: 404,
    });
  });
});

describe('lib-storage and restarts', () => {
  it('lib-storage Upload with default checksums (per-part CRC32 carried into Complete)', async () => {
    const data = randomBytes(12 * MiB + 3);
    const done = await new Upload({
      client: s3,
      params: { Bucket: BUCKET, Key: 'lib.bin', Body: Readable.from([data]) },
      partSize: 5 * MiB,
    }).done();
    expect(done.ETag).toBe(
      multipartEtag([
        data.subarray(0, 5 * MiB),
        data.subarray(5 * MiB, 10 * MiB),
        data.subarray(10 * MiB),
      ]),
    );
    expect(sha256(await getBytes('lib.bin'))).toBe(sha256(data));
  });

  it('keeps an open upload across a server restart on the same port and a store reopen', async () => {
    const id = await create('restart.bin');
    const a = await part('restart.bin', id, 1, P1);
    const port = h.port;
    await h.stop();
    await h.listen(port);
    expect(h.port).toBe(port);
    // The old client's pooled connections were cut by the stop; a real client retries.
    s3 = h.client();
    const b = await part('restart.bin', id, 2, P3);
    const reopened = new DiskObjectStore(h.store.dataDir);
    expect(reopened.listParts(BUCKET, 'restart.bin', id)?.map(p => p.etag)).toEqual([a, b]);
    await complete('restart.bin', id, [
      { n: 1, etag: a },
      { n: 2, etag: b },
    ]);
    const again = new DiskObjectStore(h.store.dataDir);
    expect((await again.head(BUCKET, 'restart.bin'))?.etag).toBe(multipartEtag([P1, P3]));
    expect((await again.hashes(BUCKET, 'restart.bin'))?.md5).toBe(md5(Buffer.concat([P1, P3])));
    expect(await readdir(path.join(h.store.dataDir, 'uploads'))).not.toContain(id);
  });
});
