/**
 * Diagnostic: one fleet upload with a fresh worker, sampling the worker's resident set
 * (VmRSS from /proc) every 250 ms, to see whether the peak builds up or spikes:
 * `node test/bench/tools/memory-probe.ts [sizeMiB=1024] [NODE_OPTIONS for the worker] [NAME=value…]`
 * (the NAME=value arguments go into the worker's environment).
 */
import { readFileSync } from 'node:fs';
import { startBenchEnv } from '../lib/env.ts';
import { fleetUpload } from '../lib/fleet-ops.ts';
import { JobWatcher } from '../lib/jobs.ts';
import { MiB, memoryOf } from '../lib/measure.ts';
import { makeFile } from '../../helpers/fleet.ts';

const sizeMiB = Number(process.argv[2] ?? 1024);
const extra = process.argv[3] ?? '';
const env = await startBenchEnv();
const watcher = new JobWatcher(env.uploadEvents);
try {
  const file = await makeFile(env.dir, 'mem.pkg', sizeMiB * MiB);
  const vars = Object.fromEntries(
    process.argv.slice(4).map(a => a.split('=', 2) as [string, string]),
  );
  const [w] = await env.startWorkers(1, { ...(extra ? { NODE_OPTIONS: extra } : {}), ...vars });
  const samples: number[] = [];
  const kinds: string[] = [];
  const rssKinds = (): string => {
    const st = readFileSync(`/proc/${w!.pid}/status`, 'utf8');
    const kb = (k: string): number =>
      Math.round(Number(new RegExp(`${k}:\\s+(\\d+)`).exec(st)?.[1] ?? 0) / 1024);
    return `${kb('RssAnon')}/${kb('RssFile')}`;
  };
  const timer = setInterval(() => {
    samples.push(memoryOf(w!.pid).rss);
    if (samples.length % 8 === 1) kinds.push(rssKinds());
  }, 250);
  const t = await fleetUpload(env.producer, watcher, file.path, `mem-${Date.now()}.pkg`);
  clearInterval(timer);
  const m = memoryOf(w!.pid);
  const mib = (b: number): string => `${Math.round(b / MiB)}`;
  process.stdout.write(
    `upload ${sizeMiB} MiB in ${Math.round(t.totalMs)} ms; peak RSS ${mib(m.peakRss)} MiB, now ${mib(m.rss)} MiB\n` +
      `RSS every 250 ms (MiB): ${samples.map(mib).join(' ')}\n` +
      `RssAnon/RssFile every 2 s (MiB): ${kinds.join(' ')}\n`,
  );
  await env.stopWorkers();
} finally {
  watcher.close();
  await env.close();
}
