/**
 * Worker-thread body of StreamingVerifier: hashes a file with one algorithm (md5 or
 * sha3-512) from offset 0 up to the offsets it is told are on disk, so the hashes of a
 * download are computed while it is still being fetched (the bytes come from the page
 * cache), off the main thread. One thread per algorithm, so both run in parallel.
 * Plain JavaScript on purpose (as shared/hash-worker.js): a worker thread running a .ts
 * file would load its own copy of Node's type stripper just for these lines.
 *
 * Messages in: `{ upTo }` (hash up to this offset, exclusive) and `{ finish }` (hash up
 * to this offset, then answer `{ digest, bytes }`). Errors answer `{ error }`.
 */
import { Buffer } from 'node:buffer';
import { createHash } from 'node:crypto';
import { closeSync, openSync, readSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';

/** @type {{ path: string, algorithm: 'md5' | 'sha3-512' }} */
const { path, algorithm } = workerData;
const hash = createHash(algorithm);
const buffer = Buffer.allocUnsafe(8 << 20);
let pos = 0;
/** @type {number | undefined} */
let fd;
let failed = false;

/** @param {number} target */
function hashUpTo(target) {
  fd ??= openSync(path, 'r');
  while (pos < target) {
    const n = readSync(fd, buffer, 0, Math.min(buffer.length, target - pos), pos);
    if (n === 0)
      throw new Error(`${path} ends at byte ${pos}, before byte ${target} that was written`);
    hash.update(buffer.subarray(0, n));
    pos += n;
  }
}

parentPort?.on('message', (/** @type {{ upTo?: number, finish?: number }} */ msg) => {
  if (failed) return;
  try {
    hashUpTo(msg.finish ?? msg.upTo ?? 0);
    if (msg.finish !== undefined) {
      if (fd !== undefined) closeSync(fd);
      fd = undefined;
      parentPort?.postMessage({ digest: hash.digest('hex'), bytes: pos });
    }
  } catch (err) {
    failed = true;
    const e = /** @type {NodeJS.ErrnoException} */ (err);
    parentPort?.postMessage({ error: { message: e.message, code: e.code } });
  }
});
