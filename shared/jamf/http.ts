/**
 * The HTTP layer of the Jamf Pro client: one undici Agent (keep-alive) per client, a
 * per-process concurrency cap, the sticky-session cookie, bearer tokens, bounded retries.
 *
 * One call (`request`) is:
 *
 *   p-retry loop (retries, default 5; AbortSignal honoured throughout)
 *     └ attempt: take a concurrency slot → get a bearer token → send → read the answer
 *         401 → ask the token source for a fresh token (one refresh shared by every
 *               caller that saw the same refused token) → send once more
 *         2xx → parse (JSON where JSON is expected; an HTML page or non-JSON body is
 *               JAMF_BAD_RESPONSE: usually a wrong JAMF_URL) → validate (zod) → return
 *         other → JamfApiError (errors.ts)
 *
 * Retried: network errors (reset, refused, hang-up, timeouts) and 408/429/502/503/504,
 * after Retry-After when Jamf sends one, else after exponential backoff with jitter. A
 * Retry-After longer than `maxRetryAfterMs` is not waited out in-process: the error is
 * thrown at once (retryable, with `retryAfterMs`) for the queue to rate-limit. Not
 * retried: other 4xx, bad responses, errors of the caller's own body stream (file errors).
 *
 * The concurrency slot is held for one attempt only, never during a backoff sleep; token
 * calls bypass it (callers holding slots wait on them, so they must not queue behind).
 *
 * Cookies: every Set-Cookie (APBALANCEID from Jamf Cloud's load balancer in particular,
 * set on the token call) is kept and sent back on every later call, so dependent calls
 * reach the same cluster node.
 *
 * Timeouts: JSON calls get headers/body timeouts of a minute; streamed uploads get no
 * overall limit: undici's headers timer restarts on every write that fills the socket
 * buffer and when the body ends, so it only bounds a stall, or the wait for Jamf's
 * answer after the last byte.
 */
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import pRetry from 'p-retry';
import { Agent } from 'undici';
import type { z } from 'zod';
import { AppError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import { backoffDelay, retryAfterDelay } from './backoff.ts';
import { JamfApiError, jamfNetworkError, safePath } from './errors.ts';
import {
  interpretResponse,
  type JamfResponse,
  type RawResponse,
  type ResponseType,
} from './response.ts';
import { Semaphore } from './semaphore.ts';
import { CookieJar } from './cookies.ts';

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'DELETE' | 'PATCH';

/** Where bearer tokens come from (auth.ts). */
export interface TokenSource {
  getToken(signal?: AbortSignal): Promise<string>;
  /**
   * A token to use after `refused` got a 401: a fresh one, fetched once however many
   * callers report the same refused token.
   */
  refreshAfter401(refused: string, signal?: AbortSignal): Promise<string>;
}

export type { JamfResponse, ResponseType } from './response.ts';

export interface StreamBody {
  contentType: string;
  length: number;
  /** Opens the body afresh (called once per attempt). */
  open: () => AsyncIterable<Buffer>;
}

export interface JamfRequest {
  method: HttpMethod;
  /** Path under the base URL, segments already encoded (see `encodePathSegment`). */
  path: string;
  /** The path with placeholders, for logs: `/api/v1/packages/{id}`. Defaults to `path`. */
  template?: string;
  query?: Record<string, string | number | boolean | undefined>;
  json?: unknown;
  form?: Record<string, string>;
  xml?: string;
  stream?: StreamBody;
  /** @defaultValue `application/json` */
  accept?: string;
  /** @defaultValue `json` */
  responseType?: ResponseType;
  /** Validates a JSON answer; a mismatch is JAMF_BAD_RESPONSE. */
  schema?: z.ZodType;
  /** `bearer` (default): a token from the token source; `none`; or a literal Authorization header. */
  auth?: 'bearer' | 'none' | { authorization: string };
  /** Statuses returned to the caller instead of thrown (e.g. 404 for a probe). */
  acceptStatuses?: readonly number[];
  signal?: AbortSignal | undefined;
  /** Overrides the client's retry count for this call. */
  retries?: number;
  headersTimeoutMs?: number;
  bodyTimeoutMs?: number;
  /** Skip the concurrency cap (token calls only). */
  bypassLimit?: boolean;
  /** Called before each retry with the error that caused it. */
  onRetry?: (error: JamfApiError) => void;
}

export interface JamfHttpOptions {
  baseUrl: string;
  /** Max concurrent requests. @defaultValue 5 */
  concurrency?: number;
  /** Retries after the first attempt. @defaultValue 5 */
  retries?: number;
  /** First backoff delay. @defaultValue 500 */
  retryBaseMs?: number;
  /** Cap of one backoff delay. @defaultValue 30000 */
  retryMaxMs?: number;
  /** Longest Retry-After waited out in-process. @defaultValue 60000 */
  maxRetryAfterMs?: number;
  /** Headers and body timeout of ordinary calls. @defaultValue 60000 */
  timeoutMs?: number;
  /** Connect timeout. @defaultValue 10000 */
  connectTimeoutMs?: number;
  userAgent?: string;
  logger?: Logger | undefined;
  tokens?: TokenSource;
}

export const DEFAULT_CONCURRENCY = 5;
export const DEFAULT_RETRIES = 5;
export const DEFAULT_TIMEOUT_MS = 60_000;
export const DEFAULT_MAX_RETRY_AFTER_MS = 60_000;
export const DEFAULT_USER_AGENT = 'jcds-fleet/0.1';

/** Encodes one path segment: spaces, `+`, `%`, `#`, `?`, `/` and unicode all escaped. */
export function encodePathSegment(segment: string): string {
  return encodeURIComponent(segment).replace(
    /[!'()*]/g,
    c => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}

export class JamfHttp {
  readonly baseUrl: string;
  readonly origin: string;
  readonly host: string;
  private readonly basePath: string;
  private readonly agent: Agent;
  private readonly limit: Semaphore;
  private readonly retries: number;
  private readonly retryBaseMs: number | undefined;
  private readonly retryMaxMs: number | undefined;
  private readonly maxRetryAfterMs: number;
  private readonly timeoutMs: number;
  private readonly userAgent: string;
  private readonly log: Logger | undefined;
  /** Whether a `Deprecation` header was logged already (once per client: per worker). */
  private deprecationLogged = false;
  private readonly cookies = new CookieJar();
  tokens: TokenSource | undefined;

  constructor(options: JamfHttpOptions) {
    let url: URL;
    try {
      url = new URL(options.baseUrl);
    } catch {
      throw new TypeError(
        `Expected \`baseUrl\` to be an http(s) URL, got ${JSON.stringify(options.baseUrl)}`,
      );
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new TypeError(`Expected \`baseUrl\` to be an http(s) URL, got ${url.protocol}`);
    }
    this.origin = url.origin;
    this.host = url.host;
    this.basePath = url.pathname.replace(/\/+$/, '');
    this.baseUrl = `${this.origin}${this.basePath}`;
    const concurrency = options.concurrency ?? DEFAULT_CONCURRENCY;
    this.limit = new Semaphore(concurrency);
    this.retries = options.retries ?? DEFAULT_RETRIES;
    if (!Number.isInteger(this.retries) || this.retries < 0) {
      throw new TypeError(`Expected \`retries\` to be a whole number ≥ 0, got ${this.retries}`);
    }
    this.retryBaseMs = options.retryBaseMs;
    this.retryMaxMs = options.retryMaxMs;
    this.maxRetryAfterMs = options.maxRetryAfterMs ?? DEFAULT_MAX_RETRY_AFTER_MS;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.userAgent = options.userAgent ?? DEFAULT_USER_AGENT;
    this.log = options.logger;
    this.tokens = options.tokens;
    this.agent = new Agent({
      keepAliveTimeout: 30_000,
      keepAliveMaxTimeout: 600_000,
      // The cap plus room for token calls, which bypass it.
      connections: concurrency + 2,
      headersTimeout: this.timeoutMs,
      bodyTimeout: this.timeoutMs,
      connect: { timeout: options.connectTimeoutMs ?? 10_000 },
    });
  }

  /** The Cookie header sent with each call (sticky session), for tests and diagnostics. */
  get cookieHeader(): string | undefined {
    return this.cookies.header();
  }

  /** Requests running or waiting for a slot. */
  get load(): { active: number; waiting: number; limit: number } {
    return { active: this.limit.inUse, waiting: this.limit.waiting, limit: this.limit.limit };
  }

  /** One call with retries; see the module comment. */
  async request<T = unknown>(req: JamfRequest): Promise<JamfResponse<T>> {
    const retries = req.retries ?? this.retries;
    const signal = req.signal ?? undefined;
    return pRetry(() => this.attempt<T>(req), {
      retries,
      minTimeout: 0,
      ...(signal ? { signal } : {}),
      shouldRetry: async ({ error, attemptNumber, retriesLeft }) => {
        if (!(error instanceof JamfApiError) || !error.retryable) return false;
        let delayMs: number;
        if (error.retryAfterMs !== undefined) {
          if (error.retryAfterMs > this.maxRetryAfterMs) return false;
          delayMs = retryAfterDelay(error.retryAfterMs);
        } else {
          delayMs = backoffDelay(attemptNumber, {
            ...(this.retryBaseMs === undefined ? {} : { baseMs: this.retryBaseMs }),
            ...(this.retryMaxMs === undefined ? {} : { maxMs: this.retryMaxMs }),
          });
        }
        this.log?.warn(
          {
            method: req.method,
            path: req.template ?? safePath(req.path),
            status: error.status,
            code: error.code,
            attempt: attemptNumber,
            retriesLeft,
            delayMs,
            reason: error.message,
          },
          'jamf call failed; retrying',
        );
        req.onRetry?.(error);
        await sleep(delayMs, undefined, signal ? { signal } : {});
        return true;
      },
    });
  }

  private async attempt<T>(req: JamfRequest): Promise<JamfResponse<T>> {
    const signal = req.signal ?? undefined;
    const release = req.bypassLimit ? () => {} : await this.limit.acquire(signal);
    try {
      const bearer = (req.auth ?? 'bearer') === 'bearer';
      if (bearer && !this.tokens) throw new TypeError('JamfHttp has no token source');
      let token = bearer ? await this.tokens!.getToken(signal) : undefined;
      let res = await this.send(req, token);
      if (res.status === 401 && bearer && token !== undefined) {
        this.log?.debug(
          { method: req.method, path: req.template ?? safePath(req.path) },
          'jamf 401; refreshing the token',
        );
        token = await this.tokens!.refreshAfter401(token, signal);
        res = await this.send(req, token);
      }
      return interpretResponse<T>(req, res, this.host);
    } finally {
      release();
    }
  }

  /**
   * Logs, once for this client, that Jamf marks an endpoint deprecated (a `Deprecation`
   * header: the JCDS v1 endpoints are deprecated since 11.24; jamf-wire-2026.md 5).
   */
  private noteDeprecation(path: string, header: string | string[] | undefined): void {
    if (header === undefined || this.deprecationLogged) return;
    this.deprecationLogged = true;
    this.log?.warn(
      { path, deprecation: Array.isArray(header) ? header.join(', ') : header },
      'Jamf Pro marks this endpoint deprecated',
    );
  }

  private url(req: JamfRequest): string {
    let path = `${this.basePath}${req.path}`;
    if (req.query) {
      const q = new URLSearchParams();
      for (const [k, v] of Object.entries(req.query)) if (v !== undefined) q.append(k, String(v));
      const qs = q.toString();
      if (qs !== '') path += `?${qs}`;
    }
    return path;
  }

  private async send(req: JamfRequest, token: string | undefined): Promise<RawResponse> {
    const headers: Record<string, string> = {
      accept: req.accept ?? 'application/json',
      'user-agent': this.userAgent,
    };
    if (token !== undefined) headers['authorization'] = `Bearer ${token}`;
    else if (typeof req.auth === 'object') headers['authorization'] = req.auth.authorization;
    const cookie = this.cookieHeader;
    if (cookie !== undefined) headers['cookie'] = cookie;
    let body: string | Readable | undefined;
    if (req.json !== undefined) {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(req.json);
    } else if (req.form !== undefined) {
      headers['content-type'] = 'application/x-www-form-urlencoded';
      body = new URLSearchParams(req.form).toString();
    } else if (req.xml !== undefined) {
      headers['content-type'] = 'text/xml; charset=utf-8';
      body = req.xml;
    } else if (req.stream !== undefined) {
      headers['content-type'] = req.stream.contentType;
      headers['content-length'] = String(req.stream.length);
      body = Readable.from(req.stream.open(), { objectMode: false });
    }
    const path = this.url(req);
    const started = performance.now();
    const logPath = req.template ?? safePath(req.path);
    try {
      const res = await this.agent.request({
        origin: this.origin,
        path,
        method: req.method,
        headers,
        body: body ?? null,
        signal: req.signal ?? null,
        headersTimeout: req.headersTimeoutMs ?? this.timeoutMs,
        bodyTimeout: req.bodyTimeoutMs ?? this.timeoutMs,
      });
      this.cookies.store(res.headers['set-cookie']);
      this.noteDeprecation(logPath, res.headers['deprecation']);
      const text = await res.body.text();
      this.log?.debug(
        {
          method: req.method,
          path: logPath,
          status: res.statusCode,
          ms: Math.round(performance.now() - started),
        },
        'jamf request',
      );
      return { status: res.statusCode, headers: res.headers, text };
    } catch (err) {
      if (body instanceof Readable) body.destroy();
      req.signal?.throwIfAborted();
      // The caller's body failed (a file error): not a network problem, not retryable.
      if (err instanceof AppError) throw err;
      const cause = (err as { cause?: unknown }).cause;
      if (cause instanceof AppError) throw cause;
      this.log?.debug(
        {
          method: req.method,
          path: logPath,
          ms: Math.round(performance.now() - started),
          code: (err as { code?: unknown }).code,
        },
        'jamf request failed',
      );
      throw jamfNetworkError({ err, method: req.method, path: req.path, host: this.host });
    }
  }

  /** Closes the connection pool; calls in flight fail. */
  async close(): Promise<void> {
    await this.agent.close();
  }
}
