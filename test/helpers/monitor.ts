/**
 * The monitor as a real process (`node worker/monitor/main.ts --port 0 …`), and raw HTTP
 * to it: node:http, so a test sets any header a browser or an attacker would (Origin,
 * Sec-Fetch-Site, Host, Content-Type) and the source address of the connection (any
 * 127.x.y.z, to be another client as far as the monitor can tell).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { request as httpRequest } from 'node:http';
import { join } from 'node:path';
import { ROOT } from './fleet.ts';

export interface Monitor {
  proc: ChildProcess;
  /** http://127.0.0.1:PORT */
  url: string;
  /** http://127.0.0.1:PORT/queues/ */
  dashboard: string;
  output(): string;
  stop(): Promise<void>;
}

export async function startMonitor(
  env: Record<string, string>,
  args: string[] = [],
): Promise<Monitor> {
  const proc = spawn(
    process.execPath,
    [join(ROOT, 'worker/monitor/main.ts'), '--port', '0', ...args],
    {
      cwd: ROOT,
      env: { PATH: process.env['PATH'] ?? '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let out = '';
  proc.stdout?.on('data', (b: Buffer) => (out += b.toString()));
  proc.stderr?.on('data', (b: Buffer) => (out += b.toString()));
  const exited = new Promise<void>(resolve => proc.once('exit', () => resolve()));
  const deadline = Date.now() + 30_000;
  let m: RegExpExecArray | null;
  while (!(m = /Dashboard: (http:\/\/\S+)/.exec(out))) {
    if (proc.exitCode !== null) throw new Error(`monitor exited (${proc.exitCode}):\n${out}`);
    if (Date.now() > deadline) throw new Error(`monitor did not start:\n${out}`);
    await new Promise(r => setTimeout(r, 50));
  }
  const dashboard = m[1]!;
  return {
    proc,
    dashboard,
    url: dashboard.replace(/\/queues\/$/, ''),
    output: () => out,
    stop: async () => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
      await exited;
    },
  };
}

export const basicAuth = (user: string, password: string): Record<string, string> => ({
  Authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`,
});

export interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json(): unknown;
}

export interface RawRequest {
  method?: string;
  headers?: Record<string, string>;
  body?: string;
  /** The connection's source address (e.g. 127.0.0.7). */
  from?: string;
}

/** One HTTP request with exactly the headers given (plus Host and Content-Length). */
export function raw(url: string, options: RawRequest = {}): Promise<RawResponse> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: u.hostname,
        port: u.port,
        path: `${u.pathname}${u.search}`,
        method: options.method ?? 'GET',
        headers: {
          ...(options.body !== undefined
            ? { 'Content-Length': String(Buffer.byteLength(options.body)) }
            : {}),
          ...options.headers,
        },
        ...(options.from ? { localAddress: options.from } : {}),
        agent: false,
      },
      res => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            text,
            json: () => JSON.parse(text) as unknown,
          });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}
