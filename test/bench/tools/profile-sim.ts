/**
 * Diagnostic: profiles the simulator's S3 under a raw load (node --cpu-prof in the
 * simulator process). Puts a file with curl (one presigned PUT), reads it back with curl
 * (one GET), and uploads it again as a multipart upload through lib-storage at the fleet's
 * part size; then stops the simulator (SIGTERM, so V8 writes the profile) and prints where
 * its CPU time went.
 *   node test/bench/tools/profile-sim.ts [sizeMiB=512] [profileDir=/tmp/sim-prof]
 */
import { mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeFile } from '../../helpers/fleet.ts';
import { spawnSimulator } from '../../helpers/sim.ts';
import { credsFrom } from '../lib/env.ts';
import { curlGet, curlPut, libStorageUpload, simJcds, simTarget } from '../lib/clients.ts';
import { MiB, mibps, printProfiles } from '../lib/measure.ts';

const sizeMiB = Number(process.argv[2] ?? 512);
const profDir = process.argv[3] ?? '/tmp/sim-prof';
rmSync(profDir, { recursive: true, force: true });
mkdirSync(profDir, { recursive: true });
const dir = join(tmpdir(), `sim-prof-${process.pid}`);
mkdirSync(dir, { recursive: true });
const sim = await spawnSimulator({
  dataDir: join(dir, 'sim'),
  env: { NODE_OPTIONS: `--cpu-prof --cpu-prof-dir=${profDir}` },
});
try {
  const file = await makeFile(dir, 'p.pkg', sizeMiB * MiB);
  const { jamf, creds: c, s3 } = await simJcds(sim.info);
  const t = simTarget(credsFrom(c, s3, {}), sim.info.s3Endpoint);
  const bytes = sizeMiB * MiB;
  const key = `${c.path}p.pkg`;
  const put = (await curlPut(await t.presignPut(key), file.path)).ms;
  const get = (await curlGet(await t.presignGet(key), '/dev/null')).ms;
  const mp = (await libStorageUpload(t, file.path, `${c.path}p2.pkg`, 16 * MiB, 4)).ms;
  process.stdout.write(
    `curl PUT ${Math.round(mibps(bytes, put))} MiB/s, curl GET ${Math.round(mibps(bytes, get))} MiB/s, lib-storage multipart ${Math.round(mibps(bytes, mp))} MiB/s\n`,
  );
  s3.destroy();
  await jamf.close();
} finally {
  await sim.stop();
  rmSync(dir, { recursive: true, force: true });
}
await printProfiles(profDir, 25);
