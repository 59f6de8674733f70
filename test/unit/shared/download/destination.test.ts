import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildDownloadJob } from '../../../../producer/download.ts';
import { resolveDestination } from '../../../../shared/download/destination.ts';

let dir = '';
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'jcds-dest-'));
  mkdirSync(join(dir, 'sub'));
  writeFileSync(join(dir, 'exists.pkg'), 'x');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function codeOf(p: Promise<unknown>): Promise<string | undefined> {
  return p.then(
    () => undefined,
    (e: { code?: string }) => e.code,
  );
}

describe('resolveDestination', () => {
  it('appends the file name to a folder', async () => {
    expect(await resolveDestination('Firefox 128.pkg', join(dir, 'sub'))).toBe(
      join(dir, 'sub', 'Firefox 128.pkg'),
    );
  });
  it('keeps a file path whose folder exists', async () => {
    expect(await resolveDestination('a.pkg', join(dir, 'renamed.pkg'))).toBe(
      join(dir, 'renamed.pkg'),
    );
  });
  it.each(['../../../etc/passwd', '/abs.pkg', 'a/b.pkg', 'a\\b.pkg', 'nul\0.pkg', '..', ''])(
    'refuses the unsafe name %j',
    async name => {
      expect(await codeOf(resolveDestination(name, dir))).toBe('UNSAFE_FILE_NAME');
    },
  );
  it('refuses a destination whose folder does not exist, naming the folder', async () => {
    const p = resolveDestination('a.pkg', join(dir, 'missing', 'a.pkg'));
    await expect(p).rejects.toThrow(/destination folder .*missing does not exist: create it/);
    expect(await codeOf(resolveDestination('a.pkg', join(dir, 'missing') + '/'))).toBe(
      'DESTINATION_INVALID',
    );
  });
  it('refuses an existing file unless overwrite', async () => {
    await expect(resolveDestination('exists.pkg', dir)).rejects.toMatchObject({
      code: 'DESTINATION_EXISTS',
    });
    expect(await resolveDestination('exists.pkg', dir, true)).toBe(join(dir, 'exists.pkg'));
  });
  it('refuses a .partial destination', async () => {
    expect(await codeOf(resolveDestination('a.pkg', join(dir, 'a.pkg.partial')))).toBe(
      'DESTINATION_INVALID',
    );
  });
});

describe('buildDownloadJob', () => {
  it('builds the job data with the resolved path and a per-destination dedup id', async () => {
    const { data, opts } = await buildDownloadJob({ fileName: 'b.pkg', dest: dir });
    expect(data).toEqual({ fileName: 'b.pkg', dest: join(dir, 'b.pkg'), overwrite: false });
    expect(opts.deduplication).toEqual({ id: `download:${join(dir, 'b.pkg')}` });
  });
  it('refuses a non-boolean overwrite', async () => {
    expect(
      await codeOf(
        buildDownloadJob({ fileName: 'b.pkg', dest: dir, overwrite: 'yes' as unknown as boolean }),
      ),
    ).toBe('USAGE');
  });
});
