import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { PartBufferPool } from '../../../../shared/upload/part-buffers.ts';
import { readRange } from '../../../../shared/upload/part-reader.ts';

const MiB = 1024 * 1024;

describe('PartBufferPool', () => {
  it('gives a shorter part a view of a part-sized buffer and reuses it for the next length', () => {
    const pool = new PartBufferPool({ partSize: 5 * MiB, slots: 4 });
    const a = pool.take(3 * MiB + 1);
    expect(a.length).toBe(3 * MiB + 1);
    expect(a.buffer.byteLength).toBe(5 * MiB);
    expect(a.byteOffset).toBe(0);
    pool.give(a);
    const b = pool.take(3 * MiB + 4098);
    expect(b.buffer).toBe(a.buffer);
    expect(b.length).toBe(3 * MiB + 4098);
    pool.give(b);
    expect(pool.stats()).toEqual({ capacity: 5 * MiB, lent: 0, free: 1, bytes: 5 * MiB });
  });

  it('stays within slots × part size over any number of distinct part lengths', () => {
    const pool = new PartBufferPool({ partSize: 5 * MiB, slots: 4 });
    const seen = new Set<ArrayBufferLike>();
    for (let round = 0; round < 500; round++) {
      // Up to 4 parts in flight, every one with a length of its own.
      const inFlight = [0, 1, 2, 3]
        .slice(0, 1 + (round % 4))
        .map(i => pool.take(3 * MiB + round * 4097 + i));
      for (const v of inFlight) seen.add(v.buffer);
      expect(pool.stats().bytes).toBeLessThanOrEqual(4 * 5 * MiB);
      for (const v of inFlight) pool.give(v);
    }
    expect(seen.size).toBe(4);
    expect(pool.stats()).toMatchObject({ lent: 0, free: 4, bytes: 20 * MiB });
  });

  it('never lends one buffer to two parts in flight, even when a view is given back twice', () => {
    const pool = new PartBufferPool({ partSize: 5 * MiB, slots: 4 });
    const a = pool.take(MiB);
    pool.give(a);
    pool.give(a); // a second give must not put the buffer in the free list twice
    const b = pool.take(MiB);
    const c = pool.take(MiB);
    expect(b.buffer).not.toBe(c.buffer);
    expect(pool.stats()).toMatchObject({ lent: 2, free: 0 });
  });

  it('ignores a buffer it did not lend', () => {
    const pool = new PartBufferPool({ partSize: 5 * MiB, slots: 2 });
    pool.give(Buffer.allocUnsafeSlow(5 * MiB));
    expect(pool.stats()).toEqual({ capacity: 5 * MiB, lent: 0, free: 0, bytes: 0 });
  });

  it('keeps no more than `slots` buffers when more parts than slots were in flight', () => {
    const pool = new PartBufferPool({ partSize: 5 * MiB, slots: 2 });
    const views = [pool.take(MiB), pool.take(MiB), pool.take(MiB)];
    expect(new Set(views.map(v => v.buffer)).size).toBe(3);
    for (const v of views) pool.give(v);
    expect(pool.stats()).toEqual({ capacity: 5 * MiB, lent: 0, free: 2, bytes: 10 * MiB });
  });

  it('raises its capacity for a part longer than the part size and drops smaller buffers', () => {
    const pool = new PartBufferPool({ partSize: 5 * MiB, slots: 2 });
    const small = pool.take(5 * MiB);
    const spare = pool.take(MiB);
    pool.give(spare);
    const large = pool.take(16 * MiB + 5); // planned by a worker with a larger part size
    expect(pool.capacity).toBe(17 * MiB);
    expect(large.buffer.byteLength).toBe(17 * MiB);
    pool.give(small); // smaller than the capacity now: not kept
    pool.give(large);
    expect(pool.stats()).toEqual({ capacity: 17 * MiB, lent: 0, free: 1, bytes: 17 * MiB });
    expect(pool.take(4 * MiB).buffer).toBe(large.buffer);
  });

  it('refuses a pool without a part size or slots and a length that is not a byte count', () => {
    expect(() => new PartBufferPool({ partSize: 0, slots: 1 })).toThrow(RangeError);
    expect(() => new PartBufferPool({ partSize: MiB, slots: 0 })).toThrow(RangeError);
    const pool = new PartBufferPool({ partSize: MiB, slots: 1 });
    expect(() => pool.take(-1)).toThrow(RangeError);
    expect(() => pool.take(1.5)).toThrow(RangeError);
  });
});

describe('readRange', () => {
  const dir = mkdtempSync(join(tmpdir(), 'jcds-part-reader-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('reads a range into a pooled buffer, and gives the buffer back when the file is short', async () => {
    const bytes = randomBytes(3 * 4097);
    const path = join(dir, 'part.pkg');
    writeFileSync(path, bytes);
    const pool = new PartBufferPool({ partSize: 8192, slots: 1 });
    const part = await readRange(pool, path, 4097, 2 * 4097);
    expect(part.equals(bytes.subarray(4097))).toBe(true);
    pool.give(part);
    await expect(readRange(pool, path, 4097, 2 * 4097 + 1)).rejects.toMatchObject({
      code: 'FILE_CHANGED',
    });
    expect(pool.stats()).toMatchObject({ lent: 0, free: 1 });
    expect(pool.take(1).buffer).toBe(part.buffer);
  });
});
