/**
 * Turns an error that ended a command into advice: the stable code, what happened (the
 * error's own message, which already names the value and the fix) and, for codes whose
 * fix is always the same, one more hint (the registry's `hint`, shared/errors.ts). Never
 * prints a stack unless JCDS_DEBUG is set.
 */
import { AppError, describeError, errorCode, errorSpec } from '../../shared/errors.ts';

/** One short block of text for stderr. */
export function formatError(err: unknown, env: Record<string, string | undefined> = {}): string {
  const code = errorCode(err);
  const spec = errorSpec(code);
  const known = spec !== undefined;
  const lines = [`jcds: ${known ? `[${code}] ` : ''}${describeError(err)}`];
  const hint = spec?.hint;
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

/** What to do about a failed job, by the code its reason starts with (`parseReason`). */
export function jobAdvice(code: string | undefined): string | undefined {
  if (code === undefined) return 'See the worker logs (and `jcds status JOB_ID`) for details.';
  const spec = errorSpec(code);
  return spec?.jobHint ?? spec?.hint;
}
