/**
 * HTTP Range for GetObject/HeadObject as S3 reads it: one range, `bytes=a-b`, `bytes=a-`
 * or `bytes=-n`; anything else (several ranges, bad syntax, b < a) is ignored and the whole
 * object is served; a start past the end (or a zero suffix) is 416 InvalidRange.
 */
import { s3Errors } from './errors.ts';

export interface ByteRange {
  start: number;
  end: number;
}

export function parseRange(text: string | undefined, size: number): ByteRange | undefined {
  if (text === undefined) return undefined;
  const m = /^bytes=(\d*)-(\d*)$/.exec(text.trim());
  if (!m) return undefined;
  const [, a = '', b = ''] = m;
  if (a === '' && b === '') return undefined;
  if (a === '') {
    const n = Number(b);
    if (n === 0 || size === 0) throw s3Errors.invalidRange(size);
    return { start: Math.max(0, size - n), end: size - 1 };
  }
  const start = Number(a);
  if (b !== '' && Number(b) < start) return undefined;
  if (start >= size) throw s3Errors.invalidRange(size);
  return { start, end: b === '' ? size - 1 : Math.min(Number(b), size - 1) };
}
