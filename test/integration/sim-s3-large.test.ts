/**
 * A 1 GiB multipart object through the simulator's S3 endpoint running in a child process
 * (test/sim/s3/standalone.ts), with the SDK's default settings (aws-chunked + CRC32
 * trailers), 64 MiB parts three at a time. Bodies are generated as streams (an AES-CTR
 * keystream, reproducible at any offset), never held whole. The child's VmRSS is sampled
 * throughout: the simulator streams to and from disk, so it must stay flat.
 */
import {
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { spawn, type ChildProcess } from 'node:child_process';
import { createCipheriv, createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, expect, it } from 'vitest';

const MiB = 1024 * 1024;
const PART = 64 * MiB;
const PARTS = 16;
const SIZE = PART * PARTS; // 1 GiB
const CONCURRENCY = 3;
const RSS_LIMIT_MIB = 300;
const KEY = Buffer.alloc(16, 0x5a);

interface Started {
  endpoint: string;
  pid: number;
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken: string;
}

let dir: string;
let child: ChildProcess;
let sim: Started;
let peakRssMiB = 0;
let sampler: NodeJS.Timeout;

/** Bytes [offset, offset + length) of the test object: an AES-128-CTR keystream. */
function generate(offset: number, length: number): Readable {
  const iv = Buffer.alloc(16);
  iv.writeBigUInt64BE(BigInt(offset / 16), 8);
  const cipher = createCipheriv('aes-128-ctr', KEY, iv);
  const zeros = Buffer.alloc(MiB);
  let left = length;
  return new Readable({
    read(): void {
      if (left === 0) {
        this.push(null);
        return;
      }
      const n = Math.min(left, zeros.length);
      left -= n;
      this.push(cipher.update(n === zeros.length ? zeros : zeros.subarray(0, n)));
    },
  });
}

function rssMiB(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : 0;
  } catch {
    return 0;
  }
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'sim-s3-large-'));
  const script = path.resolve(import.meta.dirname, '../sim/s3/standalone.ts');
  child = spawn(process.execPath, [script, '--data-dir', dir], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, LOG_LEVEL: 'warn' },
  });
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  const first = await new Promise<string>((resolve, reject) => {
    lines.once('line', resolve);
    child.once('exit', code => reject(new Error(`standalone S3 exited with ${code}`)));
  });
  sim = JSON.parse(first) as Started;
  sampler = setInterval(() => {
    peakRssMiB = Math.max(peakRssMiB, rssMiB(sim.pid));
  }, 100);
});

afterAll(async () => {
  clearInterval(sampler);
  if (child.exitCode === null) {
    const exited = new Promise(resolve => child.once('exit', resolve));
    child.kill('SIGTERM');
    await exited;
  }
  await rm(dir, { recursive: true, force: true });
});

it('round-trips a 1 GiB multipart object with the simulator RSS flat', async () => {
  const s3 = new S3Client({
    endpoint: sim.endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: {
      accessKeyId: sim.accessKeyId,
      secretAccessKey: sim.secretAccessKey,
      sessionToken: sim.sessionToken,
    },
  });
  const expected = createHash('sha256');
  for await (const chunk of generate(0, SIZE)) expected.update(chunk as Buffer);
  const expectedSha = expected.digest('hex');
  const baseline = rssMiB(sim.pid);

  const putStarted = performance.now();
  const { UploadId } = await s3.send(
    new CreateMultipartUploadCommand({ Bucket: 'large', Key: 'one-gib.bin' }),
  );
  const etags: string[] = [];
  let next = 0;
  const uploader = async (): Promise<void> => {
    while (next < PARTS) {
      const i = next++;
      const out = await s3.send(
        new UploadPartCommand({
          Bucket: 'large',
          Key: 'one-gib.bin',
          UploadId,
          PartNumber: i + 1,
          Body: generate(i * PART, PART),
          ContentLength: PART,
        }),
      );
      etags[i] = out.ETag ?? '';
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, uploader));
  const done = await s3.send(
    new CompleteMultipartUploadCommand({
      Bucket: 'large',
      Key: 'one-gib.bin',
      UploadId,
      MultipartUpload: { Parts: etags.map((ETag, i) => ({ ETag, PartNumber: i + 1 })) },
    }),
  );
  const putSeconds = (performance.now() - putStarted) / 1000;
  expect(done.ETag).toMatch(/^"[0-9a-f]{32}-16"$/);

  const getStarted = performance.now();
  const got = await s3.send(new GetObjectCommand({ Bucket: 'large', Key: 'one-gib.bin' }));
  expect(got.ContentLength).toBe(SIZE);
  const actual = createHash('sha256');
  let size = 0;
  for await (const chunk of got.Body as Readable) {
    actual.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  const getSeconds = (performance.now() - getStarted) / 1000;
  expect(size).toBe(SIZE);
  expect(actual.digest('hex')).toBe(expectedSha);

  process.stderr.write(
    `sim-s3 1 GiB: PUT ${(SIZE / 1e6 / putSeconds).toFixed(0)} MB/s (${putSeconds.toFixed(1)} s), ` +
      `GET ${(SIZE / 1e6 / getSeconds).toFixed(0)} MB/s (${getSeconds.toFixed(1)} s), ` +
      `simulator RSS baseline ${baseline.toFixed(0)} MiB, peak ${peakRssMiB.toFixed(0)} MiB\n`,
  );
  expect(peakRssMiB).toBeGreaterThan(0);
  expect(peakRssMiB).toBeLessThan(RSS_LIMIT_MIB);
});
