/**
 * Redis connections. Workers need `maxRetriesPerRequest: null` (blocking commands) and
 * reconnect forever; producers fail fast so that a down Redis gives a clear error
 * instead of a hang (bullmq "failing fast when Redis is down").
 */
import { Redis, type RedisOptions } from 'ioredis';
import { AppError } from '../errors.ts';

export type ConnectionRole = 'worker' | 'producer';

export function redisOptions(url: string, role: ConnectionRole): RedisOptions {
  const base: RedisOptions = url.startsWith('unix://')
    ? { path: new URL(url).pathname }
    : (() => {
        const u = new URL(url);
        const o: RedisOptions = {
          host: u.hostname || '127.0.0.1',
          port: u.port ? Number(u.port) : 6379,
        };
        if (u.username) o.username = decodeURIComponent(u.username);
        if (u.password) o.password = decodeURIComponent(u.password);
        const db = u.pathname.replace('/', '');
        if (db) o.db = Number(db);
        if (u.protocol === 'rediss:') o.tls = {};
        return o;
      })();
  if (role === 'worker') {
    return {
      ...base,
      maxRetriesPerRequest: null,
      enableReadyCheck: true,
      // Reconnect forever with a capped backoff: a Redis restart must not end a worker.
      retryStrategy: times => Math.min(times * 200, 2_000),
    };
  }
  return {
    ...base,
    maxRetriesPerRequest: 1,
    enableOfflineQueue: false,
    connectTimeout: 5_000,
    retryStrategy: times => (times > 2 ? null : 200),
  };
}

/** Where a Redis URL points, without its password, for messages. */
export function describeRedisUrl(url: string): string {
  try {
    const u = new URL(url);
    u.password = '';
    u.username = '';
    return u.toString();
  } catch {
    return '(invalid REDIS_URL)';
  }
}

/** True for errors that mean the Redis connection is gone (not a command error). */
export function isConnectionError(err: unknown): boolean {
  const message = err instanceof Error ? err.message : String(err);
  return /Stream isn't writeable|Connection is closed|ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|max retries per request|Reached the max retries/i.test(
    message,
  );
}

/** Connects a producer client and proves Redis answers, or throws REDIS_UNAVAILABLE. */
export async function connectProducer(url: string): Promise<Redis> {
  const client = new Redis({ ...redisOptions(url, 'producer'), lazyConnect: true });
  client.on('error', () => {
    /* reported through the connect/ping rejection below */
  });
  try {
    await client.connect();
    await client.ping();
    return client;
  } catch (err) {
    client.disconnect();
    throw new AppError(
      'REDIS_UNAVAILABLE',
      `Cannot reach Redis at ${describeRedisUrl(url)} (${(err as Error).message}). Check that redis-server is running and REDIS_URL is right; nothing was enqueued.`,
      { cause: err },
    );
  }
}
