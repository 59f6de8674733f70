/**
 * Section 5: the ceiling. The S3 endpoint's raw speed with curl on one large object
 * (presigned PUT and GET, one stream), the same with several streams (parallel curl PUTs of
 * presigned UploadPart URLs fed by dd, and parallel ranged GETs), and the disk: dd of the
 * test file through the page cache and with O_DIRECT.
 */
import {
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import {
  assertStored,
  currentTools,
  curlGet,
  curlPut,
  libStorageUpload,
  removeObject,
  simTarget,
  type S3Target,
  type Timed,
} from '../lib/clients.ts';
import { need } from '../lib/tools.ts';
import type { BenchEnv } from '../lib/env.ts';
import { MiB, run } from '../lib/measure.ts';
import type { CeilingSection, Plan } from '../types.ts';
import { fleetSettings, interleave, type Scenario } from './upload.ts';

/** Runs `tasks` with at most `limit` in flight. */
async function pool<T>(tasks: Array<() => Promise<T>>, limit: number): Promise<T[]> {
  const out: T[] = new Array<T>(tasks.length);
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < tasks.length) {
      const i = next++;
      out[i] = await tasks[i]!();
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, tasks.length) }, lane));
  return out;
}

/** Splits `path` into `partSize` files under `dir` (not timed: the curl multipart input). */
export async function splitParts(path: string, dir: string, partSize: number): Promise<string[]> {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  await run('split', ['-b', String(partSize), '-d', '-a', '5', path, join(dir, 'part-')]);
  return readdirSync(dir)
    .sort()
    .map(f => join(dir, f));
}

/** Multipart upload with curl: each part file `curl -T` to a presigned UploadPart URL. */
export async function curlParallelPut(
  t: S3Target,
  parts: string[],
  key: string,
  streams: number,
): Promise<Timed> {
  const curl = need(currentTools(), 'curl');
  let cpuMs = 0;
  const t0 = performance.now();
  const mpu = await t.s3.send(new CreateMultipartUploadCommand({ Bucket: t.bucket, Key: key }));
  const uploadId = mpu.UploadId!;
  const etags = await pool(
    parts.map((part, i) => async () => {
      const url = await getSignedUrl(
        t.s3,
        new UploadPartCommand({
          Bucket: t.bucket,
          Key: key,
          UploadId: uploadId,
          PartNumber: i + 1,
        }),
        { expiresIn: 3600 },
      );
      const r = await run(curl, ['-sS', '--fail', '-D', '-', '-o', '/dev/null', '-T', part, url]);
      cpuMs += r.cpuMs;
      const m = /^etag:\s*(\S+)/im.exec(r.stdout);
      if (!m) throw new Error(`part ${i + 1}: no ETag in ${r.stdout}`);
      return { PartNumber: i + 1, ETag: m[1]! };
    }),
    streams,
  );
  await t.s3.send(
    new CompleteMultipartUploadCommand({
      Bucket: t.bucket,
      Key: key,
      UploadId: uploadId,
      MultipartUpload: { Parts: etags },
    }),
  );
  return { ms: performance.now() - t0, cpuMs };
}

/** Ranged GETs of `rangeSize` with `streams` curl processes at once, to /dev/null. */
export async function curlParallelGet(
  url: string,
  size: number,
  rangeSize: number,
  streams: number,
): Promise<Timed> {
  const curl = need(currentTools(), 'curl');
  let cpuMs = 0;
  const t0 = performance.now();
  const count = Math.ceil(size / rangeSize);
  await pool(
    Array.from({ length: count }, (_, i) => async () => {
      const start = i * rangeSize;
      const end = Math.min(size, start + rangeSize) - 1;
      const r = await run(curl, ['-sS', '--fail', '-o', '/dev/null', '-r', `${start}-${end}`, url]);
      cpuMs += r.cpuMs;
    }),
    streams,
  );
  return { ms: performance.now() - t0, cpuMs };
}

export const GET_RANGE = 64 * MiB;

/**
 * curl one stream up and down, and several at once (the fleet's per-worker part
 * concurrency): `parts` are the file split at the fleet's part size; parallel GETs use
 * 64 MiB ranges so that curl's own start-up (about 25 ms a process) stays small.
 */
export function ceilingScenarios(
  t: S3Target,
  path: string,
  parts: string[],
  size: number,
  tag: string,
  streams: number,
): Scenario[] {
  const key = (name: string, r: number): string =>
    `${t.prefix}bench-${tag}-${name}-${r}-${Date.now()}.bin`;
  const stored = `${t.prefix}bench-${tag}-get-source.bin`;
  return [
    {
      name: 'curl-put-1',
      needs: ['curl'],
      run: async r => {
        const k = key('put1', r);
        const got = await curlPut(await t.presignPut(k), path);
        await assertStored(t, k, size);
        await removeObject(t, k).catch(() => undefined);
        return got;
      },
    },
    {
      name: `curl-put-${streams}`,
      needs: ['curl'],
      run: async r => {
        const k = key('putN', r);
        const got = await curlParallelPut(t, parts, k, streams);
        await assertStored(t, k, size);
        await removeObject(t, k).catch(() => undefined);
        return got;
      },
    },
    {
      name: 'curl-get-1',
      needs: ['curl'],
      run: async () => {
        const url = await t.presignGet(stored);
        return curlGet(url, '/dev/null');
      },
    },
    {
      name: `curl-get-${streams}`,
      needs: ['curl'],
      run: async () => {
        const url = await t.presignGet(stored);
        return curlParallelGet(url, size, GET_RANGE, streams);
      },
    },
  ];
}

/** Puts the object the GET scenarios read (not timed). */
export async function putGetSource(
  t: S3Target,
  path: string,
  size: number,
  tag: string,
): Promise<void> {
  const k = `${t.prefix}bench-${tag}-get-source.bin`;
  await libStorageUpload(t, path, k, 16 * MiB, 4);
  await assertStored(t, k, size);
}

export async function removeGetSource(t: S3Target, tag: string): Promise<void> {
  await removeObject(t, `${t.prefix}bench-${tag}-get-source.bin`).catch(() => undefined);
}

export function ceilingNotes(partSize: number, streams: number): string[] {
  return [
    'curl-put-1: one presigned PutObject of the whole file; curl-get-1: one stream to /dev/null',
    `curl-put-${streams}: multipart upload of ${partSize / MiB} MiB parts (the fleet's part size), ${streams} at once (one worker's part concurrency), each part file (split beforehand, not timed) sent with curl -T to a presigned UploadPart URL; includes a curl process start per part`,
    `curl-get-${streams}: ${GET_RANGE / MiB} MiB ranges, ${streams} at once, to /dev/null`,
  ];
}

export async function runCeiling(env: BenchEnv, plan: Plan, path: string): Promise<CeilingSection> {
  const t = simTarget(await env.creds(), env.s3Endpoint);
  const { partSize, partConcurrency } = fleetSettings();
  await putGetSource(t, path, plan.size, 'ceil');
  const partsDir = join(env.dir, 'ceiling-parts');
  const parts = await splitParts(path, partsDir, partSize);
  const dd = (flags: string[]): Scenario => ({
    name: flags.length ? 'dd-direct' : 'dd-cached',
    run: () => run('dd', [`if=${path}`, 'of=/dev/null', 'bs=16M', 'status=none', ...flags]),
  });
  const samples = await interleave(
    [
      ...ceilingScenarios(t, path, parts, plan.size, 'ceil', partConcurrency),
      dd([]),
      dd(['iflag=direct']),
    ],
    plan.runs,
    plan.size,
    env.fleet.sim.pid,
  );
  await removeGetSource(t, 'ceil');
  rmSync(partsDir, { recursive: true, force: true });
  return {
    size: plan.size,
    samples,
    notes: [
      ...ceilingNotes(partSize, partConcurrency),
      'dd-cached: the test file through the page cache (as every client here reads it); dd-direct: O_DIRECT, the disk itself',
    ],
  };
}
