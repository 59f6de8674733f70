/**
 * The Redis a worker is about to take jobs from must not evict keys (shared/queues/
 * eviction.ts says why). Checked once at start, before any job is taken: a refused Redis
 * ends the worker with REDIS_EVICTION_POLICY (exit 3). JCDS_ALLOW_REDIS_EVICTION (or
 * `jcds worker --allow-eviction`) starts it anyway, with a warning in its log.
 */
import type { Redis } from 'ioredis';
import { AppError } from '../shared/errors.ts';
import type { Logger } from '../shared/logger.ts';
import { describeRedisUrl } from '../shared/queues/connection.ts';
import {
  describeEvictionRisk,
  isAuthError,
  readEvictionPolicy,
  type EvictionPolicy,
} from '../shared/queues/eviction.ts';

/**
 * The first commands a worker sends, so a refused password shows here too: REDIS_UNAVAILABLE
 * naming where (never the password) and what to check, exit 3, instead of a worker that
 * cannot work.
 */
export async function checkEvictionPolicy(
  redis: Pick<Redis, 'config' | 'info'>,
  redisUrl: string,
  allowEviction: boolean,
  logger: Logger,
): Promise<EvictionPolicy> {
  let found: EvictionPolicy;
  try {
    found = await readEvictionPolicy(redis);
  } catch (err) {
    if (!isAuthError(err)) throw err;
    const reply = (err as Error).message.split(' ')[0];
    throw new AppError(
      'REDIS_UNAVAILABLE',
      `Redis at ${describeRedisUrl(redisUrl)} refused the credentials in REDIS_URL (${reply}): check the password (and user name) there, and percent-encode any of : / @ ? # in it.`,
    );
  }
  if (found.safe) return found;
  const risk = describeEvictionRisk(found);
  if (allowEviction) {
    logger.warn(
      { maxmemoryPolicy: found.policy ?? 'unknown', override: 'JCDS_ALLOW_REDIS_EVICTION' },
      `${risk} Starting anyway: JCDS_ALLOW_REDIS_EVICTION is set.`,
    );
    return found;
  }
  throw new AppError(
    'REDIS_EVICTION_POLICY',
    `${risk} To start anyway, knowing jobs may be lost, set JCDS_ALLOW_REDIS_EVICTION=1 (jcds worker --allow-eviction).`,
    { details: { maxmemoryPolicy: found.policy ?? null, source: found.source ?? null } },
  );
}
