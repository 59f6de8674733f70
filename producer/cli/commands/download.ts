/**
 * `jcds download FILE_NAME DEST [--wait] [--json] [--overwrite]`: fetches one JCDS file to
 * a local path (a folder gets the file name appended), verified against Jamf's hash.
 */
import type { Command } from 'commander';
import type { DownloadJobData } from '../../../shared/queues/jobs.ts';
import type { CliContext } from '../context.ts';
import type { EnqueuedJob } from '../enqueued.ts';

interface DownloadOptions {
  wait?: boolean;
  json?: boolean;
  overwrite?: boolean;
}

export function registerDownload(program: Command, ctx: CliContext): void {
  program
    .command('download')
    .description("fetch a JCDS file to a local path, verified against Jamf's hash")
    .argument('<fileName>', 'the file name in JCDS (see `jcds ls`)')
    .argument('<dest>', 'a folder (the file name is appended) or a file path')
    .option('--wait', 'follow the download until it ends')
    .option('--json', 'print NDJSON on stdout')
    .option('--overwrite', 'replace the destination if it exists')
    .action(async (fileName: string, dest: string, opts: DownloadOptions) => {
      await ctx.config();
      const [producer, { followAndReport, printEnqueued }] = await Promise.all([
        ctx.producer(),
        import('../enqueued.ts'),
      ]);
      const jobId = await producer.download({ fileName, dest, overwrite: Boolean(opts.overwrite) });
      const stored = await producer.queues.download.getJob(jobId);
      const data = stored?.data as DownloadJobData | undefined;
      const jobs: EnqueuedJob[] = [
        {
          queue: producer.queues.download,
          jobId,
          label: fileName,
          size: data?.size,
          created: true,
          ...(data?.dest ? { extra: { dest: data.dest }, note: `to ${data.dest}` } : {}),
        },
      ];
      const json = Boolean(opts.json);
      printEnqueued(ctx, jobs, json);
      await followAndReport(ctx, jobs, { json, wait: Boolean(opts.wait) });
    });
}
