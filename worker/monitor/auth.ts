/**
 * Access control for the monitor. Bull Board has no authentication of its own, and the
 * dashboard can retry, remove and clean jobs, so "dashboard access is Redis access":
 *
 * - with MONITOR_USER + MONITOR_PASSWORD set, every route except /healthz (the dashboard,
 *   its static assets, its API and /metrics) needs HTTP Basic auth, compared in constant
 *   time (SHA-256 of both sides, then timingSafeEqual, so lengths do not leak either),
 *   and failed logins are throttled per client address and overall (throttle.ts);
 * - without them, the monitor listens on loopback only and refuses any other host.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';
import type { NextFunction, Request, Response } from 'express';
import { ConfigError } from '../../shared/errors.ts';
import type { LoginThrottle } from './throttle.ts';

export interface MonitorCredentials {
  user: string;
  password: string;
}

const digest = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();

export function safeEqual(a: string, b: string): boolean {
  return timingSafeEqual(digest(a), digest(b));
}

/** Parses `Authorization: Basic base64(user:password)`. */
export function parseBasicAuth(header: string | undefined): MonitorCredentials | undefined {
  const m = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header ?? '');
  if (!m) return undefined;
  const decoded = Buffer.from(m[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return undefined;
  return { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

export function checkCredentials(
  given: MonitorCredentials | undefined,
  expected: MonitorCredentials,
): boolean {
  if (!given) return false;
  // Both comparisons always run: no early exit that would tell a right user name apart.
  const userOk = safeEqual(given.user, expected.user);
  const passwordOk = safeEqual(given.password, expected.password);
  return userOk && passwordOk;
}

/**
 * Express middleware: 401 with a Basic challenge unless the credentials match. With a
 * throttle, wrong credentials are counted per client address and overall (throttle.ts):
 * a locked-out client gets 429 with Retry-After, before its credentials are looked at.
 * A request that sends no credentials is challenged without counting as a failure.
 */
export function basicAuth(expected: MonitorCredentials, throttle?: LoginThrottle) {
  return (req: Request, res: Response, next: NextFunction): void => {
    const address = req.socket.remoteAddress;
    const verdict = throttle?.check(address) ?? { allowed: true };
    if (!verdict.allowed) {
      res
        .status(429)
        .set('Retry-After', String(verdict.retryAfterSeconds))
        .set('Cache-Control', 'no-store')
        .json({
          error: 'too many failed logins',
          hint: `try again in ${verdict.retryAfterSeconds} s with the MONITOR_USER / MONITOR_PASSWORD credentials`,
        });
      return;
    }
    const header = req.headers.authorization;
    if (checkCredentials(parseBasicAuth(header), expected)) {
      throttle?.succeeded(address);
      next();
      return;
    }
    if (header !== undefined) throttle?.failed(address);
    res
      .status(401)
      .set('WWW-Authenticate', 'Basic realm="jcds-fleet monitor", charset="UTF-8"')
      .set('Cache-Control', 'no-store')
      .json({
        error: 'authentication required',
        hint: 'use the MONITOR_USER / MONITOR_PASSWORD credentials',
      });
  };
}

/** True for 127.0.0.0/8, ::1, ::ffff:127.x and "localhost". */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost' || h === 'localhost.') return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  if (isIP(h) === 6) return h === '::1' || /^::ffff:127\./.test(h);
  return false;
}

/** Refuses to expose an unauthenticated dashboard beyond this machine. */
export function assertSafeBinding(host: string, credentials: MonitorCredentials | undefined): void {
  if (credentials || isLoopback(host)) return;
  throw new ConfigError(
    'CONFIG_INVALID',
    `Refusing to serve the monitor on ${host} without authentication: Bull Board has no login of its own, and anyone who can reach it could read every job and retry, remove or clean them. ` +
      'Set MONITOR_USER and MONITOR_PASSWORD (Basic auth, preferably behind TLS), or listen on loopback only (--host 127.0.0.1).',
  );
}
