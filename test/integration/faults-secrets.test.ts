/**
 * Hostile conditions, section 7: secrets never leave a process. S3 (the simulator's
 * s3ErrorCount fault: a gateway whose error text echoes what it received) answers every
 * request with a message that holds every secret form of test/helpers/secret-forms.ts.
 * The upload fails with an AppError whose message is built from that text and whose cause
 * is the SDK's error with the text as it came. Then every path is swept for the planted
 * secrets and for the fleet's real ones (the Jamf client secret, the fleet secret, the S3
 * keys and session tokens the simulator issued, Jamf bearer tokens):
 *   - the worker's logs (a real worker process at LOG_LEVEL=debug);
 *   - `jcds status` of the failed jobs, as a table and as --json (real CLI processes);
 *   - the jobs' failedReason and stack traces, and every other value in Redis (SCAN, each
 *     key read by its type), and the append-only file (values overwritten since included);
 *   - the monitor's /metrics, the Bull Board API (job list, job, job logs) and its logs.
 * Each path must also show that the failure went through it (its code, `[REDACTED]`), so
 * a path the error never reached cannot pass.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { makeFile, ROOT, waitForJob } from '../helpers/fleet.ts';
import { BEARER_TOKEN, fleetSecrets, killWorkers, useHarness } from '../helpers/faults.ts';
import { startMonitor } from '../helpers/monitor.ts';
import { dumpRedis, dumpText, readAof } from '../helpers/redis-dump.ts';
import { allForms, plantedSecrets, SECRET_FORMS } from '../helpers/secret-forms.ts';
import { KiB, MiB } from '../../shared/units.ts';
import type { Faults } from '../sim/types.ts';

const h = useHarness();

/** Runs `jcds …` as a real process; stdout and stderr together. */
function jcds(args: string[], env: Record<string, string>): Promise<{ code: number; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(ROOT, 'bin/jcds.js'), ...args], {
      cwd: ROOT,
      env: { PATH: process.env['PATH'] ?? '', HOME: process.env['HOME'] ?? '/tmp', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => (out += b.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.once('error', reject);
    child.once('exit', code => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, out });
    });
  });
}

function expectClean(path: string, text: string, secrets: string[]): void {
  const found = secrets.filter(s => text.includes(s));
  expect(found, `secrets found in ${path}`).toEqual([]);
  expect(BEARER_TOKEN.exec(text)?.[0], `a bearer token in ${path}`).toBeUndefined();
}

interface Planted {
  /** Which path the planted text takes (for messages). */
  via: string;
  /**
   * Rounds of uploads, each failed by its own fault (the planted text), with the sizes of
   * the files uploaded in it.
   */
  rounds: Array<{ faults: Faults; sizes: number[] }>;
  /** The failure reason the jobs end with (the code and the path's own words). */
  reason: RegExp;
  code: string;
  /** Text of the planted message that must survive redaction: proof it went through. */
  context?: string;
  /** What the worker's log of the failure must show besides (its cause chain). */
  logsShow?: string;
  /** How many reasons at least show `[REDACTED]`. @defaultValue all */
  minRedacted?: number;
}

/**
 * Plants the secret forms through each round's fault, fails the uploads of the round on
 * it, then sweeps every path for the planted secrets and the fleet's own.
 */
async function plantAndSweep(p: Planted): Promise<string> {
  const { fleet } = h;
  const worker = await fleet.startWorker({ LOG_LEVEL: 'debug' });
  const monitor = await startMonitor(fleet.env);
  try {
    const q = fleet.queue('upload');
    const failed = [];
    for (const [round, { faults, sizes }] of p.rounds.entries()) {
      await fleet.sim.control.setFaults(faults);
      const jobs = [];
      for (const [i, size] of sizes.entries()) {
        const file = await makeFile(fleet.dir, `Secret ${p.via} ${round}-${i}.pkg`, size);
        jobs.push(await h.producer.upload({ path: file.path }));
      }
      for (const j of jobs) failed.push(await waitForJob(q, j.jobId));
      await fleet.sim.control.clearFaults();
    }
    const secrets = [...plantedSecrets(), ...fleetSecrets(h.fleet)];

    // Job failedReason: the code, the redacted text, the context kept.
    for (const job of failed) {
      expect(await job.getState()).toBe('failed');
      expect(job.failedReason).toMatch(p.reason);
      if (p.context) expect(job.failedReason).toContain(p.context);
      expectClean(`failedReason of ${job.id}`, job.failedReason, secrets);
    }
    // The planted text reached the reasons, its secrets replaced.
    const redacted = failed.filter(j => j.failedReason.includes('[REDACTED]')).length;
    expect(redacted).toBeGreaterThanOrEqual(p.minRedacted ?? failed.length);

    // Worker logs: the failure with its error (and its cause chain).
    const logs = worker.logs();
    expect(logs).toContain('upload job failed');
    expect(logs).toContain('[REDACTED]');
    if (p.logsShow) expect(logs).toContain(p.logsShow);
    expectClean('the worker logs', logs, secrets);

    // CLI: status of the failed jobs, table and JSON, and the recent-jobs overview.
    const refs = failed.map(j => `upload:${j.id}`);
    const table = await jcds(['status', ...refs], fleet.env);
    const json = await jcds(['status', '--json', ...refs], fleet.env);
    const overview = await jcds(['status'], fleet.env);
    for (const [name, run] of Object.entries({ table, json, overview })) {
      expect(run.out, `jcds status (${name})`).toContain(p.code);
      expectClean(`jcds status (${name})`, run.out, secrets);
    }
    expect(json.out).toContain('[REDACTED]');

    // The monitor: /metrics, the Bull Board API and its own logs.
    const metrics = await (await fetch(`${monitor.url}/metrics`)).text();
    expect(metrics).toContain(p.code);
    expectClean('/metrics', metrics, secrets);
    const api = `${monitor.dashboard}api/queues`;
    const board = [
      await (await fetch(`${api}?activeQueue=upload&status=failed&page=1`)).text(),
      ...(await Promise.all(failed.map(async j => (await fetch(`${api}/upload/${j.id}`)).text()))),
      ...(await Promise.all(
        failed.map(async j => (await fetch(`${api}/upload/${j.id}/logs`)).text()),
      )),
    ].join('\n');
    expect(board).toContain(p.code);
    expectClean('the Bull Board API', board, secrets);
    expectClean("the monitor's logs", monitor.output(), secrets);

    // Every value in Redis, then the append-only file (flushed every second).
    const r = fleet.redis.client();
    try {
      const dump = await dumpRedis(r);
      const text = dumpText(dump);
      expect(text).toContain(`[${p.code}]`);
      expectClean('Redis values', text, secrets);
      await sleep(1_500);
      const aof = readAof(fleet.redis.dir);
      expect(aof).toContain('[REDACTED]');
      expectClean('the AOF', aof, secrets);
      return (
        `${p.via}: ${plantedSecrets().length} planted secrets in ${SECRET_FORMS.length} forms + ${fleetSecrets(h.fleet).length} real ones; ` +
        `swept ${logs.length} B of worker logs, ${table.out.length + json.out.length + overview.out.length} B of CLI output, ` +
        `${metrics.length} B of /metrics, ${board.length} B of Bull Board API, ${dump.length} Redis keys (${text.length} B), ` +
        `${aof.length} B of AOF: 0 found`
      );
    } finally {
      r.disconnect();
    }
  } finally {
    await monitor.stop();
    await killWorkers(fleet);
  }
}

describe('secrets', () => {
  it('H7.1: every secret form, planted in an S3 error and its cause, reaches no log, CLI output, Redis value, AOF, /metrics or Bull Board', async () => {
    const summary = await plantAndSweep({
      via: 'S3 error',
      // One single-request upload, one multipart (parts of 5 MiB above 8 MiB).
      rounds: [
        {
          faults: { s3ErrorCount: 100_000, s3ErrorMessage: allForms() },
          sizes: [2 * MiB, 12 * MiB],
        },
      ],
      reason: /^\[S3_ERROR\] S3 refused .*InvalidRequest \(HTTP 400\)/,
      code: 'S3_ERROR',
      context: 'SignatureDoesNotMatch',
      // The SDK's error, with the text as S3 sent it, is logged as the cause.
      logsShow: 'caused by: ',
    });
    console.log(`H7.1 ${summary}`);
  });

  it('H7.2: each secret form in a Jamf error page reaches no log, CLI output, Redis value, AOF, /metrics or Bull Board', async () => {
    // One upload per form: Jamf's error text is cut at 300 characters in a reason.
    const summary = await plantAndSweep({
      via: 'Jamf error page',
      rounds: SECRET_FORMS.map(f => ({
        faults: { jamfErrorCount: 100_000, jamfErrorBody: f.text },
        sizes: [64 * KiB],
      })),
      reason: /^\[JAMF_BAD_REQUEST\] Jamf Pro refused /,
      code: 'JAMF_BAD_REQUEST',
      // S3's XML echo is read as a page by the Jamf client: only its first element (the
      // error code) is kept, so that reason has nothing to redact.
      minRedacted: SECRET_FORMS.length - 1,
    });
    console.log(`H7.2 ${summary}`);
  });
});
