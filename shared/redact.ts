/**
 * The one redaction of the product: every text and value that leaves a process (a log
 * line, a job's failure reason or log, the dashboard, `/metrics`, CLI output) goes
 * through it, so a secret form added here is covered on every path at once.
 *
 * - `redactText`: free text (a response body, a URL, an error message, a stack). Secrets
 *   are found by their form, whatever carries them: headers as text
 *   (`Authorization: Bearer …`, `Authorization: AWS4-HMAC-SHA256 Credential=…, Signature=…`,
 *   `x-amz-security-token: …`, `Cookie: …`), query strings and form bodies
 *   (`X-Amz-Signature=…`, `client_secret=…`), JSON and JavaScript object text
 *   (`"sessionToken":"…"`, `secretAccessKey: '…'`, escaped JSON inside JSON), S3's XML
 *   (`<SessionToken>…</SessionToken>`, `<AWSAccessKeyId>`), AWS access key ids
 *   (`AKIA…`/`ASIA…`) and URL user info (`scheme://user:password@host`).
 * - `redactValue`: a deep copy of any value with every string redacted, every key that
 *   names a secret masked, and every error serialized (`serializeError`).
 * - `serializeError`: an error as the logger prints it (pino's layout: type, message and
 *   stack with the whole `cause` chain appended, AggregateError's `errors`, the error's
 *   own fields), every part redacted. pino's own serializer prints causes as they are.
 *
 * False positives are kept rare: a name is only taken for a secret when it is followed by
 * `:` or `=` and a value (or is a header whose value starts with an auth scheme), so prose
 * such as "the password is wrong" is left alone.
 */

export const REDACTED = '[REDACTED]';

/** Names whose value is a secret, as they appear in JSON, object text, forms and queries. */
const SECRET_NAMES = [
  'x-amz-security-token',
  'x-amz-credential',
  'x-amz-signature',
  'proxy-authorization',
  'authorization',
  'set-cookie',
  'cookie',
  'x-api-key',
  'api[_-]?key',
  'access[_-]?token',
  'refresh[_-]?token',
  'id[_-]?token',
  'session[_-]?token',
  'token',
  'client[_-]?secret',
  'fleet[_-]?secret',
  'secret[_-]?access[_-]?key',
  'secret',
  'access[_-]?key[_-]?id',
  'password',
  'passwd',
  'credential',
  'signature',
  'signatureprovided',
].join('|');

// Each pattern keeps the name and its punctuation and replaces the value only.
const SECRET_PATTERNS: Array<[RegExp, string]> = [
  // Quoted values after a name, quoted or not: JSON (`"token":"…"`), escaped JSON inside a
  // JSON string (`\"token\":\"…\"`), JavaScript object text (`sessionToken: '…'`).
  [
    new RegExp(
      `(\\\\*["']?)\\b(${SECRET_NAMES})\\1(\\s*[:=]\\s*)(\\\\*["'])[^"'\\\\\\r\\n]*`,
      'gi',
    ),
    `$1$2$1$3$4${REDACTED}`,
  ],
  // An Authorization header as text: the whole value, whatever the scheme (Bearer, Basic,
  // AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…).
  [
    /\b((?:proxy-)?authorization)(\s*:\s*)(?:bearer|basic|digest|negotiate|token|aws4-hmac-sha256|aws)\b[^\r\n"'<]*/gi,
    `$1$2${REDACTED}`,
  ],
  // Cookies as header text: the whole value.
  [/\b((?:set-)?cookie)(\s*:\s*)(?!\s*\[REDACTED\])[^\r\n"'<]+/gi, `$1$2${REDACTED}`],
  // Token headers as text (`x-amz-security-token: …`, also inside S3's CanonicalRequest).
  [
    /\b(x-amz-security-token|x-amz-credential|x-amz-signature|x-api-key)(\s*:\s*)(?!\s*\[REDACTED\])[^\s"'<,;&]+/gi,
    `$1$2${REDACTED}`,
  ],
  // name=value in query strings, form bodies and AWS4 headers (`Credential=…, Signature=…`),
  // `=` percent-encoded too (a URL inside a URL).
  [
    new RegExp(`(^|[^\\w-])(${SECRET_NAMES})(=|%3D)(?!\\[REDACTED\\])[^&\\s"',;<]+`, 'gi'),
    `$1$2$3${REDACTED}`,
  ],
  // Settings as typed (`JAMF_CLIENT_SECRET=…`, `JCDS_FLEET_SECRET=…`, `REDIS_PASSWORD=…`).
  [
    /\b([A-Z][A-Z0-9_]*(?:SECRET|PASSWORD|PASSWD|TOKEN))(=)(?!\[REDACTED\])[^\s"'&]+/g,
    `$1$2${REDACTED}`,
  ],
  // CloudFront signed URLs (the JCDS download URL form).
  [/([?&](?:Key-Pair-Id|Policy)=)[^&\s"'<]+/gi, `$1${REDACTED}`],
  // Bearer and Basic credentials anywhere.
  [/\b(basic|bearer)\s+(?!\[REDACTED\])[A-Za-z0-9._~+/=-]{8,}/gi, `$1 ${REDACTED}`],
  // S3 and STS XML: credentials (AssumeRole answers) and what S3 echoes back on
  // SignatureDoesNotMatch.
  [
    /<((?:\w+:)?(?:SessionToken|SecretAccessKey|AccessKeyId|AWSAccessKeyId|SignatureProvided|Signature|Credential|Token|Password|ClientSecret|access_token))>[^<]*<\/\1>/gi,
    `<$1>${REDACTED}</$1>`,
  ],
  // AWS access key ids (long-term AKIA…, temporary ASIA…) wherever they stand.
  [/\b(?:AKIA|ASIA)[A-Z2-7]{16}\b/g, REDACTED],
  // A password in a URL's user info (`redis://:pw@host`, `https://user:pw@host`).
  [/\b([a-z][a-z0-9+.-]*:\/\/[^\s/?#@:"'<]*):[^\s/?#@"'<]+@/gi, `$1:${REDACTED}@`],
];

/** Removes anything that looks like a secret from free text (response bodies, URLs, stacks). */
export function redactText(text: string): string {
  let out = text;
  for (const [re, replacement] of SECRET_PATTERNS) out = out.replace(re, replacement);
  return out;
}

const SECRET_KEY =
  /^(password|passwd|secret|client_?secret|fleet_?secret|token|access_?token|refresh_?token|id_?token|bearer|authorization|proxy-authorization|cookie|set-cookie|session_?token|secret_?access_?key|access_?key_?id|api_?key|x-api-key|x-amz-security-token|credentials?)$/i;

/** True when an object key names a secret (its value is masked whatever it is). */
export function isSecretKey(key: string): boolean {
  return SECRET_KEY.test(key);
}

const MAX_DEPTH = 10;

/** Values `serializeError` produced: the logger's `err` serializer leaves them as they are. */
const serialized = new WeakSet<object>();

export function isSerializedError(value: unknown): boolean {
  return typeof value === 'object' && value !== null && serialized.has(value);
}

/** Error-like as pino sees it: anything with a string `message` and a stack or a name. */
export function isErrorLike(value: unknown): value is Error {
  if (value instanceof Error) return true;
  if (typeof value !== 'object' || value === null) return false;
  const v = value as { message?: unknown; stack?: unknown; name?: unknown };
  return (
    typeof v.message === 'string' && (typeof v.stack === 'string' || typeof v.name === 'string')
  );
}

/** The error's cause when it is error-like (VError's function form too). */
function causeOf(err: Error): Error | undefined {
  let cause = (err as { cause?: unknown }).cause;
  if (typeof cause === 'function') {
    try {
      cause = (cause as () => unknown)();
    } catch {
      return undefined;
    }
  }
  return isErrorLike(cause) ? cause : undefined;
}

/**
 * An error as a plain, redacted object: `type`, `message` and `stack` with every cause of
 * the chain appended (pino's `caused by:` layout), `aggregateErrors` for AggregateError's
 * `errors`, a cause that is not an error as `cause`, and the error's own enumerable fields
 * (`code`, `details`, an SDK's `$metadata` …) redacted like any value.
 */
export function serializeError(err: Error, depth = 0, seen = new WeakSet<object>()): unknown {
  if (seen.has(err)) return '[Circular]';
  seen.add(err);
  const chain: Error[] = [];
  for (let e: Error | undefined = err; e && !chain.includes(e); e = causeOf(e)) chain.push(e);
  const out: Record<string, unknown> = {
    type:
      typeof err.constructor === 'function' && err.constructor.name
        ? err.constructor.name
        : err.name,
    message: chain.map(e => redactText(e.message ?? '')).join(': '),
    stack: chain.map(e => redactText(e.stack ?? '')).join('\ncaused by: '),
  };
  const rawCause = (err as { cause?: unknown }).cause;
  if (rawCause !== undefined && typeof rawCause !== 'function' && !isErrorLike(rawCause))
    out['cause'] = redactValue(rawCause, depth + 1, seen);
  // AggregateError's errors, from the error and from every cause of its chain.
  const errors = chain.flatMap(e => {
    const list = (e as { errors?: unknown }).errors;
    return Array.isArray(list) ? list : [];
  });
  if (errors.length > 0)
    out['aggregateErrors'] = errors.map(e =>
      isErrorLike(e) ? serializeError(e, depth + 1, seen) : redactValue(e, depth + 1, seen),
    );
  for (const key of Object.keys(err)) {
    if (key in out || key === 'cause' || key === 'errors') continue;
    const v = (err as unknown as Record<string, unknown>)[key];
    out[key] =
      key === 'command' && carriesCredentials(v)
        ? { name: v.name, args: [REDACTED] }
        : maskOrRedact(key, v, depth + 1, seen);
  }
  serialized.add(out);
  return out;
}

/**
 * ioredis puts the failed command on its errors (`command: {name, args}`): for AUTH, and
 * HELLO … AUTH, the args are REDIS_URL's user name and password in clear (a wrong password
 * logs WRONGPASS with them). These commands' args are masked whole.
 */
function carriesCredentials(v: unknown): v is { name: string } {
  const name = (v as { name?: unknown } | null)?.name;
  return typeof name === 'string' && /^(auth|hello|acl|config|migrate)$/i.test(name);
}

function maskOrRedact(key: string, v: unknown, depth: number, seen: WeakSet<object>): unknown {
  if (isSecretKey(key) && v !== null && v !== undefined && v !== '') return REDACTED;
  return redactValue(v, depth, seen);
}

/**
 * A redacted deep copy of any value (depth-limited, cycles cut): strings through
 * `redactText`, secret-named keys masked, errors through `serializeError`, binary data as
 * its length. Numbers, booleans, null and undefined are kept.
 */
export function redactValue(value: unknown, depth = 0, seen = new WeakSet<object>()): unknown {
  if (typeof value === 'string') return redactText(value);
  if (typeof value === 'function' || typeof value === 'symbol') return undefined;
  if (value === null || typeof value !== 'object') return value;
  if (serialized.has(value)) return value;
  if (depth > MAX_DEPTH) return '[…]';
  if (isErrorLike(value)) return serializeError(value, depth, seen);
  if (seen.has(value)) return '[Circular]';
  if (ArrayBuffer.isView(value) || value instanceof ArrayBuffer)
    return `[${value.byteLength} bytes]`;
  seen.add(value);
  try {
    if (Array.isArray(value)) return value.map(v => redactValue(v, depth + 1, seen));
    if (value instanceof Date) return value;
    const toJSON = (value as { toJSON?: unknown }).toJSON;
    if (typeof toJSON === 'function')
      return redactValue((toJSON as () => unknown).call(value), depth + 1, seen);
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = maskOrRedact(k, v, depth + 1, seen);
    return out;
  } finally {
    seen.delete(value);
  }
}
