/**
 * Step 2 on the `package-upload` transport (Jamf Pro 11.5+, the supported path once the
 * JCDS v1 endpoints are gone): the package record is created first (or the existing one
 * reused for replace), then the file is streamed as multipart/form-data to
 * POST /api/v1/packages/{id}/upload. Not resumable: a failure retries the whole file.
 * A package this job created is deleted again if the upload fails for good, so no
 * package is left without its file.
 */
import { hashIdentified, openIdentified } from '../../../shared/file-identity.ts';
import { assertUnchanged } from '../../../shared/files.ts';
import type { UploadAt, UploadJobData, UploadResult } from '../../../shared/queues/jobs.ts';
import { knownHashes } from '../../../shared/upload/content.ts';
import type { StepOutcome } from '../../step-machine.ts';
import { progress, type StepArgs } from './job.ts';
import { packageFields } from './record.ts';

export async function stagePackageUpload(
  { deps, job, run, save }: StepArgs,
  stage: UploadAt<'stage'>,
): Promise<StepOutcome<UploadJobData, UploadResult>> {
  const { jamf, clock } = deps;
  const { log, signal } = run;
  let d = stage;
  let packageId = d.existingPackageId ?? d.packageId;
  if (!packageId) {
    // A retry after a crash between create and checkpoint finds the record by fileName.
    const found = await jamf.findPackageByFileName(d.fileName);
    if (found) {
      packageId = String(found.id);
      d = { ...d, packageId };
    } else {
      const created = await jamf.createPackage(await packageFields(jamf, d));
      packageId = String(created.id);
      d = { ...d, packageId, packageCreated: true };
    }
    await save(d);
    if (!found) await job.log(`package ${packageId} created for ${d.fileName}`);
  }
  await assertUnchanged(d);
  // Large files were not hashed in prepare: hash them (SHA-256) while they stream (page
  // cache). Hashes of an earlier version's checkpoint (no SHA-256) are taken again.
  const known = knownHashes(d.hashes);
  const hashing = known ? Promise.resolve(known) : hashIdentified(d, signal);
  hashing.catch(() => undefined);
  let lastReport = 0;
  // A worker that lost the lock does not send the file into a record the new owner uses.
  await run.lock.check(`upload the file to package ${packageId}`);
  await jamf.uploadPackageFile(packageId, d.path, {
    fileName: d.fileName,
    // Every pass reads the enqueued file through a descriptor checked to be it.
    openFile: () => openIdentified(d),
    ...(signal ? { signal } : {}),
    onProgress: (sent: number) => {
      const now = clock.now();
      if (now - lastReport > 500 || sent === d.size) {
        lastReport = now;
        void progress(job, sent, 'uploading to Jamf Pro').catch(() => undefined);
      }
    },
  });
  const hashes = await hashing;
  await assertUnchanged(d);
  deps.metrics.bytesUploaded(d.size);
  await job.log(`uploaded ${d.size} bytes through POST /api/v1/packages/${packageId}/upload`);
  log.info({ packageId }, 'package upload done');
  return {
    next: {
      ...d,
      step: 'finalize',
      stored: true,
      bytesSent: d.size,
      hashes: { ...known, sha256: hashes.sha256 },
    },
  };
}
