import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { AppError } from '../../shared/errors.ts';
import { hashFile } from '../../shared/hash.ts';

const dir = mkdtempSync(join(tmpdir(), 'jcds-hash-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const MiB = 1024 * 1024;

describe('hashFile', () => {
  it('gives the SHA3-512 and MD5 of the whole file and the bytes read', async () => {
    const p = join(dir, 'a.pkg');
    const data = randomBytes(9 * MiB + 123);
    writeFileSync(p, data);
    const h = await hashFile(p);
    expect(h).toEqual({
      sha3_512: createHash('sha3-512').update(data).digest('hex'),
      md5: createHash('md5').update(data).digest('hex'),
      bytes: data.length,
    });
  });

  it('hashes an empty file', async () => {
    const p = join(dir, 'empty.pkg');
    writeFileSync(p, '');
    const h = await hashFile(p);
    expect(h.bytes).toBe(0);
    expect(h.md5).toBe('d41d8cd98f00b204e9800998ecf8427e');
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
