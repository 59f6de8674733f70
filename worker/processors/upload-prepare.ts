/**
 * Step 1, prepare: the file is still what was enqueued; the transport is chosen; an
 * existing package with this fileName is looked up and ifExists applied. Nothing is
 * sent to S3 or created in Jamf here.
 */
import { AppError } from '../../shared/errors.ts';
import { assertUnchanged, checkUploadFile } from '../../shared/files.ts';
import { hashFile } from '../../shared/hash.ts';
import type { FileHashes, UploadResult } from '../../shared/queues/jobs.ts';
import { saveStep, type StepArgs } from './upload-job.ts';

interface JamfPackageHashes {
  id: string;
  hashType?: string | null | undefined;
  hashValue?: string | null | undefined;
  md5?: string | null | undefined;
  size?: number | null | undefined;
}

/** True when Jamf's record of the stored file has the same content as the local file. */
export function sameContent(pkg: JamfPackageHashes, local: FileHashes): boolean {
  if (pkg.hashType === 'SHA3_512' && pkg.hashValue)
    return pkg.hashValue.toLowerCase() === local.sha3_512;
  if (pkg.md5) return pkg.md5.toLowerCase() === local.md5;
  if (pkg.hashType === 'MD5' && pkg.hashValue) return pkg.hashValue.toLowerCase() === local.md5;
  return false;
}

/** Returns a final result when the upload is skipped as unchanged; otherwise moves to stage. */
export async function prepare({
  ctx,
  job,
  log,
  signal,
}: StepArgs): Promise<UploadResult | undefined> {
  const d = job.data;
  await checkUploadFile(d.path, d.fileName);
  await assertUnchanged(d);
  const transport = await ctx.transport(d.transport);
  const started = d.startedAt ?? Date.now();

  if (d.package.category) {
    const id = await ctx.jamf.findCategoryId(d.package.category);
    if (id === undefined) {
      throw new AppError(
        'JAMF_NOT_FOUND',
        `The category ${JSON.stringify(d.package.category)} does not exist in Jamf Pro: create it (Settings > Categories) or leave --category out.`,
      );
    }
  }

  let hashes = d.hashes;
  const existing = await ctx.jamf.findPackageByFileName(d.fileName);
  let existingPackageId: string | undefined;
  if (existing) {
    if (d.ifExists === 'fail') {
      throw new AppError(
        'PACKAGE_EXISTS',
        `A package with the file name ${d.fileName} already exists (id ${existing.id}): use --if-exists replace to overwrite it or skip to keep it.`,
      );
    }
    hashes ??= await hashFile(d.path, signal ? { signal } : {});
    await assertUnchanged(d);
    if (d.ifExists === 'skip') {
      if (sameContent(existing, hashes)) {
        await job.log(`unchanged: package ${existing.id} already holds these bytes; nothing sent`);
        log.info({ packageId: existing.id }, 'unchanged, skipped');
        return {
          packageId: String(existing.id),
          fileName: d.fileName,
          size: d.size,
          sha3_512: hashes.sha3_512,
          md5: hashes.md5,
          transport,
          bytesSent: 0,
          durationMs: Date.now() - started,
          outcome: 'unchanged',
        };
      }
      throw new AppError(
        'PACKAGE_EXISTS',
        `A package with the file name ${d.fileName} already exists (id ${existing.id}) with different contents: use --if-exists replace to overwrite it.`,
      );
    }
    existingPackageId = String(existing.id);
  }
  // A new file is hashed while it is sent (small files in stage, large ones by the hash
  // child), so the bytes are read once.

  await job.log(
    `prepared: transport ${transport}, ${existingPackageId ? `replacing package ${existingPackageId}` : 'new package'}`,
  );
  await saveStep(job, {
    step: 'stage',
    chosenTransport: transport,
    startedAt: started,
    ...(hashes ? { hashes: { sha3_512: hashes.sha3_512, md5: hashes.md5 } } : {}),
    ...(existingPackageId ? { existingPackageId } : {}),
  });
  return undefined;
}
