/**
 * A worker that lost its lock changes nothing (issue 13, section 1): a worker frozen
 * (SIGSTOP) past its lock at each step of an upload, taken over by a second worker, then
 * woken (SIGCONT) while the new owner works on the job. Each freeze is triggered by the
 * mechanism: the simulator delays the request of that step, the test freezes the worker once
 * the request has arrived (the simulator counts it on arrival), and the answer waits in the
 * frozen worker's socket. The delay is 4/5 of lockExpiresMs.min: far longer than the test
 * takes to see the request and freeze (one poll), and shorter than the earliest takeover
 * (lockExpiresMs.min after the freeze, itself after the request arrived), so what the request
 * does on the server is done before the new owner starts, and the stale worker wakes with
 * its answer and acts on its stale view at once. Each test checks that premise: the job's
 * checkpoint is still the frozen step's.
 *
 *   H1.1 prepare   H1.2 stage (multipart)   H1.3 the part phase   H1.4 complete
 *   H1.5 finalize  H1.6 a single-request upload (its clean-up)   H1.0 the fence itself
 *   H1.7 a download, frozen mid-range and woken while the new owner fetches into the same
 *        partial file
 *   H1.8 the package-upload transport, frozen with its POST /api/v1/packages/{id}/upload
 *        on its way
 *
 * Each ends with the job published exactly once with the right bytes and nothing
 * half-done, or failed with a true reason; the stale worker logs its lost lock; it rewrote
 * no checkpoint (the job's data, polled, never goes back: no step regresses, no uploadId or
 * package id is replaced or dropped); it aborted no upload of the new owner's, deleted no
 * package, and left the new owner's vault entry alone (no credential renewal was needed).
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Job } from 'bullmq';
import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { errorCode } from '../../shared/errors.ts';
import type { DownloadJobData, DownloadResult, UploadJobData } from '../../shared/queues/jobs.ts';
import { jobKey, QUEUE_PREFIX, QUEUES, uploadVaultKey } from '../../shared/queues/names.ts';
import { MiB } from '../../shared/units.ts';
import { JobFences } from '../../worker/fence.ts';
import { makeFile, type WorkerProcess } from '../helpers/fleet.ts';
import {
  expectNothingHalfDone,
  expectPublished,
  fmtMs,
  heldLocks,
  lockTiming,
  locksGone,
  SLACK_MS,
  useHarness,
  waitForJobSettled,
  waitUntil,
} from '../helpers/faults.ts';

const MULTIPART = 40 * MiB; // 8 parts of 5 MiB (FAULT_ENV)
const SINGLE = 7 * MiB; // below the split threshold (8 MiB), above one lib-storage part (5 MiB)
const h = useHarness({ perTest: true });

const counters = () => h.fleet.sim.control.counters();
const uploads = () => h.fleet.queue('upload');
const parts = () => h.fleet.queue('upload-part');
const calls = async (name: string): Promise<number> => (await counters()).calls[name] ?? 0;

/** The simulator's delay for the request a worker is frozen on (see the file comment). */
const triggerLatencyMs = (): number => (lockTiming(h.fleet).lockExpiresMs.min * 4) / 5;

/**
 * SIGSTOPs `w` once one more of the simulator's `call` than `before` has arrived (its
 * request for the job, not one made at start-up); returns when it stopped.
 */
async function freezeOn(w: WorkerProcess, call: string, before: number): Promise<number> {
  await waitUntil(async () => (await calls(call)) > before, `${call} to arrive`, 60_000, 10);
  const stoppedAt = Date.now(); // before the signal: it renews nothing after this instant
  process.kill(w.pid, 'SIGSTOP');
  return stoppedAt;
}

function dataOf(job: Job | undefined): UploadJobData | undefined {
  return job?.data as UploadJobData | undefined;
}

/** The worker's log lines saying it lost a lock of this queue (and job, when given). */
function lostLockLines(w: WorkerProcess, queue: string, jobId?: RegExp): string[] {
  return w
    .logs()
    .split('\n')
    .filter(
      l =>
        l.includes("lost the job's lock") &&
        l.includes(`"queue":"${queue}"`) &&
        (!jobId || jobId.test(l)),
    );
}

const STEP_RANK: Record<string, number> = { prepare: 0, stage: 1, complete: 2, finalize: 3 };

/**
 * Polls an upload job's checkpoint (its data in Redis) every 20 ms and records each change.
 * `regressions()` lists the changes no owner makes in a run without resends: a step that goes
 * back, an uploadId replaced, a package id dropped. A stale worker's write is one of them (it
 * stays until the new owner writes again, seconds later at these sizes).
 */
function watchCheckpoint(jobId: string) {
  const redis = new Redis(h.fleet.redis.url);
  const seen: Array<{ step: string; uploadId?: string; packageId?: string }> = [];
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      const raw = await redis.hget(jobKey(QUEUES.upload, jobId), 'data').catch(() => null);
      if (raw) {
        const d = JSON.parse(raw) as UploadJobData & {
          multipart?: { uploadId?: string };
          packageId?: string;
        };
        const now = {
          step: d.step,
          ...(d.multipart?.uploadId ? { uploadId: d.multipart.uploadId } : {}),
          ...(d.packageId ? { packageId: d.packageId } : {}),
        };
        const last = seen.at(-1);
        if (JSON.stringify(last) !== JSON.stringify(now)) seen.push(now);
      }
      await new Promise(r => setTimeout(r, 20));
    }
  })();
  return {
    seen,
    async stop() {
      stopped = true;
      await loop;
      redis.disconnect();
    },
    regressions(): string[] {
      const out: string[] = [];
      for (let i = 1; i < seen.length; i++) {
        const [a, b] = [seen[i - 1]!, seen[i]!];
        if ((STEP_RANK[b.step] ?? 0) < (STEP_RANK[a.step] ?? 0))
          out.push(`step ${a.step} -> ${b.step}`);
        if (a.uploadId && b.uploadId && a.uploadId !== b.uploadId)
          out.push(`uploadId ${a.uploadId} -> ${b.uploadId}`);
        if (a.uploadId && !b.uploadId && (STEP_RANK[b.step] ?? 0) >= STEP_RANK['complete']!)
          out.push(`uploadId ${a.uploadId} dropped`);
        if (a.packageId && b.packageId !== a.packageId)
          out.push(`packageId ${a.packageId} -> ${String(b.packageId)}`);
      }
      return out;
    },
  };
}

/**
 * Waits until the woken stale worker's run of the job has ended: it logged its lost lock, or
 * BullMQ refused its move of the job ("Missing lock", "Lock mismatch": its token no longer
 * holds). Once woken, its next fenced write or check fails at once, and its overdue renewal
 * fails within a renewal tick (lockRenewTime / 2) and cancels it; + slack. Resolves to
 * whether it ended (the figures are printed before they are asserted).
 */
async function staleRunEnded(a: WorkerProcess, jobId: string): Promise<boolean> {
  const id = jobId.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const ended = new RegExp(
    `"jobId":"${id}"[^\\n]*lost the job's lock|(Missing lock|Lock mismatch) for job ${id}\\b`,
  );
  return waitUntil(
    () => ended.test(a.logs()),
    `the stale worker's run of job ${jobId} to end`,
    lockTiming(h.fleet).renewMs / 2 + SLACK_MS,
  ).catch(() => false);
}

/** What a stale worker must not have done, read from the simulator's counters. */
async function destructiveCalls() {
  const c = await counters();
  return {
    aborts: c.calls['AbortMultipartUpload'] ?? 0,
    strayListings: c.calls['ListMultipartUploads'] ?? 0,
    packageDeletes: c.calls['DELETE /api/v1/packages/{id}'] ?? 0,
    renewals: c.calls['POST /api/v1/jcds/renew-credentials'] ?? 0,
  };
}

async function jobOutcome(job: Job): Promise<string> {
  const state = await job.getState();
  return state === 'failed' ? `failed: ${job.failedReason}` : state;
}

/**
 * The takeover and the wake, as H1.5 and H1.8 run them: watches the job's checkpoint,
 * starts the new owner, waits until it is at work (`working`), wakes the frozen worker `a`,
 * then waits for the job to settle and the stale run to end.
 */
async function takeOverThenWake(
  a: WorkerProcess,
  jobId: string,
  stoppedAt: number,
  what: string,
  working: () => Promise<unknown>,
) {
  const watch = watchCheckpoint(jobId);
  await h.fleet.startWorker();
  await waitUntil(working, what, 60_000);
  process.kill(a.pid, 'SIGCONT');
  const frozenMs = Date.now() - stoppedAt;
  const job = await waitForJobSettled(uploads(), jobId, 120_000);
  const ended = await staleRunEnded(a, jobId);
  await watch.stop();
  return { watch, frozenMs, job, ended, d: await destructiveCalls() };
}

describe('a worker that lost its lock changes nothing', () => {
  it('H1.0: the fence writes only for the token that holds the lock, and says LOCK_LOST otherwise', async () => {
    const redis = new Redis(h.fleet.redis.url);
    try {
      const fences = new JobFences(redis);
      const job = { id: 'fence-1', queueQualifiedName: `${QUEUE_PREFIX}:upload`, data: {} };
      const key = jobKey(QUEUES.upload, 'fence-1');
      const vaultKey = `${QUEUE_PREFIX}:vault:${uploadVaultKey('fence-1')}`;
      await redis.hset(key, 'data', JSON.stringify({ step: 'complete', owner: 'B' }));
      await redis.set(`${key}:lock`, 'token-B', 'PX', 60_000);
      await redis.set(vaultKey, 'sealed-by-B', 'PX', 60_000);

      const stale = fences.of(job, 'token-A');
      const refused = async (p: Promise<unknown>) =>
        errorCode(
          await p.then(
            () => undefined,
            (e: unknown) => e,
          ),
        );
      expect(await refused(stale.saveData({ step: 'complete', owner: 'A' }))).toBe('LOCK_LOST');
      expect(await refused(stale.set(vaultKey, 'sealed-by-A', 60_000))).toBe('LOCK_LOST');
      expect(await refused(stale.del(vaultKey))).toBe('LOCK_LOST');
      expect(await refused(stale.check('abort stray multipart uploads'))).toBe('LOCK_LOST');
      expect(await stale.held()).toBe(false);
      expect(JSON.parse((await redis.hget(key, 'data'))!)).toEqual({
        step: 'complete',
        owner: 'B',
      });
      expect(await redis.get(vaultKey)).toBe('sealed-by-B');
      expect(job.data).toEqual({}); // the stale run's view is not updated either

      const owner = fences.of(job, 'token-B');
      await owner.saveData({ step: 'finalize', owner: 'B' });
      expect(JSON.parse((await redis.hget(key, 'data'))!)).toEqual({
        step: 'finalize',
        owner: 'B',
      });
      expect(job.data).toEqual({ step: 'finalize', owner: 'B' });
      await owner.set(vaultKey, 'renewed-by-B', 60_000);
      expect(await redis.get(vaultKey)).toBe('renewed-by-B');
      expect(await redis.pttl(vaultKey)).toBeGreaterThan(0);
      await owner.del(vaultKey);
      expect(await redis.exists(vaultKey)).toBe(0);
      await expect(owner.check('abort')).resolves.toBeUndefined();
      // A lock that expired holds for nobody.
      await redis.del(`${key}:lock`);
      expect(await refused(owner.saveData({ step: 'finalize', owner: 'B2' }))).toBe('LOCK_LOST');
      await redis.del(key);
    } finally {
      redis.disconnect();
    }
  });

  it('H1.1 prepare: woken while the new owner sends the parts, the stale worker does not put the job back to stage', async () => {
    const { fleet } = h;
    const t = lockTiming(fleet);
    await fleet.sim.control.setFaults({ jamfLatencyMs: triggerLatencyMs() });
    const a = await fleet.startWorker();
    const file = await makeFile(fleet.dir, 'H1 Prepare.pkg', MULTIPART);
    const before = await calls('GET /api/v1/packages');
    const { jobId } = await h.producer.upload({ path: file.path });
    // prepare's package lookup (GET /api/v1/packages?filter=fileName==...).
    const stoppedAt = await freezeOn(a, 'GET /api/v1/packages', before);
    expect(dataOf(await Job.fromId(uploads(), jobId))?.step).toBe('prepare');
    // The new owner's parts are slow: it is still sending them when the stale worker wakes.
    await fleet.sim.control.clearFaults();
    await fleet.sim.control.setFaults({ s3BytesPerSecond: 2 * MiB });
    const watch = watchCheckpoint(jobId);
    await fleet.startWorker();
    await waitUntil(
      async () =>
        dataOf(await Job.fromId(uploads(), jobId))?.step === 'complete' &&
        (await calls('UploadPart')) >= 1,
      'the new owner to send parts',
      60_000,
    );
    process.kill(a.pid, 'SIGCONT');
    const frozenMs = Date.now() - stoppedAt;
    const job = await waitForJobSettled(uploads(), jobId, 120_000);
    const ended = await staleRunEnded(a, jobId);
    await watch.stop();
    await fleet.sim.control.clearFaults();
    const d = await destructiveCalls();
    console.log(
      `H1.1 prepare: frozen ${fmtMs(frozenMs)}; job ${await jobOutcome(job)}; checkpoint changes ${JSON.stringify(watch.seen)}; regressions ${JSON.stringify(watch.regressions())}; stale run ended ${ended}, lost-lock lines ${lostLockLines(a, 'upload').length}; CreateMultipartUpload ${await calls('CreateMultipartUpload')}, aborts ${d.aborts}, package deletes ${d.packageDeletes}, renewals ${d.renewals}`,
    );
    expect(frozenMs).toBeGreaterThan(t.lockExpiresMs.min);
    expect(watch.regressions()).toEqual([]);
    await expectPublished(h, job, file, MULTIPART);
    await expectNothingHalfDone(h);
    expect(ended).toBe(true);
    expect(lostLockLines(a, 'upload', new RegExp(`"jobId":"${jobId}"`))).toHaveLength(1);
    expect(await calls('CreateMultipartUpload')).toBe(1); // the stale worker staged nothing
    expect(d).toMatchObject({ aborts: 0, packageDeletes: 0, renewals: 0 });
  });

  it('H1.2 stage: woken with its own UploadId U1, the stale worker does not replace the new owner’s U2', async () => {
    const { fleet } = h;
    const t = lockTiming(fleet);
    await fleet.sim.control.setFaults({ s3LatencyMs: triggerLatencyMs() });
    const a = await fleet.startWorker();
    const file = await makeFile(fleet.dir, 'H1 Stage.pkg', MULTIPART);
    const { jobId } = await h.producer.upload({ path: file.path });
    // Frozen with its CreateMultipartUpload on its way: S3 creates U1 while it sleeps.
    const stoppedAt = await freezeOn(a, 'CreateMultipartUpload', 0);
    expect(dataOf(await Job.fromId(uploads(), jobId))?.step).toBe('stage');
    await fleet.sim.control.clearFaults();
    await fleet.sim.control.setFaults({ s3BytesPerSecond: 2 * MiB });
    const watch = watchCheckpoint(jobId);
    await fleet.startWorker();
    await waitUntil(
      async () => dataOf(await Job.fromId(uploads(), jobId))?.step === 'complete',
      'the new owner to checkpoint its multipart upload U2',
      60_000,
    );
    const u2 = (dataOf(await Job.fromId(uploads(), jobId)) as { multipart: { uploadId: string } })
      .multipart.uploadId;
    process.kill(a.pid, 'SIGCONT');
    const frozenMs = Date.now() - stoppedAt;
    const job = await waitForJobSettled(uploads(), jobId, 120_000);
    const ended = await staleRunEnded(a, jobId);
    await watch.stop();
    await fleet.sim.control.clearFaults();
    const d = await destructiveCalls();
    const final = dataOf(job) as { multipart?: { uploadId: string } } | undefined;
    console.log(
      `H1.2 stage: frozen ${fmtMs(frozenMs)}; job ${await jobOutcome(job)}; U2 ${u2}, checkpoint changes ${JSON.stringify(watch.seen)}; regressions ${JSON.stringify(watch.regressions())}; stale run ended ${ended}, lost-lock lines ${lostLockLines(a, 'upload').length}; CreateMultipartUpload ${await calls('CreateMultipartUpload')}, AbortMultipartUpload ${d.aborts} (the stale worker's own U1, never checkpointed), open uploads ${(await fleet.sim.control.listMultipartUploads()).length}, renewals ${d.renewals}`,
    );
    expect(frozenMs).toBeGreaterThan(t.lockExpiresMs.min);
    expect(watch.regressions()).toEqual([]);
    expect(final?.multipart?.uploadId).toBe(u2);
    await expectPublished(h, job, file, MULTIPART);
    // Nothing left open: the stale worker aborted U1, which no checkpoint ever named.
    await expectNothingHalfDone(h);
    expect(ended).toBe(true);
    expect(lostLockLines(a, 'upload', new RegExp(`"jobId":"${jobId}"`))).toHaveLength(1);
    expect(await calls('CreateMultipartUpload')).toBe(2);
    expect(d).toMatchObject({ aborts: 1, packageDeletes: 0, renewals: 0 });
  });

  it('H1.3 the part phase: its woken part jobs record nothing and stop, logging the lost locks', async () => {
    const { fleet } = h;
    const t = lockTiming(fleet);
    await fleet.sim.control.setFaults({ s3BytesPerSecond: 2 * MiB });
    const a = await fleet.startWorker();
    const file = await makeFile(fleet.dir, 'H1 Parts.pkg', MULTIPART);
    const { jobId } = await h.producer.upload({ path: file.path });
    await waitUntil(async () => (await calls('UploadPart')) >= 3, '3 parts in flight', 60_000, 10);
    const stoppedAt = Date.now();
    process.kill(a.pid, 'SIGSTOP');
    const locks = await heldLocks(parts());
    expect(locks.length).toBeGreaterThan(0);
    const watch = watchCheckpoint(jobId);
    await fleet.startWorker();
    await waitUntil(
      () => locksGone(parts(), locks),
      'the frozen worker’s part locks to be gone',
      t.lockExpiresMs.max + t.takeoverMs + SLACK_MS,
    );
    process.kill(a.pid, 'SIGCONT');
    const frozenMs = Date.now() - stoppedAt;
    const job = await waitForJobSettled(uploads(), jobId, 120_000);
    // Each of its part runs ends with its lost lock logged: at the check after its UploadPart,
    // or when its overdue renewal fails and cancels the part (a renewal tick); + slack.
    const ended = await waitUntil(
      () => lostLockLines(a, 'upload-part').length >= locks.length,
      'the stale part runs to log their lost locks',
      t.renewMs / 2 + SLACK_MS,
    ).catch(() => false);
    await watch.stop();
    await fleet.sim.control.clearFaults();
    const d = await destructiveCalls();
    console.log(
      `H1.3 parts: frozen ${fmtMs(frozenMs)} holding ${locks.length} part locks; job ${await jobOutcome(job)}; stale part runs that logged a lost lock ${lostLockLines(a, 'upload-part').length}; regressions ${JSON.stringify(watch.regressions())}; UploadPart ${await calls('UploadPart')} for 8 parts, aborts ${d.aborts}, renewals ${d.renewals}`,
    );
    expect(frozenMs).toBeGreaterThan(t.lockExpiresMs.min);
    expect(watch.regressions()).toEqual([]);
    await expectPublished(h, job, file, MULTIPART);
    await expectNothingHalfDone(h);
    expect(ended).toBe(true);
    expect(d).toMatchObject({ aborts: 0, packageDeletes: 0, renewals: 0 });
  });

  it('H1.4 complete: woken after its CompleteMultipartUpload, the stale worker neither cleans up nor drops the new owner’s package id', async () => {
    const { fleet } = h;
    const t = lockTiming(fleet);
    // Every S3 request waits: the worker is frozen with its CompleteMultipartUpload on its
    // way, S3 completes the upload while it sleeps.
    await fleet.sim.control.setFaults({ s3LatencyMs: triggerLatencyMs() });
    const a = await fleet.startWorker();
    const file = await makeFile(fleet.dir, 'H1 Complete.pkg', MULTIPART);
    const { jobId } = await h.producer.upload({ path: file.path });
    const stoppedAt = await freezeOn(a, 'CompleteMultipartUpload', 0);
    expect(dataOf(await Job.fromId(uploads(), jobId))?.step).toBe('complete');
    await fleet.sim.control.clearFaults();
    const listingsAtStop = await calls('ListMultipartUploads');
    const watch = watchCheckpoint(jobId);
    await fleet.startWorker();
    // The new owner confirms the completed object, cleans up, and creates the package record.
    await waitUntil(
      async () => (dataOf(await Job.fromId(uploads(), jobId)) as { packageId?: string })?.packageId,
      'the new owner to checkpoint the package record',
      60_000,
    );
    process.kill(a.pid, 'SIGCONT');
    const frozenMs = Date.now() - stoppedAt;
    const job = await waitForJobSettled(uploads(), jobId, 120_000);
    const ended = await staleRunEnded(a, jobId);
    await watch.stop();
    const d = await destructiveCalls();
    const listings = d.strayListings - listingsAtStop;
    console.log(
      `H1.4 complete: frozen ${fmtMs(frozenMs)}; job ${await jobOutcome(job)}; checkpoint changes ${JSON.stringify(watch.seen)}; regressions ${JSON.stringify(watch.regressions())}; stale run ended ${ended}, lost-lock lines ${lostLockLines(a, 'upload').length}; stray clean-ups (ListMultipartUploads) after the freeze ${listings} (the new owner's: 1), aborts ${d.aborts}, package deletes ${d.packageDeletes}, renewals ${d.renewals}`,
    );
    expect(frozenMs).toBeGreaterThan(t.lockExpiresMs.min);
    expect(watch.regressions()).toEqual([]);
    const result = await expectPublished(h, job, file, MULTIPART);
    expect(result.outcome).toBe('created');
    await expectNothingHalfDone(h);
    expect(ended).toBe(true);
    expect(lostLockLines(a, 'upload', new RegExp(`"jobId":"${jobId}"`))).toHaveLength(1);
    expect(listings).toBe(1);
    expect(d).toMatchObject({ aborts: 0, packageDeletes: 0, renewals: 0 });
  });

  it('H1.5 finalize: woken with its package create answered, the stale worker writes no checkpoint and deletes nothing', async () => {
    const { fleet } = h;
    const t = lockTiming(fleet);
    // Jamf answers late: time to raise the latency once finalize runs, before its create
    // (which follows the JCDS listing) arrives (as F5c).
    await fleet.sim.control.setFaults({ jamfLatencyMs: 600 });
    const a = await fleet.startWorker();
    const file = await makeFile(fleet.dir, 'H1 Finalize.pkg', 2 * MiB);
    const { jobId } = await h.producer.upload({ path: file.path });
    await waitUntil(
      async () => dataOf(await Job.fromId(uploads(), jobId))?.step === 'finalize',
      'the upload to reach finalize',
      30_000,
      10,
    );
    await fleet.sim.control.setFaults({ jamfLatencyMs: triggerLatencyMs() });
    const stoppedAt = await freezeOn(a, 'POST /api/v1/packages', 0);
    await fleet.sim.control.clearFaults();
    expect(
      (dataOf(await Job.fromId(uploads(), jobId)) as { packageId?: string }).packageId,
      'frozen after its create was answered: the race this test sets up did not happen',
    ).toBeUndefined();
    // The new owner meets the record the frozen worker's create made, and adopts it.
    const { watch, frozenMs, job, ended, d } = await takeOverThenWake(
      a,
      jobId,
      stoppedAt,
      'the new owner to adopt the package record',
      async () => (dataOf(await Job.fromId(uploads(), jobId)) as { packageId?: string })?.packageId,
    );
    console.log(
      `H1.5 finalize: frozen ${fmtMs(frozenMs)}; job ${await jobOutcome(job)}; checkpoint changes ${JSON.stringify(watch.seen)}; regressions ${JSON.stringify(watch.regressions())}; stale run ended ${ended}, lost-lock lines ${lostLockLines(a, 'upload').length}; POST /api/v1/packages ${await calls('POST /api/v1/packages')}, package deletes ${d.packageDeletes}`,
    );
    expect(frozenMs).toBeGreaterThan(t.lockExpiresMs.min);
    expect(watch.regressions()).toEqual([]);
    await expectPublished(h, job, file, 2 * MiB);
    await expectNothingHalfDone(h);
    expect(ended).toBe(true);
    expect(lostLockLines(a, 'upload', new RegExp(`"jobId":"${jobId}"`))).toHaveLength(1);
    expect(d).toMatchObject({ aborts: 0, packageDeletes: 0 });
  });

  it('H1.6 single-request upload: the woken stale worker aborts nothing and leaves the new owner’s vault entry', async () => {
    const { fleet } = h;
    const t = lockTiming(fleet);
    await fleet.sim.control.setFaults({ s3LatencyMs: triggerLatencyMs() });
    const a = await fleet.startWorker();
    const file = await makeFile(fleet.dir, 'H1 Single.pkg', SINGLE);
    const { jobId } = await h.producer.upload({ path: file.path });
    // lib-storage sends 7 MiB as a multipart upload of 2 parts: frozen with its completion on
    // its way, the stale worker wakes to its clean-up (abort the strays, drop the credentials).
    const stoppedAt = await freezeOn(a, 'CompleteMultipartUpload', 0);
    expect(dataOf(await Job.fromId(uploads(), jobId))?.step).toBe('stage');
    await fleet.sim.control.clearFaults();
    // The new owner's own upload is slow: it is open, and needs its credentials, when the
    // stale worker wakes.
    await fleet.sim.control.setFaults({ s3BytesPerSecond: 1 * MiB });
    const listingsAtStop = await calls('ListMultipartUploads');
    const openAtStop = new Set(
      (await fleet.sim.control.listMultipartUploads()).map(u => u.uploadId),
    );
    const watch = watchCheckpoint(jobId);
    await fleet.startWorker();
    // Its upload: the one opened after the freeze (the stale worker's completed meanwhile).
    const open = await waitUntil(
      async () => {
        if ((await calls('UploadPart')) < 3) return false;
        const opened = (await fleet.sim.control.listMultipartUploads()).filter(
          u => !openAtStop.has(u.uploadId),
        );
        return opened.length > 0 && opened;
      },
      'the new owner’s multipart upload to be open and sending',
      60_000,
    );
    expect(open).toHaveLength(1);
    const vaultKey = `${QUEUE_PREFIX}:vault:${uploadVaultKey(jobId)}`;
    const redis = new Redis(fleet.redis.url);
    const entryBefore = await redis.get(vaultKey);
    process.kill(a.pid, 'SIGCONT');
    const frozenMs = Date.now() - stoppedAt;
    const ended = await staleRunEnded(a, jobId);
    // Read once the stale run ended, while the new owner still sends.
    const stillOpen = (await fleet.sim.control.listMultipartUploads()).some(
      u => u.uploadId === open[0]?.uploadId,
    );
    const entryAfter = await redis.get(vaultKey);
    redis.disconnect();
    const job = await waitForJobSettled(uploads(), jobId, 120_000);
    await watch.stop();
    await fleet.sim.control.clearFaults();
    const d = await destructiveCalls();
    const listings = d.strayListings - listingsAtStop;
    console.log(
      `H1.6 single: frozen ${fmtMs(frozenMs)}; job ${await jobOutcome(job)}; stale run ended ${ended}, lost-lock lines ${lostLockLines(a, 'upload').length}; the new owner's upload open after the stale run ${stillOpen}, its vault entry ${entryBefore === null ? 'absent' : entryAfter === entryBefore ? 'untouched' : entryAfter === null ? 'DELETED' : 'REPLACED'}; stray clean-ups (ListMultipartUploads) after the freeze ${listings} (the new owner's: 1), AbortMultipartUpload ${d.aborts}, credential renewals ${d.renewals}; checkpoint changes ${JSON.stringify(watch.seen)}; regressions ${JSON.stringify(watch.regressions())}`,
    );
    expect(frozenMs).toBeGreaterThan(t.lockExpiresMs.min);
    expect(ended).toBe(true);
    expect(lostLockLines(a, 'upload', new RegExp(`"jobId":"${jobId}"`))).toHaveLength(1);
    expect(stillOpen).toBe(true);
    expect(entryBefore).not.toBeNull();
    expect(entryAfter).toBe(entryBefore);
    expect(watch.regressions()).toEqual([]);
    await expectPublished(h, job, file, SINGLE);
    await expectNothingHalfDone(h);
    expect(listings).toBe(1);
    expect(d).toMatchObject({ aborts: 0, packageDeletes: 0, renewals: 0 });
  });
  it('H1.7 download: woken while the new owner fetches into the same partial file, the stale worker moves and removes nothing; one verified file', async () => {
    const { fleet } = h;
    const t = lockTiming(fleet);
    const a = await fleet.startWorker();
    const SIZE = 24 * MiB; // ranges of 20 MiB and 4 MiB
    const file = await makeFile(fleet.dir, 'H1 Download.pkg', SIZE);
    const published = await waitForJobSettled(
      uploads(),
      (await h.producer.upload({ path: file.path })).jobId,
      120_000,
    );
    expect(await published.getState()).toBe('completed');
    const folder = join(fleet.dir, 'h17');
    mkdirSync(folder);
    const dest = join(folder, 'H1 Download.pkg');
    // Slow ranges: each GET is served at 1 MiB/s, so both runs are mid-range at each turn.
    await fleet.sim.control.setFaults({ s3BytesPerSecond: 1 * MiB });
    const gets = async (): Promise<number> =>
      (await calls('GetObject')) + (await calls('CdnGetObject'));
    const downloads = () => fleet.queue('download');
    const jobId = await h.producer.download({ fileName: 'H1 Download.pkg', dest });
    // Frozen once its partial file is recorded and bytes flow into it.
    const servedAt = (await counters()).s3BytesServed;
    await waitUntil(
      async () =>
        (await Job.fromId(downloads(), jobId))?.data?.partial !== undefined &&
        (await counters()).s3BytesServed > servedAt + 2 * MiB,
      'the download to be under way',
      60_000,
      10,
    );
    const stoppedAt = Date.now();
    process.kill(a.pid, 'SIGSTOP');
    const atFreeze = (await Job.fromId(downloads(), jobId))!.data as DownloadJobData;
    const getsAtFreeze = await gets();
    await fleet.startWorker();
    // The new owner fetches: its own GETs of the object reach the simulator.
    await waitUntil(
      async () => (await gets()) >= getsAtFreeze + 2,
      'the new owner to fetch the ranges',
      60_000,
    );
    const redis = new Redis(fleet.redis.url);
    const ranges = async (): Promise<string> =>
      JSON.stringify(
        (
          JSON.parse(
            (await redis.hget(jobKey(QUEUES.download, jobId), 'data')) ?? '{}',
          ) as DownloadJobData
        ).doneRanges ?? [],
      );
    const before = await ranges();
    process.kill(a.pid, 'SIGCONT');
    const frozenMs = Date.now() - stoppedAt;
    const ended = await staleRunEnded(a, jobId);
    // Read once the stale run ended, while the new owner still fetches (its big range takes
    // 20 s at 1 MiB/s).
    const after = await ranges();
    const entries = readdirSync(folder);
    redis.disconnect();
    const job = await waitForJobSettled(downloads(), jobId, 120_000);
    await fleet.sim.control.clearFaults();
    const state = await jobOutcome(job);
    const sha = (p: string): string => createHash('sha256').update(readFileSync(p)).digest('hex');
    console.log(
      `H1.7 download: frozen ${fmtMs(frozenMs)}; job ${state}; stale run ended ${ended}, lost-lock lines ${lostLockLines(a, 'download').length}; partial ${atFreeze.partial?.name} at the freeze; done ranges when it woke ${before}, after its run ended ${after}; folder then ${JSON.stringify(entries)}; GETs since the freeze ${(await gets()) - getsAtFreeze}`,
    );
    expect(frozenMs).toBeGreaterThan(t.lockExpiresMs.min);
    expect(ended).toBe(true);
    expect(lostLockLines(a, 'download', new RegExp(`"jobId":"${jobId}"`))).toHaveLength(1);
    // While the new owner fetched: the stale worker put nothing at the destination and left
    // the one partial file (the frozen worker's, reopened by the new owner) where it was.
    expect(entries).toEqual([atFreeze.partial!.name]);
    expect(state).toBe('completed');
    const result = job.returnvalue as DownloadResult;
    expect(result).toMatchObject({ path: dest, size: SIZE, verified: true, verifiedBy: 'sha256' });
    expect(sha(dest)).toBe(file.sha256);
    expect(readdirSync(folder)).toEqual(['H1 Download.pkg']);
    expect(a.logs()).not.toMatch(/saved as/);
  });
  it('H1.8 package-upload transport: woken with its file upload answered, the stale worker writes no checkpoint and deletes nothing', async () => {
    const { fleet } = h;
    const t = lockTiming(fleet);
    const a = await fleet.startWorker();
    const file = await makeFile(fleet.dir, 'H1 Package Upload.pkg', 3 * MiB);
    const { jobId } = await h.producer.upload({ path: file.path, transport: 'package-upload' });
    await waitUntil(
      async () => dataOf(await Job.fromId(uploads(), jobId))?.step === 'stage',
      'the upload to reach stage',
      30_000,
      10,
    );
    await fleet.sim.control.setFaults({ jamfLatencyMs: triggerLatencyMs() });
    const UPLOAD = 'POST /api/v1/packages/{id}/upload';
    const stoppedAt = await freezeOn(a, UPLOAD, 0);
    await fleet.sim.control.clearFaults();
    expect(
      dataOf(await Job.fromId(uploads(), jobId))?.step,
      'frozen after its upload was answered: the race this test sets up did not happen',
    ).toBe('stage');
    // The new owner sends the file again, into the record the frozen worker created.
    const { watch, frozenMs, job, ended, d } = await takeOverThenWake(
      a,
      jobId,
      stoppedAt,
      'the new owner to send the file',
      async () => (await calls(UPLOAD)) >= 2,
    );
    console.log(
      `H1.8 package-upload: frozen ${fmtMs(frozenMs)}; job ${await jobOutcome(job)}; checkpoint changes ${JSON.stringify(watch.seen)}; regressions ${JSON.stringify(watch.regressions())}; stale run ended ${ended}, lost-lock lines ${lostLockLines(a, 'upload').length}; ${UPLOAD} ${await calls(UPLOAD)}, POST /api/v1/packages ${await calls('POST /api/v1/packages')}, package deletes ${d.packageDeletes}`,
    );
    expect(frozenMs).toBeGreaterThan(t.lockExpiresMs.min);
    expect(watch.regressions()).toEqual([]);
    await expectPublished(h, job, file, 3 * MiB);
    expect((job.returnvalue as { transport?: string }).transport).toBe('package-upload');
    await expectNothingHalfDone(h);
    expect(ended).toBe(true);
    expect(lostLockLines(a, 'upload', new RegExp(`"jobId":"${jobId}"`))).toHaveLength(1);
    expect(await calls('POST /api/v1/packages')).toBe(1);
    expect(d).toMatchObject({ packageDeletes: 0 });
  });
});
