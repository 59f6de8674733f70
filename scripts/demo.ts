/**
 * `npm run demo [-- --exit] [--json] [--port N] [--data-dir DIR] [--workers N]`: the whole
 * fleet on this machine, against the bundled Jamf Pro + JCDS simulator.
 *
 *   0. each run starts empty: the previous run's Redis and simulator data in DIR are
 *      cleared, so the dashboard and `jcds status` show this run's jobs only (with your
 *      own REDIS_URL nothing is cleared, and the summary names this run's job ids);
 *   1. Redis: REDIS_URL when set, otherwise a redis-server spawned here (AOF on,
 *      noeviction, data in DIR/demo-redis, a free port on 127.0.0.1);
 *   2. the simulator (`node test/sim/main.ts --port 0 --data-dir DIR/demo-sim`);
 *   3. N workers (`node worker/main.ts`, `--workers`, 1 by default) and the monitor
 *      (`node worker/monitor/main.ts`); then the settings to paste into another shell so
 *      that a worker started there (`node bin/jcds.js worker`) joins the fleet;
 *   4. `jcds doctor` against this stack (its checklist shown; a failed check stops here);
 *   5. sample packages generated in DIR/demo-packages (small ones, and one of 48 MiB that
 *      JCDS_SPLIT_THRESHOLD=16MiB / JCDS_PART_SIZE=8MiB split into six part jobs),
 *      published with the real command line: `jcds upload ... --wait --json`;
 *   6. a summary: each package's id, size, hash (Jamf's stored SHA3-512 read back and
 *      compared with the local file's) and time; then it stays up (dashboard, `jcds`
 *      commands) until Ctrl-C. `--exit` stops once the batch is done (CI); `--json`
 *      prints the summary as one JSON object on stdout (everything else goes to stderr).
 *
 * Exit codes: 0 every package published and verified, 1 one was not, 3 the stack could
 * not start (redis-server missing, a port in use...) or `jcds doctor` found a problem.
 * Logs: DIR/demo-logs/*.log.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  createWriteStream,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  rmSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { JamfClient } from '../shared/jamf/client.ts';
import { connectProducer } from '../shared/queues/connection.ts';
import { openQueue } from '../shared/queues/factory.ts';
import type { UploadJobData } from '../shared/queues/jobs.ts';
import { QUEUES } from '../shared/queues/names.ts';
import { MiB, formatBytes } from '../shared/units.ts';
import { workerNodeFlags } from '../shared/worker-flags.ts';
import { settingsBlock } from './demo-settings.ts';

const ROOT = resolve(import.meta.dirname, '..');
const SAMPLES: Array<[string, number]> = [
  ['Demo Browser 128.0.pkg', 1.5 * MiB],
  ['Demo VPN Client 4.2.dmg', 3 * MiB],
  ['Demo Fonts 2026.zip', 512 * 1024],
  ['Demo Office Suite 16.9.pkg', 48 * MiB],
];

const { values: opts } = parseArgs({
  options: {
    exit: { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
    port: { type: 'string', default: '3000' },
    'data-dir': { type: 'string', default: join(ROOT, '.data') },
    workers: { type: 'string', default: '1' },
  },
});
const dataDir = resolve(opts['data-dir']);
const workerCount = Number(opts.workers);
if (!/^\d+$/.test(opts.workers) || workerCount < 1 || workerCount > 16) {
  process.stderr.write(`demo: --workers is ${JSON.stringify(opts.workers)}: use 1 to 16.\n`);
  process.exit(2);
}
const logsDir = join(dataDir, 'demo-logs');
const say = (text: string): void => void process.stderr.write(`${text}\n`);
const children: Array<{ name: string; proc: ChildProcess }> = [];

class DemoError extends Error {}

function freePort(preferred = 0): Promise<number> {
  return new Promise((ok, fail) => {
    const srv = createServer();
    srv.once('error', err => (preferred ? freePort(0).then(ok, fail) : fail(err)));
    srv.listen(preferred, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => ok(typeof addr === 'object' && addr ? addr.port : 0));
    });
  });
}

/** Spawns a child with its output in DIR/demo-logs/NAME.log; resolves once `ready` matches. */
async function start(
  name: string,
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  ready: RegExp,
  timeoutMs = 30_000,
): Promise<{ proc: ChildProcess; match: RegExpExecArray }> {
  const log = openSync(join(logsDir, `${name}.log`), 'w');
  // Own process group: a Ctrl-C reaches only the demo, which stops the stack in order.
  const proc = spawn(command, args, {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  children.push({ name, proc });
  let seen = '';
  const found = new Promise<RegExpExecArray>((ok, fail) => {
    const timer = setTimeout(
      () =>
        fail(
          new DemoError(
            `${name} did not start within ${timeoutMs / 1000} s: see ${join(logsDir, `${name}.log`)}`,
          ),
        ),
      timeoutMs,
    );
    const onLine = (line: string): void => {
      seen += `${line}\n`;
      const m = ready.exec(seen);
      if (m) {
        clearTimeout(timer);
        ok(m);
      }
    };
    for (const stream of [proc.stdout!, proc.stderr!]) {
      stream.on('data', (b: Buffer) => writeSync(log, b));
      createInterface({ input: stream }).on('line', onLine);
    }
    proc.once('error', err => fail(new DemoError(`${name} could not start: ${err.message}`)));
    proc.once('exit', code => {
      clearTimeout(timer);
      fail(
        new DemoError(
          `${name} exited (code ${code}) before it was ready:\n${seen.split('\n').slice(-15).join('\n')}`,
        ),
      );
    });
  });
  return { proc, match: await found };
}

async function startRedis(): Promise<string> {
  if (process.env['REDIS_URL']) {
    say(`Redis: using REDIS_URL (${process.env['REDIS_URL'].replace(/\/\/[^@]*@/, '//')})`);
    return process.env['REDIS_URL'];
  }
  if (spawnSync('redis-server', ['--version']).error) {
    throw new DemoError(
      'redis-server is not installed. Install it (Debian/Ubuntu: sudo apt-get install -y redis-server; macOS: brew install redis), ' +
        'set REDIS_URL to a Redis you already run, or run the whole fleet with `docker compose up` instead.',
    );
  }
  const dir = join(dataDir, 'demo-redis');
  mkdirSync(dir, { recursive: true });
  const port = await freePort();
  const args = [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--dir',
    dir,
    '--appendonly',
    'yes',
    '--appendfsync',
    'everysec',
    '--maxmemory-policy',
    'noeviction',
    '--save',
    '',
  ];
  await start('redis', 'redis-server', args, process.env, /Ready to accept connections/);
  say(`Redis: redis-server on 127.0.0.1:${port} (AOF in ${dir})`);
  return `redis://127.0.0.1:${port}`;
}

/** Random content (a real upload every run), streamed; returns the SHA3-512. */
async function makeSample(path: string, size: number): Promise<string> {
  const sha3 = createHash('sha3-512');
  const out = createWriteStream(path);
  for (let done = 0; done < size;) {
    const chunk = randomBytes(Math.min(4 * MiB, size - done));
    sha3.update(chunk);
    if (!out.write(chunk)) await once(out, 'drain');
    done += chunk.length;
  }
  out.end();
  await once(out, 'finish');
  return sha3.digest('hex');
}

interface PackageRow {
  fileName: string;
  jobId: string;
  packageId: string | null;
  size: number;
  sha3_512: string | null;
  verified: boolean;
  durationMs: number | null;
  outcome: string | null;
  /** S3 multipart parts (0: one PUT). */
  parts: number;
  error: string | null;
}

/**
 * Runs `jcds doctor` against the stack (its checklist goes to our stderr), as an admin
 * would before the first upload; a failed check stops the demo (exit 3).
 */
async function doctor(env: NodeJS.ProcessEnv): Promise<void> {
  const proc = spawn(process.execPath, [join(ROOT, 'bin/jcds.js'), 'doctor'], {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'ignore', 'inherit'],
    detached: true,
  });
  children.push({ name: 'jcds doctor', proc });
  const [code] = (await once(proc, 'exit')) as [number | null];
  if (code !== 0) {
    throw new DemoError(`jcds doctor found a problem (exit ${code}): see the ✗ lines above.`);
  }
}

/** Runs `jcds upload FILES --wait --json`, echoing its events as short lines. */
async function publish(
  env: NodeJS.ProcessEnv,
  files: string[],
): Promise<Array<Record<string, unknown>>> {
  const proc = spawn(
    process.execPath,
    [join(ROOT, 'bin/jcds.js'), 'upload', ...files, '--wait', '--json', '--if-exists', 'replace'],
    {
      cwd: ROOT,
      env,
      stdio: ['ignore', 'pipe', 'inherit'],
      detached: true,
    },
  );
  children.push({ name: 'jcds upload', proc });
  const events: Array<Record<string, unknown>> = [];
  const reported = new Set<string>();
  createInterface({ input: proc.stdout! }).on('line', line => {
    const e = JSON.parse(line) as Record<string, unknown>;
    events.push(e);
    const name = String(e['fileName'] ?? '');
    if (e['event'] === 'enqueued')
      say(`  enqueued   ${name} (job ${String(e['jobId'])}, ${formatBytes(Number(e['size']))})`);
    if (e['event'] === 'progress' && e['phase'] && !reported.has(`${name}${String(e['phase'])}`)) {
      reported.add(`${name}${String(e['phase'])}`);
      say(`  ${String(e['phase']).padEnd(10)} ${name}`);
    }
    if (e['event'] === 'completed') say(`  published  ${name}`);
    if (e['event'] === 'failed') say(`  FAILED     ${name}: ${String(e['reason'])}`);
  });
  const [code] = (await once(proc, 'exit')) as [number | null];
  if (code !== 0 && code !== 1) throw new DemoError(`jcds upload exited with ${code}`);
  return events;
}

/** The secret the demo's workers share: the one set in this shell is never printed. */
const FLEET_SECRET_FROM_ENV = Boolean(process.env['JCDS_FLEET_SECRET']);
const DEMO_FLEET_SECRET = 'jcds-demo-secret-not-for-production';

/**
 * Clears the previous run's Redis and simulator data (only the demo's own: with REDIS_URL
 * set, Redis is yours and is left alone), so this run's jobs are the only ones shown. A
 * demo still running on the same data dir is refused rather than cleared under it.
 */
function freshStart(): void {
  const pidFile = join(dataDir, 'demo.pid');
  const other = Number(existsSync(pidFile) ? readFileSync(pidFile, 'utf8').trim() : NaN);
  if (Number.isInteger(other) && other > 0 && other !== process.pid && alive(other)) {
    throw new DemoError(
      `another demo (pid ${other}) is running on ${dataDir}: stop it (Ctrl-C there), or give this one another --data-dir.`,
    );
  }
  writeFileSync(pidFile, `${process.pid}\n`);
  const cleared: string[] = [];
  for (const sub of [
    ...(process.env['REDIS_URL'] ? [] : ['demo-redis']),
    'demo-sim',
    'demo-packages',
  ]) {
    const dir = join(dataDir, sub);
    if (!existsSync(dir)) continue;
    rmSync(dir, { recursive: true, force: true });
    cleared.push(sub);
  }
  if (cleared.length > 0)
    say(`Starting empty: the previous run's ${cleared.join(', ')} in ${dataDir} were cleared.`);
}

/** Removes DIR/demo.pid when it is this run's. */
function releasePidFile(): void {
  const pidFile = join(dataDir, 'demo.pid');
  try {
    if (readFileSync(pidFile, 'utf8').trim() === String(process.pid)) rmSync(pidFile);
  } catch {
    /* not written, or gone */
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function main(): Promise<number> {
  for (const d of [dataDir, logsDir]) mkdirSync(d, { recursive: true });
  say(
    `jcds-fleet demo: Redis, the Jamf Pro + JCDS simulator, ${workerCount === 1 ? 'one worker' : `${workerCount} workers`} and the monitor.\n`,
  );
  freshStart();
  const redisUrl = await startRedis();

  const sim = await start(
    'simulator',
    process.execPath,
    [
      'test/sim/main.ts',
      '--port',
      '0',
      '--data-dir',
      join(dataDir, 'demo-sim'),
      '--log-level',
      'warn',
    ],
    process.env,
    /^(\{.*"jamfUrl".*\})$/m,
  );
  const info = JSON.parse(sim.match[1]!) as Record<string, string>;
  say(`Simulator: Jamf Pro at ${info['jamfUrl']}, S3 at ${info['s3Endpoint']}`);

  const env: NodeJS.ProcessEnv = {
    ...process.env,
    REDIS_URL: redisUrl,
    JAMF_URL: info['jamfUrl'],
    JAMF_CLIENT_ID: info['clientId'],
    JAMF_CLIENT_SECRET: info['clientSecret'],
    JAMF_USERNAME: '',
    JAMF_PASSWORD: '',
    AWS_ENDPOINT_URL_S3: info['s3Endpoint'],
    JCDS_FLEET_SECRET: process.env['JCDS_FLEET_SECRET'] || DEMO_FLEET_SECRET,
    JCDS_SPLIT_THRESHOLD: '16MiB',
    JCDS_PART_SIZE: '8MiB',
    LOG_LEVEL: process.env['LOG_LEVEL'] ?? 'info',
  };
  for (let i = 1; i <= workerCount; i++) {
    await start(
      workerCount === 1 ? 'worker' : `worker-${i}`,
      process.execPath,
      [...workerNodeFlags(), 'worker/main.ts'],
      env,
      /worker ready/,
    );
  }
  say(
    workerCount === 1
      ? `Worker: started (logs in ${join(logsDir, 'worker.log')})`
      : `Workers: ${workerCount} started (logs in ${join(logsDir, 'worker-*.log')})`,
  );
  const port = await freePort(Number(opts.port));
  if (Number(opts.port) !== 0 && port !== Number(opts.port)) {
    say(`Port ${opts.port} is in use: the monitor takes ${port}.`);
  }
  const monitor = await start(
    'monitor',
    process.execPath,
    // The demo's dashboard listens on loopback only; writes are on so its Retry can be tried
    // (same-origin requests only: the monitor's guard still refuses other sites).
    ['worker/monitor/main.ts', '--port', String(port), '--allow-writes'],
    env,
    /Dashboard: (\S+)/,
  );
  const dashboard = monitor.match[1]!;
  say(`Monitor: ${dashboard}\n`);

  say('Checking the setup first (`jcds doctor`):');
  await doctor(env);
  say('');
  say('To add a worker to this fleet from another shell (in this checkout), paste:');
  say(settingsBlock(env, { secretFromEnv: FLEET_SECRET_FROM_ENV }));
  say('');

  const pkgDir = join(dataDir, 'demo-packages');
  mkdirSync(pkgDir, { recursive: true });
  const local = new Map<string, string>();
  for (const [name, size] of SAMPLES) local.set(name, await makeSample(join(pkgDir, name), size));
  say(`Publishing ${SAMPLES.length} sample packages from ${pkgDir}:`);
  const started = Date.now();
  const events = await publish(
    env,
    SAMPLES.map(([name]) => join(pkgDir, name)),
  );

  // Read every package back from Jamf: its stored SHA3-512 must equal the local file's.
  const jamf = new JamfClient({
    baseUrl: info['jamfUrl']!,
    auth: { kind: 'oauth', id: info['clientId']!, secret: info['clientSecret']! },
  });
  const redis = await connectProducer(redisUrl);
  const uploads = openQueue(QUEUES.upload, redis);
  const rows: PackageRow[] = [];
  try {
    for (const [name, size] of SAMPLES) {
      const enq = events.find(e => e['event'] === 'enqueued' && e['fileName'] === name);
      const done = events.find(e => e['event'] === 'completed' && e['fileName'] === name);
      const failed = events.find(e => e['event'] === 'failed' && e['fileName'] === name);
      const result = (done?.['result'] ?? {}) as Record<string, unknown>;
      const packageId = typeof result['packageId'] === 'string' ? result['packageId'] : null;
      const stored = packageId ? await jamf.getPackage(packageId) : undefined;
      const sha3 = stored?.hashType === 'SHA3_512' ? (stored.hashValue ?? null) : null;
      const job = enq ? await uploads.getJob(String(enq['jobId'])) : undefined;
      const data = job?.data as UploadJobData | undefined;
      const parts = data && 'multipart' in data ? (data.multipart?.partCount ?? 0) : 0;
      rows.push({
        fileName: name,
        jobId: String(enq?.['jobId'] ?? '?'),
        packageId,
        size,
        sha3_512: sha3,
        verified: sha3 !== null && sha3 === local.get(name),
        durationMs: typeof done?.['durationMs'] === 'number' ? done['durationMs'] : null,
        outcome: typeof result['outcome'] === 'string' ? result['outcome'] : null,
        parts,
        error: failed ? String(failed['reason']) : done ? null : 'not finished',
      });
    }
  } finally {
    await jamf.close();
    await uploads.close();
    redis.disconnect();
  }
  const ok = rows.every(r => r.verified);
  say(`\nSummary (this run's upload jobs: ${rows.map(r => r.jobId).join(', ')}):`);
  say(
    `  ${'PACKAGE'.padEnd(28)} ${'ID'.padStart(4)} ${'SIZE'.padStart(10)} ${'PARTS'.padStart(5)}  ${'SHA3-512 (stored in Jamf)'.padEnd(27)} ${'TIME'.padStart(7)}`,
  );
  for (const r of rows) {
    const hash = r.verified
      ? `${r.sha3_512!.slice(0, 16)}… verified`
      : `✘ ${r.error ?? 'hash differs'}`;
    const time = r.durationMs === null ? '-' : `${(r.durationMs / 1000).toFixed(1)} s`;
    const parts = r.parts === 0 ? '1 PUT' : String(r.parts);
    say(
      `  ${r.fileName.padEnd(28)} ${(r.packageId ?? '-').padStart(4)} ${formatBytes(r.size).padStart(10)} ${parts.padStart(5)}  ${hash.padEnd(27)} ${time.padStart(7)}`,
    );
  }
  say(
    `  ${rows.filter(r => r.verified).length}/${rows.length} published and verified in ${((Date.now() - started) / 1000).toFixed(1)} s`,
  );
  if (opts.json) {
    process.stdout.write(
      `${JSON.stringify({ event: 'demo-summary', ok, dashboard, redisUrl, jamfUrl: info['jamfUrl'], packages: rows })}\n`,
    );
  }
  if (opts.exit) return ok ? 0 : 1;

  say(`\nDashboard: ${dashboard}`);
  say('Try the command line against this stack: in another shell, paste the settings above, then');
  say(`  node bin/jcds.js status            # queue counts and recent jobs`);
  say(
    `  node bin/jcds.js status ${rows.at(-1)?.jobId ?? ''}           # one upload with its parts`,
  );
  say(`  node bin/jcds.js ls                # JCDS files and Jamf packages side by side`);
  say(`  node bin/jcds.js upload ${join(pkgDir, '*.pkg')} --if-exists replace --wait`);
  say(`  node bin/jcds.js worker            # one more worker in the fleet`);
  say('Press Ctrl-C to stop the stack.');
  waiting = true;
  await stopRequested;
  return ok ? 0 : 1;
}

/** Stops the children, newest first (the worker drains, Redis writes its AOF). */
async function stopAll(): Promise<void> {
  for (const { proc } of children.reverse()) {
    if (proc.exitCode !== null || proc.signalCode !== null) continue;
    const exited = once(proc, 'exit');
    proc.kill('SIGTERM');
    const timer = setTimeout(() => proc.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  }
}

// A signal during start-up or publishing stops the stack at once; while the demo waits
// for Ctrl-C it ends the wait. A second signal kills what is left.
let waiting = false;
let requestStop: () => void = () => undefined;
const stopRequested = new Promise<void>(done => (requestStop = done));
let signals = 0;
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(sig, () => {
    signals++;
    if (signals > 1) {
      for (const { proc } of children) proc.kill('SIGKILL');
      process.exit(130);
    }
    if (waiting) {
      requestStop();
      return;
    }
    say('\nInterrupted: stopping the stack...');
    void stopAll().then(() => {
      releasePidFile();
      process.exit(130);
    });
  });
}

let code: number;
try {
  code = await main();
} catch (err) {
  say(`\ndemo: ${err instanceof Error ? err.message : String(err)}`);
  code = err instanceof DemoError ? 3 : 1;
}
say('Stopping the stack...');
await stopAll();
releasePidFile();
process.exit(code);
