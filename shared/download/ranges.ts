/**
 * Byte-range bookkeeping for resumable downloads. A range is `[start, end]`, both
 * inclusive (as in an HTTP `Range: bytes=start-end` header). The checkpoint kept in the
 * job data is a coalesced, sorted list of the ranges already written to the partial file;
 * what is left to fetch is its complement, cut into pieces of at most RANGE_SIZE.
 */
import { MiB } from '../units.ts';

export type ByteRange = [start: number, end: number];

/** One range request: 20 MiB, as Jamf's own SDK and the JCDS download docs use. */
export const RANGE_SIZE = 20 * MiB;

/** Range requests in flight per download. */
export const RANGE_CONCURRENCY = 5;

/** Sorts and merges overlapping or adjacent ranges; drops empty or invalid ones. */
export function coalesce(ranges: readonly ByteRange[]): ByteRange[] {
  const sorted = ranges
    .filter(([s, e]) => Number.isSafeInteger(s) && Number.isSafeInteger(e) && s >= 0 && e >= s)
    .map(([s, e]): ByteRange => [s, e])
    .sort((a, b) => a[0] - b[0]);
  const out: ByteRange[] = [];
  for (const r of sorted) {
    const last = out[out.length - 1];
    if (last && r[0] <= last[1] + 1) last[1] = Math.max(last[1], r[1]);
    else out.push(r);
  }
  return out;
}

/** Adds one range to a coalesced list (returns a new list). */
export function addRange(done: readonly ByteRange[], range: ByteRange): ByteRange[] {
  return coalesce([...done, range]);
}

/** Bytes covered by a list of ranges (coalesced first, so overlaps count once). */
export function bytesIn(ranges: readonly ByteRange[]): number {
  return coalesce(ranges).reduce((n, [s, e]) => n + (e - s + 1), 0);
}

/** The end (exclusive) of the contiguous run of done bytes starting at offset 0. */
export function contiguousPrefix(done: readonly ByteRange[]): number {
  const first = coalesce(done)[0];
  return first && first[0] === 0 ? first[1] + 1 : 0;
}

/**
 * The ranges still to fetch for a file of `size` bytes, each at most `rangeSize` bytes,
 * in file order. Pieces are aligned to multiples of `rangeSize` where possible so that a
 * resumed download requests the same ranges as the first attempt.
 */
export function missingRanges(
  size: number,
  done: readonly ByteRange[],
  rangeSize: number = RANGE_SIZE,
): ByteRange[] {
  if (!Number.isSafeInteger(size) || size < 0)
    throw new TypeError(`size must be a whole number of bytes, got ${size}`);
  if (!Number.isSafeInteger(rangeSize) || rangeSize < 1)
    throw new TypeError(`rangeSize must be at least 1, got ${rangeSize}`);
  const holes: ByteRange[] = [];
  let pos = 0;
  for (const [s, e] of coalesce(done)) {
    if (s >= size) break;
    if (s > pos) holes.push([pos, s - 1]);
    pos = Math.max(pos, e + 1);
  }
  if (pos < size) holes.push([pos, size - 1]);
  const out: ByteRange[] = [];
  for (const [s, e] of holes) {
    let start = s;
    while (start <= e) {
      const boundary = (Math.floor(start / rangeSize) + 1) * rangeSize - 1;
      const end = Math.min(e, boundary);
      out.push([start, end]);
      start = end + 1;
    }
  }
  return out;
}

/** Parses a checkpoint read back from job data; anything malformed is dropped. */
export function parseRanges(value: unknown, size: number): ByteRange[] {
  if (!Array.isArray(value)) return [];
  const ranges: ByteRange[] = [];
  for (const r of value) {
    if (
      Array.isArray(r) &&
      r.length === 2 &&
      typeof r[0] === 'number' &&
      typeof r[1] === 'number' &&
      r[1] < size
    ) {
      ranges.push([r[0], r[1]]);
    }
  }
  return coalesce(ranges);
}
