import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { GiB, MiB } from '../../../../shared/units.ts';
import {
  allParts,
  MAX_OBJECT_SIZE,
  MAX_PARTS,
  multipartEtag,
  partRange,
  planParts,
} from '../../../../shared/upload/part-plan.ts';

describe('planParts', () => {
  it('uses the preferred size when the file fits in 10,000 parts', () => {
    expect(planParts(200 * MiB, 8 * MiB)).toEqual({ partSize: 8 * MiB, partCount: 25 });
    expect(planParts(200 * MiB + 1, 8 * MiB)).toEqual({ partSize: 8 * MiB, partCount: 26 });
  });

  it('never goes below 5 MiB', () => {
    expect(planParts(100 * MiB, 1 * MiB).partSize).toBe(5 * MiB);
  });

  it('raises the part size so that no file needs more than 10,000 parts', () => {
    const size = 200 * GiB;
    const plan = planParts(size, 16 * MiB);
    expect(plan.partCount).toBeLessThanOrEqual(MAX_PARTS);
    expect(plan.partSize % MiB).toBe(0);
    expect(plan.partSize * plan.partCount).toBeGreaterThanOrEqual(size);
  });

  it('refuses a file larger than S3 can store', () => {
    expect(() => planParts(MAX_OBJECT_SIZE + 1, 16 * MiB)).toThrow(/10,000 parts of 5 GiB/);
  });

  it('splits ranges exactly, the last part shorter', () => {
    const size = 20 * MiB + 3;
    const plan = planParts(size, 5 * MiB);
    const parts = allParts(size, plan);
    expect(parts).toHaveLength(5);
    expect(parts.reduce((n, p) => n + p.length, 0)).toBe(size);
    expect(parts.at(-1)).toEqual({ partNumber: 5, offset: 20 * MiB, length: 3 });
    expect(() => partRange(size, plan, 6)).toThrow(RangeError);
  });
});

describe('multipartEtag', () => {
  it('is the md5 of the binary part md5s with -N', () => {
    const md5 = (b: Buffer): string => createHash('md5').update(b).digest('hex');
    const a = md5(Buffer.from('a'));
    const b = md5(Buffer.from('b'));
    const expected = md5(Buffer.concat([Buffer.from(a, 'hex'), Buffer.from(b, 'hex')]));
    expect(multipartEtag([`"${a}"`, `"${b}"`], md5)).toBe(`"${expected}-2"`);
  });
});
