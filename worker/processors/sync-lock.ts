/**
 * One sync per folder and direction at a time, fleet-wide: a Redis key holding the id of
 * the sync job that owns the folder, with a TTL that the owner extends each time it wakes
 * up. A run that finds the lock held by another job finishes at once as "skipped" (an
 * overnight schedule whose previous run is still going does not start a second copy of
 * the work). The owner releases the lock when it finishes, succeeds or fails; a crashed
 * owner's lock lapses after the TTL.
 */
import { createHash } from 'node:crypto';
import { resolve } from 'node:path';
import type { Redis } from 'ioredis';
import type { SyncDirection } from '../../shared/queues/jobs.ts';
import { QUEUE_PREFIX } from '../../shared/queues/names.ts';

/** Longer than the longest wait between two wake-ups of a sync job. */
export const SYNC_LOCK_TTL_MS = 5 * 60_000;

const EXTEND = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end`;
const RELEASE = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end`;

export function syncLockKey(direction: SyncDirection, dir: string): string {
  const digest = createHash('sha256').update(resolve(dir)).digest('hex').slice(0, 32);
  return `${QUEUE_PREFIX}:sync-lock:${direction}:${digest}`;
}

export class SyncLock {
  readonly key: string;
  private readonly redis: Redis;
  private readonly owner: string;
  private readonly ttlMs: number;

  constructor(
    redis: Redis,
    direction: SyncDirection,
    dir: string,
    owner: string,
    ttlMs = SYNC_LOCK_TTL_MS,
  ) {
    this.redis = redis;
    this.key = syncLockKey(direction, dir);
    this.owner = owner;
    this.ttlMs = ttlMs;
  }

  /** Takes the lock, or keeps it when this owner already holds it. Returns the holder on refusal. */
  async acquire(): Promise<{ acquired: true } | { acquired: false; holder: string | null }> {
    const ok = await this.redis.set(this.key, this.owner, 'PX', this.ttlMs, 'NX');
    if (ok === 'OK') return { acquired: true };
    if (await this.extend()) return { acquired: true };
    return { acquired: false, holder: await this.redis.get(this.key) };
  }

  /** Extends the TTL if this owner holds the lock; false otherwise. */
  async extend(): Promise<boolean> {
    return Number(await this.redis.eval(EXTEND, 1, this.key, this.owner, String(this.ttlMs))) === 1;
  }

  async release(): Promise<void> {
    await this.redis.eval(RELEASE, 1, this.key, this.owner);
  }
}
