/**
 * Following jobs to their end: `--wait` after `upload`, `download`, `sync` and `retry`
 * (enqueued.ts prints what was enqueued and imports this module only for --wait), and
 * `status --follow` for jobs that exist already. It ends with a summary (a table on
 * stderr, one `summary` object with --json). A failed job makes the exit code 1, or 3 when its code is a configuration error
 * (the registry says which). Ctrl-C stops following and names the jobs, which go on.
 */
import { errorSpec, parseReason } from '../../shared/errors.ts';
import { jobAdvice } from './advice.ts';
import type { CliContext } from './context.ts';
import {
  describeResult,
  fileTotals,
  resultBytes,
  resultHasFailures,
  totalsLine,
} from './describe.ts';
import { EXIT } from './exit.ts';
import { followJobs, type FollowOutcome, type TrackedJob } from './follow.ts';
import { paint, table, useColor, wrapText } from './format.ts';
import { emitJson } from './io.ts';
import { followCommand, jobRef, refOf } from './enqueued.ts';
import { createView } from './views.ts';

export {
  followAndReport,
  followCommand,
  printEnqueued,
  refOf,
  type EnqueuedJob,
} from './enqueued.ts';

/** Signal exit status for an interrupted --wait (the jobs go on in the fleet). */
export const EXIT_INTERRUPTED = 130;

/** Follows `jobs` to their end (or Ctrl-C) and reports; sets the exit code. */
export async function follow(ctx: CliContext, jobs: TrackedJob[], json: boolean): Promise<void> {
  const { io } = ctx;
  const startedAt = Date.now();
  const producer = await ctx.producer();
  const view = createView(io, { json, jobs });
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
  report(ctx, jobs, outcomes, Date.now() - startedAt, json);
}

/** The table, advice and totals of followed jobs (and their --json summary); sets the exit code. */
export function report(
  ctx: CliContext,
  jobs: TrackedJob[],
  outcomes: FollowOutcome[],
  elapsedMs: number,
  json: boolean,
): void {
  const { io } = ctx;
  const failed = outcomes.filter(o => o.state === 'failed' || resultHasFailures(o.result));
  const completed = outcomes.filter(o => o.state === 'completed' && !resultHasFailures(o.result));
  const unfinished = jobs.filter(j => !outcomes.some(o => o.job === j));
  const interrupted = unfinished.length > 0;
  const bytes = outcomes
    .filter(o => o.state === 'completed')
    .reduce((s, o) => s + (resultBytes(o.result) ?? 0), 0);
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
      // completed + failed + unfinished = total: a sync with failed files counts as failed.
      completed: completed.length,
      failed: failed.length,
      unfinished: unfinished.length,
      ...(interrupted
        ? { unfinishedJobs: unfinished.map(jobRef), follow: followCommand(unfinished) }
        : {}),
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
  const colors = paint(useColor(io.isTTY, io.env));
  const failedRows = new Set(outcomes.flatMap((o, i) => (failed.includes(o) ? [i] : [])));
  // On a terminal, long lines are wrapped at its width (a pipe gets them whole).
  const say = (text: string, color: (t: string) => string = t => t): void => {
    const lines = io.isTTY ? wrapText(text, io.columns - 1) : [text];
    for (const l of lines) io.err(`${color(l)}\n`);
  };
  io.err('\n');
  if (outcomes.length > 0)
    io.err(
      table(
        ['JOB', 'NAME', 'STATE', 'RESULT'],
        outcomes.map(o => [
          o.job.jobId,
          o.job.label,
          o.state === 'completed' && resultHasFailures(o.result)
            ? 'completed, with failures'
            : o.state,
          o.state === 'completed'
            ? describeResult(o.job.queue.name, o.result, o.durationMs)
            : (o.reason ?? ''),
        ]),
        {
          maxWidth: 120,
          ...(io.isTTY ? { fit: io.columns - 1 } : {}),
          style: (row, col, text) => (failedRows.has(row) && col >= 2 ? colors.red(text) : text),
        },
      ),
    );
  for (const o of failed) {
    for (const line of adviceLines(o)) say(line);
  }
  const totals = fileTotals(outcomes.map(o => ({ ...o, queue: o.job.queue.name })));
  const line = totalsLine(
    [...new Set(jobs.map(j => j.queue.name))],
    totals,
    elapsedMs,
    unfinished.length,
  );
  say(line, totals.failed > 0 ? colors.red : undefined);
  if (interrupted) {
    say(
      `Stopped following ${unfinished.length} job(s): ${unfinished.map(refOf).join(', ')}. They go on in the fleet; follow them again with:`,
    );
    // On a line of its own, never wrapped: it is there to be copied.
    io.err(`  ${followCommand(unfinished)}\n`);
  }
}

/**
 * The advice under the table for one failed job: its own hint, and for a sync one line per
 * failed file with that file's hint, each naming the job to look at (`jcds status
 * upload:12`, never a JOB_ID placeholder).
 */
export function adviceLines(o: FollowOutcome): string[] {
  const ref = refOf(o.job);
  if (o.state === 'failed') {
    const hint = jobAdvice(o.code, { ref, ifExists: o.ifExists });
    return hint ? [`  ${o.job.label}: ${hint}`] : [];
  }
  const list = (o.result as { failures?: unknown } | undefined)?.failures;
  if (!Array.isArray(list)) return [];
  const out: string[] = [];
  for (const f of list as Array<{ fileName?: unknown; reason?: unknown }>) {
    const fileName = typeof f.fileName === 'string' ? f.fileName : '?';
    const reason = typeof f.reason === 'string' ? f.reason : '?';
    const child = o.children?.find(c => c.fileName === fileName);
    const childRef = child ? `${child.queue}:${child.jobId}` : ref;
    out.push(`  ${o.job.label}: ${fileName}${child ? ` [${childRef}]` : ''}: ${reason}`);
    const hint = jobAdvice(parseReason(reason).code, { ref: childRef, ifExists: o.ifExists });
    if (hint) out.push(`    ${hint}`);
  }
  return out;
}
