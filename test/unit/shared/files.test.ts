import { chmodSync, mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { AppError } from '../../../shared/errors.ts';
import { assertUnchanged, checkUploadFile, validateFileName } from '../../../shared/files.ts';

const dir = mkdtempSync(join(tmpdir(), 'jcds-files-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function codeOf(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
    return undefined;
  } catch (e) {
    return (e as AppError).code;
  }
}

describe('checkUploadFile', () => {
  it('accepts a package and records size and mtime', async () => {
    const p = join(dir, 'Good App 1.0+beta (ü) %#?.pkg');
    writeFileSync(p, 'hello');
    const f = await checkUploadFile(p);
    expect(f.fileName).toBe('Good App 1.0+beta (ü) %#?.pkg');
    expect(f.size).toBe(5);
    expect(f.mtimeMs).toBeGreaterThan(0);
  });

  it('names each problem', async () => {
    writeFileSync(join(dir, 'empty.pkg'), '');
    writeFileSync(join(dir, 'notes.txt'), 'x');
    mkdirSync(join(dir, 'folder.pkg'));
    expect(await codeOf(checkUploadFile(join(dir, 'missing.pkg')))).toBe('FILE_NOT_FOUND');
    expect(await codeOf(checkUploadFile(join(dir, 'empty.pkg')))).toBe('FILE_EMPTY');
    expect(await codeOf(checkUploadFile(join(dir, 'notes.txt')))).toBe('UNSUPPORTED_FILE_TYPE');
    expect(await codeOf(checkUploadFile(join(dir, 'folder.pkg')))).toBe('FILE_NOT_REGULAR');
    await expect(checkUploadFile(join(dir, 'notes.txt'))).rejects.toThrow(
      /\.pkg, \.mpkg, \.dmg and \.zip/,
    );
  });

  it('refuses an unreadable file (when not root)', async () => {
    const p = join(dir, 'secret.dmg');
    writeFileSync(p, 'x');
    chmodSync(p, 0o000);
    const code = await codeOf(checkUploadFile(p));
    // root can read anything; everyone else gets FILE_UNREADABLE.
    expect(code).toBe(process.getuid?.() === 0 ? undefined : 'FILE_UNREADABLE');
  });
});

describe('validateFileName', () => {
  it('refuses names that escape a folder', () => {
    for (const bad of ['../../x.pkg', 'a/b.pkg', '..', 'a\0b.pkg', 'x\\y.pkg', '']) {
      expect(() => validateFileName(bad)).toThrow(AppError);
    }
  });
});

describe('assertUnchanged', () => {
  it('detects a changed mtime or size', async () => {
    const p = join(dir, 'change.zip');
    writeFileSync(p, 'abc');
    const f = await checkUploadFile(p);
    await assertUnchanged(f);
    utimesSync(p, new Date(), new Date(Date.now() + 5000));
    expect(await codeOf(assertUnchanged(f))).toBe('FILE_CHANGED');
  });
});
