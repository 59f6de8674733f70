/**
 * Diagnostic: what a worker retains over a batch of multipart uploads of distinct sizes
 * (the memory section's batch and the test H3.1). The worker runs with --inspect; every
 * `every` uploads the batch pauses, a full GC is forced over the DevTools protocol, and the
 * worker's VmRSS and process.memoryUsage() (heap used, external, array buffers) are printed,
 * so growth of live JavaScript objects, of Buffers and of memory outside both (malloc
 * arenas, thread stacks) can be told apart:
 * `node test/bench/tools/batch-memory-probe.ts [count=400] [every=40] [inFlight=4] [NAME=value…]`
 * (NAME=value arguments go into the worker's environment).
 */
import { randomBytes } from 'node:crypto';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startBenchEnv } from '../lib/env.ts';
import { fleetUpload } from '../lib/fleet-ops.ts';
import { JobWatcher } from '../lib/jobs.ts';
import { MiB, memoryOf } from '../lib/measure.ts';
import { connectInspector, freePort, inspectorEnv } from '../../helpers/inspector.ts';

const count = Number(process.argv[2] ?? 400);
const every = Number(process.argv[3] ?? 40);
const inFlight = Number(process.argv[4] ?? 4);
const vars = Object.fromEntries(
  process.argv.slice(5).map(a => a.split('=', 2) as [string, string]),
);

const env = await startBenchEnv();
const watcher = new JobWatcher(env.uploadEvents);
try {
  const port = await freePort();
  const [w] = await env.startWorkers(1, {
    ...inspectorEnv(port),
    JCDS_PART_SIZE: '5MiB',
    JCDS_SPLIT_THRESHOLD: '8MiB',
    ...vars,
  });
  const inspector = await connectInspector(port);
  const mib = (b: number): string => (b / MiB).toFixed(1);
  const report = async (done: number): Promise<void> => {
    const before = memoryOf(w!.pid).rss;
    await inspector.gc();
    const u = await inspector.memoryUsage();
    process.stdout.write(
      `${String(done).padStart(4)} uploads: VmRSS ${mib(before)} → ${mib(memoryOf(w!.pid).rss)} MiB after a full GC; heapUsed ${mib(u.heapUsed)}, heapTotal ${mib(u.heapTotal)}, external ${mib(u.external)}, arrayBuffers ${mib(u.arrayBuffers)} MiB\n`,
    );
  };
  const sizeOf = (i: number): number => 8 * MiB + i * 4097;
  const source = randomBytes(sizeOf(count));
  await report(0);
  for (let start = 0; start < count; start += every) {
    let next = start;
    const end = Math.min(count, start + every);
    await Promise.all(
      Array.from({ length: inFlight }, async () => {
        while (next < end) {
          const i = next++;
          const fileName = `probe-${String(i).padStart(4, '0')}.pkg`;
          const path = join(env.dir, fileName);
          const bytes = Buffer.from(source.subarray(0, sizeOf(i)));
          bytes.write(`${fileName}\n`, 0);
          await writeFile(path, bytes);
          const t = await fleetUpload(env.producer, watcher, path, fileName);
          await rm(path, { force: true });
          await env.jamf.deletePackage(t.result.packageId).catch(() => undefined);
          await env.jamf.deleteJcdsFile(fileName).catch(() => undefined);
        }
      }),
    );
    await report(end);
  }
  inspector.close();
  await env.stopWorkers();
} finally {
  watcher.close();
  await env.close();
}
