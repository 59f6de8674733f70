/** Section 1 as a whole: the fleet with 1 and 2 workers and the three direct clients. */
import { simTarget } from '../lib/clients.ts';
import type { BenchEnv } from '../lib/env.ts';
import type { JobWatcher } from '../lib/jobs.ts';
import { round } from '../lib/measure.ts';
import type { Plan, TransferSection } from '../types.ts';
import { directUploadScenarios, fleetSettings, fleetUploadScenario, interleave } from './upload.ts';

export async function runUploadSection(
  env: BenchEnv,
  watcher: JobWatcher,
  plan: Plan,
  path: string,
): Promise<TransferSection> {
  const creds = await env.creds();
  const target = simTarget(creds, env.s3Endpoint);
  const { partSize, partConcurrency } = fleetSettings();
  const scenarios = [
    fleetUploadScenario(env, watcher, 'fleet-1w', 1, path, plan.size, 'up'),
    fleetUploadScenario(env, watcher, 'fleet-2w', 2, path, plan.size, 'up'),
    ...directUploadScenarios(target, path, plan.size, 'up', partSize, partConcurrency),
  ];
  const samples = await interleave(scenarios, plan.runs, plan.size, env.fleet.sim.pid);
  const ms = (n: string): number => samples[n]?.medianMs ?? NaN;
  // Throughput ratios: how many times the baseline's time the fleet is as fast.
  const ratio = (fleet: string, base: string): number => round(ms(base) / ms(fleet), 2);
  return {
    size: plan.size,
    settings: {
      fleetPartSize: partSize,
      fleetPartConcurrencyPerWorker: partConcurrency,
      libStorage: { partSize, queueSize: partConcurrency },
      awscli: 'defaults: 8 MiB parts, 10 concurrent requests',
      boto3: '20 MiB parts, 5 threads (jamf-pro-sdk-python)',
    },
    samples,
    ratios: {
      'fleet-1w/lib-storage': ratio('fleet-1w', 'lib-storage'),
      'fleet-1w/awscli': ratio('fleet-1w', 'awscli'),
      'fleet-1w/boto3': ratio('fleet-1w', 'boto3'),
      'fleet-2w/lib-storage': ratio('fleet-2w', 'lib-storage'),
      'fleet-2w/awscli': ratio('fleet-2w', 'awscli'),
      'fleet-2w/boto3': ratio('fleet-2w', 'boto3'),
    },
    notes: [
      'fleet figures: Producer.upload → object complete in S3 (the job enters `verifying`); perRun.totalMs adds the package record and waiting for Jamf (the simulator) to hash the stored file',
      'awscli and boto3 are timed from process spawn to exit (interpreter start-up included)',
      'cpuMs: the fleet’s worker processes over the whole job (/proc/<pid>/stat); lib-storage: this process (process.cpuUsage); awscli and boto3: their process trees',
      'simCpuMs: CPU time the simulator process used during the run (2 cores on this machine)',
    ],
  };
}
