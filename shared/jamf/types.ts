/**
 * Shapes of the Jamf Pro API answers the client uses (jamf-api.md §2), as zod schemas
 * and the types inferred from them. Schemas are loose: they check the fields the product
 * relies on and keep whatever else Jamf sends, so a newer Jamf Pro with more fields
 * still parses. Ids are strings in the Pro API; a number is accepted and made a string.
 */
import { z } from 'zod';

const id = z.union([z.string().min(1), z.number()]).transform(v => String(v));
const optText = z.string().nullish();
const optBool = z.boolean().nullish();

/** `POST /api/v1/jcds/files` and `POST /api/v1/jcds/renew-credentials`. */
export const JcdsCredentialsSchema = z
  .looseObject({
    accessKeyID: z.string().min(1),
    secretAccessKey: z.string().min(1),
    sessionToken: z.string().min(1),
    region: z.string(),
    /** Epoch seconds (int64 in Jamf's spec). */
    expiration: z.coerce.number(),
    bucketName: z.string().min(1),
    path: z.string(),
    uuid: z.string().nullish(),
  })
  .transform(c => ({
    accessKeyID: c.accessKeyID,
    secretAccessKey: c.secretAccessKey,
    sessionToken: c.sessionToken,
    region: c.region,
    expiration: c.expiration,
    expirationDate: new Date(c.expiration * 1000),
    bucketName: c.bucketName,
    path: c.path,
    uuid: c.uuid ?? undefined,
  }));

/**
 * Temporary S3 credentials for one JCDS upload. The S3 key is `path + fileName`.
 * Secret: never log it, never put it in job data (the vault encrypts it).
 */
export type JcdsCredentials = z.output<typeof JcdsCredentialsSchema>;

const JcdsFileSchema = z.looseObject({
  fileName: z.string().min(1),
  length: z.coerce.number(),
  md5: optText,
  region: optText,
  sha3: optText,
});

/** `GET /api/v1/jcds/files`: a bare array (an old `{files: […]}` wrapper is tolerated). */
export const JcdsFileListSchema = z
  .union([z.array(JcdsFileSchema), z.object({ files: z.array(JcdsFileSchema) })])
  .transform(v => (Array.isArray(v) ? v : v.files));

export interface JcdsFile {
  fileName: string;
  /** Bytes. */
  length: number;
  md5: string | undefined;
  region: string | undefined;
  /** SHA3-512, hex. */
  sha3: string | undefined;
}

export const DownloadUrlSchema = z.looseObject({ uri: z.string().min(1) });

/** A package of the Jamf Pro API (`GET /api/v1/packages/{id}`); unknown fields are kept. */
export const PackageSchema = z.looseObject({
  id,
  packageName: z.string(),
  fileName: z.string(),
  categoryId: z.union([z.string(), z.number()]).transform(String).nullish(),
  info: optText,
  notes: optText,
  priority: z.coerce.number().nullish(),
  osRequirements: optText,
  fillUserTemplate: optBool,
  rebootRequired: optBool,
  osInstall: optBool,
  suppressUpdates: optBool,
  suppressFromDock: optBool,
  suppressEula: optBool,
  suppressRegistration: optBool,
  md5: optText,
  sha256: optText,
  sha3512: optText,
  hashType: optText,
  hashValue: optText,
  /** Bytes; Jamf may send it as a string. Read-only: never sent back. */
  size: z
    .union([z.string(), z.number()])
    .nullish()
    .transform(v => {
      if (v === null || v === undefined || v === '') return undefined;
      const n = Number(v);
      return Number.isFinite(n) ? n : undefined;
    }),
  cloudTransferStatus: optText,
});
export type JamfPackage = z.output<typeof PackageSchema>;

export const PackagePageSchema = z.looseObject({
  totalCount: z.coerce.number().int().nonnegative(),
  results: z.array(PackageSchema),
});

export const CreatedSchema = z.looseObject({ id, href: z.string().nullish() });
export interface Created {
  id: string;
  href: string | undefined;
}

export const CategoryPageSchema = z.looseObject({
  totalCount: z.coerce.number(),
  results: z.array(z.looseObject({ id, name: z.string() })),
});

export const VersionSchema = z.looseObject({ version: z.string().min(1) });

/** GET /api/v1/cloud-distribution-point (the fields the preflight reads). */
export const CloudDistributionPointSchema = z.looseObject({
  cdnType: z.string().nullish(),
  master: optBool,
});

export interface CloudDistributionPoint {
  /** JAMF_CLOUD (JCDS), AWS, AKAMAI, RACKSPACE_CLOUD_FILES, NONE, … */
  cdnType: string | undefined;
  /** True when it is the principal distribution point (the one that receives uploads). */
  master: boolean | undefined;
}

export const UploadCapabilitySchema = z.looseObject({
  principalDistributionTechnology: optBool,
  directUploadCapable: optBool,
});

/** Fields of a new package; the required booleans, categoryId and priority get defaults. */
export interface NewPackage {
  packageName: string;
  fileName: string;
  info?: string;
  notes?: string;
  /** @defaultValue `"-1"` (no category) */
  categoryId?: string;
  /** @defaultValue 10 */
  priority?: number;
  osRequirements?: string;
  fillUserTemplate?: boolean;
  rebootRequired?: boolean;
  osInstall?: boolean;
  suppressUpdates?: boolean;
  suppressFromDock?: boolean;
  suppressEula?: boolean;
  suppressRegistration?: boolean;
  /** Any other Package field Jamf documents (swu, selfHealNotify, manifest, …). */
  extra?: Record<string, unknown>;
}

/** What Jamf requires on POST/PUT /api/v1/packages, with the values JCLI and JU use. */
export const PACKAGE_DEFAULTS = {
  categoryId: '-1',
  priority: 10,
  fillUserTemplate: false,
  rebootRequired: false,
  osInstall: false,
  suppressUpdates: false,
  suppressFromDock: false,
  suppressEula: false,
  suppressRegistration: false,
} as const;

/**
 * Fields the server manages: never sent on a create or an update. Jamf stores client-sent
 * hash fields unchecked and shows them back (jamf-wire-2026.md 1.2: a client hash
 * "silently short-circuits the verification poll"), so the client never sends any; it
 * compares only what Jamf computed from the stored file. A PUT with `size` blanks it
 * (jamf-cli #258), and POST ignores it.
 */
export const PACKAGE_READ_ONLY = [
  'id',
  'size',
  'cloudTransferStatus',
  'indexed',
  'href',
  'hashType',
  'hashValue',
  'md5',
  'sha256',
  'sha3512',
] as const;

/** `GET /JSSResource/packages` (JSON). */
export const ClassicPackageListSchema = z
  .looseObject({
    packages: z.union([
      z.array(z.looseObject({ id: z.coerce.number(), name: z.string() })),
      // Some versions wrap one or more entries as {size, package: …}.
      z.looseObject({
        package: z
          .union([
            z.array(z.looseObject({ id: z.coerce.number(), name: z.string() })),
            z.looseObject({ id: z.coerce.number(), name: z.string() }),
          ])
          .optional(),
      }),
    ]),
  })
  .transform(v => {
    const p = v.packages;
    if (Array.isArray(p)) return p;
    if (p.package === undefined) return [];
    return Array.isArray(p.package) ? p.package : [p.package];
  });

export interface ClassicPackageRef {
  id: number;
  name: string;
}

/** `GET /JSSResource/packages/id/{id}` (JSON). */
export const ClassicPackageSchema = z
  .looseObject({
    package: z.looseObject({
      id: z.coerce.number(),
      name: z.string(),
      filename: z.string().nullish(),
      category: z.string().nullish(),
      info: optText,
      notes: optText,
      priority: z.coerce.number().nullish(),
      hash_type: optText,
      hash_value: optText,
    }),
  })
  .transform(v => v.package);
export type ClassicPackage = z.output<typeof ClassicPackageSchema>;

export interface ClassicNewPackage {
  name: string;
  filename: string;
  /** A category name (the Classic API uses names). */
  category?: string;
  info?: string;
  notes?: string;
  priority?: number;
}

export interface Capabilities {
  /** Jamf Pro version string, e.g. `11.24.0-t1718802727`. */
  version: string;
  /** The (deprecated) JCDS v1 endpoints answer. */
  jcds: boolean;
  /** `POST /api/v1/packages/{id}/upload` is available (Jamf Pro 11.5+). */
  packageUpload: boolean;
}
