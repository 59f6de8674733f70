/** Small text formatters for human output: sizes, speeds, durations, aligned tables. */
import { formatBytes } from '../../shared/units.ts';

export { formatBytes };

export function formatSpeed(bytesPerSecond: number | undefined): string {
  if (bytesPerSecond === undefined || !Number.isFinite(bytesPerSecond) || bytesPerSecond <= 0) {
    return '-';
  }
  return `${formatBytes(Math.round(bytesPerSecond))}/s`;
}

export function formatDuration(ms: number | undefined): string {
  if (ms === undefined || !Number.isFinite(ms) || ms < 0) return '-';
  if (ms < 1_000) return `${Math.round(ms)} ms`;
  const s = ms / 1_000;
  if (s < 60) return `${s.toFixed(1)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${Math.round(s - m * 60)} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

/** "2026-01-02 03:04:05" in local time, or "-". */
export function formatTime(epochMs: number | undefined): string {
  if (!epochMs) return '-';
  const d = new Date(epochMs);
  const p = (n: number): string => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

/** Shortens text to `max` characters with an ellipsis in the middle. */
export function ellipsize(text: string, max: number): string {
  if (text.length <= max) return text;
  const keep = Math.max(1, max - 1);
  const head = Math.ceil(keep / 2);
  return `${text.slice(0, head)}…${text.slice(text.length - (keep - head))}`;
}

/**
 * An aligned plain-text table. `right` lists the columns aligned right (numbers).
 * Cells are shortened so that no column is wider than `maxWidth`.
 */
export function table(
  headers: string[],
  rows: string[][],
  options: { right?: number[]; maxWidth?: number } = {},
): string {
  const max = options.maxWidth ?? 60;
  const cells = [headers, ...rows].map(r => r.map(c => ellipsize(c, max)));
  const widths = headers.map((_, i) => Math.max(...cells.map(r => (r[i] ?? '').length)));
  const right = new Set(options.right ?? []);
  const line = (r: string[]): string =>
    r
      .map((c, i) => (right.has(i) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return `${cells.map(line).join('\n')}\n`;
}
