/**
 * What the dashboard shows of a job, for the ops person watching it. Pure functions over
 * the job's JSON (Bull Board's formatters and the job JSON its API sends, board.ts):
 *
 * - the name says what the job moves (`upload Office.pkg`, `part 3/6 of Office.pkg`),
 *   built from the data for jobs added with a generic name, and on a card it ends with
 *   the bytes: `· 12.0 MiB of 48.0 MiB (25%)` while it runs, the size once it is done;
 * - progress is a percentage the card draws (`{progress: 25, …}`, which Bull Board reads)
 *   with the bytes and the phase beside it in the Progress tab;
 * - a failure reason starts with its code and the advice for it (the error registry's
 *   `jobHint`/`hint`, with the job's id in place of `JOB_ID`), then the message; stack
 *   traces are not shown (they hold `file:///` paths of the worker's checkout, not news
 *   for an operator: the worker's log has them), and everything is redacted;
 * - BullMQ's `attemptsStarted` is dropped: a step job starts again after each wait for its
 *   children, so "2 started" would be shown for a job that ran once (stalls have their own
 *   badge, attempts theirs).
 */
import { errorSpec, parseReason, redactText } from '../../shared/errors.ts';
import { jobDisplayName, parsePartJobId, QUEUES } from '../../shared/queues/names.ts';
import { formatBytes } from '../../shared/units.ts';
import { redact } from './redact.ts';

type Json = Record<string, unknown>;

const obj = (v: unknown): Json => (typeof v === 'object' && v !== null ? (v as Json) : {});
const num = (o: Json, ...keys: string[]): number | undefined => {
  for (const k of keys) {
    const v = o[k];
    if (typeof v === 'number' && Number.isFinite(v)) return v;
  }
  return undefined;
};

/** Done and total of a job's progress: bytes (upload, download) or jobs (sync). */
export function progressAmounts(
  queue: string,
  progress: unknown,
  size?: number,
): { done: number; total: number; unit: 'bytes' | 'jobs'; phase?: string } | undefined {
  const p = obj(progress);
  const unit = queue === QUEUES.sync ? 'jobs' : 'bytes';
  const done =
    typeof progress === 'number' && size !== undefined
      ? Math.round((size * progress) / 100)
      : num(p, 'bytesSent', 'bytes', 'done');
  const total = num(p, 'total') ?? size;
  if (done === undefined || total === undefined) return undefined;
  const phase = typeof p['phase'] === 'string' ? p['phase'] : undefined;
  return { done: Math.min(done, total), total, unit, ...(phase ? { phase } : {}) };
}

function amount(n: number, unit: 'bytes' | 'jobs'): string {
  return unit === 'jobs' ? `${n} job${n === 1 ? '' : 's'}` : formatBytes(n);
}

const percent = (done: number, total: number): number =>
  total > 0 ? Math.floor((done * 100) / total) : 100;

/**
 * The progress formatter: `{progress: <percent>, done: "12.0 MiB of 48.0 MiB (25%)",
 * phase}` (Bull Board draws `progress` as the card's percentage); a number stays a number.
 */
export function formatProgress(queue: string, progress: unknown): unknown {
  if (typeof progress === 'number' || progress === null || progress === undefined) return progress;
  const a = progressAmounts(queue, progress);
  if (!a) return redact(progress);
  const pct = percent(a.done, a.total);
  return {
    progress: pct,
    done: `${amount(a.done, a.unit)} of ${amount(a.total, a.unit)} (${pct}%)`,
    ...(a.phase ? { phase: a.phase } : {}),
  };
}

/** The job's name for display (see jobDisplayName), without amounts: flow nodes. */
export function displayName(queue: string, job: Json): string {
  return redactText(
    jobDisplayName(queue, typeof job['name'] === 'string' ? job['name'] : '', job['data']),
  );
}

/** The name on a card: the display name, then what it moved or moves. */
export function cardName(queue: string, job: Json): string {
  const name = displayName(queue, job);
  const data = obj(job['data']);
  if (queue === QUEUES.uploadPart) {
    const length = num(data, 'length');
    return length === undefined ? name : `${name} · ${formatBytes(length)}`;
  }
  const size = num(data, 'size') ?? num(obj(job['returnvalue']), 'size');
  const a = progressAmounts(queue, job['progress'], size);
  const done = Boolean(job['finishedOn']) && !job['failedReason'];
  if (done && size !== undefined && queue !== QUEUES.sync) return `${name} · ${formatBytes(size)}`;
  if (a && a.done < a.total) {
    return `${name} · ${amount(a.done, a.unit)} of ${amount(a.total, a.unit)} (${percent(a.done, a.total)}%)`;
  }
  if (a && queue === QUEUES.sync) return `${name} · ${amount(a.total, a.unit)}`;
  return size === undefined ? name : `${name} · ${formatBytes(size)}`;
}

/** Drops stack frames and shortens `file:///…/x.ts:1:2` paths to the file's name. */
export function stripStack(text: string): string {
  return text
    .split('\n')
    .filter(line => !/^\s*at\s/.test(line))
    .join('\n')
    .replace(/file:\/\/\/?(?:[^\s)'"]*\/)?([^\s/)'"]+)/g, '$1')
    .trim();
}

/** What to do about a failed job, for the code its reason starts with. */
export function failureAdvice(queue: string, job: Json, code: string | undefined): string[] {
  const id = String(job['id'] ?? '');
  const out: string[] = [];
  const spec = errorSpec(code);
  const hint = spec?.jobHint ?? spec?.hint;
  if (queue === QUEUES.upload && obj(job['data'])['resume'] === true) {
    // Kept for a retry (worker/processors/upload/index.ts marks it): say so first.
    out.push(
      `Fix the cause, then Retry (or \`jcds retry ${id}\`): the upload resumes and sends only the parts not done.`,
    );
  } else if (queue === QUEUES.uploadPart) {
    const upload = parsePartJobId(id)?.uploadJobId ?? id.replace(/-hash$/, '');
    out.push(
      `Retry its upload (job ${upload} in the upload queue, or \`jcds retry ${upload}\`): it sends the parts not done.`,
    );
  }
  if (hint && !(out.length > 0 && /jcds retry/.test(hint)))
    out.push(hint.replace(/\bJOB_ID\b/g, id));
  return out;
}

/**
 * A failure reason as the dashboard shows it: `[CODE] What to do: … · <message>`, redacted,
 * without stack frames or file URLs.
 */
export function presentReason(queue: string, job: Json, reason: string): string {
  const clean = stripStack(redactText(reason));
  const { code, message } = parseReason(clean);
  const advice = failureAdvice(queue, job, code);
  const head = code ? `[${code}] ` : '';
  return advice.length > 0
    ? `${head}What to do: ${advice.join(' ')} · ${message}`
    : `${head}${message}`;
}

/** The job JSON Bull Board's API sends, as the operator should see it. */
export function presentJob<J extends Json>(queue: string, job: J): J {
  const out: Json = { ...job };
  delete out['attemptsStarted'];
  const reason = job['failedReason'];
  if (typeof reason === 'string' && reason !== '')
    out['failedReason'] = presentReason(queue, job, reason);
  // A failure BullMQ holds until the children settle: a reason like any other.
  const deferred = job['deferredFailure'];
  if (typeof deferred === 'string' && deferred !== '')
    out['deferredFailure'] = presentReason(queue, job, deferred);
  // The Error tab shows the reason when there is no stack trace.
  if (Array.isArray(job['stacktrace'])) out['stacktrace'] = [];
  // A finished upload's last progress is the phase it was in ("verifying"): it is done.
  const p = job['progress'];
  if (job['finishedOn'] && !reason && typeof p === 'object' && p !== null && 'phase' in p)
    out['progress'] = { ...(p as Json), phase: 'done' };
  return out as J;
}

/** A job log line as the dashboard shows it. */
export function presentLog(line: string): string {
  return stripStack(redactText(line));
}
