/**
 * What `jcds status` does once its arguments are parsed (commands/status.ts defines the
 * command and imports this module when it runs, so `jcds --help` does not load BullMQ):
 * the overview, one job with its parts, or --follow.
 */ import type { JobType } from 'bullmq';
import { AppError } from '../../../shared/errors.ts';
import { QUEUES } from '../../../shared/queues/names.ts';
import type { Producer } from '../../producer.ts';
import type { CliContext } from '../context.ts';
import type { TrackedJob } from '../follow.ts';
import {
  formatBytes,
  formatDuration,
  formatSpeed,
  formatTime,
  paint,
  table,
  useColor,
} from '../format.ts';
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
import { follow } from '../wait.ts';
import type { StatusOptions } from './status.ts';

const progressText = (j: JobSummary): string => {
  if (j.state === 'completed')
    return (j.result as { outcome?: unknown } | null)?.outcome === 'unchanged'
      ? 'unchanged'
      : '100%';
  if (j.bytesDone === null || !j.size) return j.phase ?? '-';
  return `${Math.floor((j.bytesDone * 100) / j.size)}%${j.phase ? ` ${j.phase}` : ''}`;
};

/** The states of a job that has not ended. */
const UNFINISHED: JobType[] = ['active', 'waiting', 'prioritized', 'waiting-children', 'delayed'];

export async function runStatus(
  ctx: CliContext,
  producer: Producer,
  jobIds: string[],
  opts: StatusOptions,
): Promise<void> {
  const queues = statusQueues(producer);
  try {
    if (opts.follow) await followJobsOf(ctx, queues, jobIds, Boolean(opts.json));
    else if (jobIds.length === 0) await overview(ctx, queues, opts);
    else {
      for (const [i, id] of jobIds.entries()) {
        if (i > 0 && !opts.json) ctx.io.out('\n');
        await oneJob(ctx, queues, id, Boolean(opts.json));
      }
    }
  } finally {
    await queues[QUEUES.uploadPart]!.close();
  }
}

/** A job as `follow` tracks it: its label, size and unit from its data. */
export function trackedOf(queue: TrackedJob['queue'], summary: JobSummary): TrackedJob {
  return {
    queue,
    jobId: summary.jobId,
    label: summary.label,
    ...(summary.size !== null && queue.name !== QUEUES.sync ? { size: summary.size } : {}),
    ...(queue.name === QUEUES.sync ? { unit: 'jobs' as const } : {}),
  };
}

async function followJobsOf(
  ctx: CliContext,
  queues: ReturnType<typeof statusQueues>,
  refs: string[],
  json: boolean,
): Promise<void> {
  const jobs: TrackedJob[] = [];
  if (refs.length > 0) {
    for (const ref of refs) {
      const { queue, job } = await findJob(queues, ref);
      if (queue === QUEUES.uploadPart) {
        throw new AppError(
          'USAGE',
          `${ref} is a part job: follow its upload instead (jcds status --follow upload:${String(job.id).replace(/-(r\d+-)?p\d+$|-hash$/, '')}).`,
        );
      }
      jobs.push(trackedOf(queues[queue]!, summarize(queue, job, await job.getState())));
    }
  } else {
    for (const name of [QUEUES.upload, QUEUES.download, QUEUES.sync]) {
      const q = queues[name]!;
      for (const job of await q.getJobs(UNFINISHED, 0, 999, true)) {
        // A schedule's next run waits for its time (hours, maybe): not work in flight.
        if (!job || (job.repeatJobKey && !job.processedOn)) continue;
        jobs.push(trackedOf(q, summarize(name, job, 'unknown')));
      }
    }
    if (jobs.length === 0) {
      if (json) emitJson(ctx.io, { event: 'summary', waited: true, total: 0 });
      else ctx.io.err('Nothing in flight: no upload, download or sync is waiting or running.\n');
      return;
    }
  }
  if (!json) {
    ctx.io.err(
      `Following ${jobs.length} job(s): ${jobs
        .slice(0, 10)
        .map(j => `${j.queue.name}:${j.jobId}`)
        .join(', ')}${jobs.length > 10 ? ', …' : ''} (Ctrl-C stops following; the jobs go on)\n`,
    );
  }
  await follow(ctx, jobs, json);
}

async function overview(
  ctx: CliContext,
  queues: ReturnType<typeof statusQueues>,
  opts: StatusOptions,
): Promise<void> {
  const counts = await queueCounts(queues);
  const jobs = await recentJobs(queues, opts.limit);
  if (opts.json) {
    emitJson(ctx.io, { queues: counts, jobs });
    return;
  }
  const { io } = ctx;
  const colors = paint(useColor(Boolean(io.outIsTTY), io.env));
  const fit = io.outIsTTY ? { fit: io.columns - 1 } : {};
  io.out(
    table(
      ['QUEUE', ...COUNT_STATES.map(s => s.toUpperCase())],
      Object.entries(counts).map(([q, c]) => [q, ...COUNT_STATES.map(s => String(c[s] ?? 0))]),
      {
        right: COUNT_STATES.map((_, i) => i + 1),
        style: (_row, col, text) =>
          COUNT_STATES[col - 1] === 'failed' && text.trim() !== '0' ? colors.red(text) : text,
      },
    ),
  );
  if (jobs.length === 0) {
    io.err('\nNo recent jobs. Publish with `jcds upload FILE...`.\n');
    return;
  }
  io.out('\nRecent jobs:\n');
  io.out(
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
      {
        right: [4, 6],
        maxWidth: 70,
        ...fit,
        style: (row, col, text) =>
          jobs[row]!.state === 'failed' && (col === 3 || col === 8) ? colors.red(text) : text,
      },
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
  const colors = paint(useColor(Boolean(io.outIsTTY), io.env));
  if (others.length > 0)
    io.err(`(the same id also exists as ${others.join(', ')}; use QUEUE:ID to pick one)\n`);
  const failed = summary.state === 'failed';
  const rows: Array<[string, string]> = [
    ['job', `${queue}:${summary.jobId} (${summary.name})`],
    ['name', summary.label],
    ['state', failed ? colors.red(summary.state) : summary.state],
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
  if (summary.error) rows.push(['error', failed ? colors.red(summary.error) : summary.error]);
  if (summary.result) rows.push(['result', JSON.stringify(summary.result)]);
  for (const [k, v] of rows) io.out(`${k.padEnd(9)} ${v}\n`);
  if (parts.length > 0) {
    const done = parts.filter(p => p.state === 'completed').length;
    io.out(`\nParts (${done}/${parts.length} done):\n`);
    io.out(
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
        {
          right: [1, 3, 4],
          maxWidth: 80,
          ...(io.outIsTTY ? { fit: io.columns - 1 } : {}),
          style: (row, col, text) =>
            parts[row]!.state === 'failed' && (col === 2 || col === 5) ? colors.red(text) : text,
        },
      ),
    );
  }
  if (logs.length > 0) io.out(`\nLast log lines:\n${logs.map(l => `  ${l}`).join('\n')}\n`);
}
