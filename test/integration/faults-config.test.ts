/**
 * Redis and configuration are checked, not trusted (issue 13 section 6), over real
 * processes: real redis-servers (one whose maxmemory-policy is allkeys-lru, one with CONFIG
 * disabled as on a managed Redis, one on a unix socket with requirepass), worker processes,
 * `jcds` and the monitor.
 *
 *   H6.1  A Redis whose maxmemory-policy is allkeys-lru: a worker exits 3 naming the policy,
 *         why and the fix, and takes no job.
 *   H6.2  With JCDS_ALLOW_REDIS_EVICTION=1 it starts, with a warning, and publishes.
 *   H6.3  CONFIG disabled (managed Redis): the policy is read from INFO memory.
 *   H6.4  The monitor's /healthz reports the policy and whether it is safe.
 *   H6.5  A unix-socket REDIS_URL keeps its password and db: the worker works, the data is in
 *         that db.
 *   H6.6  A wrong password in REDIS_URL or JAMF_URL appears in no output.
 *   H6.7  JAMF_URL over plain http is refused but for loopback or JCDS_ALLOW_INSECURE_JAMF.
 *   H6.8  SIGTERM with Redis SIGKILLed and parts in flight: one signal, and the worker exits
 *         within its grace period plus SHUTDOWN_EXIT_AFTER_MS; with Redis back, the upload
 *         is published once.
 *   H6.9  `jcds worker` SIGKILLed: its worker child exits too (no orphan).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Job, Queue } from 'bullmq';
import { Redis, type RedisOptions } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Producer } from '../../producer/producer.ts';
import { QUEUE_PREFIX } from '../../shared/queues/names.ts';
import { KiB, MiB } from '../../shared/units.ts';
import { SHUTDOWN_EXIT_AFTER_MS } from '../../worker/main.ts';
import {
  expectNoSecretsInLogs,
  expectNothingHalfDone,
  expectPublished,
  fmtMs,
  SLACK_MS,
  type LocalFile,
  useHarness,
  waitForJobSettled,
  waitUntil,
} from '../helpers/faults.ts';
import { makeFile, ROOT } from '../helpers/fleet.ts';
import { freePort, requireRedisServer, startRedis, type RedisServer } from '../helpers/redis.ts';

const h = useHarness();

/** Passwords distinctive enough that any echo of them is found. */
const REDIS_PW = 'R3dis-pw/H6@ok';
const WRONG_REDIS_PW = 'Wr0ng-R3dis-pw-H6x';
const WRONG_JAMF_PW = 'Wr0ng-Jamf-pw-H6y';
const enc = encodeURIComponent;

// --- processes ---------------------------------------------------------------------------

interface Proc {
  child: ChildProcess;
  out(): string;
  exited: Promise<number | string | null>;
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<RegExpExecArray>;
}

function run(args: string[], env: Record<string, string | undefined>): Proc {
  const clean: Record<string, string> = {};
  for (const [k, v] of Object.entries({ ...process.env, ...env }))
    if (v !== undefined) clean[k] = v;
  const child = spawn(process.execPath, args, {
    cwd: ROOT,
    env: clean,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout?.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr?.on('data', (b: Buffer) => (out += b.toString()));
  const exited = new Promise<number | string | null>(resolve =>
    child.once('exit', (code, signal) => resolve(code ?? signal)),
  );
  return {
    child,
    out: () => out,
    exited,
    waitFor: (pattern, timeoutMs = 30_000) =>
      waitUntil(() => pattern.exec(out) ?? undefined, `${pattern} in:\n${out}`, timeoutMs),
  };
}

/** Runs to its end (SIGKILLed past timeoutMs, which fails the test); exit code and output. */
async function runToEnd(
  args: string[],
  env: Record<string, string | undefined>,
  timeoutMs = 30_000,
): Promise<{ code: number | string | null; out: string; ms: number }> {
  const started = Date.now();
  const p = run(args, env);
  const timer = setTimeout(() => p.child.kill('SIGKILL'), timeoutMs);
  const code = await p.exited;
  clearTimeout(timer);
  expect(code, `${args.join(' ')} did not end within ${timeoutMs} ms:\n${p.out()}`).not.toBe(
    'SIGKILL',
  );
  return { code, out: p.out(), ms: Date.now() - started };
}

const WORKER = [join(ROOT, 'worker/main.ts')];
const JCDS = [join(ROOT, 'bin/jcds.js')];

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  // A zombie waiting for a reaper has stopped running.
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

// --- Redis servers of their own ---------------------------------------------------------------

interface OwnRedis {
  dir: string;
  port: number;
  socket: string;
  /** ioredis options to reach it (with the password, over the socket). */
  options(db?: number): RedisOptions;
  stop(): Promise<void>;
}

/** A redis-server with extra arguments, on a TCP port and a unix socket, maybe with requirepass. */
async function ownRedis(args: string[], password?: string): Promise<OwnRedis> {
  requireRedisServer();
  const dir = mkdtempSync(join(tmpdir(), 'jcds-h6-redis-'));
  const port = await freePort();
  const socket = join(dir, 'redis.sock');
  const proc = spawn(
    'redis-server',
    [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--unixsocket',
      socket,
      '--unixsocketperm',
      '700',
      '--dir',
      dir,
      '--save',
      '',
      '--appendonly',
      'no',
      '--logfile',
      join(dir, 'redis.log'),
      ...(password ? ['--requirepass', password] : []),
      ...args,
    ],
    { stdio: 'ignore' },
  );
  const options = (db?: number): RedisOptions => ({
    path: socket,
    ...(password ? { password } : {}),
    ...(db === undefined ? {} : { db }),
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    lazyConnect: true,
  });
  await waitUntil(
    async () => {
      if (!existsSync(socket)) return false;
      const probe = new Redis(options());
      probe.on('error', () => undefined);
      try {
        await probe.connect();
        return (await probe.ping()) === 'PONG';
      } catch {
        return false;
      } finally {
        probe.disconnect();
      }
    },
    `redis-server ${args.join(' ')} to answer (see ${dir}/redis.log)`,
    10_000,
  );
  return {
    dir,
    port,
    socket,
    options,
    stop: async () => {
      if (proc.exitCode === null && proc.signalCode === null) {
        const gone = new Promise(resolve => proc.once('exit', resolve));
        proc.kill('SIGKILL');
        await gone;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

// --- the suite --------------------------------------------------------------------------------

let evicting: RedisServer;
let noConfig: OwnRedis;
let socketRedis: OwnRedis;

beforeAll(async () => {
  evicting = await startRedis({ appendonly: false });
  const c = evicting.client();
  await c.config('SET', 'maxmemory-policy', 'allkeys-lru');
  c.disconnect();
  // As on a managed Redis: CONFIG renamed away; INFO memory still tells the policy.
  noConfig = await ownRedis([
    '--rename-command',
    'CONFIG',
    '""',
    '--maxmemory-policy',
    'volatile-lru',
  ]);
  socketRedis = await ownRedis(['--maxmemory-policy', 'noeviction'], REDIS_PW);
});

afterAll(async () => {
  await evicting?.stop();
  await noConfig?.stop();
  await socketRedis?.stop();
});

function queueOn(
  connection: RedisOptions | { host: string; port: number },
  name = 'upload',
): Queue {
  return new Queue(name, { connection, prefix: QUEUE_PREFIX });
}

describe('H6: Redis is checked, not trusted', () => {
  let evictingJobId: string;
  let evictingFile: LocalFile;

  it('H6.1: a Redis with maxmemory-policy allkeys-lru: the worker exits 3 naming the policy, why and the fix, and takes no job', async () => {
    evictingFile = await makeFile(h.fleet.dir, 'H6 Evicting.pkg', 4 * KiB);
    const producer = await Producer.connect({ redisUrl: evicting.url });
    try {
      evictingJobId = (await producer.upload({ path: evictingFile.path })).jobId;
    } finally {
      await producer.close();
    }
    const r = await runToEnd(WORKER, { ...h.fleet.env, REDIS_URL: evicting.url });
    console.log(`H6.1: worker on allkeys-lru exited ${r.code} after ${fmtMs(r.ms)}`);
    expect(r.code, r.out).toBe(3);
    expect(r.out).toContain('[REDIS_EVICTION_POLICY]');
    expect(r.out).toMatch(
      /maxmemory-policy is allkeys-lru \(read with CONFIG GET\), not noeviction/,
    );
    expect(r.out).toMatch(/evict BullMQ's keys .* jobs would be lost or run twice/);
    expect(r.out).toContain('CONFIG SET maxmemory-policy noeviction');
    expect(r.out).toContain('redis.conf');
    expect(r.out).toContain('JCDS_ALLOW_REDIS_EVICTION=1');
    expect(r.out).not.toContain('worker ready');
    // Refused before taking any job: the upload still waits, never attempted.
    const q = queueOn({ host: '127.0.0.1', port: evicting.port });
    try {
      expect(await q.getJobState(evictingJobId)).toBe('waiting');
      expect((await Job.fromId(q, evictingJobId))?.attemptsStarted ?? 0).toBe(0);
    } finally {
      await q.close();
    }
  });

  it('H6.2: with JCDS_ALLOW_REDIS_EVICTION=1 the worker starts with a warning and publishes', async () => {
    const w = await h.fleet.startWorker({
      REDIS_URL: evicting.url,
      JCDS_ALLOW_REDIS_EVICTION: '1',
    });
    try {
      const warning = w
        .logs()
        .split('\n')
        .find(l => l.includes('Starting anyway'));
      expect(warning, w.logs()).toBeDefined();
      expect(JSON.parse(warning!)).toMatchObject({
        level: 40,
        maxmemoryPolicy: 'allkeys-lru',
        override: 'JCDS_ALLOW_REDIS_EVICTION',
      });
      const q = queueOn({ host: '127.0.0.1', port: evicting.port });
      try {
        const job = await waitForJobSettled(q, evictingJobId, 60_000);
        await expectPublished(h, job, evictingFile, 4 * KiB);
      } finally {
        await q.close();
      }
    } finally {
      await w.kill('SIGTERM');
    }
  });

  it('H6.3: CONFIG disabled (a managed Redis): the policy is read from INFO memory, and volatile-lru is refused', async () => {
    const url = `unix://${noConfig.socket}`;
    const r = await runToEnd(WORKER, { ...h.fleet.env, REDIS_URL: url });
    expect(r.code, r.out).toBe(3);
    expect(r.out).toMatch(
      /maxmemory-policy is volatile-lru \(read with INFO memory\), not noeviction/,
    );
  });

  it("H6.4: the monitor's /healthz reports the policy and whether it is safe", async () => {
    const cases: Array<[string, string, string, boolean]> = [
      ['fleet', h.fleet.redis.url, 'noeviction', true],
      ['allkeys-lru', evicting.url, 'allkeys-lru', false],
      ['no CONFIG', `unix://${noConfig.socket}`, 'volatile-lru', false],
    ];
    for (const [name, url, policy, safe] of cases) {
      const m = run([join(ROOT, 'worker/monitor/main.ts'), '--port', '0'], {
        ...h.fleet.env,
        REDIS_URL: url,
        MONITOR_USER: undefined,
        MONITOR_PASSWORD: undefined,
      });
      try {
        const health = (await m.waitFor(/Health:\s+(http:\/\/\S+\/healthz)/))[1]!;
        const res = await fetch(health);
        const body = (await res.json()) as Record<string, unknown>;
        console.log(`H6.4: /healthz on ${name}: ${res.status} ${JSON.stringify(body)}`);
        expect(res.status).toBe(200);
        expect(body).toMatchObject({
          status: safe ? 'ok' : 'warning',
          redis: 'up',
          maxmemoryPolicy: policy,
          evictionSafe: safe,
        });
        if (!safe) expect(String(body['warning'])).toMatch(/noeviction/);
      } finally {
        m.child.kill('SIGTERM');
        await m.exited;
      }
    }
  });

  it('H6.5: a unix-socket REDIS_URL keeps its password and db: the worker works and the data is in db 2', async () => {
    // The worker with the userinfo form, the producer with the query form.
    const workerUrl = `unix://:${enc(REDIS_PW)}@${socketRedis.socket}?db=2`;
    const producerUrl = `unix://${socketRedis.socket}?db=2&password=${enc(REDIS_PW)}`;
    const w = await h.fleet.startWorker({ REDIS_URL: workerUrl });
    try {
      const file = await makeFile(h.fleet.dir, 'H6 Socket.pkg', 8 * KiB);
      const producer = await Producer.connect({ redisUrl: producerUrl });
      let jobId: string;
      try {
        jobId = (await producer.upload({ path: file.path })).jobId;
      } finally {
        await producer.close();
      }
      const q = queueOn({
        ...socketRedis.options(2),
        lazyConnect: false,
        maxRetriesPerRequest: null,
        retryStrategy: () => 100,
      });
      try {
        const job = await waitForJobSettled(q, jobId, 60_000);
        await expectPublished(h, job, file, 8 * KiB);
      } finally {
        await q.close();
      }
      const db2 = new Redis(socketRedis.options(2));
      const db0 = new Redis(socketRedis.options(0));
      try {
        const keys = await db2.keys('{jcds}*');
        console.log(
          `H6.5: db 2 holds ${keys.length} {jcds} keys; db 0 holds ${await db0.dbsize()} keys`,
        );
        expect(keys.length).toBeGreaterThan(0);
        expect(keys).toContain(`${QUEUE_PREFIX}:upload:${jobId}`);
        expect(await db0.dbsize()).toBe(0);
      } finally {
        db2.disconnect();
        db0.disconnect();
      }
      expect(w.logs()).not.toContain(REDIS_PW);
      expect(w.logs()).not.toContain(enc(REDIS_PW));
    } finally {
      await w.kill('SIGTERM');
    }
  });
});

describe('H6: no password from REDIS_URL or JAMF_URL in any output', () => {
  it('H6.6: a wrong password in REDIS_URL or JAMF_URL is never printed: worker, jcds, doctor, monitor, config errors', async () => {
    const secrets = [WRONG_REDIS_PW, enc(WRONG_REDIS_PW), WRONG_JAMF_PW, enc(WRONG_JAMF_PW)];
    const outputs: Array<[string, string]> = [];
    const tcpWrong = `redis://:${enc(WRONG_REDIS_PW)}@127.0.0.1:${socketRedis.port}`;
    const unixWrong = `unix://${socketRedis.socket}?password=${enc(WRONG_REDIS_PW)}`;
    const jamfWithPw = `https://admin:${enc(WRONG_JAMF_PW)}@127.0.0.1:9`;

    // Workers facing a Redis that refuses the password (debug logs: every ioredis error):
    // exit 3 saying so, naming where without the password.
    for (const url of [tcpWrong, unixWrong]) {
      const r = await runToEnd(WORKER, { ...h.fleet.env, REDIS_URL: url, LOG_LEVEL: 'debug' });
      expect(r.code, r.out).toBe(3);
      expect(r.out).toMatch(
        /\[REDIS_UNAVAILABLE\] Redis at \S+ refused the credentials in REDIS_URL \(WRONGPASS\)/,
      );
      expect(r.out).not.toContain('worker ready');
      outputs.push([`worker ${url.slice(0, 8)}`, r.out]);
    }
    // The CLI: a Redis that refuses the password, and REDIS_URLs that do not parse.
    for (const url of [
      tcpWrong,
      unixWrong,
      `redis://:${WRONG_REDIS_PW}@127.0.0.1:notaport`,
      `unix://:${WRONG_REDIS_PW}@/no/such/redis.sock?db=zero`,
    ]) {
      const r = await runToEnd([...JCDS, 'status'], { ...h.fleet.env, REDIS_URL: url });
      expect(r.code, r.out).toBe(3);
      expect(r.out).toMatch(
        url === tcpWrong || url === unixWrong
          ? /\[REDIS_UNAVAILABLE\] .*refused the credentials in REDIS_URL \(WRONGPASS\)/
          : /\[CONFIG_INVALID\][\s\S]*REDIS_URL is "[^"]*\*\*\*/,
      );
      outputs.push([`jcds status ${url.slice(0, 8)}`, r.out]);
    }
    // A JAMF_URL with credentials in it: refused by a worker and by the CLI.
    const w = await runToEnd(WORKER, { ...h.fleet.env, JAMF_URL: jamfWithPw });
    expect(w.code, w.out).toBe(3);
    expect(w.out).toMatch(
      /JAMF_URL is "https:\/\/\*\*\*@127\.0\.0\.1:9" \(it carries a user name or password\)/,
    );
    outputs.push(['worker JAMF_URL', w.out]);
    // jcds doctor, with both.
    const d = await runToEnd(
      [...JCDS, 'doctor', '--json'],
      {
        ...h.fleet.env,
        REDIS_URL: tcpWrong,
        JAMF_URL: jamfWithPw,
      },
      60_000,
    );
    expect(d.code, d.out).toBe(3);
    expect(d.out).toMatch(/WRONGPASS|NOAUTH|invalid username-password/i);
    outputs.push(['doctor', d.out]);
    // The monitor.
    const m = await runToEnd([join(ROOT, 'worker/monitor/main.ts'), '--port', '0'], {
      ...h.fleet.env,
      REDIS_URL: unixWrong,
    });
    expect(m.code, m.out).toBe(3);
    outputs.push(['monitor', m.out]);

    for (const [what, out] of outputs)
      for (const s of secrets)
        expect(out.includes(s), `${what} printed a password:\n${out}`).toBe(false);
    console.log(`H6.6: ${outputs.length} outputs, none holds either password`);
  });
});

describe('H6: JAMF_URL over plain http', () => {
  it('H6.7: http://jamf.example.com is refused (exit 3); loopback runs; JCDS_ALLOW_INSECURE_JAMF allows it', async () => {
    const insecure = { ...h.fleet.env, JAMF_URL: 'http://jamf.example.com' };
    const w = await runToEnd(WORKER, insecure);
    expect(w.code, w.out).toBe(3);
    expect(w.out).toMatch(
      /plain http:\/\/ to jamf\.example\.com would send the Jamf client secret and bearer tokens in clear/,
    );
    expect(w.out).toContain('set it to https://jamf.example.com');
    expect(w.out).toContain('JCDS_ALLOW_INSECURE_JAMF=jamf.example.com');
    expect(w.out).not.toContain(h.fleet.env['JAMF_CLIENT_SECRET']!);
    // The CLI loads the same configuration (it sends nothing to Jamf for `status`).
    const refused = await runToEnd([...JCDS, 'status'], insecure);
    expect(refused.code, refused.out).toBe(3);
    expect(refused.out).toMatch(/plain http:\/\/ to jamf\.example\.com/);
    for (const allow of ['1', 'jamf.example.com']) {
      const allowed = await runToEnd([...JCDS, 'status'], {
        ...insecure,
        JCDS_ALLOW_INSECURE_JAMF: allow,
      });
      expect(allowed.code, allowed.out).toBe(0);
    }
    const other = await runToEnd([...JCDS, 'status'], {
      ...insecure,
      JCDS_ALLOW_INSECURE_JAMF: 'simulator',
    });
    expect(other.code, other.out).toBe(3);
    // The harness's simulator is plain http on loopback: a worker starts against it.
    expect(h.fleet.env['JAMF_URL']).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const ok = await h.fleet.startWorker();
    await ok.kill('SIGTERM');
  });
});

describe('H6: a worker stops when told, or when its CLI is gone', () => {
  it('H6.8: SIGTERM with Redis SIGKILLed and parts in flight: one signal, the worker exits within grace + SHUTDOWN_EXIT_AFTER_MS, and the upload is published later', async () => {
    const graceMs = 3_000;
    const redis = await startRedis();
    const fresh = new Redis({ port: redis.port, host: '127.0.0.1', maxRetriesPerRequest: null });
    // Every write on disk before the kill: the restarted Redis has the job as it was.
    await fresh.config('SET', 'appendfsync', 'always');
    fresh.disconnect();
    const size = 12 * MiB;
    const file = await makeFile(h.fleet.dir, 'H6 Shutdown.pkg', size);
    const env = { REDIS_URL: redis.url, JCDS_SHUTDOWN_GRACE_MS: String(graceMs) };
    const parts = queueOn({ host: '127.0.0.1', port: redis.port }, 'upload-part');
    const uploads = queueOn({ host: '127.0.0.1', port: redis.port });
    // Redis goes away on purpose: the reconnect errors of these clients are expected.
    for (const q of [parts, uploads]) q.on('error', () => undefined);
    try {
      // Parts of 5 MiB at 2 MiB/s: each takes 2.5 s, so parts are in flight at the kill.
      await h.fleet.sim.control.setFaults({ s3BytesPerSecond: 2 * MiB });
      const w = await h.fleet.startWorker(env);
      const producer = await Producer.connect({ redisUrl: redis.url });
      let jobId: string;
      try {
        jobId = (await producer.upload({ path: file.path })).jobId;
      } finally {
        await producer.close();
      }
      await waitUntil(
        async () => (await parts.getActiveCount()) > 0,
        'a part job in flight',
        60_000,
      );
      await parts.close();
      await redis.kill('SIGKILL');
      // The worker has seen Redis go (its connections report ECONNREFUSED).
      await waitUntil(() => /ECONNREFUSED/.test(w.logs()), 'the worker to see Redis gone', 30_000);
      const started = Date.now();
      w.proc.kill('SIGTERM');
      const code = await w.exited;
      const ms = Date.now() - started;
      // The mechanism: a close that Redis does not answer is cut at the grace period (or,
      // for the queues and the Jamf client, at SHUTDOWN_FORCE_MS each) by dropping the
      // connections, and main.ts exits by force at graceMs + SHUTDOWN_EXIT_AFTER_MS at the
      // latest; SLACK_MS covers timers firing late on a loaded machine.
      const bound = graceMs + SHUTDOWN_EXIT_AFTER_MS + SLACK_MS;
      console.log(
        `H6.8: worker exited ${code} ${fmtMs(ms)} after one SIGTERM with Redis down and parts in flight (grace ${fmtMs(graceMs)}, bound ${fmtMs(bound)})`,
      );
      expect(code, w.logs().slice(-3000)).toBe(0);
      expect(ms).toBeLessThanOrEqual(bound);
      expect(w.logs()).toContain('shutting down gracefully');
      expect(w.logs()).not.toContain('second signal');
      expect(w.logs()).not.toContain('shutdown did not finish in time');
      expectNoSecretsInLogs(h.fleet, [w]);
      // Nothing lost: Redis back, a new worker takes the job over once its lock expires,
      // and the file is published once with the right bytes.
      await h.fleet.sim.control.clearFaults();
      await redis.start();
      const next = await h.fleet.startWorker(env);
      try {
        const job = await waitForJobSettled(uploads, jobId, 120_000);
        await expectPublished(h, job, file, size);
        await expectNothingHalfDone(h);
      } finally {
        await next.kill('SIGTERM');
      }
    } finally {
      await h.fleet.sim.control.clearFaults();
      await parts.close();
      await uploads.close();
      await redis.stop();
    }
  });

  it('H6.9: `jcds worker --allow-eviction` SIGKILLed: its worker child exits too', async () => {
    const graceMs = 3_000;
    const cli = run([...JCDS, 'worker', '--allow-eviction'], {
      ...h.fleet.env,
      REDIS_URL: evicting.url,
      JCDS_SHUTDOWN_GRACE_MS: String(graceMs),
    });
    let workerPid: number | undefined;
    try {
      const ready = await cli.waitFor(/^.*"worker ready".*$/m, 30_000);
      workerPid = (JSON.parse(ready[0]) as { pid: number }).pid;
      expect(workerPid).not.toBe(cli.child.pid);
      // --allow-eviction reached the worker: it started on allkeys-lru, with the warning.
      expect(cli.out()).toMatch(/maxmemory-policy is allkeys-lru.*Starting anyway/);
      expect(alive(workerPid)).toBe(true);
      const started = Date.now();
      cli.child.kill('SIGKILL');
      await cli.exited;
      const pid = workerPid;
      // The mechanism: the kernel closes the CLI's end of the IPC channel when it dies; the
      // worker's 'disconnect' handler drains as on SIGTERM (no job in flight here), bounded
      // like any shutdown by graceMs + SHUTDOWN_EXIT_AFTER_MS.
      const bound = graceMs + SHUTDOWN_EXIT_AFTER_MS + SLACK_MS;
      await waitUntil(() => !alive(pid), `worker ${pid} to exit`, bound + 5_000, 20);
      const ms = Date.now() - started;
      console.log(
        `H6.9: the worker child exited ${fmtMs(ms)} after its CLI was SIGKILLed (bound ${fmtMs(bound)})`,
      );
      expect(ms).toBeLessThanOrEqual(bound);
      await cli.waitFor(/"signal":"parent exited"/, 5_000);
    } finally {
      if (!cli.child.killed) cli.child.kill('SIGKILL');
      if (workerPid !== undefined && alive(workerPid)) process.kill(workerPid, 'SIGKILL');
    }
  });

  it('H6.10: `jcds monitor` SIGKILLed: its monitor child exits too', async () => {
    const port = await freePort();
    const cli = run([...JCDS, 'monitor', '--port', String(port), '--host', '127.0.0.1'], {
      ...h.fleet.env,
      MONITOR_USER: 'ops',
      MONITOR_PASSWORD: 'monitor-pw-H6-10',
    });
    let monitorPid: number | undefined;
    try {
      const ready = await cli.waitFor(/^.*"monitor listening".*$/m, 30_000);
      monitorPid = (JSON.parse(ready[0]) as { pid: number }).pid;
      expect(monitorPid).not.toBe(cli.child.pid);
      expect(alive(monitorPid)).toBe(true);
      const started = Date.now();
      cli.child.kill('SIGKILL');
      await cli.exited;
      const pid = monitorPid;
      // Same mechanism as the worker's: the IPC channel closes with the CLI and the monitor's
      // 'disconnect' handler closes its server and Redis connections, as on SIGTERM.
      const bound = SHUTDOWN_EXIT_AFTER_MS + SLACK_MS;
      await waitUntil(() => !alive(pid), `monitor ${pid} to exit`, bound + 5_000, 20);
      const ms = Date.now() - started;
      console.log(
        `H6.10: the monitor child exited ${fmtMs(ms)} after its CLI was SIGKILLed (bound ${fmtMs(bound)})`,
      );
      expect(ms).toBeLessThanOrEqual(bound);
    } finally {
      if (!cli.child.killed) cli.child.kill('SIGKILL');
      if (monitorPid !== undefined && alive(monitorPid)) process.kill(monitorPid, 'SIGKILL');
    }
  });
});
