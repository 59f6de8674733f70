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

/** What the advice about a failed job may use. */
export interface JobContext {
  /** How to name the job in a command: `upload:12` (replaces the registry's JOB_ID). */
  ref?: string | undefined;
  /** The upload's --if-exists policy. */
  ifExists?: string | undefined;
}

/**
 * What to do about a failed job, by the code its reason starts with (`parseReason`), with
 * the job's own id in place of the registry's `JOB_ID` placeholder. A name conflict's
 * advice depends on the policy that failed: under `skip` (the default) Jamf holds other
 * bytes under the name, so skipping again cannot help.
 */
export function jobAdvice(code: string | undefined, context: JobContext = {}): string | undefined {
  let hint: string | undefined;
  if (code === undefined) hint = 'See the worker logs (and `jcds status JOB_ID`) for details.';
  else if (code === 'PACKAGE_EXISTS' && context.ifExists === 'skip')
    hint =
      'Jamf holds different bytes under this file name: rerun with --if-exists replace to overwrite them, or rename the file to publish it beside them.';
  else if (code === 'PACKAGE_EXISTS' && context.ifExists === 'fail')
    hint =
      'Rerun with --if-exists replace to overwrite it, or with --if-exists skip (the default), which succeeds without sending anything when Jamf already holds the same bytes.';
  else {
    const spec = errorSpec(code);
    hint = spec?.jobHint ?? spec?.hint;
  }
  return hint && context.ref ? hint.replaceAll('JOB_ID', context.ref) : hint;
}
