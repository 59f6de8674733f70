/**
 * Section "cli": how long the `jcds` command takes to start. Interleaved, `n` runs each
 * (10; 5 with --quick), each timed from spawn to exit with its CPU:
 *   node -e 0                  Node itself
 *   jcds --help                `node bin/jcds.js --help`
 *   jcds upload (enqueue)      `node bin/jcds.js upload FILE --json` without --wait: checks
 *                              the file and enqueues one upload job in the bench's Redis
 * No worker runs meanwhile; each enqueued job is removed at once (a file of its own name per
 * run, a hard link of one 1 MiB file, so no run finds the previous one in flight).
 */
import { linkSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { QUEUES } from '../../../shared/queues/names.ts';
import { makeFile, ROOT } from '../../helpers/fleet.ts';
import type { BenchEnv } from '../lib/env.ts';
import { log, MiB, median, round, run, sample, type Sample } from '../lib/measure.ts';
import type { Plan } from '../types.ts';

export interface CliSection {
  runs: number;
  samples: Record<string, Sample>;
  /** Median wall time of each command over `node -e 0`'s. */
  ratios: Record<string, number>;
  notes: string[];
}

export const CLI_MEASURES = ['node -e 0', 'jcds --help', 'jcds upload (enqueue)'] as const;

export async function runCli(env: BenchEnv, plan: Plan): Promise<CliSection> {
  const n = plan.quick ? 5 : 10;
  const dir = join(env.dir, 'cli');
  mkdirSync(dir, { recursive: true });
  const file = await makeFile(dir, 'cli-source.pkg', 1 * MiB);
  const queue = env.fleet.queue(QUEUES.upload);
  const bin = join(ROOT, 'bin', 'jcds.js');
  const cliEnv: NodeJS.ProcessEnv = {
    PATH: process.env['PATH'] ?? '/usr/bin:/bin',
    HOME: process.env['HOME'] ?? '/tmp',
    LANG: 'C.UTF-8',
    REDIS_URL: env.fleet.redis.url,
  };
  const wall: Record<string, number[]> = {};
  const cpu: Record<string, number[]> = {};
  const add = (k: string, ms: number, cpuMs: number): void => {
    (wall[k] ??= []).push(ms);
    (cpu[k] ??= []).push(cpuMs);
  };
  for (let i = 0; i < n; i++) {
    const a = await run(process.execPath, ['-e', '0'], { env: cliEnv, cwd: dir });
    add('node -e 0', a.ms, a.cpuMs);
    const b = await run(process.execPath, [bin, '--help'], { env: cliEnv, cwd: dir });
    add('jcds --help', b.ms, b.cpuMs);
    const path = join(dir, `cli-enqueue-${i}-${Date.now()}.pkg`);
    linkSync(file.path, path);
    const c = await run(process.execPath, [bin, 'upload', path, '--json'], {
      env: cliEnv,
      cwd: dir,
    });
    add('jcds upload (enqueue)', c.ms, c.cpuMs);
    const enq = c.stdout
      .split('\n')
      .filter(l => l.startsWith('{'))
      .map(l => JSON.parse(l) as Record<string, unknown>)
      .find(e => e['event'] === 'enqueued');
    if (!enq?.['jobId']) throw new Error(`jcds upload printed no enqueued event:\n${c.stdout}`);
    await queue.remove(String(enq['jobId']));
    rmSync(path, { force: true });
  }
  // Nothing this section enqueued may wait for a later section's workers.
  await queue.drain();
  rmSync(dir, { recursive: true, force: true });
  const samples: Record<string, Sample> = {};
  for (const k of CLI_MEASURES) {
    samples[k] = sample(wall[k] ?? [], undefined, {
      perRun: { cpuMs: (cpu[k] ?? []).map(v => round(v, 1)) },
      medianCpuMs: round(median(cpu[k] ?? []), 1),
    });
  }
  const base = samples['node -e 0']?.medianMs ?? NaN;
  const ratios = {
    'jcds --help / node -e 0': round((samples['jcds --help']?.medianMs ?? NaN) / base, 2),
    'jcds upload (enqueue) / node -e 0': round(
      (samples['jcds upload (enqueue)']?.medianMs ?? NaN) / base,
      2,
    ),
  };
  log(`  cli: ${CLI_MEASURES.map(k => `${k} ${samples[k]?.medianMs} ms`).join(', ')}`);
  return {
    runs: n,
    samples,
    ratios,
    notes: [
      `median of ${n} interleaved runs each, spawn to exit (bash's EPOCHREALTIME around the command); CPU: the process tree's user + system`,
      'the enqueue runs against the bench’s redis-server with no worker running; each job is removed after its run',
    ],
  };
}
