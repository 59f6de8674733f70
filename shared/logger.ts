/**
 * The pino root logger. Secrets are redacted by path (headers, tokens, client secrets, S3
 * keys) wherever they appear in a logged object, before any output is written. Text that
 * may hold a secret (a response body, a URL) must go through `redactText` before it is
 * logged.
 *
 * Output: JSON lines on stderr (for log collectors, files and pipes); on a terminal, the
 * same records pretty-printed by pino-pretty (a coloured level, the time, the message,
 * the fields on one line), with error stacks only at `debug` and `trace`.
 */
import { pino, type DestinationStream, type Logger, type LoggerOptions } from 'pino';
import pretty from 'pino-pretty';

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

export function createLogger(settings: LoggerSettings = {}): Logger {
  const level = settings.level ?? 'info';
  const options: LoggerOptions = {
    level,
    redact: { paths: REDACT_PATHS, censor: '[REDACTED]' },
    base: { pid: process.pid, ...(settings.name ? { name: settings.name } : {}) },
  };
  // Logs go to stderr by default: stdout belongs to --json output and the simulator's
  // ready line.
  if (settings.destination) return pino(options, settings.destination);
  if (settings.pretty ?? Boolean(process.stderr.isTTY)) {
    return pino(options, prettyStream(level));
  }
  return pino(options, pino.destination(2));
}
