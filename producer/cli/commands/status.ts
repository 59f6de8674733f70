/**
 * `jcds status [JOB_ID] [--json]`: queue counts and the recent jobs (state, size, speed,
 * error), or one job (`12` or `upload:12`) with its parts.
 */
import type { Command } from 'commander';
import { QUEUES } from '../../../shared/queues/names.ts';
import { intArg, type CliContext } from '../context.ts';
import { formatBytes, formatDuration, formatSpeed, formatTime, table } from '../format.ts';
import { emitJson } from '../io.ts';
import {
  COUNT_STATES,
  findJob,
  partsOf,
  queueCounts,
  recentJobs,
  statusQueues,
  summarize,
  type JobSummary,
} from '../status-data.ts';

const progressText = (j: JobSummary): string => {
  if (j.state === 'completed') return '100%';
  if (j.bytesDone === null || !j.size) return j.phase ?? '-';
  return `${Math.floor((j.bytesDone * 100) / j.size)}%${j.phase ? ` ${j.phase}` : ''}`;
};

export function registerStatus(program: Command, ctx: CliContext): void {
  program
    .command('status')
    .description('queue counts and recent jobs, or one job (JOB_ID or QUEUE:JOB_ID) with its parts')
    .argument('[jobId]', 'a job id, e.g. 12 or upload:12')
    .option('--json', 'print one JSON object on stdout')
    .option('--limit <n>', 'how many recent jobs to show', intArg(1, 500), 20)
    .action(async (jobId: string | undefined, opts: { json?: boolean; limit: number }) => {
      ctx.config();
      const producer = await ctx.producer();
      const queues = statusQueues(producer);
      try {
        if (jobId === undefined) await overview(ctx, queues, opts);
        else await oneJob(ctx, queues, jobId, Boolean(opts.json));
      } finally {
        await queues[QUEUES.uploadPart]!.close();
      }
    });
}

async function overview(
  ctx: CliContext,
  queues: ReturnType<typeof statusQueues>,
  opts: { json?: boolean; limit: number },
): Promise<void> {
  const counts = await queueCounts(queues);
  const jobs = await recentJobs(queues, opts.limit);
  if (opts.json) {
    emitJson(ctx.io, { queues: counts, jobs });
    return;
  }
  const { io } = ctx;
  io.err(
    table(
      ['QUEUE', ...COUNT_STATES.map(s => s.toUpperCase())],
      Object.entries(counts).map(([q, c]) => [q, ...COUNT_STATES.map(s => String(c[s] ?? 0))]),
      { right: COUNT_STATES.map((_, i) => i + 1) },
    ),
  );
  if (jobs.length === 0) {
    io.err('\nNo recent jobs. Publish with `jcds upload FILE...`.\n');
    return;
  }
  io.err('\nRecent jobs:\n');
  io.err(
    table(
      ['QUEUE', 'JOB', 'NAME', 'STATE', 'SIZE', 'PROGRESS', 'SPEED', 'FINISHED', 'ERROR'],
      jobs.map(j => [
        j.queue,
        j.jobId,
        j.label,
        j.state,
        j.size === null ? '-' : formatBytes(j.size),
        progressText(j),
        formatSpeed(j.speed ?? undefined),
        formatTime(j.finishedAt ?? undefined),
        j.error ?? '',
      ]),
      { right: [4, 6], maxWidth: 70 },
    ),
  );
}

async function oneJob(
  ctx: CliContext,
  queues: ReturnType<typeof statusQueues>,
  ref: string,
  json: boolean,
): Promise<void> {
  const { queue, job, others } = await findJob(queues, ref);
  const state = await job.getState();
  const summary = summarize(queue, job, state);
  const parts = queue === QUEUES.upload ? await partsOf(queues, job) : [];
  const { logs } = await queues[queue]!.getJobLogs(String(job.id), -10, -1);
  if (json) {
    emitJson(ctx.io, { job: { ...summary, data: job.data }, parts, logs, alsoFound: others });
    return;
  }
  const { io } = ctx;
  if (others.length > 0)
    io.err(`(the same id also exists as ${others.join(', ')}; use QUEUE:ID to pick one)\n`);
  const rows: Array<[string, string]> = [
    ['job', `${queue}:${summary.jobId} (${summary.name})`],
    ['name', summary.label],
    ['state', summary.state],
    ['size', summary.size === null ? '-' : formatBytes(summary.size)],
    ['progress', progressText(summary)],
    ['speed', formatSpeed(summary.speed ?? undefined)],
    ['attempts', String(summary.attemptsMade)],
    ['enqueued', formatTime(summary.createdAt)],
    ['started', formatTime(summary.startedAt ?? undefined)],
    ['finished', formatTime(summary.finishedAt ?? undefined)],
  ];
  if (summary.startedAt && summary.finishedAt)
    rows.push(['took', formatDuration(summary.finishedAt - summary.startedAt)]);
  if (summary.error) rows.push(['error', summary.error]);
  if (summary.result) rows.push(['result', JSON.stringify(summary.result)]);
  for (const [k, v] of rows) io.err(`${k.padEnd(9)} ${v}\n`);
  if (parts.length > 0) {
    const done = parts.filter(p => p.state === 'completed').length;
    io.err(`\nParts (${done}/${parts.length} done):\n`);
    io.err(
      table(
        ['CHILD', 'PART', 'STATE', 'SIZE', 'ATTEMPTS', 'ERROR'],
        parts.map(p => [
          p.jobId,
          p.partNumber === null ? p.name : String(p.partNumber),
          p.state,
          p.size === null ? '-' : formatBytes(p.size),
          p.attemptsMade === null ? '-' : String(p.attemptsMade),
          p.error ?? '',
        ]),
        { right: [1, 3, 4], maxWidth: 80 },
      ),
    );
  }
  if (logs.length > 0) io.err(`\nLast log lines:\n${logs.map(l => `  ${l}`).join('\n')}\n`);
}
