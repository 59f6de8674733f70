/**
 * The package record the Pro and Classic APIs share: its fields (jamf-api.md 1.4 and 2.3,
 * types as Jamf's own Replicator reads them: id, categoryId and size are strings), the
 * required fields of POST /api/v1/packages, and body coercion the way Jamf's JSON binding
 * does it ("true" and "10" are accepted for a boolean and an integer).
 */
import { JamfApiError, type ApiErrorItem } from './errors.ts';

type FieldType = 'string' | 'boolean' | 'int';

/** Client-writable fields, in Jamf's output order. */
export const PACKAGE_FIELDS: Record<string, FieldType> = {
  packageName: 'string',
  fileName: 'string',
  categoryId: 'string',
  info: 'string',
  notes: 'string',
  priority: 'int',
  osRequirements: 'string',
  fillUserTemplate: 'boolean',
  indexed: 'boolean',
  uninstall: 'boolean',
  fillExistingUsers: 'boolean',
  swu: 'boolean',
  rebootRequired: 'boolean',
  selfHealNotify: 'boolean',
  selfHealingAction: 'string',
  osInstall: 'boolean',
  serialNumber: 'string',
  parentPackageId: 'string',
  basePath: 'string',
  suppressUpdates: 'boolean',
  ignoreConflicts: 'boolean',
  suppressFromDock: 'boolean',
  suppressEula: 'boolean',
  suppressRegistration: 'boolean',
  installLanguage: 'string',
  md5: 'string',
  sha256: 'string',
  hashType: 'string',
  hashValue: 'string',
  sha3512: 'string',
  osInstallerVersion: 'string',
  manifest: 'string',
  manifestFileName: 'string',
  format: 'string',
};

/** Required by POST /api/v1/packages (SPEC, jamf-api.md 2.3). */
export const REQUIRED_FIELDS = [
  'packageName',
  'fileName',
  'categoryId',
  'priority',
  'fillUserTemplate',
  'rebootRequired',
  'osInstall',
  'suppressUpdates',
  'suppressFromDock',
  'suppressEula',
  'suppressRegistration',
] as const;

export const ALLOWED_EXTENSIONS = ['pkg', 'mpkg', 'dmg', 'zip'];

export type FieldValue = string | number | boolean | null;

/** The stored object a package record was last processed from. */
export interface ProcessedFile {
  key: string;
  etag: string;
  /** ISO 8601, as the store reports it. */
  lastModified: string;
  size: number;
  /** False when the bytesNeverLandCount fault made it "never land" (size "0"). */
  landed: boolean;
}

/** Processing to come (persisted, so a restart of the simulator resumes it). */
export interface PendingProcessing {
  /** `upload`: after POST .../upload (Jamf's own transfer); `s3`: a JCDS object appeared. */
  source: 'upload' | 's3';
  /** Epoch ms. */
  dueAt: number;
  /** Identifies this scheduling: a processing that finds another token was superseded. */
  token: string;
}

/**
 * A package record. The hash fields (md5, sha256, hashType, hashValue, sha3512) live in
 * `fields`: exactly as the client wrote them (jamf-wire-2026.md 1.2), until processing of a
 * stored file overwrites them with the server's own. `size` and `cloudTransferStatus` are
 * the server's alone.
 */
export interface PackageRecord {
  id: number;
  /** Client-writable fields, coerced; absent ones read as null (or false for booleans). */
  fields: Record<string, FieldValue>;
  /**
   * "" (never uploaded), IN_PROGRESS (a package upload is being processed, or its bytes never
   * landed) or READY (processed).
   */
  cloudTransferStatus: string;
  /**
   * The server-managed size, a byte count as a string: null before any file was processed,
   * "" after a PUT blanked it (until refresh-inventory), "0" when the bytes never landed.
   */
  size: string | null;
  /** The stored object last processed for this record; absent: never. */
  file?: ProcessedFile | undefined;
  pending?: PendingProcessing | undefined;
  /** The staleSizeMs transient: `value` replaces the shown size at `at` (epoch ms). */
  sizeLater?: { value: string; at: number } | undefined;
}

/**
 * jamf-wire-2026.md 1.4: any metadata PUT blanks the server-managed size to "" until
 * refresh-inventory (a staleSizeMs transient in progress ends with it). A record whose size
 * was never known (null: no file processed yet) keeps null.
 */
export function blankSize(rec: PackageRecord): PackageRecord {
  if (rec.size === null || rec.size === undefined) return rec;
  return { ...rec, size: '', sizeLater: undefined };
}

/** The hash fields a client may write and processing overwrites. */
export const HASH_FIELDS = ['md5', 'sha256', 'hashType', 'hashValue', 'sha3512'] as const;

function coerce(name: string, type: FieldType, value: unknown): FieldValue {
  if (value === null || value === undefined) return null;
  const bad = (): never => {
    throw new JamfApiError(400, 'INVALID_FIELD', `Invalid value for ${name}`, name);
  };
  switch (type) {
    case 'string':
      if (typeof value === 'string') return value;
      if (typeof value === 'number' || typeof value === 'boolean') return String(value);
      return bad();
    case 'boolean':
      if (typeof value === 'boolean') return value;
      if (value === 'true' || value === 'false') return value === 'true';
      return bad();
    case 'int': {
      const n = typeof value === 'string' && value.trim() !== '' ? Number(value) : value;
      if (typeof n === 'number' && Number.isInteger(n)) return n;
      return bad();
    }
  }
}

/** The writable fields of a JSON body, coerced; unknown and read-only fields are ignored. */
export function fieldsFromBody(body: Record<string, unknown>): Record<string, FieldValue> {
  const out: Record<string, FieldValue> = {};
  for (const [name, type] of Object.entries(PACKAGE_FIELDS)) {
    if (Object.hasOwn(body, name)) out[name] = coerce(name, type, body[name]);
  }
  return out;
}

/** Every required field that is missing or null, as Jamf's validation reports them. */
export function missingRequired(fields: Record<string, FieldValue>): ApiErrorItem[] {
  return REQUIRED_FIELDS.filter(f => fields[f] === undefined || fields[f] === null).map(f => ({
    code: 'INVALID_FIELD',
    description: 'must not be null',
    id: '0',
    field: f,
  }));
}

export function hasAllowedExtension(fileName: string): boolean {
  const dot = fileName.lastIndexOf('.');
  if (dot < 0) return false;
  return ALLOWED_EXTENSIONS.includes(fileName.slice(dot + 1).toLowerCase());
}

export function unsupportedFileType(): JamfApiError {
  return new JamfApiError(
    400,
    'UNSUPPORTED_FILE_TYPE',
    'Unsupported file extension. Acceptable formats are pkg, mpkg, dmg or zip.',
    'fileName',
  );
}

export function duplicatePackageName(): JamfApiError {
  return new JamfApiError(400, 'DUPLICATE_FIELD', 'duplicate name', 'packageName');
}

export function fieldString(rec: PackageRecord, name: string): string | null {
  const v = rec.fields[name];
  return v === undefined || v === null ? null : String(v);
}

/** Fills defaults so every field is present, as Jamf's GET shows them. */
export function withDefaults(fields: Record<string, FieldValue>): Record<string, FieldValue> {
  const out: Record<string, FieldValue> = {};
  for (const [name, type] of Object.entries(PACKAGE_FIELDS)) {
    const v = fields[name];
    out[name] = v === undefined ? (type === 'boolean' ? false : null) : v;
  }
  return out;
}
