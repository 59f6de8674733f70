/**
 * `npm run demo -- --exit` end to end: the demo brings up its own redis-server, the
 * simulator, a worker and the monitor, publishes its sample packages with the real
 * command line, reads each package back from Jamf, prints a summary and stops everything.
 * It prints the settings a worker in another shell needs to join (never a secret taken
 * from the environment); a second run on the same data dir starts empty, with
 * `--workers 3`.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/fleet.ts';
import { requireRedisServer } from '../helpers/redis.ts';

const dataDir = mkdtempSync(join(tmpdir(), 'jcds-demo-'));

afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

function reachable(url: string): Promise<boolean> {
  const u = new URL(url);
  return new Promise(resolve => {
    const socket = connect(Number(u.port), u.hostname);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** Runs `npm run demo -- --exit --json --port 0 --data-dir DIR ...extra`. */
async function runDemo(
  extra: string[] = [],
  extraEnv: Record<string, string> = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const env: Record<string, string> = {
    PATH: `${dirname(process.execPath)}${delimiter}${process.env['PATH'] ?? ''}`,
    HOME: process.env['HOME'] ?? '/tmp',
    ...extraEnv,
  };
  const child = spawn(
    'npm',
    [
      'run',
      '--silent',
      'demo',
      '--',
      '--exit',
      '--json',
      '--port',
      '0',
      '--data-dir',
      dataDir,
      ...extra,
    ],
    { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  const code = await new Promise<number | null>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`the demo did not finish within 150 s:\n${stderr}`));
    }, 150_000);
    child.once('exit', c => {
      clearTimeout(timer);
      resolve(c);
    });
  });
  return { code, stdout, stderr };
}

describe('npm run demo -- --exit', () => {
  it('publishes and verifies every sample package (one split into parts), then stops its stack', async () => {
    requireRedisServer();
    const { code, stdout, stderr } = await runDemo();
    expect(code, stderr).toBe(0);
    await checkSummary(stdout, stderr);
    // The settings a worker in another shell needs to join, the demo's own values.
    for (const name of [
      'REDIS_URL',
      'JAMF_URL',
      'JAMF_CLIENT_ID',
      'JAMF_CLIENT_SECRET',
      'AWS_ENDPOINT_URL_S3',
      'JCDS_FLEET_SECRET',
    ])
      expect(stderr).toMatch(new RegExp(`^  export ${name}='[^']+'$`, 'm'));
    expect(stderr).toContain('node bin/jcds.js worker');
    expect(stderr).toContain('Worker: started');
  });

  it("a second run starts empty (this run's jobs only), with more workers, and never prints a secret from the environment", async () => {
    requireRedisServer();
    const secret = 'a-fleet-secret-from-the-environment-0123';
    const { code, stdout, stderr } = await runDemo(['--workers', '3'], {
      JCDS_FLEET_SECRET: secret,
    });
    expect(code, stderr).toBe(0);
    const summary = await checkSummary(stdout, stderr);
    expect(stderr).toContain("Starting empty: the previous run's demo-redis, demo-sim");
    expect(stderr).toContain('Workers: 3 started');
    // A fresh Redis: this run's upload jobs are 1..4 again, and the summary names them.
    expect(summary.packages.map(p => p.jobId).sort()).toEqual(['1', '2', '3', '4']);
    expect(stderr).toMatch(/Summary \(this run's upload jobs: [1-4], [1-4], [1-4], [1-4]\)/);
    expect(stderr + stdout).not.toContain(secret);
    expect(stderr).toContain(
      `export JCDS_FLEET_SECRET="<the JCDS_FLEET_SECRET set in the demo's shell>"`,
    );
    expect(existsSync(join(dataDir, 'demo.pid'))).toBe(false);
  });
});

/** Checks the summary every run prints (JSON on stdout, a table on stderr); returns it. */
async function checkSummary(stdout: string, stderr: string) {
  const summaryLine = stdout.trim().split('\n').at(-1) ?? '';
  const summary = JSON.parse(summaryLine) as {
    event: string;
    ok: boolean;
    dashboard: string;
    redisUrl: string;
    jamfUrl: string;
    packages: Array<{
      fileName: string;
      jobId: string;
      packageId: string | null;
      size: number;
      sha3_512: string | null;
      verified: boolean;
      parts: number;
      outcome: string | null;
      error: string | null;
    }>;
  };
  expect(summary).toMatchObject({ event: 'demo-summary', ok: true });
  expect(summary.packages.length).toBeGreaterThanOrEqual(4);
  for (const p of summary.packages) {
    expect(p.verified, p.fileName).toBe(true);
    expect(p.error).toBeNull();
    expect(p.packageId).toMatch(/^\d+$/);
    expect(p.sha3_512).toMatch(/^[0-9a-f]{128}$/);
    expect(['created', 'replaced']).toContain(p.outcome);
  }
  const multipart = summary.packages.filter(p => p.parts >= 2);
  expect(multipart.length).toBeGreaterThanOrEqual(1);
  expect(multipart[0]!.size).toBeGreaterThanOrEqual(32 * 1024 * 1024);
  expect(new Set(summary.packages.map(p => p.packageId)).size).toBe(summary.packages.length);

  // The human summary went to stderr, with the dashboard address.
  expect(stderr).toContain(
    `${summary.packages.length}/${summary.packages.length} published and verified`,
  );
  expect(stderr).toContain(`Monitor: ${summary.dashboard}`);
  // Its own Redis kept an AOF in the data dir, and the stack is gone.
  expect(existsSync(join(dataDir, 'demo-redis'))).toBe(true);
  expect(await reachable(summary.redisUrl)).toBe(false);
  expect(await reachable(summary.jamfUrl)).toBe(false);
  expect(await reachable(summary.dashboard)).toBe(false);
  return summary;
}
