/**
 * The package record of an upload, written in Jamf's own provider's order
 * (jamf-wire-2026.md section 2): created without any hash or size field (Jamf computes
 * those from the stored file; a client-sent hash would be stored unchecked and read back),
 * and its metadata written only after convergence, as GET, merge, PUT.
 *
 * The Classic API fallback (servers before 11.5 without the Pro packages API) is gone: JCDS
 * is Jamf Cloud only, every Jamf Cloud instance runs a current release, and the Classic
 * API cannot be converged on the hashes Jamf computes.
 */
import { errorCode } from '../../../shared/errors.ts';
import type { JamfPackage } from '../../../shared/jamf/types.ts';
import type { Prepared } from '../../../shared/queues/jobs.ts';
import type { PackagesApi } from './job.ts';

/** The package fields from the job's metadata (never a hash or a size). */
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
  };
}

/**
 * Creates the record of a new package; returns its id, and whether it was adopted: created
 * meanwhile by a stale run of this job (a worker that lost its lock and woke up), which
 * Jamf refuses as a duplicate name. That record is ours.
 */
export async function createRecord(
  jamf: PackagesApi,
  d: Prepared,
): Promise<{ id: string; adopted: boolean }> {
  const fields = await packageFields(jamf, d);
  try {
    return { id: String((await jamf.createPackage(fields)).id), adopted: false };
  } catch (err) {
    if (errorCode(err) === 'JAMF_CONFLICT') {
      const raced = await jamf.findPackageByFileName(d.fileName);
      if (raced) return { id: String(raced.id), adopted: true };
    }
    throw err;
  }
}

/** The metadata fields whose value on the record differs from the job's. */
function changedFields(record: JamfPackage, fields: Record<string, unknown>): string[] {
  const current = record as Record<string, unknown>;
  return Object.keys(fields).filter(k => String(current[k] ?? '') !== String(fields[k] ?? ''));
}

/**
 * After convergence: GET, merge the job's metadata, PUT, only when a field differs.
 * Returns true when it wrote (the PUT blanked `size`: the caller converges again).
 */
export async function writeMetadata(
  jamf: PackagesApi,
  packageId: string,
  d: Prepared,
): Promise<boolean> {
  const fields = await packageFields(jamf, d);
  const record = await jamf.getPackage(packageId);
  if (changedFields(record, fields).length === 0) return false;
  // updatePackage drops every server-managed field (hashes, size, status) from the body.
  await jamf.updatePackage(packageId, { ...record, ...fields });
  return true;
}
