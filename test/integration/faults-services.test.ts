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
import { spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { Job } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backoffDelay, DEFAULT_RETRY_BASE_MS } from '../../shared/jamf/backoff.ts';
import { JamfClient } from '../../shared/jamf/client.ts';
import { DEFAULT_RETRIES } from '../../shared/jamf/http.ts';
import type { PartJobData } from '../../shared/queues/jobs.ts';
import { partJobId, QUEUE_PREFIX } from '../../shared/queues/names.ts';
import { MiB } from '../../shared/units.ts';
import { CredentialVault, SECRET_VERIFIER_KEY, vaultKey } from '../../shared/vault.ts';
import { workerNodeFlags } from '../../shared/worker-flags.ts';
import { readWorkerHealth } from '../../worker/fitness.ts';
import { createExporter } from '../../worker/monitor/prometheus.ts';
import { startMonitor } from '../../worker/monitor/server.ts';
import { JAMF_START_TIMEOUT_MS } from '../../worker/preflight.ts';
import { makeFile, ROOT, type Fleet } from '../helpers/fleet.ts';
import { spawnSimulator } from '../helpers/sim.ts';
import {
  expectNothingHalfDone,
  expectPublished,
  fmtMs,
  newJamfClient,
  startHarness,
  type Harness,
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

/**
 * Spawns a worker (the fleet's environment with `extraEnv`) that is expected to refuse to
 * start; resolves with its exit code, its output and how long it ran. Killed past timeoutMs.
 */
async function runUntilExit(
  fleet: Fleet,
  extraEnv: Record<string, string | undefined>,
  timeoutMs = 90_000,
): Promise<{ code: number | null; out: string; ms: number }> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries({ ...process.env, ...fleet.env, ...extraEnv }))
    if (v !== undefined) env[k] = v;
  const started = Date.now();
  const child = spawn(process.execPath, [...workerNodeFlags(), join(ROOT, 'worker/main.ts')], {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr.on('data', (b: Buffer) => (out += b.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const code = await new Promise<number | null>(resolve => child.once('exit', c => resolve(c)));
  clearTimeout(timer);
  return { code, out, ms: Date.now() - started };
}

/** Runs `jcds ARGS` (bin/jcds.js) with `env` only; resolves with its exit code and output. */
async function runCli(
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number | null; out: string; err: string }> {
  const child = spawn(process.execPath, [join(ROOT, 'bin/jcds.js'), ...args], {
    cwd: ROOT,
    env: { PATH: process.env['PATH'] ?? '', HOME: process.env['HOME'] ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr.on('data', (b: Buffer) => (err += b.toString()));
  const code = await new Promise<number | null>(resolve => child.once('exit', c => resolve(c)));
  return { code, out, err };
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

  it('F11b: a worker with a wrong JAMF_CLIENT_SECRET exits 3 at start, takes no job, and the healthy worker publishes everything', async () => {
    const { fleet } = h;
    const files = await Promise.all(
      [0, 1, 2].map(i => makeFile(fleet.dir, `F11 Wrong Creds ${i}.pkg`, 1 * MiB)),
    );
    // The jobs wait in the queue before any worker runs: the bad one would find them first.
    const enq = await h.producer.uploadMany(files.map(f => ({ path: f.path })));
    const bad = await runUntilExit(fleet, { JAMF_CLIENT_SECRET: 'definitely-not-the-secret' });
    const c = await sim().counters();
    console.log(
      `F11b: exit ${bad.code} after ${fmtMs(bad.ms)} (bound ${fmtMs(shortestRetryLoopMs())}) with ${c.tokenRequests} token request(s): ${bad.out.split('\n').find(l => l.startsWith('jcds worker:'))}`,
    );
    expect(bad.code, bad.out).toBe(3);
    expect(bad.out).toMatch(/\[JAMF_AUTH_FAILED\] The worker did not start/);
    expect(bad.out).toMatch(/JAMF_CLIENT_ID and JAMF_CLIENT_SECRET/);
    expect(bad.out).not.toContain('definitely-not-the-secret');
    expect(bad.out).not.toContain('worker ready');
    // A refused token is final: no retry loop, one token request per OAuth path at most.
    expect(bad.ms).toBeLessThan(shortestRetryLoopMs());
    expect(c.tokenRequests).toBeLessThanOrEqual(2);
    for (const e of enq) {
      const job = await Job.fromId(uploads(), e.jobId);
      expect(await job!.getState()).toBe('waiting');
      expect(job!.attemptsStarted).toBe(0);
    }
    await fleet.startWorker();
    for (const [i, e] of enq.entries()) {
      const job = await waitForJobSettled(uploads(), e.jobId, 60_000);
      await expectPublished(h, job, files[i]!, 1 * MiB);
      expect(job.attemptsMade).toBe(1);
      expect(job.attemptsStarted).toBe(1);
    }
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

/**
 * F14: one misconfigured worker cannot break the fleet (issue 13 section 4). Workers that
 * cannot do the fleet's jobs refuse to start (exit 3, before they take a job); a worker
 * whose Jamf credentials stop working at run time hands its job back and stops.
 */
describe('F14: one misconfigured worker cannot break the fleet', () => {
  const OTHER_SECRET = 'another-fleet-secret-0123456789';

  it('F14a: a second worker with a different JCDS_FLEET_SECRET exits 3 before it takes a job; no upload fails', async () => {
    const { fleet } = h;
    // The multipart one (3 parts) shares its vault entry between its part jobs.
    const sizes = [1 * MiB, 1 * MiB, 12 * MiB];
    const files = await Promise.all(
      sizes.map((size, i) => makeFile(fleet.dir, `F14a Upload ${i}.pkg`, size)),
    );
    const good = await fleet.startWorker();
    const enq = await h.producer.uploadMany(files.map(f => ({ path: f.path })));
    const bad = await runUntilExit(fleet, { JCDS_FLEET_SECRET: OTHER_SECRET });
    const line = bad.out.split('\n').find(l => l.startsWith('jcds worker:'));
    console.log(`F14a: the second worker exited ${bad.code} after ${fmtMs(bad.ms)}: ${line}`);
    expect(bad.code, bad.out).toBe(3);
    expect(bad.out).toMatch(
      /\[FLEET_SECRET_MISMATCH\] JCDS_FLEET_SECRET differs from the one this fleet was set up with \(the verifier in Redis, \{jcds\}:vault:verifier, written \d{4}-\d\d-\d\dT[^ ]+ by [^ ]+ \(pid \d+\)\)/,
    );
    expect(bad.out).toMatch(/JCDS_FLEET_SECRET_PREVIOUS.*jcds vault rotate/);
    expect(bad.out).not.toContain('worker ready');
    for (const s of [OTHER_SECRET, fleet.env['JCDS_FLEET_SECRET']!])
      expect(bad.out).not.toContain(s);
    for (const [i, e] of enq.entries()) {
      const job = await waitForJobSettled(uploads(), e.jobId, 60_000);
      await expectPublished(h, job, files[i]!, sizes[i]!);
      expect(job.attemptsMade).toBe(1);
    }
    expect(await uploads().getFailedCount()).toBe(0);
    expect(await parts().getFailedCount()).toBe(0);
    expect(good.proc.exitCode).toBeNull();
  });

  it('F14b: an unreachable JAMF_URL: exit 3 at start naming JAMF_URL and the network error', async () => {
    const { fleet } = h;
    // A port nothing listens on: the simulator's, once closed, would race with reuse; a
    // listener closed at once gives a free port.
    const server = createServer();
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', () => resolve()));
    const port = (server.address() as AddressInfo).port;
    await new Promise<void>(resolve => server.close(() => resolve()));
    const bad = await runUntilExit(fleet, { JAMF_URL: `http://127.0.0.1:${port}` });
    const line = bad.out.split('\n').find(l => l.startsWith('jcds worker:'));
    console.log(`F14b: exit ${bad.code} after ${fmtMs(bad.ms)}: ${line}`);
    expect(bad.code, bad.out).toBe(3);
    expect(bad.out).toMatch(/\[JAMF_UNREACHABLE\] The worker did not start: Cannot reach Jamf Pro/);
    expect(bad.out).toContain(`127.0.0.1:${port}`);
    expect(bad.out).toMatch(/ECONNREFUSED/);
    expect(bad.out).toMatch(/Check JAMF_URL/);
    expect(bad.out).not.toContain('worker ready');
    expect(bad.out).not.toContain(fleet.env['JAMF_CLIENT_SECRET']!);
    // A refused connection is retried with backoff, within the check's own deadline.
    expect(bad.ms).toBeLessThan(JAMF_START_TIMEOUT_MS + SLACK_MS);
  });

  it('F14c: rotation: a worker with the new secret and the previous one joins; `jcds vault rotate` re-encrypts; a worker with only the old secret is then refused; uploads go on', async () => {
    const { fleet } = h;
    const OLD = fleet.env['JCDS_FLEET_SECRET']!;
    const NEW = 'the-rotated-fleet-secret-0123456789';
    const client = fleet.redis.client();
    try {
      const a = await fleet.startWorker(); // the fleet, on OLD
      const f1 = await makeFile(fleet.dir, 'F14c Before.pkg', 12 * MiB);
      const j1 = await h.producer.upload({ path: f1.path });
      await expectPublished(h, await waitForJobSettled(uploads(), j1.jobId, 60_000), f1, 12 * MiB);
      // Rolling restart: B has both secrets; A leaves.
      const b = await fleet.startWorker({
        JCDS_FLEET_SECRET: NEW,
        JCDS_FLEET_SECRET_PREVIOUS: OLD,
      });
      expect(b.logs()).toMatch(
        /"matchedVariable":"JCDS_FLEET_SECRET_PREVIOUS".*fleet secret matches/,
      );
      await a.kill('SIGTERM');
      // An upload in flight holds an entry sealed with OLD (the fleet's secret until the rotation).
      const inFlight = new CredentialVault({
        redis: client,
        secret: OLD,
        renew: async () => {
          throw new Error('not renewed in this test');
        },
      });
      const held = await inFlight.put('F14c-in-flight', {
        accessKeyId: 'ASIAF14CINFLIGHT0000',
        secretAccessKey: 'f14c-secret-access-key',
        sessionToken: 'f14c-session-token',
        expiration: Date.now() + 600_000,
        region: 'us-east-1',
        bucketName: 'bucket',
        path: 'jcds/',
      });
      const f2 = await makeFile(fleet.dir, 'F14c During.pkg', 12 * MiB);
      const j2 = await h.producer.upload({ path: f2.path });
      await expectPublished(h, await waitForJobSettled(uploads(), j2.jobId, 60_000), f2, 12 * MiB);

      const rotate = await runCli(['vault', 'rotate'], {
        ...fleet.env,
        JCDS_FLEET_SECRET: NEW,
        JCDS_FLEET_SECRET_PREVIOUS: OLD,
      });
      console.log(`F14c: jcds vault rotate exited ${rotate.code}: ${rotate.err.trim()}`);
      expect(rotate.code, rotate.err).toBe(0);
      expect(rotate.err).toMatch(/The fleet secret is now JCDS_FLEET_SECRET/);
      expect(rotate.err).toMatch(/re-encrypted: [1-9]/);
      for (const s of [OLD, NEW]) expect(rotate.err + rotate.out).not.toContain(s);
      const sealed = (await client.get(`${QUEUE_PREFIX}:vault:F14c-in-flight`))!;
      expect(sealed.split('.')[1]).toBe(vaultKey(NEW).id);
      const reader = new CredentialVault({
        redis: client,
        secret: NEW,
        renew: async () => {
          throw new Error('not renewed in this test');
        },
      });
      expect((await reader.get('F14c-in-flight')).accessKeyId).toBe(held.accessKeyId);

      // Only the old secret: refused, told the fleet rotated.
      const stale = await runUntilExit(fleet, {});
      const line = stale.out.split('\n').find(l => l.startsWith('jcds worker:'));
      console.log(`F14c: a worker with only the old secret exited ${stale.code}: ${line}`);
      expect(stale.code, stale.out).toBe(3);
      expect(stale.out).toMatch(
        /\[FLEET_SECRET_MISMATCH\] JCDS_FLEET_SECRET is the secret this fleet used before its rotation/,
      );
      expect(stale.out).not.toContain('worker ready');
      // Only the new secret: joins. B (both) writes with NEW now; uploads go on.
      await fleet.startWorker({ JCDS_FLEET_SECRET: NEW });
      const f3 = await makeFile(fleet.dir, 'F14c After.pkg', 12 * MiB);
      const j3 = await h.producer.upload({ path: f3.path });
      const job3 = await waitForJobSettled(uploads(), j3.jobId, 60_000);
      await expectPublished(h, job3, f3, 12 * MiB);
      expect(job3.attemptsMade).toBe(1);
      expect(await uploads().getFailedCount()).toBe(0);
      for (const w of fleet.workers) for (const s of [OLD, NEW]) expect(w.logs()).not.toContain(s);
    } finally {
      // The next tests start workers with the fleet's usual secret: forget this fleet's.
      await client.del(SECRET_VERIFIER_KEY);
      client.disconnect();
    }
  });
});

/**
 * F15: credentials revoked at run time. Its own fleet: OAuth tokens of 3 s (the simulator's
 * --oauth-ttl), so the worker meets the rotated client secret within one token lifetime.
 */
describe('F15: a worker whose Jamf credentials stop working at run time', () => {
  const TOKEN_TTL_S = 3;
  let h2: Harness;
  beforeAll(async () => {
    h2 = await startHarness({ simArgs: ['--oauth-ttl', String(TOKEN_TTL_S)] });
  });
  afterAll(async () => {
    await h2?.close();
  });

  it('F15: stops taking jobs, reports unhealthy, and the job it held goes back and is published by a healthy worker with no failed attempt', async () => {
    const { fleet } = h2;
    const q = fleet.queue('upload');
    // Jamf processes a package upload 20 s after it (refresh-inventory does not hurry it,
    // as it does a JCDS object): the job sits in `finalize`, polling Jamf, when the secret is
    // rotated.
    const env = { JCDS_TRANSPORT: 'package-upload' };
    const a = await fleet.startWorker(env);
    await fleet.sim.control.setSettings({ processingMs: 20_000 });
    const f1 = await makeFile(fleet.dir, 'F15 Held.pkg', 1 * MiB);
    const j1 = await h2.producer.upload({ path: f1.path });
    await waitUntil(
      async () => (await Job.fromId(q, j1.jobId))?.data.step === 'finalize',
      'the job at finalize',
      60_000,
    );
    const rotatedAt = Date.now();
    const newSecret = await fleet.sim.control.rotateClientSecret();
    // The token in hand works until it expires; the next token request is refused.
    await waitUntil(
      () => a.logs().includes('worker unhealthy'),
      'worker A unhealthy',
      60_000,
    ).catch((err: Error) => {
      throw new Error(`${err.message}; worker A's last lines:\n${a.logs().slice(-3_000)}`);
    });
    const noticedMs = Date.now() - rotatedAt;
    // The held job is back in the queue: not failed, no attempt used.
    const back = await waitUntil(
      async () => ((await q.getJobState(j1.jobId)) === 'waiting' ? true : undefined),
      'the held job back in wait',
      10_000,
    );
    expect(back).toBe(true);
    const held = (await Job.fromId(q, j1.jobId))!;
    expect(held.attemptsMade).toBe(0);
    expect(held.failedReason).toBeUndefined();
    expect(held.data.step).toBe('finalize');
    console.log(
      `F15: A noticed ${fmtMs(noticedMs)} after the rotation (bound ${fmtMs(TOKEN_TTL_S * 1000 + 5_000 + SLACK_MS)}); job back in wait with attemptsMade ${held.attemptsMade}`,
    );
    // Bound: the token in hand lasts at most its lifetime; finalize polls at most every 5 s.
    expect(noticedMs).toBeLessThan(TOKEN_TTL_S * 1000 + 5_000 + SLACK_MS);
    // Reports unhealthy: its health record in Redis, the log line naming the variables.
    const client = fleet.redis.client();
    try {
      const health = await readWorkerHealth(client);
      const mine = health.find(r => r.pid === a.pid);
      expect(mine).toMatchObject({ state: 'unhealthy', code: 'JAMF_AUTH_FAILED' });
      expect(mine!.fix).toMatch(/JAMF_CLIENT_ID\/JAMF_CLIENT_SECRET/);
      // And the monitor's /metrics exports it.
      const metrics = await createExporter(client, []).metrics();
      expect(metrics).toMatch(/^jcds_workers\{state="unhealthy",code="JAMF_AUTH_FAILED"\} 1$/m);
      expect(a.logs()).toMatch(
        /"code":"JAMF_AUTH_FAILED".*worker unhealthy: it takes no more jobs/,
      );
      // It stays up, paused: a new job is not taken by it.
      const f2 = await makeFile(fleet.dir, 'F15 After.pkg', 1 * MiB);
      const j2 = await h2.producer.upload({ path: f2.path });
      expect(a.proc.exitCode).toBeNull();

      // A healthy worker, with the new secret, publishes both.
      await fleet.sim.control.setSettings({ processingMs: 0 });
      const bStarted = Date.now();
      const b = await fleet.startWorker({ ...env, JAMF_CLIENT_SECRET: newSecret });
      await h2.jamf.close();
      h2.jamf = new JamfClient({
        baseUrl: fleet.sim.info.jamfUrl,
        auth: { kind: 'oauth', id: fleet.sim.info.clientId, secret: newSecret },
      });
      const done1 = await waitForJobSettled(q, j1.jobId, 90_000);
      await expectPublished(h2, done1, f1, 1 * MiB);
      expect(done1.attemptsMade).toBe(1); // the completion only: no failed attempt
      expect(done1.stacktrace ?? []).toEqual([]);
      // A handed it back on JAMF_AUTH_FAILED (and, when BullMQ's fetch that was already
      // blocked as A paused gave it the job again, untouched as WORKER_UNHEALTHY).
      const handedBack = a
        .logs()
        .split('\n')
        .filter(l => l.includes('handed back to the queue'));
      expect(handedBack[0]).toMatch(/"code":"JAMF_AUTH_FAILED"/);
      expect(handedBack[0]).toContain(`"jobId":"${j1.jobId}"`);
      for (const l of handedBack.slice(1)) expect(l).toMatch(/"code":"WORKER_UNHEALTHY"/);
      console.log(
        `F15: job 1 published by B ${fmtMs(Date.now() - bStarted)} after B started; attemptsMade ${done1.attemptsMade}, attemptsStarted ${done1.attemptsStarted}; A handed it back ${handedBack.length} time(s) (${handedBack.length - 1} untouched)`,
      );
      const done2 = await waitForJobSettled(q, j2.jobId, 90_000);
      await expectPublished(h2, done2, f2, 1 * MiB);
      expect(done2.attemptsMade).toBe(1);
      // A, paused, did no work for job 2: at most handed it back untouched.
      for (const l of a
        .logs()
        .split('\n')
        .filter(x => x.includes(`"jobId":"${j2.jobId}"`)))
        expect(l).toMatch(/handed back to the queue.*|"code":"WORKER_UNHEALTHY"/);
      expect(await q.getFailedCount()).toBe(0);
      const both = await createExporter(client, []).metrics();
      expect(both).toMatch(/^jcds_workers\{state="healthy",code=""\} 1$/m);
      expect(both).toMatch(/^jcds_workers\{state="unhealthy",code="JAMF_AUTH_FAILED"\} 1$/m);
      // The monitor's /healthz counts them (no code, no host: it answers without auth).
      const monitor = await startMonitor({ redisUrl: fleet.redis.url, host: '127.0.0.1', port: 0 });
      try {
        // Its probe connection to Redis comes up just after the start.
        const health = await waitUntil(
          async () => {
            const h = (await (await fetch(`${monitor.url}/healthz`)).json()) as Record<
              string,
              unknown
            >;
            return h['redis'] === 'up' ? h : undefined;
          },
          "the monitor's /healthz to see Redis",
          10_000,
        );
        expect(health).toMatchObject({
          status: 'warning',
          redis: 'up',
          workers: { healthy: 1, unhealthy: 1 },
          warning: expect.stringMatching(/1 worker process\(es\) stopped taking jobs/),
        });
        expect(JSON.stringify(health)).not.toMatch(/JAMF_AUTH_FAILED|pid|host/);
      } finally {
        await monitor.close();
      }
      for (const w of [a, b]) {
        expect(w.logs()).not.toContain(newSecret);
        expect(w.logs()).not.toContain(fleet.env['JAMF_CLIENT_SECRET']!);
      }
      // SIGTERM: the paused worker stops cleanly and its health record goes with it.
      await a.kill('SIGTERM');
      expect(a.proc.exitCode).toBe(0);
      expect((await readWorkerHealth(client)).some(r => r.pid === a.pid)).toBe(false);
    } finally {
      client.disconnect();
    }
  });
});
