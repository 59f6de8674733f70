/**
 * Spawns a real redis-server for integration tests, on an ephemeral TCP port on
 * 127.0.0.1 with its data in a temp dir (AOF on, so a kill/restart test keeps its data).
 * A missing redis-server fails the test loudly with the install command.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';

export interface RedisServer {
  url: string;
  port: number;
  dir: string;
  pid(): number | undefined;
  /** SIGKILL (default) or another signal; resolves when the process has exited. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Starts it again on the same port with the same data dir. */
  start(): Promise<void>;
  /** A fresh ioredis client (caller quits it). */
  client(): Redis;
  stop(): Promise<void>;
}

export function requireRedisServer(): string {
  const r = spawnSync('redis-server', ['--version'], { encoding: 'utf8' });
  if (r.error || r.status !== 0) {
    throw new Error(
      'redis-server is not installed: the integration tests need it. Install it with `apt-get install -y redis-server` (Debian) or `brew install redis` (macOS).',
    );
  }
  return r.stdout.trim();
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

export async function startRedis(options: { appendonly?: boolean } = {}): Promise<RedisServer> {
  requireRedisServer();
  const dir = mkdtempSync(join(tmpdir(), 'jcds-redis-'));
  const port = await freePort();
  let proc: ChildProcess | undefined;

  const start = async (): Promise<void> => {
    proc = spawn(
      'redis-server',
      [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--dir',
        dir,
        '--save',
        '',
        '--appendonly',
        options.appendonly === false ? 'no' : 'yes',
        '--appendfsync',
        'everysec',
        '--maxmemory-policy',
        'noeviction',
        '--logfile',
        join(dir, 'redis.log'),
      ],
      { stdio: 'ignore' },
    );
    const deadline = Date.now() + 10_000;
    for (;;) {
      const probe = new Redis({
        port,
        host: '127.0.0.1',
        lazyConnect: true,
        maxRetriesPerRequest: 0,
        retryStrategy: () => null,
      });
      probe.on('error', () => undefined);
      try {
        await probe.connect();
        await probe.ping();
        probe.disconnect();
        return;
      } catch {
        probe.disconnect();
        if (Date.now() > deadline)
          throw new Error(`redis-server did not start on port ${port}; see ${dir}/redis.log`);
        await sleep(25);
      }
    }
  };

  const kill = async (signal: NodeJS.Signals = 'SIGKILL'): Promise<void> => {
    const p = proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const exited = new Promise<void>(resolve => p.once('exit', () => resolve()));
    p.kill(signal);
    await exited;
  };

  await start();
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    dir,
    pid: () => proc?.pid,
    kill,
    start,
    client: () => new Redis({ port, host: '127.0.0.1', maxRetriesPerRequest: null }),
    stop: async () => {
      await kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
