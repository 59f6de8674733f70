/**
 * Typed errors for the Jamf Pro API client.
 *
 * Every failure of a Jamf call becomes a `JamfApiError` (an AppError) that says what was
 * called (method and path, never the query string), what Jamf answered (status and the
 * `errors[]` of its body, or the `<p>Error: …</p>` of a Classic API HTML page) and what to
 * check. Bodies and URLs go through `redactText` before they reach a message, and the
 * structured `details` carry only status, method, path, host, Jamf's error items and the
 * Retry-After hint: no header, no token, no credential.
 *
 * `retryable` is true for network errors and 408/429/502/503/504: the HTTP layer retries
 * those a bounded number of times, then throws the last one with `retryable: true` (and
 * `retryAfterMs` for 429/503) so a worker can turn it into a queue rate limit.
 */
import { STATUS_CODES } from 'node:http';
import { AppError, redactText, type ErrorCode } from '../errors.ts';

/** One entry of Jamf's error body `{httpStatus, errors: [{code, description, id, field}]}`. */
export interface JamfErrorItem {
  code: string | null;
  description: string;
  field: string | null;
}

export interface JamfApiErrorInit {
  code: ErrorCode;
  message: string;
  method: string;
  path: string;
  host: string;
  status?: number | undefined;
  jamfErrors?: JamfErrorItem[];
  /** @defaultValue the registry's `retryable` for `code` (shared/errors.ts) */
  retryable?: boolean | undefined;
  retryAfterMs?: number | undefined;
  cause?: unknown;
}

export class JamfApiError extends AppError {
  /** HTTP status; undefined for network errors. */
  readonly status: number | undefined;
  readonly method: string;
  /** The request path without its query string. */
  readonly path: string;
  readonly host: string;
  readonly jamfErrors: JamfErrorItem[];
  /** For 429/503: how long Jamf asked us to wait (Retry-After), in ms. */
  readonly retryAfterMs: number | undefined;

  constructor(init: JamfApiErrorInit) {
    const jamfErrors = init.jamfErrors ?? [];
    super(init.code, init.message, {
      cause: init.cause,
      retryable: init.retryable,
      details: {
        status: init.status,
        method: init.method,
        path: init.path,
        host: init.host,
        ...(jamfErrors.length > 0 ? { jamfErrors } : {}),
        ...(init.retryAfterMs === undefined ? {} : { retryAfterMs: init.retryAfterMs }),
      },
    });
    this.status = init.status;
    this.method = init.method;
    this.path = init.path;
    this.host = init.host;
    this.jamfErrors = jamfErrors;
    this.retryAfterMs = init.retryAfterMs;
  }
}

/** Statuses worth retrying: the request may succeed unchanged a moment later. */
export const RETRYABLE_STATUSES: ReadonlySet<number> = new Set([408, 429, 502, 503, 504]);

const MAX_DESCRIPTION = 300;

/** The path of a URL or path string without its query string or fragment, redacted. */
export function safePath(pathOrUrl: string): string {
  const cut = pathOrUrl.search(/[?#]/);
  return redactText(cut === -1 ? pathOrUrl : pathOrUrl.slice(0, cut));
}

function clean(text: string): string {
  const oneLine = redactText(text).replace(/\s+/g, ' ').trim();
  return oneLine.length > MAX_DESCRIPTION ? `${oneLine.slice(0, MAX_DESCRIPTION)}…` : oneLine;
}

function decodeEntities(text: string): string {
  return text
    .replace(/<[^>]*>/g, ' ')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&#39;|&apos;/g, "'")
    .replace(/&nbsp;/g, ' ')
    .replace(/&amp;/g, '&');
}

const str = (v: unknown): string | null =>
  typeof v === 'string' ? v : typeof v === 'number' ? String(v) : null;

/** True when a body looks like an HTML page rather than an API answer. */
export function looksLikeHtml(body: string, contentType?: string): boolean {
  if (contentType !== undefined && /\bhtml\b/i.test(contentType)) return true;
  return /^\s*(<!doctype html|<html[\s>])/i.test(body);
}

/**
 * Jamf's error items from a response body: the Pro API's `{httpStatus, errors[]}`, an
 * OAuth `{error, error_description}`, a Classic API HTML page (`<p>Error: …</p>`, else its
 * `<title>` / `<h1>`), or plain text. Descriptions are redacted, whitespace-collapsed and
 * truncated. An empty body gives `[]`.
 */
export function parseJamfErrorBody(body: string, contentType?: string): JamfErrorItem[] {
  const text = body.trim();
  if (text === '') return [];
  if (text.startsWith('{') || text.startsWith('[')) {
    try {
      const parsed: unknown = JSON.parse(text);
      const items = fromJson(parsed);
      if (items !== undefined) return items;
    } catch {
      // Not JSON after all: fall through to the text forms.
    }
  }
  if (looksLikeHtml(text, contentType) || /<\/?(p|title|h1|body)[\s>]/i.test(text)) {
    const fromPage = fromHtml(text);
    return fromPage === undefined ? [] : [fromPage];
  }
  if (text.startsWith('<')) {
    // XML (the Classic API sometimes answers errors as XML).
    const m = /<(?:message|error|description)>([\s\S]*?)<\//i.exec(text);
    if (m?.[1]) return [{ code: null, description: clean(decodeEntities(m[1])), field: null }];
  }
  return [{ code: null, description: clean(text), field: null }];
}

function fromJson(parsed: unknown): JamfErrorItem[] | undefined {
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return undefined;
  const o = parsed as Record<string, unknown>;
  if (Array.isArray(o['errors'])) {
    return o['errors'].flatMap((e: unknown): JamfErrorItem[] => {
      if (typeof e !== 'object' || e === null) return [];
      const r = e as Record<string, unknown>;
      return [
        {
          code: str(r['code']),
          description: clean(str(r['description']) ?? ''),
          field: str(r['field']),
        },
      ];
    });
  }
  if (typeof o['error'] === 'string') {
    // OAuth token endpoint: {"error":"invalid_client","error_description":"…"}.
    return [
      {
        code: o['error'],
        description: clean(str(o['error_description']) ?? ''),
        field: null,
      },
    ];
  }
  if (typeof o['message'] === 'string') {
    return [{ code: null, description: clean(o['message']), field: null }];
  }
  return o['httpStatus'] !== undefined ? [] : undefined;
}

function fromHtml(html: string): JamfErrorItem | undefined {
  const pError = /<p[^>]*>\s*Error:?\s*([\s\S]*?)<\/p>/i.exec(html);
  const candidates = [
    pError?.[1],
    /<h1[^>]*>([\s\S]*?)<\/h1>/i.exec(html)?.[1],
    /<title[^>]*>([\s\S]*?)<\/title>/i.exec(html)?.[1],
  ];
  for (const c of candidates) {
    const description = c === undefined ? '' : clean(decodeEntities(c));
    if (description !== '' && !/^status page$/i.test(description)) {
      return { code: null, description, field: null };
    }
  }
  return undefined;
}

/** "DUPLICATE_FIELD packageName: A package with this name already exists". */
export function formatJamfErrors(items: readonly JamfErrorItem[]): string {
  return items
    .map(e => {
      const head = [e.code, e.field].filter(Boolean).join(' ');
      if (head === '') return e.description;
      return e.description === '' ? head : `${head}: ${e.description}`;
    })
    .filter(s => s !== '')
    .join('; ');
}

/**
 * The Jamf Pro privilege a 403 most likely lacks, from the method and path. Privilege
 * names vary between Jamf Pro versions, hence "likely".
 */
export function likelyPrivilege(method: string, path: string): string | undefined {
  const p = safePath(path);
  const verb = (create: string): string => {
    if (method === 'GET') return 'Read';
    if (method === 'DELETE') return 'Delete';
    if (method === 'PUT' || method === 'PATCH') return 'Update';
    return create;
  };
  if (/^\/api\/v1\/jcds\/refresh-inventory/.test(p)) {
    return 'Read Jamf Cloud Distribution Service Files';
  }
  if (/^\/api\/v1\/jcds\/renew-credentials/.test(p)) {
    return 'Create Jamf Cloud Distribution Service Files';
  }
  if (/^\/api\/v1\/jcds\//.test(p)) {
    return `${verb('Create')} Jamf Cloud Distribution Service Files`;
  }
  if (/^\/api\/v1\/packages\/[^/]+\/upload/.test(p)) return 'Read Packages and Update Packages';
  if (/^\/api\/v1\/packages|^\/JSSResource\/packages/.test(p)) return `${verb('Create')} Packages`;
  if (/^\/api\/v1\/categories|^\/JSSResource\/categories/.test(p)) {
    return `${verb('Create')} Categories`;
  }
  if (/^\/api\/v1\/cloud-distribution-point/.test(p)) {
    return method === 'GET' ? 'Read Cloud Distribution Point' : 'Update Cloud Distribution Point';
  }
  return undefined;
}

/** Maps an HTTP status (and Jamf's error codes) onto an AppError code. */
export function codeForStatus(status: number, items: readonly JamfErrorItem[]): ErrorCode {
  const codes = new Set(items.map(i => i.code));
  if (status === 401) return 'JAMF_AUTH_FAILED';
  if (status === 403) return 'JAMF_FORBIDDEN';
  if (status === 404) return 'JAMF_NOT_FOUND';
  if (status === 429) return 'JAMF_RATE_LIMITED';
  if (status === 408 || status >= 500) return 'JAMF_UNAVAILABLE';
  if (codes.has('UNSUPPORTED_FILE_TYPE')) return 'UNSUPPORTED_FILE_TYPE';
  if (status === 409 || codes.has('DUPLICATE_FIELD')) return 'JAMF_CONFLICT';
  if (status >= 400) return 'JAMF_BAD_REQUEST';
  return 'JAMF_BAD_RESPONSE';
}

export interface ResponseErrorInput {
  status: number;
  method: string;
  path: string;
  host: string;
  body: string;
  contentType?: string | undefined;
  retryAfterMs?: number | undefined;
}

/** A JamfApiError for a non-2xx answer. */
export function jamfErrorFromResponse(input: ResponseErrorInput): JamfApiError {
  const { status, method, host } = input;
  const path = safePath(input.path);
  const jamfErrors = parseJamfErrorBody(input.body, input.contentType);
  const code = codeForStatus(status, jamfErrors);
  const reason = STATUS_CODES[status] ?? 'Unknown status';
  const detail = formatJamfErrors(jamfErrors);
  const verb = status === 429 ? 'rate-limited' : status >= 500 ? 'failed' : 'refused';
  let message = `Jamf Pro ${verb} ${method} ${path}: ${status} ${detail === '' ? reason : detail}`;
  if (status === 401) {
    message +=
      ': the token or credentials were not accepted; check JAMF_CLIENT_ID and JAMF_CLIENT_SECRET (or JAMF_USERNAME and JAMF_PASSWORD)';
  } else if (status === 403) {
    const privilege = likelyPrivilege(method, path);
    message += privilege
      ? `: the account likely lacks the "${privilege}" privilege`
      : ': the account lacks a privilege for this call';
  }
  if (input.retryAfterMs !== undefined) {
    message += ` (Retry-After ${Math.ceil(input.retryAfterMs / 1000)} s)`;
  }
  // Explicit: within one code (JAMF_UNAVAILABLE: 502 vs 501) it depends on the status.
  const retryable = RETRYABLE_STATUSES.has(status);
  return new JamfApiError({
    code,
    message,
    method,
    path,
    host,
    status,
    jamfErrors,
    retryable,
    retryAfterMs: status === 429 || status === 503 ? input.retryAfterMs : undefined,
  });
}

/** Network error codes worth retrying (the connection may work on the next attempt). */
const RETRYABLE_NETWORK = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENETDOWN',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_CLOSED',
]);

function errorCodeOf(err: unknown): string | undefined {
  let e: unknown = err;
  for (let depth = 0; depth < 4 && typeof e === 'object' && e !== null; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

/** What to check, by network error code. */
function networkHint(code: string | undefined): string {
  switch (code) {
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return 'check JAMF_URL and DNS';
    case 'ECONNREFUSED':
      return 'nothing is listening there: check JAMF_URL (host and port)';
    case 'UND_ERR_CONNECT_TIMEOUT':
    case 'ETIMEDOUT':
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return 'check JAMF_URL, the network, a proxy or firewall';
    case 'UND_ERR_HEADERS_TIMEOUT':
    case 'UND_ERR_BODY_TIMEOUT':
      return 'Jamf Pro did not answer in time; it may be overloaded';
    default:
      return 'the connection failed; check JAMF_URL, the network, a proxy or firewall';
  }
}

export interface NetworkErrorInput {
  err: unknown;
  method: string;
  path: string;
  host: string;
}

/** A JAMF_UNREACHABLE error for a failure below HTTP (DNS, refused, reset, timeout). */
export function jamfNetworkError(input: NetworkErrorInput): JamfApiError {
  const code = errorCodeOf(input.err);
  const raw = input.err instanceof Error ? input.err.message : String(input.err);
  const what = clean(code && !raw.includes(code) ? `${code} ${raw}` : raw);
  const path = safePath(input.path);
  return new JamfApiError({
    code: 'JAMF_UNREACHABLE',
    message: `Cannot reach Jamf Pro at ${input.host} (${input.method} ${path}): ${what}: ${networkHint(code)}`,
    method: input.method,
    path,
    host: input.host,
    // Explicit: it depends on the network error (a reset is retryable, ENOTFOUND is not).
    retryable:
      code === undefined
        ? /socket hang up|other side closed/i.test(raw)
        : RETRYABLE_NETWORK.has(code),
    cause: input.err,
  });
}

export interface BadResponseInput {
  method: string;
  path: string;
  host: string;
  status: number;
  /** What was wrong: "answered HTML", "answered text/plain", "answered a body that is not JSON". */
  problem: string;
  /** What to check. @defaultValue `not the Jamf Pro API: check JAMF_URL` */
  hint?: string;
  cause?: unknown;
}

/** A 2xx answer that is not what the Jamf Pro API sends (usually a wrong JAMF_URL). */
export function jamfBadResponse(input: BadResponseInput): JamfApiError {
  const path = safePath(input.path);
  return new JamfApiError({
    code: 'JAMF_BAD_RESPONSE',
    message: `${input.method} ${path} on ${input.host} ${redactText(input.problem)}, ${input.hint ?? 'not the Jamf Pro API: check JAMF_URL'}`,
    method: input.method,
    path,
    host: input.host,
    status: input.status,
    cause: input.cause,
  });
}
