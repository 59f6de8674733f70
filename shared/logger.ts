/**
 * The pino root logger. Secrets are redacted before any output is written, twice over:
 * by key (headers, tokens, client secrets, S3 keys: pino's `redact` paths, and any key that
 * names a secret at any depth), and by form in every text (shared/redact.ts: the message,
 * every field, a child's bindings, and every error with its whole `cause` chain and an
 * AggregateError's errors, which pino's own serializer prints as they are).
 *
 * Output: JSON lines on stderr (for log collectors, files and pipes); on a terminal, the
 * same records pretty-printed by pino-pretty (a coloured level, the time, the message,
 * the fields on one line), with error stacks only at `debug` and `trace`.
 */
import { pino, type DestinationStream, type Logger, type LoggerOptions } from 'pino';
import pretty from 'pino-pretty';
import {
  isErrorLike,
  isSerializedError,
  redactText,
  redactValue,
  serializeError,
} from './redact.ts';

export type { Logger } from 'pino';

const SECRET_KEYS = [
  'authorization',
  'Authorization',
  'token',
  'access_token',
  'accessToken',
  'bearer',
  'password',
  'clientSecret',
  'client_secret',
  'secretAccessKey',
  'SecretAccessKey',
  'sessionToken',
  'SessionToken',
  'accessKeyID',
  'accessKeyId',
  'AccessKeyId',
  'x-amz-security-token',
  'cookie',
  'set-cookie',
];

/** Redaction paths: each secret key at the top level and up to three levels down. */
export const REDACT_PATHS: string[] = SECRET_KEYS.flatMap(k => {
  const key = /^[A-Za-z_$][\w$]*$/.test(k) ? k : `["${k}"]`;
  const sep = key.startsWith('[') ? '' : '.';
  return [key, `*${sep}${key}`, `*.*${sep}${key}`, `*.*.*${sep}${key}`];
});

export interface LoggerSettings {
  /**
   * The level (`config.logLevel` in the product, which reads LOG_LEVEL); the logger never
   * reads the environment itself. @defaultValue `info`
   */
  level?: string;
  name?: string;
  /** Where JSON lines go. @defaultValue stderr (pretty-printed when it is a terminal) */
  destination?: DestinationStream;
  /**
   * Pretty-print (pino-pretty) instead of JSON lines. Ignored with a `destination`.
   * @defaultValue true when stderr is a terminal
   */
  pretty?: boolean;
}

/**
 * The pino-pretty stream for a terminal (stderr unless told): one line per record, stacks
 * only when debugging.
 */
export function prettyStream(
  level: string,
  options: { colorize?: boolean; destination?: number | NodeJS.WritableStream } = {},
): DestinationStream {
  const debugging = level === 'debug' || level === 'trace';
  return pretty({
    destination: options.destination ?? 2,
    sync: true,
    colorize: options.colorize ?? true,
    translateTime: 'SYS:HH:MM:ss.l',
    ignore: debugging ? 'pid,hostname' : 'pid,hostname,err.stack,error.stack',
    singleLine: true,
  });
}

/**
 * An error field as it is logged: redacted, with its whole `cause` chain and an
 * AggregateError's errors (pino's own serializer prints causes unredacted).
 */
function logError(value: unknown): unknown {
  return isErrorLike(value) && !isSerializedError(value) ? serializeError(value) : value;
}

/**
 * The message and format arguments, redacted (pino does not pass the message through the
 * field formatter). `log.error(err)` is logged as `{err}` with its redacted message: pino
 * would take the raw message.
 */
function redactLogArgs(
  this: Logger,
  args: Parameters<Logger['info']>,
  method: (...args: unknown[]) => void,
): void {
  const [first, ...rest] = args as unknown[];
  if (isErrorLike(first)) {
    const msg = typeof rest[0] === 'string' ? rest.shift() : first.message;
    method.apply(this, [{ err: first }, redactText(String(msg)), ...rest.map(a => redactValue(a))]);
    return;
  }
  method.apply(
    this,
    (args as unknown[]).map((a, i) =>
      typeof a === 'string' ? redactText(a) : i === 0 ? a : redactValue(a),
    ),
  );
}

export function createLogger(settings: LoggerSettings = {}): Logger {
  const level = settings.level ?? 'info';
  const options: LoggerOptions = {
    level,
    redact: { paths: REDACT_PATHS, censor: '[REDACTED]' },
    // Paths catch secret keys; these catch secret forms in any text: the message and
    // format arguments, every field (nested errors serialized with their causes); a
    // child's bindings in redactingChildren.
    hooks: { logMethod: redactLogArgs },
    formatters: {
      log: fields => redactValue(fields) as Record<string, unknown>,
    },
    serializers: { err: logError, error: logError },
    base: { pid: process.pid, ...(settings.name ? { name: settings.name } : {}) },
  };
  // Logs go to stderr by default: stdout belongs to --json output and the simulator's
  // ready line.
  if (settings.destination) return redactingChildren(pino(options, settings.destination));
  if (settings.pretty ?? Boolean(process.stderr.isTTY)) {
    return redactingChildren(pino(options, prettyStream(level)));
  }
  return redactingChildren(pino(options, pino.destination(2)));
}

/**
 * pino passes a child's bindings through no formatter: the root's `child` redacts them
 * first. Children inherit it (pino builds a child with Object.create(parent)).
 */
function redactingChildren(root: Logger): Logger {
  const child = root.child;
  root.child = function (this: Logger, bindings, options) {
    return child.call(this, redactValue(bindings) as typeof bindings, options);
  } as Logger['child'];
  return root;
}
