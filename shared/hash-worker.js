/**
 * Worker-thread body for hashFile: reads a file through one reused 4 MiB buffer into one
 * hash (`md5` or `sha3-512`). hashFile runs one thread per algorithm, so SHA3-512 (the slow
 * one, about 240 MiB/s a core) sets the pace alone instead of SHA3-512 plus MD5 in
 * sequence. Synchronous reads are fine here (this thread does nothing else), and one
 * buffer keeps the thread's memory flat whatever the file size. Plain JavaScript on
 * purpose: a worker thread running a .ts file would load its own copy of Node's type
 * stripper (about 20 MiB) just for these lines.
 */
import { Buffer } from 'node:buffer';
import { createHash } from 'node:crypto';
import { closeSync, openSync, readSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';

/** @type {{ path: string, algorithm: 'md5' | 'sha3-512' }} */
const { path, algorithm } = workerData;
const hash = createHash(algorithm);
let bytes = 0;
try {
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.allocUnsafeSlow(4 << 20);
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, bytes);
      if (n === 0) break;
      hash.update(buf.subarray(0, n));
      bytes += n;
    }
  } finally {
    closeSync(fd);
  }
  parentPort?.postMessage({ digest: hash.digest('hex'), bytes });
} catch (err) {
  const e = /** @type {NodeJS.ErrnoException} */ (err);
  parentPort?.postMessage({ error: { message: e.message, code: e.code } });
}
