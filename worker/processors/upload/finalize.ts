/**
 * Step 4, finalize: the bytes are stored; make Jamf say so, from what it computed itself
 * (jamf-wire-2026.md section 2; shared/upload/converge.ts decides):
 *   1. wait for the local SHA-256 when the hash job still runs (multipart uploads complete
 *      the object without waiting for it); a checkpoint of an earlier version, which holds
 *      SHA3-512 and MD5 instead, hashes the file again;
 *   2. s3 transport: JCDS's own listing must show the object with the local length (it
 *      lists MD5 and SHA3-512, which the upload no longer computes), else the bytes are
 *      sent again and no record is created;
 *   3. create the record of a new package, with no hash or size field;
 *   4. converge: on each tick refresh inventory for the file, then read the record, until
 *      it shows the local SHA-256 as `sha256`, a new SHA3_512 `hashValue`, READY and the
 *      local size (a record with no `sha256` at all: the file is hashed with SHA3-512,
 *      through the same checked descriptor, and compared with `hashValue`). `size` "0"
 *      after the hash changed means the bytes never landed: they are sent again (a bounded
 *      number of times). Another hash for a file of the local size is VERIFY_FAILED;
 *   5. only then write the metadata that changed (GET, merge, PUT), and converge again,
 *      since a PUT blanks `size`.
 */
import { AppError } from '../../../shared/errors.ts';
import { hashIdentified } from '../../../shared/file-identity.ts';
import { assertUnchanged } from '../../../shared/files.ts';
import type {
  FileHashes,
  Prepared,
  UploadAt,
  UploadJobData,
  UploadResult,
} from '../../../shared/queues/jobs.ts';
import { knownHashes } from '../../../shared/upload/content.ts';
import {
  describe,
  verdict,
  type Expected,
  type RecordState,
} from '../../../shared/upload/converge.ts';
import type { StepOutcome } from '../../step-machine.ts';
import { progress, uploadRef, type StepArgs, type UploadDeps } from './job.ts';
import { createRecord, writeMetadata } from './record.ts';

/**
 * Convergence polling: the first tick runs at once (refresh-inventory for the file, then the
 * read), and most small files are READY on it: refresh-inventory processes a stored file at
 * once, and only the hashing may still run. The next ticks follow after 100 ms, then 1.5
 * times longer each, up to 5 s: about the 200 ms a refresh takes on Jamf Cloud at first,
 * and one tick per 5 s for a large file Jamf takes minutes to process.
 */
export const POLL_FIRST_MS = 100;
export const POLL_FACTOR = 1.5;
export const POLL_MAX_MS = 5_000;

/** Times the bytes are sent again after Jamf reported they never landed (TFJP: 5). */
export const MAX_RESENDS = 5;

type Verified = UploadAt<'finalize'> & { hashes: FileHashes };

async function refresh(deps: UploadDeps, d: Prepared): Promise<void> {
  if (d.chosenTransport === 's3') await deps.jamf.refreshJcdsInventory(d.fileName);
  else await deps.jamf.refreshCdpInventory(d.fileName);
}

/**
 * s3: does JCDS list the object with the local length (and the local hashes that are known:
 * JCDS lists MD5 and SHA3-512, the upload computes SHA-256; the package record's `sha256`,
 * computed by Jamf, is what convergence compares)?
 */
async function storedInJcds(deps: UploadDeps, d: Verified): Promise<string | undefined> {
  const files = (await deps.jamf.listJcdsFiles()).filter(f => f.fileName === d.fileName);
  if (files.length === 0) return 'JCDS does not list it';
  const { md5, sha3_512 } = d.hashes;
  const same = files.some(
    f =>
      f.length === d.size &&
      (!f.md5 || !md5 || f.md5.toLowerCase() === md5) &&
      (!f.sha3 || !sha3_512 || f.sha3.toLowerCase() === sha3_512),
  );
  if (same) return undefined;
  const f = files[files.length - 1]!;
  return `JCDS lists it with ${f.length} bytes (local ${d.size} bytes)`;
}

/**
 * The local SHA3-512, for a record that carries no `sha256`: read through a descriptor
 * checked to be the enqueued file, with its SHA-256 in the same pass (another thread), which
 * must still be the one the bytes were sent with.
 */
async function localSha3(d: Verified, signal?: AbortSignal): Promise<string> {
  const h = await hashIdentified(d, signal, ['sha256', 'sha3_512']);
  if (h.sha256 !== d.hashes.sha256)
    throw new AppError(
      'FILE_CHANGED',
      `${d.path} changed after it was sent (its SHA-256 differs from the one taken while it was sent); nothing was published. Enqueue it again once it is final.`,
    );
  return h.sha3_512;
}

/**
 * Polls until Jamf reports the local file. Returns the lost send's hash when the bytes must
 * be sent again (size "0" after the hash changed); throws VERIFY_FAILED or VERIFY_TIMEOUT.
 * `fallback`, for a record without `sha256`: `computed` gets the local SHA3-512 once hashed
 * (to checkpoint it), `compared` is called when the verdict was reached on `hashValue`.
 */
export async function converge(
  deps: UploadDeps,
  d: Verified,
  packageId: string,
  signal?: AbortSignal,
  fallback?: { computed(sha3_512: string): Promise<void>; compared(): void },
): Promise<'done' | { lostHash: string }> {
  const { clock, jamf } = deps;
  const expected: Expected = {
    sha256: d.hashes.sha256,
    size: d.size,
    sha3_512: d.hashes.sha3_512,
    priorHash: d.priorHash,
    priorSha256: d.priorSha256,
  };
  const deadline = clock.now() + deps.config.verifyTimeoutMs;
  let delay = POLL_FIRST_MS;
  let last: RecordState;
  // After a resend the record first still shows the lost send (its hash, size "0").
  let lost = d.lostHash;
  for (;;) {
    signal?.throwIfAborted();
    // Transient 500s are expected from refresh-inventory: the read below decides.
    await refresh(deps, d).catch(() => undefined);
    last = await jamf.getPackage(packageId);
    // The lost send's hash: its sha256, or its hashValue (a record without sha256, or a
    // checkpoint of an earlier version).
    const stale =
      lost !== undefined &&
      last.size === 0 &&
      (last.sha256?.toLowerCase() === lost || last.hashValue?.toLowerCase() === lost);
    if (!stale) lost = undefined;
    let v = stale ? ({ kind: 'waiting' } as const) : verdict(last, expected);
    if (v.kind === 'need-sha3') {
      expected.sha3_512 = await localSha3(d, signal);
      await fallback?.computed(expected.sha3_512);
      v = verdict(last, expected);
    }
    if (v.kind === 'done') {
      if (v.on === 'sha3_512') fallback?.compared();
      return 'done';
    }
    if (v.kind === 'never-landed') return { lostHash: v.reported };
    if (v.kind === 'mismatch') {
      const local = v.algorithm === 'SHA-256' ? expected.sha256 : expected.sha3_512;
      throw new AppError(
        'VERIFY_FAILED',
        `Jamf Pro computed ${v.algorithm} ${v.reported} for ${d.fileName} (package ${packageId}, ${d.size} bytes), but the local file's is ${String(local)}: the stored file is not the file sent. It was not marked as published; upload it again with --if-exists replace.`,
      );
    }
    const left = deadline - clock.now();
    if (left <= 0) {
      throw new AppError(
        'VERIFY_TIMEOUT',
        `Jamf Pro did not report ${d.fileName} (package ${packageId}) as stored within ${Math.round(deps.config.verifyTimeoutMs / 1000)} s; last seen: ${describe(last, expected)}. The job will retry; check the package's availability in Jamf Pro, or raise JCDS_VERIFY_TIMEOUT for very large files.`,
      );
    }
    await clock.sleep(Math.min(delay, left), signal);
    delay = Math.min(Math.round(delay * POLL_FACTOR), POLL_MAX_MS);
  }
}

/**
 * Deletes the record this job created for an object JCDS does not list as the file (it was
 * written while the listing was read): a record never outlives the check. Fenced by the
 * job's lock like every other write; a failure to delete fails the attempt, and the retry
 * reads the listing again with the record still in the checkpoint.
 */
async function dropRecord(
  { deps, job, run, save }: StepArgs,
  d: Verified,
  packageId: string,
): Promise<Verified> {
  await run.lock.check(`delete package ${packageId}`);
  await deps.jamf.deletePackage(packageId);
  await job.log(`package ${packageId} (created while JCDS's listing was read) deleted`);
  const { packageId: _p, packageCreated: _c, ...rest } = d;
  await save(rest);
  return rest;
}

/** The bytes did not land: back to `stage`, a bounded number of times. */
async function sendAgain(
  { deps, job, run }: StepArgs,
  d: Verified,
  why: string,
  lostHash?: string,
): Promise<StepOutcome<UploadJobData, UploadResult>> {
  const resends = (d.resends ?? 0) + 1;
  if (resends > MAX_RESENDS) {
    throw new AppError(
      'UPLOAD_INCOMPLETE',
      `${d.fileName}: ${why}, after the bytes were sent ${resends} times. Check the cloud distribution point in Jamf Pro (jcds doctor), then upload it again.`,
      { retryable: false },
    );
  }
  deps.metrics.uploadResent();
  await job.log(`${why}: sending the bytes again (${resends} of ${MAX_RESENDS})`);
  run.log.warn({ resends }, `${why}: sending the bytes again`);
  const { stored: _s, bytesSent: _b, multipart: _m, step: _f, lostHash: _l, ...rest } = d;
  return { next: { ...rest, step: 'stage', resends, ...(lostHash ? { lostHash } : {}) } };
}

export async function finalize(
  args: StepArgs,
  at: UploadAt<'finalize'>,
): Promise<StepOutcome<UploadJobData, UploadResult>> {
  const { deps, job, run, save } = args;
  const { signal } = run;
  await progress(job, at.size, 'verifying');
  let d: Verified;
  const known = knownHashes(at.hashes);
  if (known) d = { ...at, hashes: known };
  else if (at.multipart) {
    // A multipart upload: the object is complete; the local hash may still be running.
    d = { ...at, hashes: await deps.parts.awaitHash(uploadRef(job), signal) };
    await save(d);
  } else {
    // A checkpoint of an earlier version (SHA3-512 and MD5, no SHA-256): hash it again,
    // through a descriptor checked to be the enqueued file.
    const { sha256 } = await hashIdentified(at, signal);
    d = { ...at, hashes: { sha256 } };
    await save(d);
  }
  // Before anything is published: the file hashed and sent is still the one enqueued (a
  // rewrite in place during the upload, even with its mtime put back, fails here).
  await assertUnchanged(d);
  let packageId =
    d.chosenTransport === 'package-upload' ? (d.existingPackageId ?? d.packageId) : d.packageId;
  if (!packageId) packageId = d.existingPackageId;
  const create = async (): Promise<string> => {
    const created = await createRecord(deps.jamf, d);
    d = { ...d, packageId: created.id, packageCreated: true };
    await save(d);
    if (created.adopted) await job.log(`package ${created.id} adopted (created by a stale run)`);
    return created.id;
  };
  if (d.chosenTransport === 's3') {
    // JCDS's listing is read while the record of a new package is created: the listing
    // waits for JCDS's own hashes of the new object (seconds for a large file), the record
    // need not. Jamf's provider creates the record before the upload even begins (TFJP);
    // here the object is complete in S3 first, and the record is kept only if JCDS lists
    // the object with the local length.
    const [listed, made] = await Promise.allSettled([
      storedInJcds(deps, d),
      packageId ? Promise.resolve(packageId) : create(),
    ]);
    if (made.status === 'fulfilled') packageId = made.value;
    if (listed.status === 'fulfilled' && listed.value !== undefined) {
      if (d.packageCreated && d.packageId) d = await dropRecord(args, d, d.packageId);
      return sendAgain(args, d, `the stored object is not the file: ${listed.value}`);
    }
    if (listed.status === 'rejected') throw listed.reason;
    if (made.status === 'rejected') throw made.reason;
  } else if (!packageId) packageId = await create();
  if (!packageId) throw new Error('finalize: no package record');
  const NEVER_LANDED = 'Jamf reports size 0 for the new hash (the bytes never landed)';
  let onHashValue = false;
  const fallback = {
    compared: (): void => void (onHashValue = true),
    computed: async (sha3_512: string): Promise<void> => {
      d = { ...d, hashes: { ...d.hashes, sha3_512 } };
      await save(d);
      await job.log('the package record carries no sha256: comparing its SHA3-512 hashValue');
    },
  };
  let converged = await converge(deps, d, packageId, signal, fallback);
  if (converged !== 'done') return sendAgain(args, d, NEVER_LANDED, converged.lostHash);
  // Metadata last, and only what changed (a new record was created with it).
  if (d.existingPackageId && (await writeMetadata(deps.jamf, packageId, d))) {
    converged = await converge(deps, d, packageId, signal, fallback);
    if (converged !== 'done') return sendAgain(args, d, NEVER_LANDED, converged.lostHash);
  }
  const durationMs = deps.clock.now() - d.startedAt;
  const outcome = d.existingPackageId ? 'replaced' : 'created';
  await job.log(
    `verified: Jamf Pro computed the local ${onHashValue ? 'SHA3-512 (the record has no sha256)' : 'SHA-256'} and size for the stored file and reports it READY; package ${packageId} ${outcome}`,
  );
  deps.metrics.uploadDuration(durationMs / 1000, d.chosenTransport, outcome);
  return {
    done: {
      packageId,
      fileName: d.fileName,
      size: d.size,
      sha256: d.hashes.sha256,
      ...(onHashValue && d.hashes.sha3_512 ? { sha3_512: d.hashes.sha3_512 } : {}),
      transport: d.chosenTransport,
      bytesSent: d.bytesSent,
      durationMs,
      outcome,
    },
  };
}
