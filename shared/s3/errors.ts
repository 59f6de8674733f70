/**
 * Classifies S3 errors by `name`/`Code`, which S3-compatible servers spell the same way
 * (tus s3-store's isS3NotFoundError approach), and turns them into AppErrors whose
 * messages carry no credential.
 */
import { AppError, redactText } from '../errors.ts';

interface S3LikeError {
  name?: string;
  Code?: string;
  code?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number };
  $retryable?: unknown;
}

export function s3Code(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const e = err as S3LikeError;
  return e.Code ?? e.name ?? e.code;
}

export function s3Status(err: unknown): number | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  return (err as S3LikeError).$metadata?.httpStatusCode;
}

const EXPIRED = new Set([
  'ExpiredToken',
  'TokenRefreshRequired',
  'RequestExpired',
  'ExpiredTokenException',
]);
const THROTTLE = new Set([
  'SlowDown',
  'Throttling',
  'ThrottlingException',
  'RequestLimitExceeded',
  'TooManyRequests',
]);
const NETWORK = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'EPIPE',
  'ETIMEDOUT',
  'TimeoutError',
  'RequestTimeout',
  'socket hang up',
  'NetworkingError',
]);

export const isExpiredToken = (err: unknown): boolean => EXPIRED.has(s3Code(err) ?? '');
export const isSlowDown = (err: unknown): boolean =>
  THROTTLE.has(s3Code(err) ?? '') || s3Status(err) === 503;
export const isNoSuchUpload = (err: unknown): boolean => s3Code(err) === 'NoSuchUpload';
export const isNotFound = (err: unknown): boolean =>
  ['NotFound', 'NoSuchKey', 'NoSuchUpload'].includes(s3Code(err) ?? '') || s3Status(err) === 404;
export const isAccessDenied = (err: unknown): boolean =>
  s3Code(err) === 'AccessDenied' || s3Status(err) === 403;

/**
 * Transient: network errors, 5xx, throttling, expired credentials (renewable), and
 * BadDigest (bytes corrupted in flight).
 */
export function isRetryableS3(err: unknown): boolean {
  const code = s3Code(err) ?? '';
  const status = s3Status(err);
  if (isExpiredToken(err) || isSlowDown(err)) return true;
  if (NETWORK.has(code)) return true;
  // The bytes S3 received do not match the part's checksum (x-amz-checksum-crc32 or
  // Content-MD5): corrupted on the way. Each attempt of a part job reads its range again
  // and computes its checksum again, so another attempt sends good bytes; a cause that
  // persists still fails once the attempts are used up.
  if (code === 'BadDigest') return true;
  // Only for errors without an HTTP answer: S3's own messages say "aborted" too
  // (NoSuchUpload: "…the upload may have been aborted or completed"), which is permanent.
  if (
    status === undefined &&
    /ECONNRESET|socket hang up|EPIPE|ECONNREFUSED|aborted/i.test((err as Error)?.message ?? '')
  )
    return true;
  return status === undefined ? true : status >= 500;
}

export function toS3AppError(err: unknown, what: string): AppError {
  if (err instanceof AppError) return err;
  const code = s3Code(err) ?? 'Unknown';
  const status = s3Status(err);
  const message = redactText((err as Error)?.message ?? String(err));
  const appCode = isExpiredToken(err)
    ? 'S3_CREDENTIALS_EXPIRED'
    : isSlowDown(err)
      ? 'S3_SLOW_DOWN'
      : 'S3_ERROR';
  return new AppError(
    appCode,
    `S3 refused ${what}: ${code}${status ? ` (HTTP ${status})` : ''}: ${message}`,
    {
      cause: err,
      // Explicit: S3_ERROR's retryability depends on the S3 code and HTTP status (the other
      // two codes are always retryable, as their registry entries say).
      retryable: isRetryableS3(err),
      details: { s3Code: code, status },
    },
  );
}
