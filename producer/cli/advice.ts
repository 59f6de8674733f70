/**
 * Turns an error that ended a command into advice: the stable code, what happened (the
 * error's own message, which already names the value and the fix) and, for codes whose
 * fix is always the same, one more hint. Never prints a stack unless JCDS_DEBUG is set.
 */
import { AppError, ERROR_CODES, describeError, errorCode } from '../../shared/errors.ts';

const HINTS: Record<string, string> = {
  CONFIG_INVALID:
    'Set the variables above (see "Configuration" in README.md) and run the command again.',
  REDIS_UNAVAILABLE:
    'Start Redis (`redis-server`, `docker compose up -d redis`) or point REDIS_URL at a running one.',
  JAMF_UNREACHABLE:
    'Check JAMF_URL (https://yourinstance.jamfcloud.com), your network/proxy, and that the server answers in a browser.',
  JAMF_AUTH_FAILED:
    'Check JAMF_CLIENT_ID/JAMF_CLIENT_SECRET (API Roles and Clients in Jamf Pro) or JAMF_USERNAME/JAMF_PASSWORD, and that the client is enabled.',
  JAMF_FORBIDDEN:
    'Give the API role the privileges listed under "Using it with a real Jamf Pro" in README.md.',
  JCDS_UNAVAILABLE:
    'This server has no JCDS v1 endpoints: set JCDS_TRANSPORT=package-upload (Jamf Pro 11.5+).',
  DESTINATION_EXISTS: 'Rerun with --overwrite to replace it, or give another destination.',
  DESTINATION_INVALID: 'Give an existing folder (or a file path in one) that this user can write.',
  JOB_NOT_FOUND: 'List recent jobs with `jcds status`; finished jobs are removed after 7 days.',
};

/** One short block of text for stderr. */
export function formatError(err: unknown, env: Record<string, string | undefined> = {}): string {
  const code = errorCode(err);
  const known = code !== undefined && code in ERROR_CODES;
  const lines = [`jcds: ${known ? `[${code}] ` : ''}${describeError(err)}`];
  const hint = code === undefined ? undefined : HINTS[code];
  if (hint && !lines[0]!.includes(hint)) lines.push(`  ${hint}`);
  if (!known) {
    lines.push('  This is unexpected: rerun with JCDS_DEBUG=1 for details and report it.');
  }
  if (env['JCDS_DEBUG'] && err instanceof Error && err.stack) lines.push(err.stack);
  return `${lines.join('\n')}\n`;
}

/** The --json form of an error: one object, no stack, no secret. */
export function errorJson(err: unknown, exitCode: number): Record<string, unknown> {
  const code = errorCode(err);
  return {
    event: 'error',
    code: code ?? 'INTERNAL',
    message: describeError(err),
    ...(err instanceof AppError && err.details ? { details: err.details } : {}),
    exitCode,
  };
}

const JOB_HINTS: Record<string, string> = {
  PACKAGE_EXISTS:
    'Rerun with --if-exists replace to overwrite it, or --if-exists skip to keep the one in Jamf.',
  FILE_CHANGED: 'Wait until the file is final, then upload it again.',
  FILE_NOT_FOUND: 'The file was moved or deleted after it was enqueued; enqueue it again.',
  VERIFY_FAILED:
    'The stored file differs from the local one: upload it again (--if-exists replace); if it repeats, check the network path for a proxy that rewrites bodies.',
  VERIFY_TIMEOUT:
    'Jamf did not report the hash in time: check the package in Jamf Pro, or raise JCDS_VERIFY_TIMEOUT.',
  JAMF_AUTH_FAILED: "Check the workers' Jamf credentials (JAMF_CLIENT_ID/JAMF_CLIENT_SECRET).",
  JAMF_FORBIDDEN: "Give the workers' API role the privileges listed in README.md.",
  PART_FAILED: 'A part failed for good; see `jcds status JOB_ID` for the part and its reason.',
  S3_CREDENTIALS_EXPIRED: 'Retry the upload; the credentials are renewed automatically.',
  DESTINATION_EXISTS: 'Rerun with --overwrite, or choose another destination.',
  VAULT_SECRET_MISSING: 'Set JCDS_FLEET_SECRET (the same value) on every worker.',
  VAULT_DECRYPT_FAILED: 'Every worker must use the same JCDS_FLEET_SECRET.',
};

/** What to do about a failed job, by the code its reason starts with. */
export function jobAdvice(code: string | undefined): string | undefined {
  if (code === undefined) return 'See the worker logs (and `jcds status JOB_ID`) for details.';
  return JOB_HINTS[code] ?? HINTS[code];
}
