/**
 * DiskObjectStore on a real temp dir: crash recovery when it reopens (an interrupted
 * Complete, orphaned files), readers that outlive the version they read, and overwrites.
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DiskObjectStore } from '../sim/store.ts';

const MiB = 1024 * 1024;
let dir: string;

const md5 = (b: Buffer): string => createHash('md5').update(b).digest('hex');

async function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** The number of blob folders once it reaches `want` (or after 5 s, whatever it is then). */
async function blobDirsEventually(want: number): Promise<number> {
  const deadline = Date.now() + 5000;
  for (;;) {
    const n = (await readdir(path.join(dir, 'blobs'))).length;
    if (n === want || Date.now() > deadline) return n;
    await new Promise(resolve => setTimeout(resolve, 20));
  }
}

beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'sim-store-'));
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('recovery when the store reopens', () => {
  it('finishes a Complete whose manifest was written but whose parts were not moved yet', async () => {
    const store = new DiskObjectStore(dir);
    const a = randomBytes(5 * MiB);
    const b = randomBytes(1000);
    const { uploadId } = await store.createMultipartUpload('bk', 'obj.pkg');
    const p1 = await store.uploadPart('bk', 'obj.pkg', uploadId, 1, Readable.from([a]));
    const p2 = await store.uploadPart('bk', 'obj.pkg', uploadId, 2, Readable.from([b]));
    await store.completeMultipartUpload('bk', 'obj.pkg', uploadId, [
      { partNumber: 1, etag: p1.etag },
      { partNumber: 2, etag: p2.etag },
    ]);
    // Put the disk back in the state a crash between the two steps leaves.
    const [manifestName] = await readdir(path.join(dir, 'objects'));
    const manifest = JSON.parse(
      await readFile(path.join(dir, 'objects', manifestName ?? ''), 'utf8'),
    ) as {
      blobDir: string;
      fromUpload: string;
    };
    expect(manifest.fromUpload).toBe(uploadId);
    await mkdir(path.join(dir, 'uploads', uploadId), { recursive: true });
    await rename(path.join(dir, manifest.blobDir), path.join(dir, 'uploads', uploadId, 'data'));

    const reopened = new DiskObjectStore(dir);
    expect(md5(await readAll(reopened.read('bk', 'obj.pkg')))).toBe(md5(Buffer.concat([a, b])));
    expect(existsSync(path.join(dir, 'uploads', uploadId))).toBe(false);
    expect(await reopened.listMultipartUploads('bk')).toEqual([]);
  });

  it('removes orphaned blobs, half-written records and unreferenced part files', async () => {
    const store = new DiskObjectStore(dir);
    await store.put('bk', 'keep.pkg', Readable.from([Buffer.from('keep')]));
    const { uploadId } = await store.createMultipartUpload('bk', 'open.pkg');
    await store.uploadPart('bk', 'open.pkg', uploadId, 1, Readable.from([Buffer.from('one')]));
    await mkdir(path.join(dir, 'blobs', 'orphan'));
    await writeFile(path.join(dir, 'blobs', 'orphan', '0'), 'x');
    await writeFile(path.join(dir, 'objects', 'abc.json.tmp-123'), '{');
    await writeFile(path.join(dir, 'uploads', uploadId, 'data', '1-stale'), 'stale');
    await mkdir(path.join(dir, 'uploads', 'no-record', 'data'), { recursive: true });

    const reopened = new DiskObjectStore(dir);
    expect((await readAll(reopened.read('bk', 'keep.pkg'))).toString()).toBe('keep');
    expect(reopened.listParts('bk', 'open.pkg', uploadId)?.map(p => p.size)).toEqual([3]);
    expect(await readdir(path.join(dir, 'blobs'))).toHaveLength(1);
    expect(await readdir(path.join(dir, 'objects'))).toHaveLength(1);
    expect(await readdir(path.join(dir, 'uploads', uploadId, 'data'))).toHaveLength(1);
    expect(existsSync(path.join(dir, 'uploads', 'no-record'))).toBe(false);
  });
});

describe('versions and readers', () => {
  it('a reader finishes the version it started even if the key is overwritten and deleted', async () => {
    const store = new DiskObjectStore(dir);
    const old = randomBytes(8 * MiB);
    await store.put('bk', 'k', Readable.from([old]));
    const stream = store.read('bk', 'k');
    const first = await new Promise<Buffer>(resolve =>
      stream.once('data', (c: Buffer) => resolve(c)),
    );
    stream.pause();
    await store.put('bk', 'k', Readable.from([Buffer.from('new')]));
    expect(await store.delete('bk', 'k')).toBe(true);
    const rest = await readAll(stream);
    expect(md5(Buffer.concat([first, rest]))).toBe(md5(old));
    // Old blobs go once their last reader is done (asynchronously).
    expect(await blobDirsEventually(0)).toBe(0);
  });

  it('overwrites keep one stored version, with the last ETag', async () => {
    const store = new DiskObjectStore(dir);
    const bodies = [randomBytes(1000), randomBytes(2000), randomBytes(3000)];
    for (const body of bodies) await store.put('bk', 'k', Readable.from([body]));
    expect((await store.head('bk', 'k'))?.etag).toBe(`"${md5(bodies[2] ?? Buffer.alloc(0))}"`);
    expect(await blobDirsEventually(1)).toBe(1);
    expect(await store.list('bk', '')).toHaveLength(1);
  });

  it('reads a range that spans segments, and refuses a missing key', async () => {
    const store = new DiskObjectStore(dir);
    const a = randomBytes(5 * MiB);
    const b = randomBytes(10);
    const { uploadId } = await store.createMultipartUpload('bk', 'mp');
    const p1 = await store.uploadPart('bk', 'mp', uploadId, 1, Readable.from([a]));
    const p2 = await store.uploadPart('bk', 'mp', uploadId, 2, Readable.from([b]));
    await store.completeMultipartUpload('bk', 'mp', uploadId, [
      { partNumber: 1, etag: p1.etag },
      { partNumber: 2, etag: p2.etag },
    ]);
    const got = await readAll(store.read('bk', 'mp', { start: 5 * MiB - 3, end: 5 * MiB + 2 }));
    expect(got.equals(Buffer.concat([a.subarray(-3), b.subarray(0, 3)]))).toBe(true);
    await expect(readAll(store.read('bk', 'missing'))).rejects.toMatchObject({ code: 'NoSuchKey' });
  });
});
