/**
 * One-line descriptions of a finished job's result, per queue, for human output and the
 * summaries. Results come back from Redis as plain JSON, so they are read defensively.
 */
import { formatBytes, formatDuration, formatSpeed } from './format.ts';

type Obj = Record<string, unknown>;

const asObj = (v: unknown): Obj => (typeof v === 'object' && v !== null ? (v as Obj) : {});
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const num = (v: unknown): number | undefined =>
  typeof v === 'number' && Number.isFinite(v) ? v : undefined;

/**
 * Bytes moved by a finished job (for speed and totals): none for an upload skipped as
 * unchanged (Jamf already held the bytes: nothing was sent).
 */
export function resultBytes(result: unknown): number | undefined {
  const r = asObj(result);
  if (r['outcome'] === 'unchanged') return 0;
  return num(r['size']) ?? num(r['bytesSent']) ?? num(r['bytesFetched']);
}

export function describeResult(queue: string, result: unknown, durationMs?: number): string {
  const r = asObj(result);
  const took = durationMs === undefined ? '' : ` in ${formatDuration(durationMs)}`;
  const bytes = resultBytes(result);
  const speed =
    bytes !== undefined && durationMs ? ` (${formatSpeed((bytes * 1000) / durationMs)})` : '';
  if (queue === 'upload') {
    const outcome = str(r['outcome']) ?? 'done';
    if (outcome === 'unchanged') {
      // Nothing was sent: no size moved, no transport, no speed.
      return `package ${str(r['packageId']) ?? '?'} unchanged (same hash already in Jamf), nothing sent${took}`;
    }
    return `package ${str(r['packageId']) ?? '?'} ${outcome}, verified, ${formatBytes(bytes ?? 0)} via ${str(r['transport']) ?? '?'}${took}${speed}`;
  }
  if (queue === 'download') {
    const verified = r['verified'] === true ? 'verified' : 'NOT verified';
    return `saved to ${str(r['path']) ?? '?'}, ${formatBytes(bytes ?? 0)}, ${verified}${took}${speed}`;
  }
  if (queue === 'sync') {
    if (str(r['skipped'])) return `skipped: ${str(r['skipped'])}`;
    const parts = ['uploaded', 'downloaded', 'unchanged', 'failed']
      .filter(k => num(r[k]) !== undefined)
      .map(k => `${num(r[k])} ${k}`);
    return `${parts.join(', ') || 'done'}${took}`;
  }
  return `done${took}`;
}

/** True when a completed job still reports failures (a sync whose files failed). */
export function resultHasFailures(result: unknown): boolean {
  const failed = num(asObj(result)['failed']);
  return failed !== undefined && failed > 0;
}

/** The failures a sync result lists, as lines. */
export function resultFailures(result: unknown): string[] {
  const list = asObj(result)['failures'];
  if (!Array.isArray(list)) return [];
  return list.map(f => `${str(asObj(f)['fileName']) ?? '?'}: ${str(asObj(f)['reason']) ?? '?'}`);
}

/** Files a finished job accounts for: a transfer is one file, a sync counts its files. */
export interface FileTotals {
  done: number;
  failed: number;
  /** Uploads skipped because Jamf already held the same bytes. */
  unchanged: number;
  bytes: number;
}

/**
 * The totals of finished jobs, in files: the same numbers the result column shows, so the
 * last line never contradicts the table (a sync that uploaded 3 files and failed 1 is
 * "3 done, 1 failed", not "0 done, 1 failed"). A sync that failed or did nothing itself
 * counts as one failed job.
 */
export function fileTotals(
  outcomes: Array<{ queue: string; state: 'completed' | 'failed'; result?: unknown }>,
): FileTotals {
  const t: FileTotals = { done: 0, failed: 0, unchanged: 0, bytes: 0 };
  for (const o of outcomes) {
    const r = asObj(o.result);
    if (o.state === 'failed') {
      t.failed++;
      continue;
    }
    if (o.queue === 'sync') {
      if (str(r['skipped'])) continue;
      t.done +=
        (num(r['uploaded']) ?? 0) + (num(r['downloaded']) ?? 0) + (num(r['unchanged']) ?? 0);
      t.unchanged += num(r['unchanged']) ?? 0;
      t.failed += num(r['failed']) ?? 0;
      continue;
    }
    t.done++;
    if (r['outcome'] === 'unchanged') t.unchanged++;
    t.bytes += resultBytes(o.result) ?? 0;
  }
  return t;
}

/**
 * The last line of `--wait`: "2 done (1 unchanged, nothing sent), 1 failed, 4.0 MiB sent in
 * 3.0 s". Bytes are left out for syncs (their files' bytes are the uploads' own).
 */
export function totalsLine(
  queues: string[],
  t: FileTotals,
  elapsedMs: number,
  unfinished = 0,
): string {
  const onlySync = queues.length > 0 && queues.every(q => q === 'sync');
  const files = onlySync ? ' file(s)' : '';
  const verb = queues.every(q => q === 'download')
    ? 'fetched'
    : queues.every(q => q === 'upload')
      ? 'sent'
      : 'moved';
  const unchanged =
    t.unchanged > 0 ? ` (${t.unchanged} unchanged${onlySync ? '' : ', nothing sent'})` : '';
  const running =
    unfinished > 0
      ? `, ${unfinished} still running (stopped following; they go on in the fleet)`
      : '';
  const bytes = onlySync ? '' : `, ${formatBytes(t.bytes)} ${verb}`;
  return `${t.done}${files} done${unchanged}, ${t.failed} failed${running}${bytes} in ${formatDuration(elapsedMs)}`;
}
