/**
 * A whole local fleet for integration tests: a spawned redis-server, the simulator (a
 * separate process), worker processes spawned with `node worker/main.ts`, and helpers to
 * make files, await jobs and read their state. Everything runs over real HTTP and real
 * Redis; tests kill and restart these processes for real.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { Job, Queue, QueueEvents } from 'bullmq';
import { QUEUE_PREFIX } from '../../shared/queues/names.ts';
import { workerNodeFlags } from '../../shared/worker-flags.ts';
import { startRedis, type RedisServer } from './redis.ts';
import { spawnSimulator, jamfEnv, type SpawnedSimulator as SimulatorProcess } from './sim.ts';

export const ROOT = new URL('../..', import.meta.url).pathname;

export interface WorkerProcess {
  proc: ChildProcess;
  pid: number;
  /** Resolves with the exit code (or signal) when the process ends. */
  exited: Promise<number | string | null>;
  kill(signal?: NodeJS.Signals): Promise<void>;
  logs(): string;
}

export interface Fleet {
  redis: RedisServer;
  sim: SimulatorProcess;
  dir: string;
  env: Record<string, string>;
  workers: WorkerProcess[];
  startWorker(extraEnv?: Record<string, string>): Promise<WorkerProcess>;
  queue(name: string): Queue;
  events(name: string): Promise<QueueEvents>;
  close(): Promise<void>;
}

export interface FleetOptions {
  simArgs?: string[];
  env?: Record<string, string>;
}

export async function startFleet(options: FleetOptions = {}): Promise<Fleet> {
  const dir = mkdtempSync(join(tmpdir(), 'jcds-fleet-'));
  const redis = await startRedis();
  const sim = await spawnSimulator({ dataDir: join(dir, 'sim'), args: options.simArgs ?? [] });
  const env: Record<string, string> = {
    ...jamfEnv(sim.info),
    REDIS_URL: redis.url,
    JCDS_FLEET_SECRET: 'test-fleet-secret-0123456789',
    LOG_LEVEL: 'info',
    JCDS_VERIFY_TIMEOUT: '60000',
    JCDS_LOCK_DURATION: '5000',
    JCDS_STALLED_INTERVAL: '2000',
    // Downloads may be written anywhere in the fleet's own folder (the worker runs in ROOT).
    JCDS_DOWNLOAD_DIRS: dir,
    ...options.env,
  };
  const queues = new Map<string, Queue>();
  const events: QueueEvents[] = [];
  const workers: WorkerProcess[] = [];

  const startWorker = async (extraEnv: Record<string, string> = {}): Promise<WorkerProcess> => {
    const proc = spawn(process.execPath, [...workerNodeFlags(), join(ROOT, 'worker/main.ts')], {
      cwd: ROOT,
      env: { ...process.env, ...env, ...extraEnv },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    const onData = (b: Buffer): void => {
      out += b.toString();
      if (out.length > 2_000_000) out = out.slice(-1_000_000);
    };
    proc.stdout?.on('data', onData);
    proc.stderr?.on('data', onData);
    const exited = new Promise<number | string | null>(resolve =>
      proc.once('exit', (code, sig) => resolve(code ?? sig)),
    );
    const deadline = Date.now() + 20_000;
    while (!out.includes('worker ready')) {
      if (proc.exitCode !== null)
        throw new Error(`worker exited at start (${proc.exitCode}):\n${out}`);
      if (Date.now() > deadline) throw new Error(`worker did not become ready:\n${out}`);
      await sleep(50);
    }
    const w: WorkerProcess = {
      proc,
      pid: proc.pid!,
      exited,
      logs: () => out,
      kill: async (signal = 'SIGKILL') => {
        if (proc.exitCode !== null || proc.signalCode !== null) return;
        proc.kill(signal);
        await exited;
      },
    };
    workers.push(w);
    return w;
  };

  return {
    redis,
    sim,
    dir,
    env,
    workers,
    startWorker,
    queue: name => {
      let q = queues.get(name);
      if (!q) {
        q = new Queue(name, {
          connection: { host: '127.0.0.1', port: redis.port },
          prefix: QUEUE_PREFIX,
        });
        queues.set(name, q);
      }
      return q;
    },
    events: async name => {
      const e = new QueueEvents(name, {
        connection: { host: '127.0.0.1', port: redis.port },
        prefix: QUEUE_PREFIX,
      });
      await e.waitUntilReady();
      events.push(e);
      return e;
    },
    close: async () => {
      await Promise.allSettled(workers.map(w => w.kill('SIGKILL')));
      await Promise.allSettled([...queues.values()].map(q => q.close()));
      await Promise.allSettled(events.map(e => e.close()));
      await sim.stop().catch(() => undefined);
      await redis.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Writes `size` random bytes to a file (streamed) and returns its path and hashes. */
export async function makeFile(
  dir: string,
  name: string,
  size: number,
): Promise<{ path: string; md5: string; sha3_512: string; sha256: string }> {
  const path = join(dir, name);
  const md5 = createHash('md5');
  const sha3 = createHash('sha3-512');
  const sha256 = createHash('sha256');
  const out = createWriteStream(path);
  const chunk = 4 << 20;
  for (let done = 0; done < size;) {
    const n = Math.min(chunk, size - done);
    const b = randomBytes(n);
    md5.update(b);
    sha3.update(b);
    sha256.update(b);
    if (!out.write(b)) await once(out, 'drain');
    done += n;
  }
  out.end();
  await once(out, 'finish');
  return {
    path,
    md5: md5.digest('hex'),
    sha3_512: sha3.digest('hex'),
    sha256: sha256.digest('hex'),
  };
}

/**
 * Waits until a job is completed or failed; returns it as it is then. Redis errors (a
 * fault test may have Redis down for a while) count as "not yet" until the deadline.
 */
export async function waitForJob(queue: Queue, jobId: string, timeoutMs = 120_000): Promise<Job> {
  const deadline = Date.now() + timeoutMs;
  let last: string;
  for (;;) {
    try {
      // The state first, then the job: a job read before it finished has no returnvalue
      // or failedReason, and completed and failed are final.
      last = await queue.getJobState(jobId);
      if (last === 'completed' || last === 'failed') {
        const job = await Job.fromId(queue, jobId);
        if (job) return job;
        last = 'removed';
      }
    } catch (err) {
      last = `redis error: ${(err as Error).message}`;
    }
    if (Date.now() > deadline)
      throw new Error(`job ${jobId} did not finish within ${timeoutMs} ms (last: ${last})`);
    await sleep(100);
  }
}
