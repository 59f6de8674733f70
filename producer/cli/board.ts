/**
 * A small live area at the bottom of a terminal: lines that are redrawn in place a few
 * times a second (the progress lines), with messages printed above them that scroll away
 * normally (finished jobs, retries). Every line is fitted to the terminal's width before it
 * is drawn (messages are wrapped, live lines are laid out to fit), so nothing is cut at 80
 * columns and the redraw never loses track of where the area starts.
 */
import { wrapText } from './format.ts';

const ESC = '\u001b[';

export interface BoardOptions {
  stream: NodeJS.WritableStream;
  /** The live lines, computed at each redraw for `columns`. */
  lines: (columns: number) => string[];
  columns: () => number;
  rows: () => number;
  /** Redraws per second. @defaultValue 5 */
  fps?: number;
}

export class Board {
  private readonly options: BoardOptions;
  private readonly pending: string[] = [];
  private drawn = 0;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(options: BoardOptions) {
    this.options = options;
  }

  start(): void {
    this.options.stream.write(`${ESC}?25l`);
    this.timer = setInterval(() => this.draw(), 1000 / (this.options.fps ?? 5));
    this.timer.unref?.();
    this.draw();
  }

  /** A message above the live area; `paint` colours each wrapped line. */
  log(text: string, paint: (line: string) => string = l => l): void {
    const width = Math.max(20, this.options.columns() - 1);
    for (const line of wrapText(text.replace(/\n+$/, ''), width)) this.pending.push(paint(line));
  }

  draw(): void {
    if (this.stopped) return;
    const columns = this.options.columns();
    const rows = Math.max(3, this.options.rows());
    const live = this.options.lines(columns).slice(0, rows - 1);
    let out = this.drawn > 0 ? `${ESC}${this.drawn}A\r` : '\r';
    for (const line of this.pending.splice(0)) out += `${line}${ESC}K\n`;
    for (const line of live) out += `${line}${ESC}K\n`;
    out += `${ESC}J`;
    this.drawn = live.length;
    this.options.stream.write(out);
  }

  /** Draws the last state, leaves it on screen and shows the cursor again. */
  stop(): void {
    if (this.stopped) return;
    if (this.timer) clearInterval(this.timer);
    this.draw();
    this.stopped = true;
    this.options.stream.write(`${ESC}?25h`);
  }
}
