/**
 * The error registry (shared/errors.ts): one entry per code that every decision by code
 * reads (exit code, default retryability, throttling, advice), and the one failure-reason
 * format (`[CODE] message`) with its parser.
 */
import { describe, expect, it } from 'vitest';
import {
  AppError,
  ERROR_CODES,
  ERROR_REGISTRY,
  errorSpec,
  formatReason,
  isThrottle,
  parseReason,
  type ErrorCode,
} from '../../../shared/errors.ts';
import { JamfApiError, jamfErrorFromResponse } from '../../../shared/jamf/errors.ts';
import { isSlowDown, toS3AppError } from '../../../shared/s3/errors.ts';
import { exitCodeFor } from '../../../producer/cli/exit.ts';

const CODES = Object.keys(ERROR_REGISTRY) as ErrorCode[];

/** The exit-code rules before the registry (prefixes and two sets), to prove none changed. */
function exitByOldRules(code: string): number {
  if (
    // JOB_NOT_FAILED: added with `jcds retry` (issue 15), an input error like JOB_NOT_FOUND.
    [
      'USAGE',
      'UNSUPPORTED_FILE_TYPE',
      'UNSAFE_FILE_NAME',
      'JOB_NOT_FOUND',
      'JOB_NOT_FAILED',
      // Added with issue 13 section 2, input errors: a job not made by jcds, a link
      // leaving a synced folder.
      'JOB_DATA_INVALID',
      'SYMLINK_OUTSIDE',
    ].includes(code) ||
    code.startsWith('FILE_') ||
    code.startsWith('DESTINATION_')
  )
    return 2;
  if (
    [
      'CONFIG_INVALID',
      'REDIS_UNAVAILABLE',
      'JCDS_UNAVAILABLE',
      'VAULT_SECRET_MISSING',
      'VAULT_DECRYPT_FAILED',
      // Added with the registry (issue 12): a server that cannot store any upload.
      'NO_CLOUD_DISTRIBUTION_POINT',
      // Added with issue 13: a worker refuses a Redis that may evict BullMQ's keys.
      'REDIS_EVICTION_POLICY',
      // Added with issue 13 section 4: a worker whose fleet secret is not the fleet's.
      'FLEET_SECRET_MISMATCH',
    ].includes(code) ||
    code.startsWith('JAMF_')
  )
    return 3;
  return 1;
}

const jamf503 = (status: number): JamfApiError =>
  jamfErrorFromResponse({ status, method: 'GET', path: '/api/v1/packages', host: 'h', body: '' });

describe('the registry', () => {
  it('has a valid entry for every code', () => {
    expect(CODES.length).toBeGreaterThan(30);
    for (const code of CODES) {
      const spec = errorSpec(code);
      expect(spec, code).toBe(ERROR_REGISTRY[code]);
      expect(spec!.summary, code).toMatch(/^\S.*\.$/);
      expect([1, 2, 3], code).toContain(spec!.exit);
      expect(typeof spec!.retryable, code).toBe('boolean');
      expect([true, false, 'status-503'], code).toContain(spec!.throttle);
      for (const hint of [spec!.hint, spec!.jobHint]) {
        if (hint !== undefined) expect(hint.trim(), code).not.toBe('');
      }
    }
  });

  it('derives ERROR_CODES: the same codes, in order, with the summaries', () => {
    expect(Object.keys(ERROR_CODES)).toEqual(CODES);
    for (const code of CODES) expect(ERROR_CODES[code]).toBe(ERROR_REGISTRY[code].summary);
  });

  it('knows only its own codes', () => {
    for (const code of ['NOPE', 'toString', 'constructor', '__proto__', 'ENOENT', '', undefined]) {
      expect(errorSpec(code), String(code)).toBeUndefined();
    }
  });

  it('pins which codes are retryable by default and which throttle', () => {
    expect(CODES.filter(c => ERROR_REGISTRY[c].retryable)).toEqual([
      'REDIS_UNAVAILABLE',
      'JAMF_UNREACHABLE',
      'JAMF_RATE_LIMITED',
      'JAMF_UNAVAILABLE',
      'S3_CREDENTIALS_EXPIRED',
      'S3_SLOW_DOWN',
      'UPLOAD_INCOMPLETE',
      'VERIFY_TIMEOUT',
      // Added with fencing (issue 13): not the job's failure; the policy never counts it.
      'LOCK_LOST',
    ]);
    expect(
      Object.fromEntries(
        CODES.filter(c => ERROR_REGISTRY[c].throttle !== false).map(c => [
          c,
          ERROR_REGISTRY[c].throttle,
        ]),
      ),
    ).toEqual({ JAMF_RATE_LIMITED: true, JAMF_UNAVAILABLE: 'status-503', S3_SLOW_DOWN: true });
  });
});

describe('exitCodeFor reads the registry', () => {
  it('gives every code its entry, which is what the rules before the registry gave', () => {
    for (const code of CODES) {
      expect(exitCodeFor(new AppError(code, 'x')), code).toBe(ERROR_REGISTRY[code].exit);
      expect(ERROR_REGISTRY[code].exit, code).toBe(exitByOldRules(code));
      // A code that crossed a process boundary (a plain object) counts the same.
      expect(exitCodeFor({ code, message: 'x' }), code).toBe(ERROR_REGISTRY[code].exit);
    }
  });

  it('keeps commander errors at 2 and unknown or missing codes at 1', () => {
    expect(exitCodeFor(Object.assign(new Error('x'), { code: 'commander.missingArgument' }))).toBe(
      2,
    );
    expect(exitCodeFor(Object.assign(new Error('x'), { code: 'ENOENT' }))).toBe(1);
    expect(exitCodeFor(Object.assign(new Error('x'), { code: 'toString' }))).toBe(1);
    expect(exitCodeFor(new Error('x'))).toBe(1);
    expect(exitCodeFor('a string')).toBe(1);
  });
});

describe('AppError retryable', () => {
  it('defaults to the registry value for the code', () => {
    for (const code of CODES) {
      expect(new AppError(code, 'x').retryable, code).toBe(ERROR_REGISTRY[code].retryable);
      expect(new AppError(code, 'x', { retryable: undefined }).retryable, code).toBe(
        ERROR_REGISTRY[code].retryable,
      );
    }
  });

  it('takes an explicit option over the default, either way', () => {
    expect(new AppError('UPLOAD_INCOMPLETE', 'x', { retryable: false }).retryable).toBe(false);
    expect(new AppError('DOWNLOAD_FAILED', 'x', { retryable: true }).retryable).toBe(true);
  });

  it('is false for a code outside the registry (only reachable through a cast)', () => {
    expect(new AppError('SOMETHING_NEW' as ErrorCode, 'x').retryable).toBe(false);
    expect(new AppError(undefined as unknown as ErrorCode, 'x').retryable).toBe(false);
  });

  it('keeps the instance-dependent overrides of JamfApiError and toS3AppError', () => {
    expect(jamf503(503).retryable).toBe(true);
    expect(jamf503(501).retryable).toBe(false);
    expect(jamf503(429).retryable).toBe(true);
    expect(jamf503(404).retryable).toBe(false);
    // No explicit value: the registry's.
    const bad = new JamfApiError({
      code: 'JAMF_BAD_RESPONSE',
      message: 'x',
      method: 'GET',
      path: '/',
      host: 'h',
    });
    expect(bad.retryable).toBe(false);
    const s3 = (Code: string, httpStatusCode: number): AppError =>
      toS3AppError(Object.assign(new Error(Code), { Code, $metadata: { httpStatusCode } }), 'x');
    expect(s3('InternalError', 500)).toMatchObject({ code: 'S3_ERROR', retryable: true });
    expect(s3('AccessDenied', 403)).toMatchObject({ code: 'S3_ERROR', retryable: false });
    expect(s3('SlowDown', 503)).toMatchObject({ code: 'S3_SLOW_DOWN', retryable: true });
    expect(s3('ExpiredToken', 400)).toMatchObject({
      code: 'S3_CREDENTIALS_EXPIRED',
      retryable: true,
    });
  });
});

describe('formatReason and parseReason', () => {
  it('round-trips an AppError', () => {
    const reason = formatReason(new AppError('PACKAGE_EXISTS', 'a.pkg exists in Jamf Pro.'));
    expect(reason).toBe('[PACKAGE_EXISTS] a.pkg exists in Jamf Pro.');
    expect(parseReason(reason)).toEqual({
      code: 'PACKAGE_EXISTS',
      message: 'a.pkg exists in Jamf Pro.',
    });
  });

  it('keeps a message that itself starts with brackets', () => {
    const reason = formatReason(new AppError('USAGE', '[NOT_A_CODE] and [MORE] x'));
    expect(reason).toBe('[USAGE] [NOT_A_CODE] and [MORE] x');
    expect(parseReason(reason)).toEqual({ code: 'USAGE', message: '[NOT_A_CODE] and [MORE] x' });
    // Leading spaces of the message survive too.
    expect(parseReason(formatReason(new AppError('USAGE', '  x')))).toEqual({
      code: 'USAGE',
      message: '  x',
    });
  });

  it('reads an unknown code as it is (the registry tells whether it is known)', () => {
    const reason = formatReason(new AppError('SOMETHING_NEW' as ErrorCode, 'from a newer worker'));
    expect(reason).toBe('[SOMETHING_NEW] from a newer worker');
    expect(parseReason(reason)).toEqual({ code: 'SOMETHING_NEW', message: 'from a newer worker' });
    expect(errorSpec(parseReason(reason).code)).toBeUndefined();
  });

  it('gives a non-AppError its message alone, and no code', () => {
    expect(formatReason(new Error('socket hang up'))).toBe('socket hang up');
    expect(parseReason('socket hang up')).toEqual({ code: undefined, message: 'socket hang up' });
    // A code that lost its prototype is not written: only AppErrors get a prefix.
    expect(formatReason({ code: 'FILE_CHANGED', message: 'x' })).toBe('[object Object]');
    expect(formatReason('plain')).toBe('plain');
    expect(formatReason(undefined)).toBe('undefined');
    for (const r of ['', '[lower] x', '[1X] x', '[A] x', '[AB]x', 'x [AB] y']) {
      const parsed = parseReason(r);
      if (r === '[AB]x') expect(parsed).toEqual({ code: 'AB', message: 'x' });
      else expect(parsed, r).toEqual({ code: undefined, message: r });
    }
  });

  it('redacts secrets in AppError and plain messages', () => {
    const app = formatReason(
      new AppError(
        'JAMF_AUTH_FAILED',
        'refused Bearer abcdefghijklmnopqrst (client_secret=hunter22)',
      ),
    );
    expect(app).toMatch(/^\[JAMF_AUTH_FAILED\] refused Bearer \[REDACTED\]/);
    expect(app).not.toContain('abcdefghijklmnopqrst');
    expect(app).not.toContain('hunter22');
    const plain = formatReason(new Error('GET https://s3/x?X-Amz-Signature=deadbeef01 failed'));
    expect(plain).not.toContain('deadbeef01');
    expect(parseReason(plain).code).toBeUndefined();
  });
});

describe('isThrottle', () => {
  it('is true for Jamf 429 and S3 SlowDown, by code', () => {
    expect(isThrottle(jamf503(429))).toBe(true);
    expect(isThrottle(new AppError('JAMF_RATE_LIMITED', 'x'))).toBe(true);
    expect(isThrottle(new AppError('S3_SLOW_DOWN', 'x'))).toBe(true);
    // Codes that crossed a process boundary.
    expect(isThrottle({ code: 'JAMF_RATE_LIMITED' })).toBe(true);
    expect(isThrottle({ code: 'S3_SLOW_DOWN' })).toBe(true);
  });

  it('is true for JAMF_UNAVAILABLE only with status 503', () => {
    expect(isThrottle(jamf503(503))).toBe(true);
    expect(isThrottle(jamf503(502))).toBe(false);
    expect(isThrottle(jamf503(500))).toBe(false);
    expect(isThrottle(new AppError('JAMF_UNAVAILABLE', 'x'))).toBe(false);
    expect(isThrottle({ code: 'JAMF_UNAVAILABLE', status: 503 })).toBe(true);
  });

  it('asks the raw test (isSlowDown) only about values that are not AppErrors', () => {
    const raw = Object.assign(new Error('Please reduce your request rate.'), { name: 'SlowDown' });
    expect(isThrottle(raw, isSlowDown)).toBe(true);
    expect(isThrottle({ $metadata: { httpStatusCode: 503 } }, isSlowDown)).toBe(true);
    expect(isThrottle(raw)).toBe(false);
    expect(isThrottle(new AppError('S3_ERROR', 'x'), () => true)).toBe(false);
    expect(isThrottle(new Error('x'), isSlowDown)).toBe(false);
  });

  it('is false for everything else', () => {
    for (const code of CODES.filter(c => ERROR_REGISTRY[c].throttle === false)) {
      expect(isThrottle(new AppError(code, 'x'), isSlowDown), code).toBe(false);
    }
    for (const v of [undefined, null, 'SlowDown', 42, { code: 'NOPE' }]) {
      expect(isThrottle(v, isSlowDown)).toBe(false);
    }
  });
});
