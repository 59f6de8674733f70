/**
 * Step 1, prepare: the job data is checked as input (a dashboard user can add any job:
 * the Jamf file name and the path's own extension, the file identity recorded at
 * enqueue), and the file is still what was enqueued; the transport is chosen; an
 * existing package with this fileName is looked up and ifExists applied. Nothing is sent
 * to S3 or created in Jamf here. Returns the result when the upload is skipped as
 * unchanged; otherwise the `stage` checkpoint.
 */
import { AppError } from '../../../shared/errors.ts';
import { hashIdentified, requireIdentity } from '../../../shared/file-identity.ts';
import {
  assertUnchanged,
  validateExtension,
  validateFileName,
  validatePathExtension,
} from '../../../shared/files.ts';
import type { UploadAt, UploadJobData, UploadResult } from '../../../shared/queues/jobs.ts';
import { comparableHash, knownHashes, sameContent } from '../../../shared/upload/content.ts';
import type { StepOutcome } from '../../step-machine.ts';
import type { StepArgs } from './job.ts';

export async function prepare(
  { deps, job, run }: StepArgs,
  d: UploadAt<'prepare'>,
): Promise<StepOutcome<UploadJobData, UploadResult>> {
  const { jamf } = deps;
  const { log, signal } = run;
  validateFileName(d.fileName);
  validateExtension(d.fileName);
  validatePathExtension(String(d.path), d.fileName);
  requireIdentity(d);
  await assertUnchanged(d);
  const transport = await deps.transport.choose(d.transport);
  const started = d.startedAt ?? deps.clock.now();

  if (d.package.category) {
    const id = await jamf.findCategoryId(d.package.category);
    if (id === undefined) {
      throw new AppError(
        'JAMF_NOT_FOUND',
        `The category ${JSON.stringify(d.package.category)} does not exist in Jamf Pro: create it (Settings > Categories) or leave --category out.`,
      );
    }
  }

  // Known hashes (sync up passes them) are input: malformed ones, or those of an earlier
  // version without SHA-256, are not trusted; the file is hashed again.
  let hashes = knownHashes(d.hashes);
  const existing = await jamf.findPackageByFileName(d.fileName);
  let existingPackageId: string | undefined;
  let priorHash: string | undefined;
  let priorSha256: string | undefined;
  if (existing) {
    if (d.ifExists === 'fail') {
      throw new AppError(
        'PACKAGE_EXISTS',
        `A package with the file name ${d.fileName} already exists (id ${existing.id}): use --if-exists replace to overwrite it or skip to keep it.`,
      );
    }
    // SHA-256; and, to skip a record that carries no sha256, the hash it has instead.
    const other = d.ifExists === 'skip' ? comparableHash(existing) : undefined;
    const extra = other && other !== 'sha256' && !hashes?.[other] ? other : undefined;
    if (!hashes || extra) {
      const h = await hashIdentified(d, signal, extra ? ['sha256', extra] : ['sha256']);
      if (hashes && hashes.sha256 !== h.sha256)
        throw new AppError(
          'FILE_CHANGED',
          `${d.path} changed since it was hashed at enqueue (its SHA-256 differs); nothing was sent. Enqueue it again once it is final.`,
        );
      const { bytes: _b, ...digests } = h;
      hashes = { ...hashes, ...digests };
    }
    await assertUnchanged(d);
    if (d.ifExists === 'skip') {
      if (sameContent(existing, hashes)) {
        await job.log(`unchanged: package ${existing.id} already holds these bytes; nothing sent`);
        log.info({ packageId: existing.id }, 'unchanged, skipped');
        return {
          done: {
            packageId: String(existing.id),
            fileName: d.fileName,
            size: d.size,
            sha256: hashes.sha256,
            ...(hashes.sha3_512 ? { sha3_512: hashes.sha3_512 } : {}),
            transport,
            bytesSent: 0,
            durationMs: deps.clock.now() - started,
            outcome: 'unchanged',
          },
        };
      }
      throw new AppError(
        'PACKAGE_EXISTS',
        `A package with the file name ${d.fileName} already exists (id ${existing.id}) with different contents: use --if-exists replace to overwrite it.`,
      );
    }
    existingPackageId = String(existing.id);
    // What the record shows now describes the old file: convergence waits for another hash.
    priorHash = existing.hashValue?.toLowerCase() || undefined;
    priorSha256 = existing.sha256?.toLowerCase() || undefined;
  }
  // A new file is hashed while it is sent (small files in stage, large ones by the hash
  // job beside the parts), so the bytes are read once.

  await job.log(
    `prepared: transport ${transport}, ${existingPackageId ? `replacing package ${existingPackageId}` : 'new package'}`,
  );
  return {
    next: {
      ...d,
      step: 'stage',
      chosenTransport: transport,
      startedAt: started,
      hashes,
      ...(existingPackageId ? { existingPackageId } : {}),
      ...(priorHash ? { priorHash } : {}),
      ...(priorSha256 ? { priorSha256 } : {}),
    },
  };
}
