/**
 * `jcds doctor` end to end: spawned `node bin/jcds.js doctor` processes against a spawned
 * redis-server and the simulator, with only the environment an operator's shell would
 * have. All green by default; then each failure the doctor exists for: a revoked privilege
 * (the simulator's /__sim/privileges), an evicting Redis, a wrong client secret, a Jamf URL
 * that refuses or never answers, a missing JAMF_URL, a fleet secret that differs from the
 * fleet's verifier. No secret ever reaches stdout or stderr.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SECRET_VERIFIER_KEY, secretVerifier } from '../../shared/vault.ts';
import { ROOT } from '../helpers/fleet.ts';
import { freePort, startRedis, type RedisServer } from '../helpers/redis.ts';
import { jamfEnv, spawnSimulator, type SpawnedSimulator } from '../helpers/sim.ts';

const FLEET_SECRET = 'doctor-test-fleet-secret-0123456789';

interface DoctorRun {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
  /** stdout as NDJSON (--json runs; every line must be JSON). */
  json: Array<Record<string, unknown>>;
}

let redis: RedisServer;
let sim: SpawnedSimulator;
let env: Record<string, string>;

function doctor(
  args: string[] = [],
  extraEnv: Record<string, string> = {},
  timeoutMs = 60_000,
): Promise<DoctorRun> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(ROOT, 'bin/jcds.js'), 'doctor', ...args], {
      cwd: ROOT,
      env: { ...env, ...extraEnv },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`jcds doctor did not end within ${timeoutMs} ms:\n${stderr}`));
    }, timeoutMs);
    child.once('exit', code => {
      clearTimeout(timer);
      const ms = Date.now() - started;
      let json: Array<Record<string, unknown>> = [];
      if (args.includes('--json')) {
        try {
          json = stdout
            .split('\n')
            .filter(l => l.trim() !== '')
            .map(l => JSON.parse(l) as Record<string, unknown>);
        } catch (err) {
          reject(
            new Error(`stdout of jcds doctor --json is not NDJSON:\n${stdout}`, { cause: err }),
          );
          return;
        }
      }
      resolve({ code, stdout, stderr, ms, json });
    });
  });
}

/** The checklist line of a check, by its title (human output on stderr). */
function line(run: DoctorRun, title: string): string {
  const found = run.stderr
    .split('\n')
    .find(l => /^[✓!✗-] /.test(l) && l.slice(2).startsWith(`${title}:`));
  if (!found) throw new Error(`no "${title}" line in:\n${run.stderr}`);
  return found;
}

/** The line after a check's line (its fix), or ''. */
function fixOf(run: DoctorRun, title: string): string {
  const lines = run.stderr.split('\n');
  const i = lines.indexOf(line(run, title));
  const next = lines[i + 1] ?? '';
  return next.startsWith('    fix: ') ? next : '';
}

const check = (run: DoctorRun, name: string): Record<string, unknown> => {
  const found = run.json.find(o => o['event'] === 'check' && o['name'] === name);
  if (!found) throw new Error(`no ${name} check in:\n${run.stdout}`);
  return found;
};

/** Every secret the run could have seen: the client secret, the fleet secret, S3 keys. */
function secrets(): string[] {
  const issued = JSON.parse(readFileSync(join(sim.dataDir, 'credentials.json'), 'utf8')) as {
    credentials: Array<{ accessKeyId: string; secretAccessKey: string; sessionToken: string }>;
  };
  return [
    sim.info.clientSecret,
    sim.info.password,
    FLEET_SECRET,
    secretVerifier(FLEET_SECRET),
    ...issued.credentials.flatMap(c => [c.accessKeyId, c.secretAccessKey, c.sessionToken]),
  ];
}

function expectNoSecret(run: DoctorRun): void {
  const all = run.stdout + run.stderr;
  for (const s of secrets()) expect(all).not.toContain(s);
}

beforeAll(async () => {
  redis = await startRedis({ appendonly: false });
  sim = await spawnSimulator();
  env = {
    PATH: process.env['PATH'] ?? '',
    HOME: process.env['HOME'] ?? '/tmp',
    ...jamfEnv(sim.info),
    REDIS_URL: redis.url,
    JCDS_FLEET_SECRET: FLEET_SECRET,
  };
});

afterAll(async () => {
  await sim?.stop();
  await redis?.stop();
});

describe('jcds doctor against the default simulator', () => {
  it('passes every check: exit 0, one ✓ line per check, then the summary', async () => {
    const run = await doctor();
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toBe('');
    const lines = run.stderr.split('\n').filter(l => /^[✓!✗-] /.test(l));
    expect(lines.map(l => l.slice(2, l.indexOf(':')))).toEqual([
      'Environment',
      'Redis',
      'Redis eviction policy',
      'Jamf Pro',
      'Jamf Pro authentication',
      'Jamf Pro version',
      'Privileges',
      'Cloud distribution point and transport',
      'JCDS credentials',
      'Clock',
      'Fleet secret',
    ]);
    for (const l of lines) expect(l.startsWith('✓ '), l).toBe(true);
    expect(run.stderr).not.toContain('fix:');
    expect(line(run, 'Redis')).toMatch(/reachable at redis:\/\/127\.0\.0\.1:\d+.*Redis \d+\./);
    expect(line(run, 'Redis eviction policy')).toContain('noeviction');
    expect(line(run, 'Privileges')).toContain(
      'granted (tried read-only): Read Packages, Read Categories, Read Cloud Distribution Point, Read Jamf Cloud Distribution Service Files',
    );
    expect(line(run, 'Privileges')).toContain(
      'not checked (needs a write): Create Packages, Update Packages, Delete Packages',
    );
    expect(line(run, 'Cloud distribution point and transport')).toContain(
      'cdnType JAMF_CLOUD; JCDS v1 answers; package upload available; JCDS_TRANSPORT=auto chooses s3',
    );
    expect(line(run, 'JCDS credentials')).toMatch(/issued temporary S3 credentials .*renewed/);
    expect(line(run, 'Clock')).toContain('S3 at');
    expect(run.stderr).toMatch(/11 passed, 0 warnings, 0 failed, 0 skipped/);
    expectNoSecret(run);
  });

  it('--json: one check object per line, then a summary; nothing else on stdout or stderr', async () => {
    const run = await doctor(['--json']);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toBe('');
    const checks = run.json.filter(o => o['event'] === 'check');
    expect(checks).toHaveLength(11);
    for (const c of checks) {
      expect(c).toMatchObject({ ok: true, level: 'ok', fix: null });
      expect(typeof c['name']).toBe('string');
      expect(typeof c['detail']).toBe('string');
    }
    expect(run.json.at(-1)).toEqual({
      event: 'summary',
      ok: true,
      checks: 11,
      passed: 11,
      warnings: 0,
      failed: 0,
      skipped: 0,
      exitCode: 0,
    });
    expect(check(run, 'distribution')).toMatchObject({ transport: 's3', cdnType: 'JAMF_CLOUD' });
    expect(check(run, 'privileges')['privileges']).toMatchObject({ missing: [] });
    expectNoSecret(run);
  });

  it('with JCDS_TRANSPORT=package-upload no S3 credentials are requested', async () => {
    const before = (await sim.control.counters()).calls['POST /api/v1/jcds/files'] ?? 0;
    const run = await doctor(['--json'], { JCDS_TRANSPORT: 'package-upload' });
    expect(run.code, run.stdout).toBe(0);
    expect(check(run, 'distribution')).toMatchObject({ transport: 'package-upload' });
    expect(check(run, 'jcds-credentials')['detail']).toBe(
      'not needed: the transport is package-upload',
    );
    expect((await sim.control.counters()).calls['POST /api/v1/jcds/files'] ?? 0).toBe(before);
  });
});

describe('jcds doctor finds what is wrong', () => {
  it('a revoked privilege: exit 3, and the privilege line names exactly that privilege', async () => {
    await sim.control.privileges.revoke('Read Packages');
    try {
      const run = await doctor();
      expect(run.code, run.stderr).toBe(3);
      const l = line(run, 'Privileges');
      expect(l.startsWith('✗ ')).toBe(true);
      expect(l).toMatch(/missing: Read Packages \(GET \/api\/v1\/packages answered 403\);/);
      expect(l).toContain(
        'granted (tried read-only): Read Categories, Read Cloud Distribution Point, Read Jamf Cloud Distribution Service Files',
      );
      expect(fixOf(run, 'Privileges')).toContain('add "Read Packages" to the API role');
      // The other checks are independent of it.
      expect(line(run, 'Cloud distribution point and transport').startsWith('✓ ')).toBe(true);
      expect(run.stderr).toMatch(/10 passed, 0 warnings, 1 failed/);

      const json = await doctor(['--json']);
      expect(json.code).toBe(3);
      expect(check(json, 'privileges')).toMatchObject({ ok: false, level: 'fail' });
      expect((check(json, 'privileges')['privileges'] as { missing: string[] }).missing).toEqual([
        'Read Packages',
      ]);
      expect(json.json.at(-1)).toMatchObject({ event: 'summary', ok: false, exitCode: 3 });
      expectNoSecret(json);
    } finally {
      await sim.control.privileges.restore();
    }
  });

  it('a revoked Create … Files privilege fails the JCDS credentials line', async () => {
    await sim.control.privileges.revoke('Create Jamf Cloud Distribution Service Files');
    try {
      const run = await doctor();
      expect(run.code, run.stderr).toBe(3);
      expect(line(run, 'Privileges').startsWith('✓ ')).toBe(true);
      expect(line(run, 'JCDS credentials')).toMatch(
        /^✗ .*403.*"Create Jamf Cloud Distribution Service Files"/,
      );
      expect(fixOf(run, 'JCDS credentials')).toContain(
        'Add "Create Jamf Cloud Distribution Service Files" to the API role',
      );
    } finally {
      await sim.control.privileges.restore();
    }
  });

  it('a Redis that evicts: exit 3, and the Redis line names maxmemory-policy and noeviction', async () => {
    const client = redis.client();
    try {
      await client.config('SET', 'maxmemory-policy', 'allkeys-lru');
      const run = await doctor();
      expect(run.code, run.stderr).toBe(3);
      const l = line(run, 'Redis eviction policy');
      expect(l).toMatch(/^✗ .*maxmemory-policy is allkeys-lru.*noeviction/);
      expect(fixOf(run, 'Redis eviction policy')).toContain(
        'CONFIG SET maxmemory-policy noeviction',
      );
      expect(line(run, 'Redis').startsWith('✓ ')).toBe(true);
    } finally {
      await client.config('SET', 'maxmemory-policy', 'noeviction');
      client.disconnect();
    }
  });

  it('a Redis that is down: the Redis line fails, the checks that need it are skipped', async () => {
    const port = await freePort();
    const run = await doctor([], { REDIS_URL: `redis://:redis-pass-not-shown@127.0.0.1:${port}` });
    expect(run.code).toBe(3);
    expect(line(run, 'Redis')).toMatch(/^✗ .*ECONNREFUSED/);
    expect(line(run, 'Redis')).not.toContain('redis-pass-not-shown');
    expect(line(run, 'Redis eviction policy')).toMatch(/^- .*skipped: needs Redis/);
    expect(line(run, 'Fleet secret')).toMatch(/^- .*needs Redis/);
    expect(line(run, 'Jamf Pro authentication').startsWith('✓ ')).toBe(true);
    expect(run.stdout + run.stderr).not.toContain('redis-pass-not-shown');
  });

  it('a wrong JAMF_CLIENT_SECRET: the authentication line fails with advice, the rest that need a token are skipped', async () => {
    const wrong = 'wrong-client-secret-value-42';
    const run = await doctor([], { JAMF_CLIENT_SECRET: wrong });
    expect(run.code, run.stderr).toBe(3);
    expect(line(run, 'Jamf Pro').startsWith('✓ ')).toBe(true);
    expect(line(run, 'Jamf Pro authentication')).toMatch(
      /^✗ .*refused the API client credentials.*401/,
    );
    expect(fixOf(run, 'Jamf Pro authentication')).toContain('JAMF_CLIENT_SECRET');
    for (const t of ['Jamf Pro version', 'Privileges', 'Cloud distribution point and transport']) {
      expect(line(run, t)).toMatch(/^- .*skipped: needs a Jamf Pro token/);
    }
    expect(run.stdout + run.stderr).not.toContain(wrong);
    expectNoSecret(run);
  });

  it('a JAMF_URL that refuses connections: the Jamf Pro line fails at once', async () => {
    const port = await freePort();
    const run = await doctor([], { JAMF_URL: `http://127.0.0.1:${port}` });
    expect(run.code).toBe(3);
    expect(line(run, 'Jamf Pro')).toMatch(
      /^✗ Jamf Pro: cannot reach http:\/\/127\.0\.0\.1:\d+: .*ECONNREFUSED/,
    );
    expect(fixOf(run, 'Jamf Pro')).toContain('JAMF_URL');
    expect(line(run, 'Jamf Pro authentication')).toMatch(/skipped: needs Jamf Pro reachable/);
    expect(line(run, 'Redis').startsWith('✓ ')).toBe(true);
  });

  it('a JAMF_URL that never answers: the Jamf Pro line fails and the run ends within its bound', async () => {
    const sockets: Socket[] = [];
    const silent: Server = createServer(s => sockets.push(s));
    const port = await freePort();
    await new Promise<void>(r => silent.listen(port, '127.0.0.1', () => r()));
    try {
      const run = await doctor(
        ['--timeout', '2'],
        { JAMF_URL: `http://127.0.0.1:${port}` },
        30_000,
      );
      expect(run.code).toBe(3);
      expect(line(run, 'Jamf Pro')).toMatch(/did not answer within 2 s/);
      expect(run.ms).toBeLessThan(15_000);
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise(r => silent.close(r));
    }
  });

  it('no JAMF_URL: a failed line, not a crash', async () => {
    const run = await doctor(['--json'], { JAMF_URL: '' });
    expect(run.code).toBe(3);
    expect(check(run, 'jamf')).toMatchObject({ level: 'fail', detail: 'JAMF_URL is not set' });
    expect(String(check(run, 'jamf')['fix'])).toContain('JAMF_URL=https://');
    expect(check(run, 'redis')).toMatchObject({ level: 'ok' });
    expect(run.json.at(-1)).toMatchObject({ event: 'summary', ok: false, exitCode: 3 });
  });

  it('the fleet secret: a different verifier in Redis fails, the same one matches', async () => {
    const client = redis.client();
    try {
      await client.set(SECRET_VERIFIER_KEY, secretVerifier('the-fleet-uses-another-secret'));
      const bad = await doctor();
      expect(bad.code).toBe(3);
      expect(line(bad, 'Fleet secret')).toMatch(/^✗ .*differs from the one the fleet uses/);
      expect(fixOf(bad, 'Fleet secret')).toContain('same JCDS_FLEET_SECRET');
      expectNoSecret(bad);

      await client.set(SECRET_VERIFIER_KEY, secretVerifier(FLEET_SECRET));
      const good = await doctor();
      expect(good.code, good.stderr).toBe(0);
      expect(line(good, 'Fleet secret')).toMatch(/^✓ .*matches the fleet's/);
      expectNoSecret(good);
    } finally {
      await client.del(SECRET_VERIFIER_KEY);
      client.disconnect();
    }
  });

  it('an invalid variable is named in the Environment line; the other checks still run', async () => {
    const run = await doctor([], { JCDS_FLEET_SECRET: 'tooshort', JCDS_PART_SIZE: 'big' });
    expect(run.code).toBe(3);
    expect(line(run, 'Environment')).toMatch(/^✗ .*JCDS_FLEET_SECRET is too short.*JCDS_PART_SIZE/);
    expect(line(run, 'Redis').startsWith('✓ ')).toBe(true);
    expect(line(run, 'Privileges').startsWith('✓ ')).toBe(true);
    expect(line(run, 'Fleet secret')).toMatch(/^✗ .*invalid/);
  });
});
