/**
 * What every command gets: the I/O seam, the configuration (parsed on use, so `jcds --help`
 * works in an empty environment) and a producer connected on demand. Producer commands
 * need only REDIS_URL; `jcds ls` also needs Jamf.
 *
 * Both are loaded by dynamic import() when a command first asks: the configuration pulls
 * in ioredis and the producer BullMQ, which `jcds --help` must not pay for (issue 14, "CLI
 * start"; test/integration/cli-start.test.ts checks what each command loads).
 */
import { InvalidArgumentError } from 'commander';
import type { Config } from '../../shared/config.ts';
import type { Producer } from '../producer.ts';
import type { CliIo } from './io.ts';

export interface CliContext {
  io: CliIo;
  /** The exit code once the command has run (commands raise it to 1 when a job failed). */
  exitCode: number;
  /** Aborted on SIGINT/SIGTERM: `--wait` stops following (the jobs go on in the fleet). */
  signal: AbortSignal;
  config(options?: { requireJamf?: boolean }): Promise<Config>;
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
    config: async options => {
      const { loadConfig } = await import('../../shared/config.ts');
      return loadConfig(io.env, { requireJamf: options?.requireJamf ?? false });
    },
    producer: () => {
      producer ??= (async () => {
        const [config, { Producer }] = await Promise.all([ctx.config(), import('../producer.ts')]);
        return Producer.connect({ redisUrl: config.redisUrl });
      })();
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
