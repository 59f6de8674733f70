/**
 * The simulator's S3 endpoint over real HTTP with the real AWS SDK: bodies and checksums
 * (aws-chunked with trailers, Content-MD5), SigV4 and credential refusals, awkward object
 * names, ranges and presigned URLs. Signed chunked bodies, multipart, faults and the 1 GiB
 * run are in the sibling sim-s3-*.test.ts files.
 */
import {
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorCode, S3Harness } from '../sim/s3/harness.ts';

let h: S3Harness;
let s3: S3Client;
const BUCKET = 'sim-s3-test';
const DATA = randomBytes(6 * 1024 * 1024 + 123);
let dataFile: string;

const md5 = (b: Buffer): string => createHash('md5').update(b).digest('hex');
const sha256 = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');

async function getBytes(client: S3Client, key: string, range?: string): Promise<Buffer> {
  const out = await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: key, Range: range }));
  return Buffer.from(
    await (out.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray(),
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

beforeAll(async () => {
  h = await S3Harness.start();
  s3 = h.client();
  dataFile = path.join(h.dir, 'data.bin');
  await writeFile(dataFile, DATA);
});

afterAll(async () => {
  await h.close();
});

describe('PutObject and GetObject bodies', () => {
  it('stores the exact bytes of a stream sent with the SDK default checksums (aws-chunked + CRC32 trailer)', async () => {
    const before = h.payloadModes.length;
    const put = await s3.send(
      new PutObjectCommand({
        Bucket: BUCKET,
        Key: 'default.bin',
        Body: createReadStream(dataFile),
        ContentLength: DATA.length,
      }),
    );
    expect(h.payloadModes.slice(before)).toContain('STREAMING-UNSIGNED-PAYLOAD-TRAILER');
    expect(put.ETag).toBe(`"${md5(DATA)}"`);
    expect(put.ChecksumCRC32).toBeDefined();
    const head = await s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: 'default.bin' }));
    expect(head.ContentLength).toBe(DATA.length);
    expect(sha256(await getBytes(s3, 'default.bin'))).toBe(sha256(DATA));
    expect((await h.store.hashes(BUCKET, 'default.bin'))?.sha256).toBe(sha256(DATA));
  });

  it('stores the exact bytes with requestChecksumCalculation WHEN_REQUIRED', async () => {
    const client = h.client({
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
    await client.send(
      new PutObjectCommand({
        Bucket: BUCKET,
        Key: 'when-required.bin',
        Body: createReadStream(dataFile),
        ContentLength: DATA.length,
      }),
    );
    expect(h.payloadModes.at(-1)).toBe('UNSIGNED-PAYLOAD');
    expect(sha256(await getBytes(client, 'when-required.bin'))).toBe(sha256(DATA));
  });

  it.each(['CRC32C', 'CRC64NVME', 'SHA1', 'SHA256'] as const)(
    'verifies %s sent as a trailer (stream) and as a header (buffer)',
    async alg => {
      const small = DATA.subarray(0, 300_001);
      const stream = await s3.send(
        new PutObjectCommand({
          Bucket: BUCKET,
          Key: `t-${alg}`,
          Body: createReadStream(dataFile, { end: 300_000 }),
          ContentLength: 300_001,
          ChecksumAlgorithm: alg,
        }),
      );
      const buffer = await s3.send(
        new PutObjectCommand({
          Bucket: BUCKET,
          Key: `h-${alg}`,
          Body: small,
          ChecksumAlgorithm: alg,
        }),
      );
      expect(stream.ETag).toBe(`"${md5(small)}"`);
      expect(buffer.ETag).toBe(`"${md5(small)}"`);
      expect((await getBytes(s3, `t-${alg}`)).equals(small)).toBe(true);
    },
  );

  it('refuses a wrong Content-MD5 or x-amz-checksum-crc32 with BadDigest and keeps the stored object', async () => {
    await s3.send(
      new PutObjectCommand({ Bucket: BUCKET, Key: 'digest.bin', Body: Buffer.from('original') }),
    );
    const wrongMd5 = await errorOf(
      s3.send(
        new PutObjectCommand({
          Bucket: BUCKET,
          Key: 'digest.bin',
          Body: Buffer.from('new'),
          ContentMD5: createHash('md5').update('other').digest('base64'),
        }),
      ),
    );
    expect(wrongMd5).toEqual({ name: 'BadDigest', status: 400 });
    const wrongCrc = await errorOf(
      s3.send(
        new PutObjectCommand({
          Bucket: BUCKET,
          Key: 'digest.bin',
          Body: Buffer.from('new'),
          ChecksumCRC32: 'AAAAAA==',
        }),
      ),
    );
    expect(wrongCrc).toEqual({ name: 'BadDigest', status: 400 });
    expect((await getBytes(s3, 'digest.bin')).toString()).toBe('original');
  });
});

describe('authentication', () => {
  beforeAll(async () => {
    await s3.send(
      new PutObjectCommand({ Bucket: BUCKET, Key: 'auth.txt', Body: Buffer.from('secret stuff') }),
    );
  });

  const get = (client: S3Client) =>
    errorOf(client.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'auth.txt' })));

  it('refuses a wrong secret, an unknown key and a wrong session token', async () => {
    expect(await get(h.client({}, { ...h.credential, secretAccessKey: 'wrong' }))).toEqual({
      name: 'SignatureDoesNotMatch',
      status: 403,
    });
    expect(
      await get(h.client({}, { ...h.credential, accessKeyId: 'ASIAUNKNOWNUNKNOWN00' })),
    ).toEqual({ name: 'InvalidAccessKeyId', status: 403 });
    expect(await get(h.client({}, { ...h.credential, sessionToken: 'not-the-token' }))).toEqual({
      name: 'InvalidToken',
      status: 400,
    });
  });

  it('refuses an anonymous request', async () => {
    const res = await fetch(`${h.endpoint}/${BUCKET}/auth.txt`);
    expect([res.status, errorCode(Buffer.from(await res.arrayBuffer()))]).toEqual([
      403,
      'AccessDenied',
    ]);
  });

  it('refuses a tampered presigned URL and an expired one', async () => {
    const url = await getSignedUrl(s3, new GetObjectCommand({ Bucket: BUCKET, Key: 'auth.txt' }), {
      expiresIn: 60,
    });
    expect((await fetch(url)).status).toBe(200);
    const tampered = url.replace(
      /X-Amz-Signature=([0-9a-f])/,
      (_m, c: string) => `X-Amz-Signature=${c === '0' ? '1' : '0'}`,
    );
    const t = await fetch(tampered);
    expect([t.status, errorCode(Buffer.from(await t.arrayBuffer()))]).toEqual([
      403,
      'SignatureDoesNotMatch',
    ]);
    const otherKey = await fetch(url.replace('/auth.txt?', '/default.bin?'));
    expect(otherKey.status).toBe(403);
    const old = await getSignedUrl(s3, new GetObjectCommand({ Bucket: BUCKET, Key: 'auth.txt' }), {
      expiresIn: 60,
      signingDate: new Date(Date.now() - 120_000),
    });
    const e = await fetch(old);
    const body = (await e.text()).toString();
    expect([e.status, errorCode(Buffer.from(body))]).toEqual([403, 'AccessDenied']);
    expect(body).toContain('Request has expired');
  });

  it('answers ExpiredToken once the credential expires, and accepts the renewed one', async () => {
    const short = h.registry.issue(1);
    const client = h.client({}, short);
    await client.send(new HeadObjectCommand({ Bucket: BUCKET, Key: 'auth.txt' }));
    await sleep(Math.max(0, short.expiresAt - Date.now() + 50));
    const res = await h.raw({
      method: 'GET',
      path: `/${BUCKET}/auth.txt`,
      headers: {
        'x-amz-content-sha256': 'UNSIGNED-PAYLOAD',
        'x-amz-security-token': short.sessionToken,
      },
      credential: short,
    });
    expect(res.status).toBe(400);
    expect(res.body.toString()).toContain(
      '<Code>ExpiredToken</Code><Message>The provided token has expired.</Message>',
    );
    expect(await get(client)).toEqual({ name: 'ExpiredToken', status: 400 });
    const renewed = h.registry.renew(3600);
    expect((await getBytes(h.client({}, renewed), 'auth.txt')).toString()).toBe('secret stuff');
  });
});

describe('object names', () => {
  const names = [
    'with space.pkg',
    'plus+sign.pkg',
    'ünïcødé/日本語.pkg',
    'percent%20literal.pkg',
    'hash#tag.pkg',
    'question?mark.pkg',
    "all: a b+c%d#e?f&g=h ü!'()*.pkg",
  ];

  it.each(names)(
    '%j round-trips through Put, Head, Get, a presigned GET and ListObjectsV2',
    async name => {
      const key = `names/${name}`;
      const body = Buffer.from(`body of ${name}`);
      await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: body }));
      expect(
        (await s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: key }))).ContentLength,
      ).toBe(body.length);
      expect((await getBytes(s3, key)).equals(body)).toBe(true);
      const url = await getSignedUrl(s3, new GetObjectCommand({ Bucket: BUCKET, Key: key }), {
        expiresIn: 60,
      });
      expect(Buffer.from(await (await fetch(url)).arrayBuffer()).equals(body)).toBe(true);
      const list = await s3.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: key }));
      expect(list.Contents?.map(o => o.Key)).toEqual([key]);
      expect(await h.store.head(BUCKET, key)).toMatchObject({ key, size: body.length });
    },
  );

  it('lists with a prefix, a delimiter and pagination', async () => {
    const first = await s3.send(
      new ListObjectsV2Command({ Bucket: BUCKET, Prefix: 'names/', MaxKeys: 3 }),
    );
    expect(first.IsTruncated).toBe(true);
    const rest = await s3.send(
      new ListObjectsV2Command({
        Bucket: BUCKET,
        Prefix: 'names/',
        ContinuationToken: first.NextContinuationToken,
      }),
    );
    const all = [...(first.Contents ?? []), ...(rest.Contents ?? [])].map(o => o.Key);
    expect(all.sort()).toEqual(names.map(n => `names/${n}`).sort());
    const grouped = await s3.send(
      new ListObjectsV2Command({ Bucket: BUCKET, Prefix: 'names/', Delimiter: '/' }),
    );
    expect(grouped.CommonPrefixes?.map(p => p.Prefix)).toEqual(['names/ünïcødé/']);
  });
});

describe('ranges and presigned URLs', () => {
  it('serves bytes=a-b, bytes=-n, bytes=a- and answers 416 past the end', async () => {
    const key = 'default.bin';
    const r1 = await s3.send(
      new GetObjectCommand({ Bucket: BUCKET, Key: key, Range: 'bytes=100-199' }),
    );
    expect(r1.ContentRange).toBe(`bytes 100-199/${DATA.length}`);
    expect((await getBytes(s3, key, 'bytes=100-199')).equals(DATA.subarray(100, 200))).toBe(true);
    expect((await getBytes(s3, key, 'bytes=-1000')).equals(DATA.subarray(DATA.length - 1000))).toBe(
      true,
    );
    expect(
      (await getBytes(s3, key, `bytes=${DATA.length - 10}-`)).equals(
        DATA.subarray(DATA.length - 10),
      ),
    ).toBe(true);
    expect(await errorOf(getBytes(s3, key, `bytes=${DATA.length}-`))).toEqual({
      name: 'InvalidRange',
      status: 416,
    });
  });

  it('answers HEAD and ranged GET on presigned URLs', async () => {
    const head = await getSignedUrl(
      s3,
      new HeadObjectCommand({ Bucket: BUCKET, Key: 'default.bin' }),
      { expiresIn: 60 },
    );
    const hr = await fetch(head, { method: 'HEAD' });
    expect(hr.status).toBe(200);
    expect(hr.headers.get('content-length')).toBe(String(DATA.length));
    expect(hr.headers.get('accept-ranges')).toBe('bytes');
    expect(hr.headers.get('etag')).toBe(`"${md5(DATA)}"`);
    expect(hr.headers.get('last-modified')).toMatch(/GMT$/);
    const get = await getSignedUrl(
      s3,
      new GetObjectCommand({ Bucket: BUCKET, Key: 'default.bin' }),
      { expiresIn: 60 },
    );
    // A GET-presigned URL answers HEAD too, as JCDS download URLs do.
    const viaGet = await fetch(get, { method: 'HEAD' });
    expect([viaGet.status, viaGet.headers.get('content-length')]).toEqual([
      200,
      String(DATA.length),
    ]);
    const gr = await fetch(get, { headers: { Range: 'bytes=5-9' } });
    expect(gr.status).toBe(206);
    expect(gr.headers.get('content-range')).toBe(`bytes 5-9/${DATA.length}`);
    expect(Buffer.from(await gr.arrayBuffer()).equals(DATA.subarray(5, 10))).toBe(true);
    const missing = await fetch(
      await getSignedUrl(s3, new GetObjectCommand({ Bucket: BUCKET, Key: 'nope' }), {
        expiresIn: 60,
      }),
    );
    expect([missing.status, errorCode(Buffer.from(await missing.arrayBuffer()))]).toEqual([
      404,
      'NoSuchKey',
    ]);
  });

  it('counts calls and served bytes', async () => {
    const served = h.counters.s3BytesServed;
    await getBytes(s3, 'default.bin', 'bytes=0-99');
    expect(h.counters.s3BytesServed - served).toBe(100);
    expect(h.counters.calls['GetObject']).toBeGreaterThan(5);
    expect(h.counters.calls['PutObject']).toBeGreaterThan(5);
  });
});
