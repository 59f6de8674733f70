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

export interface PackageRecord {
  id: number;
  /** Client-writable fields, coerced; absent ones read as null (or false for booleans). */
  fields: Record<string, FieldValue>;
  /** Set by the upload endpoint once a file is stored ("READY"). */
  cloudTransferStatus: string;
  /** A PUT carrying `size` blanked the server-managed size (jamf-cli PR #258). */
  sizeBlanked: boolean;
}

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
