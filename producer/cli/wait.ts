/**
 * The part of `upload`, `download` and `sync` that comes after enqueueing: print what was
 * enqueued, optionally follow the jobs (`--wait`), and end with a summary (a table on
 * stderr, one `summary` object with --json). A failed job makes the exit code 1, or 3 when
 * its code is a configuration error (the registry says which).
 */
import { errorSpec } from '../../shared/errors.ts';
import { jobAdvice } from './advice.ts';
import type { CliContext } from './context.ts';
import { describeResult, resultBytes, resultFailures, resultHasFailures } from './describe.ts';
import { EXIT } from './exit.ts';
import { followJobs, type FollowOutcome, type TrackedJob } from './follow.ts';
import { formatBytes, formatDuration, table } from './format.ts';
import { emitJson } from './io.ts';
import { createView, jobRef } from './views.ts';

export interface EnqueuedJob extends TrackedJob {
  /** False when the same work was already in flight (that job is followed). */
  created: boolean;
  /** More fields for the `enqueued` JSON event (e.g. a download's resolved dest). */
  extra?: Record<string, unknown>;
  /** A note for the human table. */
  note?: string;
}

/** Signal exit status for an interrupted --wait (the jobs go on in the fleet). */
export const EXIT_INTERRUPTED = 130;

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
  const startedAt = Date.now();
  if (!options.wait) {
    if (options.json) emitJson(io, { event: 'summary', enqueued: jobs.length, waited: false });
    else io.err('The fleet works on them now: follow with `jcds status` (or add --wait).\n');
    return;
  }
  const producer = await ctx.producer();
  const view = createView(io, { json: options.json, jobs });
  let outcomes: FollowOutcome[];
  try {
    outcomes = await followJobs(producer.connection, jobs, e => view.onEvent(e), {
      signal: ctx.signal,
      onIdle: queues =>
        view.note(
          `No worker is connected to the ${queues.join(', ')} queue(s) yet: start one with \`jcds worker\` (or docker compose up worker). The jobs wait in Redis until then.`,
        ),
    });
  } finally {
    view.close();
  }
  report(ctx, jobs, outcomes, Date.now() - startedAt, options.json);
}

function report(
  ctx: CliContext,
  jobs: EnqueuedJob[],
  outcomes: FollowOutcome[],
  elapsedMs: number,
  json: boolean,
): void {
  const { io } = ctx;
  const failed = outcomes.filter(o => o.state === 'failed' || resultHasFailures(o.result));
  const completed = outcomes.filter(o => o.state === 'completed');
  const interrupted = outcomes.length < jobs.length;
  const bytes = completed.reduce((s, o) => s + (resultBytes(o.result) ?? 0), 0);
  if (failed.length > 0) ctx.exitCode = Math.max(ctx.exitCode, EXIT.jobFailed);
  // A job refused for the fleet's configuration or the server's (no cloud distribution
  // point, credentials Jamf refuses) is a configuration error: exit 3, as the registry says.
  if (failed.some(o => errorSpec(o.code)?.exit === EXIT.config))
    ctx.exitCode = Math.max(ctx.exitCode, EXIT.config);
  if (interrupted) ctx.exitCode = EXIT_INTERRUPTED;

  if (json) {
    emitJson(io, {
      event: 'summary',
      waited: true,
      total: jobs.length,
      completed: completed.length,
      failed: failed.length,
      unfinished: jobs.length - outcomes.length,
      bytes,
      durationMs: elapsedMs,
      jobs: outcomes.map(o => ({
        ...jobRef(o.job),
        state: o.state,
        ...(o.state === 'completed'
          ? { result: o.result }
          : { code: o.code ?? null, reason: o.reason }),
      })),
    });
    return;
  }
  io.err('\n');
  io.err(
    table(
      ['JOB', 'NAME', 'STATE', 'RESULT'],
      outcomes.map(o => [
        o.job.jobId,
        o.job.label,
        o.state,
        o.state === 'completed'
          ? describeResult(o.job.queue.name, o.result, o.durationMs)
          : (o.reason ?? ''),
      ]),
      { maxWidth: 120 },
    ),
  );
  for (const o of failed) {
    const lines = o.state === 'failed' ? [] : resultFailures(o.result);
    for (const l of lines) io.err(`  ${o.job.label}: ${l}\n`);
    const hint = jobAdvice(o.code);
    if (hint) io.err(`  ${o.job.label}: ${hint}\n`);
  }
  io.err(
    `${completed.length - failed.filter(f => f.state === 'completed').length} done, ${failed.length} failed` +
      `${interrupted ? `, ${jobs.length - outcomes.length} still running (stopped following; see \`jcds status\`)` : ''}` +
      `, ${formatBytes(bytes)} in ${formatDuration(elapsedMs)}\n`,
  );
}
