/**
 * Fault tolerance, proven: Jamf Pro and S3 misbehaving under a running fleet. One fleet
 * for the file; each test starts its own worker processes and kills them at the end.
 *
 *   F6  storms: Jamf 429 (Retry-After) and 503 bursts, S3 SlowDown, with part attempts
 *       set to 2 and storms longer than that
 *   F7  S3 credentials expiring again and again mid-upload
 *   F9  a part failing for good, then retried
 *   F13 the S3 side crashing mid-upload
 *   F11 the Jamf token revoked mid-run (Jamf restarted with a new signing key), and wrong
 *       Jamf credentials failing fast
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Job } from 'bullmq';
import { describe, expect, it } from 'vitest';
import { backoffDelay, DEFAULT_RETRY_BASE_MS } from '../../shared/jamf/backoff.ts';
import { DEFAULT_RETRIES } from '../../shared/jamf/http.ts';
import type { PartJobData } from '../../shared/queues/jobs.ts';
import { partJobId } from '../../shared/queues/names.ts';
import { MiB } from '../../shared/units.ts';
import { makeFile } from '../helpers/fleet.ts';
import { spawnSimulator } from '../helpers/sim.ts';
import {
  expectNothingHalfDone,
  expectPublished,
  fmtMs,
  newJamfClient,
  SLACK_MS,
  useHarness,
  sumParts,
  waitForJobSettled,
  waitUntil,
} from '../helpers/faults.ts';

const h = useHarness({ perTest: true });

/** The least time a Jamf call that retried DEFAULT_RETRIES times spends in its backoffs. */
function shortestRetryLoopMs(): number {
  let ms = 0;
  for (let retry = 1; retry <= DEFAULT_RETRIES; retry++)
    ms += backoffDelay(retry, { baseMs: DEFAULT_RETRY_BASE_MS, random: () => 0 });
  return ms;
}

const sim = () => h.fleet.sim.control;
const uploads = () => h.fleet.queue('upload');
const parts = () => h.fleet.queue('upload-part');

describe('Jamf and S3 faults', () => {
  it('F6: 429/503 storms from Jamf and SlowDown from S3: the fleet backs off and rate-limits itself; no attempt is used up', async () => {
    const { fleet } = h;
    const env = { JCDS_PART_ATTEMPTS: '2' };
    await fleet.startWorker(env);
    await fleet.startWorker(env);
    const big = await makeFile(fleet.dir, 'F6 Storm Large.pkg', 30 * MiB); // 6 parts
    const small = await makeFile(fleet.dir, 'F6 Storm Small.pkg', 1 * MiB);
    // Jamf: longer than one call's own retries (1 + 5) with at most 2 calls in flight.
    const storm = {
      jamf429Count: 14,
      jamf429RetryAfterSeconds: 1,
      jamf503Count: 14,
      s3SlowDownCount: 26,
    };
    await sim().setFaults({
      jamf429Count: storm.jamf429Count,
      jamf429RetryAfterSeconds: storm.jamf429RetryAfterSeconds,
      jamf503Count: storm.jamf503Count,
      s3BytesPerSecond: 4 * MiB,
    });
    const started = Date.now();
    // S3: SlowDown for the parts, once the multipart upload exists. 26 SlowDowns on 6 parts
    // is more than their budget: 2 attempts × 2 SDK tries each. The part queue is paused
    // until the storm is armed: a part sent before (the parts are queued as the step turns to
    // `complete`, and workers take them at once) would not meet it, and it would fall on
    // other calls instead. Not a race with the test's polling any more.
    await parts().pause();
    let enq;
    try {
      enq = await h.producer.uploadMany([big, small].map(f => ({ path: f.path })));
      const id = enq[0]!.jobId;
      await waitUntil(
        async () => (await uploads().getJob(id))?.data.step === 'complete',
        'the multipart upload to be created',
        90_000,
        20,
      );
      await sim().setFaults({ s3SlowDownCount: storm.s3SlowDownCount });
    } finally {
      await parts().resume();
    }

    // Watch the queues' rate limits while the storm lasts. A part's SlowDown rate-limits its
    // queue for throttleMs = 2 s (worker/processors/upload-part.ts), far longer than a round
    // of this loop (100 ms and three reads): no limit falls between two looks.
    let maxPartLimitMs = 0;
    let maxUploadLimitMs = 0;
    const watching = (async () => {
      while (Date.now() - started < 120_000) {
        maxPartLimitMs = Math.max(maxPartLimitMs, await parts().getRateLimitTtl());
        maxUploadLimitMs = Math.max(maxUploadLimitMs, await uploads().getRateLimitTtl());
        const f = await sim().faults();
        if (!f.jamf429Count && !f.jamf503Count && !f.s3SlowDownCount) return;
        await sleep(100);
      }
    })();
    const jobs = [];
    for (const e of enq) jobs.push(await waitForJobSettled(uploads(), e.jobId, 150_000));
    const elapsed = Date.now() - started;
    await watching;
    const left = await sim().faults();
    const c = await sim().counters();
    await sim().clearFaults();
    const throttled = fleet.workers
      .map(w => (w.logs().match(/JAMF_RATE_LIMITED|JAMF_UNAVAILABLE|S3_SLOW_DOWN/g) ?? []).length)
      .reduce((x, y) => x + y, 0);
    console.log(
      `F6: storm of ${storm.jamf429Count}×429 (Retry-After ${storm.jamf429RetryAfterSeconds} s), ${storm.jamf503Count}×503, ${storm.s3SlowDownCount}×SlowDown absorbed in ${fmtMs(elapsed)}; UploadPart calls ${c.calls['UploadPart']} for 6 parts; ${throttled} job-level throttle events logged; queue rate limits seen: upload-part ${maxPartLimitMs} ms, upload ${maxUploadLimitMs} ms; attempts made: ${jobs.map(j => j.attemptsMade).join(',')}`,
    );

    await expectPublished(h, jobs[0]!, big, 30 * MiB);
    await expectPublished(h, jobs[1]!, small, 1 * MiB);
    await expectNothingHalfDone(h);
    // The storm was spent in full…
    expect(left.jamf429Count ?? 0).toBe(0);
    expect(left.jamf503Count ?? 0).toBe(0);
    expect(left.s3SlowDownCount ?? 0).toBe(0);
    // …it reached the jobs (the queues were rate-limited) and was longer than a part's
    // budget: 6 parts × 2 attempts × 2 SDK tries = 24 UploadParts at most if throttling
    // used attempts up…
    // (The Jamf storm is mostly absorbed inside the Jamf client, which waits out Retry-After
    // before the job sees it, so whether the upload queue itself gets rate-limited depends on
    // timing: its limit is reported above, not asserted. The part queue's always is.)
    expect(maxPartLimitMs).toBeGreaterThan(0);
    expect(c.calls['UploadPart']).toBeGreaterThan(6 * 2 * 2);
    // …yet every job and every part finished on its first attempt.
    for (const job of jobs) expect(job.attemptsMade).toBe(1);
    for (let n = 1; n <= 6; n++) {
      const child = await Job.fromId<PartJobData>(parts(), `${enq[0]!.jobId}-p${n}`);
      expect(await child?.getState()).toBe('completed');
      expect(child?.attemptsMade).toBe(1);
    }
  });

  it('F7: credentials expired 4 times during one upload: renewed each time, same UploadId, published', async () => {
    const { fleet } = h;
    // One part at a time, 1.25 s each: every expiry is met by the next part's request.
    await fleet.startWorker({ JCDS_PART_CONCURRENCY: '1' });
    await sim().setFaults({ s3BytesPerSecond: 4 * MiB });
    const file = await makeFile(fleet.dir, 'F7 Expiring Credentials.pkg', 40 * MiB);
    const { jobId } = await h.producer.upload({ path: file.path });
    await waitUntil(
      async () => ((await sim().counters()).calls['UploadPart'] ?? 0) >= 1,
      'parts to start',
    );
    const expirations = 4;
    for (let i = 1; i <= expirations; i++) {
      await sim().expireCredentials();
      await waitUntil(
        async () => (await sim().counters()).credentialRenewals >= i,
        `renewal ${i}`,
        15_000,
      );
    }
    const job = await waitForJobSettled(uploads(), jobId, 90_000);
    await sim().clearFaults();
    await expectPublished(h, job, file, 40 * MiB);
    await expectNothingHalfDone(h);
    const c = await sim().counters();
    console.log(
      `F7: ${expirations} expirations → ${c.credentialRenewals} renewals; CreateMultipartUpload ${c.calls['CreateMultipartUpload']}; UploadPart requests ${c.calls['UploadPart']} (${sumParts(c.uploadPartByNumber)} accepted) for 8 parts; job attempts ${job.attemptsMade}`,
    );
    expect(c.calls['CreateMultipartUpload']).toBe(1);
    expect(c.calls['POST /api/v1/jcds/files']).toBe(1);
    // Renewed once per expiry for the whole upload, not once per part; no attempt used.
    expect(c.credentialRenewals).toBeGreaterThanOrEqual(expirations);
    expect(c.credentialRenewals).toBeLessThanOrEqual(expirations + 1);
    expect(job.attemptsMade).toBe(1);
  });

  it('F9: a part failing for good: the parent is not stuck, the job fails with the part’s reason, and a retry resumes it', async () => {
    const { fleet } = h;
    await fleet.startWorker({ JCDS_PART_ATTEMPTS: '2' });
    await sim().setFaults({ failPartNumbers: [3], s3BytesPerSecond: 2 * MiB });
    const file = await makeFile(fleet.dir, 'F9 Broken Part.pkg', 40 * MiB);
    const ok = await makeFile(fleet.dir, 'F9 Healthy Neighbour.pkg', 2 * MiB);
    const started = Date.now();
    const [bad, good] = await h.producer.uploadMany([{ path: file.path }, { path: ok.path }]);
    const job = await waitForJobSettled(uploads(), bad!.jobId, 60_000);
    const failedAfter = Date.now() - started;
    expect(await job.getState()).toBe('failed');
    expect(job.failedReason).toMatch(/UploadPart 3 of F9 Broken Part\.pkg/);
    expect(job.failedReason).toMatch(/InternalError/);
    const part3 = await Job.fromId(parts(), partJobId(bad!.jobId, 3));
    expect(await part3?.getState()).toBe('failed');
    const afterPartMs = job.finishedOn! - part3!.finishedOn!;
    // Nothing keeps running for it: no part waiting, delayed or active.
    await waitUntil(
      async () => {
        const counts = await parts().getJobCounts('wait', 'delayed', 'active', 'prioritized');
        return Object.values(counts).every(n => n === 0);
      },
      'the part queue to be empty',
      30_000,
    );
    const healthy = await waitForJobSettled(uploads(), good!.jobId, 30_000);
    await sim().clearFaults();
    await expectPublished(h, healthy, ok, 2 * MiB);
    expect(await h.jamf.findPackageByFileName('F9 Broken Part.pkg')).toBeUndefined();
    // Kept for a retry (issue 15): the multipart upload stays open with the parts S3 holds,
    // and nothing is published.
    expect(await sim().listMultipartUploads()).toHaveLength(1);
    expect(job.data).toMatchObject({ step: 'complete', resume: true });
    const c = await sim().counters();
    console.log(
      `F9: failed ${fmtMs(failedAfter)} after enqueue, ${fmtMs(afterPartMs)} after part 3 failed for good (bound ${fmtMs(SLACK_MS)}); UploadPart 3 tried ${c.uploadPartByNumber['3']} times; AbortMultipartUpload ${c.calls['AbortMultipartUpload'] ?? 0}; reason: ${job.failedReason}`,
    );
    // Retried once the fault is gone, it resumes and publishes; then nothing is half-done.
    await job.retry('failed', { resetAttemptsMade: true });
    const resumed = await waitForJobSettled(uploads(), bad!.jobId, 60_000);
    expect(resumed.failedReason, resumed.failedReason).toBeFalsy();
    await expectPublished(h, resumed, file, 40 * MiB);
    await expectNothingHalfDone(h);
    // Not stuck: the parent fails as soon as part 3 has failed for good. No timer stands in
    // between (continueParentOnFailure moves the parent to wait at once; it then aborts the
    // upload and fails), so the bound is the slack; BullMQ's own timestamps, no polling.
    expect(afterPartMs).toBeLessThan(SLACK_MS);
  });

  it('F13: the S3 side crashes mid-upload (down 3 s): retries carry the upload through', async () => {
    const { fleet } = h;
    await fleet.startWorker({ JCDS_RETRY_DELAY: '500' });
    await sim().setFaults({ s3BytesPerSecond: 2 * MiB });
    const file = await makeFile(fleet.dir, 'F13 S3 Crash.pkg', 40 * MiB);
    const { jobId } = await h.producer.upload({ path: file.path });
    await waitUntil(
      async () => ((await sim().counters()).calls['UploadPart'] ?? 0) >= 5,
      '5 parts started',
    );
    const before = await sim().counters();
    const crashAt = Date.now();
    await sim().restartS3(3_000);
    const backAt = Date.now();
    await sim().clearFaults();
    const job = await waitForJobSettled(uploads(), jobId, 90_000);
    const doneAt = Date.now();
    await expectPublished(h, job, file, 40 * MiB);
    await expectNothingHalfDone(h);
    const c = await sim().counters();
    const resent = sumParts(c.uploadPartByNumber) - 8;
    console.log(
      `F13: S3 down ${fmtMs(backAt - crashAt)} with ${before.calls['UploadPart']} parts started; upload done ${fmtMs(doneAt - backAt)} after S3 came back; ${resent} UploadPart requests beyond one per part`,
    );
    expect(c.calls['CreateMultipartUpload']).toBe(1);
  });

  it('F11b: wrong Jamf credentials fail fast, once per job, with no retry storm', async () => {
    const { fleet } = h;
    const w = await fleet.startWorker({ JAMF_CLIENT_SECRET: 'definitely-not-the-secret' });
    const files = await Promise.all(
      [0, 1, 2].map(i => makeFile(fleet.dir, `F11 Wrong Creds ${i}.pkg`, 1 * MiB)),
    );
    const started = Date.now();
    const enq = await h.producer.uploadMany(files.map(f => ({ path: f.path })));
    const jobs = [];
    for (const e of enq) jobs.push(await waitForJobSettled(uploads(), e.jobId, 30_000));
    const elapsed = Date.now() - started;
    const c = await sim().counters();
    for (const job of jobs) {
      expect(await job.getState()).toBe('failed');
      expect(job.failedReason).toMatch(/JAMF_AUTH_FAILED/);
      expect(job.failedReason).toMatch(/JAMF_CLIENT_ID|client/i);
      expect(job.failedReason).not.toContain('definitely-not-the-secret');
      expect(job.attemptsMade).toBe(1);
    }
    expect(w.logs()).not.toContain('definitely-not-the-secret');
    console.log(
      `F11b: 3 jobs failed in ${fmtMs(elapsed)} (bound ${fmtMs(shortestRetryLoopMs())}) with ${c.tokenRequests} token requests; reason: ${jobs[0]!.failedReason}`,
    );
    expect(c.tokenRequests).toBeLessThanOrEqual(2 * jobs.length);
    // Fast: quicker than the shortest retry loop of one Jamf call, i.e. the floors of its
    // backoff delays (shared/jamf/backoff.ts: half of 500 ms × 2^(n-1), n = 1..5), 7.75 s.
    // A permanent failure waits for nothing; a job that waited out its retries could not pass.
    expect(elapsed).toBeLessThan(shortestRetryLoopMs());
    for (const f of files)
      expect(await h.jamf.findPackageByFileName(f.path.split('/').pop()!)).toBeUndefined();
  });

  it('F11: the Jamf token revoked mid-run (Jamf restarted with a new signing key): the worker re-authenticates and carries on', async () => {
    const { fleet } = h;
    const w = await fleet.startWorker();
    const first = await makeFile(fleet.dir, 'F11 Before Revocation.pkg', 1 * MiB);
    const a = await h.producer.upload({ path: first.path });
    await expectPublished(h, await waitForJobSettled(uploads(), a.jobId, 30_000), first, 1 * MiB);
    expect((await sim().counters()).tokenRequests).toBeGreaterThanOrEqual(1);

    // Every token issued so far becomes invalid: restart Jamf on the same ports and data
    // dir, without the key that signed them.
    const old = fleet.sim;
    const jamfPort = Number(new URL(old.info.jamfUrl).port);
    const s3Port = Number(new URL(old.info.s3Endpoint).port);
    await old.kill('SIGKILL');
    rmSync(join(old.dataDir, 'jamf', 'token-secret'), { force: true });
    rmSync(join(old.dataDir, 'jamf', 'revoked.json'), { force: true });
    fleet.sim = await spawnSimulator({ dataDir: old.dataDir, port: jamfPort, s3Port });
    await h.jamf.close();
    h.jamf = newJamfClient(fleet);

    const second = await makeFile(fleet.dir, 'F11 After Revocation.pkg', 12 * MiB); // multipart
    const b = await h.producer.upload({ path: second.path });
    const job = await waitForJobSettled(uploads(), b.jobId, 60_000);
    await expectPublished(h, job, second, 12 * MiB);
    await expectNothingHalfDone(h);
    const c = await sim().counters();
    console.log(
      `F11: after the revocation the worker made ${c.tokenRequests} token request(s) (the test's own client included); job ${job.attemptsMade} attempt(s)`,
    );
    expect(job.attemptsMade).toBe(1); // re-authenticated inside the call, no attempt used
    expect(c.tokenRequests).toBeGreaterThanOrEqual(2); // the worker's and the test client's
    expect(c.tokenRequests).toBeLessThanOrEqual(4);
    expect(w.proc.exitCode).toBeNull();
  });
});
