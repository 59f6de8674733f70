/**
 * Exit codes of the `jcds` command (design.md section 8, a contract) and the seam through
 * which the process ends. Pure parts of the CLI return a code; only `main.ts` ends the
 * process, through `processExit`, which tests can replace (oclif's `Exit.exit()` idea).
 *
 *   0  done
 *   1  a job failed (or an unexpected error)
 *   2  bad usage or input: a missing file, a wrong extension, an unsafe name, a bad flag
 *   3  configuration or connection: the environment, Redis, Jamf Pro
 */
import { errorCode } from '../../shared/errors.ts';

export const EXIT = { ok: 0, jobFailed: 1, usage: 2, config: 3 } as const;
export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** Error codes that mean the user gave a bad argument or input file. */
const USAGE_CODES = new Set([
  'USAGE',
  'UNSUPPORTED_FILE_TYPE',
  'UNSAFE_FILE_NAME',
  'JOB_NOT_FOUND',
]);

/** Error codes that mean the environment, Redis or Jamf Pro is not usable. */
const CONFIG_CODES = new Set([
  'CONFIG_INVALID',
  'REDIS_UNAVAILABLE',
  'JCDS_UNAVAILABLE',
  'VAULT_SECRET_MISSING',
  'VAULT_DECRYPT_FAILED',
]);

/** The exit code for an error that ended a command (not for a failed job). */
export function exitCodeFor(err: unknown): ExitCode {
  const code = errorCode(err);
  if (code === undefined) return EXIT.jobFailed;
  if (code.startsWith('commander.')) return EXIT.usage;
  if (USAGE_CODES.has(code) || code.startsWith('FILE_') || code.startsWith('DESTINATION_')) {
    return EXIT.usage;
  }
  if (CONFIG_CODES.has(code) || code.startsWith('JAMF_')) return EXIT.config;
  return EXIT.jobFailed;
}

/** The process-ending seam: tests replace `processExit.exit` to observe codes. */
export const processExit = {
  exit(code: number): void {
    // Flush both streams before exiting: on some platforms writes to pipes are async.
    let pending = 2;
    const done = (): void => {
      pending--;
      if (pending === 0) process.exit(code);
    };
    process.stdout.write('', done);
    process.stderr.write('', done);
  },
};
