/**
 * Byte-rate throttling of a body stream, for tests that need a slow upload or download. The
 * rate is read on every chunk, so a test can switch the fault on or off mid-transfer.
 */
import { setTimeout as sleep } from 'node:timers/promises';

export async function* throttle(
  source: AsyncIterable<Buffer>,
  rate: () => number | undefined,
): AsyncGenerator<Buffer> {
  let baseline = Date.now();
  let sent = 0;
  let lastRate: number | undefined;
  for await (const chunk of source) {
    const r = rate();
    if (!r || r <= 0) {
      lastRate = undefined;
      yield chunk;
      continue;
    }
    if (r !== lastRate) {
      baseline = Date.now();
      sent = 0;
      lastRate = r;
    }
    // Pieces of ~50 ms each keep the flow smooth at any rate.
    const slice = Math.max(1024, Math.floor(r / 20));
    for (let off = 0; off < chunk.length; off += slice) {
      const piece = chunk.subarray(off, off + slice);
      sent += piece.length;
      const wait = baseline + (sent / r) * 1000 - Date.now();
      if (wait > 0) await sleep(wait);
      yield piece;
    }
  }
}
