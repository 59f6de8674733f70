/**
 * S3's rules for CompleteMultipartUpload, as pure functions, and the store's error type.
 */
import { createHash } from 'node:crypto';
import {
  MAX_PART_NUMBER,
  MIN_PART_SIZE,
  type PartChecksum,
  type PartRecord,
  type UploadChecksum,
} from './store-layout.ts';

export type StoreErrorCode =
  | 'NoSuchKey'
  | 'NoSuchUpload'
  | 'InvalidPart'
  | 'InvalidPartOrder'
  | 'EntityTooSmall'
  | 'InvalidArgument'
  | 'InvalidRequest'
  | 'MalformedXML';

/** A refusal with the S3 error code it maps to. */
export class StoreError extends Error {
  readonly code: StoreErrorCode;
  constructor(code: StoreErrorCode, message: string) {
    super(message);
    this.name = 'StoreError';
    this.code = code;
  }
}

export function noSuchUpload(): StoreError {
  return new StoreError(
    'NoSuchUpload',
    'The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.',
  );
}

export function noSuchKey(): StoreError {
  return new StoreError('NoSuchKey', 'The specified key does not exist.');
}

export function checkPartNumber(n: number): void {
  if (!Number.isInteger(n) || n < 1 || n > MAX_PART_NUMBER) {
    throw new StoreError(
      'InvalidArgument',
      `Part number must be an integer between 1 and ${MAX_PART_NUMBER}, inclusive`,
    );
  }
}

/** One entry of a CompleteMultipartUpload request. */
export interface CompletePart {
  partNumber: number;
  etag: string;
  checksum?: PartChecksum;
}

export const unquoteEtag = (etag: string): string =>
  etag.trim().replace(/^"|"$/g, '').toLowerCase();

/**
 * Checks a Complete request against the uploaded parts, in S3's order: an empty list is
 * MalformedXML, then InvalidPartOrder (part numbers must ascend), InvalidPart (a part never
 * uploaded, or an ETag or checksum that does not match), EntityTooSmall (every part but the
 * last at least 5 MiB). Returns the records of the listed parts, in order.
 *
 * An upload created with a COMPOSITE checksum (`checksum`) must list each part's checksum
 * of that algorithm: S3 answers InvalidRequest "The upload was created using a crc32
 * checksum. The complete request must include the checksum for each part. It was missing
 * for part 1 in the request." (CompleteMultipartUpload, "ChecksumCRC32: ... the
 * base64-encoded, 32-bit CRC32 checksum of the part", required for a composite upload:
 * https://docs.aws.amazon.com/AmazonS3/latest/API/API_CompleteMultipartUpload.html and
 * https://docs.aws.amazon.com/AmazonS3/latest/userguide/checking-object-integrity.html),
 * and one that does not match the part's is InvalidPart. A FULL_OBJECT upload may omit
 * them (S3 combines the parts' CRCs); listed ones are still checked.
 */
export function validateCompletion(
  requested: CompletePart[],
  uploaded: ReadonlyMap<number, PartRecord>,
  checksum?: UploadChecksum,
): PartRecord[] {
  if (requested.length === 0) {
    throw new StoreError(
      'MalformedXML',
      'The XML you provided was not well-formed or did not validate against our published schema',
    );
  }
  for (let i = 1; i < requested.length; i++) {
    if ((requested[i]?.partNumber ?? 0) <= (requested[i - 1]?.partNumber ?? 0)) {
      throw new StoreError(
        'InvalidPartOrder',
        'The list of parts was not in ascending order. Parts must be ordered by part number.',
      );
    }
  }
  if (checksum?.type === 'COMPOSITE') {
    const missing = requested.find(p => p.checksum?.algorithm !== checksum.algorithm);
    if (missing) {
      throw new StoreError(
        'InvalidRequest',
        `The upload was created using a ${checksum.algorithm} checksum. The complete request must include the checksum for each part. It was missing for part ${missing.partNumber} in the request.`,
      );
    }
  }
  const records = requested.map(p => {
    const rec = uploaded.get(p.partNumber);
    const checksumOk =
      !p.checksum ||
      !rec?.checksum ||
      p.checksum.algorithm !== rec.checksum.algorithm ||
      p.checksum.value === rec.checksum.value;
    if (!rec || unquoteEtag(p.etag) !== rec.md5 || !checksumOk) {
      throw new StoreError(
        'InvalidPart',
        "One or more of the specified parts could not be found.  The part may not have been uploaded, or the specified entity tag may not have matched the part's entity tag.",
      );
    }
    return rec;
  });
  records.forEach((rec, i) => {
    if (i < records.length - 1 && rec.size < MIN_PART_SIZE) {
      throw new StoreError(
        'EntityTooSmall',
        'Your proposed upload is smaller than the minimum allowed size',
      );
    }
  });
  return records;
}

/** The multipart ETag: md5 of the concatenated binary part md5s, then "-N"; quoted. */
export function multipartEtag(partMd5Hex: string[]): string {
  const md5s = Buffer.concat(partMd5Hex.map(h => Buffer.from(h, 'hex')));
  return `"${createHash('md5').update(md5s).digest('hex')}-${partMd5Hex.length}"`;
}
