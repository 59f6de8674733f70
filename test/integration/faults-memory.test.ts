/**
 * Hostile conditions, memory (issue 13 section 3): a real batch of multipart uploads whose
 * files all have different sizes, so every last part has a length of its own, through one
 * worker process. Part buffers used to be pooled by exact length, and each new last-part
 * length kept a new off-heap buffer for good (+178 MiB over 40 uploads). The worker's
 * resident set must reach a plateau and stay there.
 *
 * VmRSS is sampled after each upload, 4 in flight (a real batch), and judged by the
 * plateau rule of test/helpers/rss-plateau.ts: the first WARMUP samples are not judged, the
 * plateau is the highest of the next PLATEAU_WINDOW (samples move within some 40 MiB with
 * V8's heap), and every later sample must stay within MARGIN of it. A buffer kept per
 * distinct length (3-3.8 MiB each here) breaks that within a few uploads.
 */
import { createHash, randomBytes } from 'node:crypto';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { UploadResult } from '../../shared/queues/jobs.ts';
import { MiB } from '../../shared/units.ts';
import { waitForJob } from '../helpers/fleet.ts';
import {
  expectNoSecretsInLogs,
  expectNothingHalfDone,
  FAULT_ENV,
  fmtMs,
  rssKiB,
  useHarness,
} from '../helpers/faults.ts';
import { rssPlateau } from '../helpers/rss-plateau.ts';

// JCDS_MEMORY_SOAK_COUNT lets an operator run a longer batch by hand; CI runs the default.
const COUNT = Number(process.env['JCDS_MEMORY_SOAK_COUNT'] ?? 200);
/** Uploads in flight: the worker's upload concurrency; their parts share its 4 part slots. */
const IN_FLIGHT = 4;
const WARMUP = 20;
const PLATEAU_WINDOW = 60;
const MARGIN_KIB = 16 * 1024;
/** 8 MiB (FAULT_ENV's split threshold) + i × 4097: two parts of 5 MiB and 3 MiB + i × 4097. */
const sizeOf = (i: number): number => 8 * MiB + i * 4097;

const h = useHarness();

describe('hostile conditions: memory', () => {
  it(`H3.1: ${COUNT} multipart uploads of distinct sizes: worker RSS stays within 16 MiB of its plateau`, async () => {
    expect(COUNT).toBeGreaterThan(WARMUP + PLATEAU_WINDOW);
    expect(FAULT_ENV['JCDS_PART_SIZE']).toBe('5MiB');
    expect(FAULT_ENV['JCDS_SPLIT_THRESHOLD']).toBe('8MiB');
    const { fleet } = h;
    const worker = await fleet.startWorker();
    const q = fleet.queue('upload');
    // One random source; each file is a prefix of it with its name in front, so every
    // object differs and the test spends its time in the worker, not in randomBytes.
    const source = randomBytes(sizeOf(COUNT));
    const md5s = new Map<string, { md5: string; size: number }>();
    /** VmRSS (KiB) after each upload, in the order they finished. */
    const rss: number[] = [];
    const started = Date.now();

    const uploadOne = async (i: number): Promise<void> => {
      const size = sizeOf(i);
      const name = `Memory ${String(i).padStart(3, '0')}.pkg`;
      const bytes = Buffer.from(source.subarray(0, size));
      bytes.write(`${name}\n`, 0);
      const path = join(fleet.dir, name);
      await writeFile(path, bytes);
      md5s.set(name, { md5: createHash('md5').update(bytes).digest('hex'), size });
      const { jobId } = await h.producer.upload({ path });
      const job = await waitForJob(q, jobId, 120_000);
      expect(job.failedReason, `${name}: ${job.failedReason}`).toBeUndefined();
      expect((job.returnvalue as UploadResult).md5).toBe(md5s.get(name)?.md5);
      await rm(path);
    };

    let next = 0;
    await Promise.all(
      Array.from({ length: IN_FLIGHT }, async () => {
        while (next < COUNT) {
          await uploadOne(next++);
          rss.push(rssKiB(worker.pid));
        }
      }),
    );
    const elapsed = Date.now() - started;

    // Every upload is stored with its own bytes (md5 computed by the simulator from S3).
    const stored = new Map((await h.jamf.listJcdsFiles()).map(f => [f.fileName, f]));
    for (const [name, f] of md5s) {
      expect(stored.get(name)?.md5, name).toBe(f.md5);
      expect(stored.get(name)?.length, name).toBe(f.size);
    }
    await expectNothingHalfDone(h);
    expectNoSecretsInLogs(fleet);

    const mib = (kib: number): string => (kib / 1024).toFixed(0);
    const p = rssPlateau(rss, { warmup: WARMUP, window: PLATEAU_WINDOW, margin: MARGIN_KIB });
    console.log(
      [
        `H3.1: ${COUNT} uploads of ${(sizeOf(0) / MiB).toFixed(0)}-${(sizeOf(COUNT - 1) / MiB).toFixed(2)} MiB (${IN_FLIGHT} in flight, parts of ${FAULT_ENV['JCDS_PART_SIZE']}) in ${fmtMs(elapsed)}`,
        `  worker VmRSS (MiB): after ${WARMUP} uploads ${mib(p.afterWarmup)}, plateau (max after uploads ${WARMUP + 1}-${WARMUP + PLATEAU_WINDOW}) ${mib(p.plateau)}, max after uploads ${WARMUP + PLATEAU_WINDOW + 1}-${COUNT} ${mib(p.max)} (${p.delta >= 0 ? '+' : ''}${mib(p.delta)}), final ${mib(p.final)}` +
          (p.firstOver ? `; above plateau + 16 MiB from upload ${p.firstOver}` : ''),
        `  every 10th upload: ${rss
          .filter((_, i) => i % 10 === 9)
          .map(mib)
          .join(' ')}`,
      ].join('\n'),
    );
    expect(p.max, 'worker VmRSS above its plateau + 16 MiB (KiB)').toBeLessThanOrEqual(
      p.plateau + MARGIN_KIB,
    );
  }, 600_000);
});
