/**
 * `--wait` and `status --follow` wake on the followed queues' events: a job that ends is
 * reported at once, not up to a poll interval later. The interval here is far longer than
 * the test, so only the event can have woken the follower (the mechanism, not the speed of
 * the machine); without events (a connection that cannot block) it falls back to the
 * interval. Real redis-server, a real BullMQ worker.
 */
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { followJobs, type FollowEvent } from '../../producer/cli/follow.ts';
import { startRedis, type RedisServer } from '../helpers/redis.ts';

const INTERVAL_MS = 120_000;

describe('followJobs wakes on queue events', () => {
  let redis: RedisServer;
  let client: Redis;
  let queue: Queue;
  let worker: Worker | undefined;

  beforeAll(async () => {
    redis = await startRedis();
    client = redis.client();
    queue = new Queue('follow-wake', { connection: redis.client() });
  });
  afterAll(async () => {
    await worker?.close();
    await queue.close();
    client.disconnect();
    await redis.stop();
  });

  it('reports a completion and a failure without waiting for the interval', async () => {
    let release!: () => void;
    const go = new Promise<void>(r => (release = r));
    worker = new Worker(
      'follow-wake',
      async job => {
        await go;
        await job.updateProgress({ bytes: 5, total: 10 });
        if (job.name === 'bad') throw new Error('it broke');
        return { ok: job.name };
      },
      { connection: new Redis(redis.url, { maxRetriesPerRequest: null }), concurrency: 2 },
    );
    const good = await queue.add('good', {}, { attempts: 1 });
    const bad = await queue.add('bad', {}, { attempts: 1 });
    const events: FollowEvent[] = [];
    const started = Date.now();
    const following = followJobs(
      client,
      [
        { queue, jobId: good.id!, label: 'good' },
        { queue, jobId: bad.id!, label: 'bad' },
      ],
      e => events.push(e),
      { intervalMs: INTERVAL_MS },
    );
    // Both jobs are active (the follower has ticked once and now blocks on the events).
    await new Promise(r => setTimeout(r, 300));
    release();
    const outcomes = await following;
    const elapsed = Date.now() - started;
    expect(outcomes.map(o => o.state).sort()).toEqual(['completed', 'failed']);
    expect(outcomes.find(o => o.state === 'completed')?.result).toEqual({ ok: 'good' });
    expect(outcomes.find(o => o.state === 'failed')?.reason).toMatch(/it broke/);
    expect(events.map(e => e.type)).toContain('completed');
    // Woken by the events: far sooner than one interval.
    expect(elapsed).toBeLessThan(INTERVAL_MS / 2);
  });

  it('falls back to polling at the interval when the blocking read cannot be made', async () => {
    // A client without a second connection: the follower can only poll.
    const plain = Object.assign(Object.create(client) as Redis, {
      duplicate: () => {
        throw new Error('no second connection');
      },
    });
    const job = await queue.add('good', {}, { attempts: 1 });
    const outcomes = await followJobs(
      plain,
      [{ queue, jobId: job.id!, label: 'polled' }],
      () => {},
      {
        intervalMs: 200,
      },
    );
    expect(outcomes).toMatchObject([{ state: 'completed', result: { ok: 'good' } }]);
  });
});
