/**
 * Hostile conditions, section 8: every key family in Redis is bounded.
 *   H8.1 the sync hash cache of a folder is pruned by each run: over rounds that replace
 *        most of the folder's files, it never holds more entries than the folder; the
 *        hash of earlier versions is deleted; the key has a TTL.
 *   H8.2 an upload's byte counter lives in its job hash: no key of its own, and nothing of
 *        the job is left once BullMQ removes it.
 *   H8.3 after a workload (sync up and down, single and multipart uploads, a failed
 *        upload, throttling, a download, a schedule), every key in Redis belongs to a known
 *        family with its bound: a TTL where the family is bounded by time, a live job for
 *        every per-job key (BullMQ's retention removes them together), one key for the
 *        fleet-wide ones. An unknown family fails the test.
 */
import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { makeFile, waitForJob } from '../helpers/fleet.ts';
import { useHarness } from '../helpers/faults.ts';
import { dumpRedis, scanKeys, type DumpedKey } from '../helpers/redis-dump.ts';
import { EVENTS_MAX_LEN } from '../../shared/queues/defaults.ts';
import type { SyncResult } from '../../shared/queues/jobs.ts';
import { ALL_QUEUES, hashJobId, jobKey, QUEUE_PREFIX } from '../../shared/queues/names.ts';
import { KiB, MiB } from '../../shared/units.ts';
import {
  HASH_CACHE_TTL_SECONDS,
  hashCacheKey,
  LEGACY_HASH_CACHE_KEY,
} from '../../worker/processors/sync-hash-cache.ts';
import { BYTES_SENT_FIELD } from '../../worker/processors/upload-part.ts';

const h = useHarness();

async function runSync(direction: 'up' | 'down', dir: string): Promise<SyncResult> {
  const id = await h.producer.sync({ direction, dir });
  const job = await waitForJob(h.fleet.queue('sync'), id, 170_000);
  expect(job.failedReason, job.failedReason).toBeUndefined();
  return job.returnvalue as SyncResult;
}

/**
 * The key families the fleet writes, with their bound (docs/reliability.md). `bound`:
 * - `ttl`: the key expires (PTTL > 0);
 * - `job`: a per-job key; its job is one BullMQ tracks (in a state list), so retention
 *   (removeOnComplete/removeOnFail by age and count, JOB_OPTIONS) removes both;
 * - `queue`: one per queue (BullMQ's structures, trimmed by retention or MAXLEN);
 * - `one`: one fleet-wide key.
 */
const Q = `(${ALL_QUEUES.join('|')})`;
const P = QUEUE_PREFIX.replace(/[{}]/g, '\\$&');
const QUEUE_KEYS =
  'wait|paused|active|prioritized|delayed|completed|failed|waiting-children|stalled|meta|id|events|marker|pc|repeat';
const FAMILIES: Array<{ name: string; re: RegExp; bound: 'ttl' | 'job' | 'queue' | 'one' }> = [
  {
    name: 'BullMQ queue structures',
    re: new RegExp(`^${P}:${Q}:(${QUEUE_KEYS})$`),
    bound: 'queue',
  },
  // BullMQ's job metrics (worker option metrics.maxDataPoints: one point a minute, a week).
  {
    name: 'BullMQ metrics',
    re: new RegExp(`^${P}:${Q}:metrics:(completed|failed)(:data)?$`),
    bound: 'queue',
  },
  { name: 'BullMQ stalled check', re: new RegExp(`^${P}:${Q}:stalled-check$`), bound: 'ttl' },
  { name: 'BullMQ rate limiter', re: new RegExp(`^${P}:${Q}:limiter$`), bound: 'ttl' },
  { name: 'BullMQ deduplication', re: new RegExp(`^${P}:${Q}:de:.+$`), bound: 'job' },
  { name: 'job scheduler', re: new RegExp(`^${P}:sync:repeat:[^:]+$`), bound: 'queue' },
  { name: 'job lock', re: new RegExp(`^${P}:${Q}:.+:lock$`), bound: 'ttl' },
  {
    name: 'job hash and its keys',
    re: new RegExp(`^${P}:${Q}:.+?(:(logs|dependencies|processed|failed|unsuccessful))?$`),
    bound: 'job',
  },
  { name: 'vault entry', re: new RegExp(`^${P}:vault:upload-.+?(:lock)?$`), bound: 'ttl' },
  { name: 'fleet secret verifier', re: new RegExp(`^${P}:vault:verifier$`), bound: 'one' },
  { name: 'fleet metrics', re: new RegExp(`^${P}:metrics$`), bound: 'one' },
  { name: 'sync hash cache', re: new RegExp(`^${P}:hash-cache:[0-9a-f]{32}$`), bound: 'ttl' },
  { name: 'sync lock', re: new RegExp(`^${P}:sync-lock:(up|down):[0-9a-f]{32}$`), bound: 'ttl' },
  { name: 'worker health', re: new RegExp(`^${P}:worker-health:.+$`), bound: 'ttl' },
];

/**
 * Every job id BullMQ tracks in a queue (every state list and set). Each must carry the
 * retention that removes it (removeOnComplete and removeOnFail by age and count).
 */
async function trackedJobs(r: Redis): Promise<Set<string>> {
  const ids = new Set<string>();
  const withoutRetention: string[] = [];
  for (const name of ALL_QUEUES) {
    const q = h.fleet.queue(name);
    const jobs = await q.getJobs(
      ['wait', 'active', 'delayed', 'prioritized', 'waiting-children', 'completed', 'failed'],
      0,
      -1,
    );
    for (const j of jobs) {
      if (!j?.id) continue;
      ids.add(`${name}:${j.id}`);
      const keep = (o: unknown): boolean =>
        typeof o === 'object' && o !== null && 'age' in o && 'count' in o;
      if (!keep(j.opts.removeOnComplete) || !keep(j.opts.removeOnFail))
        withoutRetention.push(`${name}:${j.id}`);
    }
    // The events stream of every queue is trimmed (XADD MAXLEN ~, from the queue's meta).
    expect(await r.hget(q.toKey('meta'), 'opts.maxLenEvents')).toBe(String(EVENTS_MAX_LEN));
    expect(await r.xlen(q.toKey('events'))).toBeLessThanOrEqual(EVENTS_MAX_LEN * 1.1);
  }
  expect(withoutRetention, 'jobs without retention').toEqual([]);
  return ids;
}

/** `queue:id` of a per-job key (or a deduplication key's job, read from its value). */
function jobOf(k: DumpedKey): string | undefined {
  const m = new RegExp(
    `^${P}:${Q}:(.+?)(?::(?:logs|dependencies|processed|failed|unsuccessful|lock))?$`,
  ).exec(k.key);
  if (!m) return undefined;
  if (m[2]!.startsWith('de:')) return `${m[1]}:${k.values[0]}`;
  return `${m[1]}:${m[2]}`;
}

describe('Redis key families', () => {
  it("H8.1: a folder's hash cache holds no more entries than the folder, run after run", async () => {
    const { fleet } = h;
    await fleet.startWorker({ JCDS_WORKER_CONCURRENCY: '8' });
    const r = fleet.redis.client();
    try {
      // The never-pruned cache of earlier versions, as an upgrade finds it.
      await r.hset(LEGACY_HASH_CACHE_KEY, '/old/path.pkg', '{}');
      const dir = join(fleet.dir, 'churn');
      mkdirSync(dir);
      const key = hashCacheKey(dir);
      const perRound: Array<{ files: number; entries: number }> = [];
      for (let round = 0; round < 4; round++) {
        // Each round: 2 files stay, the others are replaced by new names.
        for (const name of readdirSync(dir).filter(n => !n.startsWith('Keep')))
          rmSync(join(dir, name));
        for (let i = 0; i < 2; i++)
          if (round === 0) await makeFile(dir, `Keep ${i}.pkg`, 16 * KiB + i);
        for (let i = 0; i < 6; i++)
          await makeFile(dir, `Round ${round} file ${i}.pkg`, 8 * KiB + round * 100 + i);
        const result = await runSync('up', dir);
        expect(result.uploaded + result.unchanged).toBe(8);
        const entries = await r.hlen(key);
        perRound.push({ files: readdirSync(dir).length, entries });
        expect(entries, `round ${round}: entries of ${key}`).toBeLessThanOrEqual(
          readdirSync(dir).length,
        );
        expect(entries).toBe(8);
        const fields = await r.hkeys(key);
        expect(fields.sort()).toEqual(
          readdirSync(dir)
            .map(n => join(dir, n))
            .sort(),
        );
        const ttl = await r.ttl(key);
        expect(ttl).toBeGreaterThan(HASH_CACHE_TTL_SECONDS - 600);
        expect(ttl).toBeLessThanOrEqual(HASH_CACHE_TTL_SECONDS);
      }
      expect(await r.exists(LEGACY_HASH_CACHE_KEY)).toBe(0);
      // A run over unchanged files still reads none of them (the cache still works).
      const again = await runSync('up', dir);
      expect(again).toMatchObject({
        uploaded: 0,
        unchanged: 8,
        hashesComputed: 0,
        hashCacheHits: 8,
      });
      console.log(
        `H8.1: 4 rounds replacing 6 of 8 files: entries after each run ${perRound.map(p => p.entries).join(', ')} for ${perRound.map(p => p.files).join(', ')} files (unpruned it would be ${perRound.map((_, i) => 8 + 6 * i).join(', ')}); TTL ${HASH_CACHE_TTL_SECONDS / 86_400} days`,
      );
    } finally {
      r.disconnect();
    }
  });

  it("H8.2: an upload's byte counter is a field of its job hash and goes with the job", async () => {
    const { fleet } = h;
    if (fleet.workers.length === 0) await fleet.startWorker();
    const file = await makeFile(fleet.dir, 'Counted.pkg', 12 * MiB);
    const { jobId } = await h.producer.upload({ path: file.path });
    const q = fleet.queue('upload');
    const job = await waitForJob(q, jobId);
    expect(job.failedReason, job.failedReason).toBeUndefined();
    const r = fleet.redis.client();
    try {
      const sent = Number(await r.hget(jobKey('upload', jobId), BYTES_SENT_FIELD));
      expect(sent).toBe(12 * MiB);
      expect(await scanKeys(r, `${QUEUE_PREFIX}:progress:*`)).toEqual([]);
      // BullMQ's removal (what retention does by age and count) takes the job and its
      // part children, and with them the counter. Left: its vault entry, which expires
      // with the credentials, and its hash job (beside the parts, not a child), a job of
      // the part queue that BullMQ tracks and removes by that queue's retention.
      await job.remove();
      const left = (await scanKeys(r, `*${jobId}*`)).filter(k => k.includes(`:${jobId}`));
      const ofUpload = left.filter(k => k.startsWith(jobKey('upload', jobId)));
      expect(ofUpload, 'keys of the removed upload').toEqual([]);
      const vault = left.filter(k => k.startsWith(`${QUEUE_PREFIX}:vault:`));
      for (const k of vault) expect(await r.pttl(k), k).toBeGreaterThan(0);
      const hashJob = jobKey('upload-part', hashJobId(jobId));
      expect(left.filter(k => !vault.includes(k))).toEqual([hashJob]);
      expect(await fleet.queue('upload-part').getJobState(hashJobId(jobId))).toBe('completed');
      console.log(
        `H8.2: counter ${BYTES_SENT_FIELD}=${sent} in the job hash; after removal: 0 keys of the upload, ${vault.length} vault keys (TTL ${vault.length ? Math.round((await r.pttl(vault[0]!)) / 1000) : 0} s), its completed hash job`,
      );
    } finally {
      r.disconnect();
    }
  });

  it('H8.3: after a mixed workload every key belongs to a known family and keeps its bound', async () => {
    const { fleet } = h;
    if (fleet.workers.length === 0) await fleet.startWorker();
    // A failed upload (S3 refuses it), and a throttled one (SlowDown: the rate limiter).
    const bad = await makeFile(fleet.dir, 'Refused.pkg', 64 * KiB);
    await fleet.sim.control.setFaults({ s3ErrorCount: 1_000 });
    const refused = await waitForJob(
      fleet.queue('upload'),
      (await h.producer.upload({ path: bad.path })).jobId,
    );
    expect(refused.failedReason).toMatch(/^\[S3_ERROR\]/);
    await fleet.sim.control.setFaults({ s3ErrorCount: null, s3SlowDownCount: 3 });
    const slow = await makeFile(fleet.dir, 'Throttled.pkg', 10 * MiB);
    const throttled = await waitForJob(
      fleet.queue('upload'),
      (await h.producer.upload({ path: slow.path })).jobId,
    );
    expect(throttled.failedReason, throttled.failedReason).toBeUndefined();
    await fleet.sim.control.clearFaults();
    // Sync down into a folder (downloads, their hash cache entries).
    const down = join(fleet.dir, 'down');
    mkdirSync(down);
    const downResult = await runSync('down', down);
    expect(downResult.downloaded).toBeGreaterThan(0);
    // A schedule (a job scheduler and its next run).
    await h.producer.addSchedule({
      name: 'nightly-up',
      cron: '0 3 * * *',
      direction: 'up',
      dir: down,
    });

    const r = fleet.redis.client();
    try {
      const keys = await dumpRedis(r);
      const jobs = await trackedJobs(r);
      const byFamily = new Map<string, number>();
      const unknown: string[] = [];
      const unbounded: string[] = [];
      for (const k of keys) {
        const family = FAMILIES.find(f => f.re.test(k.key));
        if (!family) {
          unknown.push(`${k.key} (${k.type})`);
          continue;
        }
        byFamily.set(family.name, (byFamily.get(family.name) ?? 0) + 1);
        if (family.bound === 'ttl' && !(k.pttl > 0)) unbounded.push(`${k.key}: no TTL`);
        if (family.bound === 'job') {
          const owner = jobOf(k);
          if (!owner || !jobs.has(owner)) unbounded.push(`${k.key}: no job tracks it (${owner})`);
        }
        if (family.name === 'sync hash cache') {
          // Bounded by the folder it caches: no more entries than files of that folder.
          const dirs = [join(fleet.dir, 'churn'), down];
          const dir = dirs.find(d => hashCacheKey(d) === k.key);
          expect(dir, `${k.key} is the cache of a synced folder`).toBeDefined();
          expect(k.size).toBeLessThanOrEqual(readdirSync(dir!).length);
        }
      }
      expect(unknown, 'keys of no known family').toEqual([]);
      expect(unbounded, 'keys without their bound').toEqual([]);
      console.log(
        `H8.3: ${keys.length} keys after the workload, every one in a known family: ${[...byFamily].map(([f, n]) => `${f} ${n}`).join('; ')}`,
      );
    } finally {
      r.disconnect();
    }
  });
});
