/**
 * AWS Signature Version 4 as S3 checks it: header-signed requests (Authorization header)
 * and presigned URLs (X-Amz-* query), with temporary credentials (session token) looked up
 * in the simulator's CredentialRegistry.
 *
 * Canonical URI: S3 does not normalise paths; each path segment is percent-decoded and then
 * URI-encoded once (RFC 3986 unreserved characters kept, "+" is a literal plus and becomes
 * %2B). Canonical query: every parameter name and value decoded then encoded, sorted.
 * The order of checks follows S3: unknown key, expired presigned URL, session token, token
 * expiry, then the signature.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { CredentialRegistry, IssuedCredential } from '../types.ts';
import { s3Errors } from './errors.ts';

export const ALGORITHM = 'AWS4-HMAC-SHA256';
export const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
const MAX_SKEW_MS = 15 * 60_000;
const MAX_PRESIGN_SECONDS = 7 * 24 * 3600;

/** URI-encodes per SigV4: everything but A-Z a-z 0-9 - _ . ~ as %XX (upper-case hex). */
export function uriEncode(text: string): string {
  return encodeURIComponent(text).replace(
    /[!'()*]/g,
    c => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}

/** Percent-decodes (no "+" to space); undefined when the text is not valid UTF-8 escapes. */
export function percentDecode(text: string): string | undefined {
  try {
    return decodeURIComponent(text);
  } catch {
    return undefined;
  }
}

export function canonicalUri(rawPath: string): string {
  return rawPath
    .split('/')
    .map(seg => uriEncode(percentDecode(seg) ?? seg))
    .join('/');
}

/** Decoded query parameters in order of appearance. */
export function parseQuery(rawQuery: string): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (const pair of rawQuery.split('&')) {
    if (pair === '') continue;
    const i = pair.indexOf('=');
    const name = i < 0 ? pair : pair.slice(0, i);
    const value = i < 0 ? '' : pair.slice(i + 1);
    out.push([percentDecode(name) ?? name, percentDecode(value) ?? value]);
  }
  return out;
}

export function canonicalQuery(params: Array<[string, string]>, omit?: string): string {
  return params
    .filter(([name]) => name !== omit)
    .map(([n, v]) => [uriEncode(n), uriEncode(v)] as const)
    .sort(([an, av], [bn, bv]) => (an < bn ? -1 : an > bn ? 1 : av < bv ? -1 : av > bv ? 1 : 0))
    .map(([n, v]) => `${n}=${v}`)
    .join('&');
}

/** `name:value\n` for each signed header, from Node's rawHeaders (repeats joined with ","). */
export function canonicalHeaders(rawHeaders: string[], signed: string[]): string {
  const values = new Map<string, string[]>();
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const name = (rawHeaders[i] ?? '').toLowerCase();
    const list = values.get(name) ?? [];
    list.push((rawHeaders[i + 1] ?? '').trim().replace(/\s+/g, ' '));
    values.set(name, list);
  }
  return signed.map(name => `${name}:${(values.get(name) ?? []).join(',')}\n`).join('');
}

export function canonicalRequest(parts: {
  method: string;
  uri: string;
  query: string;
  headers: string;
  signedHeaders: string[];
  payloadHash: string;
}): string {
  return [
    parts.method,
    parts.uri,
    parts.query,
    parts.headers,
    parts.signedHeaders.join(';'),
    parts.payloadHash,
  ].join('\n');
}

export const sha256Hex = (data: string | Buffer): string =>
  createHash('sha256').update(data).digest('hex');

export function stringToSign(amzDate: string, scope: string, canonical: string): string {
  return [ALGORITHM, amzDate, scope, sha256Hex(canonical)].join('\n');
}

export function signingKey(secret: string, date: string, region: string, service: string): Buffer {
  const kDate = createHmac('sha256', `AWS4${secret}`).update(date).digest();
  const kRegion = createHmac('sha256', kDate).update(region).digest();
  const kService = createHmac('sha256', kRegion).update(service).digest();
  return createHmac('sha256', kService).update('aws4_request').digest();
}

export const hmacHex = (key: Buffer, data: string): string =>
  createHmac('sha256', key).update(data).digest('hex');

export function sameSignature(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** "20130524T000000Z" to epoch ms; undefined when malformed. */
export function parseAmzDate(text: string): number | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(text);
  if (!m) return undefined;
  const [, y, mo, d, h, mi, s] = m.map(Number) as number[];
  return Date.UTC(y ?? 0, (mo ?? 1) - 1, d, h, mi, s);
}

export interface AuthInput {
  method: string;
  rawPath: string;
  query: Array<[string, string]>;
  rawHeaders: string[];
  headers: Record<string, string | string[] | undefined>;
}

/** What a verified request carries forward (aws-chunked bodies sign each chunk with it). */
export interface AuthResult {
  credential: IssuedCredential;
  presigned: boolean;
  payloadHash: string;
  signingKey: Buffer;
  amzDate: string;
  scope: string;
  signature: string;
}

interface SignatureParts {
  accessKeyId: string;
  scopeDate: string;
  region: string;
  service: string;
  terminator: string;
  signedHeaders: string[];
  signature: string;
  amzDate: string;
}

const header = (h: AuthInput['headers'], name: string): string | undefined => {
  const v = h[name];
  return Array.isArray(v) ? v.join(',') : v;
};

function parseCredential(
  text: string,
): Omit<SignatureParts, 'signedHeaders' | 'signature' | 'amzDate'> | undefined {
  const c = text.split('/');
  if (c.length !== 5) return undefined;
  const [accessKeyId = '', scopeDate = '', region = '', service = '', terminator = ''] = c;
  return { accessKeyId, scopeDate, region, service, terminator };
}

function fromHeader(input: AuthInput, auth: string): SignatureParts {
  if (!auth.startsWith(`${ALGORITHM} `)) {
    throw s3Errors.invalidArgument(
      'Unsupported Authorization Type',
      'Authorization',
      auth.split(' ')[0] ?? '',
    );
  }
  const fields = new Map<string, string>();
  for (const part of auth.slice(ALGORITHM.length).split(',')) {
    const i = part.indexOf('=');
    if (i > 0) fields.set(part.slice(0, i).trim(), part.slice(i + 1).trim());
  }
  const cred = parseCredential(fields.get('Credential') ?? '');
  const signedHeaders = fields.get('SignedHeaders');
  const signature = fields.get('Signature');
  if (!cred || !signedHeaders || !signature) {
    throw s3Errors.authHeaderMalformed(
      'the Credential, SignedHeaders and Signature parts are required',
    );
  }
  const amzDate = header(input.headers, 'x-amz-date') ?? '';
  return { ...cred, signedHeaders: signedHeaders.split(';'), signature, amzDate };
}

function fromQuery(q: Map<string, string>): SignatureParts & { expires: number } {
  if (q.get('X-Amz-Algorithm') !== ALGORITHM) {
    throw s3Errors.authQueryError(`X-Amz-Algorithm only supports "${ALGORITHM}"`);
  }
  const cred = parseCredential(q.get('X-Amz-Credential') ?? '');
  const signedHeaders = q.get('X-Amz-SignedHeaders');
  const signature = q.get('X-Amz-Signature');
  const amzDate = q.get('X-Amz-Date') ?? '';
  const expires = Number(q.get('X-Amz-Expires'));
  if (!cred || !signedHeaders || !signature || !amzDate) {
    throw s3Errors.authQueryError(
      'Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters.',
    );
  }
  if (!Number.isInteger(expires) || expires < 1 || expires > MAX_PRESIGN_SECONDS) {
    throw s3Errors.authQueryError(
      'X-Amz-Expires must be less than a week (in seconds) that is 604800',
    );
  }
  return { ...cred, signedHeaders: signedHeaders.split(';'), signature, amzDate, expires };
}

/**
 * Verifies a request's SigV4 signature and credentials; returns what the body checks need,
 * or throws the S3Error S3 would answer.
 */
export function authenticate(
  input: AuthInput,
  deps: { credentials: CredentialRegistry; region: string; now: number },
): AuthResult {
  const q = new Map(input.query);
  const auth = header(input.headers, 'authorization');
  const presigned = auth === undefined && q.has('X-Amz-Signature');
  if (auth === undefined && !presigned) {
    if (q.has('X-Amz-Credential') || q.has('X-Amz-Algorithm')) {
      throw s3Errors.authQueryError(
        'Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters.',
      );
    }
    throw s3Errors.accessDenied();
  }
  const parts: SignatureParts & { expires?: number } = presigned
    ? fromQuery(q)
    : fromHeader(input, auth ?? '');
  const requestTime = parseAmzDate(parts.amzDate);
  if (requestTime === undefined) {
    throw s3Errors.accessDenied('AWS authentication requires a valid Date or x-amz-date header');
  }
  if (parts.region !== deps.region) {
    throw s3Errors.authHeaderMalformed(
      `the region '${parts.region}' is wrong; expecting '${deps.region}'`,
    );
  }
  if (
    parts.service !== 's3' ||
    parts.terminator !== 'aws4_request' ||
    parts.scopeDate !== parts.amzDate.slice(0, 8)
  ) {
    throw s3Errors.authHeaderMalformed('the credential scope is invalid');
  }
  const credential = deps.credentials.get(parts.accessKeyId);
  if (!credential) throw s3Errors.invalidAccessKeyId(parts.accessKeyId);
  if (parts.expires !== undefined) {
    if (deps.now > requestTime + parts.expires * 1000) {
      throw s3Errors.accessDenied('Request has expired');
    }
  } else if (Math.abs(deps.now - requestTime) > MAX_SKEW_MS) {
    throw s3Errors.timeTooSkewed();
  }
  const token = presigned
    ? q.get('X-Amz-Security-Token')
    : header(input.headers, 'x-amz-security-token');
  if (token !== credential.sessionToken) throw s3Errors.invalidToken();
  if (deps.now >= credential.expiresAt) throw s3Errors.expiredToken();

  const payloadHash = presigned
    ? (header(input.headers, 'x-amz-content-sha256') ?? 'UNSIGNED-PAYLOAD')
    : header(input.headers, 'x-amz-content-sha256');
  if (payloadHash === undefined) {
    throw s3Errors.invalidRequest('Missing required header for this request: x-amz-content-sha256');
  }
  const scope = `${parts.scopeDate}/${parts.region}/${parts.service}/${parts.terminator}`;
  const key = signingKey(credential.secretAccessKey, parts.scopeDate, parts.region, parts.service);
  const check = (method: string): { canonical: string; toSign: string; ok: boolean } => {
    const canonical = canonicalRequest({
      method,
      uri: canonicalUri(input.rawPath),
      query: canonicalQuery(input.query, presigned ? 'X-Amz-Signature' : undefined),
      headers: canonicalHeaders(input.rawHeaders, parts.signedHeaders),
      signedHeaders: parts.signedHeaders,
      payloadHash,
    });
    const toSign = stringToSign(parts.amzDate, scope, canonical);
    return { canonical, toSign, ok: sameSignature(hmacHex(key, toSign), parts.signature) };
  };
  const result = check(input.method);
  // Deliberate difference from S3: a URL presigned for GET also answers HEAD. JCDS download
  // URLs behave that way (clients HEAD them for the size, design.md section 9).
  const headOnGet = !result.ok && presigned && input.method === 'HEAD' && check('GET').ok;
  if (!result.ok && !headOnGet) {
    throw s3Errors.signatureDoesNotMatch({
      AWSAccessKeyId: parts.accessKeyId,
      StringToSign: result.toSign,
      SignatureProvided: parts.signature,
      CanonicalRequest: result.canonical,
    });
  }
  return {
    credential,
    presigned,
    payloadHash,
    signingKey: key,
    amzDate: parts.amzDate,
    scope,
    signature: parts.signature,
  };
}
