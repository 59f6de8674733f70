/**
 * The pino root logger. JSON lines; secrets are redacted by path (headers, tokens,
 * client secrets, S3 keys) wherever they appear in a logged object. Text that may hold
 * a secret (a response body, a URL) must go through `redactText` before it is logged.
 */
import { pino, type DestinationStream, type Logger, type LoggerOptions } from 'pino';

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
  destination?: DestinationStream;
}

export function createLogger(settings: LoggerSettings = {}): Logger {
  const options: LoggerOptions = {
    level: settings.level ?? 'info',
    redact: { paths: REDACT_PATHS, censor: '[REDACTED]' },
    base: { pid: process.pid, ...(settings.name ? { name: settings.name } : {}) },
  };
  // Logs go to stderr by default: stdout belongs to --json output and the simulator's
  // ready line.
  return pino(options, settings.destination ?? pino.destination(2));
}
