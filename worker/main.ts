/**
 * `node worker/main.ts` (and `jcds worker`): runs one worker process until SIGTERM or
 * SIGINT, then drains gracefully (parts in flight finish or are released).
 */
import { loadConfig } from '../shared/config.ts';
import { AppError } from '../shared/errors.ts';
import { createLogger } from '../shared/logger.ts';
import { startWorker } from './start.ts';

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
  const handle = await startWorker({ config, logger });
  let signals = 0;
  const stop = (signal: string): void => {
    signals++;
    if (signals > 1) {
      logger.warn('second signal: exiting now');
      process.exit(1);
    }
    logger.info({ signal }, 'shutting down gracefully');
    handle.close(config.shutdownGraceMs).then(
      () => process.exit(0),
      err => {
        logger.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('unhandledRejection', err =>
    logger.error({ err: err instanceof AppError ? err.toJSON() : err }, 'unhandled rejection'),
  );
}

if (import.meta.main) await runWorker();
