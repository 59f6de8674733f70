/**
 * When is an upload done? Only when Jamf itself reports it, from the stored file
 * (jamf-wire-2026.md section 2, as Jamf's own Terraform provider decides it). Pure: one
 * reading of the package record in, one verdict out; worker/processors/upload/finalize.ts
 * polls and acts on it.
 *
 * Done only when all four hold: `hashValue` equals the local SHA3-512, `hashType` is
 * `SHA3_512`, `cloudTransferStatus` is `READY`, and `size` equals the local byte count. The
 * client never sends a hash, so what the record shows is what Jamf computed, except on a
 * replace: until the hash differs from the one the record held before (`priorHash`), it
 * still describes the old file.
 */

/** The fields of a package record the verdict reads (the Pro API's names). */
export interface RecordState {
  hashType?: string | null | undefined;
  hashValue?: string | null | undefined;
  /** Bytes (Jamf sends a string; "" after a PUT is undefined here). */
  size?: number | null | undefined;
  cloudTransferStatus?: string | null | undefined;
}

export interface Expected {
  sha3_512: string;
  size: number;
  /** The hash the record held before this upload (a replace). */
  priorHash?: string | undefined;
}

export type Verdict =
  /** Jamf reports the local file: hash, type, READY and size. */
  | { kind: 'done' }
  /** Not yet: Jamf is still processing, or shows a transient state. */
  | { kind: 'waiting'; why: string }
  /** The hash changed and `size` is "0": the bytes never landed; send them again. */
  | { kind: 'never-landed'; reported: string }
  /** Jamf computed another SHA3-512 for a file of the local size: the stored bytes differ. */
  | { kind: 'mismatch'; reported: string };

export function verdict(record: RecordState, expected: Expected): Verdict {
  const hash = record.hashValue ? record.hashValue.toLowerCase() : undefined;
  const sha3 = record.hashType === 'SHA3_512';
  const ready = record.cloudTransferStatus === 'READY';
  const size = record.size ?? undefined;
  if (sha3 && hash === expected.sha3_512 && ready && size === expected.size)
    return { kind: 'done' };
  const changed = sha3 && hash !== undefined && hash !== expected.priorHash;
  if (changed && size === 0) return { kind: 'never-landed', reported: hash };
  if (changed && hash !== expected.sha3_512 && size === expected.size)
    return { kind: 'mismatch', reported: hash };
  return { kind: 'waiting', why: describe(record, expected) };
}

/** The record's state in a few words (for the job log and VERIFY_TIMEOUT). */
export function describe(record: RecordState, expected: Expected): string {
  const hash = record.hashValue ? record.hashValue.toLowerCase() : undefined;
  const which =
    hash === undefined
      ? 'no hash'
      : hash === expected.sha3_512
        ? 'the local hash'
        : hash === expected.priorHash
          ? 'the previous file’s hash'
          : `hash ${hash.slice(0, 16)}…`;
  return `hashType ${String(record.hashType ?? 'none')}, ${which}, size ${record.size ?? 'blank'} (local ${expected.size}), cloudTransferStatus ${String(record.cloudTransferStatus ?? 'none')}`;
}
