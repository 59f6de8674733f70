/**
 * `jcds doctor [--json] [--timeout S]`: checks this machine's setup against Redis and Jamf
 * Pro, one line per check (✓ passed, ! warning, ✗ failed with its fix, - skipped), then a
 * summary. The checks are in producer/doctor/. Reads the same variables as every other
 * command, leniently: a missing or invalid one is a failed line, not a stop.
 *
 * Exit 0 when nothing failed (warnings allowed), 3 when a check failed (configuration or
 * connection). With --json: one `check` object per line on stdout, then a `summary`;
 * nothing on stderr. Never prints a secret.
 */
import type { Command } from 'commander';
import {
  DEFAULT_TIMEOUT_MS,
  checkJson,
  formatCheck,
  formatSummary,
  summarize,
  summaryJson,
} from '../../doctor/report.ts';
import { intArg, type CliContext } from '../context.ts';
import { EXIT } from '../exit.ts';
import { emitJson } from '../io.ts';

export function registerDoctor(program: Command, ctx: CliContext): void {
  program
    .command('doctor')
    .description(
      'check the setup: Redis, Jamf Pro (URL, credentials, privileges, distribution point), JCDS credentials, clock and fleet secret',
    )
    .option('--json', 'print one JSON object per check, then a summary, on stdout')
    .option(
      '--timeout <seconds>',
      `bound of each network check (default ${DEFAULT_TIMEOUT_MS / 1000})`,
      intArg(1, 120),
    )
    .action(async (opts: { json?: boolean; timeout?: number }) => {
      const { io } = ctx;
      const json = Boolean(opts.json);
      if (!json) io.err('jcds doctor: checking the setup of this machine\n\n');
      const { runDoctor } = await import('../../doctor/run.ts');
      const results = await runDoctor(io.env, {
        timeoutMs: opts.timeout === undefined ? DEFAULT_TIMEOUT_MS : opts.timeout * 1000,
        signal: ctx.signal,
        onResult: r => (json ? emitJson(io, checkJson(r)) : io.err(formatCheck(r))),
      });
      const summary = summarize(results);
      if (json) emitJson(io, summaryJson(summary));
      else io.err(formatSummary(summary));
      ctx.exitCode = summary.ok ? EXIT.ok : EXIT.config;
    });
}
