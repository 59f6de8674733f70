/**
 * Whether Jamf's record of a stored file has the same content as a local file, compared on
 * the cheapest hash Jamf computed and reports: `sha256` (jamf-wire-2026.md 1), else the
 * SHA3-512 `hashValue`, else MD5. Pure.
 */
import type { FileHashes } from '../queues/jobs.ts';

/** The hash fields of a package record (the Pro API's names). */
export interface RecordHashes {
  id: string;
  hashType?: string | null | undefined;
  hashValue?: string | null | undefined;
  sha256?: string | null | undefined;
  md5?: string | null | undefined;
  size?: number | null | undefined;
}

/** A local hash by the name FileHashes gives it. */
export type LocalHash = keyof FileHashes;

/**
 * The local hash to compare with this record: `sha256` when the record has one; otherwise
 * `sha3_512` (its hashValue of type SHA3_512), or `md5`; undefined when it shows no hash.
 */
export function comparableHash(pkg: Omit<RecordHashes, 'id'>): LocalHash | undefined {
  if (pkg.sha256) return 'sha256';
  if (pkg.hashType === 'SHA3_512' && pkg.hashValue) return 'sha3_512';
  if (pkg.md5 || (pkg.hashType === 'MD5' && pkg.hashValue)) return 'md5';
  return undefined;
}

/**
 * True when Jamf's record of the stored file has the same content as the local file. The
 * local hash that comparableHash names must be in `local` (a missing one is "not the same").
 */
export function sameContent(pkg: RecordHashes, local: FileHashes): boolean {
  switch (comparableHash(pkg)) {
    case 'sha256':
      return pkg.sha256!.toLowerCase() === local.sha256;
    case 'sha3_512':
      return local.sha3_512 !== undefined && pkg.hashValue!.toLowerCase() === local.sha3_512;
    case 'md5': {
      const md5 = pkg.md5 ?? pkg.hashValue!;
      return local.md5 !== undefined && md5.toLowerCase() === local.md5;
    }
    default:
      return false;
  }
}

const HEX: Record<LocalHash, RegExp> = {
  sha256: /^[0-9a-f]{64}$/,
  sha3_512: /^[0-9a-f]{128}$/,
  md5: /^[0-9a-f]{32}$/,
};

/**
 * The hashes of a checkpoint or of job data (input: a dashboard user can add any job, and
 * checkpoints of earlier versions hold `{ sha3_512, md5 }` without `sha256`): well-formed
 * lower-case hex with a SHA-256, or undefined, and the caller hashes the file again.
 */
export function knownHashes(raw: unknown): FileHashes | undefined {
  if (typeof raw !== 'object' || raw === null) return undefined;
  const h = raw as Record<string, unknown>;
  const ok = (k: LocalHash): string | undefined =>
    typeof h[k] === 'string' && HEX[k].test(h[k]) ? h[k] : undefined;
  const sha256 = ok('sha256');
  if (!sha256) return undefined;
  const sha3 = ok('sha3_512');
  const md5 = ok('md5');
  return { sha256, ...(sha3 ? { sha3_512: sha3 } : {}), ...(md5 ? { md5 } : {}) };
}
