import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { getPriority, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { AppError } from '../../shared/errors.ts';
import { hashFile } from '../../shared/hash.ts';

const dir = mkdtempSync(join(tmpdir(), 'jcds-hash-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const MiB = 1024 * 1024;

/** Nice values of this process's threads, from /proc (field 19 of each task's stat). */
function threadNices(): number[] {
  const out: number[] = [];
  for (const tid of readdirSync('/proc/self/task')) {
    try {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      // Fields after the command name (which may hold spaces) start at ") ".
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.push(Number(fields[16]));
    } catch {
      // the thread ended between readdir and read
    }
  }
  return out;
}

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

  it('with nice, only the hashing threads run at the lower priority', async () => {
    const p = join(dir, 'nice.pkg');
    writeFileSync(p, randomBytes(96 * MiB));
    const before = getPriority();
    expect(threadNices()).not.toContain(before + 7);
    const seen = new Set<number>();
    const timer = setInterval(() => threadNices().forEach(n => seen.add(n)), 5);
    const h = await hashFile(p, { nice: 7 });
    clearInterval(timer);
    expect(h.bytes).toBe(96 * MiB);
    expect(seen).toContain(before + 7);
    // The process (its main thread) keeps its priority.
    expect(getPriority()).toBe(before);
    // The hashing threads end (terminate() is asynchronous) and take their priority along.
    await expect.poll(() => threadNices().includes(before + 7), { timeout: 5_000 }).toBe(false);
  });
});
