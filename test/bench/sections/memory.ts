/**
 * Section 3: worker memory. One fresh worker process per upload (VmHWM is a lifetime high
 * water mark), a small and a large file; the peak resident set is read from
 * /proc/<pid>/status once the job completed, before the worker is stopped. It must not
 * grow with the file size.
 */
import { rmSync } from 'node:fs';
import type { BenchEnv } from '../lib/env.ts';
import { fleetUpload } from '../lib/fleet-ops.ts';
import type { JobWatcher } from '../lib/jobs.ts';
import { log, median, MiB, memoryOf, round } from '../lib/measure.ts';
import type { MemorySection, Plan } from '../types.ts';
import { makeFile } from '../../helpers/fleet.ts';

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
  return { sizes: plan.memorySizes, peakRss, growth: round(last / first, 3) };
}
