/**
 * Hostile conditions, memory (issue 13 section 3): a real batch of multipart uploads whose
 * files all have different sizes, so every last part has a length of its own, through one
 * worker process. Part buffers used to be pooled by exact length, and each new last-part
 * length kept a new off-heap buffer for good (+178 MiB over 40 uploads). The worker's
 * resident set must reach a plateau and stay there.
 *
 * The uploads go in waves of WAVE, the worker's upload concurrency (4 uploads, 8 parts for
 * its 4 part slots). When a wave is done the test forces a full garbage collection in the
 * worker over its inspector (test/helpers/inspector.ts) and samples VmRSS: what the worker
 * retains. Sampled mid-batch, VmRSS also counts the hashing threads and parts of the
 * uploads still in flight, and without the collection the garbage V8 lets pile up between
 * its own collections; each moves it within some 30-40 MiB, more under load, which a
 * 16 MiB margin cannot tell from a leak (samples without the collection are printed too).
 * The samples are judged by the plateau rule of test/helpers/rss-plateau.ts: those of the
 * first WARMUP uploads are not judged, the plateau is the highest over the next
 * PLATEAU_WINDOW uploads, and every later sample must stay within MARGIN of it. A buffer
 * kept per distinct length (3-3.8 MiB each here) breaks that within a few waves. Last, the
 * worker's own view: its ArrayBuffer memory after the GC stays within the part buffer
 * pool's bound (JCDS_PART_CONCURRENCY × JCDS_PART_SIZE) plus a few MiB.
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
import { connectInspector, freePort, inspectorEnv } from '../helpers/inspector.ts';
import { rssPlateau } from '../helpers/rss-plateau.ts';

// JCDS_MEMORY_SOAK_COUNT lets an operator run a longer batch by hand; CI runs the default.
const COUNT = Number(process.env['JCDS_MEMORY_SOAK_COUNT'] ?? 200);
/** Uploads sent together: the worker's upload concurrency; their parts share its 4 part slots. */
const WAVE = 4;
const WARMUP = 20;
const PLATEAU_WINDOW = 60;
const MARGIN_KIB = 16 * 1024;
/** ArrayBuffer memory of a worker besides its part buffers (0.4 MiB idle). */
const OTHER_BUFFERS = 4 * MiB;
/** 8 MiB (FAULT_ENV's split threshold) + i × 4097: two parts of 5 MiB and 3 MiB + i × 4097. */
const sizeOf = (i: number): number => 8 * MiB + i * 4097;

const h = useHarness();

describe('hostile conditions: memory', () => {
  it(`H3.1: ${COUNT} multipart uploads of distinct sizes: worker RSS stays within 16 MiB of its plateau`, async () => {
    expect(COUNT % WAVE).toBe(0);
    expect(COUNT).toBeGreaterThan(WARMUP + PLATEAU_WINDOW);
    expect(FAULT_ENV['JCDS_PART_SIZE']).toBe('5MiB');
    expect(FAULT_ENV['JCDS_SPLIT_THRESHOLD']).toBe('8MiB');
    const { fleet } = h;
    const port = await freePort();
    const worker = await fleet.startWorker(inspectorEnv(port));
    const inspector = await connectInspector(port);
    const q = fleet.queue('upload');
    // One random source; each file is a prefix of it with its name in front, so every
    // object differs and the test spends its time in the worker, not in randomBytes.
    const source = randomBytes(sizeOf(COUNT));
    const md5s = new Map<string, { md5: string; sha256: string; size: number }>();
    /** VmRSS (KiB) after each wave and a full GC: rss[w] once (w + 1) × WAVE uploads are done. */
    const rss: number[] = [];
    /** The same, before the GC: garbage included. */
    const rawRss: number[] = [];
    const started = Date.now();

    const uploadOne = async (i: number): Promise<void> => {
      const size = sizeOf(i);
      const name = `Memory ${String(i).padStart(3, '0')}.pkg`;
      const bytes = Buffer.from(source.subarray(0, size));
      bytes.write(`${name}\n`, 0);
      const path = join(fleet.dir, name);
      await writeFile(path, bytes);
      md5s.set(name, {
        md5: createHash('md5').update(bytes).digest('hex'),
        sha256: createHash('sha256').update(bytes).digest('hex'),
        size,
      });
      const { jobId } = await h.producer.upload({ path });
      const job = await waitForJob(q, jobId, 120_000);
      expect(job.failedReason, `${name}: ${job.failedReason}`).toBeUndefined();
      expect((job.returnvalue as UploadResult).sha256).toBe(md5s.get(name)?.sha256);
      await rm(path);
    };

    for (let w = 0; w < COUNT / WAVE; w++) {
      await Promise.all(Array.from({ length: WAVE }, (_, k) => uploadOne(w * WAVE + k)));
      rawRss.push(rssKiB(worker.pid));
      await inspector.gc();
      rss.push(rssKiB(worker.pid));
    }
    const elapsed = Date.now() - started;
    const usage = await inspector.memoryUsage();
    inspector.close();

    // Every upload is stored with its own bytes (md5 computed by the simulator from S3).
    const stored = new Map((await h.jamf.listJcdsFiles()).map(f => [f.fileName, f]));
    for (const [name, f] of md5s) {
      expect(stored.get(name)?.md5, name).toBe(f.md5);
      expect(stored.get(name)?.length, name).toBe(f.size);
    }
    await expectNothingHalfDone(h);
    expectNoSecretsInLogs(fleet);

    const mib = (kib: number): string => (kib / 1024).toFixed(0);
    const rule = { warmup: WARMUP / WAVE, window: PLATEAU_WINDOW / WAVE, margin: MARGIN_KIB };
    const p = rssPlateau(rss, rule);
    const raw = rssPlateau(rawRss, rule);
    const sign = (kib: number): string => {
      const m = Math.round(kib / 1024);
      return `${m >= 0 ? '+' : ''}${m}`;
    };
    console.log(
      [
        `H3.1: ${COUNT} uploads of ${(sizeOf(0) / MiB).toFixed(0)}-${(sizeOf(COUNT - 1) / MiB).toFixed(2)} MiB (${WAVE} per wave, parts of ${FAULT_ENV['JCDS_PART_SIZE']}) in ${fmtMs(elapsed)}`,
        `  worker VmRSS after a full GC (MiB): after ${WARMUP} uploads ${mib(p.afterWarmup)}, plateau (max after uploads ${WARMUP + 1}-${WARMUP + PLATEAU_WINDOW}) ${mib(p.plateau)}, max after uploads ${WARMUP + PLATEAU_WINDOW + 1}-${COUNT} ${mib(p.max)} (${sign(p.delta)}), final ${mib(p.final)}` +
          (p.firstOver ? `; above plateau + 16 MiB after upload ${p.firstOver * WAVE}` : ''),
        `  after each wave: ${rss.map(mib).join(' ')}`,
        `  without the GC: plateau ${mib(raw.plateau)}, max after it ${mib(raw.max)} (${sign(raw.delta)}), final ${mib(raw.final)}; after each wave: ${rawRss.map(mib).join(' ')}`,
        `  at the end: heapUsed ${(usage.heapUsed / MiB).toFixed(1)} MiB, arrayBuffers ${(usage.arrayBuffers / MiB).toFixed(1)} MiB (the part buffers: ${FAULT_ENV['JCDS_PART_CONCURRENCY']} × 5 MiB)`,
      ].join('\n'),
    );
    expect(p.max, 'worker VmRSS above its plateau + 16 MiB (KiB)').toBeLessThanOrEqual(
      p.plateau + MARGIN_KIB,
    );
    // The pool's bound, seen from inside the worker: its Buffers (ArrayBuffer memory, after a
    // full GC) are the part buffers, JCDS_PART_CONCURRENCY × JCDS_PART_SIZE, and a few MiB
    // of everything else's (0.4 MiB in an idle worker).
    const slots = Number(FAULT_ENV['JCDS_PART_CONCURRENCY']);
    expect(usage.arrayBuffers).toBeLessThanOrEqual(slots * 5 * MiB + OTHER_BUFFERS);
  }, 600_000);
});
