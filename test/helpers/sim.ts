/**
 * Test harness for the Jamf Pro + JCDS simulator: spawns `node test/sim/main.ts --port 0
 * --data-dir <tmp>` (or `npm run sim -- …`) as a child process, waits for its JSON ready
 * line, and drives its /__sim control endpoints. The child gets --exit-on-stdin-close, so it
 * goes away with the test process even if afterAll never runs.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import type { Counters, Faults } from '../sim/types.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const LOG_LINES_KEPT = 300;

/** The ready line the simulator prints first on stdout. */
export interface SimInfo {
  jamfUrl: string;
  s3Endpoint: string;
  clientId: string;
  clientSecret: string;
  username: string;
  password: string;
  controlUrl: string;
  bucket: string;
  region: string;
  jcdsPath: string;
  dataDir: string;
  pid: number;
}

export interface SpawnSimulatorOptions {
  /** Data dir to use (kept by stop()); default: a new temp dir that stop() removes. */
  dataDir?: string;
  port?: number;
  s3Port?: number;
  tokenTtl?: number;
  oauthTtl?: number;
  credentialTtl?: number;
  /** --presign-ttl: the former name of --download-url-ttl. */
  presignTtl?: number;
  /** --download-url-ttl: lifetime of the JCDS download URLs (default 300 s). */
  downloadUrlTtl?: number;
  /** --processing-ms: delay from an upload to Jamf's processing of it (default 300). */
  processingMs?: number;
  /** --cdn-type (default JAMF_CLOUD). */
  cdnType?: SimCdnType;
  /** True passes --deprecation-header. */
  deprecationHeader?: boolean;
  /** False passes --no-jcds. */
  jcds?: boolean;
  logLevel?: string;
  /** More command-line arguments. */
  args?: string[];
  /** Spawn through `npm run sim -- …` instead of `node test/sim/main.ts …`. */
  viaNpm?: boolean;
  env?: NodeJS.ProcessEnv;
  /** @defaultValue 20000 */
  readyTimeoutMs?: number;
}

export interface SimCounters extends Counters {
  requestsWithoutCookie: number;
}

export type SimCdnType = 'JAMF_CLOUD' | 'AWS' | 'NONE';

/** The settings `PUT /__sim/settings` changes at run time. */
export interface SimSettings {
  cdnType: SimCdnType;
  deprecationHeader: boolean;
  processingMs: number;
  downloadUrlTtlSeconds: number;
  downloadUrlForm: 'cloudfront' | 's3-presigned';
  /** False: package records carry no `sha256` (a tenant that does not fill it). */
  packageSha256: boolean;
}

export interface MultipartUploadEntry {
  key: string;
  uploadId: string;
  initiated: string;
}

export interface SimControl {
  setFaults(
    partial: Partial<Record<keyof Faults, number | number[] | string | null>>,
  ): Promise<Faults>;
  clearFaults(): Promise<void>;
  faults(): Promise<Faults>;
  counters(): Promise<SimCounters>;
  resetCounters(): Promise<void>;
  expireCredentials(): Promise<void>;
  corrupt(fileName: string): Promise<void>;
  listMultipartUploads(): Promise<MultipartUploadEntry[]>;
  /** Resolves once S3 listens again. */
  restartS3(downMs?: number): Promise<void>;
  /** The raw package table. */
  packages(): Promise<Array<Record<string, unknown>>>;
  /** The run-time settings (PUT /__sim/settings: cdnType, deprecationHeader, …). */
  settings(): Promise<SimSettings>;
  /** Changes some run-time settings; answers all of them. */
  setSettings(partial: Partial<SimSettings>): Promise<SimSettings>;
  /**
   * Jamf Pro's "Rotate Client Secret": the API client's secret becomes `secret` (or a random
   * one), which is returned; tokens issued before stay valid until they expire.
   */
  rotateClientSecret(secret?: string): Promise<string>;
  /**
   * The role's privileges (test/sim/jamf/privileges.ts): `revoke`/`grant` some by their
   * Jamf Pro 11.20+ names (a request that needs a revoked one answers 403), `restore` all.
   */
  privileges: {
    get(): Promise<SimPrivileges>;
    revoke(...names: string[]): Promise<SimPrivileges>;
    grant(...names: string[]): Promise<SimPrivileges>;
    restore(): Promise<SimPrivileges>;
  };
}

export interface SimPrivileges {
  all: string[];
  granted: string[];
  revoked: string[];
}

export interface SpawnedSimulator {
  info: SimInfo;
  /** The simulator process id (not npm's, when spawned through npm). */
  pid: number;
  dataDir: string;
  control: SimControl;
  /** The last stderr lines (pino JSON). */
  logs(): string;
  /** Anything printed on stdout after the ready line (should stay empty). */
  extraStdout(): string[];
  /** SIGTERM, wait for exit (SIGKILL after 10 s), remove the data dir if the harness made it. */
  stop(): Promise<void>;
  /** Sends a signal (SIGKILL by default) and waits for the exit; the data dir stays. */
  kill(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Environment variables that point a jcds process at this simulator (OAuth client). */
export function jamfEnv(info: SimInfo): Record<string, string> {
  return {
    JAMF_URL: info.jamfUrl,
    JAMF_CLIENT_ID: info.clientId,
    JAMF_CLIENT_SECRET: info.clientSecret,
    AWS_ENDPOINT_URL_S3: info.s3Endpoint,
  };
}

/** An OAuth access token from the simulator (plain fetch; throws unless 200). */
export async function simToken(info: SimInfo): Promise<string> {
  const res = await fetch(`${info.jamfUrl}/api/v1/oauth/token`, {
    method: 'POST',
    body: new URLSearchParams({
      client_id: info.clientId,
      client_secret: info.clientSecret,
      grant_type: 'client_credentials',
    }),
  });
  if (res.status !== 200) throw new Error(`simulator token request answered ${res.status}`);
  return ((await res.json()) as { access_token: string }).access_token;
}

export type SimApi = (path: string, init?: RequestInit & { json?: unknown }) => Promise<Response>;

/** Plain fetch against the simulator's Jamf URL with a Bearer token; `json` sends a JSON body. */
export function simApi(info: SimInfo, token: string): SimApi {
  return (path, init = {}) => {
    const { json, ...rest } = init;
    const headers = new Headers(rest.headers);
    headers.set('Authorization', `Bearer ${token}`);
    let body = rest.body;
    if (json !== undefined) {
      headers.set('Content-Type', 'application/json');
      body = JSON.stringify(json);
    }
    return fetch(`${info.jamfUrl}${path}`, { ...rest, headers, body: body ?? null });
  };
}

function cliArgs(o: SpawnSimulatorOptions, dataDir: string): string[] {
  const args = ['--port', String(o.port ?? 0), '--data-dir', dataDir, '--exit-on-stdin-close'];
  const add = (flag: string, v: number | string | undefined): void => {
    if (v !== undefined) args.push(flag, String(v));
  };
  add('--s3-port', o.s3Port);
  add('--token-ttl', o.tokenTtl);
  add('--oauth-ttl', o.oauthTtl);
  add('--credential-ttl', o.credentialTtl);
  add('--presign-ttl', o.presignTtl);
  add('--download-url-ttl', o.downloadUrlTtl);
  add('--processing-ms', o.processingMs);
  add('--cdn-type', o.cdnType);
  if (o.deprecationHeader) args.push('--deprecation-header');
  add('--log-level', o.logLevel ?? 'warn');
  if (o.jcds === false) args.push('--no-jcds');
  return [...args, ...(o.args ?? [])];
}

function exitOf(
  child: ChildProcess,
): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null) {
    return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  }
  return new Promise(res => child.once('exit', (code, signal) => res({ code, signal })));
}

async function controlCall(
  info: SimInfo,
  method: string,
  path: string,
  body?: unknown,
): Promise<unknown> {
  const res = await fetch(`${info.controlUrl}${path}`, {
    method,
    ...(body === undefined
      ? {}
      : { body: JSON.stringify(body), headers: { 'Content-Type': 'application/json' } }),
  });
  const text = await res.text();
  if (!res.ok)
    throw new Error(`simulator control ${method} ${path} answered ${res.status}: ${text}`);
  return text ? (JSON.parse(text) as unknown) : undefined;
}

function makeControl(info: SimInfo): SimControl {
  return {
    setFaults: async partial => (await controlCall(info, 'PUT', '/faults', partial)) as Faults,
    clearFaults: async () => void (await controlCall(info, 'DELETE', '/faults')),
    faults: async () => (await controlCall(info, 'GET', '/faults')) as Faults,
    counters: async () => (await controlCall(info, 'GET', '/counters')) as SimCounters,
    resetCounters: async () => void (await controlCall(info, 'POST', '/counters/reset')),
    expireCredentials: async () => void (await controlCall(info, 'POST', '/expire-credentials')),
    corrupt: async fileName =>
      void (await controlCall(info, 'POST', `/corrupt?fileName=${encodeURIComponent(fileName)}`)),
    listMultipartUploads: async () =>
      (await controlCall(info, 'GET', '/multipart-uploads')) as MultipartUploadEntry[],
    restartS3: async (downMs = 0) =>
      void (await controlCall(info, 'POST', `/s3/restart?downMs=${downMs}`)),
    packages: async () =>
      (await controlCall(info, 'GET', '/packages')) as Array<Record<string, unknown>>,
    settings: async () => (await controlCall(info, 'GET', '/settings')) as SimSettings,
    setSettings: async partial =>
      (await controlCall(info, 'PUT', '/settings', partial)) as SimSettings,
    rotateClientSecret: async secret =>
      (
        (await controlCall(
          info,
          'POST',
          '/client/rotate-secret',
          secret === undefined ? {} : { clientSecret: secret },
        )) as { clientSecret: string }
      ).clientSecret,
    privileges: {
      get: async () => (await controlCall(info, 'GET', '/privileges')) as SimPrivileges,
      revoke: async (...names) =>
        (await controlCall(info, 'PUT', '/privileges', { revoke: names })) as SimPrivileges,
      grant: async (...names) =>
        (await controlCall(info, 'PUT', '/privileges', { grant: names })) as SimPrivileges,
      restore: async () => (await controlCall(info, 'DELETE', '/privileges')) as SimPrivileges,
    },
  };
}

export async function spawnSimulator(
  options: SpawnSimulatorOptions = {},
): Promise<SpawnedSimulator> {
  const ownDir = options.dataDir === undefined;
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'jcds-sim-'));
  const args = cliArgs(options, dataDir);
  const env = {
    ...process.env,
    ...options.env,
    // npm must find the same (new enough) node that runs the tests.
    PATH: `${dirname(process.execPath)}${delimiter}${process.env['PATH'] ?? ''}`,
  };
  const child = options.viaNpm
    ? spawn('npm', ['run', 'sim', '--', ...args], { cwd: ROOT, env, stdio: 'pipe' })
    : spawn(process.execPath, ['test/sim/main.ts', ...args], { cwd: ROOT, env, stdio: 'pipe' });

  const logLines: string[] = [];
  createInterface({ input: child.stderr! }).on('line', line => {
    logLines.push(line);
    if (logLines.length > LOG_LINES_KEPT) logLines.shift();
  });
  const extra: string[] = [];
  const exited = exitOf(child);

  const info = await new Promise<SimInfo>((resolveReady, reject) => {
    let ready = false;
    const timer = setTimeout(() => {
      reject(
        new Error(
          `simulator not ready in ${options.readyTimeoutMs ?? 20_000} ms:\n${logLines.join('\n')}`,
        ),
      );
      child.kill('SIGKILL');
    }, options.readyTimeoutMs ?? 20_000);
    createInterface({ input: child.stdout! }).on('line', line => {
      if (ready) {
        extra.push(line);
        return;
      }
      const trimmed = line.trim();
      // npm prints "> jcds-fleet@… sim" banner lines before the script's output.
      if (!trimmed.startsWith('{')) {
        if (!options.viaNpm) extra.push(line);
        return;
      }
      ready = true;
      clearTimeout(timer);
      try {
        resolveReady(JSON.parse(trimmed) as SimInfo);
      } catch (err) {
        reject(new Error(`simulator ready line is not JSON: ${trimmed}`, { cause: err }));
      }
    });
    void exited.then(({ code, signal }) => {
      if (ready) return;
      clearTimeout(timer);
      reject(
        new Error(
          `simulator exited (code ${code}, signal ${signal}) before its ready line:\n${logLines.join('\n')}`,
        ),
      );
    });
  }).catch((err: unknown) => {
    if (ownDir) rmSync(dataDir, { recursive: true, force: true });
    throw err;
  });

  const signalSim = (signal: NodeJS.Signals): void => {
    try {
      process.kill(info.pid, signal);
    } catch {
      // Already gone.
    }
  };

  const kill = async (signal: NodeJS.Signals = 'SIGKILL') => {
    signalSim(signal);
    return exited;
  };

  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopped ??= (async () => {
      signalSim('SIGTERM');
      const force = setTimeout(() => {
        signalSim('SIGKILL');
        child.kill('SIGKILL');
      }, 10_000);
      await exited;
      clearTimeout(force);
      if (ownDir) rmSync(dataDir, { recursive: true, force: true });
    })();
    return stopped;
  };

  return {
    info,
    pid: info.pid,
    dataDir,
    control: makeControl(info),
    logs: () => logLines.join('\n'),
    extraStdout: () => [...extra],
    stop,
    kill,
  };
}
