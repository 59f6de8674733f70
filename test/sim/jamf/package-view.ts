/**
 * Package lookups and the Pro API's view of a package. The record shows what it holds
 * (jamf-wire-2026.md 1): the hash fields exactly as the client wrote them until Jamf's
 * processing of a stored file replaced them with its own (processing.ts); `size` and
 * `cloudTransferStatus` are the server's. A record that never had a file reads hashType
 * SHA_512 unless the client wrote one (wire 1.3).
 */
import type { JamfContext } from './context.ts';
import { JamfApiError } from './errors.ts';
import { deleteFile } from './jcds-files.ts';
import { fieldString, withDefaults, type FieldValue, type PackageRecord } from './package-model.ts';

export function packageById(ctx: JamfContext, raw: string | undefined): PackageRecord {
  const id = Number(raw);
  const rec = Number.isSafeInteger(id) && id > 0 ? ctx.packages.get(id) : undefined;
  if (!rec) {
    throw new JamfApiError(404, 'INVALID_ID', `Package with id ${raw ?? ''} does not exist`, 'id');
  }
  return rec;
}

export function packageByName(
  ctx: JamfContext,
  name: string,
  exceptId = 0,
): PackageRecord | undefined {
  const wanted = name.toLowerCase();
  return ctx.packages
    .all()
    .find(p => p.id !== exceptId && fieldString(p, 'packageName')?.toLowerCase() === wanted);
}

/** Removes the stored file (every object of that name) unless another package uses it. */
export async function deleteFileIfUnused(ctx: JamfContext, fileName: string | null): Promise<void> {
  if (!fileName) return;
  if (ctx.packages.all().some(p => fieldString(p, 'fileName') === fileName)) return;
  await deleteFile({ store: ctx.store, bucket: ctx.settings.bucket }, fileName);
}

export interface HashFields {
  md5: string | null;
  sha256: string | null;
  hashType: string | null;
  hashValue: string | null;
  sha3512: string | null;
  size: string | null;
  cloudTransferStatus: string;
}

/** Hash, size and transfer fields as Jamf reports them for this package now. */
export function hashFields(rec: PackageRecord): HashFields {
  return {
    md5: fieldString(rec, 'md5'),
    sha256: fieldString(rec, 'sha256'),
    hashType: fieldString(rec, 'hashType') ?? (rec.file ? null : 'SHA_512'),
    hashValue: fieldString(rec, 'hashValue'),
    sha3512: fieldString(rec, 'sha3512'),
    size: rec.size ?? null,
    cloudTransferStatus: rec.cloudTransferStatus,
  };
}

/**
 * The Pro API JSON of a package (GET /api/v1/packages/{id}, list results, PUT answer).
 * Without `packageSha256` (a tenant that does not fill it) the JSON has no `sha256` key.
 */
export function presentPackage(
  rec: PackageRecord,
  settings: { packageSha256: boolean },
): Record<string, FieldValue> {
  const json: Record<string, FieldValue> = {
    id: String(rec.id),
    ...withDefaults(rec.fields),
    ...hashFields(rec),
  };
  if (!settings.packageSha256) delete json['sha256'];
  return json;
}

export function packageHref(base: string, id: number): string {
  return `${base}/api/v1/packages/${id}`;
}
