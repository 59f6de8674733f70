/**
 * The package record of an upload: its fields from the job's metadata and hashes, and
 * the create-or-update of an s3-transport upload (Pro API; the Classic API where the Pro
 * packages API is missing).
 */
import { errorCode } from '../../../shared/errors.ts';
import type { Prepared } from '../../../shared/queues/jobs.ts';
import type { PackagesApi } from './job.ts';

/** The package fields for create/update from the job's metadata and hashes. */
export async function packageFields(
  jamf: Pick<PackagesApi, 'findCategoryId'>,
  d: Prepared,
): Promise<Record<string, unknown> & { packageName: string; fileName: string }> {
  const m = d.package;
  const categoryId = m.category ? await jamf.findCategoryId(m.category) : undefined;
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
export async function upsertPackage(jamf: PackagesApi, d: Prepared): Promise<string> {
  const fields = await packageFields(jamf, d);
  const update = async (id: string): Promise<string> => {
    const full = await jamf.getPackage(id);
    await jamf.updatePackage(id, { ...full, ...fields });
    return id;
  };
  // prepare looked the file name up; a record created since then (by an earlier run of
  // this job that died before its checkpoint) is adopted on the conflict below.
  if (d.existingPackageId) return update(d.existingPackageId);
  try {
    return String((await jamf.createPackage(fields)).id);
  } catch (err) {
    // Created meanwhile by a stale run of this job (a worker that lost its lock and woke
    // up): Jamf refuses the duplicate name. That record is ours: adopt it.
    if (errorCode(err) === 'JAMF_CONFLICT') {
      const raced = await jamf.findPackageByFileName(d.fileName);
      if (raced) return update(String(raced.id));
    }
    // Servers without the Pro packages API (before 11.5) answer 404: use the Classic API.
    if (errorCode(err) !== 'JAMF_NOT_FOUND') throw err;
    const { id } = await jamf.classicCreatePackage({
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
