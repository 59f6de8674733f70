/**
 * Section 3: worker memory.
 * - Peak: one fresh worker process per upload (VmHWM is a lifetime high water mark), a
 *   small and a large file; the peak resident set is read from /proc/<pid>/status once the
 *   job completed, before the worker is stopped. It must not grow with the file size.
 * - Batch: one worker, a batch of multipart uploads whose files all differ in size (so
 *   every last part has a length of its own), 4 in flight, VmRSS after each upload. It must
 *   stay within 16 MiB of its plateau (test/helpers/rss-plateau.ts; the same rule as the
 *   memory test H3.1).
 */
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { BenchEnv } from '../lib/env.ts';
import { fleetUpload } from '../lib/fleet-ops.ts';
import type { JobWatcher } from '../lib/jobs.ts';
import { log, median, MiB, memoryOf, round } from '../lib/measure.ts';
import type { MemoryBatch, MemorySection, Plan } from '../types.ts';
import { makeFile } from '../../helpers/fleet.ts';
import { rssPlateau } from '../../helpers/rss-plateau.ts';

/** The batch's worker settings: the smallest part size S3 allows, to split 8 MiB files. */
const BATCH_PART_SIZE = 5 * MiB;
const BATCH_SPLIT = 8 * MiB;
const BATCH_IN_FLIGHT = 4;

export async function runMemory(
  env: BenchEnv,
  watcher: JobWatcher,
  plan: Plan,
): Promise<MemorySection> {
  const peakRss: MemorySection['peakRss'] = [];
  for (const size of plan.memorySizes) {
    log(`  making a ${size / MiB} MiB file`);
    const file = await makeFile(env.dir, `bench-mem-${size}.pkg`, size);
    const runs: number[] = [];
    const idlePeak: number[] = [];
    for (let r = 0; r < plan.runs; r++) {
      const [w] = await env.startWorkers(1);
      idlePeak.push(memoryOf(w!.pid).peakRss);
      const fileName = `bench-mem-${size}-${r}-${Date.now()}.pkg`;
      const t = await fleetUpload(env.producer, watcher, file.path, fileName);
      const peak = memoryOf(w!.pid).peakRss;
      runs.push(peak);
      log(
        `  ${size / MiB} MiB run ${r + 1}: peak RSS ${round(peak / MiB)} MiB (${round(t.totalMs)} ms)`,
      );
      await env.stopWorkers();
      await env.jamf.deletePackage(t.result.packageId).catch(() => undefined);
      await env.jamf.deleteJcdsFile(fileName).catch(() => undefined);
    }
    rmSync(file.path, { force: true });
    peakRss.push({ size, runs, median: median(runs), idlePeak });
  }
  const first = peakRss[0]?.median ?? NaN;
  const last = peakRss[peakRss.length - 1]?.median ?? NaN;
  const batch = await runMemoryBatch(env, watcher, plan.memoryBatchCount);
  return { sizes: plan.memorySizes, peakRss, growth: round(last / first, 3), batch };
}

/**
 * `count` uploads of 8 MiB + i × 4097 bytes (two parts: 5 MiB and 3 MiB + i × 4097), 4 in
 * flight through one fresh worker; VmRSS after each one. Warm-up and window: the first 10%
 * and the next 30% of the batch (20 and 60 of 200, as in H3.1).
 */
async function runMemoryBatch(
  env: BenchEnv,
  watcher: JobWatcher,
  count: number,
): Promise<MemoryBatch> {
  const sizeOf = (i: number): number => BATCH_SPLIT + i * 4097;
  const source = randomBytes(sizeOf(count));
  const [w] = await env.startWorkers(1, {
    JCDS_PART_SIZE: String(BATCH_PART_SIZE),
    JCDS_SPLIT_THRESHOLD: String(BATCH_SPLIT),
  });
  const stamp = Date.now();
  const rss: number[] = [];
  const t0 = performance.now();
  let next = 0;
  const uploadOne = async (i: number): Promise<void> => {
    const fileName = `bench-mem-batch-${stamp}-${String(i).padStart(4, '0')}.pkg`;
    const path = join(env.dir, fileName);
    const bytes = Buffer.from(source.subarray(0, sizeOf(i)));
    bytes.write(`${fileName}\n`, 0);
    await writeFile(path, bytes);
    const t = await fleetUpload(env.producer, watcher, path, fileName);
    rss.push(memoryOf(w!.pid).rss);
    await rm(path, { force: true });
    await env.jamf.deletePackage(t.result.packageId).catch(() => undefined);
    await env.jamf.deleteJcdsFile(fileName).catch(() => undefined);
    if (rss.length % 20 === 0)
      log(`  batch: ${rss.length}/${count} uploads, worker RSS ${round(rss.at(-1)! / MiB)} MiB`);
  };
  await Promise.all(
    Array.from({ length: BATCH_IN_FLIGHT }, async () => {
      while (next < count) await uploadOne(next++);
    }),
  );
  const ms = performance.now() - t0;
  await env.stopWorkers();
  const warmup = Math.round(count / 10);
  const window = Math.round((3 * count) / 10);
  const p = rssPlateau(rss, { warmup, window, margin: 16 * MiB });
  log(
    `  batch of ${count}: plateau ${round(p.plateau / MiB)} MiB, max after it ${round(p.max / MiB)} MiB (${p.delta >= 0 ? '+' : ''}${round(p.delta / MiB)}), final ${round(p.final / MiB)} MiB (${round(ms / 1000)} s)`,
  );
  return {
    count,
    inFlight: BATCH_IN_FLIGHT,
    partSize: BATCH_PART_SIZE,
    sizes: [sizeOf(0), sizeOf(count - 1)],
    warmup,
    window,
    plateau: p.plateau,
    max: p.max,
    delta: p.delta,
    final: p.final,
    ms: round(ms),
  };
}
