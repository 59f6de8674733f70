/**
 * When is an upload done? Only when Jamf itself reports it, from the stored file
 * (jamf-wire-2026.md section 2, as Jamf's own Terraform provider decides it), compared on
 * the cheapest hash Jamf computes: `sha256`. Pure: one reading of the package record in, one
 * verdict out; worker/processors/upload/finalize.ts polls and acts on it.
 *
 * Done only when all of these hold: `sha256` equals the local SHA-256; `hashType` is
 * `SHA3_512` and `hashValue` is set and, on a replace, differs from the one the record held
 * before (`priorHash`: until then the record still describes the old file, unless that old
 * file had these very bytes); `cloudTransferStatus` is `READY`; `size` equals the local byte
 * count. The client never sends a hash, so what the record shows is what Jamf computed.
 *
 * A record that reports READY with a SHA3_512 `hashValue` but no `sha256` at all (a tenant
 * that does not fill it) is compared on `hashValue` instead: the verdict asks for the local
 * SHA3-512 (`need-sha3`), and once it is known decides on it as before.
 */

/** The fields of a package record the verdict reads (the Pro API's names). */
export interface RecordState {
  hashType?: string | null | undefined;
  hashValue?: string | null | undefined;
  sha256?: string | null | undefined;
  /** Bytes (Jamf sends a string; "" after a PUT is undefined here). */
  size?: number | null | undefined;
  cloudTransferStatus?: string | null | undefined;
}

export interface Expected {
  /** The local SHA-256. */
  sha256: string;
  size: number;
  /** The local SHA3-512, once known (only for a record without `sha256`). */
  sha3_512?: string | undefined;
  /** The `hashValue` the record held before this upload (a replace). */
  priorHash?: string | undefined;
  /** The `sha256` the record held before this upload (a replace), if any. */
  priorSha256?: string | undefined;
}

export type Verdict =
  /** Jamf reports the local file: hash, type, READY and size (`on`: the hash compared). */
  | { kind: 'done'; on: 'sha256' | 'sha3_512' }
  /** Not yet: Jamf is still processing, or shows a transient state. */
  | { kind: 'waiting'; why: string }
  /** The hash changed and `size` is "0": the bytes never landed; send them again. */
  | { kind: 'never-landed'; reported: string }
  /** Jamf computed another hash for a file of the local size: the stored bytes differ. */
  | { kind: 'mismatch'; algorithm: 'SHA-256' | 'SHA3-512'; reported: string }
  /** The record has no `sha256`: hash the local file with SHA3-512 to compare `hashValue`. */
  | { kind: 'need-sha3' };

const lower = (v: string | null | undefined): string | undefined =>
  v ? v.toLowerCase() : undefined;

export function verdict(record: RecordState, expected: Expected): Verdict {
  const hash = lower(record.hashValue);
  const sha256 = lower(record.sha256);
  const sha3 = record.hashType === 'SHA3_512';
  const ready = record.cloudTransferStatus === 'READY';
  const size = record.size ?? undefined;
  // Jamf processed a file since the upload began: its SHA3-512 is not the replaced file's.
  const renewed = sha3 && hash !== undefined && hash !== expected.priorHash;
  const waiting = (): Verdict => ({ kind: 'waiting', why: describe(record, expected) });
  if (sha256 !== undefined) {
    // The replaced file had these very bytes: the record describing it describes ours.
    const samePrior =
      expected.priorSha256 !== undefined && expected.priorSha256 === expected.sha256;
    if (
      sha256 === expected.sha256 &&
      sha3 &&
      hash !== undefined &&
      (renewed || samePrior) &&
      ready &&
      size === expected.size
    )
      return { kind: 'done', on: 'sha256' };
    const changed = renewed && sha256 !== expected.priorSha256;
    if (changed && size === 0) return { kind: 'never-landed', reported: sha256 };
    if (changed && sha256 !== expected.sha256 && size === expected.size)
      return { kind: 'mismatch', algorithm: 'SHA-256', reported: sha256 };
    return waiting();
  }
  // No sha256 on the record: compare hashValue with the local SHA3-512.
  if (expected.sha3_512 === undefined) {
    if (renewed && size === 0) return { kind: 'never-landed', reported: hash! };
    // READY with a SHA3_512 hash that is new, or for a file of the local size (a replace by
    // the same bytes keeps the old hash): worth hashing the local file to compare.
    if (sha3 && hash !== undefined && ready && (renewed || size === expected.size))
      return { kind: 'need-sha3' };
    return waiting();
  }
  if (sha3 && hash === expected.sha3_512 && ready && size === expected.size)
    return { kind: 'done', on: 'sha3_512' };
  if (renewed && size === 0) return { kind: 'never-landed', reported: hash! };
  if (renewed && hash !== expected.sha3_512 && size === expected.size)
    return { kind: 'mismatch', algorithm: 'SHA3-512', reported: hash! };
  return waiting();
}

/** The record's state in a few words (for the job log and VERIFY_TIMEOUT). */
export function describe(record: RecordState, expected: Expected): string {
  const hash = lower(record.hashValue);
  const sha256 = lower(record.sha256);
  const which =
    hash === undefined
      ? 'no hashValue'
      : hash === expected.sha3_512
        ? 'the local SHA3-512'
        : hash === expected.priorHash
          ? 'the previous file’s hashValue'
          : `hashValue ${hash.slice(0, 16)}…`;
  const which256 =
    sha256 === undefined
      ? 'no sha256'
      : sha256 === expected.sha256
        ? 'the local sha256'
        : sha256 === expected.priorSha256
          ? 'the previous file’s sha256'
          : `sha256 ${sha256.slice(0, 16)}…`;
  return `hashType ${String(record.hashType ?? 'none')}, ${which}, ${which256}, size ${record.size ?? 'blank'} (local ${expected.size}), cloudTransferStatus ${String(record.cloudTransferStatus ?? 'none')}`;
}
