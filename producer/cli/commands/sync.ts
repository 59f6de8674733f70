/**
 * `jcds sync up|down DIR [--wait] [--json]`: one sync job that publishes the packages in
 * DIR that are new or changed (up), or fetches the JCDS files missing or different in DIR
 * (down), then waits for the uploads or downloads it enqueued. --wait follows it.
 */
import { Argument, Option, type Command } from 'commander';
import type { IfExists, SyncDirection } from '../../../shared/queues/jobs.ts';
import type { CliContext } from '../context.ts';
import type { EnqueuedJob } from '../enqueued.ts';

interface SyncOptions {
  wait?: boolean;
  json?: boolean;
  ifExists?: IfExists;
  category?: string;
  followSymlinks?: boolean;
}

export function registerSync(program: Command, ctx: CliContext): void {
  program
    .command('sync')
    .description('sync a folder up to Jamf (new or changed packages) or down from JCDS')
    .addArgument(
      new Argument('<direction>', 'up: folder to Jamf; down: JCDS to folder').choices([
        'up',
        'down',
      ]),
    )
    .argument('<dir>', 'the folder (every worker must see it at the same path)')
    .option('--wait', 'follow the sync until it and the jobs it started end')
    .option('--json', 'print NDJSON on stdout')
    .addOption(
      new Option('--if-exists <policy>', 'sync up: a new file whose name Jamf already has').choices(
        ['skip', 'replace', 'fail'],
      ),
    )
    .option('--category <name>', 'sync up: the Jamf Pro category of new packages')
    .option(
      '--follow-symlinks',
      'sync up: also publish files that symbolic links in the folder point to outside it',
    )
    .action(async (direction: SyncDirection, dir: string, opts: SyncOptions) => {
      await ctx.config();
      const [producer, { followAndReport, printEnqueued }] = await Promise.all([
        ctx.producer(),
        import('../enqueued.ts'),
      ]);
      const jobId = await producer.sync({
        direction,
        dir,
        ...(opts.ifExists !== undefined ? { ifExists: opts.ifExists } : {}),
        ...(opts.category !== undefined ? { category: opts.category } : {}),
        ...(opts.followSymlinks ? { followSymlinks: true } : {}),
      });
      const stored = await producer.queues.sync.getJob(jobId);
      const jobs: EnqueuedJob[] = [
        {
          queue: producer.queues.sync,
          jobId,
          label: String((stored?.data as { dir?: unknown } | undefined)?.dir ?? dir),
          unit: 'jobs',
          created: true,
        },
      ];
      const json = Boolean(opts.json);
      printEnqueued(ctx, jobs, json);
      await followAndReport(ctx, jobs, { json, wait: Boolean(opts.wait) });
    });
}
