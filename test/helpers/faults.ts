/**
 * Shared by the fault-tolerance suites (test/integration/faults*.test.ts): a fleet with a
 * producer and an independent Jamf client, polling that survives a Redis outage, and the
 * checks every fault ends with:
 *   - each accepted job is published exactly once with the right bytes (the hashes Jamf
 *     reports, computed by the simulator from the stored object, equal the local ones),
 *     or has failed with a clear reason;
 *   - nothing is half-done: no open multipart upload, no package without its file, no
 *     duplicate package;
 *   - no secret in the worker logs.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Job, type Queue } from 'bullmq';
import { afterAll, afterEach, beforeAll, beforeEach, expect } from 'vitest';
import { JamfClient } from '../../shared/jamf/client.ts';
import type { PartResult, UploadResult } from '../../shared/queues/jobs.ts';
import { Producer } from '../../producer/producer.ts';
import {
  startFleet,
  waitForJob,
  type Fleet,
  type FleetOptions,
  type WorkerProcess,
} from './fleet.ts';

export interface Harness {
  fleet: Fleet;
  producer: Producer;
  jamf: JamfClient;
  close(): Promise<void>;
}

/** Tuning shared by the fault suites: small parts, fast retries, the s3 transport. */
export const FAULT_ENV: Record<string, string> = {
  JCDS_TRANSPORT: 's3',
  JCDS_PART_SIZE: '5MiB',
  JCDS_SPLIT_THRESHOLD: '8MiB',
  JCDS_PART_CONCURRENCY: '4',
  JCDS_RETRY_DELAY: '200',
};

export async function startHarness(options: FleetOptions = {}): Promise<Harness> {
  const fleet = await startFleet({ ...options, env: { ...FAULT_ENV, ...options.env } });
  const producer = await Producer.connect({ redisUrl: fleet.redis.url });
  const jamf = newJamfClient(fleet);
  return {
    fleet,
    producer,
    jamf,
    close: async () => {
      await producer.close().catch(() => undefined);
      await jamf.close().catch(() => undefined);
      await fleet.close();
    },
  };
}

/**
 * Registers a suite's hooks and returns its harness, filled in by `beforeAll`: one fleet
 * per test file, closed after it. With `perTest`, the simulator's faults and counters are
 * cleared before each test, and after each one no secret is in the logs, the workers are
 * killed and the faults cleared.
 */
export function useHarness(options: { perTest?: boolean } = {}): Harness {
  const h = {} as Harness;
  beforeAll(async () => {
    Object.assign(h, await startHarness());
  });
  afterAll(async () => {
    if (h.fleet) await h.close();
  });
  if (options.perTest) {
    beforeEach(async () => {
      await h.fleet.sim.control.clearFaults();
      await h.fleet.sim.control.resetCounters();
    });
    afterEach(async () => {
      expectNoSecretsInLogs(h.fleet);
      await killWorkers(h.fleet);
      await h.fleet.sim.control.clearFaults();
    });
  }
  return h;
}

export function newJamfClient(fleet: Fleet): JamfClient {
  return new JamfClient({
    baseUrl: fleet.sim.info.jamfUrl,
    auth: { kind: 'oauth', id: fleet.sim.info.clientId, secret: fleet.sim.info.clientSecret },
  });
}

/**
 * The one allowance every upper bound of the fault suites adds to what the mechanism
 * allows: scheduling on a loaded 2-core machine (timers firing late, a process woken by
 * SIGCONT or spawned catching up, Redis and HTTP round trips, the test's own polling, at most
 * 100 ms a round). A bound is never "what passed here": it is the mechanism's time plus this.
 * Sized on the largest excess over a mechanism's worst case seen with a load average of 10
 * on 2 cores (F1's takeover: 0.8 s past lockDuration + 2 stalledIntervals), with room to
 * spare; the bounds stay at or below the fixed numbers they replaced (all but F2b: 5.3 s
 * for 5 s).
 */
export const SLACK_MS = 5_000;

/**
 * BullMQ 6's `runRetryDelay` default (node_modules/bullmq/dist/esm/classes/worker.js; the
 * fleet does not set it): after a Redis call of the fetch loop failed on a lost connection,
 * a worker waits this long before it fetches again.
 */
export const BULLMQ_RUN_RETRY_DELAY_MS = 15_000;

/**
 * The lock timing of the fleet's workers (test/helpers/fleet.ts sets JCDS_LOCK_DURATION and
 * JCDS_STALLED_INTERVAL), as BullMQ 6 applies it:
 * - Renewal (worker.js, lock-manager.js): `lockRenewTime` defaults to lockDuration/2. The
 *   LockManager's timer fires every lockRenewTime/2 and extends a job whose last extension is
 *   more than lockRenewTime/2 old: in practice every lockDuration/4, never less often than
 *   every lockRenewTime. A lock set at the last renewal lasts lockDuration, so once a worker
 *   stops (SIGKILL, SIGSTOP) its locks expire between lockDuration - lockRenewTime =
 *   lockDuration/2 and lockDuration later (`lockExpiresMs`), never sooner (timer lateness of
 *   the stopped worker aside, a few ms against the lockDuration/4 it renews at in practice).
 * - Takeover (moveStalledJobsToWait-9.lua): a check runs every stalledInterval, and at most
 *   once per stalledInterval fleet-wide (the `stalled-check` key). It moves back to wait the
 *   jobs of the `stalled` set whose lock is gone, then puts every active job in that set (a
 *   renewal takes it out). So a job whose lock has expired is moved by the first or the second
 *   check after that: within 2 stalledIntervals (`takeoverMs`), once a live worker's checker
 *   runs.
 */
export interface LockTiming {
  lockMs: number;
  stalledMs: number;
  /** BullMQ's lockRenewTime: the longest a live worker's lock goes without renewal. */
  renewMs: number;
  /** When a stopped worker's locks expire, after it stopped. */
  lockExpiresMs: { min: number; max: number };
  /** The longest from a lock's expiry to its job being back in wait (2 checks). */
  takeoverMs: number;
}

export function lockTiming(fleet: Fleet): LockTiming {
  const lockMs = Number(fleet.env['JCDS_LOCK_DURATION']);
  const stalledMs = Number(fleet.env['JCDS_STALLED_INTERVAL']);
  if (!(lockMs > 0) || !(stalledMs > 0))
    throw new Error('the fleet has no JCDS_LOCK_DURATION / JCDS_STALLED_INTERVAL');
  const renewMs = lockMs / 2;
  return {
    lockMs,
    stalledMs,
    renewMs,
    lockExpiresMs: { min: lockMs - renewMs, max: lockMs },
    takeoverMs: 2 * stalledMs,
  };
}

/** A job's lock as a worker held it: the key and the worker's token (its value). */
export interface HeldLock {
  jobId: string;
  key: string;
  token: string;
}

/** The locks of the queue's active jobs now (read them while only one worker runs). */
export async function heldLocks(queue: Queue): Promise<HeldLock[]> {
  const r = await queue.getBackend().client;
  const ids = await r.lrange(queue.toKey('active'), 0, -1);
  const locks: HeldLock[] = [];
  for (const jobId of ids) {
    const key = queue.toKey(`${jobId}:lock`);
    const token = await r.get(key);
    if (token) locks.push({ jobId, key, token });
  }
  return locks;
}

/** True once none of these locks is held by its token any more (expired, or another worker's). */
export async function locksGone(queue: Queue, locks: HeldLock[]): Promise<boolean> {
  if (locks.length === 0) return true;
  const r = await queue.getBackend().client;
  const now = await Promise.all(locks.map(l => r.get(l.key)));
  return now.every((token, i) => token !== locks[i]!.token);
}

/** Polls `fn` until it returns something other than undefined/false. */
export async function waitUntil<T>(
  fn: () => Promise<T | undefined | false> | T | undefined | false,
  what: string,
  timeoutMs = 60_000,
  intervalMs = 50,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(intervalMs);
  }
}

/** Waits until a job is completed or failed (Redis errors meanwhile count as "not yet"). */
export const waitForJobSettled = waitForJob;

export function sumParts(byNumber: Record<string, number>): number {
  return Object.values(byNumber).reduce((a, b) => a + b, 0);
}

/** Part numbers whose part child has completed (its ETag is checkpointed in the parent). */
export async function donePartNumbers(queue: Queue, jobId: string): Promise<Set<number>> {
  const job = await Job.fromId(queue, jobId);
  if (!job) return new Set();
  const values = await job.getChildrenValues<PartResult | { kind: 'hash' }>();
  return new Set(
    Object.values(values)
      .filter((v): v is PartResult => typeof v === 'object' && v !== null && 'partNumber' in v)
      .map(v => v.partNumber),
  );
}

export interface LocalFile {
  path: string;
  md5: string;
  sha3_512: string;
  sha256: string;
}

/**
 * The job completed, and Jamf holds exactly one package of this file name whose stored
 * file has the local bytes (hashes the simulator computed from the stored object).
 */
export async function expectPublished(
  h: Harness,
  job: Job,
  file: LocalFile,
  size: number,
): Promise<UploadResult> {
  expect(job.failedReason, job.failedReason).toBeUndefined();
  expect(await job.getState()).toBe('completed');
  const result = job.returnvalue as UploadResult;
  const fileName = result.fileName;
  // Job data is clear text in Redis and on the dashboard: no credential in it.
  const data = JSON.stringify(job.data);
  expect(data).not.toMatch(/secretAccessKey|sessionToken|accessKeyI[dD]|access_token/);
  for (const secret of [h.fleet.env['JAMF_CLIENT_SECRET'], h.fleet.env['JCDS_FLEET_SECRET']])
    if (secret) expect(data).not.toContain(secret);
  // Verified on the sha256 Jamf computed: the result shows the local SHA-256.
  expect(result.sha256).toBe(file.sha256);
  const same = (await h.jamf.listPackages()).filter(p => p.fileName === fileName);
  expect(
    same.map(p => String(p.id)),
    `packages named ${fileName}`,
  ).toEqual([result.packageId]);
  const pkg = await h.jamf.getPackage(result.packageId);
  expect(pkg.hashType).toBe('SHA3_512');
  expect(pkg.hashValue).toBe(file.sha3_512);
  expect(pkg.sha256).toBe(file.sha256);
  expect(pkg.md5).toBe(file.md5);
  const stored = (await h.jamf.listJcdsFiles()).find(f => f.fileName === fileName);
  expect(stored?.length).toBe(size);
  expect(stored?.md5).toBe(file.md5);
  return result;
}

/** No open multipart upload, no duplicate package, no package without its file. */
export async function expectNothingHalfDone(h: Harness): Promise<void> {
  expect(await h.fleet.sim.control.listMultipartUploads()).toEqual([]);
  const packages = await h.jamf.listPackages();
  const names = packages.map(p => p.fileName);
  expect(names.length, 'duplicate package file names').toBe(new Set(names).size);
  const files = new Set((await h.jamf.listJcdsFiles()).map(f => f.fileName));
  const orphans = packages.filter(p => !files.has(p.fileName)).map(p => p.fileName);
  expect(orphans, 'packages without their file').toEqual([]);
}

/**
 * The fleet's secrets: its configuration (Jamf client secret, fleet secret, the Jamf
 * user's password) and the S3 secret keys and session tokens the simulator has issued so
 * far (its credentials.json).
 */
export function fleetSecrets(fleet: Fleet): string[] {
  let issued: Array<{ secretAccessKey?: string; sessionToken?: string }> = [];
  try {
    const file = join(fleet.sim.info.dataDir, 'credentials.json');
    issued = (JSON.parse(readFileSync(file, 'utf8')) as { credentials: typeof issued }).credentials;
  } catch {
    // None issued yet.
  }
  return [
    fleet.env['JAMF_CLIENT_SECRET'],
    fleet.env['JCDS_FLEET_SECRET'],
    fleet.sim.info.password,
    ...issued.flatMap(c => [c.secretAccessKey, c.sessionToken]),
  ].filter((s): s is string => typeof s === 'string' && s.length >= 8);
}

/** A Jamf bearer token (the simulator's are JWT-shaped). */
export const BEARER_TOKEN = /eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}/;

/** The worker logs hold none of the secrets the fleet was given or was issued. */
export function expectNoSecretsInLogs(
  fleet: Fleet,
  workers: WorkerProcess[] = fleet.workers,
): void {
  const secrets = fleetSecrets(fleet);
  for (const w of workers) {
    const logs = w.logs();
    for (const s of secrets)
      expect(logs.includes(s), `worker ${w.pid} logged a secret`).toBe(false);
    expect(BEARER_TOKEN.exec(logs)?.[0], `worker ${w.pid} logged a bearer token`).toBeUndefined();
    expect(logs).not.toMatch(/x-amz-security-token[:=][A-Za-z0-9%/+]/i);
    expect(logs).not.toMatch(/"(secretAccessKey|sessionToken|access_token)":"(?!\[REDACTED\])/);
  }
}

/** SIGKILLs every worker still running (a SIGSTOPped one too). */
export async function killWorkers(fleet: Fleet): Promise<void> {
  for (const w of fleet.workers) {
    if (w.proc.exitCode === null && w.proc.signalCode === null) {
      try {
        process.kill(w.pid, 'SIGCONT');
      } catch {
        // already gone
      }
    }
  }
  await Promise.all(fleet.workers.map(w => w.kill('SIGKILL')));
  fleet.workers.length = 0;
}

/** Resident set size of a process, in KiB (Linux /proc). */
export function rssKiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
  if (!m?.[1]) throw new Error(`no VmRSS for ${pid}`);
  return Number(m[1]);
}

export function fmtMs(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}
