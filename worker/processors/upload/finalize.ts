/**
 * Step 4, finalize: the bytes are stored; make Jamf say so, from what it computed itself
 * (jamf-wire-2026.md section 2; shared/upload/converge.ts decides):
 *   1. wait for the local hash when the hash job still runs (multipart uploads complete the
 *      object without waiting for it);
 *   2. s3 transport: JCDS's own listing must show the object with the local length and
 *      hashes, else the bytes are sent again and no record is created;
 *   3. create the record of a new package, with no hash or size field;
 *   4. converge: on each tick refresh inventory for the file, then read the record, until
 *      it shows the local SHA3-512, SHA3_512, READY and the local size. `size` "0" after the
 *      hash changed means the bytes never landed: they are sent again (a bounded number of
 *      times). Another hash for a file of the local size is VERIFY_FAILED;
 *   5. only then write the metadata that changed (GET, merge, PUT), and converge again,
 *      since a PUT blanks `size`.
 */
import { AppError } from '../../../shared/errors.ts';
import { assertUnchanged } from '../../../shared/files.ts';
import type {
  FileHashes,
  Prepared,
  UploadAt,
  UploadJobData,
  UploadResult,
} from '../../../shared/queues/jobs.ts';
import { describe, verdict, type RecordState } from '../../../shared/upload/converge.ts';
import type { StepOutcome } from '../../step-machine.ts';
import { progress, uploadRef, type StepArgs, type UploadDeps } from './job.ts';
import { createRecord, writeMetadata } from './record.ts';

/** Times the bytes are sent again after Jamf reported they never landed (TFJP: 5). */
export const MAX_RESENDS = 5;

type Verified = UploadAt<'finalize'> & { hashes: FileHashes };

async function refresh(deps: UploadDeps, d: Prepared): Promise<void> {
  if (d.chosenTransport === 's3') await deps.jamf.refreshJcdsInventory(d.fileName);
  else await deps.jamf.refreshCdpInventory(d.fileName);
}

/** s3: does JCDS list the object with the local length and hashes (computed by Jamf)? */
async function storedInJcds(deps: UploadDeps, d: Verified): Promise<string | undefined> {
  const files = (await deps.jamf.listJcdsFiles()).filter(f => f.fileName === d.fileName);
  if (files.length === 0) return 'JCDS does not list it';
  const same = files.some(
    f =>
      f.length === d.size &&
      (!f.md5 || f.md5.toLowerCase() === d.hashes.md5) &&
      (!f.sha3 || f.sha3.toLowerCase() === d.hashes.sha3_512),
  );
  if (same) return undefined;
  const f = files[files.length - 1]!;
  return `JCDS lists it with ${f.length} bytes and md5 ${String(f.md5)} (local ${d.size} bytes, md5 ${d.hashes.md5})`;
}

/**
 * Polls until Jamf reports the local file. Returns the lost send's hash when the bytes must
 * be sent again (size "0" after the hash changed); throws VERIFY_FAILED or VERIFY_TIMEOUT.
 */
export async function converge(
  deps: UploadDeps,
  d: Verified,
  packageId: string,
  signal?: AbortSignal,
): Promise<'done' | { lostHash: string }> {
  const { clock, jamf } = deps;
  const expected = { sha3_512: d.hashes.sha3_512, size: d.size, priorHash: d.priorHash };
  const deadline = clock.now() + deps.config.verifyTimeoutMs;
  let delay = 250;
  let last: RecordState;
  // After a resend the record first still shows the lost send (its hash, size "0").
  let lost = d.lostHash;
  for (;;) {
    signal?.throwIfAborted();
    // Transient 500s are expected from refresh-inventory: the read below decides.
    await refresh(deps, d).catch(() => undefined);
    last = await jamf.getPackage(packageId);
    const stale = lost !== undefined && last.size === 0 && last.hashValue?.toLowerCase() === lost;
    if (!stale) lost = undefined;
    const v = stale ? ({ kind: 'waiting' } as const) : verdict(last, expected);
    if (v.kind === 'done') return 'done';
    if (v.kind === 'never-landed') return { lostHash: v.reported };
    if (v.kind === 'mismatch') {
      throw new AppError(
        'VERIFY_FAILED',
        `Jamf Pro computed SHA3-512 ${v.reported} for ${d.fileName} (package ${packageId}, ${d.size} bytes), but the local file's is ${d.hashes.sha3_512}: the stored file is not the file sent. It was not marked as published; upload it again with --if-exists replace.`,
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
    delay = Math.min(Math.round(delay * 1.5), 5_000);
  }
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
  if (at.hashes) d = { ...at, hashes: at.hashes };
  else {
    // A multipart upload: the object is complete; the local hash may still be running.
    d = { ...at, hashes: await deps.parts.awaitHash(uploadRef(job), signal) };
    await save(d);
  }
  // Before anything is published: the file hashed and sent is still the one enqueued (a
  // rewrite in place during the upload, even with its mtime put back, fails here).
  await assertUnchanged(d);
  if (d.chosenTransport === 's3') {
    const missing = await storedInJcds(deps, d);
    if (missing) return sendAgain(args, d, `the stored object is not the file: ${missing}`);
  }
  let packageId =
    d.chosenTransport === 'package-upload' ? (d.existingPackageId ?? d.packageId) : d.packageId;
  if (!packageId) packageId = d.existingPackageId;
  if (!packageId) {
    const created = await createRecord(deps.jamf, d);
    packageId = created.id;
    d = { ...d, packageId, packageCreated: true };
    await save(d);
    if (created.adopted) await job.log(`package ${packageId} adopted (created by a stale run)`);
  }
  const NEVER_LANDED = 'Jamf reports size 0 for the new hash (the bytes never landed)';
  let converged = await converge(deps, d, packageId, signal);
  if (converged !== 'done') return sendAgain(args, d, NEVER_LANDED, converged.lostHash);
  // Metadata last, and only what changed (a new record was created with it).
  if (d.existingPackageId && (await writeMetadata(deps.jamf, packageId, d))) {
    converged = await converge(deps, d, packageId, signal);
    if (converged !== 'done') return sendAgain(args, d, NEVER_LANDED, converged.lostHash);
  }
  const durationMs = deps.clock.now() - d.startedAt;
  const outcome = d.existingPackageId ? 'replaced' : 'created';
  await job.log(
    `verified: Jamf Pro computed the local SHA3-512 and size for the stored file and reports it READY; package ${packageId} ${outcome}`,
  );
  deps.metrics.uploadDuration(durationMs / 1000, d.chosenTransport, outcome);
  return {
    done: {
      packageId,
      fileName: d.fileName,
      size: d.size,
      sha3_512: d.hashes.sha3_512,
      md5: d.hashes.md5,
      transport: d.chosenTransport,
      bytesSent: d.bytesSent,
      durationMs,
      outcome,
    },
  };
}
