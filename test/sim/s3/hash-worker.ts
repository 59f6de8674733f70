/**
 * Whole-object hashes computed off the main thread, so a multi-GiB SHA3-512 (about 4 s per
 * GiB on this machine) never stalls the simulator's HTTP servers. Each algorithm group runs in
 * its own worker thread, reading the segment files itself (they are in the page cache right
 * after an upload). The worker is plain JavaScript passed with `eval: true`, which needs no
 * loader under either Node's type stripping or vitest.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { Worker } from 'node:worker_threads';
import type { ObjectHashes } from '../types.ts';

const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const fs = require('node:fs');
const hashes = workerData.algorithms.map(a => createHash(a));
const buf = Buffer.allocUnsafe(4 * 1024 * 1024);
for (const path of workerData.paths) {
  const fd = fs.openSync(path, 'r');
  try {
    for (;;) {
      const n = fs.readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      const view = buf.subarray(0, n);
      for (const h of hashes) h.update(view);
    }
  } finally {
    fs.closeSync(fd);
  }
}
parentPort.postMessage(hashes.map(h => h.digest('hex')));
`;

function hashInWorker(paths: string[], algorithms: string[]): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { paths, algorithms } });
    let done = false;
    worker.once('message', (digests: string[]) => {
      done = true;
      resolve(digests);
    });
    worker.once('error', err => {
      done = true;
      reject(err);
    });
    worker.once('exit', code => {
      if (!done) reject(new Error(`hash worker exited with code ${code}`));
    });
  });
}

/**
 * Hex digests of the concatenation of `paths` for each algorithm (node:crypto names, e.g.
 * "md5", "sha256", "sha3-512"). Algorithms are split across two workers (SHA3-512 alone,
 * the rest together) so the slowest hash sets the pace.
 */
export async function hashFiles(
  paths: string[],
  algorithms: string[],
): Promise<Record<string, string>> {
  const slow = algorithms.filter(a => a.startsWith('sha3'));
  const fast = algorithms.filter(a => !a.startsWith('sha3'));
  const groups = [slow, fast].filter(g => g.length > 0);
  const results = await Promise.all(groups.map(g => hashInWorker(paths, g)));
  const out: Record<string, string> = {};
  groups.forEach((group, i) => {
    group.forEach((alg, j) => {
      out[alg] = results[i]?.[j] ?? '';
    });
  });
  return out;
}

const SMALL_OBJECT = 4 * 1024 * 1024;

async function hashInline(paths: string[], algorithms: string[]): Promise<Record<string, string>> {
  const hashes = algorithms.map(a => createHash(a));
  for (const path of paths) {
    const data = await readFile(path);
    for (const h of hashes) h.update(data);
  }
  return Object.fromEntries(algorithms.map((a, i) => [a, hashes[i]!.digest('hex')]));
}

/**
 * md5, sha256 and sha3-512 of an object stored as `paths`. A single-part object's md5 is
 * its ETag (computed as it was written), so only multipart objects hash md5 again.
 */
export async function objectHashes(
  size: number,
  etag: string,
  paths: string[],
): Promise<ObjectHashes> {
  const single = !etag.includes('-');
  const algorithms = single ? ['sha256', 'sha3-512'] : ['md5', 'sha256', 'sha3-512'];
  // Small objects are hashed right here: starting two threads costs more than the hashing.
  const digests =
    size <= SMALL_OBJECT ? await hashInline(paths, algorithms) : await hashFiles(paths, algorithms);
  return {
    size,
    md5: single ? etag.replace(/"/g, '') : (digests['md5'] ?? ''),
    sha256: digests['sha256'] ?? '',
    sha3_512: digests['sha3-512'] ?? '',
  };
}
