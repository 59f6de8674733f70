/**
 * `jcds status [JOB_ID...] [--json] [--follow]`: queue counts and the recent jobs (state,
 * size, speed, error), or jobs (`12` or `upload:12`) with their parts. The tables are the
 * command's output and go to stdout (`jcds status | grep Office` works); notes go to
 * stderr. `--follow` follows the given jobs, or every unfinished upload, download and sync,
 * to their end, as `--wait` does (progress on stderr, exit 1 when one failed).
 */

import type { Command } from 'commander';
import { intArg, type CliContext } from '../context.ts';

export interface StatusOptions {
  json?: boolean;
  limit: number;
  follow?: boolean;
}

export function registerStatus(program: Command, ctx: CliContext): void {
  program
    .command('status')
    .description(
      'queue counts and recent jobs, or jobs (JOB_ID or QUEUE:JOB_ID) with their parts; --follow follows them to their end',
    )
    .argument('[jobIds...]', 'job ids, e.g. 12 or upload:12')
    .option('--json', 'print JSON on stdout (one object per job; with --follow, NDJSON events)')
    .option('--limit <n>', 'how many recent jobs to show', intArg(1, 500), 20)
    .option(
      '--follow',
      'follow the given jobs (or every unfinished upload, download and sync) until they end',
    )
    .action(async (jobIds: string[], opts: StatusOptions) => {
      await ctx.config();
      const [producer, { runStatus }] = await Promise.all([
        ctx.producer(),
        import('./status-run.ts'),
      ]);
      await runStatus(ctx, producer, jobIds, opts);
    });
}
