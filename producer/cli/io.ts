/**
 * Where a command writes: `--json` objects go to stdout (one per line), everything for
 * people (tables, progress, advice) goes to stderr, so `jcds upload --json | jq` works
 * while progress stays visible. Injected so unit tests can capture both.
 */
export interface CliIo {
  /** Machine output (NDJSON with --json). */
  out(text: string): void;
  /** Human output: messages, tables, plain progress lines. */
  err(text: string): void;
  /** True when stderr is a terminal: progress bars instead of lines. */
  isTTY: boolean;
  /** Terminal width and height (for bars and tables). */
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
    columns: process.stderr.columns ?? 100,
    rows: process.stderr.rows ?? 30,
    env: process.env,
    barStream: process.stderr,
  };
}

/** Writes one NDJSON line. */
export function emitJson(io: CliIo, value: Record<string, unknown>): void {
  io.out(`${JSON.stringify(value)}\n`);
}
