/**
 * One upload through the whole fleet, timed: `node test/bench/tools/one-upload.ts [MiB]`
 * (default 1024). Starts redis-server, the simulator and one worker process, publishes a
 * file of random bytes with Producer.upload, and prints the phases as the job's progress
 * shows them, the end-to-end time and MB/s (enqueue to verified package), and the worker's
 * peak RSS (VmHWM).
 */
import { readFileSync } from 'node:fs';
import { Producer } from '../../../producer/producer.ts';
import { makeFile, startFleet, waitForJob } from '../../helpers/fleet.ts';

const mib = Number(process.argv[2] ?? 1024);
const size = mib * 1024 * 1024;
const fleet = await startFleet();
try {
  const worker = await fleet.startWorker();
  const file = await makeFile(fleet.dir, 'one-upload.pkg', size);
  const producer = await Producer.connect({ redisUrl: fleet.redis.url });
  const t0 = Date.now();
  const { jobId } = await producer.upload({ path: file.path });
  let last = '';
  const timer = setInterval(() => {
    void fleet
      .queue('upload')
      .getJob(jobId)
      .then(j => {
        const phase = `${j?.data.step} ${(j?.progress as { phase?: string } | undefined)?.phase ?? ''}`;
        if (phase !== last) {
          last = phase;
          process.stdout.write(`${((Date.now() - t0) / 1000).toFixed(1)} s  ${phase}\n`);
        }
      });
  }, 100);
  const job = await waitForJob(fleet.queue('upload'), jobId, 600_000);
  clearInterval(timer);
  const ms = Date.now() - t0;
  const hwm = /VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${worker.pid}/status`, 'utf8'))?.[1];
  process.stdout.write(
    `${JSON.stringify({
      MiB: mib,
      failedReason: job.failedReason,
      seconds: ms / 1000,
      MBps: Number((size / 1e6 / (ms / 1000)).toFixed(1)),
      workerPeakRssMiB: Math.round(Number(hwm) / 1024),
    })}\n`,
  );
  await producer.close();
} finally {
  await fleet.close();
}
