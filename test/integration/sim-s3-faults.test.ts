/**
 * Faults and store switches of the simulator's S3 endpoint: SlowDown, failing part numbers,
 * dropped connections, latency, throttling, a server killed mid-upload, Expect:
 * 100-continue refusals, and the store's cached hashes with the corruption fault.
 */
import {
  CreateMultipartUploadCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListPartsCommand,
  PutObjectCommand,
  UploadPartCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { createHash, randomBytes } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { S3Harness } from '../sim/s3/harness.ts';
import { DiskObjectStore } from '../sim/store.ts';

const MiB = 1024 * 1024;
const BUCKET = 'sim-s3-faults';
let h: S3Harness;
let s3: S3Client;
const DATA = randomBytes(3 * MiB);

const hash = (alg: string, b: Buffer): string => createHash(alg).update(b).digest('hex');

async function errorOf(p: Promise<unknown>): Promise<{ name: string; status: number | undefined }> {
  try {
    await p;
  } catch (err) {
    const e = err as { name: string; $metadata?: { httpStatusCode?: number } };
    return { name: e.name, status: e.$metadata?.httpStatusCode };
  }
  throw new Error('expected the request to fail');
}

async function getBytes(client: S3Client, key: string): Promise<Buffer> {
  const out = await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
  return Buffer.from(
    await (out.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray(),
  );
}

beforeAll(async () => {
  h = await S3Harness.start();
  s3 = h.client();
  await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'data.bin', Body: DATA }));
});

afterEach(() => {
  for (const k of Object.keys(h.faults)) delete h.faults[k as keyof typeof h.faults];
});

afterAll(async () => {
  await h.close();
});

describe('request faults', () => {
  it('answers SlowDown to the next N requests, then serves; SDK retries ride it out', async () => {
    h.faults.s3SlowDownCount = 2;
    const head = () => s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: 'data.bin' }));
    expect((await errorOf(head())).status).toBe(503);
    expect(
      (await errorOf(s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'data.bin' })))).name,
    ).toBe('SlowDown');
    expect(h.faults.s3SlowDownCount).toBe(0);
    expect((await head()).ContentLength).toBe(DATA.length);
    h.faults.s3SlowDownCount = 2;
    const before = h.counters.calls['GetObject'] ?? 0;
    const retrying = h.client({ maxAttempts: 3, retryMode: 'standard' });
    expect(await getBytes(retrying, 'data.bin')).toHaveLength(DATA.length);
    expect((h.counters.calls['GetObject'] ?? 0) - before).toBe(3);
  });

  it('fails UploadPart for the listed part numbers every time (500 InternalError)', async () => {
    const { UploadId } = await s3.send(
      new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: 'parts.bin' }),
    );
    const upload = (n: number) =>
      s3.send(
        new UploadPartCommand({
          Bucket: BUCKET,
          Key: 'parts.bin',
          UploadId,
          PartNumber: n,
          Body: DATA.subarray(0, 1000),
        }),
      );
    h.faults.failPartNumbers = [2];
    const before = h.counters.uploadPartByNumber['2'] ?? 0;
    expect(await errorOf(upload(2))).toEqual({ name: 'InternalError', status: 500 });
    expect(await errorOf(upload(2))).toEqual({ name: 'InternalError', status: 500 });
    await upload(1);
    await upload(3);
    expect((h.counters.uploadPartByNumber['2'] ?? 0) - before).toBe(2);
    h.faults.failPartNumbers = [];
    await upload(2);
    const parts = await s3.send(
      new ListPartsCommand({ Bucket: BUCKET, Key: 'parts.bin', UploadId }),
    );
    expect(parts.Parts?.map(p => p.PartNumber)).toEqual([1, 2, 3]);
  });

  it('drops connections: a download cut mid-body, an upload cut mid-body (nothing stored), a HEAD cut at once', async () => {
    const url = await getSignedUrl(s3, new GetObjectCommand({ Bucket: BUCKET, Key: 'data.bin' }), {
      expiresIn: 60,
    });
    h.faults.s3DropCount = 1;
    await expect(fetch(url).then(r => r.arrayBuffer())).rejects.toThrow();
    expect(h.faults.s3DropCount).toBe(0);
    expect(Buffer.from(await (await fetch(url)).arrayBuffer()).equals(DATA)).toBe(true);

    h.faults.s3DropCount = 1;
    const fresh = h.client();
    await expect(
      fresh.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'dropped.bin', Body: DATA })),
    ).rejects.toThrow();
    expect(await h.store.head(BUCKET, 'dropped.bin')).toBeUndefined();

    h.faults.s3DropCount = 1;
    await expect(
      h.client().send(new HeadObjectCommand({ Bucket: BUCKET, Key: 'data.bin' })),
    ).rejects.toThrow();
    expect(
      (await h.client().send(new HeadObjectCommand({ Bucket: BUCKET, Key: 'data.bin' })))
        .ContentLength,
    ).toBe(DATA.length);
  });

  it('adds latency to every request', async () => {
    h.faults.s3LatencyMs = 300;
    const started = Date.now();
    await s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: 'data.bin' }));
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
  });

  it('throttles downloads and uploads to s3BytesPerSecond', async () => {
    h.faults.s3BytesPerSecond = 2 * MiB;
    const served = h.counters.s3BytesServed;
    let started = Date.now();
    expect((await getBytes(s3, 'data.bin')).equals(DATA)).toBe(true);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1400); // 3 MiB at 2 MiB/s
    expect(h.counters.s3BytesServed - served).toBe(DATA.length);
    const received = h.counters.s3BytesReceived;
    started = Date.now();
    await s3.send(
      new PutObjectCommand({ Bucket: BUCKET, Key: 'slow.bin', Body: DATA.subarray(0, MiB) }),
    );
    expect(Date.now() - started).toBeGreaterThanOrEqual(450);
    expect(h.counters.s3BytesReceived - received).toBe(MiB);
  });
});

describe('server and protocol edges', () => {
  it('a server stopped mid-part leaves no partial part; the part uploads again after restart', async () => {
    const { UploadId } = await s3.send(
      new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: 'killed.bin' }),
    );
    h.faults.s3BytesPerSecond = MiB;
    const inFlight = h.client().send(
      new UploadPartCommand({
        Bucket: BUCKET,
        Key: 'killed.bin',
        UploadId,
        PartNumber: 1,
        Body: DATA,
      }),
    );
    await new Promise(resolve => setTimeout(resolve, 700));
    const port = h.port;
    await h.stop();
    await expect(inFlight).rejects.toThrow();
    delete h.faults.s3BytesPerSecond;
    await h.listen(port);
    s3 = h.client();
    const dataDir = path.join(h.store.dataDir, 'uploads', UploadId ?? '', 'data');
    // The aborted part's temp file is removed once its request fails (asynchronously).
    const deadline = Date.now() + 5000;
    while ((await readdir(dataDir)).length > 0 && Date.now() < deadline) {
      await new Promise(resolve => setTimeout(resolve, 20));
    }
    expect(await readdir(dataDir)).toEqual([]);
    const parts = await s3.send(
      new ListPartsCommand({ Bucket: BUCKET, Key: 'killed.bin', UploadId }),
    );
    expect(parts.Parts ?? []).toEqual([]);
    const again = await s3.send(
      new UploadPartCommand({
        Bucket: BUCKET,
        Key: 'killed.bin',
        UploadId,
        PartNumber: 1,
        Body: DATA,
      }),
    );
    expect(again.ETag).toBe(`"${hash('md5', DATA)}"`);
  });

  it('refuses a large upload with bad credentials before its body is sent (Expect: 100-continue)', async () => {
    const received = h.counters.s3BytesReceived;
    const continued = h.expectContinueRequests;
    const bad = h.client({}, { ...h.credential, secretAccessKey: 'wrong' });
    const big = randomBytes(8 * MiB);
    expect(
      await errorOf(
        bad.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'refused.bin', Body: big })),
      ),
    ).toEqual({
      name: 'SignatureDoesNotMatch',
      status: 403,
    });
    expect(h.expectContinueRequests - continued).toBe(1);
    expect(h.counters.s3BytesReceived).toBe(received);
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'accepted.bin', Body: big }));
    expect(h.counters.s3BytesReceived - received).toBe(big.length);
  });
});

describe('store hashes and the corruption fault', () => {
  it('computes md5, sha256 and sha3-512 of the stored bytes and caches them on disk', async () => {
    const hashes = await h.store.hashes(BUCKET, 'data.bin');
    expect(hashes).toEqual({
      size: DATA.length,
      md5: hash('md5', DATA),
      sha256: hash('sha256', DATA),
      sha3_512: hash('sha3-512', DATA),
    });
    expect(await new DiskObjectStore(h.store.dataDir).hashes(BUCKET, 'data.bin')).toEqual(hashes);
  });

  it('corrupt() changes the served bytes but not the cached hashes', async () => {
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'corrupt.bin', Body: DATA }));
    await h.store.corrupt(BUCKET, 'corrupt.bin');
    const served = await getBytes(s3, 'corrupt.bin');
    expect(served).toHaveLength(DATA.length);
    const cached = await h.store.hashes(BUCKET, 'corrupt.bin');
    expect(cached?.md5).toBe(hash('md5', DATA));
    // What a verifying client does: the download does not match the hashes Jamf reports.
    expect(hash('md5', served)).not.toBe(cached?.md5);
    expect(hash('sha3-512', served)).not.toBe(cached?.sha3_512);
  });
});
