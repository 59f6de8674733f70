/**
 * Error classes with stable codes. Every error the product raises on purpose is an
 * AppError (or a subclass) whose `code` is listed in ERROR_CODES; the README's
 * troubleshooting table documents each code, and a unit test keeps the two in sync.
 *
 * Messages say what failed, the value involved and what to do. They never carry a
 * secret: anything built from a response body or a URL goes through `redactText`.
 */

export const ERROR_CODES = {
  CONFIG_INVALID: 'The environment is missing a variable or has an invalid value.',
  USAGE: 'The command line or an argument is wrong.',
  FILE_NOT_FOUND: 'A local file does not exist.',
  FILE_NOT_REGULAR: 'A path is a directory or another non-regular file.',
  FILE_UNREADABLE: 'A local file cannot be read (permissions).',
  FILE_EMPTY: 'A local file is empty (zero bytes).',
  FILE_TOO_LARGE: 'A file needs more than 10,000 parts of 5 GiB.',
  FILE_CHANGED: 'A file changed on disk while it was being uploaded.',
  UNSUPPORTED_FILE_TYPE: 'The extension is not pkg, mpkg, dmg or zip.',
  UNSAFE_FILE_NAME: 'A file name contains "/", "..", NUL or control characters.',
  DESTINATION_EXISTS: 'A download destination exists and overwrite was not asked for.',
  DESTINATION_INVALID: 'A download destination folder does not exist or cannot be written.',
  DISK_FULL: 'The disk is full (ENOSPC).',
  REDIS_UNAVAILABLE: 'Redis cannot be reached.',
  JAMF_UNREACHABLE: 'Jamf Pro cannot be reached (network error or not a Jamf Pro server).',
  JAMF_AUTH_FAILED: 'Jamf Pro refused the credentials.',
  JAMF_FORBIDDEN: 'The Jamf Pro account lacks a privilege.',
  JAMF_NOT_FOUND: 'A Jamf Pro object or endpoint does not exist.',
  JAMF_CONFLICT: 'Jamf Pro refused a duplicate (e.g. DUPLICATE_FIELD).',
  JAMF_BAD_REQUEST: 'Jamf Pro refused the request as invalid.',
  JAMF_RATE_LIMITED: 'Jamf Pro answered 429 Too Many Requests.',
  JAMF_UNAVAILABLE: 'Jamf Pro answered 5xx.',
  JAMF_BAD_RESPONSE: 'Jamf Pro answered something that is not what its API documents.',
  JCDS_UNAVAILABLE: 'The JCDS v1 endpoints are not available on this server.',
  PACKAGE_EXISTS:
    'A package with this file name exists (ifExists=fail, or skip with a different hash).',
  S3_ERROR: 'S3 refused a request.',
  S3_CREDENTIALS_EXPIRED: 'The temporary S3 credentials expired.',
  S3_SLOW_DOWN: 'S3 asked the client to slow down.',
  PART_FAILED: 'A part of a multipart upload failed for good.',
  UPLOAD_INCOMPLETE: 'S3 does not hold every part the upload needs.',
  VERIFY_FAILED: 'The stored file hash does not equal the local hash.',
  VERIFY_TIMEOUT: 'Jamf did not report the stored file hash within the time bound.',
  DOWNLOAD_FAILED: 'A download could not be completed.',
  VAULT_SECRET_MISSING: 'JCDS_FLEET_SECRET is needed to encrypt credentials in Redis.',
  VAULT_DECRYPT_FAILED:
    'Credentials in Redis cannot be decrypted (a different JCDS_FLEET_SECRET?).',
  JOB_NOT_FOUND: 'No job has this id.',
  INTERNAL: 'An unexpected error; please report it.',
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export interface AppErrorOptions {
  cause?: unknown;
  /** Extra structured facts, never secrets (shown in --json output and job failure reasons). */
  details?: Record<string, unknown>;
  /** True when retrying the same call may succeed (network, 5xx, throttling). */
  retryable?: boolean;
}

export class AppError extends Error {
  readonly code: ErrorCode;
  readonly details: Record<string, unknown> | undefined;
  readonly retryable: boolean;

  constructor(code: ErrorCode, message: string, options: AppErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.details = options.details;
    this.retryable = options.retryable ?? false;
  }

  toJSON(): Record<string, unknown> {
    return { name: this.name, code: this.code, message: this.message, details: this.details };
  }
}

/** Configuration or usage problems: exit code 2 (input) or 3 (configuration/connection). */
export class ConfigError extends AppError {}

/** The code of an error that may have lost its prototype (crossed a process boundary). */
export function errorCode(err: unknown): string | undefined {
  if (err instanceof AppError) return err.code;
  if (typeof err === 'object' && err !== null && 'code' in err) {
    const code = (err as { code: unknown }).code;
    if (typeof code === 'string') return code;
  }
  return undefined;
}

const SECRET_PATTERNS: Array<[RegExp, string]> = [
  // Authorization headers and bearer tokens.
  [/\b(basic|bearer)\s+[A-Za-z0-9._~+/=-]{8,}/gi, '$1 [REDACTED]'],
  // Query-string signatures and tokens in presigned URLs.
  [
    /([?&](?:X-Amz-Signature|X-Amz-Security-Token|X-Amz-Credential|token|access_token|client_secret)=)[^&\s"']+/gi,
    '$1[REDACTED]',
  ],
  // JSON fields that hold secrets.
  [
    /("(?:token|access_token|client_secret|clientSecret|password|secretAccessKey|sessionToken|accessKeyID|accessKeyId)"\s*:\s*")[^"]*"/gi,
    '$1[REDACTED]"',
  ],
  // key=value forms.
  [/\b((?:client_secret|password|secretAccessKey|sessionToken)=)[^&\s"']+/gi, '$1[REDACTED]'],
];

/** Removes anything that looks like a secret from free text (response bodies, URLs). */
export function redactText(text: string): string {
  let out = text;
  for (const [re, replacement] of SECRET_PATTERNS) out = out.replace(re, replacement);
  return out;
}

/** A short description of any thrown value, safe to log or show. */
export function describeError(err: unknown): string {
  if (err instanceof Error) return redactText(err.message);
  return redactText(String(err));
}
