/**
 * Section 3: worker memory.
 * - Peak: one fresh worker process per upload (VmHWM is a lifetime high water mark), a
 *   small and a large file; the peak resident set is read from /proc/<pid>/status once the
 *   job completed, before the worker is stopped. It must not grow with the file size.
 * - Batch: one worker, a batch of multipart uploads whose files all differ in size (so
 *   every last part has a length of its own), in waves of 4; after each wave a full GC is
 *   forced over the worker's inspector and VmRSS sampled (and before it, garbage
 *   included). It must stay within 16 MiB of its plateau (test/helpers/rss-plateau.ts; the
 *   same method as the memory test H3.1, test/integration/faults-memory.test.ts).
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
import { connectInspector, freePort, inspectorEnv } from '../../helpers/inspector.ts';
import { rssPlateau } from '../../helpers/rss-plateau.ts';

/** The batch's worker settings: the smallest part size S3 allows, to split 8 MiB files. */
const BATCH_PART_SIZE = 5 * MiB;
const BATCH_SPLIT = 8 * MiB;
const BATCH_WAVE = 4;

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
 * `count` uploads of 8 MiB + i × 4097 bytes (two parts: 5 MiB and 3 MiB + i × 4097), in
 * waves of 4 through one fresh worker; VmRSS after each wave, after a full GC and before
 * it. Warm-up and window: the first 10% and the next 30% of the batch (20 and 60 of 200,
 * as in H3.1), rounded to waves.
 */
async function runMemoryBatch(
  env: BenchEnv,
  watcher: JobWatcher,
  count: number,
): Promise<MemoryBatch> {
  const waves = Math.ceil(count / BATCH_WAVE);
  const sizeOf = (i: number): number => BATCH_SPLIT + i * 4097;
  const source = randomBytes(sizeOf(waves * BATCH_WAVE));
  const port = await freePort();
  const [w] = await env.startWorkers(1, {
    JCDS_PART_SIZE: String(BATCH_PART_SIZE),
    JCDS_SPLIT_THRESHOLD: String(BATCH_SPLIT),
    ...inspectorEnv(port),
  });
  const inspector = await connectInspector(port);
  const stamp = Date.now();
  const rss: number[] = [];
  const rawRss: number[] = [];
  const t0 = performance.now();
  const uploadOne = async (i: number): Promise<void> => {
    const fileName = `bench-mem-batch-${stamp}-${String(i).padStart(4, '0')}.pkg`;
    const path = join(env.dir, fileName);
    const bytes = Buffer.from(source.subarray(0, sizeOf(i)));
    bytes.write(`${fileName}\n`, 0);
    await writeFile(path, bytes);
    const t = await fleetUpload(env.producer, watcher, path, fileName);
    await rm(path, { force: true });
    await env.jamf.deletePackage(t.result.packageId).catch(() => undefined);
    await env.jamf.deleteJcdsFile(fileName).catch(() => undefined);
  };
  for (let wave = 0; wave < waves; wave++) {
    await Promise.all(
      Array.from({ length: BATCH_WAVE }, (_, k) => uploadOne(wave * BATCH_WAVE + k)),
    );
    rawRss.push(memoryOf(w!.pid).rss);
    await inspector.gc();
    rss.push(memoryOf(w!.pid).rss);
    if ((wave + 1) % 5 === 0)
      log(
        `  batch: ${(wave + 1) * BATCH_WAVE}/${waves * BATCH_WAVE} uploads, worker RSS ${round(rss.at(-1)! / MiB)} MiB`,
      );
  }
  const ms = performance.now() - t0;
  inspector.close();
  await env.stopWorkers();
  const warmup = Math.max(1, Math.round(waves / 10));
  const window = Math.max(1, Math.round((3 * waves) / 10));
  const rule = { warmup, window, margin: 16 * MiB };
  const p = rssPlateau(rss, rule);
  const raw = rssPlateau(rawRss, rule);
  const signed = (b: number): string => `${b >= 0 ? '+' : ''}${round(b / MiB)}`;
  log(
    `  batch of ${waves * BATCH_WAVE}: after a full GC plateau ${round(p.plateau / MiB)} MiB, max after it ${round(p.max / MiB)} MiB (${signed(p.delta)}), final ${round(p.final / MiB)} MiB; without it ${round(raw.plateau / MiB)}, ${round(raw.max / MiB)} (${signed(raw.delta)}), ${round(raw.final / MiB)} MiB (${round(ms / 1000)} s)`,
  );
  return {
    count: waves * BATCH_WAVE,
    wave: BATCH_WAVE,
    partSize: BATCH_PART_SIZE,
    sizes: [sizeOf(0), sizeOf(waves * BATCH_WAVE - 1)],
    warmup: warmup * BATCH_WAVE,
    window: window * BATCH_WAVE,
    plateau: p.plateau,
    max: p.max,
    delta: p.delta,
    final: p.final,
    raw: { plateau: raw.plateau, max: raw.max, delta: raw.delta, final: raw.final },
    ms: round(ms),
  };
}
