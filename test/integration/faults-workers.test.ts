/**
 * Fault tolerance, proven: worker processes dying or freezing at the worst moments.
 * One fleet (redis-server, simulator) for the file; each test starts its own worker
 * processes and kills them at the end. Parts are 5 MiB and the simulator's S3 is throttled
 * so that kills land mid-part; locks last 5 s (test/helpers/fleet.ts).
 *
 *   F1  SIGKILL mid-part            F2  SIGTERM (graceful drain; and a grace period too short)
 *   F5  SIGSTOP past the lock (during parts; during finalize)
 *   F8  the parent killed right after CompleteMultipartUpload succeeded
 *   F10 the same upload submitted twice, concurrently, from two producers
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Job } from 'bullmq';
import { describe, expect, it } from 'vitest';
import { Producer } from '../../producer/producer.ts';
import type { UploadJobData, UploadResult } from '../../shared/queues/jobs.ts';
import { MiB } from '../../shared/units.ts';
import { makeFile } from '../helpers/fleet.ts';
import {
  donePartNumbers,
  expectNothingHalfDone,
  expectPublished,
  fmtMs,
  useHarness,
  sumParts,
  waitForJobSettled,
  waitUntil,
} from '../helpers/faults.ts';

const SIZE = 40 * MiB; // 8 parts of 5 MiB
const PARTS = 8;
const h = useHarness({ perTest: true });

const counters = () => h.fleet.sim.control.counters();
const uploads = () => h.fleet.queue('upload');

/** Part numbers sent at least once but not checkpointed: in flight (read with the worker dead or frozen). */
async function partsInFlight(jobId: string): Promise<number[]> {
  const c = await counters();
  const done = await donePartNumbers(uploads(), jobId);
  return Object.keys(c.uploadPartByNumber)
    .map(Number)
    .filter(n => !done.has(n))
    .sort((a, b) => a - b);
}

describe('worker faults', () => {
  it('F1: a worker SIGKILLed mid-part; another takes over once the lock expires; re-sent parts ≤ parts in flight', async () => {
    const { fleet } = h;
    await fleet.sim.control.setFaults({ s3BytesPerSecond: 2 * MiB });
    const a = await fleet.startWorker();
    const file = await makeFile(fleet.dir, 'F1 Killed Midpart.pkg', SIZE);
    const { jobId } = await h.producer.upload({ path: file.path });
    await waitUntil(async () => (await partsInFlight(jobId)).length >= 3, '3 parts in flight');

    await a.kill('SIGKILL');
    const killedAt = Date.now();
    const inFlight = await partsInFlight(jobId);
    expect(inFlight.length).toBeGreaterThan(0);
    expect(inFlight.length).toBeLessThanOrEqual(4); // JCDS_PART_CONCURRENCY
    await fleet.sim.control.clearFaults();
    await fleet.startWorker();

    await waitUntil(
      async () => {
        const c = await counters();
        return inFlight.some(n => (c.uploadPartByNumber[n] ?? 0) >= 2);
      },
      'a part that was in flight to be sent again',
      30_000,
    );
    const takeoverMs = Date.now() - killedAt;
    const job = await waitForJobSettled(uploads(), jobId, 60_000);
    const recoveredMs = Date.now() - killedAt;
    await expectPublished(h, job, file, SIZE);
    await expectNothingHalfDone(h);

    const c = await counters();
    const resent = sumParts(c.uploadPartByNumber) - PARTS;
    console.log(
      `F1: ${inFlight.length} parts in flight at the kill (${inFlight.join(',')}), ${resent} re-sent; takeover after ${fmtMs(takeoverMs)}, upload done ${fmtMs(recoveredMs)} after the kill`,
    );
    expect(resent).toBeGreaterThanOrEqual(1);
    expect(resent).toBeLessThanOrEqual(inFlight.length);
    // Only parts that were in flight were sent twice.
    for (const [n, count] of Object.entries(c.uploadPartByNumber)) {
      if (count > 1) expect(inFlight).toContain(Number(n));
    }
    // The stalled parts waited for the lock (5 s, renewed every 2.5 s) and one or two checks.
    expect(takeoverMs).toBeGreaterThan(2_000);
    expect(takeoverMs).toBeLessThan(15_000);
    expect(c.calls['CreateMultipartUpload']).toBe(1);
  });

  it('F2: SIGTERM drains gracefully: parts in flight finish, the process exits 0, nothing is sent twice', async () => {
    const { fleet } = h;
    await fleet.sim.control.setFaults({ s3BytesPerSecond: 2 * MiB });
    const a = await fleet.startWorker();
    const file = await makeFile(fleet.dir, 'F2 Drained.pkg', SIZE);
    const { jobId } = await h.producer.upload({ path: file.path });
    await waitUntil(async () => (await partsInFlight(jobId)).length >= 3, '3 parts in flight');

    const before = await partsInFlight(jobId);
    const termAt = Date.now();
    await a.kill('SIGTERM');
    const drainMs = Date.now() - termAt;
    expect(await a.exited).toBe(0);
    expect(a.logs()).toContain('shutting down gracefully');
    expect(a.logs()).not.toContain('grace period over');
    // Everything that was in flight finished during the drain: no part lost.
    const done = await donePartNumbers(uploads(), jobId);
    for (const n of before) expect(done).toContain(n);
    const mid = await counters();
    for (const count of Object.values(mid.uploadPartByNumber)) expect(count).toBe(1);

    await fleet.sim.control.clearFaults();
    await fleet.startWorker();
    const job = await waitForJobSettled(uploads(), jobId, 60_000);
    await expectPublished(h, job, file, SIZE);
    await expectNothingHalfDone(h);
    const c = await counters();
    console.log(
      `F2: ${before.length} parts in flight at SIGTERM finished in the drain (${fmtMs(drainMs)}); UploadPart calls ${sumParts(c.uploadPartByNumber)} for ${PARTS} parts`,
    );
    expect(sumParts(c.uploadPartByNumber)).toBe(PARTS);
    expect(Object.keys(c.uploadPartByNumber)).toHaveLength(PARTS);
  });

  it('F2b: SIGTERM with a grace period shorter than a part: parts are cancelled, picked up again, the object is whole', async () => {
    const { fleet } = h;
    await fleet.sim.control.setFaults({ s3BytesPerSecond: 2 * MiB });
    const a = await fleet.startWorker({ JCDS_SHUTDOWN_GRACE_MS: '300' });
    const file = await makeFile(fleet.dir, 'F2b Cut Short.pkg', SIZE);
    const { jobId } = await h.producer.upload({ path: file.path });
    await waitUntil(async () => (await partsInFlight(jobId)).length >= 3, '3 parts in flight');

    const termAt = Date.now();
    await a.kill('SIGTERM');
    const exitMs = Date.now() - termAt;
    expect(a.logs()).toContain('grace period over');
    const inFlight = await partsInFlight(jobId);
    expect(inFlight.length).toBeGreaterThan(0);
    await fleet.sim.control.clearFaults();
    await fleet.startWorker();
    const job = await waitForJobSettled(uploads(), jobId, 60_000);
    const doneMs = Date.now() - termAt;
    await expectPublished(h, job, file, SIZE);
    await expectNothingHalfDone(h);
    const c = await counters();
    const resent = sumParts(c.uploadPartByNumber) - PARTS;
    console.log(
      `F2b: exit ${fmtMs(exitMs)} after SIGTERM (grace 0.3 s); ${inFlight.length} parts cancelled, ${resent} re-sent; upload done ${fmtMs(doneMs)} after SIGTERM`,
    );
    expect(resent).toBeLessThanOrEqual(inFlight.length);
    expect(exitMs).toBeLessThan(5_000);
  });

  it('F5: a worker frozen (SIGSTOP) past its locks during parts: taken over; when it wakes its late writes do no harm', async () => {
    const { fleet } = h;
    await fleet.sim.control.setFaults({ s3BytesPerSecond: 2 * MiB });
    const a = await fleet.startWorker();
    const file = await makeFile(fleet.dir, 'F5 Frozen Parts.pkg', SIZE);
    const { jobId } = await h.producer.upload({ path: file.path });
    await waitUntil(async () => (await partsInFlight(jobId)).length >= 3, '3 parts in flight');

    process.kill(a.pid, 'SIGSTOP');
    const stoppedAt = Date.now();
    const inFlight = await partsInFlight(jobId);
    expect(inFlight.length).toBeGreaterThan(0);
    await fleet.startWorker();
    await waitUntil(
      async () => {
        const c = await counters();
        return inFlight.some(n => (c.uploadPartByNumber[n] ?? 0) >= 2);
      },
      'the frozen worker’s parts to be taken over',
      30_000,
    );
    const takeoverMs = Date.now() - stoppedAt;
    // Wake it while the upload is still open (S3 still throttled): its half-sent parts
    // arrive late and overwrite those part numbers with the same bytes.
    await sleep(Math.max(0, 5_500 - (Date.now() - stoppedAt))); // frozen longer than the lock
    process.kill(a.pid, 'SIGCONT');
    const frozenMs = Date.now() - stoppedAt;
    expect(frozenMs).toBeGreaterThan(5_000); // longer than the lock
    const job = await waitForJobSettled(uploads(), jobId, 90_000);
    await expectPublished(h, job, file, SIZE);
    await expectNothingHalfDone(h);
    const c = await counters();
    console.log(
      `F5 (parts): frozen ${fmtMs(frozenMs)} with ${inFlight.length} parts in flight; taken over after ${fmtMs(takeoverMs)}; UploadPart calls ${sumParts(c.uploadPartByNumber)} for ${PARTS} parts`,
    );
    expect(c.calls['CreateMultipartUpload']).toBe(1);
    // The stale worker noticed it had lost its locks.
    await waitUntil(() => /lock/i.test(a.logs()), 'the stale worker to log its lost lock', 15_000);
  });

  it('F5b: a worker frozen during finalize past its lock: the job is taken over; the stale worker creates no duplicate package', async () => {
    const { fleet } = h;
    await fleet.sim.control.setFaults({ jamfLatencyMs: 600 });
    const a = await fleet.startWorker();
    const file = await makeFile(fleet.dir, 'F5b Frozen Finalize.pkg', 2 * MiB);
    const { jobId } = await h.producer.upload({ path: file.path });
    // Freeze it as finalize begins: its package create is on its way to a slow Jamf.
    await waitUntil(
      async () => {
        const job = await Job.fromId(uploads(), jobId);
        return (job?.data as UploadJobData | undefined)?.step === 'finalize';
      },
      'the upload to reach finalize',
      30_000,
      20,
    );
    process.kill(a.pid, 'SIGSTOP');
    const stoppedAt = Date.now();
    await fleet.startWorker();
    await waitUntil(
      async () => ((await counters()).calls['POST /api/v1/packages'] ?? 0) >= 1,
      'the second worker to create the package',
      30_000,
    );
    await sleep(Math.max(0, 5_500 - (Date.now() - stoppedAt))); // frozen longer than the lock
    process.kill(a.pid, 'SIGCONT');
    const frozenMs = Date.now() - stoppedAt;
    const job = await waitForJobSettled(uploads(), jobId, 60_000);
    // Give the woken worker time to act on its stale view before checking.
    await sleep(3_000);
    await fleet.sim.control.clearFaults();
    await expectPublished(h, job, file, 2 * MiB);
    await expectNothingHalfDone(h);
    const c = await counters();
    const staleCreate = /DUPLICATE_FIELD/.test(a.logs());
    console.log(
      `F5 (finalize): frozen ${fmtMs(frozenMs)}; POST /api/v1/packages calls ${c.calls['POST /api/v1/packages']}${staleCreate ? ' (the woken worker tried to create it again: Jamf refused the duplicate name)' : ''}`,
    );
    expect(frozenMs).toBeGreaterThan(5_000);
    // The woken worker lost its lock and did not clean up (abort, delete) what the new owner made.
    await waitUntil(() => /lock/i.test(a.logs()), 'the stale worker to log its lost lock', 15_000);
    expect(a.logs()).not.toContain('deleted');
  });

  it('F5c: a frozen worker wakes and wins the race to create the package: the new owner adopts it; one package; the job succeeds', async () => {
    const { fleet } = h;
    await fleet.sim.control.setFaults({ jamfLatencyMs: 600 });
    const a = await fleet.startWorker();
    const file = await makeFile(fleet.dir, 'F5c Stale Create.pkg', 2 * MiB);
    const { jobId } = await h.producer.upload({ path: file.path });
    const finds = async (): Promise<number> =>
      (await counters()).calls['GET /api/v1/packages'] ?? 0;
    // The simulator counts a request when it arrives and answers it 600 ms later: freeze
    // once the create has arrived (waiting for `finalize` alone raced the POST: frozen
    // before sending it, the new owner created the record without a conflict).
    await waitUntil(
      async () =>
        (await Job.fromId(uploads(), jobId))?.data.step === 'finalize' &&
        ((await counters()).calls['POST /api/v1/packages'] ?? 0) >= 1,
      'the package create to arrive',
      30_000,
      10,
    );
    // Frozen with its package create on its way: Jamf creates the record while it sleeps,
    // and its view of the job (no package yet) is stale once it wakes.
    process.kill(a.pid, 'SIGSTOP');
    const stoppedAt = Date.now();
    const findsAtStop = await finds();
    await fleet.startWorker();
    // The new owner's create meets the record (DUPLICATE_FIELD) and looks it up; wake the
    // stale worker now, while the new owner adopts the record.
    await waitUntil(async () => (await finds()) > findsAtStop, 'the takeover', 30_000, 20);
    process.kill(a.pid, 'SIGCONT');
    const frozenMs = Date.now() - stoppedAt;
    const job = await waitForJobSettled(uploads(), jobId, 60_000);
    await sleep(2_000);
    await fleet.sim.control.clearFaults();
    const c = await counters();
    console.log(
      `F5c: frozen ${fmtMs(frozenMs)}; POST /api/v1/packages calls ${c.calls['POST /api/v1/packages']}; job ${await job.getState()}${job.failedReason ? `: ${job.failedReason}` : ''}`,
    );
    expect(frozenMs).toBeGreaterThan(5_000);
    await expectPublished(h, job, file, 2 * MiB);
    await expectNothingHalfDone(h);
  });

  it('F8: the parent killed right after CompleteMultipartUpload succeeded: the retry confirms with HeadObject, one package', async () => {
    const { fleet } = h;
    // Every S3 request waits 1.5 s before it is served: time to freeze the worker once its
    // Complete has arrived and before it can read the answer.
    await fleet.sim.control.setFaults({ s3LatencyMs: 1_500 });
    const a = await fleet.startWorker();
    const file = await makeFile(fleet.dir, 'F8 Completed Then Killed.pkg', SIZE);
    const { jobId } = await h.producer.upload({ path: file.path });
    await waitUntil(
      async () => ((await counters()).calls['CompleteMultipartUpload'] ?? 0) >= 1,
      'CompleteMultipartUpload to arrive',
      60_000,
      20,
    );
    process.kill(a.pid, 'SIGSTOP');
    // S3 completes the upload while the worker is frozen; then the worker dies.
    await waitUntil(
      async () => (await fleet.sim.control.listMultipartUploads()).length === 0,
      'S3 to complete the multipart upload',
      15_000,
    );
    await a.kill('SIGKILL');
    const killedAt = Date.now();
    const stale = await Job.fromId(uploads(), jobId);
    expect((stale?.data as UploadJobData).step).toBe('complete'); // no checkpoint of the completion
    await fleet.sim.control.clearFaults();
    const b = await fleet.startWorker();
    const job = await waitForJobSettled(uploads(), jobId, 60_000);
    const recoveredMs = Date.now() - killedAt;
    const result = await expectPublished(h, job, file, SIZE);
    expect(result.outcome).toBe('created');
    await expectNothingHalfDone(h);
    expect(b.logs()).toContain('multipart upload already completed; confirmed with HeadObject');
    const c = await counters();
    console.log(
      `F8: recovered ${fmtMs(recoveredMs)} after the kill; CompleteMultipartUpload ${c.calls['CompleteMultipartUpload']}, HeadObject ${c.calls['HeadObject'] ?? 0}, UploadPart ${c.calls['UploadPart']}`,
    );
    expect(c.calls['CompleteMultipartUpload']).toBe(2);
    expect(c.calls['HeadObject']).toBeGreaterThanOrEqual(1);
    expect(c.calls['UploadPart']).toBe(PARTS); // no part re-sent
    expect(c.calls['POST /api/v1/packages']).toBe(1);
  });

  it('F10: the same upload submitted concurrently by two producers: one job, one upload, one package', async () => {
    const { fleet } = h;
    const second = await Producer.connect({ redisUrl: fleet.redis.url });
    try {
      await fleet.startWorker();
      await fleet.startWorker();
      const file = await makeFile(fleet.dir, 'F10 Twice.pkg', SIZE);
      const enq = await Promise.all([
        h.producer.upload({ path: file.path }),
        second.upload({ path: file.path }),
        second.uploadMany([{ path: file.path }]).then(r => r[0]!),
        h.producer.upload({ path: file.path }),
      ]);
      expect(new Set(enq.map(e => e.jobId)).size).toBe(1);
      expect(enq.filter(e => e.created)).toHaveLength(1);
      const job = await waitForJobSettled(uploads(), enq[0]!.jobId, 60_000);
      const first = await expectPublished(h, job, file, SIZE);

      // Submitted again once it is done: a new job that sends nothing (same bytes).
      const again = await second.upload({ path: file.path });
      const againJob = await waitForJobSettled(uploads(), again.jobId, 30_000);
      const r = againJob.returnvalue as UploadResult;
      expect(r.outcome).toBe('unchanged');
      expect(r.packageId).toBe(first.packageId);
      expect(r.bytesSent).toBe(0);

      const c = await counters();
      expect(c.calls['CreateMultipartUpload']).toBe(1);
      expect(c.calls['POST /api/v1/jcds/files']).toBe(1);
      expect(sumParts(c.uploadPartByNumber)).toBe(PARTS);
      expect(c.calls['POST /api/v1/packages']).toBe(1);
      await expectNothingHalfDone(h);
    } finally {
      await second.close();
    }
  });
});
