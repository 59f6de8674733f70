/**
 * Section 4: batch publishing of many small packages (300 × 1 MiB).
 *
 *   fleet-2w      Producer.uploadMany into 2 workers at their default concurrency: the
 *                 time a user waits for the whole batch.
 *   fleet-1w-c1   1 worker with JCDS_WORKER_CONCURRENCY=1: one job at a time, so its time
 *                 per job compares with the sequential loops below.
 *   direct-min    a sequential loop with no queue doing the least a publish needs:
 *                 createJcdsFile, PutObject, createPackage.
 *   direct-same   a sequential loop with no queue making the same Jamf and S3 calls as
 *                 the worker's small-file path (check, look-up, createJcdsFile, lib-storage
 *                 Upload with streamed hashing, createPackage, refresh-inventory, poll
 *                 until Jamf's hash matches).
 *
 * Queue overhead per job = (fleet-1w-c1 − direct-same) / count: what BullMQ, Redis, the
 * vault and the step checkpoints add to each job.
 */
import { createHash } from 'node:crypto';
import { createReadStream, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { PassThrough } from 'node:stream';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { Job } from 'bullmq';
import { Upload } from '@aws-sdk/lib-storage';
import { assertUnchanged, checkUploadFile } from '../../../shared/files.ts';
import type { UploadResult } from '../../../shared/queues/jobs.ts';
import { QUEUES } from '../../../shared/queues/names.ts';
import { sameContent } from '../../../shared/upload/content.ts';
import { jcdsS3, type BenchEnv } from '../lib/env.ts';
import type { JobWatcher } from '../lib/jobs.ts';
import { cpuMsOf, log, MiB, round } from '../lib/measure.ts';
import type { BatchSection, Plan } from '../types.ts';
import { makeFile } from '../../helpers/fleet.ts';
import { interleave, type Scenario } from './upload.ts';

async function pool<T>(
  items: T[],
  limit: number,
  fn: (item: T) => Promise<unknown>,
): Promise<void> {
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
}

/**
 * From BullMQ's own timestamps: the mean time a job was being processed, and the mean gap
 * between one job finishing and the next one starting on the same worker slot (sequential
 * runs only make sense of the latter).
 */
async function jobTiming(
  env: BenchEnv,
  jobIds: string[],
): Promise<{ meanJobMs: number; meanPickupGapMs: number }> {
  const queue = env.fleet.queue(QUEUES.upload);
  const jobs = (await Promise.all(jobIds.map(id => Job.fromId(queue, id)))).filter(
    (j): j is Job => j !== undefined && j.processedOn !== undefined && j.finishedOn !== undefined,
  );
  jobs.sort((a, b) => a.processedOn! - b.processedOn!);
  const busy = jobs.reduce((n, j) => n + (j.finishedOn! - j.processedOn!), 0);
  let gaps = 0;
  for (let i = 1; i < jobs.length; i++)
    gaps += Math.max(0, jobs[i]!.processedOn! - jobs[i - 1]!.finishedOn!);
  return {
    meanJobMs: busy / Math.max(1, jobs.length),
    meanPickupGapMs: gaps / Math.max(1, jobs.length - 1),
  };
}

export async function runBatch(
  env: BenchEnv,
  watcher: JobWatcher,
  plan: Plan,
): Promise<BatchSection> {
  const dir = join(env.dir, 'batch');
  mkdirSync(dir, { recursive: true });
  log(`  making ${plan.batchCount} files of ${plan.batchFileSize / MiB} MiB`);
  const files: Array<{ path: string; sha256: string }> = [];
  for (let i = 0; i < plan.batchCount; i++) {
    files.push(await makeFile(dir, `pkg-${String(i).padStart(4, '0')}.pkg`, plan.batchFileSize));
  }
  const jamf = env.jamf;
  const cleanup = async (packageIds: string[]): Promise<void> => {
    await pool(packageIds, 5, id => jamf.deletePackage(id).catch(() => undefined));
  };
  const name = (scenario: string, r: number, i: number): string =>
    `b-${scenario}-${r}-${String(i).padStart(4, '0')}.pkg`;

  const fleetScenario = (
    scenario: string,
    workers: number,
    extraEnv: Record<string, string>,
  ): Scenario => ({
    name: scenario,
    run: async r => {
      const procs = await env.startWorkers(workers, extraEnv);
      const cpu0 = procs.map(w => cpuMsOf(w.pid));
      const redisPid = env.fleet.redis.pid();
      const redisCpu0 = redisPid ? cpuMsOf(redisPid) : 0;
      const t0 = performance.now();
      const enqueued = await env.producer.uploadMany(
        files.map((f, i) => ({ path: f.path, fileName: name(scenario, r, i), ifExists: 'fail' })),
      );
      const enqueueMs = performance.now() - t0;
      const done = await Promise.all(enqueued.map(e => watcher.wait(e.jobId)));
      const ms = performance.now() - t0;
      const workerCpuMs = procs.reduce((n, w, i) => n + cpuMsOf(w.pid) - cpu0[i]!, 0);
      const redisCpuMs = redisPid ? cpuMsOf(redisPid) - redisCpu0 : NaN;
      await env.stopWorkers();
      const ids = done.map(d => (d.returnvalue as UploadResult).packageId);
      const timing = await jobTiming(
        env,
        enqueued.map(e => e.jobId),
      );
      await cleanup(ids);
      return { ms, extra: { enqueueMs, workerCpuMs, redisCpuMs, ...timing } };
    },
  });

  const directMin: Scenario = {
    name: 'direct-min',
    run: async r => {
      const ids: string[] = [];
      const t0 = performance.now();
      for (const [i, f] of files.entries()) {
        const fileName = name('dmin', r, i);
        const c = await jamf.createJcdsFile();
        const s3 = jcdsS3(c, env.s3Endpoint);
        const body = readFileSync(f.path);
        await s3.send(
          new PutObjectCommand({ Bucket: c.bucketName, Key: `${c.path}${fileName}`, Body: body }),
        );
        s3.destroy();
        ids.push(String((await jamf.createPackage({ packageName: fileName, fileName })).id));
      }
      const ms = performance.now() - t0;
      await cleanup(ids);
      return { ms };
    },
  };

  const directSame: Scenario = {
    name: 'direct-same',
    run: async r => {
      const ids: string[] = [];
      let polls = 0;
      const t0 = performance.now();
      for (const [i, f] of files.entries()) {
        const fileName = name('dsame', r, i);
        // prepare
        const checked = await checkUploadFile(f.path, fileName);
        await assertUnchanged(checked);
        await jamf.findPackageByFileName(fileName);
        // stage (single request below the split threshold), hashing as it streams
        const c = await jamf.createJcdsFile();
        const s3 = jcdsS3(c, env.s3Endpoint);
        const sha256 = createHash('sha256');
        const body = new PassThrough({ highWaterMark: 1 << 20 });
        const source = createReadStream(f.path, { highWaterMark: 1 << 20 });
        source.on('data', chunk => {
          sha256.update(chunk as Buffer);
        });
        source.pipe(body);
        await new Upload({
          client: s3,
          params: {
            Bucket: c.bucketName,
            Key: `${c.path}${fileName}`,
            Body: body,
            ContentType: 'application/octet-stream',
          },
          partSize: 16 * MiB,
          queueSize: 4,
        }).done();
        await assertUnchanged(checked);
        s3.destroy();
        const hashes = { sha256: sha256.digest('hex') };
        // finalize (a new file: no second look-up)
        const id = String(
          // No hash fields: Jamf computes its own, which is what the poll compares.
          (await jamf.createPackage({ packageName: fileName, fileName })).id,
        );
        ids.push(id);
        await jamf.refreshJcdsInventory(fileName);
        let delay = 250;
        for (;;) {
          polls++;
          if (sameContent(await jamf.getPackage(id), hashes)) break;
          await sleep(delay);
          delay = Math.min(delay * 2, 5_000);
        }
      }
      const ms = performance.now() - t0;
      await cleanup(ids);
      return { ms, extra: { polls } };
    },
  };

  const samples = await interleave(
    [
      fleetScenario('fleet-2w', 2, {}),
      fleetScenario('fleet-1w-c1', 1, { JCDS_WORKER_CONCURRENCY: '1' }),
      directMin,
      directSame,
    ],
    plan.runs,
    undefined,
    env.fleet.sim.pid,
  );
  rmSync(dir, { recursive: true, force: true });
  const perJob = (n: string): number => round((samples[n]?.medianMs ?? NaN) / plan.batchCount, 2);
  const perJobMs = {
    'fleet-2w': perJob('fleet-2w'),
    'fleet-1w-c1': perJob('fleet-1w-c1'),
    'direct-min': perJob('direct-min'),
    'direct-same': perJob('direct-same'),
  };
  return {
    count: plan.batchCount,
    fileSize: plan.batchFileSize,
    samples,
    perJobMs,
    queueOverheadMs: round(perJobMs['fleet-1w-c1'] - perJobMs['direct-same'], 2),
    notes: [
      'fleet times run from Producer.uploadMany until the last job completed (package created and verified)',
      'queue overhead per job = (fleet-1w-c1 − direct-same) / count',
      'direct-same polls Jamf for the stored hash with the worker’s backoff (250 ms, doubling)',
    ],
  };
}
