/**
 * The Jamf Pro request pipeline. For every request on the Jamf port, in order:
 *   1. /__sim/* control routes go straight to their handler (no faults, counters or auth);
 *   2. the route is matched ("METHOD /path/{param}") and counted in counters.calls;
 *   3. the load-balancer cookie APBALANCEID is set (requests that did not send it back are
 *      counted in stats.requestsWithoutCookie);
 *   4. faults: latency; then, except on token endpoints, a dropped connection, 429 with
 *      Retry-After, 503 (each consuming one from its count); token endpoints consume
 *      tokenFailCount instead;
 *   5. Bearer authentication for /api and /JSSResource (token endpoints excepted), then the
 *      role's privileges (privileges.ts: 403 when the endpoint needs a revoked one);
 *   6. the handler. JamfApiError renders as Jamf's ApiError JSON, ClassicError as the
 *      Classic API's HTML page; anything else is a logged 500.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import type { JamfContext } from './context.ts';
import {
  ClassicError,
  JamfApiError,
  invalidToken,
  notFound,
  sendApiError,
  sendClassicError,
} from './errors.ts';
import { requirePrivileges } from './privileges.ts';
import type { TokenClaims } from './tokens.ts';

export type RouteApi = 'pro' | 'classic' | 'token' | 'control';

export interface RequestCtx {
  ctx: JamfContext;
  req: IncomingMessage;
  res: ServerResponse;
  url: URL;
  params: Record<string, string>;
  /** The caller's token claims (authenticated routes only). */
  claims: TokenClaims | undefined;
}

export type Handler = (rc: RequestCtx) => Promise<void> | void;

export interface RouteDef {
  method: string;
  template: string;
  api: RouteApi;
  /** A JCDS v1 endpoint: 404 when the simulator runs with --no-jcds. */
  jcds?: boolean;
  handler: Handler;
}

interface CompiledRoute extends RouteDef {
  segments: string[];
}

const COOKIE_NAME = 'APBALANCEID';
const COOKIE_VALUE = 'sim.1';

function split(path: string): string[] {
  return path.split('/').filter(s => s !== '');
}

function match(route: CompiledRoute, segs: string[]): Record<string, string> | undefined {
  if (route.segments.length !== segs.length) return undefined;
  const params: Record<string, string> = {};
  for (let i = 0; i < segs.length; i++) {
    const t = route.segments[i] ?? '';
    const s = segs[i] ?? '';
    if (t.startsWith('{') && t.endsWith('}')) {
      try {
        params[t.slice(1, -1)] = decodeURIComponent(s);
      } catch {
        return undefined;
      }
    } else if (t !== s) {
      return undefined;
    }
  }
  return params;
}

function apiOf(path: string): RouteApi {
  if (path.startsWith('/JSSResource')) return 'classic';
  return 'pro';
}

function hasCookie(req: IncomingMessage): boolean {
  const header = req.headers.cookie ?? '';
  return header.split(';').some(c => c.trim().startsWith(`${COOKIE_NAME}=`));
}

function bearer(req: IncomingMessage): string | undefined {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
  return m?.[1];
}

/** Consumes one from a fault count; true when the fault fires. */
export function decrement(
  ctx: JamfContext,
  key: 'jamf429Count' | 'jamf503Count' | 'jamfDropCount' | 'tokenFailCount' | 'jamfErrorCount',
): boolean {
  const n = ctx.faults[key] ?? 0;
  if (n <= 0) return false;
  ctx.faults[key] = n - 1;
  return true;
}

export function createRouter(ctx: JamfContext, defs: RouteDef[]) {
  const routes: CompiledRoute[] = defs.map(d => ({ ...d, segments: split(d.template) }));

  const renderError = (res: ServerResponse, api: RouteApi, err: unknown): void => {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    if (err instanceof ClassicError) return sendClassicError(res, err);
    if (err instanceof JamfApiError) {
      if (api === 'classic')
        return sendClassicError(
          res,
          new ClassicError(err.status, err.errors[0]?.description ?? err.message),
        );
      return sendApiError(res, err);
    }
    ctx.logger.error({ err }, 'simulator handler failed');
    if (api === 'classic') return sendClassicError(res, new ClassicError(500, 'Internal error'));
    sendApiError(res, new JamfApiError(500, 'INTERNAL_SERVER_ERROR', 'Internal server error'));
  };

  return async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const path = url.pathname.length > 1 ? url.pathname.replace(/\/+$/, '') : url.pathname;
    const segs = split(path);
    const method = (req.method ?? 'GET').toUpperCase();

    let route: CompiledRoute | undefined;
    let params: Record<string, string> = {};
    let pathMatched = false;
    for (const r of routes) {
      const p = match(r, segs);
      if (!p) continue;
      pathMatched = true;
      if (r.method === method) {
        route = r;
        params = p;
        break;
      }
    }
    const api: RouteApi = route?.api ?? (path.startsWith('/__sim') ? 'control' : apiOf(path));

    try {
      if (api === 'control') {
        if (!route) throw notFound(`No control endpoint ${method} ${path}`);
        await route.handler({ ctx, req, res, url, params, claims: undefined });
        return;
      }

      const key = route ? `${method} ${route.template}` : `${method} (unmatched)`;
      ctx.counters.calls[key] = (ctx.counters.calls[key] ?? 0) + 1;
      if (!hasCookie(req)) ctx.stats.requestsWithoutCookie++;
      res.setHeader('Set-Cookie', `${COOKIE_NAME}=${COOKIE_VALUE}; Path=/; HttpOnly`);
      ctx.logger.debug({ method, path, route: route?.template }, 'jamf request');

      const latency = ctx.faults.jamfLatencyMs ?? 0;
      if (latency > 0) await sleep(latency);

      // Token endpoints consume tokenFailCount themselves (their error bodies differ).
      if (api !== 'token') {
        if (decrement(ctx, 'jamfDropCount')) {
          req.socket.destroy();
          return;
        }
        if (decrement(ctx, 'jamf429Count')) {
          const retryAfter = String(ctx.faults.jamf429RetryAfterSeconds ?? 1);
          throw new JamfApiError(429, 'TOO_MANY_REQUESTS', 'Too Many Requests', null, {
            'Retry-After': retryAfter,
          });
        }
        if (decrement(ctx, 'jamf503Count')) {
          sendServiceUnavailable(res);
          return;
        }
        if (decrement(ctx, 'jamfErrorCount')) {
          const body = ctx.faults.jamfErrorBody ?? 'Bad Request';
          res.writeHead(400, {
            'Content-Type': 'text/plain; charset=utf-8',
            'Content-Length': Buffer.byteLength(body),
          });
          res.end(body);
          return;
        }
        const token = bearer(req);
        const claims = token === undefined ? undefined : ctx.tokens.verify(token);
        if (!claims) {
          if (api === 'classic')
            throw new ClassicError(401, 'The request requires user authentication (INVALID_TOKEN)');
          throw invalidToken();
        }
        if (!route) {
          if (pathMatched)
            throw new JamfApiError(405, 'METHOD_NOT_ALLOWED', `${method} is not supported here`);
          throw notFound(`No endpoint ${method} ${path}`);
        }
        if (route.jcds && !ctx.settings.jcds) throw notFound(`No endpoint ${method} ${path}`);
        requirePrivileges(ctx, method, route.template); // 403 when the role lacks one
        await route.handler({ ctx, req, res, url, params, claims });
        return;
      }
      if (!route) throw notFound(`No endpoint ${method} ${path}`);
      await route.handler({ ctx, req, res, url, params, claims: undefined });
    } catch (err) {
      renderError(res, api, err);
    }
  };
}

/** What the load balancer in front of Jamf Cloud answers when no node is available. */
function sendServiceUnavailable(res: ServerResponse): void {
  const body =
    '<html>\r\n<head><title>503 Service Temporarily Unavailable</title></head>\r\n' +
    '<body>\r\n<center><h1>503 Service Temporarily Unavailable</h1></center>\r\n</body>\r\n</html>\r\n';
  res.writeHead(503, {
    'Content-Type': 'text/html',
    'Content-Length': Buffer.byteLength(body),
  });
  res.end(body);
}
