/**
 * Fault tolerance, proven: a soak. 2,000 small uploads (4–16 KiB, below the split
 * threshold: one job each, no part children) through 2 worker processes. Redis memory
 * must stay bounded (finished jobs are removed by age and count, nothing else is left
 * per job) and worker RSS must not trend upwards. The numbers are printed for
 * docs/reliability.md.
 */
import { createHash, randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { EVENTS_MAX_LEN, UPLOAD_JOB_OPTIONS } from '../../shared/queues/defaults.ts';
import { QUEUE_PREFIX } from '../../shared/queues/names.ts';
import { KiB } from '../../shared/units.ts';
import {
  expectNoSecretsInLogs,
  expectNothingHalfDone,
  fmtMs,
  lockTiming,
  rssKiB,
  SLACK_MS,
  useHarness,
  waitUntil,
} from '../helpers/faults.ts';

// JCDS_SOAK_COUNT and JCDS_SOAK_CONCURRENCY (upload jobs per worker) let an operator run a
// longer or a quicker soak by hand; CI runs the default.
const COUNT = Number(process.env['JCDS_SOAK_COUNT'] ?? 2_000);
const CONCURRENCY = process.env['JCDS_SOAK_CONCURRENCY'] ?? '4'; // the product default
const h = useHarness();

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? 0;
}

async function redisMemory(): Promise<{ used: number; keys: number }> {
  const r = h.fleet.redis.client();
  try {
    const info = await r.info('memory');
    const used = Number(/^used_memory:(\d+)/m.exec(info)?.[1] ?? NaN);
    return { used, keys: await r.dbsize() };
  } finally {
    r.disconnect();
  }
}

/** Keys by kind: `{jcds}:upload:<id>` → "upload:<job>", `{jcds}:upload:<id>:logs` → "upload:<job>:logs". */
async function keyKinds(): Promise<Record<string, number>> {
  const r = h.fleet.redis.client();
  const kinds: Record<string, number> = {};
  try {
    let cursor = '0';
    do {
      const [next, keys] = await r.scan(cursor, 'COUNT', 1000);
      cursor = next;
      for (const k of keys) {
        const kind = k
          .replace(QUEUE_PREFIX, '')
          .replace(/^:/, '')
          .replace(/:\d+(?=:|$)/, ':<job>')
          // The fleet secret's verifier (one key, written by the first worker) is not an
          // upload's entry.
          .replace(/^vault:(?!verifier$).*/, 'vault:<upload>')
          .replace(/^progress:.*/, 'progress:<upload>');
        kinds[kind] = (kinds[kind] ?? 0) + 1;
      }
    } while (cursor !== '0');
    return kinds;
  } finally {
    r.disconnect();
  }
}

describe('soak', () => {
  it(`F12: ${COUNT} small uploads through 2 workers: Redis memory bounded, no RSS growth`, async () => {
    const { fleet } = h;
    const env = { JCDS_WORKER_CONCURRENCY: CONCURRENCY };
    const workers = [await fleet.startWorker(env), await fleet.startWorker(env)];
    const q = fleet.queue('upload');
    const before = await redisMemory();

    const files: Array<{ path: string; md5: string; size: number; name: string }> = [];
    for (let i = 0; i < COUNT; i++) {
      const size = 4 * KiB + ((i * 2_654_435_761) % (12 * KiB + 1));
      const bytes = randomBytes(size);
      const name = `Soak ${String(i).padStart(4, '0')}.pkg`;
      const path = join(fleet.dir, name);
      await writeFile(path, bytes);
      files.push({ path, md5: createHash('md5').update(bytes).digest('hex'), size, name });
    }

    const rss: Array<{ t: number; kib: number[] }> = [];
    const redisUsed: number[] = [];
    const started = Date.now();
    const enq = await h.producer.uploadMany(files.map(f => ({ path: f.path })));
    expect(enq.every(e => e.created)).toBe(true);
    const enqueuedMs = Date.now() - started;

    // Until every job has finished; the run's speed is not what this test checks, only that
    // it keeps finishing jobs. It stops as stuck when no job finished for longer than one job
    // can take without finishing: its verification wait (JCDS_VERIFY_TIMEOUT, then the attempt
    // fails) or, if its worker died, a takeover (lockDuration + 2 stalledIntervals); + slack.
    const t = lockTiming(fleet);
    const stuckMs = Number(fleet.env['JCDS_VERIFY_TIMEOUT']) + t.lockMs + t.takeoverMs + SLACK_MS;
    let done = 0;
    let failed = 0;
    let lastProgressAt = Date.now();
    let longestGapMs = 0;
    while (done + failed < COUNT) {
      rss.push({ t: Date.now() - started, kib: workers.map(w => rssKiB(w.pid)) });
      redisUsed.push((await redisMemory()).used);
      const before = done + failed;
      [done, failed] = await Promise.all([q.getCompletedCount(), q.getFailedCount()]);
      longestGapMs = Math.max(longestGapMs, Date.now() - lastProgressAt);
      if (done + failed > before) lastProgressAt = Date.now();
      if (rss.length % 15 === 0)
        console.log(`F12 progress: ${done} done after ${fmtMs(Date.now() - started)}`);
      if (done + failed >= COUNT) break;
      if (Date.now() - lastProgressAt > stuckMs) {
        console.log(`F12: no job finished for ${fmtMs(Date.now() - lastProgressAt)}: stuck`);
        break;
      }
      await sleep(2_000); // an RSS and Redis memory sample every 2 s
    }
    const elapsed = Date.now() - started;
    expect(failed).toBe(0);
    expect(done).toBe(COUNT);

    // Every upload published once with the right bytes.
    const pkgs = (await h.jamf.listPackages()).filter(p => p.fileName.startsWith('Soak '));
    expect(pkgs).toHaveLength(COUNT);
    const stored = new Map((await h.jamf.listJcdsFiles()).map(f => [f.fileName, f]));
    for (const f of files) {
      expect(stored.get(f.name)?.md5, f.name).toBe(f.md5);
      expect(stored.get(f.name)?.length, f.name).toBe(f.size);
    }
    await expectNothingHalfDone(h);
    expectNoSecretsInLogs(fleet);

    // Redis: what is left per job is the retained job (hash + logs list) and nothing else.
    await waitUntil(async () => (await q.getCompletedCount()) <= COUNT, 'retention', 10_000);
    const after = await redisMemory();
    const kinds = await keyKinds();
    const redis = fleet.redis.client();
    const events = await redis
      .xlen(`${QUEUE_PREFIX}:upload:events`)
      .finally(() => redis.disconnect());
    const retained = await q.getCompletedCount();
    const cap = (UPLOAD_JOB_OPTIONS.removeOnComplete as { count: number }).count;
    expect(retained).toBeLessThanOrEqual(cap);
    expect(kinds['upload:<job>'] ?? 0).toBeLessThanOrEqual(cap);
    expect(kinds['vault:<upload>'] ?? 0).toBe(0);
    expect(kinds['vault:verifier']).toBe(1);
    expect(kinds['progress:<upload>'] ?? 0).toBe(0);
    expect(events).toBeLessThanOrEqual(EVENTS_MAX_LEN * 1.1);
    const perJob = (after.used - before.used) / retained;

    // Worker RSS: the last third of the run is not above the middle third (+15% or 24 MiB).
    const third = Math.floor(rss.length / 3);
    const trend = workers.map((_, i) => {
      const mid = median(rss.slice(third, 2 * third).map(s => s.kib[i]!));
      const last = median(rss.slice(2 * third).map(s => s.kib[i]!));
      const peak = Math.max(...rss.map(s => s.kib[i]!));
      return { mid, last, peak };
    });
    console.log(
      [
        `F12: ${COUNT} uploads (2 workers × ${CONCURRENCY} jobs) in ${fmtMs(elapsed)} (${(COUNT / (elapsed / 1000)).toFixed(1)}/s; enqueue ${fmtMs(enqueuedMs)}), 0 failed; longest wait for a job to finish ${fmtMs(longestGapMs)} (stuck after ${fmtMs(stuckMs)})`,
        `  Redis used_memory ${(before.used / 2 ** 20).toFixed(1)} MiB → ${(after.used / 2 ** 20).toFixed(1)} MiB (peak during run ${(Math.max(...redisUsed) / 2 ** 20).toFixed(1)} MiB); keys ${before.keys} → ${after.keys}; ${retained} completed jobs retained (cap ${cap}), ${(perJob / 1024).toFixed(1)} KiB each; events stream ${events} entries`,
        `  key kinds: ${JSON.stringify(kinds)}`,
        ...trend.map(
          (t, i) =>
            `  worker ${i + 1} VmRSS: middle third ${(t.mid / 1024).toFixed(0)} MiB, last third ${(t.last / 1024).toFixed(0)} MiB, peak ${(t.peak / 1024).toFixed(0)} MiB (${rss.length} samples)`,
        ),
      ].join('\n'),
    );
    if (rss.length >= 9) {
      for (const t of trend)
        expect(t.last).toBeLessThanOrEqual(Math.max(t.mid * 1.15, t.mid + 24 * 1024));
    }
  }, 600_000);
});
