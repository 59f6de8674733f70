import { describe, expect, it } from 'vitest';
import { backoffDelay, parseRetryAfter, retryAfterDelay } from '../../../../shared/jamf/backoff.ts';
import { rsql } from '../../../../shared/jamf/rsql.ts';

describe('parseRetryAfter', () => {
  const now = Date.parse('2026-11-20T10:00:00Z');

  it('reads delta-seconds', () => {
    expect(parseRetryAfter('2', now)).toBe(2000);
    expect(parseRetryAfter(' 0 ', now)).toBe(0);
    expect(parseRetryAfter('1.5', now)).toBe(1500);
    expect(parseRetryAfter(['7', '9'], now)).toBe(7000);
  });

  it('reads an HTTP date relative to now', () => {
    expect(parseRetryAfter('Fri, 20 Nov 2026 10:00:05 GMT', now)).toBe(5000);
  });

  it('never gives a negative delay for a date in the past', () => {
    expect(parseRetryAfter('Fri, 20 Nov 2026 09:59:00 GMT', now)).toBe(0);
  });

  it('gives undefined for absent or unparseable values', () => {
    expect(parseRetryAfter(undefined, now)).toBeUndefined();
    expect(parseRetryAfter('', now)).toBeUndefined();
    expect(parseRetryAfter('-1', now)).toBeUndefined();
    expect(parseRetryAfter('soon', now)).toBeUndefined();
    expect(parseRetryAfter('12abc', now)).toBeUndefined();
  });
});

describe('backoffDelay', () => {
  it('doubles from the base, with half of each delay random', () => {
    const low = () => 0;
    const high = () => 0.999999;
    expect([1, 2, 3, 4].map(n => backoffDelay(n, { baseMs: 500, random: low }))).toEqual([
      250, 500, 1000, 2000,
    ]);
    expect([1, 2, 3, 4].map(n => backoffDelay(n, { baseMs: 500, random: high }))).toEqual([
      500, 1000, 2000, 4000,
    ]);
  });

  it('is capped at maxMs', () => {
    expect(backoffDelay(30, { baseMs: 500, maxMs: 8000, random: () => 0.999999 })).toBe(8000);
    expect(backoffDelay(30, { baseMs: 500, maxMs: 8000, random: () => 0 })).toBe(4000);
  });

  it('stays within [d/2, d] with the real random source', () => {
    for (let i = 0; i < 200; i++) {
      const d = backoffDelay(3, { baseMs: 100 });
      expect(d).toBeGreaterThanOrEqual(200);
      expect(d).toBeLessThanOrEqual(400);
    }
  });
});

describe('retryAfterDelay', () => {
  it('waits at least what was asked, plus at most 10% (1 s cap) of jitter', () => {
    expect(retryAfterDelay(2000, () => 0)).toBe(2000);
    expect(retryAfterDelay(2000, () => 0.999999)).toBe(2200);
    expect(retryAfterDelay(60_000, () => 0.999999)).toBe(61_000);
    expect(retryAfterDelay(0, () => 0.5)).toBe(0);
  });
});

describe('rsql', () => {
  it('quotes values so quotes, backslashes and separators cannot escape', () => {
    expect(rsql.eq('fileName', 'My App.pkg')).toBe('fileName=="My App.pkg"');
    expect(rsql.eq('fileName', 'a"b\\c.pkg')).toBe('fileName=="a\\"b\\\\c.pkg"');
    expect(rsql.eq('fileName', 'x";id!="1')).toBe('fileName=="x\\";id!=\\"1"');
    expect(rsql.eq('packageName', 'a,b;c(d)')).toBe('packageName=="a,b;c(d)"');
    expect(rsql.eq('fileName', 'Ünïcødé +%#?.pkg')).toBe('fileName=="Ünïcødé +%#?.pkg"');
  });

  it('builds comparisons and lists', () => {
    expect(rsql.ne('categoryId', '-1')).toBe('categoryId!="-1"');
    expect(rsql.gt('id', 10)).toBe('id>"10"');
    expect(rsql.in('id', [1, 2, '3'])).toBe('id=in=("1","2","3")');
    expect(rsql.out('fileName', ['a.pkg', 'b"c.pkg'])).toBe('fileName=out=("a.pkg","b\\"c.pkg")');
  });

  it('groups an OR inside an AND', () => {
    const either = rsql.or(rsql.eq('fileName', 'a.pkg'), rsql.eq('fileName', 'b.pkg'));
    expect(either).toBe('fileName=="a.pkg",fileName=="b.pkg"');
    expect(rsql.and(either, rsql.eq('categoryId', '3'))).toBe(
      '(fileName=="a.pkg",fileName=="b.pkg");categoryId=="3"',
    );
    // A comma inside a quoted value is not an OR.
    expect(rsql.and(rsql.eq('fileName', 'a,b.pkg'), rsql.eq('id', 1))).toBe(
      'fileName=="a,b.pkg";id=="1"',
    );
  });

  it('refuses a field name that could inject', () => {
    expect(() => rsql.eq('fileName==x;id', 'a')).toThrow(TypeError);
    expect(() => rsql.eq('', 'a')).toThrow(TypeError);
  });
});
