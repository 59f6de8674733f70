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
import { errorCode, errorSpec } from '../../shared/errors.ts';

export const EXIT = { ok: 0, jobFailed: 1, usage: 2, config: 3 } as const;
export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/**
 * The exit code for an error that ended a command (not for a failed job): the registry's
 * `exit` for the error's code (shared/errors.ts), 2 for commander's own errors, 1 for an
 * error without a code or with a code the product does not raise.
 */
export function exitCodeFor(err: unknown): ExitCode {
  const code = errorCode(err);
  if (code === undefined) return EXIT.jobFailed;
  if (code.startsWith('commander.')) return EXIT.usage;
  return errorSpec(code)?.exit ?? EXIT.jobFailed;
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
