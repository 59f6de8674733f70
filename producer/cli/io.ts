/**
 * Where a command writes. A command's own output goes to stdout: the tables of `status`
 * and `ls` (so `jcds status | grep Office` and `jcds ls > file` work), and with `--json`
 * one object per line. Everything else for people (progress, messages, advice, the
 * summary of `--wait`) goes to stderr, so `jcds upload --json | jq` works while progress
 * stays visible. Injected so unit tests can capture both.
 */
export interface CliIo {
  /** A command's output: tables of `status`/`ls`, NDJSON with --json. */
  out(text: string): void;
  /** Human output: messages, plain progress lines, advice. */
  err(text: string): void;
  /** True when stderr is a terminal: progress bars instead of lines, colours. */
  isTTY: boolean;
  /** True when stdout is a terminal: tables fit its width and may use colours. */
  outIsTTY?: boolean;
  /** Terminal width and height (for bars and tables); read again at each redraw. */
  columns: number;
  rows: number;
  env: Record<string, string | undefined>;
  /** The stream progress bars draw on (a terminal). */
  barStream: NodeJS.WritableStream;
}

export function processIo(): CliIo {
  return {
    out: text => process.stdout.write(text),
    err: text => process.stderr.write(text),
    isTTY: Boolean(process.stderr.isTTY),
    outIsTTY: Boolean(process.stdout.isTTY),
    // Getters: a resized terminal is fitted at the next redraw.
    get columns() {
      return process.stderr.columns ?? process.stdout.columns ?? 100;
    },
    get rows() {
      return process.stderr.rows ?? 30;
    },
    env: process.env,
    barStream: process.stderr,
  };
}

/** Writes one NDJSON line. */
export function emitJson(io: CliIo, value: Record<string, unknown>): void {
  io.out(`${JSON.stringify(value)}\n`);
}
