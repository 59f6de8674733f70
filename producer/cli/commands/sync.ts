/**
 * `jcds sync up|down DIR [--wait] [--json]`: publishes the packages in DIR that are new or
 * changed (up), or fetches the JCDS files missing or different in DIR (down), as one sync
 * job that enqueues the uploads or downloads it needs.
 */
import { Argument, type Command } from 'commander';
import type { SyncDirection } from '../../../shared/queues/jobs.ts';
import type { CliContext } from '../context.ts';
import { producerApi } from '../producer-api.ts';
import { followAndReport, printEnqueued, type EnqueuedJob } from '../wait.ts';

export function registerSync(program: Command, ctx: CliContext): void {
  program
    .command('sync')
    .description('sync a folder up to Jamf (new or changed packages) or down from JCDS')
    .addArgument(new Argument('<direction>', 'up: folder to Jamf; down: JCDS to folder').choices(['up', 'down']))
    .argument('<dir>', 'the folder')
    .option('--wait', 'follow the sync (and the jobs it starts) until it ends')
    .option('--json', 'print NDJSON on stdout')
    .action(async (direction: SyncDirection, dir: string, opts: { wait?: boolean; json?: boolean }) => {
      ctx.config();
      const producer = await ctx.producer();
      const e = await producerApi(producer).sync({ dir, direction, wait: Boolean(opts.wait) });
      const jobs: EnqueuedJob[] = [
        { queue: producer.queues.sync, jobId: e.jobId, label: e.dir, created: e.created ?? true },
      ];
      const json = Boolean(opts.json);
      printEnqueued(ctx, jobs, json);
      await followAndReport(ctx, jobs, { json, wait: Boolean(opts.wait) });
    });
}
