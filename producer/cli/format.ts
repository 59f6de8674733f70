/**
 * Small text formatters for human output: sizes, speeds, durations, times with their zone,
 * colours (on a terminal only), aligned tables that fit a width, and the progress line of
 * one job fitted to the terminal's columns.
 */
import { formatBytes } from '../../shared/units.ts';

export { formatBytes };

/** "16.0/40.0 MiB" (one unit when both share it), else "512.0 KiB/40.0 MiB". */
export function formatAmounts(done: number, total: number): string {
  const d = formatBytes(done);
  const t = formatBytes(total);
  const [dn, du] = d.split(' ');
  const [tn, tu] = t.split(' ');
  return du === tu ? `${dn}/${tn} ${tu}` : `${d}/${t}`;
}

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

/** A short ETA: "12s", "4m05s", "2h10m". */
export function formatEta(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}

/** "2026-01-02 03:04:05" in local time, or "-". */
export function formatTime(epochMs: number | undefined): string {
  if (!epochMs) return '-';
  const d = new Date(epochMs);
  const p = (n: number): string => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

/** The IANA name of this machine's time zone (e.g. "Europe/Paris", "UTC"). */
export function localZone(): string {
  return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
}

/**
 * "2026-01-02 02:00 UTC": the wall-clock time in `zone` (this machine's when not given),
 * followed by the zone's name, so a time is never read in the wrong zone. "-" for none.
 */
export function formatTimeIn(epochMs: number | undefined, zone?: string): string {
  if (!epochMs) return '-';
  const tz = zone ?? localZone();
  const parts = Object.fromEntries(
    new Intl.DateTimeFormat('en-CA', {
      timeZone: tz,
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      hourCycle: 'h23',
    })
      .formatToParts(new Date(epochMs))
      .map(p => [p.type, p.value]),
  );
  return `${parts['year']}-${parts['month']}-${parts['day']} ${parts['hour']}:${parts['minute']} ${tz}`;
}

/** Shortens text to `max` characters with an ellipsis in the middle. */
export function ellipsize(text: string, max: number): string {
  if (text.length <= max) return text;
  if (max <= 1) return text.slice(0, Math.max(0, max));
  const keep = Math.max(1, max - 1);
  const head = Math.ceil(keep / 2);
  return `${text.slice(0, head)}…${text.slice(text.length - (keep - head))}`;
}

/** ANSI colours, or none: only on a terminal, and never with NO_COLOR set (no-color.org). */
export interface Paint {
  enabled: boolean;
  red(text: string): string;
  green(text: string): string;
  yellow(text: string): string;
  dim(text: string): string;
}

export function paint(enabled: boolean): Paint {
  const wrap =
    (open: number, close: number) =>
    (text: string): string =>
      enabled && text !== '' ? `\u001b[${open}m${text}\u001b[${close}m` : text;
  return {
    enabled,
    red: wrap(31, 39),
    green: wrap(32, 39),
    yellow: wrap(33, 39),
    dim: wrap(2, 22),
  };
}

/** True when colours should be used on a stream that `isTTY` describes. */
export function useColor(isTTY: boolean, env: Record<string, string | undefined>): boolean {
  return isTTY && !env['NO_COLOR'] && env['TERM'] !== 'dumb';
}

export interface TableOptions {
  /** Columns aligned right (numbers). */
  right?: number[];
  /** No cell is wider than this (shortened with an ellipsis). @defaultValue 60 */
  maxWidth?: number;
  /**
   * The whole line's width (a terminal's columns): the widest columns are shortened until
   * each line fits (never below 8 characters a column). Unset: no limit, for pipes.
   */
  fit?: number;
  /** Colours a cell after it is padded (so ANSI codes do not upset the alignment). */
  style?: (row: number, column: number, padded: string) => string;
}

/**
 * An aligned plain-text table. `right` lists the columns aligned right (numbers).
 * Cells are shortened so that no column is wider than `maxWidth`, and the lines fit `fit`.
 */
export function table(headers: string[], rows: string[][], options: TableOptions = {}): string {
  const max = options.maxWidth ?? 60;
  const all = [headers, ...rows];
  const widths = headers.map((_, i) =>
    Math.min(max, Math.max(...all.map(r => (r[i] ?? '').length))),
  );
  if (options.fit !== undefined) {
    const sep = 2 * (headers.length - 1);
    const minimum = headers.map((h, i) => Math.min(widths[i]!, Math.max(8, h.length)));
    let excess = widths.reduce((a, b) => a + b, 0) + sep - options.fit;
    while (excess > 0) {
      // Shorten the widest column that can still give.
      let widest = -1;
      for (const [i, w] of widths.entries())
        if (w > minimum[i]! && (widest < 0 || w > widths[widest]!)) widest = i;
      if (widest < 0) break;
      widths[widest]!--;
      excess--;
    }
  }
  const right = new Set(options.right ?? []);
  const line = (r: string[], rowIndex: number): string =>
    headers
      .map((_, i) => {
        const c = ellipsize(r[i] ?? '', widths[i]!);
        const padded = right.has(i) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!);
        return rowIndex > 0 && options.style ? options.style(rowIndex - 1, i, padded) : padded;
      })
      .join('  ')
      .trimEnd();
  return `${all.map(line).join('\n')}\n`;
}

/** What one job's progress line shows; `status` replaces the speed and ETA when set. */
export interface ProgressFields {
  label: string;
  /** 0..1, or undefined when nothing is known yet. */
  ratio: number | undefined;
  /** "12.0 MiB/48.0 MiB", "2/5 jobs". */
  amounts: string;
  speed: string;
  eta: string;
  /** Instead of speed and ETA: "waiting", "retrying part 3 (attempt 2/6)", "failed". */
  status?: string;
}

/** How progress lines are laid out: the same for every line, so the columns align. */
export interface ProgressLayout {
  label: number;
  /** Bar cells (0: no bar). */
  cells: number;
  amounts: number;
  /** The speed column's width (0: no speed). */
  speed: number;
}

function renderProgress(f: ProgressFields, l: ProgressLayout): string {
  const pct = f.ratio === undefined ? '   -' : `${String(Math.floor(f.ratio * 100)).padStart(3)}%`;
  const full = f.ratio === undefined ? 0 : Math.round(Math.min(1, f.ratio) * l.cells);
  const bar = l.cells > 0 ? ` |${'█'.repeat(full)}${'░'.repeat(l.cells - full)}|` : '';
  const amounts = l.amounts > 0 ? ` ${f.amounts.padStart(l.amounts)}` : '';
  const right =
    f.status ??
    [l.speed > 0 ? f.speed.padStart(l.speed) : '', f.eta ? `ETA ${f.eta}` : '']
      .filter(x => x.trim() !== '')
      .join(' ');
  return `${ellipsize(f.label, l.label).padEnd(l.label)}${bar} ${pct}${amounts}${right ? ` ${right}` : ''}`.trimEnd();
}

/**
 * Progress lines that fit `columns` (a terminal's width; the last column is left free, as
 * terminals wrap there), laid out alike so their columns align. What gives way first: the
 * bar's length (30, 20, then 10 cells), long labels down to 20 characters, the bar, the
 * labels down to 16, the speed, the labels down to 12, the amounts; the file name's start and end, the percentage
 * and the status or ETA stay. Plain text: colour it afterwards.
 */
export function progressLines(list: ProgressFields[], columns: number): string[] {
  if (list.length === 0) return [];
  const width = Math.max(20, columns - 1);
  const labelFull = Math.min(32, Math.max(12, ...list.map(f => f.label.length)));
  const amounts = Math.max(...list.map(f => f.amounts.length));
  const speed = Math.max(0, ...list.map(f => (f.status === undefined ? f.speed.length : 0)));
  const labels = (down: number): number[] => {
    const out: number[] = [];
    for (let l = labelFull; l >= Math.min(labelFull, down); l--) out.push(l);
    return out;
  };
  const tries: ProgressLayout[] = [];
  const add = (
    cells: number[],
    label: number[],
    withAmounts: boolean,
    withSpeed: boolean,
  ): void => {
    for (const c of cells)
      for (const l of label)
        tries.push({
          label: l,
          cells: c,
          amounts: withAmounts ? amounts : 0,
          speed: withSpeed ? speed : 0,
        });
  };
  add([30, 20, 10], [labelFull], true, true);
  add([10], labels(20), true, true);
  add([0], labels(16), true, true);
  add([0], labels(16), true, false);
  add([0], labels(12), true, false);
  add([0], labels(12), false, false);
  let last: string[] = [];
  for (const layout of tries) {
    last = list.map(f => renderProgress(f, layout));
    if (last.every(t => t.length <= width)) return last;
  }
  return last.map(t => ellipsize(t, width));
}

/** One progress line that fits `columns` (see `progressLines`). */
export function progressLine(f: ProgressFields, columns: number): string {
  return progressLines([f], columns)[0]!;
}

/**
 * Splits text into lines of at most `width` characters, at spaces where it can; the lines
 * after the first are indented by two spaces. Keeps explicit line breaks.
 */
export function wrapText(text: string, width: number): string[] {
  const w = Math.max(10, width);
  const out: string[] = [];
  for (const para of text.split('\n')) {
    let rest = para;
    let first = true;
    while (rest.length > 0) {
      const room = first ? w : w - 2;
      const indent = first ? '' : '  ';
      if (rest.length <= room) {
        out.push(indent + rest);
        break;
      }
      let cut = rest.lastIndexOf(' ', room);
      if (cut < room / 2) cut = room;
      out.push(indent + rest.slice(0, cut).trimEnd());
      rest = rest.slice(cut).trimStart();
      first = false;
    }
    if (para.length === 0) out.push('');
  }
  return out;
}
