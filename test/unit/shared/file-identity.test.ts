/**
 * The helpers of issue 13 section 2 ("only the job's own files are read or written"):
 * the file identity recorded at enqueue and the checked open (real files in a temp
 * folder, `touch -r` as an operator would run it), the path's own extension, containment
 * on real paths, the download folders setting, the partial-file names, and the sync-up
 * symbolic-link rule.
 */
import { execFileSync } from 'node:child_process';
import {
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseDownloadDirs } from '../../../shared/config.ts';
import {
  checkDownloadAllowed,
  isPartialName,
  newPartialName,
  resolveDestination,
} from '../../../shared/download/destination.ts';
import type { AppError } from '../../../shared/errors.ts';
import {
  assertIdentity,
  describeChange,
  hashIdentified,
  identityProblems,
  openIdentified,
  type FileIdentity,
} from '../../../shared/file-identity.ts';
import { checkUploadFile, isInside, validatePathExtension } from '../../../shared/files.ts';
import { checkSyncFile } from '../../../worker/processors/sync-up.ts';

const dir = mkdtempSync(join(tmpdir(), 'jcds-identity-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function failure(p: Promise<unknown>): Promise<AppError> {
  return p.then(
    () => {
      throw new Error('expected a rejection');
    },
    (e: unknown) => e as AppError,
  );
}

const base: FileIdentity = {
  host: 'a',
  dev: '64',
  ino: '1000',
  size: 10,
  mtimeMs: 1_700_000_000_000,
  ctimeMs: 1_700_000_000_000,
};

describe('describeChange', () => {
  it('is empty for the same file', () => {
    expect(describeChange(base, { ...base })).toEqual([]);
  });
  it('names another inode, a size, an mtime', () => {
    expect(describeChange(base, { ...base, ino: '1001' }).join()).toMatch(/another file/);
    expect(describeChange(base, { ...base, size: 11 }).join()).toMatch(/size 10 → 11 bytes/);
    expect(describeChange(base, { ...base, mtimeMs: base.mtimeMs + 1 }).join()).toMatch(/modified/);
  });
  it('names a ctime change alone as a rewrite with the mtime put back', () => {
    const c = describeChange(base, { ...base, ctimeMs: base.ctimeMs + 5 });
    expect(c).toHaveLength(1);
    expect(c[0]).toMatch(/status changed .*rewritten in place with its modified time put back/);
  });
  it('compares devices only on the host that recorded them', () => {
    expect(describeChange(base, { ...base, dev: '65' }).join()).toMatch(/another file/);
    expect(describeChange(base, { ...base, host: 'b', dev: '65' })).toEqual([]);
    expect(describeChange(base, { ...base, host: 'b', dev: '65', ino: '7' })).toHaveLength(1);
  });
});

describe('identityProblems', () => {
  it('accepts a full identity and lists what is missing or malformed', () => {
    expect(identityProblems({ ...base, path: '/x/a.pkg' })).toEqual([]);
    expect(identityProblems({ path: 'rel/a.pkg', size: 1, mtimeMs: 1 })).toEqual([
      'path is not an absolute path',
      'host is missing',
      'dev is missing',
      'ino is missing',
      'ctimeMs is missing',
    ]);
    expect(identityProblems({ ...base, path: '/a.pkg', ino: '12; rm' })).toEqual([
      'ino is missing',
    ]);
  });
});

describe('openIdentified', () => {
  it('reads the enqueued file; a rewrite in place with its mtime put back (touch -r) is caught by ctime', async () => {
    const p = join(dir, 'App.pkg');
    writeFileSync(p, 'original bytes');
    const f = await checkUploadFile(p);
    expect(f.host).toBe(hostname());
    expect((await hashIdentified(f)).bytes).toBe(14);
    writeFileSync(join(dir, 'ref'), '');
    execFileSync('touch', ['-r', p, join(dir, 'ref')]);
    await new Promise(r => setTimeout(r, 20));
    writeFileSync(p, 'replaced bytes');
    execFileSync('touch', ['-r', join(dir, 'ref'), p]);
    expect(statSync(p).mtimeMs).toBe(f.mtimeMs);
    expect(statSync(p).size).toBe(f.size);
    const err = await failure(assertIdentity(f));
    expect(err.code).toBe('FILE_CHANGED');
    expect(err.message).toMatch(
      /is not the file enqueued for App\.pkg: status changed .*rewritten in place.*enqueue it again/,
    );
  });

  it('a file replaced by a symbolic link to another file of the same size is refused (not followed)', async () => {
    const p = join(dir, 'Swap.pkg');
    writeFileSync(p, 'AAAA');
    const f = await checkUploadFile(p);
    writeFileSync(join(dir, 'other'), 'BBBB');
    rmSync(p);
    symlinkSync(join(dir, 'other'), p);
    const err = await failure(openIdentified(f));
    expect(err.code).toBe('FILE_CHANGED');
    expect(err.message).toMatch(/replaced by a symbolic link \(not followed\)/);
  });

  it('a link recorded as followed is followed, but re-pointing it is another file', async () => {
    writeFileSync(join(dir, 'v1.pkg'), 'one');
    writeFileSync(join(dir, 'v2.pkg'), 'two');
    symlinkSync(join(dir, 'v1.pkg'), join(dir, 'latest.pkg'));
    const f = await checkUploadFile(join(dir, 'latest.pkg'));
    expect(f.followSymlink).toBe(true);
    const fh = await openIdentified(f);
    expect((await fh.readFile()).toString()).toBe('one');
    await fh.close();
    rmSync(join(dir, 'latest.pkg'));
    symlinkSync(join(dir, 'v2.pkg'), join(dir, 'latest.pkg'));
    expect((await failure(openIdentified(f))).message).toMatch(/another file/);
  });

  it('a job without the identity is JOB_DATA_INVALID, before anything is opened', async () => {
    const err = await failure(
      openIdentified({ path: '/etc/hostname', fileName: 'x.pkg', size: 1, mtimeMs: 1 } as never),
    );
    expect(err.code).toBe('JOB_DATA_INVALID');
  });
});

describe('validatePathExtension', () => {
  it('refuses a path whose own extension Jamf would not take, whatever the file name', () => {
    expect(() => validatePathExtension('/srv/a.pkg', 'a.pkg')).not.toThrow();
    expect(() => validatePathExtension('/srv/tool.exe', 'tool.pkg')).toThrow(
      /tool\.exe has the extension \.exe \(it would be published as "tool\.pkg"\)/,
    );
    expect(() => validatePathExtension('/etc/shadow', 'shadow.pkg')).toThrow(/no extension/);
  });
});

describe('isInside', () => {
  it.each([
    ['/a/b', '/a', true],
    ['/a', '/a', true],
    ['/a/b/c', '/a/b', true],
    ['/ab', '/a', false],
    ['/a/../b', '/a', false],
    ['/', '/a', false],
    ['/a/..b', '/a', true],
  ])('%s in %s: %s', (child, parent, inside) => {
    expect(isInside(child, parent)).toBe(inside);
  });
});

describe('parseDownloadDirs', () => {
  it('defaults to the working directory and refuses relative folders', () => {
    const bad: string[] = [];
    const note = (name: string, value: string, why: string): void => {
      bad.push(`${name} ${value} ${why}`);
    };
    expect(parseDownloadDirs(undefined, note)).toEqual([process.cwd()]);
    expect(parseDownloadDirs('/srv/a:/srv/b/', note)).toEqual(['/srv/a', '/srv/b']);
    expect(bad).toEqual([]);
    parseDownloadDirs('/srv/a:downloads', note);
    expect(bad).toEqual(['JCDS_DOWNLOAD_DIRS /srv/a:downloads downloads is not absolute']);
  });
});

describe('checkDownloadAllowed', () => {
  it('allows folders inside an allowed one, on real paths, and names the setting otherwise', async () => {
    const allowed = join(dir, 'allowed');
    mkdirSync(join(allowed, 'sub'), { recursive: true });
    mkdirSync(join(dir, 'elsewhere'));
    symlinkSync(join(dir, 'elsewhere'), join(allowed, 'escape'));
    await checkDownloadAllowed(join(allowed, 'sub', 'a.pkg'), [allowed]);
    await checkDownloadAllowed(join(allowed, 'a.pkg'), [allowed]);
    const out = await failure(checkDownloadAllowed(join(dir, 'elsewhere', 'a.pkg'), [allowed]));
    expect(out.code).toBe('DESTINATION_NOT_ALLOWED');
    expect(out.message).toMatch(/JCDS_DOWNLOAD_DIRS: .*allowed\): download into one of them/);
    // A link inside the allowed folder that leads out of it does not count as inside.
    const viaLink = await failure(
      checkDownloadAllowed(join(allowed, 'escape', 'a.pkg'), [allowed]),
    );
    expect(viaLink.code).toBe('DESTINATION_NOT_ALLOWED');
    expect((await failure(checkDownloadAllowed('rel/a.pkg', [allowed]))).code).toBe(
      'DESTINATION_INVALID',
    );
  });
});

describe('partial file names', () => {
  it('are random, short and recognised; nothing else is', () => {
    const a = newPartialName();
    expect(isPartialName(a)).toBe(true);
    expect(Buffer.byteLength(a)).toBe(26);
    expect(newPartialName()).not.toBe(a);
    for (const n of ['x.pkg.partial', '.jcds-short.partial', '../.jcds-AAAAAAAAAAAA.partial', 3])
      expect(isPartialName(n)).toBe(false);
  });
});

describe('resolveDestination', () => {
  it('refuses a symbolic link as the destination, with or without overwrite', async () => {
    writeFileSync(join(dir, 'victim.txt'), 'keep');
    symlinkSync(join(dir, 'victim.txt'), join(dir, 'link.pkg'));
    for (const overwrite of [false, true]) {
      const err = await failure(resolveDestination('a.pkg', join(dir, 'link.pkg'), overwrite));
      expect(err.code).toBe('DESTINATION_INVALID');
      expect(err.message).toMatch(/is a symbolic link: downloads never write through a link/);
    }
    expect(readFileSync(join(dir, 'victim.txt'), 'utf8')).toBe('keep');
  });
});

describe('checkSyncFile', () => {
  it('refuses a link that leaves the folder unless asked; a link inside is the folder’s own file', async () => {
    const pkgs = join(dir, 'pkgs');
    mkdirSync(join(dir, 'private'));
    mkdirSync(pkgs);
    writeFileSync(join(dir, 'private', 'secret'), 'secret bytes');
    writeFileSync(join(pkgs, 'Real.pkg'), 'real');
    symlinkSync('../private/secret', join(pkgs, 'loot.pkg'));
    symlinkSync('Real.pkg', join(pkgs, 'latest.pkg'));
    const out = await failure(checkSyncFile(join(pkgs, 'loot.pkg'), pkgs, false));
    expect(out.code).toBe('SYMLINK_OUTSIDE');
    expect(out.message).toMatch(
      /is a symbolic link to .*private\/secret, outside the synced folder/,
    );
    const followed = await checkSyncFile(join(pkgs, 'loot.pkg'), pkgs, true);
    expect(followed).toMatchObject({ fileName: 'loot.pkg', followSymlink: true, size: 12 });
    const inside = await checkSyncFile(join(pkgs, 'latest.pkg'), pkgs, false);
    expect(inside).toMatchObject({ fileName: 'latest.pkg', followSymlink: true, size: 4 });
  });
});
