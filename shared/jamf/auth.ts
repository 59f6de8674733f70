/**
 * Jamf Pro bearer tokens, memoised in the style of smithy's `memoize`: every caller gets
 * the cached token while it is fresh; when it is within a margin of expiry (or a call
 * answered 401) ONE token request is made and every concurrent caller awaits that same
 * promise. The shared request is never cancelled by one caller's AbortSignal: a caller
 * that aborts stops waiting, the others keep their refresh.
 *
 * - OAuth client credentials: POST /api/v1/oauth/token (form), falling back to
 *   /api/oauth/token when the first answers 404; the path that worked is remembered.
 * - User account: POST /api/v1/auth/token with Basic auth → {token, expires}. A token that
 *   is still valid but inside the margin is extended with POST /api/v1/auth/keep-alive
 *   (which returns a new token and invalidates the old); if that fails, Basic auth again.
 * - Margin: min(60 s, 10% of the token's lifetime), so a 60 s OAuth token is renewed at
 *   54 s and a 2 s test token at 1.8 s.
 * - After a 401: the refused token is dropped and a fresh one fetched, unless another
 *   caller already replaced it (N calls refused at once → one token request).
 * - A token endpoint that answers 400/401/403 is final (JAMF_AUTH_FAILED, not retried): a
 *   wrong secret must fail fast, not hammer Jamf.
 * - `invalidate()` calls POST /api/v1/auth/invalidate-token (on close).
 *
 * Neither the secret, the password nor a token ever goes into a log line or a message.
 */
import { STATUS_CODES } from 'node:http';
import { z } from 'zod';
import type { JamfAuthConfig } from '../config.ts';
import { coalesce, waitFor } from '../coalesce.ts';
import type { Logger } from '../logger.ts';
import { JamfApiError, formatJamfErrors } from './errors.ts';
import type { JamfHttp, TokenSource } from './http.ts';

export const OAUTH_TOKEN_PATHS = ['/api/v1/oauth/token', '/api/oauth/token'] as const;
export const USER_TOKEN_PATH = '/api/v1/auth/token';
export const KEEP_ALIVE_PATH = '/api/v1/auth/keep-alive';
export const INVALIDATE_PATH = '/api/v1/auth/invalidate-token';

/** Refresh this long before expiry at most… */
export const DEFAULT_MAX_MARGIN_MS = 60_000;
/** …and at most this fraction of the token's lifetime. */
export const DEFAULT_MARGIN_FRACTION = 0.1;
/** Clock differences below this are ignored (Date headers have 1 s resolution). */
const SKEW_TOLERANCE_MS = 30_000;

const OAuthTokenSchema = z.object({
  access_token: z.string().min(1),
  expires_in: z.coerce.number().positive(),
});
const UserTokenSchema = z.object({ token: z.string().min(1), expires: z.string().min(1) });

interface Token {
  value: string;
  issuedAt: number;
  expiresAt: number;
}

export interface TokenProviderOptions {
  http: JamfHttp;
  auth: JamfAuthConfig;
  logger?: Logger | undefined;
  /** @defaultValue 60000 */
  maxMarginMs?: number;
  /** @defaultValue 0.1 */
  marginFraction?: number;
  /** Clock, for tests. */
  now?: () => number;
}

export class JamfTokenProvider implements TokenSource {
  private readonly http: JamfHttp;
  private readonly auth: JamfAuthConfig;
  private readonly log: Logger | undefined;
  private readonly maxMarginMs: number;
  private readonly marginFraction: number;
  private readonly now: () => number;
  private current: Token | undefined;
  private oauthPath: string | undefined;
  /** Token requests this provider made (diagnostics and tests). */
  tokenRequests = 0;

  constructor(options: TokenProviderOptions) {
    this.http = options.http;
    this.auth = options.auth;
    this.log = options.logger;
    this.maxMarginMs = options.maxMarginMs ?? DEFAULT_MAX_MARGIN_MS;
    this.marginFraction = options.marginFraction ?? DEFAULT_MARGIN_FRACTION;
    this.now = options.now ?? Date.now;
    if (!(this.marginFraction >= 0 && this.marginFraction < 1)) {
      throw new TypeError(`Expected \`marginFraction\` in [0, 1), got ${this.marginFraction}`);
    }
  }

  /** When the cached token expires (epoch ms), if there is one. Never the token itself. */
  get expiresAt(): number | undefined {
    return this.current?.expiresAt;
  }

  /** The OAuth token path that answered, once known. */
  get oauthTokenPath(): string | undefined {
    return this.oauthPath;
  }

  async getToken(signal?: AbortSignal): Promise<string> {
    const t = this.current;
    if (t !== undefined && !this.needsRefresh(t)) return t.value;
    try {
      return (await waitFor(this.refresh(), signal)).value;
    } catch (err) {
      // A refresh ahead of expiry failed (Jamf briefly down): the token in hand still
      // works, so use it; the next call tries the refresh again.
      const still = this.current;
      if (signal?.aborted || still === undefined || still.expiresAt - this.now() < 1000) throw err;
      this.log?.warn(
        { code: (err as { code?: unknown }).code, expiresInMs: still.expiresAt - this.now() },
        'jamf token refresh failed; using the current token until it expires',
      );
      return still.value;
    }
  }

  async refreshAfter401(refused: string, signal?: AbortSignal): Promise<string> {
    const t = this.current;
    if (t !== undefined && t.value !== refused && !this.needsRefresh(t)) return t.value;
    // Drop the refused token so the refresh cannot try to keep it alive.
    if (t?.value === refused) this.current = undefined;
    return (await waitFor(this.refresh(), signal)).value;
  }

  /** Invalidates the current token on the server (best effort) and forgets it. */
  async invalidate(): Promise<void> {
    const t = this.current;
    this.current = undefined;
    if (t === undefined || t.expiresAt <= this.now()) return;
    try {
      await this.http.request({
        method: 'POST',
        path: INVALIDATE_PATH,
        auth: { authorization: `Bearer ${t.value}` },
        responseType: 'none',
        retries: 0,
        bypassLimit: true,
        acceptStatuses: [401, 403, 404],
      });
    } catch (err) {
      this.log?.debug({ code: (err as { code?: unknown }).code }, 'jamf token invalidation failed');
    }
  }

  private needsRefresh(t: Token): boolean {
    const margin = refreshMarginMs(t.expiresAt - t.issuedAt, this.maxMarginMs, this.marginFraction);
    return this.now() >= t.expiresAt - margin;
  }

  /** One token request in flight, shared by every caller; the token is kept on success. */
  private readonly refresh = coalesce(async (): Promise<Token> => {
    const token = await this.fetchToken();
    this.current = token;
    return token;
  });

  private async fetchToken(): Promise<Token> {
    if (this.auth.kind === 'oauth') return this.fetchOAuth();
    const old = this.current;
    if (old !== undefined && old.expiresAt > this.now()) {
      const kept = await this.keepAlive(old);
      if (kept !== undefined) return kept;
    }
    return this.fetchUser();
  }

  private async fetchOAuth(): Promise<Token> {
    const paths = this.oauthPath !== undefined ? [this.oauthPath] : [...OAUTH_TOKEN_PATHS];
    for (const [i, path] of paths.entries()) {
      const last = i === paths.length - 1;
      const issuedAt = this.now();
      this.tokenRequests++;
      const res = await this.tokenCall(path, {
        method: 'POST',
        path,
        form: {
          grant_type: 'client_credentials',
          client_id: this.auth.id,
          client_secret: this.auth.secret,
        },
        auth: 'none',
        ...(last ? {} : { acceptStatuses: [404] }),
      });
      if (res.status === 404) {
        this.log?.debug({ path }, 'jamf oauth token path not found; trying the next');
        continue;
      }
      const body = OAuthTokenSchema.safeParse(res.body);
      if (!body.success) throw this.badTokenAnswer(path);
      this.oauthPath = path;
      const expiresAt = issuedAt + body.data.expires_in * 1000;
      this.log?.debug({ path, expiresInS: body.data.expires_in }, 'jamf token obtained');
      return { value: body.data.access_token, issuedAt, expiresAt };
    }
    /* c8 ignore next: the loop returns or throws on its last path */
    throw this.badTokenAnswer(OAUTH_TOKEN_PATHS[1]);
  }

  private async fetchUser(): Promise<Token> {
    const issuedAt = this.now();
    this.tokenRequests++;
    const basic = Buffer.from(`${this.auth.id}:${this.auth.secret}`, 'utf8').toString('base64');
    const res = await this.tokenCall(USER_TOKEN_PATH, {
      method: 'POST',
      path: USER_TOKEN_PATH,
      auth: { authorization: `Basic ${basic}` },
    });
    return this.userToken(res, issuedAt, USER_TOKEN_PATH);
  }

  private async keepAlive(old: Token): Promise<Token | undefined> {
    const issuedAt = this.now();
    try {
      this.tokenRequests++;
      const res = await this.http.request({
        method: 'POST',
        path: KEEP_ALIVE_PATH,
        auth: { authorization: `Bearer ${old.value}` },
        bypassLimit: true,
        retries: 1,
      });
      const token = this.userToken(res, issuedAt, KEEP_ALIVE_PATH);
      this.log?.debug({ path: KEEP_ALIVE_PATH }, 'jamf token kept alive');
      return token;
    } catch (err) {
      this.log?.debug(
        { code: (err as { code?: unknown }).code },
        'jamf keep-alive failed; requesting a new token',
      );
      return undefined;
    }
  }

  private userToken(
    res: { body: unknown; headers: Record<string, string | string[] | undefined> },
    issuedAt: number,
    path: string,
  ): Token {
    const body = UserTokenSchema.safeParse(res.body);
    const expires = body.success ? Date.parse(body.data.expires) : NaN;
    if (!body.success || Number.isNaN(expires)) throw this.badTokenAnswer(path);
    // `expires` is on Jamf's clock: correct for a large skew using its Date header.
    const dateHeader = res.headers['date'];
    const serverNow = Date.parse(
      Array.isArray(dateHeader) ? (dateHeader[0] ?? '') : (dateHeader ?? ''),
    );
    const skew = Number.isNaN(serverNow) ? 0 : serverNow - issuedAt;
    const expiresAt = Math.abs(skew) > SKEW_TOLERANCE_MS ? expires - skew : expires;
    return { value: body.data.token, issuedAt, expiresAt };
  }

  /** A token call; 400/401/403 become a final JAMF_AUTH_FAILED naming what to check. */
  private async tokenCall(
    path: string,
    req: Parameters<JamfHttp['request']>[0],
  ): ReturnType<JamfHttp['request']> {
    try {
      return await this.http.request({ ...req, bypassLimit: true });
    } catch (err) {
      if (err instanceof JamfApiError && [400, 401, 403].includes(err.status ?? 0)) {
        const who =
          this.auth.kind === 'oauth'
            ? `the API client credentials (client id ${JSON.stringify(this.auth.id)})`
            : `the user account ${JSON.stringify(this.auth.id)}`;
        const check =
          this.auth.kind === 'oauth'
            ? 'check JAMF_CLIENT_ID and JAMF_CLIENT_SECRET, and that the API client is enabled'
            : 'check JAMF_USERNAME and JAMF_PASSWORD';
        const status = err.status ?? 0;
        const said = `${status} ${formatJamfErrors(err.jamfErrors) || (STATUS_CODES[status] ?? '')}`;
        throw new JamfApiError({
          code: 'JAMF_AUTH_FAILED',
          message: `Jamf Pro at ${this.http.host} refused ${who} (POST ${path}: ${said}): ${check}`,
          method: 'POST',
          path,
          host: this.http.host,
          status: err.status,
          jamfErrors: err.jamfErrors,
          cause: err,
        });
      }
      throw err;
    }
  }

  private badTokenAnswer(path: string): JamfApiError {
    return new JamfApiError({
      code: 'JAMF_BAD_RESPONSE',
      message: `POST ${path} on ${this.http.host} answered without a usable token, not what the Jamf Pro API sends: check JAMF_URL`,
      method: 'POST',
      path,
      host: this.http.host,
    });
  }
}

/**
 * How long before expiry a token is refreshed: `fraction` of its lifetime, at most
 * `maxMarginMs`. A 30-minute token: 60 s; a 60 s token: 6 s; a 2 s test token: 200 ms.
 */
export function refreshMarginMs(
  lifetimeMs: number,
  maxMarginMs: number = DEFAULT_MAX_MARGIN_MS,
  fraction: number = DEFAULT_MARGIN_FRACTION,
): number {
  return Math.min(maxMarginMs, Math.max(0, lifetimeMs) * fraction);
}
