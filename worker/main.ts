/**
 * `node worker/main.ts` (and `jcds worker`): runs one worker process until SIGTERM or
 * SIGINT, then drains gracefully (parts in flight finish or are released).
 *
 * Shutdown is bounded: the grace period (JCDS_SHUTDOWN_GRACE_MS), then connections are
 * dropped (start.ts), and past graceMs + SHUTDOWN_EXIT_AFTER_MS the process exits by
 * force, so a worker whose Redis is gone still stops on the first SIGTERM.
 *
 * Started by `jcds worker` (producer/cli/launch.ts), the worker has an IPC channel to the
 * CLI: when it closes, the CLI is gone (even by SIGKILL, when it could forward no signal),
 * and the worker shuts down as on SIGTERM instead of running on orphaned.
 */
import { loadConfig } from '../shared/config.ts';
import { AppError, describeError, errorCode, errorSpec } from '../shared/errors.ts';
import { createLogger } from '../shared/logger.ts';
import { SHUTDOWN_FORCE_MS, startWorker, type WorkerHandle } from './start.ts';

/** Past the grace period, the longest a shutdown may take before the process exits by force. */
export const SHUTDOWN_EXIT_AFTER_MS = 2 * SHUTDOWN_FORCE_MS + 1_000;

export async function runWorker(overrides: { concurrency?: number } = {}): Promise<void> {
  let config;
  try {
    config = loadConfig(process.env, { requireJamf: true, requireSecret: 's3' });
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`);
    process.exit(3);
  }
  if (overrides.concurrency !== undefined)
    config = { ...config, workerConcurrency: overrides.concurrency };
  const logger = createLogger({ level: config.logLevel, name: 'jcds-worker' });
  let handle: WorkerHandle | undefined;
  let signals = 0;
  const stop = (signal: string): void => {
    // Before the worker is ready there is nothing to drain: the process just ends.
    if (!handle) process.exit(0);
    signals++;
    if (signals > 1) {
      logger.warn('second signal: exiting now');
      process.exit(1);
    }
    logger.info({ signal }, 'shutting down gracefully');
    // The last resort if closing hangs anyway: exit, the jobs' locks expire and other
    // workers take them over, as after a crash.
    setTimeout(() => {
      logger.error(
        { graceMs: config.shutdownGraceMs, afterMs: SHUTDOWN_EXIT_AFTER_MS },
        'shutdown did not finish in time: exiting',
      );
      process.exit(1);
    }, config.shutdownGraceMs + SHUTDOWN_EXIT_AFTER_MS).unref();
    handle.close(config.shutdownGraceMs).then(
      () => process.exit(0),
      err => {
        logger.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  if (process.channel) {
    // The channel must not keep the process alive by itself; 'disconnect' still fires.
    process.channel.unref();
    process.once('disconnect', () => stop('parent exited'));
  }
  try {
    handle = await startWorker({ config, logger });
  } catch (err) {
    // A refusal at start (REDIS_EVICTION_POLICY, …): its message and advice, and the
    // registry's exit code (3 for configuration), not a stack trace.
    const code = errorCode(err);
    const spec = errorSpec(code);
    if (!(err instanceof AppError) || !spec) throw err;
    logger.fatal({ code, details: err.details }, describeError(err));
    process.stderr.write(
      `jcds worker: [${code}] ${describeError(err)}${spec.hint ? `\n${spec.hint}` : ''}\n`,
    );
    process.exit(spec.exit);
  }
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('unhandledRejection', err =>
    logger.error({ err: err instanceof AppError ? err.toJSON() : err }, 'unhandled rejection'),
  );
}

if (import.meta.main) await runWorker();
