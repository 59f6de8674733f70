/**
 * Section 2: download the same file. The fleet's download job (once the producer has a
 * download method) against curl (one stream on the presigned URL Jamf hands out),
 * `aws s3 cp` and 20 MiB ranges × 5 (jamf-pro-sdk-python's pattern, plain HTTP). Every
 * client writes a file on the same disk; the size of each result is checked.
 */
import { rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import {
  awsDownload,
  curlGet,
  rangedDownload,
  simTarget,
  type S3Target,
  type Timed,
} from '../lib/clients.ts';
import type { Tool } from '../lib/tools.ts';
import type { BenchEnv } from '../lib/env.ts';
import { fleetDownload, fleetUpload } from '../lib/fleet-ops.ts';
import { JobWatcher } from '../lib/jobs.ts';
import { QUEUES } from '../../../shared/queues/names.ts';
import { cpuMsOf, round } from '../lib/measure.ts';
import type { Plan, TransferSection } from '../types.ts';
import { interleave, type Scenario } from './upload.ts';

function checkSize(path: string, size: number, who: string): void {
  const got = statSync(path).size;
  if (got !== size) throw new Error(`${who}: downloaded ${got} bytes, expected ${size}`);
}

/** The three direct download clients; `url()` gives a fresh presigned URL. */
export function directDownloadScenarios(
  t: S3Target,
  key: string,
  url: () => Promise<string>,
  dir: string,
  size: number,
): Scenario[] {
  const one = (name: string, needs: Tool[], fn: (dest: string) => Promise<Timed>): Scenario => ({
    name,
    needs,
    run: async r => {
      const dest = join(dir, `dl-${name}-${r}.bin`);
      try {
        const got = await fn(dest);
        checkSize(dest, size, name);
        return { ms: got.ms, cpuMs: got.cpuMs };
      } finally {
        rmSync(dest, { force: true });
      }
    },
  });
  return [
    one('curl', ['curl'], async dest => curlGet(await url(), dest)),
    one('awscli', ['aws'], dest => awsDownload(t, key, dest)),
    one('ranged-20MiBx5', ['python3', 'requests'], async dest => rangedDownload(await url(), dest)),
  ];
}

export async function runDownload(
  env: BenchEnv,
  watcher: JobWatcher,
  plan: Plan,
  file: { path: string; sha256: string },
): Promise<TransferSection> {
  const fileName = `bench-download-${Date.now()}.pkg`;
  // The object to download is published by the fleet itself, so Jamf knows it as a package.
  await env.startWorkers(1);
  const up = await fleetUpload(env.producer, watcher, file.path, fileName);
  if (up.result.size !== plan.size) throw new Error(`the fleet stored ${up.result.size} bytes`);
  const creds = await env.creds();
  const t = simTarget(creds, env.s3Endpoint);
  // JCDS gives every set of credentials a tmp/<uuid>/ prefix of its own: the object is where
  // the fleet's upload put it, which the simulator's record of the package knows.
  const record = (await env.fleet.sim.control.packages()).find(
    p => (p['fields'] as Record<string, unknown> | undefined)?.['fileName'] === fileName,
  );
  const key = (record?.['file'] as { key?: string } | undefined)?.key;
  if (!key) throw new Error(`the simulator has no stored object for ${fileName}`);
  const dlWatcher = new JobWatcher(await env.fleet.events(QUEUES.download));
  const worker = env.fleet.workers.at(-1);
  const scenarios: Scenario[] = [
    {
      name: 'fleet',
      run: async r => {
        const dest = join(env.dir, `dl-fleet-${r}.pkg`);
        const cpu0 = worker ? cpuMsOf(worker.pid) : 0;
        try {
          const d = await fleetDownload(env.producer, dlWatcher, fileName, dest);
          checkSize(dest, plan.size, 'fleet');
          const workerCpuMs = worker ? cpuMsOf(worker.pid) - cpu0 : NaN;
          return { ms: d.totalMs, cpuMs: workerCpuMs, extra: { workerCpuMs } };
        } finally {
          rmSync(dest, { force: true });
        }
      },
    },
  ];
  scenarios.push(
    ...directDownloadScenarios(
      t,
      key,
      () => env.jamf.getJcdsDownloadUrl(fileName),
      env.dir,
      plan.size,
    ),
  );
  const samples = await interleave(scenarios, plan.runs, plan.size, env.fleet.sim.pid);
  dlWatcher.close();
  await env.stopWorkers();
  await env.jamf.deletePackage(up.result.packageId).catch(() => undefined);
  await env.jamf.deleteJcdsFile(fileName).catch(() => undefined);
  const ms = (n: string): number => samples[n]?.medianMs ?? NaN;
  return {
    size: plan.size,
    settings: {
      curl: 'one stream, presigned URL from GET /api/v1/jcds/files/{fileName}',
      awscli: 'defaults (8 MiB ranges, 10 concurrent requests)',
      ranged: '20 MiB ranges, 5 at a time, requests + os.pwrite (/usr/bin/python3)',
    },
    samples,
    ratios: {
      'fleet/curl': round(ms('curl') / ms('fleet'), 2),
      'fleet/awscli': round(ms('awscli') / ms('fleet'), 2),
      'fleet/ranged-20MiBx5': round(ms('ranged-20MiBx5') / ms('fleet'), 2),
    },
    notes: [
      'fleet: Producer download job → completed (ranges fetched, MD5/SHA3 verified, renamed into place), 1 worker',
      'every client writes its file to the same disk; sizes are checked after each run',
    ],
  };
}
