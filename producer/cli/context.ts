/**
 * What every command gets: the I/O seam, the configuration (parsed once, on first use,
 * so `jcds --help` works in an empty environment) and a producer connected on demand.
 * Producer commands need only REDIS_URL; `jcds ls` also needs Jamf.
 */
import { InvalidArgumentError } from 'commander';
import { loadConfig, type Config } from '../../shared/config.ts';
import { Producer } from '../producer.ts';
import type { CliIo } from './io.ts';

export interface CliContext {
  io: CliIo;
  /** The exit code once the command has run (commands raise it to 1 when a job failed). */
  exitCode: number;
  /** Aborted on SIGINT/SIGTERM: `--wait` stops following (the jobs go on in the fleet). */
  signal: AbortSignal;
  config(options?: { requireJamf?: boolean }): Config;
  producer(): Promise<Producer>;
  /** Closes what the command opened. */
  close(): Promise<void>;
}

export function createContext(io: CliIo, signal: AbortSignal): CliContext {
  let producer: Promise<Producer> | undefined;
  const ctx: CliContext = {
    io,
    exitCode: 0,
    signal,
    config: options => loadConfig(io.env, { requireJamf: options?.requireJamf ?? false }),
    producer: () => {
      producer ??= Producer.connect({ redisUrl: ctx.config().redisUrl });
      // A failed connect must not be cached as a rejected promise for close().
      producer.catch(() => (producer = undefined));
      return producer;
    },
    close: async () => {
      const p = producer;
      producer = undefined;
      if (p) await (await p).close();
    },
  };
  return ctx;
}

/** A commander argument parser for a whole number within bounds (bad input: exit 2). */
export function intArg(min: number, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^\s*-?\d+\s*$/.test(value) || !Number.isSafeInteger(n) || n < min || n > max) {
      throw new InvalidArgumentError(`Use a whole number from ${min} to ${max}.`);
    }
    return n;
  };
}
