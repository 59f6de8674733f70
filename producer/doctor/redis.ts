/** The Redis checks: REDIS_URL answers (and its version), and the eviction policy. */
import { Redis } from 'ioredis';
import { describeError } from '../../shared/errors.ts';
import { describeRedisUrl, redisOptions } from '../../shared/queues/connection.ts';
import { failureText, withTimeout } from './helpers.ts';
import { failed, passed, warned, type CheckResult } from './report.ts';

const REDIS_FIX =
  'Start Redis, or point REDIS_URL at a running one (redis://[user:password@]host:port[/db]); a refused password shows as WRONGPASS/NOAUTH.';

/** Connects (a fail-fast producer connection) and reads the server version. */
export async function checkRedis(
  url: string,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<{ result: CheckResult; redis: Redis | undefined }> {
  const where = describeRedisUrl(url);
  const client = new Redis({
    ...redisOptions(url, 'producer'),
    lazyConnect: true,
    connectTimeout: timeoutMs,
    commandTimeout: timeoutMs,
  });
  // ioredis rejects connect() with "Connection is closed." once it gives up; the error
  // event had the reason (ECONNREFUSED, WRONGPASS, …).
  let lastError: unknown;
  client.on('error', (err: unknown) => {
    lastError ??= err;
  });
  try {
    await withTimeout(
      `Redis at ${where}`,
      timeoutMs,
      async () => {
        await client.connect();
        await client.ping();
      },
      signal,
    );
    const info = await withTimeout('INFO server', timeoutMs, () => client.info('server'), signal);
    const version = /^redis_version:(\S+)/m.exec(info)?.[1];
    const parsed = version ? /^(\d+)\.(\d+)/.exec(version) : null;
    const major = Number(parsed?.[1] ?? 0);
    const minor = Number(parsed?.[2] ?? 0);
    const found = `reachable at ${where}, Redis ${version ?? '(version unknown)'}`;
    if (parsed && major < 5) {
      return {
        result: failed(
          'redis',
          `${found}: BullMQ needs Redis 5.0 or later`,
          'Upgrade Redis (6.2 or later; 7.x recommended).',
        ),
        redis: client,
      };
    }
    if (parsed && (major < 6 || (major === 6 && minor < 2))) {
      return {
        result: warned(
          'redis',
          `${found}: BullMQ recommends 6.2 or later`,
          'Upgrade Redis to 6.2 or later (7.x recommended).',
        ),
        redis: client,
      };
    }
    return { result: passed('redis', found), redis: client };
  } catch (err) {
    client.disconnect();
    const reason =
      lastError !== undefined && /Connection is closed/i.test(describeError(err)) ? lastError : err;
    return {
      result: failed('redis', `cannot use Redis at ${where}: ${failureText(reason)}`, REDIS_FIX),
      redis: undefined,
    };
  }
}

const EVICTION_FIX =
  'Set maxmemory-policy to noeviction: `redis-cli -u "$REDIS_URL" CONFIG SET maxmemory-policy noeviction`, and `maxmemory-policy noeviction` in redis.conf so it survives a restart (a managed Redis: its parameter group or settings; ElastiCache Serverless cannot).';

/** maxmemory-policy must be noeviction: with eviction Redis may drop job data and locks. */
export async function checkRedisEviction(
  redis: Pick<Redis, 'config' | 'info'>,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<CheckResult> {
  let policy: string | undefined;
  let source = '';
  try {
    const answer = (await withTimeout(
      'CONFIG GET',
      timeoutMs,
      () => redis.config('GET', 'maxmemory-policy') as Promise<unknown>,
      signal,
    )) as unknown;
    if (Array.isArray(answer) && typeof answer[1] === 'string') policy = answer[1];
  } catch {
    // CONFIG is disabled or renamed (managed Redis): INFO memory has the policy too.
  }
  if (policy === undefined) {
    try {
      const info = await withTimeout('INFO memory', timeoutMs, () => redis.info('memory'), signal);
      policy = /^maxmemory_policy:(\S+)/m.exec(info)?.[1];
      source = ' (read from INFO memory: CONFIG is not available)';
    } catch (err) {
      return warned(
        'redis-eviction',
        `cannot read maxmemory-policy (CONFIG GET and INFO memory failed: ${failureText(err)})`,
        'Make sure the Redis server runs with maxmemory-policy noeviction (BullMQ needs it).',
      );
    }
  }
  if (policy === undefined) {
    return warned(
      'redis-eviction',
      'cannot read maxmemory-policy (neither CONFIG GET nor INFO memory reports it)',
      'Make sure the Redis server runs with maxmemory-policy noeviction (BullMQ needs it).',
    );
  }
  if (policy === 'noeviction') {
    return passed('redis-eviction', `maxmemory-policy is noeviction${source}`);
  }
  return failed(
    'redis-eviction',
    `maxmemory-policy is ${policy}${source}; BullMQ needs noeviction: under memory pressure Redis would delete job data and locks, and uploads would be lost or run twice`,
    EVICTION_FIX,
  );
}
