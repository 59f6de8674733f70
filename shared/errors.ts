/**
 * Error classes with stable codes, and the registry that says everything the product
 * decides by code. Every error the product raises on purpose is an AppError (or a
 * subclass) whose `code` is a key of ERROR_REGISTRY (shared/error-registry.ts); the
 * README's troubleshooting table documents each code, and a unit test keeps the two in
 * sync.
 *
 * One entry per code, read by:
 * - `exitCodeFor` (producer/cli/exit.ts): `exit`, the `jcds` exit code when the error
 *   ends a command;
 * - `AppError`: `retryable`, the default when the throw site does not say;
 * - `isThrottle` (the worker's failure policy): `throttle`;
 * - `formatError` / `jobAdvice` (producer/cli/advice.ts): `hint` and `jobHint`.
 *
 * Messages say what failed, the value involved and what to do. They never carry a
 * secret: anything built from a response body or a URL goes through `redactText`.
 */

import { errorSpec, type ErrorCode } from './error-registry.ts';
import { redactText } from './redact.ts';

export {
  ERROR_CODES,
  ERROR_REGISTRY,
  errorSpec,
  type ErrorCode,
  type ErrorSpec,
  type ThrottleRule,
} from './error-registry.ts';

export interface AppErrorOptions {
  cause?: unknown;
  /** Extra structured facts, never secrets (shown in --json output and job failure reasons). */
  details?: Record<string, unknown>;
  /**
   * True when retrying the same call may succeed (network, 5xx, throttling).
   * @defaultValue the registry's `retryable` for the code
   */
  retryable?: boolean | undefined;
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
    // A code outside the registry (only through a cast) is not retryable, as before.
    this.retryable = options.retryable ?? errorSpec(code)?.retryable ?? false;
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

/**
 * Removes anything that looks like a secret from free text (response bodies, URLs): the
 * product's one redaction, in shared/redact.ts.
 */
export { redactText };

/** A short description of any thrown value, safe to log or show. */
export function describeError(err: unknown): string {
  if (err instanceof Error) return redactText(err.message);
  return redactText(String(err));
}

/**
 * The failure reason BullMQ stores for a job: `[CODE] message` for an AppError, the
 * message alone for anything else; redacted either way. `parseReason` reads it back.
 */
export function formatReason(err: unknown): string {
  const code = errorCode(err);
  const msg = describeError(err);
  return code && err instanceof AppError ? `[${code}] ${msg}` : msg;
}

const REASON_CODE = /^\[([A-Z][A-Z0-9_]+)\] ?/;

/**
 * The code a failure reason starts with (any `[UPPER_CASE]`, known to the registry or
 * not; check with `errorSpec`) and the message after it. A reason without one: no code,
 * the whole reason as the message.
 */
export function parseReason(reason: string): { code: string | undefined; message: string } {
  const m = REASON_CODE.exec(reason);
  return m
    ? { code: m[1], message: reason.slice(m[0].length) }
    : { code: undefined, message: reason };
}

/**
 * True when the error is throttling by its registry entry (`throttle`), read by code, so
 * it also works for an error that lost its prototype crossing a process boundary.
 *
 * A raw (non-AppError) error can be throttling too, an S3 SlowDown from the SDK. This
 * module cannot classify those without importing shared/s3/errors.ts, which imports this
 * one, so the caller passes that test: `isThrottle(err, isSlowDown)` with `isSlowDown`
 * from shared/s3/errors.ts. It is asked only for values that are not AppErrors.
 */
export function isThrottle(err: unknown, isRawThrottle?: (err: unknown) => boolean): boolean {
  const rule = errorSpec(errorCode(err))?.throttle;
  if (rule === true) return true;
  if (rule === 'status-503' && (err as { status?: unknown }).status === 503) return true;
  return !(err instanceof AppError) && isRawThrottle !== undefined && isRawThrottle(err);
}
