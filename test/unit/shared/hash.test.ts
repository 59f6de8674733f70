import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { afterAll, describe, expect, it } from 'vitest';
import { AppError } from '../../../shared/errors.ts';
import { hashFile, hashFileWith, StreamingVerifier } from '../../../shared/hash/index.ts';

const dir = mkdtempSync(join(tmpdir(), 'jcds-hash-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const MiB = 1024 * 1024;

describe('hashFile', () => {
  it('gives the SHA-256 of the whole file and the bytes read, and nothing else', async () => {
    const p = join(dir, 'a.pkg');
    const data = randomBytes(9 * MiB + 123);
    writeFileSync(p, data);
    const h = await hashFile(p);
    expect(h).toEqual({
      sha256: createHash('sha256').update(data).digest('hex'),
      bytes: data.length,
    });
  });

  it('hashFileWith gives every hash asked for, one thread each, and agrees with node:crypto', async () => {
    const p = join(dir, 'b.pkg');
    const data = randomBytes(3 * MiB + 7);
    writeFileSync(p, data);
    const h = await hashFileWith(p, ['sha256', 'sha3_512', 'md5']);
    expect(h).toEqual({
      sha256: createHash('sha256').update(data).digest('hex'),
      sha3_512: createHash('sha3-512').update(data).digest('hex'),
      md5: createHash('md5').update(data).digest('hex'),
      bytes: data.length,
    });
    expect(await hashFileWith(p, ['sha3_512'])).toEqual({
      sha3_512: h.sha3_512,
      bytes: data.length,
    });
  });

  it('hashes an empty file', async () => {
    const p = join(dir, 'empty.pkg');
    writeFileSync(p, '');
    const h = await hashFile(p);
    expect(h.bytes).toBe(0);
    expect(h.sha256).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  });

  it('reads through a given descriptor, not the path', async () => {
    const p = join(dir, 'fd.pkg');
    writeFileSync(p, 'first');
    const fh = await open(p, 'r');
    try {
      rmSync(p);
      writeFileSync(p, 'second, another file');
      const h = await hashFile(p, { fd: fh.fd });
      expect(h).toEqual({ sha256: createHash('sha256').update('first').digest('hex'), bytes: 5 });
    } finally {
      await fh.close();
    }
  });

  it('a missing file is FILE_NOT_FOUND naming the path', async () => {
    const p = join(dir, 'missing.pkg');
    const err = await hashFile(p).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AppError);
    expect((err as AppError).code).toBe('FILE_NOT_FOUND');
    expect((err as AppError).message).toContain(p);
  });

  it('an aborted hash rejects with the reason', async () => {
    const p = join(dir, 'abort.pkg');
    writeFileSync(p, randomBytes(64 * MiB));
    const ac = new AbortController();
    const pending = hashFile(p, { signal: ac.signal });
    ac.abort(new Error('stop now'));
    await expect(pending).rejects.toThrow('stop now');
  });
});

type ThreadAnswer = { digest?: string; bytes?: number; error?: { message: string; code?: string } };

/** Runs hash-thread.js directly: its workerData, then the messages; resolves its answer. */
function runThread(
  workerData: { path: string; algorithm: 'md5' | 'sha3-512' | 'sha256'; whole?: boolean },
  messages: Array<{ upTo: number } | { finish: number }> = [],
): Promise<ThreadAnswer> {
  const worker = new Worker(new URL('../../../shared/hash/hash-thread.js', import.meta.url), {
    workerData,
  });
  const answer = new Promise<ThreadAnswer>((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  });
  for (const m of messages) worker.postMessage(m);
  return answer.finally(() => worker.terminate());
}

describe('hash-thread.js serves both directions', () => {
  const data = randomBytes(13 * MiB + 7);
  const p = join(dir, 'both.pkg');
  writeFileSync(p, data);
  const expected = (algorithm: string): string => createHash(algorithm).update(data).digest('hex');

  it.each(['md5', 'sha3-512'] as const)(
    'whole mode (%s): reads to the end unasked for the size, equals node:crypto',
    async algorithm => {
      expect(await runThread({ path: p, algorithm, whole: true })).toEqual({
        digest: expected(algorithm),
        bytes: data.length,
      });
    },
  );

  it.each(['md5', 'sha3-512'] as const)(
    'incremental mode (%s): out-of-order advances, then finish, equal node:crypto',
    async algorithm => {
      const answer = await runThread({ path: p, algorithm }, [
        { upTo: 9 * MiB },
        { upTo: 2 * MiB },
        { upTo: 9 * MiB + 1 },
        { upTo: 5 * MiB },
        { finish: data.length },
      ]);
      expect(answer).toEqual({ digest: expected(algorithm), bytes: data.length });
    },
  );

  it('whole mode reports a missing file as ENOENT', async () => {
    const answer = await runThread({ path: join(dir, 'nope.pkg'), algorithm: 'md5', whole: true });
    expect(answer.error?.code).toBe('ENOENT');
  });

  it('incremental mode refuses a file shorter than the offset it was told', async () => {
    const answer = await runThread({ path: p, algorithm: 'md5' }, [{ finish: data.length + 1 }]);
    expect(answer.error?.message).toContain(`ends at byte ${data.length}`);
  });

  it('hashFileWith and StreamingVerifier (advanced out of order) agree with node:crypto', async () => {
    const whole = await hashFileWith(p, ['md5', 'sha3_512']);
    const verifier = new StreamingVerifier(p, { kinds: ['md5', 'sha3_512'] });
    for (const upTo of [4 * MiB, 1 * MiB, 12 * MiB, 8 * MiB]) verifier.advance(upTo);
    const streamed = await verifier.finish(data.length);
    expect(streamed).toEqual({
      md5: expected('md5'),
      sha3_512: expected('sha3-512'),
      bytes: data.length,
    });
    expect(whole).toEqual({ md5: streamed.md5, sha3_512: streamed.sha3_512, bytes: data.length });
  });
});
