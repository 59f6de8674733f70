/**
 * Token endpoints (jamf-api.md 2.1): OAuth client credentials on /api/v1/oauth/token and
 * /api/oauth/token, user tokens on /api/v1/auth/token (HTTP Basic), keep-alive (a new user
 * token; the old one is revoked) and invalidate-token. Every token request counts in
 * counters.tokenRequests and consumes faults.tokenFailCount; none of them is subject to the
 * 429/503/drop faults.
 */
import type { IncomingMessage } from 'node:http';
import type { JamfContext } from './context.ts';
import { JamfApiError, invalidToken } from './errors.ts';
import { readBody, sendEmpty, sendJson } from './http.ts';
import { decrement, type RequestCtx, type RouteDef } from './router.ts';

const OAUTH_SCOPE = 'api-role:1';

function basicCredentials(req: IncomingMessage): [string, string] | undefined {
  const m = /^Basic\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
  if (!m?.[1]) return undefined;
  const text = Buffer.from(m[1], 'base64').toString('utf8');
  const colon = text.indexOf(':');
  if (colon < 0) return undefined;
  return [text.slice(0, colon), text.slice(colon + 1)];
}

/** Counts a token request; true when the tokenFailCount fault says to refuse it. */
function countTokenRequest(ctx: JamfContext): boolean {
  ctx.counters.tokenRequests++;
  return decrement(ctx, 'tokenFailCount');
}

async function oauthToken({ ctx, req, res }: RequestCtx): Promise<void> {
  const form = new URLSearchParams(await readBody(req));
  if (countTokenRequest(ctx)) {
    sendJson(res, 401, {
      error: 'invalid_client',
      error_description: 'Client authentication failed',
    });
    return;
  }
  if (form.get('grant_type') !== 'client_credentials') {
    sendJson(res, 400, {
      error: 'unsupported_grant_type',
      error_description: 'grant_type must be client_credentials',
    });
    return;
  }
  // client_secret_post (what the tools send) or client_secret_basic.
  const basic = basicCredentials(req);
  const id = form.get('client_id') ?? basic?.[0];
  const secret = form.get('client_secret') ?? basic?.[1];
  if (id !== ctx.settings.clientId || secret !== ctx.settings.clientSecret) {
    sendJson(res, 401, {
      error: 'invalid_client',
      error_description: 'Client authentication failed',
    });
    return;
  }
  const scope = form.get('scope');
  if (scope !== null && scope.split(/\s+/).some(s => s !== '' && s !== OAUTH_SCOPE)) {
    sendJson(res, 400, {
      error: 'invalid_scope',
      error_description: 'Requested scope is not assigned',
    });
    return;
  }
  const { token } = ctx.tokens.issue('oauth', id, ctx.settings.oauthTtlSeconds);
  res.setHeader('Cache-Control', 'no-store');
  sendJson(res, 200, {
    access_token: token,
    scope: OAUTH_SCOPE,
    token_type: 'Bearer',
    expires_in: ctx.settings.oauthExpiresInSeconds,
  });
}

function userTokenBody(ctx: JamfContext, sub: string): { token: string; expires: string } {
  const { token, claims } = ctx.tokens.issue('user', sub, ctx.settings.tokenTtlSeconds);
  return { token, expires: new Date(claims.exp).toISOString() };
}

async function userToken({ ctx, req, res }: RequestCtx): Promise<void> {
  await readBody(req);
  if (countTokenRequest(ctx)) throw JamfApiError.many(401, []);
  const creds = basicCredentials(req);
  if (!creds || creds[0] !== ctx.settings.username || creds[1] !== ctx.settings.password) {
    throw JamfApiError.many(401, []);
  }
  sendJson(res, 200, userTokenBody(ctx, creds[0]));
}

function currentClaims(ctx: JamfContext, req: IncomingMessage) {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
  return m?.[1] ? ctx.tokens.verify(m[1]) : undefined;
}

async function keepAlive({ ctx, req, res }: RequestCtx): Promise<void> {
  await readBody(req);
  if (countTokenRequest(ctx)) throw invalidToken();
  const claims = currentClaims(ctx, req);
  if (!claims) throw invalidToken();
  // Keep-alive is for user tokens (SDK-PY docstring): OAuth clients ask for a new token.
  if (claims.kind !== 'user') {
    throw new JamfApiError(401, 'INVALID_TOKEN', 'keep-alive is not supported for OAuth tokens');
  }
  ctx.tokens.revoke(claims);
  sendJson(res, 200, userTokenBody(ctx, claims.sub));
}

async function invalidateToken({ ctx, req, res, claims }: RequestCtx): Promise<void> {
  await readBody(req);
  if (claims) ctx.tokens.revoke(claims);
  sendEmpty(res, 204);
}

export const authRoutes: RouteDef[] = [
  { method: 'POST', template: '/api/v1/oauth/token', api: 'token', handler: oauthToken },
  { method: 'POST', template: '/api/oauth/token', api: 'token', handler: oauthToken },
  { method: 'POST', template: '/api/v1/auth/token', api: 'token', handler: userToken },
  { method: 'POST', template: '/api/v1/auth/keep-alive', api: 'token', handler: keepAlive },
  {
    method: 'POST',
    template: '/api/v1/auth/invalidate-token',
    api: 'pro',
    handler: invalidateToken,
  },
];
