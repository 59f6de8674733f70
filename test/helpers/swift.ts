/**
 * OpenStack Swift with its s3api middleware, started by scripts/swift/swift-s3.sh in a
 * scratch folder on free loopback ports, as a real S3 for conformance tests. The script
 * stays in the foreground and stops its servers on SIGTERM or when its stdin closes, so
 * nothing outlives the test process. A missing Swift fails loudly with the install command.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './redis.ts';

const ROOT = new URL('../..', import.meta.url).pathname;
const SCRIPT = join(ROOT, 'scripts/swift/swift-s3.sh');

export const SWIFT_INSTALL =
  'apt-get install -y swift-proxy swift-object swift-container swift-account memcached';

export interface SwiftS3 {
  endpoint: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  dir: string;
  /** The launcher's output and the last lines of each server's log. */
  logs(): string;
  stop(): Promise<void>;
}

/** Throws with the install command when Swift or memcached is missing. */
export function requireSwift(): void {
  const py = spawnSync('/usr/bin/python3', ['-c', 'import swift.common.middleware.s3api'], {
    encoding: 'utf8',
  });
  const ring = spawnSync('sh', ['-c', 'command -v swift-ring-builder && command -v memcached'], {
    encoding: 'utf8',
  });
  if (py.status !== 0 || ring.status !== 0) {
    throw new Error(
      `OpenStack Swift (s3api) is not installed: the S3 conformance test needs it. Install it with \`${SWIFT_INSTALL}\`.`,
    );
  }
}

export async function startSwift(options: { readyTimeoutMs?: number } = {}): Promise<SwiftS3> {
  requireSwift();
  const dir = mkdtempSync(join(tmpdir(), 'jcds-swift-'));
  const ports: number[] = [];
  while (ports.length < 5) {
    const p = await freePort();
    if (!ports.includes(p)) ports.push(p);
  }
  const [proxy, object, container, account, memcached] = ports as [
    number,
    number,
    number,
    number,
    number,
  ];
  const timeoutMs = options.readyTimeoutMs ?? 90_000;
  const child: ChildProcess = spawn('bash', [SCRIPT], {
    env: {
      ...process.env,
      SWIFT_DIR: dir,
      PROXY_PORT: String(proxy),
      OBJECT_PORT: String(object),
      CONTAINER_PORT: String(container),
      ACCOUNT_PORT: String(account),
      MEMCACHED_PORT: String(memcached),
      SWIFT_READY_TIMEOUT: String(Math.ceil(timeoutMs / 1000)),
    },
    // stdin stays open: the script stops its servers when it closes.
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout?.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr?.on('data', (b: Buffer) => (out += b.toString()));
  const exited = new Promise<void>(resolve => child.once('exit', () => resolve()));
  const stopScript = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await exited;
    }
  };

  const deadline = Date.now() + timeoutMs + 5_000;
  while (!out.includes('swift s3api ready')) {
    if (child.exitCode !== null) {
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`Swift did not start (exit ${child.exitCode}):\n${out}`);
    }
    if (Date.now() > deadline) {
      await stopScript();
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`Swift was not ready within ${timeoutMs} ms:\n${out}`);
    }
    await new Promise(r => setTimeout(r, 100));
  }
  return {
    endpoint: `http://127.0.0.1:${proxy}`,
    region: 'us-east-1',
    accessKeyId: 'test:tester',
    secretAccessKey: 'testing',
    dir,
    logs: () => {
      let files;
      try {
        files = readdirSync(join(dir, 'log'), { withFileTypes: true }).filter(f => f.isFile());
      } catch {
        return out; // stopped: the folder is gone
      }
      const tails = files.map(f => {
        const lines = readFileSync(join(dir, 'log', f.name), 'utf8')
          .trimEnd()
          .split('\n');
        return `--- ${f.name}\n${lines.slice(-20).join('\n')}`;
      });
      return [out, ...tails].join('\n');
    },
    stop: async () => {
      await stopScript();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
