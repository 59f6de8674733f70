/**
 * Step 4, finalize: wait for the local hash when the hash job still runs (multipart
 * uploads complete the object without waiting for it), create or update the package
 * record (Pro API, Classic API as the fallback) with hashType SHA3_512 and the local hash,
 * refresh inventory for this file, then verify: Jamf's hash of the stored file must equal
 * the local one. Jamf computes hashes itself once the file is in place, so this polls with
 * backoff within a time bound. A mismatch fails the job and says so; it is never reported
 * as a success.
 */
import { AppError } from '../../../shared/errors.ts';
import type {
  FileHashes,
  Prepared,
  UploadAt,
  UploadJobData,
  UploadResult,
} from '../../../shared/queues/jobs.ts';
import { sameContent } from '../../../shared/upload/content.ts';
import type { StepOutcome } from '../../step-machine.ts';
import { progress, uploadRef, type StepArgs, type UploadDeps } from './job.ts';
import { upsertPackage } from './record.ts';

async function refresh(deps: UploadDeps, d: Prepared): Promise<void> {
  if (d.chosenTransport === 's3') await deps.jamf.refreshJcdsInventory(d.fileName);
  else await deps.jamf.refreshCdpInventory(d.fileName);
}

/** Polls Jamf until it reports the stored file's hash; throws VERIFY_FAILED on mismatch. */
export async function verifyStored(
  deps: UploadDeps,
  packageId: string,
  d: Prepared,
  hashes: FileHashes,
  signal?: AbortSignal,
): Promise<void> {
  const { clock, jamf } = deps;
  const deadline = clock.now() + deps.config.verifyTimeoutMs;
  let delay = 250;
  let last: { hashType?: unknown; hashValue?: unknown; md5?: unknown } = {};
  let nudged = 0;
  while (clock.now() < deadline) {
    signal?.throwIfAborted();
    const pkg = await jamf.getPackage(packageId);
    last = pkg;
    if (sameContent(pkg, hashes)) return;
    const reported =
      pkg.hashType === 'SHA3_512' && pkg.hashValue
        ? String(pkg.hashValue).toLowerCase()
        : undefined;
    const size = typeof pkg.size === 'number' ? pkg.size : Number(pkg.size ?? NaN);
    // Jamf has computed a hash for a file of our size that is not ours: the stored bytes differ.
    if (
      reported &&
      reported !== d.hashes?.sha3_512 &&
      Number.isFinite(size) &&
      size === d.size &&
      reported !== hashes.sha3_512
    ) {
      throw new AppError(
        'VERIFY_FAILED',
        `Jamf Pro reports SHA3-512 ${reported.slice(0, 16)}… for ${d.fileName} (package ${packageId}) but the local file is ${hashes.sha3_512.slice(0, 16)}…: the stored file is not the file sent. It was not marked as published; upload it again with --if-exists replace.`,
      );
    }
    if (clock.now() - nudged > 10_000) {
      nudged = clock.now();
      await refresh(deps, d).catch(() => undefined);
    }
    await clock.sleep(delay, signal);
    delay = Math.min(delay * 2, 1_000);
  }
  throw new AppError(
    'VERIFY_TIMEOUT',
    `Jamf Pro did not report the hash of ${d.fileName} (package ${packageId}) within ${Math.round(deps.config.verifyTimeoutMs / 1000)} s (last seen: hashType ${String(last.hashType)}, md5 ${String(last.md5)}). The job will retry verification; check the package's availability in Jamf Pro.`,
  );
}

export async function finalize(
  { deps, job, run, save }: StepArgs,
  at: UploadAt<'finalize'>,
): Promise<StepOutcome<UploadJobData, UploadResult>> {
  const { jamf, clock } = deps;
  const { log, signal } = run;
  await progress(job, at.size, 'verifying');
  let d: UploadAt<'finalize'> & { hashes: FileHashes };
  if (at.hashes) d = { ...at, hashes: at.hashes };
  else {
    // A multipart upload: the object is complete; the local hash may still be running.
    d = { ...at, hashes: await deps.parts.awaitHash(uploadRef(job), signal) };
    await save(d);
  }
  const hashes = d.hashes;
  let packageId =
    d.chosenTransport === 'package-upload' ? (d.existingPackageId ?? d.packageId) : d.packageId;
  if (!packageId) {
    packageId = await upsertPackage(jamf, d);
    d = { ...d, packageId };
    await save(d);
  } else if (d.chosenTransport === 'package-upload' && d.existingPackageId) {
    // Replace: record the new hash on the existing record (Jamf recomputes its own too).
    const full = await jamf.getPackage(packageId);
    await jamf.updatePackage(packageId, {
      ...full,
      hashType: 'SHA3_512',
      hashValue: hashes.sha3_512,
    });
  }
  await refresh(deps, d).catch(err =>
    log.warn({ err }, 'refresh-inventory failed; verifying anyway'),
  );
  await verifyStored(deps, packageId, d, hashes, signal);
  const durationMs = clock.now() - d.startedAt;
  const outcome = d.existingPackageId ? 'replaced' : 'created';
  await job.log(
    `verified: Jamf Pro's hash of the stored file equals the local SHA3-512; package ${packageId} ${outcome}`,
  );
  deps.metrics.uploadDuration(durationMs / 1000, d.chosenTransport, outcome);
  return {
    done: {
      packageId,
      fileName: d.fileName,
      size: d.size,
      sha3_512: hashes.sha3_512,
      md5: hashes.md5,
      transport: d.chosenTransport,
      bytesSent: d.bytesSent,
      durationMs,
      outcome,
    },
  };
}
