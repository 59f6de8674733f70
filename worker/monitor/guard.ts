/**
 * What keeps another web site from driving the dashboard. A browser that holds the
 * monitor's Basic-auth credentials sends them with any request to the monitor, whichever
 * page made it; a "simple" cross-site request (a form POST, a `text/plain` fetch) needs no
 * CORS preflight, so Bull Board's API would act on it (a job added, retried, removed). So:
 *
 * - **read-only unless asked** (`--allow-writes`): every request but GET, HEAD and OPTIONS
 *   is refused with 405 here, before Bull Board (whose own readOnlyMode also refuses its
 *   write routes and hides the buttons: two locks, in case one is missed);
 * - **same origin only** for the writes that are allowed: `Sec-Fetch-Site` must be
 *   `same-origin` (or `none`: typed by the user), or, from a browser that does not send it,
 *   `Origin` must name this host (the `Host` the request was sent to, so a TLS proxy in
 *   front that passes `Host` through works). A request without either is refused: every
 *   browser sends `Origin` with a POST, PUT, PATCH or DELETE, so only a script would omit
 *   it, and a script can send it (`-H 'Origin: http://host:port'`);
 * - **a body must be JSON** (`Content-Type: application/json`): a cross-site page cannot
 *   send that without a preflight, which the monitor never answers with CORS headers.
 *   Bull Board's own page sends its actions (Retry, Clean, Pause…) as PUTs without a body
 *   or a Content-Type, and adds a job as JSON, so it works unchanged;
 * - **loopback by name** when the monitor runs without credentials (loopback only): the
 *   `Host` must be loopback too, or a page on a name that resolves to 127.0.0.1 (DNS
 *   rebinding) would be "same origin" with the dashboard and could read and drive it.
 */
import type { NextFunction, Request, Response } from 'express';
import type { Logger } from '../../shared/logger.ts';
import { isLoopback } from './auth.ts';

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

function refuse(res: Response, status: number, error: string, hint: string): void {
  res.status(status).set('Cache-Control', 'no-store').json({ error, hint });
}

/** The host of a Host header or of an origin's authority, without brackets or port. */
function hostName(authority: string): string {
  try {
    return new URL(`http://${authority}`).hostname.replace(/^\[|\]$/g, '');
  } catch {
    return '';
  }
}

/** A request's header by its lower-case name. */
export type HeaderOf = (name: string) => string | undefined;

/**
 * Why a write request does not come from the dashboard's own page, or undefined if it
 * does, from its Sec-Fetch-Site, Origin and Host headers.
 */
export function crossSiteReason(header: HeaderOf): string | undefined {
  const site = header('sec-fetch-site');
  const origin = header('origin');
  const host = header('host') ?? '';
  if (site !== undefined) {
    if (site === 'same-origin' || site === 'none') return undefined;
    return `it was sent by another site (Sec-Fetch-Site: ${site}${origin ? `, Origin: ${origin}` : ''})`;
  }
  if (origin === undefined) return 'it carries no Origin header, so where it comes from is unknown';
  let originHost: string;
  try {
    const u = new URL(origin);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('not http');
    originHost = u.host;
  } catch {
    return `it comes from Origin ${JSON.stringify(origin)}, not from this dashboard`;
  }
  // `u.host` drops a default port, as browsers do in Host: compare the two as given.
  if (originHost.toLowerCase() === host.toLowerCase()) return undefined;
  return `it comes from Origin ${origin}, not from this dashboard (Host: ${host})`;
}

/** True when the request carries a body (Content-Length above 0, or chunked). */
function hasBody(req: Request): boolean {
  if (req.get('transfer-encoding') !== undefined) return true;
  const length = Number(req.get('content-length') ?? '0');
  return !Number.isFinite(length) || length > 0;
}

export interface WriteGuardOptions {
  allowWrites: boolean;
  /** Refused cross-site writes are logged (warn): someone tried. */
  logger?: Logger | undefined;
}

/** Refuses writes in read-only mode (405) and cross-site or non-JSON writes (403). */
export function writeGuard(options: WriteGuardOptions) {
  return (req: Request, res: Response, next: NextFunction): void => {
    if (SAFE_METHODS.has(req.method)) {
      next();
      return;
    }
    if (!options.allowWrites) {
      res.set('Allow', 'GET, HEAD, OPTIONS');
      refuse(
        res,
        405,
        'the monitor is read-only',
        'start it with --allow-writes (or MONITOR_ALLOW_WRITES=1) to retry, remove, clean, pause or add jobs from the dashboard',
      );
      return;
    }
    const why = crossSiteReason(name => req.get(name));
    if (why !== undefined) {
      options.logger?.warn(
        { method: req.method, path: req.path, origin: req.get('origin') },
        `write refused: cross-site request refused: ${why}`,
      );
      refuse(
        res,
        403,
        `cross-site request refused: ${why}`,
        "use the dashboard's own page; a script must send Origin with the monitor's own URL (e.g. -H 'Origin: http://127.0.0.1:3000'), and a reverse proxy must pass the Host header through unchanged",
      );
      return;
    }
    if (hasBody(req) && !req.is('application/json')) {
      refuse(
        res,
        403,
        `request body refused: Content-Type ${JSON.stringify(req.get('content-type') ?? '')} is not application/json`,
        'send the body as JSON with Content-Type: application/json',
      );
      return;
    }
    next();
  };
}

/**
 * For a monitor without credentials (loopback only): refuses a request whose Host is not
 * a loopback name or address (421), which is what a DNS-rebinding page would send.
 */
export function loopbackHostGuard() {
  return (req: Request, res: Response, next: NextFunction): void => {
    const host = req.get('host') ?? '';
    if (isLoopback(hostName(host))) {
      next();
      return;
    }
    refuse(
      res,
      421,
      `Host ${JSON.stringify(host)} is not this machine's loopback`,
      'open the dashboard as http://127.0.0.1:PORT/ or http://localhost:PORT/; to serve it under another name, set MONITOR_USER and MONITOR_PASSWORD',
    );
  };
}
