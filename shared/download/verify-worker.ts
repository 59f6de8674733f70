/**
 * Worker-thread body of StreamingVerifier: hashes a file from offset 0 up to the offsets
 * it is told are on disk, so the hashes of a download are computed while it is still
 * being fetched (the bytes come from the page cache), off the main thread.
 *
 * Messages in: `{ upTo }` (hash up to this offset, exclusive) and `{ finish }` (hash up
 * to this offset, then answer `{ md5, sha3_512?, bytes }`). Errors answer `{ error }`.
 */
import { createHash } from 'node:crypto';
import { closeSync, openSync, readSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';

const { path, sha3 } = workerData as { path: string; sha3: boolean };
const md5 = createHash('md5');
const sha3Hash = sha3 ? createHash('sha3-512') : undefined;
const buffer = Buffer.allocUnsafe(8 << 20);
let pos = 0;
let fd: number | undefined;
let failed = false;

function hashUpTo(target: number): void {
  fd ??= openSync(path, 'r');
  while (pos < target) {
    const n = readSync(fd, buffer, 0, Math.min(buffer.length, target - pos), pos);
    if (n === 0) throw new Error(`${path} ends at byte ${pos}, before byte ${target} that was written`);
    const chunk = buffer.subarray(0, n);
    md5.update(chunk);
    sha3Hash?.update(chunk);
    pos += n;
  }
}

parentPort?.on('message', (msg: { upTo?: number; finish?: number }) => {
  if (failed) return;
  try {
    hashUpTo(msg.finish ?? msg.upTo ?? 0);
    if (msg.finish !== undefined) {
      if (fd !== undefined) closeSync(fd);
      fd = undefined;
      parentPort?.postMessage({
        md5: md5.digest('hex'),
        ...(sha3Hash ? { sha3_512: sha3Hash.digest('hex') } : {}),
        bytes: pos,
      });
    }
  } catch (err) {
    failed = true;
    parentPort?.postMessage({ error: { message: (err as Error).message, code: (err as NodeJS.ErrnoException).code } });
  }
});
