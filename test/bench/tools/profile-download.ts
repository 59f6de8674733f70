/**
 * Diagnostic: one fleet download with a worker under `node --cpu-prof`, then where the
 * worker's time went. The file is put straight into the simulator's S3 with curl.
 *   node test/bench/tools/profile-download.ts [sizeMiB=1024] [profileDir=/tmp/dl-prof]
 */
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { QUEUES } from '../../../shared/queues/names.ts';
import { curlPut, simTarget } from '../lib/clients.ts';
import { startBenchEnv } from '../lib/env.ts';
import { fleetDownload } from '../lib/fleet-ops.ts';
import { JobWatcher } from '../lib/jobs.ts';
import { MiB, mibps, printProfiles } from '../lib/measure.ts';
import { makeFile } from '../../helpers/fleet.ts';

const sizeMiB = Number(process.argv[2] ?? 1024);
const profDir = process.argv[3] ?? '/tmp/dl-prof';
rmSync(profDir, { recursive: true, force: true });
mkdirSync(profDir, { recursive: true });
const env = await startBenchEnv();
try {
  const file = await makeFile(env.dir, 'dl.pkg', sizeMiB * MiB);
  const creds = await env.creds();
  const t = simTarget(creds, env.s3Endpoint);
  await curlPut(await t.presignPut(`${creds.path}dl.pkg`), file.path);
  const watcher = new JobWatcher(await env.fleet.events(QUEUES.download));
  await env.startWorkers(1, { NODE_OPTIONS: `--cpu-prof --cpu-prof-dir=${profDir}` });
  // The simulator hashes a file the first time it lists it: do that before timing.
  await env.jamf.listJcdsFiles();
  const d = await fleetDownload(env.producer, watcher, 'dl.pkg', join(env.dir, 'out.pkg'));
  process.stdout.write(
    `fleet download ${Math.round(d.totalMs)} ms = ${Math.round(mibps(sizeMiB * MiB, d.totalMs))} MiB/s\n`,
  );
  watcher.close();
  await env.stopWorkers('SIGTERM');
} finally {
  await env.close();
}
await printProfiles(profDir, 20);
