/**
 * The environment, parsed once. Nothing else in the product reads process.env.
 * An invalid environment produces one ConfigError that lists every missing or invalid
 * variable and says what it should be.
 */
import { ConfigError } from './errors.ts';
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
  transport: Transport;
  partSize: number;
  splitThreshold: number;
  s3Endpoint: string | undefined;
  logLevel: string;
  monitorUser: string | undefined;
  monitorPassword: string | undefined;
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
    'redis://host:port[/db] or unix:///path/to/redis.sock (default redis://127.0.0.1:6379)',
  JCDS_FLEET_SECRET: 'a secret of at least 16 characters that encrypts S3 credentials in Redis',
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
  AWS_ENDPOINT_URL_S3: 'an S3 endpoint override, path-style (the simulator, a test S3)',
  LOG_LEVEL: 'fatal, error, warn, info, debug or trace (default info)',
  MONITOR_USER: 'monitor basic-auth user (with MONITOR_PASSWORD)',
  MONITOR_PASSWORD: 'monitor basic-auth password (with MONITOR_USER)',
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
    const shown = value === undefined ? 'is not set' : `is ${JSON.stringify(value)}`;
    problems.push(
      `${name} ${shown}${why ? ` (${why})` : ''}: set it to ${ENV_DOC[name] ?? 'a valid value'}`,
    );
  };

  const jamfUrl = get('JAMF_URL');
  if (jamfUrl !== undefined && !httpUrl(jamfUrl)) bad('JAMF_URL', jamfUrl, 'not an http(s) URL');
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
      new URL(redisUrl);
    } catch {
      bad('REDIS_URL', redisUrl, 'not a valid URL');
    }
  }

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
    transport,
    partSize,
    splitThreshold,
    s3Endpoint,
    logLevel,
    monitorUser,
    monitorPassword,
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
  });
}
