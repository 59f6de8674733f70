/**
 * `jcds download FILE_NAME DEST [--wait] [--json] [--overwrite]`: fetches one JCDS file to
 * a local path (a folder gets the file name appended), verified against Jamf's hash.
 */
import type { Command } from 'commander';
import type { CliContext } from '../context.ts';
import { followAndReport, printEnqueued, type EnqueuedJob } from '../wait.ts';
import { producerApi } from '../producer-api.ts';

export function registerDownload(program: Command, ctx: CliContext): void {
  program
    .command('download')
    .description('fetch a JCDS file to a local path, verified against Jamf\'s hash')
    .argument('<fileName>', 'the file name in JCDS (see `jcds ls`)')
    .argument('<dest>', 'a folder (the file name is appended) or a file path')
    .option('--wait', 'follow the download until it ends')
    .option('--json', 'print NDJSON on stdout')
    .option('--overwrite', 'replace the destination if it exists')
    .action(async (fileName: string, dest: string, opts: { wait?: boolean; json?: boolean; overwrite?: boolean }) => {
      ctx.config();
      const producer = await ctx.producer();
      const e = await producerApi(producer).download({ fileName, dest, overwrite: Boolean(opts.overwrite) });
      const jobs: EnqueuedJob[] = [
        { queue: producer.queues.download, jobId: e.jobId, label: e.fileName, size: e.size, created: e.created },
      ];
      const json = Boolean(opts.json);
      printEnqueued(ctx, jobs, json);
      await followAndReport(ctx, jobs, { json, wait: Boolean(opts.wait) });
    });
}
