/**
 * Diagnostic: one fleet upload with 1 worker, then the timeline of its jobs from Redis
 * (when each part job was created, started and finished, relative to the enqueue), to see
 * where an upload's wall time goes. `node test/bench/tools/timeline.ts [sizeMiB] [workers]`.
 * Set NODE_OPTIONS=--cpu-prof (and --cpu-prof-dir) in the environment to profile workers.
 */
import { Job } from 'bullmq';
import { QUEUES } from '../../../shared/queues/names.ts';
import { startBenchEnv } from '../lib/env.ts';
import { fleetUpload } from '../lib/fleet-ops.ts';
import { JobWatcher } from '../lib/jobs.ts';
import { MiB } from '../lib/measure.ts';
import { makeFile } from '../../helpers/fleet.ts';

const sizeMiB = Number(process.argv[2] ?? 256);
const workers = Number(process.argv[3] ?? 1);
const env = await startBenchEnv();
const watcher = new JobWatcher(env.uploadEvents);
try {
  const file = await makeFile(env.dir, 'timeline.pkg', sizeMiB * MiB);
  const workerEnv: Record<string, string> = {};
  if (process.env['WORKER_NODE_OPTIONS'])
    workerEnv['NODE_OPTIONS'] = process.env['WORKER_NODE_OPTIONS'];
  await env.startWorkers(workers, workerEnv);
  const t = await fleetUpload(env.producer, watcher, file.path, `timeline-${Date.now()}.pkg`);
  const parts = env.fleet.queue(QUEUES.uploadPart);
  const up = env.fleet.queue(QUEUES.upload);
  const jobs = (await parts.getJobs(['completed'], 0, 10_000)) as Job[];
  const [parent] = (await up.getJobs(['completed'], 0, 1)) as Job[];
  const t0 = parent!.timestamp;
  process.stdout.write(
    `stored ${Math.round(t.storedMs)} ms, total ${Math.round(t.totalMs)} ms; parent processedOn +${parent!.processedOn! - t0}, finishedOn +${parent!.finishedOn! - t0}\n`,
  );
  const rows = jobs
    .map(j => ({
      name:
        typeof (j.data as { partNumber?: number }).partNumber === 'number'
          ? `p${(j.data as { partNumber: number }).partNumber}`
          : 'hash',
      created: j.timestamp - t0,
      started: (j.processedOn ?? 0) - t0,
      finished: (j.finishedOn ?? 0) - t0,
    }))
    .sort((a, b) => a.started - b.started);
  for (const r of rows)
    process.stdout.write(
      `${r.name.padEnd(6)} created +${r.created} started +${r.started} finished +${r.finished} (${r.finished - r.started} ms)\n`,
    );
  await env.stopWorkers('SIGTERM');
} finally {
  watcher.close();
  await env.close();
}
