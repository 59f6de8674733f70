/**
 * Section "peer": the fleet as a user runs it against jamf-pro-sdk-python's JCDS2 client as
 * a user of that SDK runs it (py/jamf_sdk_peer.py), one file of the run's size, against the
 * same simulator, each timed from its command's spawn.
 *
 *   upload   fleet: `jcds upload FILE --wait` (bin/jcds.js, spawned) with 1 running worker;
 *            peer: the SDK's upload_file (package scan, JCDS credentials, boto3 20 MiB × 5,
 *            the Classic package record), then polling GET /api/v1/packages/{id}.
 *            Two times each: until the package record is written (the simulator logs it,
 *            after the object is stored: both clients write the record last), and until
 *            Jamf reports the package READY with its hash (the command's exit: the fleet's
 *            after its own verification, the peer's after its poll saw READY).
 *   download fleet: `jcds download NAME DEST --wait` (verified before the file appears);
 *            peer: the SDK's download_file pattern, 20 MiB ranges × 5 written at their
 *            offsets (`peer`; the goal's baseline) and as the SDK writes them, into chunk
 *            files concatenated afterwards (`peer-sdk-chunks`); curl, one stream, on the URL
 *            Jamf hands out (fetched before the clock starts).
 *
 * CPU: the fleet's is its worker's (from /proc/<pid>/stat) plus the command's process tree;
 * the peer's and curl's, their process trees (lib/measure.ts `run`).
 */
import { linkSync, mkdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { ROOT } from '../../helpers/fleet.ts';
import { currentTools, curlGet, PY_DIR } from '../lib/clients.ts';
import type { BenchEnv } from '../lib/env.ts';
import { fleetUpload } from '../lib/fleet-ops.ts';
import type { JobWatcher } from '../lib/jobs.ts';
import { cpuMsOf, log, median, round, run, type RunResult, type Sample } from '../lib/measure.ts';
import { need } from '../lib/tools.ts';
import type { Plan } from '../types.ts';
import { interleave, type Scenario } from './upload.ts';

export interface PeerSection {
  size: number;
  settings: Record<string, unknown>;
  upload: Record<string, Sample>;
  download: Record<string, Sample>;
  ratios: Record<string, number>;
  notes: string[];
}

/** Epoch ms at which the simulator logged the package record of `fileName` (NaN if not). */
export function recordLoggedAt(logs: string, fileName: string): number {
  for (const line of logs.split('\n')) {
    if (!line.includes('package created') || !line.includes(fileName)) continue;
    try {
      const o = JSON.parse(line) as { time?: number; fileName?: string; msg?: string };
      if (o.fileName === fileName && typeof o.time === 'number') return o.time;
    } catch {
      // Not a JSON line.
    }
  }
  return NaN;
}

/** NDJSON lines of a command's stdout (non-JSON lines are skipped). */
function events(stdout: string): Array<Record<string, unknown>> {
  return stdout
    .split('\n')
    .filter(l => l.trim().startsWith('{'))
    .flatMap(l => {
      try {
        return [JSON.parse(l) as Record<string, unknown>];
      } catch {
        return [];
      }
    });
}

export async function runPeer(
  env: BenchEnv,
  watcher: JobWatcher,
  plan: Plan,
  file: { path: string; sha256: string },
): Promise<PeerSection> {
  const dir = join(env.dir, 'peer');
  mkdirSync(dir, { recursive: true });
  const info = env.fleet.sim.info;
  const [worker] = await env.startWorkers(1);
  if (!worker) throw new Error('no worker started');
  const cliEnv: NodeJS.ProcessEnv = {
    PATH: process.env['PATH'] ?? '/usr/bin:/bin',
    HOME: process.env['HOME'] ?? '/tmp',
    LANG: 'C.UTF-8',
    REDIS_URL: env.fleet.redis.url,
  };
  const peerEnv: NodeJS.ProcessEnv = {
    PATH: '/usr/bin:/bin',
    HOME: process.env['HOME'] ?? '/tmp',
    LANG: 'C.UTF-8',
    JAMF_URL: info.jamfUrl,
    JAMF_CLIENT_ID: info.clientId,
    JAMF_CLIENT_SECRET: info.clientSecret,
  };
  const jcds = (args: string[]): Promise<RunResult> =>
    run(process.execPath, [join(ROOT, 'bin', 'jcds.js'), ...args], { env: cliEnv, cwd: env.dir });
  const peer = (args: string[], onLine?: (line: string, at: number) => void): Promise<RunResult> =>
    run(need(currentTools(), 'python3'), [join(PY_DIR, 'jamf_sdk_peer.py'), ...args], {
      env: peerEnv,
      cwd: dir,
      ...(onLine ? { onLine } : {}),
    });
  /** The file under a name of its own (a hard link: same bytes, same page cache). */
  const named = (tag: string, r: number): { path: string; name: string } => {
    const name = `bench-peer-${tag}-${r}-${Date.now()}.pkg`;
    const path = join(dir, name);
    linkSync(file.path, path);
    return { path, name };
  };
  const cleanup = async (name: string, path?: string): Promise<void> => {
    const pkg = await env.jamf.findPackageByFileName(name).catch(() => undefined);
    if (pkg) await env.jamf.deletePackage(String(pkg.id)).catch(() => undefined);
    await env.jamf.deleteJcdsFile(name).catch(() => undefined);
    if (path) rmSync(path, { force: true });
  };
  const recordMs = (name: string, startedAt: number): number =>
    recordLoggedAt(env.fleet.sim.logs(), name) - startedAt;

  const uploadScenarios: Scenario[] = [
    {
      name: 'fleet',
      run: async r => {
        const f = named('fleet', r);
        const cpu0 = cpuMsOf(worker.pid);
        const res = await jcds(['upload', f.path, '--wait', '--json', '--if-exists', 'fail']);
        const workerCpuMs = cpuMsOf(worker.pid) - cpu0;
        const enq = events(res.stdout).find(e => e['event'] === 'enqueued');
        const jobId = String(enq?.['jobId'] ?? '');
        const stored = watcher.times(jobId)?.storedAt;
        const extra = {
          readyMs: res.ms,
          objectStoredMs:
            stored === undefined ? NaN : performance.timeOrigin + stored - res.startedAt,
          workerCpuMs,
          cliCpuMs: res.cpuMs,
        };
        // Stored and recorded: whichever came last (the record is written after the object
        // today; the simulator's log stands in for the job's progress, which has no event
        // for the record).
        const logged = recordMs(f.name, res.startedAt);
        if (Number.isNaN(logged)) log(`  fleet: no record of ${f.name} in the simulator's log`);
        const ms = Math.max(
          Number.isNaN(logged) ? -Infinity : logged,
          Number.isNaN(extra.objectStoredMs) ? -Infinity : extra.objectStoredMs,
        );
        await cleanup(f.name, f.path);
        return {
          ms: Number.isFinite(ms) ? ms : NaN,
          cpuMs: workerCpuMs + res.cpuMs,
          extra: { ...extra, recordLoggedMs: logged },
        };
      },
    },
    {
      name: 'peer',
      needs: ['python3', 'boto3', 'requests'],
      run: async r => {
        const f = named('sdk', r);
        let recordSeenAt = NaN;
        const res = await peer(['upload', f.path, '--endpoint', info.s3Endpoint], (line, at) => {
          if (line.includes('"record"')) recordSeenAt = at;
        });
        const ev = events(res.stdout);
        const rec = ev.find(e => e['event'] === 'record');
        // The simulator's log, as for the fleet; the script's own line if it is not there.
        const logged = recordMs(f.name, res.startedAt);
        const ms = Number.isNaN(logged) ? recordSeenAt - res.startedAt : logged;
        await cleanup(f.name, f.path);
        return {
          ms,
          cpuMs: res.cpuMs,
          extra: {
            readyMs: res.ms,
            recordSeenMs: recordSeenAt - res.startedAt,
            scannedPackages: Number(rec?.['scanned'] ?? NaN),
            parts: Number(rec?.['parts'] ?? NaN),
            polls: Number(ev.find(e => e['event'] === 'ready')?.['polls'] ?? NaN),
          },
        };
      },
    },
  ];
  const upload = await interleave(uploadScenarios, plan.runs, plan.size, env.fleet.sim.pid);

  // The file to download, published by the fleet (so that Jamf holds its hash); not timed.
  const source = `bench-peer-source-${Date.now()}.pkg`;
  const up = await fleetUpload(env.producer, watcher, file.path, source);
  if (up.result.size !== plan.size) throw new Error(`the fleet stored ${up.result.size} bytes`);
  const dlWorkerCpu = (): number => cpuMsOf(worker.pid);
  const checked = (dest: string, who: string): void => {
    const got = statSync(dest).size;
    if (got !== plan.size)
      throw new Error(`${who}: downloaded ${got} bytes, expected ${plan.size}`);
  };
  const dl = (
    name: string,
    needs: Scenario['needs'],
    fn: (dest: string) => Promise<{ ms: number; cpuMs: number; extra?: Record<string, number> }>,
  ): Scenario => ({
    name,
    ...(needs ? { needs } : {}),
    run: async r => {
      const dest = join(dir, `dl-${name}-${r}.pkg`);
      try {
        const got = await fn(dest);
        checked(dest, name);
        return got;
      } finally {
        rmSync(dest, { force: true });
      }
    },
  });
  const downloadScenarios: Scenario[] = [
    dl('fleet', undefined, async dest => {
      const cpu0 = dlWorkerCpu();
      const res = await jcds(['download', source, dest, '--wait', '--json', '--overwrite']);
      const workerCpuMs = dlWorkerCpu() - cpu0;
      return {
        ms: res.ms,
        cpuMs: workerCpuMs + res.cpuMs,
        extra: { workerCpuMs, cliCpuMs: res.cpuMs },
      };
    }),
    dl('peer', ['python3', 'requests'], dest => peer(['download', source, dest])),
    dl('peer-sdk-chunks', ['python3', 'requests'], dest =>
      peer(['download', source, dest, '--write', 'chunks', '--tmp', dir]),
    ),
    dl('curl', ['curl'], async dest => curlGet(await env.jamf.getJcdsDownloadUrl(source), dest)),
  ];
  const download = await interleave(downloadScenarios, plan.runs, plan.size, env.fleet.sim.pid);
  await env.stopWorkers();
  await env.jamf.deletePackage(up.result.packageId).catch(() => undefined);
  await env.jamf.deleteJcdsFile(source).catch(() => undefined);
  rmSync(dir, { recursive: true, force: true });

  const ms = (s: Record<string, Sample>, n: string): number => s[n]?.medianMs ?? NaN;
  const perRun = (s: Record<string, Sample>, n: string, k: string): number =>
    median((s[n]?.['perRun'] as Record<string, number[]> | undefined)?.[k] ?? []);
  const ratio = (a: number, b: number): number => round(a / b, 2);
  const ratios = {
    'upload-record: peer/fleet': ratio(ms(upload, 'peer'), ms(upload, 'fleet')),
    'upload-ready: peer/fleet': ratio(
      perRun(upload, 'peer', 'readyMs'),
      perRun(upload, 'fleet', 'readyMs'),
    ),
    'download: peer/fleet': ratio(ms(download, 'peer'), ms(download, 'fleet')),
    'download: peer-sdk-chunks/fleet': ratio(
      ms(download, 'peer-sdk-chunks'),
      ms(download, 'fleet'),
    ),
    'download: curl/fleet': ratio(ms(download, 'curl'), ms(download, 'fleet')),
  };
  log(`  peer ratios: ${JSON.stringify(ratios)}`);
  return {
    size: plan.size,
    settings: {
      fleet:
        '`jcds upload FILE --wait --json --if-exists fail` / `jcds download NAME DEST --wait --json --overwrite`, 1 worker running',
      peer: 'test/bench/py/jamf_sdk_peer.py: jamf-pro-sdk-python JCDS2 (20 MiB, 5 threads; one put_object below 1 GiB as the SDK), READY polled every 0.5 s',
    },
    upload,
    download,
    ratios,
    notes: [
      'upload ms: spawn → the simulator logged the package record (after the object was stored); perRun.readyMs: spawn → exit (Jamf reports READY with its hash; the fleet has verified it)',
      'ratios are peer s / fleet s (above 1: the fleet is faster)',
      'fleet cpuMs: its worker (/proc/<pid>/stat) + the command’s process tree; peer and curl: their process trees',
    ],
  };
}
