/**
 * `jcds retry JOB_ID [--wait] [--json]`: sends a failed upload, download or sync job back
 * to its queue with its attempts reset (Producer.retry). A failed upload resumes where it
 * stopped: only the parts S3 does not hold are sent again; a download resumes from the
 * ranges it fetched. A job that does not exist is JOB_NOT_FOUND, one that is not failed
 * JOB_NOT_FAILED (exit 2). With --wait the job is followed to its end, as after `upload`.
 */
import type { Command } from 'commander';
import type { CliContext } from '../context.ts';
import { emitJson } from '../io.ts';
import type { EnqueuedJob } from '../enqueued.ts';

interface RetryOptions {
  wait?: boolean;
  json?: boolean;
}

export function registerRetry(program: Command, ctx: CliContext): void {
  program
    .command('retry')
    .description(
      'retry a failed upload, download or sync job; an upload resumes, sending only the parts not done',
    )
    .argument('<jobId>', 'a job id, e.g. 12 or upload:12 (see `jcds status`)')
    .option('--wait', 'follow the job until it ends')
    .option('--json', 'print NDJSON on stdout')
    .action(async (ref: string, opts: RetryOptions) => {
      await ctx.config();
      const [producer, { followAndReport, jobRef }] = await Promise.all([
        ctx.producer(),
        import('../enqueued.ts'),
      ]);
      const r = await producer.retry(ref);
      const job: EnqueuedJob = {
        queue: producer.queues[r.queue],
        jobId: r.jobId,
        label: r.label,
        size: r.size,
        created: true,
        ...(r.queue === 'sync' ? { unit: 'jobs' as const } : {}),
      };
      const json = Boolean(opts.json);
      if (json) {
        emitJson(ctx.io, {
          event: 'retried',
          ...jobRef(job),
          name: r.name,
          size: r.size ?? null,
          previousReason: r.previousReason,
        });
      } else {
        ctx.io.err(
          `Retried ${r.queue}:${r.jobId} (${r.name}), which had failed: ${r.previousReason}\n` +
            (r.queue === 'upload'
              ? 'It resumes where it stopped: only the parts not done are sent again.\n'
              : ''),
        );
      }
      await followAndReport(ctx, [job], { json, wait: Boolean(opts.wait) });
    });
}
