/**
 * Diagnostic: where the simulator's CPU goes while it receives one object. Starts a
 * simulator, PUTs a file with curl on a presigned URL twice, and prints the CPU time of
 * each simulator thread during each PUT (from /proc/<pid>/task/<tid>/stat): MainThread
 * (HTTP, SigV4, buffering), WorkerThread (the MD5 for the ETag), libuv-worker (file
 * writes), V8Worker (GC helpers). `node test/bench/tools/sim-threads.ts [sizeMiB=2048]`
 */
import { readFileSync, readdirSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { makeFile } from '../../helpers/fleet.ts';
import { spawnSimulator } from '../../helpers/sim.ts';
import { curlPut, simJcds } from '../lib/clients.ts';
const sizeMiB = Number(process.argv[2] ?? 2048);
const dir = join(tmpdir(), `simcpu-${process.pid}`);
mkdirSync(dir, { recursive: true });
const sim = await spawnSimulator({ dataDir: join(dir, 'sim') });
const pid = sim.pid!;
function threads(): Map<string, number> {
  const m = new Map<string, number>();
  for (const t of readdirSync(`/proc/${pid}/task`)) {
    try {
      const s = readFileSync(`/proc/${pid}/task/${t}/stat`, 'utf8');
      const comm = s.slice(s.indexOf('(') + 1, s.lastIndexOf(')'));
      const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
      m.set(`${t}:${comm}`, (Number(f[11]) + Number(f[12])) * 10);
    } catch {
      // the thread ended meanwhile
    }
  }
  return m;
}
const file = await makeFile(dir, 'p.pkg', sizeMiB * 1024 * 1024);
const { jamf, creds: c, s3 } = await simJcds(sim.info);
for (let i = 0; i < 2; i++) {
  const url = await getSignedUrl(
    s3,
    new PutObjectCommand({ Bucket: c.bucketName, Key: `${c.path}p${i}.pkg` }),
    { expiresIn: 3600 },
  );
  const a = threads();
  const { ms } = await curlPut(url, file.path);
  const b = threads();
  const out: string[] = [];
  let tot = 0;
  for (const [k, v] of b) {
    const d = v - (a.get(k) ?? 0);
    tot += d;
    if (d > 50) out.push(`${k}=${d}`);
  }
  console.log(
    `PUT ${Math.round(sizeMiB / (ms / 1000))} MiB/s in ${ms.toFixed(0)} ms; sim CPU ${tot} ms: ${out.join(' ')}`,
  );
  await new Promise(r => setTimeout(r, 15_000));
}
s3.destroy();
await jamf.close();
await sim.stop();
rmSync(dir, { recursive: true, force: true });
