/**
 * What `upload`, `download`, `sync` and `retry` print once their jobs are in Redis: the
 * table (or the `enqueued` JSON events), then either the hint to follow them or, with
 * `--wait`, the following itself (wait.ts, imported only then). Kept apart from wait.ts so
 * that enqueuing without --wait loads none of the progress views (issue 14, "CLI start").
 */
import type { CliContext } from './context.ts';
import type { TrackedJob } from './follow.ts';
import { formatBytes, table } from './format.ts';
import { emitJson } from './io.ts';

export interface EnqueuedJob extends TrackedJob {
  /** False when the same work was already in flight (that job is followed). */
  created: boolean;
  /** More fields for the `enqueued` JSON event (e.g. a download's resolved dest). */
  extra?: Record<string, unknown>;
  /** A note for the human table. */
  note?: string;
}

/** The identifying fields of a job in --json output. */
export function jobRef(job: TrackedJob): Record<string, unknown> {
  const key = job.queue.name === 'sync' ? 'dir' : 'fileName';
  return { queue: job.queue.name, jobId: job.jobId, [key]: job.label };
}

/** `upload:12` */
export function refOf(job: TrackedJob): string {
  return `${job.queue.name}:${job.jobId}`;
}

/** The command that follows these jobs again. */
export function followCommand(jobs: TrackedJob[]): string {
  const refs = jobs.map(refOf);
  const shown = refs.length > 20 ? [] : refs;
  return `jcds status --follow${shown.length ? ` ${shown.join(' ')}` : ''}`;
}

export function printEnqueued(ctx: CliContext, jobs: EnqueuedJob[], json: boolean): void {
  const { io } = ctx;
  if (json) {
    for (const j of jobs) {
      emitJson(io, {
        event: 'enqueued',
        ...jobRef(j),
        size: j.size ?? null,
        created: j.created,
        ...j.extra,
      });
    }
    return;
  }
  const queue = jobs[0]?.queue.name ?? 'job';
  io.err(`Enqueued ${jobs.length} ${queue} job(s):\n`);
  io.err(
    table(
      ['JOB', 'NAME', 'SIZE', 'NOTE'],
      jobs.map(j => [
        j.jobId,
        j.label,
        j.size === undefined ? '-' : formatBytes(j.size),
        j.created ? (j.note ?? '') : 'already in flight: following that job',
      ]),
      { right: [2] },
    ),
  );
}

export async function followAndReport(
  ctx: CliContext,
  jobs: EnqueuedJob[],
  options: { json: boolean; wait: boolean },
): Promise<void> {
  const { io } = ctx;
  if (!options.wait) {
    if (options.json) emitJson(io, { event: 'summary', enqueued: jobs.length, waited: false });
    else io.err(`The fleet works on them now: follow with \`${followCommand(jobs)}\`.\n`);
    return;
  }
  const { follow } = await import('./wait.ts');
  await follow(ctx, jobs, options.json);
}
