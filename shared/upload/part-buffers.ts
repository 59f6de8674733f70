/**
 * The worker's part buffers: a part job reads its byte range into one, sends it, and gives
 * it back, so a worker allocates a handful of part-sized buffers once instead of 16 MiB
 * per part (off the V8 heap, returned only when the GC gets round to it).
 *
 * Buffers are pooled by capacity, not by length. Every buffer holds a whole part of the
 * pool's capacity (the configured part size), and a shorter part (the last part of every
 * file has a length of its own) gets a view of its first bytes. Pooled by exact length,
 * each distinct last part kept a buffer of its own for good: +178 MiB over 40 uploads.
 *
 * Bound: the pool keeps at most `slots` (the part concurrency) buffers, lent and free
 * together, each of `capacity` bytes, so it holds at most slots × capacity bytes, plus
 * the buffers of parts in flight beyond `slots` (not kept once given back). A part longer
 * than the capacity (planned by a worker with a larger JCDS_PART_SIZE, or an upload of
 * more than 10,000 parts, whose parts grow) raises the capacity to that length rounded
 * up to a MiB, and smaller buffers are dropped as they come back.
 *
 * A buffer is lent to one part at a time: `take` only hands out a buffer nobody holds, and
 * `give` accepts each loan once (a second give, or a buffer the pool never lent, is
 * ignored), so a buffer is never in the free list twice.
 */
import { MiB } from '../units.ts';

export interface PartBufferPoolOptions {
  /** The part size the worker plans uploads with (JCDS_PART_SIZE). */
  partSize: number;
  /** How many parts the worker sends at once (JCDS_PART_CONCURRENCY). */
  slots: number;
}

export interface PartBufferStats {
  capacity: number;
  /** Buffers lent to parts now. */
  lent: number;
  /** Buffers waiting in the pool. */
  free: number;
  /** Bytes of every buffer the pool owns, lent or free. */
  bytes: number;
}

export class PartBufferPool {
  private capacityBytes: number;
  private readonly slots: number;
  private readonly free: Buffer[] = [];
  /** Lent buffers by their memory: what `give` receives is a view of it. */
  private readonly lent = new Map<ArrayBufferLike, Buffer>();

  constructor(o: PartBufferPoolOptions) {
    if (!(o.partSize > 0) || !Number.isInteger(o.slots) || o.slots < 1)
      throw new RangeError(`a part buffer pool needs a part size and at least one slot`);
    this.capacityBytes = o.partSize;
    this.slots = o.slots;
  }

  get capacity(): number {
    return this.capacityBytes;
  }

  /** A view of `length` bytes on a buffer that no other part holds until it is given back. */
  take(length: number): Buffer {
    if (!Number.isInteger(length) || length < 0)
      throw new RangeError(`part length ${length} is not a byte count`);
    if (length > this.capacityBytes) {
      this.capacityBytes = Math.ceil(length / MiB) * MiB;
      this.free.length = 0; // all smaller than the new capacity
    }
    const buf = this.free.pop() ?? Buffer.allocUnsafeSlow(this.capacityBytes);
    this.lent.set(buf.buffer, buf);
    return buf.subarray(0, length);
  }

  /**
   * Takes back a view from `take` once nothing reads it any more (for a part: once its
   * UploadPart has settled). Kept while the pool owns fewer than `slots` buffers of the
   * current capacity; otherwise left to the GC.
   */
  give(view: Buffer): void {
    const buf = this.lent.get(view.buffer);
    if (!buf) return;
    this.lent.delete(view.buffer);
    if (buf.length === this.capacityBytes && this.free.length + this.lent.size < this.slots)
      this.free.push(buf);
  }

  stats(): PartBufferStats {
    let bytes = 0;
    for (const b of this.free) bytes += b.length;
    for (const b of this.lent.values()) bytes += b.length;
    return { capacity: this.capacityBytes, lent: this.lent.size, free: this.free.length, bytes };
  }
}
