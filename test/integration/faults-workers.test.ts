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
import { Job } from 'bullmq';
import { describe, expect, it } from 'vitest';
import { Producer } from '../../producer/producer.ts';
import type { UploadJobData, UploadResult } from '../../shared/queues/jobs.ts';
import { MiB } from '../../shared/units.ts';
import { makeFile, type WorkerProcess } from '../helpers/fleet.ts';
import {
  donePartNumbers,
  expectNothingHalfDone,
  expectPublished,
  fmtMs,
  heldLocks,
  lockTiming,
  locksGone,
  SLACK_MS,
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
const parts = () => h.fleet.queue('upload-part');

/** The package id checkpointed in an upload job's data, if any. */
function packageIdOf(job: Job | undefined): string | undefined {
  return (job?.data as { packageId?: string } | undefined)?.packageId;
}

/**
 * Waits until a woken stale worker's run of a job has ended. It ends with BullMQ refusing the
 * move that follows (to completed, failed or delayed): the stale worker's token no longer
 * holds the lock ("Missing lock for job N", "Lock mismatch for job N", logged as a worker
 * error). Once woken, the worker's overdue renewal fails at once (a renewal tick,
 * lockRenewTime / 2, at most) and cancels the run, which stops at its next check of the
 * signal: in finalize at the latest after the Jamf calls before `converge` (the listing in
 * flight, the create, its lookup on a conflict), 3 × `jamfLatencyMs`; + slack. Measured
 * from the wake, so a fortiori from the job's settling, when this is called.
 */
async function staleRunEnded(a: WorkerProcess, jobId: string, jamfLatencyMs: number) {
  const ended = new RegExp(`(Missing lock|Lock mismatch|Missing key) for job ${jobId}\\b`);
  await waitUntil(
    () => ended.test(a.logs()),
    `the stale worker's run of job ${jobId} to end`,
    lockTiming(h.fleet).renewMs / 2 + 3 * jamfLatencyMs + SLACK_MS,
  );
}

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

    const t = lockTiming(fleet);
    // Read before the signal: the worker renews nothing after this instant.
    const killedAt = Date.now();
    await a.kill('SIGKILL');
    const inFlight = await partsInFlight(jobId);
    expect(inFlight.length).toBeGreaterThan(0);
    expect(inFlight.length).toBeLessThanOrEqual(4); // JCDS_PART_CONCURRENCY
    await fleet.sim.control.clearFaults();
    await fleet.startWorker();
    // The new worker's stalled checker runs from its start: the takeover waits for the later
    // of the locks' expiry and that start, then for at most 2 checks (lockTiming).
    const takeoverBound =
      Math.max(t.lockExpiresMs.max, Date.now() - killedAt) + t.takeoverMs + SLACK_MS;

    await waitUntil(
      async () => {
        const c = await counters();
        return inFlight.some(n => (c.uploadPartByNumber[n] ?? 0) >= 2);
      },
      'a part that was in flight to be sent again',
      2 * takeoverBound,
    );
    const takeoverMs = Date.now() - killedAt;
    const job = await waitForJobSettled(uploads(), jobId, 60_000);
    const recoveredMs = Date.now() - killedAt;
    await expectPublished(h, job, file, SIZE);
    await expectNothingHalfDone(h);

    const c = await counters();
    const resent = sumParts(c.uploadPartByNumber) - PARTS;
    console.log(
      `F1: ${inFlight.length} parts in flight at the kill (${inFlight.join(',')}), ${resent} re-sent; takeover after ${fmtMs(takeoverMs)} (bounds ${fmtMs(t.lockExpiresMs.min)}–${fmtMs(takeoverBound)}), upload done ${fmtMs(recoveredMs)} after the kill`,
    );
    expect(resent).toBeGreaterThanOrEqual(1);
    expect(resent).toBeLessThanOrEqual(inFlight.length);
    // Only parts that were in flight were sent twice.
    for (const [n, count] of Object.entries(c.uploadPartByNumber)) {
      if (count > 1) expect(inFlight).toContain(Number(n));
    }
    // Lower: a lock outlives its worker by at least lockDuration - lockRenewTime (BullMQ's
    // renewal cadence, lockTiming): no part was taken over while its lock could still hold.
    expect(takeoverMs).toBeGreaterThan(t.lockExpiresMs.min);
    // Upper: lock expiry (≤ lockDuration) or the new worker's start, + 2 stalled checks + slack.
    expect(takeoverMs).toBeLessThan(takeoverBound);
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
    // The drain fits the grace period (JCDS_SHUTDOWN_GRACE_MS, default 30 s): a part in flight
    // has at most partSize / s3BytesPerSecond = 2.5 s to go.
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
    const graceMs = 300;
    const a = await fleet.startWorker({ JCDS_SHUTDOWN_GRACE_MS: String(graceMs) });
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
      `F2b: exit ${fmtMs(exitMs)} after SIGTERM (grace ${fmtMs(graceMs)}, bound ${fmtMs(graceMs + SLACK_MS)}); ${inFlight.length} parts cancelled, ${resent} re-sent; upload done ${fmtMs(doneMs)} after SIGTERM`,
    );
    expect(resent).toBeLessThanOrEqual(inFlight.length);
    // The grace period bounds the shutdown: after it the jobs are cancelled and the workers
    // force-closed (worker/start.ts), nothing else waits; + slack.
    expect(exitMs).toBeLessThan(graceMs + SLACK_MS);
  });

  it('F5: a worker frozen (SIGSTOP) past its locks during parts: taken over; when it wakes its late writes do no harm', async () => {
    const { fleet } = h;
    await fleet.sim.control.setFaults({ s3BytesPerSecond: 2 * MiB });
    const a = await fleet.startWorker();
    const file = await makeFile(fleet.dir, 'F5 Frozen Parts.pkg', SIZE);
    const { jobId } = await h.producer.upload({ path: file.path });
    await waitUntil(async () => (await partsInFlight(jobId)).length >= 3, '3 parts in flight');

    const t = lockTiming(fleet);
    const stoppedAt = Date.now(); // before the signal: it renews nothing after this instant
    process.kill(a.pid, 'SIGSTOP');
    // Its locks (the parts it runs; the parent waits for its children, unlocked).
    const locks = await heldLocks(parts());
    expect(locks.length).toBeGreaterThan(0);
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
    // Wake it once every lock it held is gone (expired, or another worker's): the event, not
    // a sleep. They expire within lockDuration of the freeze, so the upload is still open (S3
    // still throttled): its half-sent parts arrive late and overwrite those part numbers with
    // the same bytes.
    await waitUntil(
      () => locksGone(parts(), locks),
      'the frozen worker’s locks to be gone',
      t.lockExpiresMs.max + SLACK_MS,
    );
    process.kill(a.pid, 'SIGCONT');
    const frozenMs = Date.now() - stoppedAt;
    // Its locks outlived the freeze by at least lockDuration - lockRenewTime (lockTiming).
    expect(frozenMs).toBeGreaterThan(t.lockExpiresMs.min);
    const job = await waitForJobSettled(uploads(), jobId, 90_000);
    await expectPublished(h, job, file, SIZE);
    await expectNothingHalfDone(h);
    const c = await counters();
    console.log(
      `F5 (parts): frozen ${fmtMs(frozenMs)} (bound > ${fmtMs(t.lockExpiresMs.min)}) with ${inFlight.length} parts in flight; taken over after ${fmtMs(takeoverMs)}; UploadPart calls ${sumParts(c.uploadPartByNumber)} for ${PARTS} parts`,
    );
    expect(c.calls['CreateMultipartUpload']).toBe(1);
    // The stale worker noticed it had lost its locks: its overdue renewal runs on the wake,
    // at most a renewal tick (lockRenewTime / 2) later; + slack.
    await waitUntil(
      () => /lock/i.test(a.logs()),
      'the stale worker to log its lost lock',
      t.renewMs / 2 + SLACK_MS,
    );
  });

  it('F5b: a worker frozen during finalize past its lock: the job is taken over; the stale worker creates no duplicate package', async () => {
    const { fleet } = h;
    const jamfLatencyMs = 600;
    await fleet.sim.control.setFaults({ jamfLatencyMs });
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
    const t = lockTiming(fleet);
    const stoppedAt = Date.now(); // before the signal: it renews nothing after this instant
    process.kill(a.pid, 'SIGSTOP');
    const locks = await heldLocks(uploads());
    expect(locks.map(l => l.jobId)).toContain(jobId);
    const stalledAtStop = (await Job.fromId(uploads(), jobId))?.stalledCounter ?? 0;
    await fleet.startWorker();
    // The takeover: a stalled check moved the job back to wait, which BullMQ records in the
    // job's stalled counter (a record that stays, unlike the job's passing states).
    await waitUntil(
      async () => ((await Job.fromId(uploads(), jobId))?.stalledCounter ?? 0) > stalledAtStop,
      'the takeover',
      30_000,
    );
    // The new owner has the package record: its id is checkpointed in the job (the frozen
    // worker cannot write; the id may be its own, when its create was answered before it froze).
    // Waiting on the POST count instead could be met by the frozen worker's own create.
    await waitUntil(
      async () => packageIdOf(await Job.fromId(uploads(), jobId)),
      'the new owner to have the package record',
      30_000,
    );
    expect(await locksGone(uploads(), locks)).toBe(true); // a takeover needs the lock gone
    process.kill(a.pid, 'SIGCONT');
    const frozenMs = Date.now() - stoppedAt;
    const job = await waitForJobSettled(uploads(), jobId, 60_000);
    // The woken worker acts on its stale view until its run of the job ends: wait for that.
    await staleRunEnded(a, jobId, jamfLatencyMs);
    await fleet.sim.control.clearFaults();
    await expectPublished(h, job, file, 2 * MiB);
    await expectNothingHalfDone(h);
    const c = await counters();
    const staleCreate = /DUPLICATE_FIELD/.test(a.logs());
    console.log(
      `F5 (finalize): frozen ${fmtMs(frozenMs)} (bound > ${fmtMs(t.lockExpiresMs.min)}); POST /api/v1/packages calls ${c.calls['POST /api/v1/packages']}${staleCreate ? ' (the woken worker tried to create it again: Jamf refused the duplicate name)' : ''}`,
    );
    // Its lock outlived the freeze by at least lockDuration - lockRenewTime (lockTiming).
    expect(frozenMs).toBeGreaterThan(t.lockExpiresMs.min);
    // The woken worker lost its lock and did not clean up (abort, delete) what the new owner
    // made. (Its renewal failed on the wake, before its run ended: logged by now.)
    await waitUntil(
      () => /lock/i.test(a.logs()),
      'the stale worker to log its lost lock',
      t.renewMs / 2 + SLACK_MS,
    );
    expect(a.logs()).not.toContain('deleted');
  });

  it('F5c: a frozen worker wakes and wins the race to create the package: the new owner adopts it; one package; the job succeeds', async () => {
    const { fleet } = h;
    const t = lockTiming(fleet);
    const jamfLatencyMs = 600;
    await fleet.sim.control.setFaults({ jamfLatencyMs });
    const a = await fleet.startWorker();
    const file = await makeFile(fleet.dir, 'F5c Stale Create.pkg', 2 * MiB);
    const { jobId } = await h.producer.upload({ path: file.path });
    const finds = async (): Promise<number> =>
      (await counters()).calls['GET /api/v1/packages'] ?? 0;
    // The simulator counts a request when it arrives and answers it after the latency: freeze
    // once the create has arrived (waiting for `finalize` alone raced the POST: frozen
    // before sending it, the new owner created the record without a conflict), and before
    // its answer. For the create, the latency is lockExpiresMs.min / 2: far longer than this
    // test takes to see the create and freeze (one poll), and shorter than the earliest
    // takeover (lockExpiresMs.min after the freeze, itself after the create arrived), so Jamf
    // has created the record when the new owner's create arrives. It is set once `finalize`
    // runs: the create follows the JCDS listing, answered jamfLatencyMs later.
    await waitUntil(
      async () => (await Job.fromId(uploads(), jobId))?.data.step === 'finalize',
      'the upload to reach finalize',
      30_000,
      10,
    );
    await fleet.sim.control.setFaults({ jamfLatencyMs: t.lockExpiresMs.min / 2 });
    await waitUntil(
      async () => ((await counters()).calls['POST /api/v1/packages'] ?? 0) >= 1,
      'the package create to arrive',
      30_000,
      10,
    );
    // Frozen with its package create on its way: Jamf creates the record while it sleeps,
    // and its view of the job (no package yet) is stale once it wakes.
    const stoppedAt = Date.now(); // before the signal: it renews nothing after this instant
    process.kill(a.pid, 'SIGSTOP');
    await fleet.sim.control.setFaults({ jamfLatencyMs });
    expect(
      packageIdOf(await Job.fromId(uploads(), jobId)),
      'frozen after its create was answered: the race this test sets up did not happen',
    ).toBeUndefined();
    const findsAtStop = await finds();
    await fleet.startWorker();
    // The new owner's create meets the record (DUPLICATE_FIELD) and looks it up; wake the
    // stale worker now, while the new owner adopts the record.
    await waitUntil(async () => (await finds()) > findsAtStop, 'the takeover', 30_000, 20);
    process.kill(a.pid, 'SIGCONT');
    const frozenMs = Date.now() - stoppedAt;
    const job = await waitForJobSettled(uploads(), jobId, 60_000);
    // The woken worker acts on its stale view until its run of the job ends: wait for that.
    await staleRunEnded(a, jobId, jamfLatencyMs);
    await fleet.sim.control.clearFaults();
    const c = await counters();
    console.log(
      `F5c: frozen ${fmtMs(frozenMs)} (bound > ${fmtMs(t.lockExpiresMs.min)}); POST /api/v1/packages calls ${c.calls['POST /api/v1/packages']}; job ${await job.getState()}${job.failedReason ? `: ${job.failedReason}` : ''}`,
    );
    // The mechanism, not the machine's speed: the takeover needs the lock expired, which is
    // at least lockDuration - lockRenewTime after the freeze (lockTiming); the lock expires
    // up to lockDuration after its last renewal, not after the freeze.
    expect(frozenMs).toBeGreaterThan(t.lockExpiresMs.min);
    await expectPublished(h, job, file, 2 * MiB);
    await expectNothingHalfDone(h);
  });

  it('F8: the parent killed right after CompleteMultipartUpload succeeded: the retry confirms with HeadObject, one package', async () => {
    const { fleet } = h;
    // Every S3 request waits 1.5 s before it is served: time to freeze the worker once its
    // Complete has arrived and before it can read the answer (this test reacts within one
    // poll, 20 ms and a counters read; the premise is checked below: no checkpoint).
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
