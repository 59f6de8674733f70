/**
 * Step 4, finalize: wait for the local hash when the hash job still runs (multipart
 * uploads complete the object without waiting for it), create or update the package record (Pro API, Classic API as the
 * fallback) with hashType SHA3_512 and the local hash, refresh inventory for this file,
 * then verify: Jamf's hash of the stored file must equal the local one. Jamf computes
 * hashes itself once the file is in place, so this polls with backoff within a time
 * bound. A mismatch fails the job and says so; it is never reported as a success.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { AppError, errorCode } from '../../shared/errors.ts';
import type { FileHashes, UploadJobData, UploadResult } from '../../shared/queues/jobs.ts';
import type { WorkerContext } from '../context.ts';
import { sameContent } from './upload-prepare.ts';
import { progress, saveStep, type StepArgs } from './upload-job.ts';
import { awaitHash } from './upload-s3.ts';

/** The package fields for create/update from the job's metadata and hashes. */
export async function packageFields(
  ctx: WorkerContext,
  d: UploadJobData,
): Promise<Record<string, unknown> & { packageName: string; fileName: string }> {
  const m = d.package;
  const categoryId = m.category ? await ctx.jamf.findCategoryId(m.category) : undefined;
  return {
    packageName: m.packageName ?? d.fileName,
    fileName: d.fileName,
    ...(categoryId !== undefined ? { categoryId: String(categoryId) } : {}),
    ...(m.priority !== undefined ? { priority: m.priority } : {}),
    ...(m.info !== undefined ? { info: m.info } : {}),
    ...(m.notes !== undefined ? { notes: m.notes } : {}),
    ...(m.rebootRequired !== undefined ? { rebootRequired: m.rebootRequired } : {}),
    ...(m.osRequirements !== undefined ? { osRequirements: m.osRequirements } : {}),
    ...(d.hashes ? { hashType: 'SHA3_512', hashValue: d.hashes.sha3_512, md5: d.hashes.md5 } : {}),
  };
}

/** Creates or updates the package record of an s3-transport upload; returns its id. */
async function upsertPackage(ctx: WorkerContext, d: UploadJobData): Promise<string> {
  const fields = await packageFields(ctx, d);
  const update = async (id: string): Promise<string> => {
    const full = await ctx.jamf.getPackage(id);
    await ctx.jamf.updatePackage(id, { ...full, ...fields });
    return id;
  };
  // prepare looked the file name up; a record created since then (by an earlier run of
  // this job that died before its checkpoint) is adopted on the conflict below.
  if (d.existingPackageId) return update(d.existingPackageId);
  try {
    return String((await ctx.jamf.createPackage(fields)).id);
  } catch (err) {
    // Created meanwhile by a stale run of this job (a worker that lost its lock and woke
    // up): Jamf refuses the duplicate name. That record is ours: adopt it.
    if (errorCode(err) === 'JAMF_CONFLICT') {
      const raced = await ctx.jamf.findPackageByFileName(d.fileName);
      if (raced) return update(String(raced.id));
    }
    // Servers without the Pro packages API (before 11.5) answer 404: use the Classic API.
    if (errorCode(err) !== 'JAMF_NOT_FOUND') throw err;
    const { id } = await ctx.jamf.classicCreatePackage({
      name: fields.packageName,
      filename: d.fileName,
      ...(d.package.category ? { category: d.package.category } : {}),
      ...(d.package.info ? { info: d.package.info } : {}),
      ...(d.package.notes ? { notes: d.package.notes } : {}),
      ...(d.package.priority !== undefined ? { priority: d.package.priority } : {}),
      // The Classic API's SHA_512 is SHA-2; MD5 is the hash both sides agree on.
      ...(d.hashes ? { hash_type: 'MD5', hash_value: d.hashes.md5 } : {}),
    });
    return String(id);
  }
}

/** Polls Jamf until it reports the stored file's hash; throws VERIFY_FAILED on mismatch. */
export async function verifyStored(
  ctx: WorkerContext,
  packageId: string,
  d: UploadJobData,
  hashes: FileHashes,
  signal?: AbortSignal,
): Promise<void> {
  const deadline = Date.now() + ctx.config.verifyTimeoutMs;
  let delay = 250;
  let last: { hashType?: unknown; hashValue?: unknown; md5?: unknown } = {};
  let nudged = 0;
  while (Date.now() < deadline) {
    signal?.throwIfAborted();
    const pkg = await ctx.jamf.getPackage(packageId);
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
    if (Date.now() - nudged > 10_000) {
      nudged = Date.now();
      await refresh(ctx, d).catch(() => undefined);
    }
    await sleep(delay);
    delay = Math.min(delay * 2, 1_000);
  }
  throw new AppError(
    'VERIFY_TIMEOUT',
    `Jamf Pro did not report the hash of ${d.fileName} (package ${packageId}) within ${Math.round(ctx.config.verifyTimeoutMs / 1000)} s (last seen: hashType ${String(last.hashType)}, md5 ${String(last.md5)}). The job will retry verification; check the package's availability in Jamf Pro.`,
    { retryable: true },
  );
}

async function refresh(ctx: WorkerContext, d: UploadJobData): Promise<void> {
  if (d.chosenTransport === 's3') await ctx.jamf.refreshJcdsInventory(d.fileName);
  else await ctx.jamf.refreshCdpInventory(d.fileName);
}

export async function finalize({ ctx, job, log, signal }: StepArgs): Promise<UploadResult> {
  await progress(job, job.data.size, 'verifying');
  if (!job.data.hashes && job.data.multipart) {
    // A multipart upload: the object is complete; the local hash may still be running.
    const hashes = await awaitHash(ctx, job, signal);
    await saveStep(job, { hashes });
  }
  const d = job.data;
  const hashes = d.hashes;
  if (!hashes) throw new AppError('INTERNAL', `${d.fileName}: finalize without the file's hashes`);
  let packageId =
    d.chosenTransport === 'package-upload' ? (d.existingPackageId ?? d.packageId) : d.packageId;
  if (!packageId) {
    packageId = await upsertPackage(ctx, d);
    await saveStep(job, { packageId });
  } else if (d.chosenTransport === 'package-upload' && d.existingPackageId) {
    // Replace: record the new hash on the existing record (Jamf recomputes its own too).
    const full = await ctx.jamf.getPackage(packageId);
    await ctx.jamf.updatePackage(packageId, {
      ...full,
      hashType: 'SHA3_512',
      hashValue: hashes.sha3_512,
    });
  }
  await refresh(ctx, d).catch(err =>
    log.warn({ err }, 'refresh-inventory failed; verifying anyway'),
  );
  await verifyStored(ctx, packageId, d, hashes, signal);
  const durationMs = Date.now() - (d.startedAt ?? job.timestamp);
  const outcome = d.existingPackageId ? 'replaced' : 'created';
  await job.log(
    `verified: Jamf Pro's hash of the stored file equals the local SHA3-512; package ${packageId} ${outcome}`,
  );
  ctx.metrics.uploadDuration(durationMs / 1000, d.chosenTransport ?? 's3', outcome);
  return {
    packageId,
    fileName: d.fileName,
    size: d.size,
    sha3_512: hashes.sha3_512,
    md5: hashes.md5,
    transport: d.chosenTransport ?? 's3',
    bytesSent: d.bytesSent ?? d.size,
    durationMs,
    outcome,
  };
}
