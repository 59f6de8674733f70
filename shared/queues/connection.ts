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
  // The socket error says why (ECONNREFUSED, ENOTFOUND...); the rejection below only
  // says "Connection is closed" once the retries are spent.
  let socketError: NodeJS.ErrnoException | undefined;
  client.on('error', (err: NodeJS.ErrnoException) => {
    socketError ??= err;
  });
  try {
    await client.connect();
    await client.ping();
    return client;
  } catch (err) {
    client.disconnect();
    const where = describeRedisUrl(url);
    const cause = socketError ?? (err as NodeJS.ErrnoException);
    const host = (() => {
      try {
        const u = new URL(url);
        return u.protocol === 'unix:' ? u.pathname : `${u.hostname}:${u.port || 6379}`;
      } catch {
        return where;
      }
    })();
    const why =
      cause.code === 'ECONNREFUSED'
        ? `connection refused (ECONNREFUSED): nothing listens on ${host}. Check that redis-server is running there and REDIS_URL's port is right`
        : cause.code === 'ENOTFOUND' || cause.code === 'EAI_AGAIN'
          ? `the host name does not resolve (${cause.code}): check the host in REDIS_URL and this machine's DNS (is redis-server running on the host you meant?)`
          : cause.code === 'ETIMEDOUT' || /timed? ?out/i.test(cause.message)
            ? `no answer (timeout): check that redis-server is running, and the network and firewall between here and ${host}`
            : cause.code === 'ENOENT'
              ? `no socket at ${host} (ENOENT): check that redis-server is running and its unixsocket setting`
              : `${cause.message.replace(/\.+$/, '')}. Check that redis-server is running and REDIS_URL is right`;
    throw new AppError(
      'REDIS_UNAVAILABLE',
      `Cannot reach Redis at ${where}: ${why}; nothing was enqueued.`,
      {
        cause: err,
      },
    );
  }
}
