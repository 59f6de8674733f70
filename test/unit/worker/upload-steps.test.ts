/**
 * The upload step functions (worker/processors/upload/) with fake collaborators: a fake
 * job, fake Jamf calls, a fake multipart engine and part queue, and a fake clock whose
 * sleep advances its time. The file being uploaded is a real file in a temp folder, since
 * the steps check it on disk (checkUploadFile, assertUnchanged).
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UnrecoverableError, WaitingChildrenError } from 'bullmq';
import { afterAll, describe, expect, it, vi } from 'vitest';
import type { Clock } from '../../../shared/clock.ts';
import { AppError, errorCode } from '../../../shared/errors.ts';
import { identityOf } from '../../../shared/file-identity.ts';
import type { JamfPackage } from '../../../shared/jamf/types.ts';
import { createLogger } from '../../../shared/logger.ts';
import type {
  FileHashes,
  MultipartState,
  PartResult,
  UploadAt,
  UploadJobData,
} from '../../../shared/queues/jobs.ts';
import { S3Sessions } from '../../../shared/upload/s3-sessions.ts';
import type { CredentialStore, FencedWriter } from '../../../shared/vault.ts';
import type { JobLock } from '../../../worker/fence.ts';
import type { FleetMetrics } from '../../../worker/metrics.ts';
import { abortMultipart } from '../../../worker/processors/upload/abort.ts';
import { complete, markForResume } from '../../../worker/processors/upload/complete.ts';
import { finalize } from '../../../worker/processors/upload/finalize.ts';
import type {
  PackagesApi,
  PartJobs,
  StepArgs,
  UploadDeps,
  UploadEngine,
  UploadJob,
} from '../../../worker/processors/upload/job.ts';
import { prepare } from '../../../worker/processors/upload/prepare.ts';

const dir = mkdtempSync(join(tmpdir(), 'jcds-upload-steps-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const content = Buffer.from('xar! a tiny package '.repeat(500));
const localHashes: FileHashes = {
  sha256: createHash('sha256').update(content).digest('hex'),
};
/** The local SHA3-512: computed only for a record without sha256 (the fallback). */
const localSha3 = createHash('sha3-512').update(content).digest('hex');
const otherSha3 = createHash('sha3-512').update('other bytes').digest('hex');
const otherSha256 = createHash('sha256').update('other bytes').digest('hex');

/** A real file to upload: its path, size and mtime as the producer enqueued them. */
function packageFile(name = 'Firefox.pkg'): { path: string; size: number; mtimeMs: number } {
  const path = join(dir, `${Math.random().toString(36).slice(2)}-${name}`);
  writeFileSync(path, content);
  const st = statSync(path);
  return { path, size: st.size, mtimeMs: st.mtimeMs };
}

class FakeClock implements Clock {
  t = 1_000_000;
  readonly sleeps: number[] = [];
  now(): number {
    return this.t;
  }
  async sleep(ms: number, signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted();
    this.sleeps.push(ms);
    this.t += ms;
  }
}

/** A method no test expects to be called. */
const unexpected = (name: string) =>
  vi.fn().mockImplementation(() => {
    throw new Error(`unexpected call: ${name}`);
  });

function fakeJamf(over: Partial<PackagesApi> = {}): PackagesApi {
  return {
    findCategoryId: unexpected('findCategoryId'),
    findPackageByFileName: unexpected('findPackageByFileName'),
    getPackage: unexpected('getPackage'),
    createPackage: unexpected('createPackage'),
    updatePackage: unexpected('updatePackage'),
    deletePackage: unexpected('deletePackage'),
    listJcdsFiles: unexpected('listJcdsFiles'),
    uploadPackageFile: unexpected('uploadPackageFile'),
    createJcdsFile: unexpected('createJcdsFile'),
    refreshJcdsInventory: unexpected('refreshJcdsInventory'),
    refreshCdpInventory: unexpected('refreshCdpInventory'),
    ...over,
  };
}

function fakeEngine(over: Partial<UploadEngine> = {}): UploadEngine {
  return {
    sessions: new S3Sessions({ vault: { get: unexpected('vault.get') } }),
    create: unexpected('create'),
    completeOrConfirm: unexpected('completeOrConfirm'),
    abort: unexpected('abort'),
    abortStrays: unexpected('abortStrays'),
    release: unexpected('release'),
    ...over,
  };
}

function fakeParts(over: Partial<PartJobs> = {}): PartJobs {
  return {
    addHash: unexpected('addHash'),
    awaitHash: unexpected('awaitHash'),
    hashFailure: unexpected('hashFailure'),
    removeHash: unexpected('removeHash'),
    addMissingParts: unexpected('addMissingParts'),
    ...over,
  };
}

function fakeVault() {
  const del = vi.fn(async (_name: string, _fence?: FencedWriter): Promise<void> => undefined);
  const vault: CredentialStore = {
    put: unexpected('vault.put'),
    get: unexpected('vault.get'),
    delete: del,
  };
  return Object.assign(vault, { delete: del });
}

function recordingMetrics() {
  const uploadDuration = vi.fn();
  const metrics: FleetMetrics = {
    bytesUploaded: vi.fn(),
    bytesDownloaded: vi.fn(),
    uploadDuration,
    uploadResent: vi.fn(),
    retry: vi.fn(),
    failure: vi.fn(),
    credentialRenewal: vi.fn(),
  };
  return { metrics, uploadDuration };
}

function fakeDeps(over: Partial<UploadDeps> = {}): UploadDeps {
  return {
    config: {
      splitThreshold: 64 * 1024 * 1024,
      partSize: 16 * 1024 * 1024,
      verifyTimeoutMs: 60_000,
    },
    jamf: fakeJamf(),
    engine: fakeEngine(),
    vault: fakeVault(),
    parts: fakeParts(),
    transport: { choose: vi.fn(async () => 's3' as const) },
    metrics: recordingMetrics().metrics,
    clock: new FakeClock(),
    ...over,
  };
}

/** The members of a BullMQ job the upload steps use. */
type JobSurface = Pick<
  UploadJob,
  | 'id'
  | 'data'
  | 'log'
  | 'updateProgress'
  | 'updateData'
  | 'getChildrenValues'
  | 'getIgnoredChildrenFailures'
  | 'moveToWaitingChildren'
  | 'removeUnprocessedChildren'
  | 'queueQualifiedName'
>;

/** bullmq's Job is a class with hundreds of members; the steps use only these. */
function fakeJob(data: UploadJobData, over: Partial<JobSurface> = {}) {
  const log = vi.fn(async (_row: string) => 0);
  const surface: JobSurface = {
    id: 'job-1',
    data,
    queueQualifiedName: 'bull:{jcds}:upload',
    log,
    updateProgress: vi.fn(async () => undefined),
    updateData: vi.fn(async (d: UploadJobData) => {
      surface.data = d;
    }),
    getChildrenValues: vi.fn().mockResolvedValue({}),
    getIgnoredChildrenFailures: vi.fn().mockResolvedValue({}),
    moveToWaitingChildren: vi.fn().mockResolvedValue(false),
    removeUnprocessedChildren: vi.fn(async () => undefined),
    ...over,
  };
  return { job: surface as UploadJob, log };
}

/**
 * The run's hold on the job (worker/fence.ts): held, or `lost` (another worker took the job
 * over: every check and fenced write throws LOCK_LOST, as the fence's script answers).
 */
function fakeLock(lost = false): JobLock & { checks: string[] } {
  const checks: string[] = [];
  const refuse = async (what: string): Promise<void> => {
    checks.push(what);
    if (lost) throw new AppError('LOCK_LOST', `lost the lock: not done: ${what}`);
  };
  return {
    checks,
    held: async () => !lost,
    check: refuse,
    saveData: () => refuse('write the checkpoint'),
    set: key => refuse(`write ${key}`),
    del: key => refuse(`delete ${key}`),
  };
}

function stepArgs(deps: UploadDeps, job: UploadJob, signal?: AbortSignal, lock = fakeLock()) {
  const save = vi.fn(async (_d: UploadJobData) => undefined);
  const args: StepArgs = {
    deps,
    job,
    run: { token: 'lock-token', signal, log: createLogger({ level: 'silent' }), lock },
    save,
  };
  return { args, save, lock };
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => {
      throw new Error('expected a rejection');
    },
    (e: unknown) => e,
  );
}

function jamfPackage(fields: Partial<JamfPackage> & { id: string }): JamfPackage {
  return { packageName: 'Firefox', fileName: 'Firefox.pkg', size: undefined, ...fields };
}

function atPrepare(
  file: { path: string; size: number; mtimeMs: number },
  over: Partial<UploadAt<'prepare'>> = {},
): UploadAt<'prepare'> {
  return {
    step: 'prepare',
    path: file.path,
    fileName: 'Firefox.pkg',
    // The identity recorded at enqueue (the worker compares it before it reads).
    ...identityOf(statSync(file.path), statSync(file.path, { bigint: true })),
    size: file.size,
    mtimeMs: file.mtimeMs,
    ifExists: 'fail',
    package: {},
    requestId: 'req-1',
    ...over,
  };
}

describe('prepare', () => {
  it('fails PACKAGE_EXISTS for ifExists=fail and saves nothing', async () => {
    const file = packageFile();
    const findPackageByFileName = vi.fn(async () => jamfPackage({ id: '17' }));
    const deps = fakeDeps({ jamf: fakeJamf({ findPackageByFileName }) });
    const { job, log } = fakeJob(atPrepare(file));
    const { args, save } = stepArgs(deps, job);
    const err = await rejection(prepare(args, atPrepare(file)));
    expect(err).toBeInstanceOf(AppError);
    expect(err).toMatchObject({ code: 'PACKAGE_EXISTS', retryable: false });
    expect((err as AppError).message).toMatch(/Firefox\.pkg already exists \(id 17\)/);
    expect(findPackageByFileName).toHaveBeenCalledWith('Firefox.pkg');
    expect(save).not.toHaveBeenCalled();
    expect(log).not.toHaveBeenCalled();
  });

  it('goes on to `stage` with the chosen transport and startedAt from the clock', async () => {
    const file = packageFile();
    const clock = new FakeClock();
    clock.t = 1_700_000_000_000;
    const choose = vi.fn(async () => 'package-upload' as const);
    const deps = fakeDeps({
      clock,
      transport: { choose },
      jamf: fakeJamf({ findPackageByFileName: vi.fn(async () => undefined) }),
    });
    const d = atPrepare(file, { transport: 'auto' });
    const { job, log } = fakeJob(d);
    const { args, save } = stepArgs(deps, job);
    const out = await prepare(args, d);
    expect(choose).toHaveBeenCalledWith('auto');
    expect(out).toEqual({
      next: {
        ...d,
        step: 'stage',
        chosenTransport: 'package-upload',
        startedAt: 1_700_000_000_000,
      },
    });
    expect(save).not.toHaveBeenCalled();
    expect(log).toHaveBeenCalledWith('prepared: transport package-upload, new package');
  });

  it('keeps the startedAt a producer set', async () => {
    const file = packageFile();
    const deps = fakeDeps({
      jamf: fakeJamf({ findPackageByFileName: vi.fn(async () => undefined) }),
    });
    const d = atPrepare(file, { startedAt: 5 });
    const out = await prepare(stepArgs(deps, fakeJob(d).job).args, d);
    expect(out).toMatchObject({ next: { step: 'stage', startedAt: 5, chosenTransport: 's3' } });
  });

  it('hashes the file and records the package it replaces for ifExists=replace', async () => {
    const file = packageFile();
    const deps = fakeDeps({
      jamf: fakeJamf({ findPackageByFileName: vi.fn(async () => jamfPackage({ id: '17' })) }),
    });
    const d = atPrepare(file, { ifExists: 'replace' });
    const out = await prepare(stepArgs(deps, fakeJob(d).job).args, d);
    expect(out).toMatchObject({
      next: { step: 'stage', existingPackageId: '17', hashes: localHashes },
    });
  });

  it('skips a file Jamf already holds for ifExists=skip', async () => {
    const file = packageFile();
    const clock = new FakeClock();
    const deps = fakeDeps({
      clock,
      jamf: fakeJamf({
        findPackageByFileName: vi.fn(async () =>
          jamfPackage({
            id: '17',
            hashType: 'SHA3_512',
            hashValue: otherSha3,
            sha256: localHashes.sha256.toUpperCase(),
          }),
        ),
      }),
    });
    const d = atPrepare(file, { ifExists: 'skip', startedAt: clock.t - 250 });
    const out = await prepare(stepArgs(deps, fakeJob(d).job).args, d);
    expect(out).toEqual({
      done: {
        packageId: '17',
        fileName: 'Firefox.pkg',
        size: file.size,
        sha256: localHashes.sha256,
        transport: 's3',
        bytesSent: 0,
        durationMs: 250,
        outcome: 'unchanged',
      },
    });
  });

  it('skip: a record without sha256 is compared on its SHA3-512 hashValue', async () => {
    const file = packageFile();
    const record = (hashValue: string) =>
      fakeDeps({
        jamf: fakeJamf({
          findPackageByFileName: vi.fn(async () =>
            jamfPackage({ id: '17', hashType: 'SHA3_512', hashValue }),
          ),
        }),
      });
    const d = atPrepare(file, { ifExists: 'skip' });
    const same = await prepare(stepArgs(record(localSha3), fakeJob(d).job).args, d);
    expect(same).toMatchObject({
      done: { outcome: 'unchanged', sha256: localHashes.sha256, sha3_512: localSha3 },
    });
    const other = await rejection(prepare(stepArgs(record(otherSha3), fakeJob(d).job).args, d));
    expect(other).toMatchObject({ code: 'PACKAGE_EXISTS' });
  });

  it('hashes again when the hashes given are of an earlier version (no SHA-256) or malformed', async () => {
    const file = packageFile();
    const deps = fakeDeps({
      jamf: fakeJamf({
        findPackageByFileName: vi.fn(async () =>
          jamfPackage({ id: '17', hashValue: otherSha3, sha256: otherSha256 }),
        ),
      }),
    });
    for (const hashes of [
      { sha3_512: localSha3, md5: 'x' },
      { sha256: 'not hex' },
    ] as unknown as FileHashes[]) {
      const d = atPrepare(file, { ifExists: 'replace', hashes });
      const out = await prepare(stepArgs(deps, fakeJob(d).job).args, d);
      expect(out).toMatchObject({
        next: {
          step: 'stage',
          hashes: localHashes,
          priorHash: otherSha3,
          priorSha256: otherSha256,
        },
      });
    }
  });

  it('fails FILE_CHANGED when the file on disk is not what was enqueued', async () => {
    const file = packageFile();
    utimesSync(file.path, new Date(), new Date(file.mtimeMs + 60_000));
    const deps = fakeDeps();
    const d = atPrepare(file);
    const err = await rejection(prepare(stepArgs(deps, fakeJob(d).job).args, d));
    expect(err).toMatchObject({ code: 'FILE_CHANGED' });
  });

  it('fails JAMF_NOT_FOUND for a category Jamf does not have', async () => {
    const file = packageFile();
    const deps = fakeDeps({ jamf: fakeJamf({ findCategoryId: vi.fn(async () => undefined) }) });
    const d = atPrepare(file, { package: { category: 'Browsers' } });
    const err = await rejection(prepare(stepArgs(deps, fakeJob(d).job).args, d));
    expect(err).toMatchObject({ code: 'JAMF_NOT_FOUND' });
    expect((err as AppError).message).toMatch(/"Browsers"/);
  });
});

const multipart: MultipartState = {
  uploadId: 'mpu-1',
  bucket: 'jcds-bucket',
  key: 'files/Firefox.pkg',
  region: 'us-east-1',
  partSize: 4_000,
  partCount: 3,
  vaultKey: 'upload-job-1',
};
const openUpload = {
  uploadId: 'mpu-1',
  bucket: 'jcds-bucket',
  key: 'files/Firefox.pkg',
  region: 'us-east-1',
  vaultKey: 'upload-job-1',
};

function atComplete(
  file: { path: string; size: number; mtimeMs: number },
  over: Partial<UploadAt<'complete'>> = {},
): UploadAt<'complete'> {
  return {
    ...atPrepare(file),
    step: 'complete',
    chosenTransport: 's3',
    startedAt: 1_000,
    multipart,
    ...over,
  };
}

const childKey = (n: number): string => `bull:{jcds}:upload-part:job-1-p${n}`;
const partResult = (n: number): PartResult => ({
  partNumber: n,
  etag: `"${createHash('md5').update(`part ${n}`).digest('hex')}"`,
  size: n === 3 ? 2_000 : 4_000,
});

/** The engine calls an abort makes. */
function abortingEngine() {
  const abort = vi.fn(async () => true);
  const abortStrays = vi.fn(async () => undefined);
  const release = vi.fn();
  const completeOrConfirm = vi.fn();
  return {
    engine: fakeEngine({ abort, abortStrays, release, completeOrConfirm }),
    abort,
    abortStrays,
    release,
    completeOrConfirm,
  };
}

describe('complete', () => {
  it('fails with the reason of a part that failed for good, keeping the multipart upload for a retry', async () => {
    const file = packageFile();
    const { engine, abort, abortStrays, completeOrConfirm } = abortingEngine();
    const deps = fakeDeps({ engine });
    const d = atComplete(file, { hashes: localHashes });
    const reason =
      '[S3_ERROR] S3 refused UploadPart 2 of Firefox.pkg: AccessDenied (HTTP 403): denied';
    const { job } = fakeJob(d, {
      getIgnoredChildrenFailures: vi.fn().mockResolvedValue({ [childKey(2)]: reason }),
    });
    const { args, save } = stepArgs(deps, job);
    const err = await rejection(complete(args, d));
    expect(err).toBeInstanceOf(UnrecoverableError);
    expect((err as Error).message).toBe(reason);
    // The failure policy's clean-up (index.ts) keeps the upload and marks it for a retry.
    expect(abort).not.toHaveBeenCalled();
    expect(abortStrays).not.toHaveBeenCalled();
    expect(completeOrConfirm).not.toHaveBeenCalled();
    expect(save).not.toHaveBeenCalled();
  });

  it('after a retry, takes the recorded child failures back, sends only the missing parts and waits', async () => {
    const file = packageFile();
    const addMissingParts = vi.fn(async () => 1);
    const addHash = vi.fn(async () => undefined);
    const deps = fakeDeps({ parts: fakeParts({ addMissingParts, addHash }) });
    const d = atComplete(file);
    const marked = markForResume(d);
    const done = new Map([1, 3].map(n => [n, partResult(n)] as const));
    // Taken back by addMissingParts({resume}): nothing is recorded any more.
    const getIgnoredChildrenFailures = vi.fn().mockResolvedValue({});
    const moveToWaitingChildren = vi.fn().mockResolvedValue(true);
    const { job, log } = fakeJob(marked, {
      getChildrenValues: vi
        .fn()
        .mockResolvedValue(
          Object.fromEntries([...done.values()].map(r => [childKey(r.partNumber), r])),
        ),
      getIgnoredChildrenFailures,
      moveToWaitingChildren,
    });
    const { args, save } = stepArgs(deps, job);
    const err = await rejection(complete(args, marked));
    expect(err).toBeInstanceOf(WaitingChildrenError);
    const parent = { id: 'job-1', queue: 'bull:{jcds}:upload' };
    expect(addMissingParts).toHaveBeenNthCalledWith(1, parent, expect.anything(), multipart, done, {
      resume: true,
    });
    // The mark is cleared once the failures are taken back: a later child failure counts.
    expect(save).toHaveBeenCalledWith(d);
    expect(save.mock.calls[0]![0]).not.toHaveProperty('resume');
    expect(log).toHaveBeenCalledWith(
      'retried: resuming the multipart upload with 2 of 3 parts done; 1 to send',
    );
    expect(save.mock.invocationCallOrder[0]!).toBeLessThan(
      getIgnoredChildrenFailures.mock.invocationCallOrder[0]!,
    );
    expect(moveToWaitingChildren).toHaveBeenCalledWith('lock-token');
  });

  it('gives a reason without a code the PART_FAILED code', async () => {
    const file = packageFile();
    const deps = fakeDeps({ engine: abortingEngine().engine });
    const d = atComplete(file, { hashes: localHashes });
    const { job } = fakeJob(d, {
      getIgnoredChildrenFailures: vi.fn().mockResolvedValue({ [childKey(3)]: 'socket hang up' }),
    });
    const err = await rejection(complete(stepArgs(deps, job).args, d));
    expect(err).toBeInstanceOf(UnrecoverableError);
    expect((err as Error).message).toBe(
      '[PART_FAILED] job-1-p3 of Firefox.pkg failed for good: socket hang up',
    );
  });

  it('completes from the children’s ETags and goes on to `finalize` with stored: true', async () => {
    const file = packageFile();
    const results = [1, 2, 3].map(partResult);
    const completeOrConfirm = vi.fn(async () => ({
      etag: '"abc-3"',
      confirmed: false,
      replacedParts: [],
    }));
    const abortStrays = vi.fn(async () => undefined);
    const release = vi.fn();
    const addHash = vi.fn(async () => undefined);
    const hashFailure = vi.fn(async () => undefined);
    const vault = fakeVault();
    const deps = fakeDeps({
      engine: fakeEngine({ completeOrConfirm, abortStrays, release }),
      parts: fakeParts({ addHash, hashFailure }),
      vault,
    });
    const d = atComplete(file);
    const moveToWaitingChildren = vi.fn();
    const { job, log } = fakeJob(d, {
      getChildrenValues: vi
        .fn()
        .mockResolvedValue(Object.fromEntries(results.map(r => [childKey(r.partNumber), r]))),
      moveToWaitingChildren,
    });
    const { args, save } = stepArgs(deps, job);
    const out = await complete(args, d);
    expect(out).toEqual({ next: { ...d, step: 'finalize', stored: true, bytesSent: file.size } });
    const ref = {
      jobId: 'job-1',
      fileName: 'Firefox.pkg',
      path: file.path,
      ...identityOf(statSync(file.path), statSync(file.path, { bigint: true })),
    };
    expect(addHash).toHaveBeenCalledWith(ref);
    expect(hashFailure).toHaveBeenCalledWith(ref);
    expect(completeOrConfirm).toHaveBeenCalledTimes(1);
    expect(completeOrConfirm).toHaveBeenCalledWith(openUpload, expect.arrayContaining(results), {
      size: file.size,
      what: 'Firefox.pkg',
    });
    expect(abortStrays).toHaveBeenCalledWith(multipart, 'mpu-1');
    expect(release).toHaveBeenCalledWith(multipart);
    expect(vault.delete).toHaveBeenCalledWith('upload-job-1', args.run.lock);
    expect(moveToWaitingChildren).not.toHaveBeenCalled();
    expect(log).toHaveBeenCalledWith('multipart upload completed: 3 parts, ETag "abc-3"');
    expect(save).not.toHaveBeenCalled();
  });

  it('a run that lost the lock after completing the upload aborts no stray and leaves the credentials (LOCK_LOST)', async () => {
    const file = packageFile();
    const results = [1, 2, 3].map(partResult);
    const completeOrConfirm = vi.fn(async () => ({
      etag: '"abc-3"',
      confirmed: false,
      replacedParts: [],
    }));
    const abortStrays = vi.fn(async () => undefined);
    const vault = fakeVault();
    const deps = fakeDeps({
      engine: fakeEngine({ completeOrConfirm, abortStrays, release: vi.fn() }),
      parts: fakeParts({ addHash: vi.fn(async () => undefined), hashFailure: vi.fn() }),
      vault,
    });
    const d = atComplete(file);
    const { job } = fakeJob(d, {
      getChildrenValues: vi
        .fn()
        .mockResolvedValue(Object.fromEntries(results.map(r => [childKey(r.partNumber), r]))),
    });
    const lock = fakeLock(true);
    const { args } = stepArgs(deps, job, undefined, lock);
    const err = await rejection(complete(args, d));
    expect(errorCode(err)).toBe('LOCK_LOST');
    expect(lock.checks).toEqual(['abort stray multipart uploads']);
    expect(abortStrays).not.toHaveBeenCalled();
    expect(vault.delete).not.toHaveBeenCalled();
  });

  it('adds the missing parts and waits for them', async () => {
    const file = packageFile();
    const addMissingParts = vi.fn(async () => 2);
    const deps = fakeDeps({ parts: fakeParts({ addMissingParts }) });
    const d = atComplete(file, { hashes: localHashes });
    const done = partResult(1);
    const moveToWaitingChildren = vi.fn().mockResolvedValue(true);
    const { job } = fakeJob(d, {
      getChildrenValues: vi.fn().mockResolvedValue({ [childKey(1)]: done }),
      moveToWaitingChildren,
    });
    const err = await rejection(complete(stepArgs(deps, job).args, d));
    expect(err).toBeInstanceOf(WaitingChildrenError);
    expect(addMissingParts).toHaveBeenCalledWith(
      { id: 'job-1', queue: 'bull:{jcds}:upload' },
      {
        jobId: 'job-1',
        fileName: 'Firefox.pkg',
        path: file.path,
        ...identityOf(statSync(file.path), statSync(file.path, { bigint: true })),
      },
      multipart,
      new Map([[1, done]]),
    );
    expect(moveToWaitingChildren).toHaveBeenCalledWith('lock-token');
  });

  it('aborts instead of completing when the hash job found the file changed', async () => {
    const file = packageFile();
    const { engine, abort, completeOrConfirm } = abortingEngine();
    const deps = fakeDeps({
      engine,
      parts: fakeParts({
        addHash: vi.fn(async () => undefined),
        hashFailure: vi.fn(
          async () => new AppError('FILE_CHANGED', 'the hash of Firefox.pkg failed: changed'),
        ),
      }),
    });
    const d = atComplete(file);
    const { job } = fakeJob(d, {
      getChildrenValues: vi
        .fn()
        .mockResolvedValue(Object.fromEntries([1, 2, 3].map(n => [childKey(n), partResult(n)]))),
    });
    const err = await rejection(complete(stepArgs(deps, job).args, d));
    expect(err).toBeInstanceOf(UnrecoverableError);
    expect((err as Error).message).toBe('[FILE_CHANGED] the hash of Firefox.pkg failed: changed');
    expect(abort).toHaveBeenCalledWith(openUpload);
    expect(completeOrConfirm).not.toHaveBeenCalled();
  });
});

function atFinalize(
  file: { path: string; size: number; mtimeMs: number },
  over: Partial<UploadAt<'finalize'>> = {},
): UploadAt<'finalize'> {
  return {
    ...atPrepare(file),
    step: 'finalize',
    chosenTransport: 's3',
    startedAt: 1_000_000,
    stored: true,
    bytesSent: file.size,
    hashes: localHashes,
    ...over,
  };
}

describe('abortMultipart (clean-up), fenced by the job lock', () => {
  it('checks the lock right before each destructive call while it holds', async () => {
    const { engine, abort, abortStrays } = abortingEngine();
    const vault = fakeVault();
    const removeUnprocessedChildren = vi.fn(async () => undefined);
    const { job } = fakeJob(atComplete(packageFile()), { removeUnprocessedChildren });
    const lock = fakeLock();
    await abortMultipart({ engine, vault }, job, multipart, 'the file changed', {
      lock,
      log: createLogger({ level: 'silent' }),
    });
    expect(lock.checks).toEqual([
      'remove the part jobs still waiting',
      'abort the multipart upload',
      'abort stray multipart uploads',
    ]);
    expect(removeUnprocessedChildren).toHaveBeenCalledTimes(1);
    expect(abort).toHaveBeenCalledWith(openUpload);
    expect(abortStrays).toHaveBeenCalledWith(multipart);
    expect(vault.delete).toHaveBeenCalledWith('upload-job-1', lock);
  });

  it('a run that lost the lock removes, aborts and deletes nothing (LOCK_LOST)', async () => {
    const { engine, abort, abortStrays } = abortingEngine();
    const vault = fakeVault();
    const removeUnprocessedChildren = vi.fn(async () => undefined);
    const { job } = fakeJob(atComplete(packageFile()), { removeUnprocessedChildren });
    const err = await rejection(
      abortMultipart({ engine, vault }, job, multipart, 'failed', {
        lock: fakeLock(true),
        log: createLogger({ level: 'silent' }),
      }),
    );
    expect(errorCode(err)).toBe('LOCK_LOST');
    expect(removeUnprocessedChildren).not.toHaveBeenCalled();
    expect(abort).not.toHaveBeenCalled();
    expect(abortStrays).not.toHaveBeenCalled();
    expect(vault.delete).not.toHaveBeenCalled();
  });
});

describe('finalize', () => {
  const HASH_FIELDS = ['hashType', 'hashValue', 'md5', 'sha256', 'sha3512', 'size'];
  /** What Jamf computed once it processed the local file. */
  const verified = (id: string, size: number, over: Partial<JamfPackage> = {}) =>
    jamfPackage({
      id,
      hashType: 'SHA3_512',
      hashValue: localSha3,
      sha256: localHashes.sha256,
      size,
      cloudTransferStatus: 'READY',
      ...over,
    });
  const listed = (size: number) => [
    {
      fileName: 'Firefox.pkg',
      length: size,
      md5: createHash('md5').update(content).digest('hex'),
      region: 'x',
      sha3: localSha3,
    },
  ];

  function finalizeDeps(
    getPackage: PackagesApi['getPackage'],
    opts: { verifyTimeoutMs?: number; listing?: PackagesApi['listJcdsFiles'] } = {},
  ) {
    const clock = new FakeClock();
    const createPackage = vi.fn(async (_fields: Record<string, unknown>) => ({
      id: '7',
      href: undefined,
    }));
    const updatePackage = vi.fn(
      async (_id: string, pkg: Record<string, unknown>) => pkg as JamfPackage,
    );
    const refreshJcdsInventory = vi.fn(async () => undefined);
    const refreshCdpInventory = vi.fn(async () => undefined);
    const { metrics, uploadDuration } = recordingMetrics();
    const deps = fakeDeps({
      clock,
      metrics,
      config: {
        splitThreshold: 64 * 1024 * 1024,
        partSize: 16 * 1024 * 1024,
        verifyTimeoutMs: opts.verifyTimeoutMs ?? 60_000,
      },
      jamf: fakeJamf({
        createPackage: createPackage as unknown as PackagesApi['createPackage'],
        updatePackage: updatePackage as unknown as PackagesApi['updatePackage'],
        refreshJcdsInventory,
        refreshCdpInventory,
        getPackage,
        listJcdsFiles: opts.listing ?? vi.fn(async () => []),
      }),
    });
    return {
      deps,
      clock,
      metrics,
      createPackage,
      updatePackage,
      refreshJcdsInventory,
      uploadDuration,
    };
  }

  it('creates the record without any hash or size field and converges on what Jamf computed', async () => {
    const file = packageFile();
    const getPackage = vi
      .fn<PackagesApi['getPackage']>()
      // A record that never had a file, then processing, then the verified file.
      .mockResolvedValueOnce(
        jamfPackage({ id: '7', hashType: 'SHA_512', cloudTransferStatus: 'NONE' }),
      )
      .mockResolvedValueOnce(
        jamfPackage({ id: '7', hashType: 'SHA_512', cloudTransferStatus: 'IN_PROGRESS' }),
      )
      .mockResolvedValue(verified('7', file.size));
    const { deps, clock, createPackage, refreshJcdsInventory, uploadDuration } = finalizeDeps(
      getPackage,
      { listing: vi.fn(async () => listed(file.size)) },
    );
    const d = atFinalize(file, { startedAt: clock.t - 90_000 });
    const { job, log } = fakeJob(d);
    const { args, save } = stepArgs(deps, job);
    const out = await finalize(args, d);
    expect(createPackage).toHaveBeenCalledTimes(1);
    const fields = createPackage.mock.calls[0]![0];
    expect(fields).toMatchObject({ packageName: 'Firefox.pkg', fileName: 'Firefox.pkg' });
    for (const k of HASH_FIELDS) expect(fields).not.toHaveProperty(k);
    // The created record is checkpointed before convergence, so a retry creates no other.
    expect(save).toHaveBeenCalledWith({ ...d, packageId: '7', packageCreated: true });
    // One refresh-inventory for the file per tick, before each read.
    expect(getPackage).toHaveBeenCalledTimes(3);
    expect(refreshJcdsInventory).toHaveBeenCalledTimes(3);
    expect(refreshJcdsInventory).toHaveBeenCalledWith('Firefox.pkg');
    expect(clock.sleeps).toEqual([100, 150]);
    expect(out).toEqual({
      done: {
        packageId: '7',
        fileName: 'Firefox.pkg',
        size: file.size,
        sha256: localHashes.sha256,
        transport: 's3',
        bytesSent: file.size,
        durationMs: 90_250,
        outcome: 'created',
      },
    });
    expect(uploadDuration).toHaveBeenCalledWith(90.25, 's3', 'created');
    expect(log).toHaveBeenCalledWith(
      expect.stringMatching(/^verified: Jamf Pro computed the local SHA-256 .* package 7 created$/),
    );
  });

  it('a record that shows the local hash is not success until it is READY with the local size', async () => {
    // What a record that echoes a client-sent hash looks like: the hash, no size, not READY.
    const file = packageFile();
    const getPackage = vi.fn(async (id: string) =>
      jamfPackage({
        id,
        hashType: 'SHA3_512',
        hashValue: localSha3,
        sha256: localHashes.sha256,
        size: undefined,
        cloudTransferStatus: 'IN_PROGRESS',
      }),
    );
    const { deps, clock, uploadDuration } = finalizeDeps(getPackage, { verifyTimeoutMs: 30_000 });
    const d = atFinalize(file, { chosenTransport: 'package-upload', packageId: '7' });
    const start = clock.now();
    const err = await rejection(finalize(stepArgs(deps, fakeJob(d).job).args, d));
    expect(err).toMatchObject({ code: 'VERIFY_TIMEOUT', retryable: true });
    const message = (err as AppError).message;
    expect(message).toMatch(/within 30 s/);
    expect(message).toContain('cloudTransferStatus IN_PROGRESS');
    expect(message).toContain('size blank');
    expect(clock.now() - start).toBe(30_000);
    expect(uploadDuration).not.toHaveBeenCalled();
  });

  it('size "0" after the hash changed: the bytes are sent again, counted and logged', async () => {
    const file = packageFile();
    const getPackage = vi.fn(async (id: string) =>
      jamfPackage({
        id,
        hashType: 'SHA3_512',
        hashValue: localSha3,
        sha256: localHashes.sha256,
        size: 0,
      }),
    );
    const { deps, metrics } = finalizeDeps(getPackage);
    const d = atFinalize(file, { chosenTransport: 'package-upload', packageId: '7', resends: 1 });
    const { job, log } = fakeJob(d);
    const out = await finalize(stepArgs(deps, job).args, d);
    expect(out).toHaveProperty('next');
    const next = (out as { next: UploadJobData }).next;
    expect(next).toMatchObject({ step: 'stage', resends: 2, packageId: '7', hashes: localHashes });
    expect(next).not.toHaveProperty('stored');
    expect(next).not.toHaveProperty('multipart');
    expect(metrics.uploadResent).toHaveBeenCalledTimes(1);
    expect(log).toHaveBeenCalledWith(
      expect.stringMatching(/never landed.*sending the bytes again \(2 of 5\)/),
    );
  });

  it('after a resend, the lost send’s state (its hash, size 0) is waited out, not counted again', async () => {
    const file = packageFile();
    const lost = jamfPackage({
      id: '7',
      hashType: 'SHA3_512',
      hashValue: localSha3,
      sha256: localHashes.sha256,
      size: 0,
    });
    const getPackage = vi
      .fn<PackagesApi['getPackage']>()
      .mockResolvedValueOnce(lost)
      .mockResolvedValueOnce(lost)
      .mockResolvedValue(verified('7', file.size));
    const { deps, metrics } = finalizeDeps(getPackage);
    const d = atFinalize(file, {
      chosenTransport: 'package-upload',
      packageId: '7',
      resends: 1,
      lostHash: localHashes.sha256,
    });
    const out = await finalize(stepArgs(deps, fakeJob(d).job).args, d);
    expect(out).toMatchObject({ done: { packageId: '7' } });
    expect(metrics.uploadResent).not.toHaveBeenCalled();
  });

  it('size 0 again after the record showed another state is another lost send', async () => {
    const file = packageFile();
    const lost = jamfPackage({
      id: '7',
      hashType: 'SHA3_512',
      hashValue: localSha3,
      sha256: localHashes.sha256,
      size: 0,
    });
    const getPackage = vi
      .fn<PackagesApi['getPackage']>()
      .mockResolvedValueOnce(
        jamfPackage({
          id: '7',
          hashType: 'SHA3_512',
          hashValue: localSha3,
          sha256: localHashes.sha256,
          cloudTransferStatus: 'IN_PROGRESS',
        }),
      )
      .mockResolvedValue(lost);
    const { deps } = finalizeDeps(getPackage);
    const d = atFinalize(file, {
      chosenTransport: 'package-upload',
      packageId: '7',
      resends: 1,
      lostHash: localHashes.sha256,
    });
    const out = await finalize(stepArgs(deps, fakeJob(d).job).args, d);
    expect(out).toMatchObject({
      next: { step: 'stage', resends: 2, lostHash: localHashes.sha256 },
    });
  });

  it('gives up, for good, after the bytes were sent again 5 times', async () => {
    const file = packageFile();
    const getPackage = vi.fn(async (id: string) =>
      jamfPackage({
        id,
        hashType: 'SHA3_512',
        hashValue: localSha3,
        sha256: localHashes.sha256,
        size: 0,
      }),
    );
    const { deps, metrics } = finalizeDeps(getPackage);
    const d = atFinalize(file, { chosenTransport: 'package-upload', packageId: '7', resends: 5 });
    const err = await rejection(finalize(stepArgs(deps, fakeJob(d).job).args, d));
    expect(err).toMatchObject({ code: 'UPLOAD_INCOMPLETE', retryable: false });
    expect(metrics.uploadResent).not.toHaveBeenCalled();
  });

  it('fails VERIFY_FAILED, naming both hashes, when Jamf computed another SHA-256 for the local size', async () => {
    const file = packageFile();
    const getPackage = vi.fn(async (id: string) =>
      verified(id, file.size, { hashValue: otherSha3, sha256: otherSha256 }),
    );
    const { deps, uploadDuration } = finalizeDeps(getPackage);
    const d = atFinalize(file, { chosenTransport: 'package-upload', packageId: '7' });
    const err = await rejection(finalize(stepArgs(deps, fakeJob(d).job).args, d));
    expect(err).toMatchObject({ code: 'VERIFY_FAILED', retryable: false });
    expect((err as AppError).message).toContain(`SHA-256 ${otherSha256}`);
    expect((err as AppError).message).toContain(localHashes.sha256);
    expect(uploadDuration).not.toHaveBeenCalled();
  });

  it('a record without sha256: hashes the file with SHA3-512 once, checkpoints it and converges on hashValue', async () => {
    const file = packageFile();
    const getPackage = vi
      .fn<PackagesApi['getPackage']>()
      .mockResolvedValueOnce(
        verified('7', file.size, { sha256: undefined, cloudTransferStatus: 'IN_PROGRESS' }),
      )
      // READY: the local SHA3-512 is computed now; the transient old size waits.
      .mockResolvedValueOnce(verified('7', 99, { sha256: undefined }))
      .mockResolvedValue(verified('7', file.size, { sha256: undefined }));
    const { deps } = finalizeDeps(getPackage);
    const d = atFinalize(file, { chosenTransport: 'package-upload', packageId: '7' });
    const { job, log } = fakeJob(d);
    const { args, save } = stepArgs(deps, job);
    const out = await finalize(args, d);
    expect(save).toHaveBeenCalledTimes(1);
    expect(save).toHaveBeenCalledWith({ ...d, hashes: { ...localHashes, sha3_512: localSha3 } });
    expect(out).toMatchObject({
      done: { packageId: '7', sha256: localHashes.sha256, sha3_512: localSha3 },
    });
    expect(log).toHaveBeenCalledWith(expect.stringMatching(/no sha256.*hashValue/));
    expect(log).toHaveBeenCalledWith(expect.stringMatching(/^verified: .*SHA3-512/));
  });

  it('a record without sha256 whose hashValue is another SHA3-512 for the local size: VERIFY_FAILED', async () => {
    const file = packageFile();
    const getPackage = vi.fn(async (id: string) =>
      verified(id, file.size, { sha256: undefined, hashValue: otherSha3 }),
    );
    const { deps } = finalizeDeps(getPackage);
    const d = atFinalize(file, { chosenTransport: 'package-upload', packageId: '7' });
    const err = await rejection(finalize(stepArgs(deps, fakeJob(d).job).args, d));
    expect(err).toMatchObject({ code: 'VERIFY_FAILED' });
    expect((err as AppError).message).toContain(`SHA3-512 ${otherSha3}`);
    expect((err as AppError).message).toContain(localSha3);
  });

  it('a checkpoint of an earlier version (SHA3-512 and MD5, no SHA-256) hashes the file again', async () => {
    const file = packageFile();
    const getPackage = vi.fn(async (id: string) => verified(id, file.size));
    const { deps } = finalizeDeps(getPackage);
    const old = { sha3_512: localSha3, md5: 'x' } as unknown as FileHashes;
    const d = atFinalize(file, { chosenTransport: 'package-upload', packageId: '7', hashes: old });
    const { job } = fakeJob(d);
    const { args, save } = stepArgs(deps, job);
    const out = await finalize(args, d);
    expect(save).toHaveBeenCalledWith({ ...d, hashes: localHashes });
    expect(out).toMatchObject({ done: { sha256: localHashes.sha256 } });
  });

  it('a replace converges only on the new hash and the new size, then writes the metadata', async () => {
    const file = packageFile();
    const getPackage = vi
      .fn<PackagesApi['getPackage']>()
      // The old file, then the transient new hash with the old size, then the new file.
      .mockResolvedValueOnce(verified('17', 99, { hashValue: otherSha3, sha256: otherSha256 }))
      .mockResolvedValueOnce(verified('17', 99))
      .mockResolvedValueOnce(verified('17', file.size))
      // writeMetadata's GET: the record has another name; after the PUT, size comes back.
      .mockResolvedValueOnce(verified('17', file.size, { packageName: 'Old name' }))
      .mockResolvedValueOnce(verified('17', undefined as unknown as number))
      .mockResolvedValue(verified('17', file.size));
    const { deps, createPackage, updatePackage } = finalizeDeps(getPackage, {
      listing: vi.fn(async () => listed(file.size)),
    });
    const d = atFinalize(file, {
      existingPackageId: '17',
      priorHash: otherSha3,
      priorSha256: otherSha256,
      ifExists: 'replace',
    });
    const out = await finalize(stepArgs(deps, fakeJob(d).job).args, d);
    expect(createPackage).not.toHaveBeenCalled();
    expect(updatePackage).toHaveBeenCalledTimes(1);
    expect(updatePackage.mock.calls[0]![0]).toBe('17');
    expect(updatePackage.mock.calls[0]![1]).toMatchObject({ packageName: 'Firefox.pkg' });
    expect(getPackage).toHaveBeenCalledTimes(6);
    expect(out).toMatchObject({ done: { packageId: '17', outcome: 'replaced' } });
  });

  it('s3: the record is created while JCDS is listed; an object JCDS does not list deletes it and is sent again', async () => {
    const file = packageFile();
    const { deps, createPackage, metrics } = finalizeDeps(unexpected('getPackage'), {
      // The listing answers only after the record was created: both were asked at once.
      listing: vi.fn(async () => {
        await vi.waitFor(() => expect(createPackage).toHaveBeenCalled());
        return [{ fileName: 'Firefox.pkg', length: 3, md5: 'x', region: 'x', sha3: undefined }];
      }),
    });
    const deletePackage = vi.fn(async (_id: string) => undefined);
    deps.jamf.deletePackage = deletePackage as unknown as PackagesApi['deletePackage'];
    const d = atFinalize(file);
    const { job, log } = fakeJob(d);
    const { args, save, lock } = stepArgs(deps, job);
    const out = await finalize(args, d);
    expect(out).toMatchObject({ next: { step: 'stage', resends: 1 } });
    // The record was checkpointed, then deleted (the lock checked first), then forgotten.
    expect(save).toHaveBeenCalledWith(
      expect.objectContaining({ packageId: '7', packageCreated: true }),
    );
    expect(deletePackage).toHaveBeenCalledWith('7');
    expect(lock.checks).toContain('delete package 7');
    const next = (out as unknown as { next: Record<string, unknown> }).next;
    expect(next).not.toHaveProperty('packageId');
    expect(next).not.toHaveProperty('packageCreated');
    expect(save.mock.calls.at(-1)![0]).not.toHaveProperty('packageId');
    expect(metrics.uploadResent).toHaveBeenCalledTimes(1);
    expect(log).toHaveBeenCalledWith(expect.stringMatching(/JCDS lists it with 3 bytes/));
    expect(log).toHaveBeenCalledWith(expect.stringMatching(/package 7 .* deleted/));
  });

  it('s3: a listing that fails keeps the record in the checkpoint for the retry; a listed object keeps it', async () => {
    const file = packageFile();
    const listing = vi.fn(async (): Promise<ReturnType<typeof listed>> => {
      throw new Error('listing: socket hang up');
    });
    const { deps, createPackage } = finalizeDeps(unexpected('getPackage'), { listing });
    const d = atFinalize(file);
    const { args, save } = stepArgs(deps, fakeJob(d).job);
    expect(await rejection(finalize(args, d))).toMatchObject({
      message: 'listing: socket hang up',
    });
    expect(createPackage).toHaveBeenCalledTimes(1);
    const saved = save.mock.calls.at(-1)![0] as UploadAt<'finalize'>;
    expect(saved).toMatchObject({ packageId: '7', packageCreated: true });

    // The retry reads the listing again and converges on that record: no second create.
    listing.mockImplementation(async () => listed(file.size));
    const getPackage = vi.fn(async (id: string) => verified(id, file.size));
    deps.jamf.getPackage = getPackage;
    const out = await finalize(stepArgs(deps, fakeJob(saved).job).args, saved);
    expect(createPackage).toHaveBeenCalledTimes(1);
    expect(out).toMatchObject({ done: { packageId: '7', outcome: 'created' } });
  });

  it('waits for the hash job of a multipart upload and checkpoints its hashes', async () => {
    const file = packageFile();
    const getPackage = vi.fn(async (id: string) => verified(id, file.size));
    const { deps } = finalizeDeps(getPackage, { listing: vi.fn(async () => listed(file.size)) });
    const awaitHash = vi.fn(async () => localHashes);
    deps.parts = fakeParts({ awaitHash });
    const d = atFinalize(file, { hashes: undefined, multipart, packageId: '7' });
    const { job } = fakeJob(d);
    const { args, save } = stepArgs(deps, job);
    const out = await finalize(args, d);
    expect(awaitHash).toHaveBeenCalledWith(
      {
        jobId: 'job-1',
        fileName: 'Firefox.pkg',
        path: file.path,
        ...identityOf(statSync(file.path), statSync(file.path, { bigint: true })),
      },
      undefined,
    );
    expect(save).toHaveBeenCalledWith({ ...d, hashes: localHashes });
    expect(out).toMatchObject({ done: { packageId: '7', sha256: localHashes.sha256 } });
  });
});
