import { describe, expect, it } from 'vitest';
import {
  RANGE_SIZE,
  addRange,
  bytesIn,
  coalesce,
  contiguousPrefix,
  missingRanges,
  parseRanges,
} from '../../../../shared/download/ranges.ts';

describe('coalesce', () => {
  it('sorts and merges overlapping and adjacent ranges', () => {
    expect(
      coalesce([
        [20, 29],
        [0, 9],
        [10, 14],
        [12, 18],
        [40, 49],
      ]),
    ).toEqual([
      [0, 18],
      [20, 29],
      [40, 49],
    ]);
  });
  it('drops empty, negative and non-integer ranges', () => {
    expect(
      coalesce([
        [5, 4],
        [-1, 3],
        [1.5, 3],
        [7, 7],
      ]),
    ).toEqual([[7, 7]]);
  });
  it('does not mutate its input', () => {
    const input: Array<[number, number]> = [
      [0, 4],
      [5, 9],
    ];
    coalesce(input);
    expect(input).toEqual([
      [0, 4],
      [5, 9],
    ]);
  });
});

describe('missingRanges', () => {
  it('cuts a fresh file into RANGE_SIZE pieces, the last one shorter', () => {
    const size = 2 * RANGE_SIZE + 100;
    expect(missingRanges(size, [])).toEqual([
      [0, RANGE_SIZE - 1],
      [RANGE_SIZE, 2 * RANGE_SIZE - 1],
      [2 * RANGE_SIZE, size - 1],
    ]);
  });
  it('returns only the holes, aligned to the range grid', () => {
    expect(
      missingRanges(
        100,
        [
          [0, 9],
          [30, 49],
        ],
        20,
      ),
    ).toEqual([
      [10, 19],
      [20, 29],
      [50, 59],
      [60, 79],
      [80, 99],
    ]);
  });
  it('returns nothing when everything is done, and nothing for an empty file', () => {
    expect(missingRanges(100, [[0, 99]], 20)).toEqual([]);
    expect(missingRanges(0, [], 20)).toEqual([]);
  });
  it('refuses a negative size or range size', () => {
    expect(() => missingRanges(-1, [])).toThrow(/size must be/);
    expect(() => missingRanges(10, [], 0)).toThrow(/rangeSize must be/);
  });
  it('together with the done ranges covers every byte exactly once', () => {
    const done: Array<[number, number]> = [
      [3, 17],
      [40, 40],
      [90, 120],
    ];
    const size = 121;
    const missing = missingRanges(size, done, 16);
    expect(bytesIn(missing) + bytesIn(done)).toBe(size);
    expect(coalesce([...missing, ...done])).toEqual([[0, size - 1]]);
    for (const [s, e] of missing) expect(e - s + 1).toBeLessThanOrEqual(16);
  });
});

describe('contiguousPrefix and addRange', () => {
  it('grows as the ranges at the start arrive, whatever their order', () => {
    let done: Array<[number, number]> = [];
    done = addRange(done, [20, 29]);
    expect(contiguousPrefix(done)).toBe(0);
    done = addRange(done, [10, 19]);
    expect(contiguousPrefix(done)).toBe(0);
    done = addRange(done, [0, 9]);
    expect(contiguousPrefix(done)).toBe(30);
    expect(done).toEqual([[0, 29]]);
  });
});

describe('parseRanges', () => {
  it('keeps valid ranges within the size and drops the rest', () => {
    expect(parseRanges([[0, 9], [10, 19], 'x', [5], [50, 200]], 100)).toEqual([[0, 19]]);
    expect(parseRanges(undefined, 100)).toEqual([]);
  });
});
