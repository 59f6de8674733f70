/**
 * Package lookups and the Pro API's view of a package. Hashes and size are never the
 * client's claims once a file exists: they are computed from the stored object, as Jamf
 * computes them from the JCDS file (jamf-api.md 2.3 "Hash fields"). While the stored file is
 * still being hashed they read null; with no file stored yet, the client's fields show as
 * given and size is null.
 */
import { fileState, objectKey, type JamfContext } from './context.ts';
import { JamfApiError } from './errors.ts';
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

/** Removes the stored file unless another package still points at it. */
export async function deleteFileIfUnused(ctx: JamfContext, fileName: string | null): Promise<void> {
  if (!fileName) return;
  if (ctx.packages.all().some(p => fieldString(p, 'fileName') === fileName)) return;
  await ctx.store.delete(ctx.settings.bucket, objectKey(ctx, fileName));
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
export async function hashFields(ctx: JamfContext, rec: PackageRecord): Promise<HashFields> {
  const fileName = fieldString(rec, 'fileName');
  const file = fileName ? await fileState(ctx, fileName) : ({ state: 'missing' } as const);
  if (file.state === 'ready') {
    const h = file.hashes;
    return {
      md5: h.md5,
      sha256: h.sha256,
      hashType: 'SHA3_512',
      hashValue: h.sha3_512,
      sha3512: h.sha3_512,
      size: rec.sizeBlanked ? null : String(h.size),
      cloudTransferStatus: 'READY',
    };
  }
  if (file.state === 'pending') {
    return {
      md5: null,
      sha256: null,
      hashType: null,
      hashValue: null,
      sha3512: null,
      size: null,
      cloudTransferStatus: 'IN_PROGRESS',
    };
  }
  return {
    md5: fieldString(rec, 'md5'),
    sha256: fieldString(rec, 'sha256'),
    hashType: fieldString(rec, 'hashType'),
    hashValue: fieldString(rec, 'hashValue'),
    sha3512: fieldString(rec, 'sha3512'),
    size: null,
    cloudTransferStatus: rec.cloudTransferStatus,
  };
}

/** The Pro API JSON of a package (GET /api/v1/packages/{id}, list results, PUT answer). */
export async function presentPackage(
  ctx: JamfContext,
  rec: PackageRecord,
): Promise<Record<string, FieldValue>> {
  const fields = withDefaults(rec.fields);
  const hashes = await hashFields(ctx, rec);
  return { id: String(rec.id), ...fields, ...hashes };
}

export function packageHref(base: string, id: number): string {
  return `${base}/api/v1/packages/${id}`;
}
