/**
 * Section 1: upload one large file. The fleet (Producer.upload into 1 and into 2 real
 * worker processes) against a direct lib-storage Upload at the fleet's part size and one
 * worker's part concurrency, `aws s3 cp` (awscli v2 defaults: 8 MiB parts, 10 requests)
 * and boto3 as jamf-pro-sdk-python drives it (20 MiB parts, 5 threads). Runs are
 * interleaved (run 1 of every client, then run 2, …) so drift hits all of them alike.
 */
import { performance } from 'node:perf_hooks';
import { loadConfig } from '../../../shared/config.ts';
import {
  assertStored,
  awsUpload,
  boto3Upload,
  currentTools,
  libStorageUpload,
  removeObject,
  type S3Target,
  type Timed,
} from '../lib/clients.ts';
import type { BenchEnv } from '../lib/env.ts';
import { childTimeline, fleetUpload } from '../lib/fleet-ops.ts';
import { QUEUES } from '../../../shared/queues/names.ts';
import type { JobWatcher } from '../lib/jobs.ts';
import { skipReason, type Tool } from '../lib/tools.ts';
import { cpuMsOf, log, machineBusyMs, round, sample, settle, type Sample } from '../lib/measure.ts';

export interface RunOutcome {
  ms: number;
  /** CPU ms of the client (its process tree, or the fleet's workers and command). */
  cpuMs?: number;
  extra?: Record<string, number>;
}

export interface Scenario {
  name: string;
  /** External tools it runs: without one, its row says so and is not run. */
  needs?: Tool[];
  run(runIndex: number): Promise<RunOutcome>;
}

/**
 * Runs every scenario `runs` times, interleaved; returns a Sample per scenario. Before each
 * run it waits for the simulator (`simPid`) to go idle (see `settle`).
 */
export async function interleave(
  scenarios: Scenario[],
  runs: number,
  bytes: number | undefined,
  simPid: number | undefined,
): Promise<Record<string, Sample>> {
  const ms = new Map<string, number[]>();
  const extras = new Map<string, Array<Record<string, number>>>();
  const skipped = new Map<string, string>();
  for (const s of scenarios) {
    const why = skipReason(currentTools(), s.needs ?? []);
    if (why) {
      skipped.set(s.name, why);
      log(`  ${s.name}: ${why}`);
    }
  }
  for (let r = 0; r < runs; r++) {
    for (const s of scenarios) {
      if (skipped.has(s.name)) continue;
      const settledMs = simPid ? await settle(simPid) : 0;
      const simCpu0 = simPid ? cpuMsOf(simPid) : 0;
      const busy0 = machineBusyMs();
      const wall0 = performance.now();
      const out = await s.run(r);
      // Cores busy on the whole machine during the run (ours and anyone else's).
      const busyCores = (machineBusyMs() - busy0) / (performance.now() - wall0);
      const simCpu: Record<string, number> = simPid ? { simCpuMs: cpuMsOf(simPid) - simCpu0 } : {};
      log(
        `  ${s.name} run ${r + 1}/${runs}: ${round(out.ms, 0)} ms (machine busy ${round(busyCores, 2)} cores)`,
      );
      ms.set(s.name, [...(ms.get(s.name) ?? []), out.ms]);
      extras.set(s.name, [
        ...(extras.get(s.name) ?? []),
        {
          ...out.extra,
          ...(out.cpuMs !== undefined ? { cpuMs: out.cpuMs } : {}),
          ...simCpu,
          busyCores,
          settledMs,
        },
      ]);
    }
  }
  const result: Record<string, Sample> = {};
  for (const s of scenarios) {
    const why = skipped.get(s.name);
    if (why) {
      result[s.name] = { runsMs: [], medianMs: NaN, skipped: why };
      continue;
    }
    const list = extras.get(s.name) ?? [];
    const keys = [...new Set(list.flatMap(e => Object.keys(e)))];
    const perRun: Record<string, number[]> = {};
    for (const k of keys) perRun[k] = list.map(e => round(e[k] ?? NaN, 1));
    result[s.name] = sample(ms.get(s.name) ?? [], bytes, { perRun });
  }
  return result;
}

export function fleetSettings(): { partSize: number; partConcurrency: number } {
  const c = loadConfig({ ...process.env, JAMF_URL: undefined });
  return { partSize: c.partSize, partConcurrency: c.partConcurrency };
}

/** The fleet's upload with `workers` worker processes, for `interleave`. */
export function fleetUploadScenario(
  env: BenchEnv,
  watcher: JobWatcher,
  name: string,
  workers: number,
  path: string,
  size: number,
  tag: string,
): Scenario {
  return {
    name,
    run: async r => {
      const procs = await env.startWorkers(workers);
      const cpu0 = procs.map(w => cpuMsOf(w.pid));
      const fileName = `bench-${tag}-${name}-${r}-${Date.now()}.pkg`;
      const t = await fleetUpload(env.producer, watcher, path, fileName);
      const workerCpuMs = procs.reduce((n, w, i) => n + cpuMsOf(w.pid) - cpu0[i]!, 0);
      await env.stopWorkers();
      if (t.result.size !== size) throw new Error(`${name}: result size ${t.result.size}`);
      const children = await childTimeline(
        env.fleet.queue(QUEUES.upload),
        env.fleet.queue(QUEUES.uploadPart),
        t.jobId,
      );
      await env.jamf.deletePackage(t.result.packageId).catch(() => undefined);
      await env.jamf.deleteJcdsFile(fileName).catch(() => undefined);
      return {
        ms: t.storedMs,
        cpuMs: workerCpuMs,
        extra: {
          totalMs: t.totalMs,
          verifyMs: t.totalMs - t.storedMs,
          workerCpuMs,
          ...children,
        },
      };
    },
  };
}

/** The three direct clients against one S3 target. */
export function directUploadScenarios(
  target: S3Target,
  path: string,
  size: number,
  tag: string,
  partSize: number,
  queueSize: number,
): Scenario[] {
  const one = (name: string, needs: Tool[], fn: (key: string) => Promise<Timed>): Scenario => ({
    name,
    needs,
    run: async r => {
      const key = `${target.prefix}bench-${tag}-${name}-${r}-${Date.now()}.pkg`;
      const t = await fn(key);
      await assertStored(target, key, size);
      await removeObject(target, key).catch(() => undefined);
      return { ms: t.ms, cpuMs: t.cpuMs };
    },
  });
  return [
    one('lib-storage', [], key => libStorageUpload(target, path, key, partSize, queueSize)),
    one('awscli', ['aws'], key => awsUpload(target, path, key)),
    one('boto3', ['python3', 'boto3'], key => boto3Upload(target, path, key)),
  ];
}
