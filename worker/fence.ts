/**
 * Fencing by the job's lock: a worker that lost a job's lock changes nothing of it.
 *
 * BullMQ keeps a job's lock at `<prefix>:<queue>:<jobId>:lock`, holding the token of the
 * worker that runs it (the processor's second argument). Its own moves (to completed, failed,
 * delayed) check that token, but `job.updateData` does not, and neither does anything we
 * write beside the job (the vault). A worker frozen past its lock (SIGSTOP, a paused VM, a
 * long GC, Redis cut off) and woken once another worker owns the job would otherwise
 * overwrite the new owner's checkpoint and delete or abort what the new owner uses.
 *
 * One Lua script compares the lock with the worker's token and only then writes, in one
 * step on the Redis server: the job's data (HSET data, as BullMQ's updateData), or a key
 * beside the job (SET with an expiry, DEL: the vault's entries). The job's hash, its lock
 * and the vault share the `{jcds}` hash tag, so the script is valid on Redis Cluster too.
 * When the token no longer holds, nothing is written and the caller gets LOCK_LOST.
 *
 * An S3 or Jamf call cannot be made atomic with Redis: a destructive clean-up (an S3 abort,
 * a package delete, removing the job's children) is checked immediately before it
 * (`check`). The window between the check and the call is one Redis round trip and the
 * time the request takes to leave; BullMQ renews the lock every lockDuration/2, so at the
 * check it normally has at least that long to run, and only a process stopped for that long
 * exactly inside the window could act on a lock it no longer holds.
 */
import type { Redis } from 'ioredis';
import { AppError, errorCode } from '../shared/errors.ts';
import type { FencedWriter } from '../shared/vault.ts';

/** The script: KEYS[1] the lock, KEYS[2] the key written; ARGV token, op, value, ttl ms. */
const FENCE_LUA = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
local op = ARGV[2]
if op == 'data' then
  if redis.call('EXISTS', KEYS[2]) == 0 then return -1 end
  redis.call('HSET', KEYS[2], 'data', ARGV[3])
elseif op == 'set' then
  redis.call('SET', KEYS[2], ARGV[3], 'PX', ARGV[4])
elseif op == 'del' then
  redis.call('DEL', KEYS[2])
end
return 1
`;

/** What the script answers: 1 written (or held), 0 the token does not hold, -1 no such job. */
type FenceResult = 1 | 0 | -1;

type FenceOp = 'check' | 'data' | 'set' | 'del';

/** The ioredis command `defineCommand` adds (EVALSHA of the cached script, EVAL once). */
interface FencedRedis {
  jcdsFence(
    lockKey: string,
    key: string,
    token: string,
    op: FenceOp,
    value: string,
    ttlMs: string,
  ): Promise<FenceResult>;
}

/** True for the error a run gets once its worker no longer holds the job's lock. */
export function isLockLost(err: unknown): boolean {
  return errorCode(err) === 'LOCK_LOST';
}

/**
 * Awaits a best-effort write (a vault delete after an upload) whose own failure is ignored,
 * but not a lost lock: that stops the run.
 */
export async function unlessLockLost(p: Promise<unknown>): Promise<void> {
  try {
    await p;
  } catch (err) {
    if (isLockLost(err)) throw err;
  }
}

/** One run's hold on one job: every write on its behalf goes through here. */
export interface JobLock extends FencedWriter {
  /** Throws LOCK_LOST (saying what was not done) unless this run's token holds the lock. */
  check(what: string): Promise<void>;
  /** Whether this run's token still holds the lock. */
  held(): Promise<boolean>;
  /** Replaces the job's data (its checkpoint) while the lock holds; else LOCK_LOST. */
  saveData(data: unknown): Promise<void>;
}

/** The job, as far as the fence reads it. */
export interface FencedJob {
  id?: string | undefined;
  queueQualifiedName: string;
  data: unknown;
}

/** Makes the lock of each run (worker/failure-policy.ts gives every run its own). */
export interface LockFences {
  of(job: FencedJob, token: string | undefined): JobLock;
}

export class JobFences implements LockFences {
  private readonly redis: Redis & FencedRedis;

  constructor(redis: Redis) {
    if (!('jcdsFence' in redis))
      redis.defineCommand('jcdsFence', { numberOfKeys: 2, lua: FENCE_LUA });
    this.redis = redis as Redis & FencedRedis;
  }

  of(job: FencedJob, token: string | undefined): JobLock {
    const jobKey = `${job.queueQualifiedName}:${String(job.id)}`;
    const lockKey = `${jobKey}:lock`;
    const what = `job ${String(job.id)} (${job.queueQualifiedName.split(':').pop() ?? ''})`;
    const lost = (action: string, why = 'the lock expired or another worker holds it'): AppError =>
      new AppError(
        'LOCK_LOST',
        `This worker lost the lock of ${what}: ${why}. Not done: ${action}. The run stops; the job is left to its new owner.`,
      );
    // BullMQ always passes the token; without one nothing may be written.
    const run = async (op: FenceOp, key: string, value = '', ttlMs = 0): Promise<FenceResult> =>
      token ? this.redis.jcdsFence(lockKey, key, token, op, value, String(ttlMs)) : 0;
    const expect = async (r: Promise<FenceResult>, action: string): Promise<void> => {
      const result = await r;
      if (result === 1) return;
      throw result === -1 ? lost(action, 'the job no longer exists') : lost(action);
    };
    return {
      held: async () => (await run('check', lockKey)) === 1,
      check: action => expect(run('check', lockKey), action),
      saveData: async data => {
        const step = (data as { step?: unknown } | null)?.step;
        await expect(
          run('data', jobKey, JSON.stringify(data)),
          `write the checkpoint${typeof step === 'string' ? ` (step ${step})` : ''}`,
        );
        job.data = data;
      },
      set: (key, value, ttlMs) =>
        expect(run('set', key, value, ttlMs), `write ${key.split(':').pop() ?? key}`),
      del: key => expect(run('del', key), `delete ${key.split(':').pop() ?? key}`),
    };
  }
}
