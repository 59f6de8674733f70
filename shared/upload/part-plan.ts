/**
 * Multipart planning, pure. S3 allows 1..10,000 parts of 5 MiB..5 GiB (the last part may
 * be smaller). The preferred part size is raised so that no file needs more than 10,000
 * parts (the tus s3-store `calcOptimalPartSize` rule).
 */
import { AppError } from '../errors.ts';
import { GiB, MiB } from '../units.ts';

export const MIN_PART_SIZE = 5 * MiB;
export const MAX_PART_SIZE = 5 * GiB;
export const MAX_PARTS = 10_000;
export const MAX_OBJECT_SIZE = MAX_PARTS * MAX_PART_SIZE;

export interface PartPlan {
  partSize: number;
  partCount: number;
}

export function planParts(size: number, preferredPartSize: number): PartPlan {
  if (!Number.isSafeInteger(size) || size <= 0)
    throw new RangeError(`size must be a positive integer, got ${size}`);
  if (size > MAX_OBJECT_SIZE) {
    throw new AppError(
      'FILE_TOO_LARGE',
      `The file is ${size} bytes: more than S3 allows (10,000 parts of 5 GiB = ${MAX_OBJECT_SIZE} bytes).`,
    );
  }
  let partSize = Math.max(MIN_PART_SIZE, preferredPartSize);
  if (Math.ceil(size / partSize) > MAX_PARTS) {
    // Round up to a whole MiB so part boundaries stay aligned and easy to read.
    partSize = Math.ceil(size / MAX_PARTS / MiB) * MiB;
  }
  partSize = Math.min(partSize, MAX_PART_SIZE);
  return { partSize, partCount: Math.ceil(size / partSize) };
}

export interface PartRange {
  partNumber: number;
  offset: number;
  length: number;
}

export function partRange(size: number, plan: PartPlan, partNumber: number): PartRange {
  if (partNumber < 1 || partNumber > plan.partCount)
    throw new RangeError(`part ${partNumber} is outside 1..${plan.partCount}`);
  const offset = (partNumber - 1) * plan.partSize;
  return { partNumber, offset, length: Math.min(plan.partSize, size - offset) };
}

export function allParts(size: number, plan: PartPlan): PartRange[] {
  return Array.from({ length: plan.partCount }, (_, i) => partRange(size, plan, i + 1));
}

/** The ETag S3 gives a multipart object: md5 of the concatenated binary part md5s, "-N". */
export function multipartEtag(partEtags: string[], md5: (b: Buffer) => string): string {
  const bin = Buffer.concat(partEtags.map(e => Buffer.from(e.replaceAll('"', ''), 'hex')));
  return `"${md5(bin)}-${partEtags.length}"`;
}
