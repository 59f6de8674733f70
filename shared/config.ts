/**
 * The environment, parsed once. Nothing else in the product reads process.env.
 * An invalid environment produces one ConfigError that lists every missing or invalid
 * variable and says what it should be.
 */
import { delimiter, isAbsolute, resolve } from 'node:path';
import { ConfigError } from './errors.ts';
import { redisTarget } from './queues/connection.ts';
import { hasCredentials, isLoopbackHost, withoutCredentials } from './url-credentials.ts';
import { MiB, parseBytes } from './units.ts';
import { MIN_PART_SIZE } from './upload/part-plan.ts';
import { DEFAULT_WORKER_HEAP_MIB } from './worker-flags.ts';

export type Transport = 'auto' | 's3' | 'package-upload';

export interface JamfAuthConfig {
  kind: 'oauth' | 'user';
  /** OAuth client id, or the user name. */
  id: string;
  /** OAuth client secret, or the password. Never logged. */
  secret: string;
}

export interface Config {
  jamfUrl: string | undefined;
  jamfAuth: JamfAuthConfig | undefined;
  redisUrl: string;
  fleetSecret: string | undefined;
  /** The fleet's previous secret during a rotation: read, never written with. Never logged. */
  fleetSecretPrevious: string | undefined;
  transport: Transport;
  partSize: number;
  splitThreshold: number;
  s3Endpoint: string | undefined;
  logLevel: string;
  monitorUser: string | undefined;
  monitorPassword: string | undefined;
  /** MONITOR_ALLOW_WRITES: the dashboard may retry, remove, clean, pause and add jobs. */
  monitorAllowWrites: boolean;
  /** Max concurrent HTTP requests to Jamf per process (Jamf's guidance is 5). */
  jamfConcurrency: number;
  /** Upload/download/sync jobs processed at once per worker process. */
  workerConcurrency: number;
  /** Part jobs processed at once per worker process. */
  partConcurrency: number;
  /** V8 old-space cap of a worker process started by `jcds worker` (MiB). */
  workerHeapMib: number;
  /** Part jobs in flight across the whole fleet (BullMQ global concurrency). */
  globalPartConcurrency: number;
  /** BullMQ lock duration (ms): a dead worker's job is taken over after about this long. */
  lockDurationMs: number;
  /** BullMQ stalled-job check interval (ms). */
  stalledIntervalMs: number;
  /** How long finalize polls Jamf for the stored file's hash (ms). */
  verifyTimeoutMs: number;
  /** Attempts of one part job before it fails for good. */
  partAttempts: number;
  /** First retry delay of a failed job (ms); doubles per attempt, with jitter. */
  retryDelayMs: number;
  /** On SIGTERM, how long a worker lets jobs in flight finish before it releases them (ms). */
  shutdownGraceMs: number;
  /**
   * JCDS_DOWNLOAD_DIRS: the folders a worker writes downloads to (absolute; default its
   * working directory). Download job data is input: a destination elsewhere is refused.
   */
  downloadDirs: readonly string[];
  /**
   * JCDS_ALLOW_REDIS_EVICTION: a worker starts (with a warning) on a Redis whose
   * maxmemory-policy is not noeviction, or cannot be read.
   */
  allowRedisEviction: boolean;
}

export const DEFAULT_PART_SIZE = 16 * MiB;
export const DEFAULT_SPLIT_THRESHOLD = 64 * MiB;

/** What each variable means, for error messages and the README's reference. */
export const ENV_DOC: Record<string, string> = {
  JAMF_URL: 'the Jamf Pro base URL, e.g. https://example.jamfcloud.com',
  JAMF_CLIENT_ID: 'an API client id (with JAMF_CLIENT_SECRET)',
  JAMF_CLIENT_SECRET: 'the API client secret (with JAMF_CLIENT_ID)',
  JAMF_USERNAME: 'a Jamf Pro user name (with JAMF_PASSWORD), instead of an API client',
  JAMF_PASSWORD: 'the password of JAMF_USERNAME',
  REDIS_URL:
    'redis://[:password@]host:port[/db] or unix:///path/to/redis.sock[?db=N&password=…] (default redis://127.0.0.1:6379)',
  JCDS_FLEET_SECRET: 'a secret of at least 16 characters that encrypts S3 credentials in Redis',
  JCDS_FLEET_SECRET_PREVIOUS:
    'during a rotation, the fleet secret being replaced (read, never written with; README "Rotating the fleet secret")',
  JCDS_TRANSPORT: 'auto, s3 or package-upload (default auto)',
  JCDS_PART_SIZE: 'multipart part size, bytes or with a unit, at least 5MiB (default 16MiB)',
  JCDS_SPLIT_THRESHOLD: 'files at least this large are split into part jobs (default 64MiB)',
  JCDS_JAMF_CONCURRENCY: 'max concurrent requests to Jamf per process (default 5)',
  JCDS_WORKER_CONCURRENCY: 'upload, download and sync jobs per worker process (default 4)',
  JCDS_PART_CONCURRENCY: 'part jobs per worker process (default 4)',
  JCDS_WORKER_HEAP_MIB:
    'V8 old-space cap of a worker started by jcds worker, MiB, 64 to 65536 (default 128)',
  JCDS_GLOBAL_PART_CONCURRENCY: 'part jobs in flight across the fleet (default 32)',
  JCDS_LOCK_DURATION:
    'job lock duration in ms; jobs of a dead worker move on after about this long (default 60000)',
  JCDS_STALLED_INTERVAL: 'stalled-job check interval in ms (default 30000)',
  JCDS_VERIFY_TIMEOUT:
    'how long to wait until Jamf reports the stored file as verified (hash, size, READY), in ms (default 1800000: 30 min)',
  JCDS_PART_ATTEMPTS: 'attempts of one part before the upload fails (default 6)',
  JCDS_RETRY_DELAY: 'first retry delay of a failed job in ms, doubled per attempt (default 1000)',
  JCDS_SHUTDOWN_GRACE_MS:
    'on SIGTERM, how long a worker lets jobs in flight finish, in ms, 0 to 3600000 (default 30000)',
  JCDS_DOWNLOAD_DIRS: `the folders workers may write downloads to, absolute paths separated by "${delimiter}" (default: the worker's working directory; / allows any)`,
  JCDS_ALLOW_REDIS_EVICTION:
    '1 to let a worker start on a Redis whose maxmemory-policy is not noeviction (jobs may be lost; default 0)',
  JCDS_ALLOW_INSECURE_JAMF:
    '1, or the host names (comma-separated), allowed as a plain http:// JAMF_URL other than loopback (the client secret travels in clear; default none)',
  AWS_ENDPOINT_URL_S3: 'an S3 endpoint override, path-style (the simulator, a test S3)',
  LOG_LEVEL: 'fatal, error, warn, info, debug or trace (default info)',
  MONITOR_USER: 'monitor basic-auth user (with MONITOR_PASSWORD)',
  MONITOR_PASSWORD: 'monitor basic-auth password (with MONITOR_USER)',
  MONITOR_ALLOW_WRITES:
    '1 to let the dashboard retry, remove, clean, pause and add jobs, as --allow-writes (default 0: read-only)',
};

export interface LoadConfigOptions {
  /** Require Jamf URL and credentials (producers that only enqueue do not need them). */
  requireJamf?: boolean;
  /**
   * Require JCDS_FLEET_SECRET: `true`, or `'s3'` for a worker, which needs it unless
   * JCDS_TRANSPORT is package-upload (auto may choose s3).
   */
  requireSecret?: boolean | 's3';
}

type Env = Record<string, string | undefined>;

/**
 * JCDS_DOWNLOAD_DIRS: absolute folders separated by the platform's path delimiter (":"),
 * normalized; unset means the working directory. Relative entries are refused (a worker's
 * working directory is not where the operator thinks it is).
 */
export function parseDownloadDirs(
  text: string | undefined,
  bad: (name: string, value: string, why: string) => void,
): string[] {
  if (text === undefined) return [process.cwd()];
  const dirs = text
    .split(delimiter)
    .map(s => s.trim())
    .filter(s => s !== '');
  const relative = dirs.filter(d => !isAbsolute(d));
  if (dirs.length === 0 || relative.length > 0) {
    bad(
      'JCDS_DOWNLOAD_DIRS',
      text,
      relative.length > 0 ? `${relative.join(', ')} is not absolute` : 'no folder',
    );
    return [process.cwd()];
  }
  return dirs.map(d => resolve(d));
}

function httpUrl(value: string): boolean {
  try {
    const u = new URL(value);
    return u.protocol === 'http:' || u.protocol === 'https:';
  } catch {
    return false;
  }
}

export function loadConfig(env: Env = process.env, options: LoadConfigOptions = {}): Config {
  const problems: string[] = [];
  const get = (name: string): string | undefined => {
    const v = env[name];
    return v === undefined || v.trim() === '' ? undefined : v.trim();
  };
  const bad = (name: string, value: string | undefined, why?: string): void => {
    // A URL may carry a password (REDIS_URL): never echo it.
    const shown =
      value === undefined ? 'is not set' : `is ${JSON.stringify(withoutCredentials(value))}`;
    problems.push(
      `${name} ${shown}${why ? ` (${why})` : ''}: set it to ${ENV_DOC[name] ?? 'a valid value'}`,
    );
  };

  const flag = (name: string): boolean => {
    const text = get(name)?.toLowerCase();
    if (text === undefined || ['0', 'false', 'no'].includes(text)) return false;
    if (['1', 'true', 'yes'].includes(text)) return true;
    bad(name, text, 'not 1 or 0');
    return false;
  };

  const jamfUrl = get('JAMF_URL');
  if (jamfUrl !== undefined && !httpUrl(jamfUrl)) bad('JAMF_URL', jamfUrl, 'not an http(s) URL');
  else if (jamfUrl !== undefined && hasCredentials(jamfUrl))
    problems.push(
      `JAMF_URL is ${JSON.stringify(withoutCredentials(jamfUrl))} (it carries a user name or password): set it to the Jamf Pro base URL without them; Jamf credentials go in JAMF_CLIENT_ID and JAMF_CLIENT_SECRET (or JAMF_USERNAME and JAMF_PASSWORD)`,
    );
  else if (jamfUrl !== undefined) {
    const insecure = insecureJamf(jamfUrl, get('JCDS_ALLOW_INSECURE_JAMF'));
    if (insecure) problems.push(insecure);
  }
  if (jamfUrl === undefined && options.requireJamf) bad('JAMF_URL', undefined);

  const clientId = get('JAMF_CLIENT_ID');
  const clientSecret = env['JAMF_CLIENT_SECRET'];
  const username = get('JAMF_USERNAME');
  const password = env['JAMF_PASSWORD'];
  let jamfAuth: JamfAuthConfig | undefined;
  if (clientId !== undefined || clientSecret) {
    if (clientId === undefined)
      bad('JAMF_CLIENT_ID', undefined, 'JAMF_CLIENT_SECRET is set without it');
    else if (!clientSecret)
      problems.push(`JAMF_CLIENT_SECRET is not set: set it to ${ENV_DOC['JAMF_CLIENT_SECRET']}`);
    else jamfAuth = { kind: 'oauth', id: clientId, secret: clientSecret };
  } else if (username !== undefined || password) {
    if (username === undefined) bad('JAMF_USERNAME', undefined, 'JAMF_PASSWORD is set without it');
    else if (!password)
      problems.push(`JAMF_PASSWORD is not set: set it to ${ENV_DOC['JAMF_PASSWORD']}`);
    else jamfAuth = { kind: 'user', id: username, secret: password };
  } else if (options.requireJamf) {
    problems.push(
      'Jamf credentials are not set: set JAMF_CLIENT_ID and JAMF_CLIENT_SECRET (an API client), or JAMF_USERNAME and JAMF_PASSWORD',
    );
  }

  const redisUrl = get('REDIS_URL') ?? 'redis://127.0.0.1:6379';
  if (!/^(rediss?|unix):\/\//.test(redisUrl))
    bad('REDIS_URL', redisUrl, 'not a redis:// or unix:// URL');
  else {
    try {
      redisTarget(redisUrl);
    } catch (err) {
      const why = err instanceof TypeError ? '' : `: ${(err as Error).message}`;
      bad('REDIS_URL', redisUrl, `not a valid URL${why}`);
    }
  }
  const allowRedisEviction = flag('JCDS_ALLOW_REDIS_EVICTION');

  const transportText = get('JCDS_TRANSPORT') ?? 'auto';
  let transport: Transport = 'auto';
  if (transportText === 'auto' || transportText === 's3' || transportText === 'package-upload')
    transport = transportText;
  else bad('JCDS_TRANSPORT', transportText);

  const fleetSecret = env['JCDS_FLEET_SECRET'] || undefined;
  const secretNeeded =
    options.requireSecret === true ||
    (options.requireSecret === 's3' && transport !== 'package-upload');
  if (fleetSecret !== undefined && fleetSecret.length < 16) {
    problems.push(
      `JCDS_FLEET_SECRET is too short (${fleetSecret.length} characters): set it to ${ENV_DOC['JCDS_FLEET_SECRET']}`,
    );
  } else if (fleetSecret === undefined && secretNeeded) {
    bad('JCDS_FLEET_SECRET', undefined, `needed with JCDS_TRANSPORT=${transport}`);
  }
  const fleetSecretPrevious = env['JCDS_FLEET_SECRET_PREVIOUS'] || undefined;
  if (fleetSecretPrevious !== undefined) {
    if (fleetSecretPrevious.length < 16) {
      problems.push(
        `JCDS_FLEET_SECRET_PREVIOUS is too short (${fleetSecretPrevious.length} characters): set it to the fleet secret being replaced (16+ characters), or unset it`,
      );
    } else if (fleetSecret === undefined) {
      problems.push(
        'JCDS_FLEET_SECRET_PREVIOUS is set without JCDS_FLEET_SECRET: set JCDS_FLEET_SECRET to the new secret (README "Rotating the fleet secret")',
      );
    } else if (fleetSecretPrevious === fleetSecret) {
      problems.push(
        'JCDS_FLEET_SECRET_PREVIOUS is the same as JCDS_FLEET_SECRET: set it to the secret being replaced, or unset it',
      );
    }
  }

  const size = (name: string, dflt: number, min: number): number => {
    const text = get(name);
    if (text === undefined) return dflt;
    const n = parseBytes(text);
    if (n === undefined) {
      bad(name, text, 'not a size');
      return dflt;
    }
    if (n < min) {
      bad(name, text, `below the minimum of ${min} bytes`);
      return dflt;
    }
    return n;
  };
  const partSize = size('JCDS_PART_SIZE', DEFAULT_PART_SIZE, MIN_PART_SIZE);
  const splitThreshold = size('JCDS_SPLIT_THRESHOLD', DEFAULT_SPLIT_THRESHOLD, 1);

  const int = (name: string, dflt: number, min: number, max: number): number => {
    const text = get(name);
    if (text === undefined) return dflt;
    const n = Number(text);
    if (!Number.isInteger(n) || n < min || n > max) {
      bad(name, text, `not a whole number from ${min} to ${max}`);
      return dflt;
    }
    return n;
  };
  const jamfConcurrency = int('JCDS_JAMF_CONCURRENCY', 5, 1, 100);
  const workerConcurrency = int('JCDS_WORKER_CONCURRENCY', 4, 1, 1000);
  const partConcurrency = int('JCDS_PART_CONCURRENCY', 4, 1, 1000);
  const workerHeapMib = int('JCDS_WORKER_HEAP_MIB', DEFAULT_WORKER_HEAP_MIB, 64, 65_536);
  const globalPartConcurrency = int('JCDS_GLOBAL_PART_CONCURRENCY', 32, 1, 100_000);
  const lockDurationMs = int('JCDS_LOCK_DURATION', 60_000, 1_000, 3_600_000);
  const stalledIntervalMs = int('JCDS_STALLED_INTERVAL', 30_000, 500, 3_600_000);
  const verifyTimeoutMs = int('JCDS_VERIFY_TIMEOUT', 1_800_000, 1_000, 86_400_000);
  const partAttempts = int('JCDS_PART_ATTEMPTS', 6, 1, 100);
  const retryDelayMs = int('JCDS_RETRY_DELAY', 1_000, 10, 3_600_000);
  const shutdownGraceMs = int('JCDS_SHUTDOWN_GRACE_MS', 30_000, 0, 3_600_000);

  const downloadDirs = parseDownloadDirs(get('JCDS_DOWNLOAD_DIRS'), bad);

  const s3Endpoint = get('AWS_ENDPOINT_URL_S3');
  if (s3Endpoint !== undefined && !httpUrl(s3Endpoint))
    bad('AWS_ENDPOINT_URL_S3', s3Endpoint, 'not an http(s) URL');

  const logLevel = get('LOG_LEVEL') ?? 'info';
  if (!['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].includes(logLevel))
    bad('LOG_LEVEL', logLevel);

  const monitorUser = get('MONITOR_USER');
  const monitorPassword = env['MONITOR_PASSWORD'] || undefined;
  if ((monitorUser === undefined) !== (monitorPassword === undefined)) {
    problems.push('MONITOR_USER and MONITOR_PASSWORD must be set together (or neither)');
  }
  const monitorAllowWrites = flag('MONITOR_ALLOW_WRITES');

  if (problems.length > 0) {
    throw new ConfigError(
      'CONFIG_INVALID',
      `The environment is not valid:\n${problems.map(p => `  - ${p}`).join('\n')}`,
      { details: { problems } },
    );
  }
  return Object.freeze({
    jamfUrl: jamfUrl?.replace(/\/+$/, ''),
    jamfAuth,
    redisUrl,
    fleetSecret,
    fleetSecretPrevious,
    transport,
    partSize,
    splitThreshold,
    s3Endpoint,
    logLevel,
    monitorUser,
    monitorPassword,
    monitorAllowWrites,
    jamfConcurrency,
    workerConcurrency,
    partConcurrency,
    workerHeapMib,
    globalPartConcurrency,
    lockDurationMs,
    stalledIntervalMs,
    verifyTimeoutMs,
    partAttempts,
    retryDelayMs,
    shutdownGraceMs,
    downloadDirs,
    allowRedisEviction,
  });
}

/**
 * A JAMF_URL over plain http sends the client secret (and every bearer token) in clear,
 * so it is refused unless the host is this machine (the simulator, a local proxy) or
 * JCDS_ALLOW_INSECURE_JAMF allows it: `1` for any host, or a list of host names (the
 * compose file names its simulator, so a real Jamf Pro typed with http:// is still refused
 * there). Returns the problem, or undefined when the URL is fine.
 */
function insecureJamf(jamfUrl: string, allow: string | undefined): string | undefined {
  const u = new URL(jamfUrl);
  if (u.protocol !== 'http:' || isLoopbackHost(u.hostname)) return undefined;
  const allowed = (allow ?? '')
    .toLowerCase()
    .split(',')
    .map(h => h.trim())
    .filter(Boolean);
  if (allowed.some(a => ['1', 'true', 'yes'].includes(a)) || allowed.includes(u.hostname))
    return undefined;
  return `JAMF_URL is ${JSON.stringify(withoutCredentials(jamfUrl))} (plain http:// to ${u.hostname} would send the Jamf client secret and bearer tokens in clear): set it to https://${u.host}${u.pathname === '/' ? '' : u.pathname} (Jamf Pro serves https), or set JCDS_ALLOW_INSECURE_JAMF=${u.hostname} if this host is a test server you trust (http is allowed without it only to loopback: 127.0.0.0/8, ::1, localhost)`;
}
