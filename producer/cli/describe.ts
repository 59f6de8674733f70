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

/** Bytes moved by a finished job (for speed and totals). */
export function resultBytes(result: unknown): number | undefined {
  const r = asObj(result);
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
    const verb =
      outcome === 'unchanged' ? 'unchanged (same hash already in Jamf)' : `${outcome}, verified`;
    return `package ${str(r['packageId']) ?? '?'} ${verb}, ${formatBytes(bytes ?? 0)} via ${str(r['transport']) ?? '?'}${took}${speed}`;
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
