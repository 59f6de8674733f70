/**
 * Redis connections. Workers need `maxRetriesPerRequest: null` (blocking commands) and
 * reconnect forever; producers fail fast so that a down Redis gives a clear error
 * instead of a hang (bullmq "failing fast when Redis is down").
 */
import { Redis, type RedisOptions } from 'ioredis';
import { AppError } from '../errors.ts';

export type ConnectionRole = 'worker' | 'producer';

/**
 * A unix-socket REDIS_URL, in either form redis-py and others accept:
 *   unix:///run/redis/redis.sock?db=2&password=…[&username=…]
 *   unix://[user]:password@/run/redis/redis.sock?db=2
 * WHATWG URL refuses the second (userinfo without a host), so both are read by hand; the
 * password and db must not be dropped (an unauthenticated connection, or db 0 shared with
 * another application).
 */
function unixSocketOptions(url: string): RedisOptions {
  const m = /^unix:\/\/(?:(.*)@)?(\/[^?#]*)(?:\?([^#]*))?$/s.exec(url);
  if (!m) throw new Error('not unix:///path/to/redis.sock[?db=N&password=…]');
  const [, userinfo, path, query] = m;
  const o: RedisOptions = { path: decodeURIComponent(path!) };
  if (userinfo) {
    const colon = userinfo.indexOf(':');
    const user = colon === -1 ? userinfo : userinfo.slice(0, colon);
    if (user) o.username = decodeURIComponent(user);
    if (colon !== -1) o.password = decodeURIComponent(userinfo.slice(colon + 1));
  }
  const params = new URLSearchParams(query ?? '');
  for (const key of params.keys()) {
    if (!['db', 'password', 'username'].includes(key))
      throw new Error(`unknown parameter ${JSON.stringify(key)} (db, password, username)`);
  }
  const password = params.get('password');
  const username = params.get('username');
  if (password !== null) o.password = password;
  if (username !== null) o.username = username;
  const db = params.get('db');
  if (db !== null) o.db = dbNumber(db);
  return o;
}

function dbNumber(text: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(n))
    throw new Error(`the database ${JSON.stringify(text)} is not a number`);
  return n;
}

/**
 * Where and how to connect, from REDIS_URL: host, port, db, user, password, TLS, or a unix
 * socket path with its db and password. Throws (with a message free of the password) on a
 * URL it cannot read; loadConfig reports that as a bad REDIS_URL.
 */
export function redisTarget(url: string): RedisOptions {
  if (url.startsWith('unix://')) return unixSocketOptions(url);
  const u = new URL(url);
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:')
    throw new Error('not a redis://, rediss:// or unix:// URL');
  const o: RedisOptions = {
    host: u.hostname.replace(/^\[|\]$/g, '') || '127.0.0.1',
    port: u.port ? Number(u.port) : 6379,
  };
  if (u.username) o.username = decodeURIComponent(u.username);
  if (u.password) o.password = decodeURIComponent(u.password);
  const db = u.pathname.replace(/^\//, '');
  if (db) o.db = dbNumber(db);
  if (u.protocol === 'rediss:') o.tls = {};
  return o;
}

export function redisOptions(url: string, role: ConnectionRole): RedisOptions {
  const base = redisTarget(url);
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

/**
 * Where a Redis URL points, for messages: never its user name or password (in userinfo or
 * in a unix socket URL's query), only the host and port or the socket path, and the db.
 */
export function describeRedisUrl(url: string): string {
  try {
    const t = redisTarget(url);
    const db = t.db ? `/${t.db}` : '';
    if (t.path) return `unix://${t.path}${t.db ? `?db=${t.db}` : ''}`;
    const host = t.host?.includes(':') ? `[${t.host}]` : t.host;
    return `${t.tls ? 'rediss' : 'redis'}://${host}:${t.port}${db}`;
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
        const t = redisTarget(url);
        return t.path ?? `${t.host}:${t.port}`;
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
              : /^(WRONGPASS|NOAUTH)\b/.test(cause.message)
                ? `it refused the credentials in REDIS_URL (${cause.message.split(' ')[0]}): check the password (and user name) there, and percent-encode any of : / @ ? # in it`
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
