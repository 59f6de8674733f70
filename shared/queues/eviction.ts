/**
 * Redis' maxmemory-policy, read and judged. BullMQ keeps jobs, their locks and the
 * queues' indexes as ordinary keys: with any policy but `noeviction`, Redis under memory
 * pressure deletes some of them, and jobs are lost or run twice without an error anywhere.
 * Workers refuse such a Redis (worker/start.ts), the monitor's /healthz reports it and
 * `jcds doctor` checks it.
 *
 * CONFIG GET is tried first; a managed Redis often disables or renames CONFIG, and then
 * INFO memory's `maxmemory_policy` says the same. When neither answers, the policy is
 * unknown, and a worker treats unknown as unsafe (BullMQ itself needs INFO to start).
 * A refused password (WRONGPASS, NOAUTH) is not an unknown policy: it is thrown, for the
 * caller to report as what it is.
 */
import type { Redis } from 'ioredis';
import { describeError } from '../errors.ts';

export interface EvictionPolicy {
  /** The policy, e.g. noeviction, allkeys-lru; undefined when it could not be read. */
  policy: string | undefined;
  /** Where it was read. */
  source: 'CONFIG GET' | 'INFO memory' | undefined;
  /** True only for noeviction. */
  safe: boolean;
  /** Why the policy could not be read (redacted), when it could not. */
  unreadable?: string;
}

export const EVICTION_FIX =
  'run `redis-cli -u "$REDIS_URL" CONFIG SET maxmemory-policy noeviction`, and put `maxmemory-policy noeviction` in redis.conf so it survives a restart (a managed Redis: its parameter group or settings)';

export async function readEvictionPolicy(
  redis: Pick<Redis, 'config' | 'info'>,
): Promise<EvictionPolicy> {
  let configError: unknown;
  try {
    const answer = (await redis.config('GET', 'maxmemory-policy')) as unknown;
    if (Array.isArray(answer) && typeof answer[1] === 'string')
      return judged(answer[1], 'CONFIG GET');
  } catch (err) {
    if (isAuthError(err)) throw err;
    configError = err;
  }
  try {
    const info = await redis.info('memory');
    const policy = /^maxmemory_policy:(\S+)/m.exec(info)?.[1];
    if (policy !== undefined) return judged(policy, 'INFO memory');
    return unknown('neither CONFIG GET nor INFO memory reports it', configError);
  } catch (err) {
    if (isAuthError(err)) throw err;
    return unknown(`INFO memory failed: ${describeError(err)}`, configError);
  }
}

/** Redis refused the connection's credentials (not a command's permission: NOPERM). */
export function isAuthError(err: unknown): boolean {
  return /^(WRONGPASS|NOAUTH)\b/.test(err instanceof Error ? err.message : String(err));
}

function judged(policy: string, source: EvictionPolicy['source']): EvictionPolicy {
  return { policy, source, safe: policy === 'noeviction' };
}

function unknown(why: string, configError: unknown): EvictionPolicy {
  const config =
    configError === undefined ? '' : `CONFIG GET failed: ${describeError(configError)}; `;
  return { policy: undefined, source: undefined, safe: false, unreadable: `${config}${why}` };
}

/** One sentence for a worker's refusal or warning: what the policy is, why it matters, the fix. */
export function describeEvictionRisk(found: EvictionPolicy): string {
  const what =
    found.policy === undefined
      ? `Redis' maxmemory-policy cannot be read (${found.unreadable ?? 'unknown'}), so it may not be noeviction`
      : `Redis' maxmemory-policy is ${found.policy} (read with ${found.source}), not noeviction`;
  return `${what}: under memory pressure Redis would evict BullMQ's keys (jobs, their locks, the queues' indexes), and jobs would be lost or run twice with no error anywhere. Fix: ${EVICTION_FIX}.`;
}
