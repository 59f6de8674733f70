/**
 * downloadFile against a real local HTTP server that serves byte ranges the way S3 does
 * (206 + Content-Range), refuses expired URLs with 403, and can drop connections
 * mid-body; real files in a temp folder (and a real 256 KiB tmpfs for the full disk:
 * mounting it needs root, as CI runs).
 */
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  existsSync,
  linkSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent } from 'undici';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { AppError } from '../../../../shared/errors.ts';
import { downloadFile, type DownloadFileOptions } from '../../../../shared/download/downloader.ts';
import { isPartialName, type PartialFile } from '../../../../shared/download/destination.ts';
import { PresignedUrl } from '../../../../shared/download/range-fetcher.ts';
import type { ByteRange } from '../../../../shared/download/ranges.ts';

const SIZE = 1_000_003;
const RANGE = 64 * 1024;
const content = randomBytes(SIZE);
const md5 = createHash('md5').update(content).digest('hex');
const sha3 = createHash('sha3-512').update(content).digest('hex');
const sha256 = createHash('sha256').update(content).digest('hex');

const state = { valid: new Set<string>(), bytesServed: 0, requests: 0, dropNext: 0 };
let server: Server;
let base = '';
let dir = '';
let agent: Agent;
let issued = 0;

function issueUrl(): Promise<string> {
  const token = `t${++issued}`;
  state.valid.add(token);
  return Promise.resolve(`${base}/file.pkg?X-Amz-Signature=${token}`);
}

beforeAll(async () => {
  server = createServer((req, res) => {
    state.requests++;
    const token = new URL(req.url ?? '/', 'http://x').searchParams.get('X-Amz-Signature') ?? '';
    if (!state.valid.has(token)) {
      res.writeHead(403, { 'content-type': 'application/xml' });
      res.end('<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>');
      return;
    }
    const m = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '');
    const start = m ? Number(m[1]) : 0;
    const end = m ? Math.min(Number(m[2]), SIZE - 1) : SIZE - 1;
    const body = content.subarray(start, end + 1);
    res.writeHead(m ? 206 : 200, {
      'content-length': body.length,
      ...(m ? { 'content-range': `bytes ${start}-${end}/${SIZE}` } : {}),
    });
    if (state.dropNext > 0 && body.length > 1000) {
      state.dropNext--;
      const half = body.subarray(0, Math.floor(body.length / 2));
      state.bytesServed += half.length;
      res.write(half, () => res.socket?.destroy());
      return;
    }
    state.bytesServed += body.length;
    res.end(body);
  });
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise<void>(resolve => server.close(() => resolve()));
});

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'jcds-dl-unit-'));
  agent = new Agent({ connections: 8 });
  Object.assign(state, { valid: new Set<string>(), bytesServed: 0, requests: 0, dropNext: 0 });
});

afterEach(async () => {
  await agent.close();
  rmSync(dir, { recursive: true, force: true });
});

/** The partial files (temporary names) in `folder`. */
function partials(folder = dir): string[] {
  return readdirSync(folder).filter(n => n.endsWith('.partial'));
}

/** A partial file as an earlier attempt left it: `bytes` at a recorded name. */
function leftPartial(bytes: Buffer, name = '.jcds-AAAAAAAAAAAA.partial'): PartialFile {
  writeFileSync(join(dir, name), bytes);
  const st = statSync(join(dir, name), { bigint: true });
  return { name, dev: st.dev.toString(), ino: st.ino.toString() };
}

/** A victim file elsewhere, which no download may write. */
function victim(): { path: string; text: string } {
  const path = join(mkdtempSync(join(tmpdir(), 'jcds-victim-')), 'secret.txt');
  writeFileSync(path, 'the victim, unchanged');
  return { path, text: 'the victim, unchanged' };
}

function options(over: Partial<DownloadFileOptions> = {}): DownloadFileOptions & {
  checkpoints: ByteRange[][];
  recorded: PartialFile[];
  lines: string[];
} {
  const checkpoints: ByteRange[][] = [];
  const recorded: PartialFile[] = [];
  const lines: string[] = [];
  return {
    fileName: 'file.pkg',
    dest: join(dir, 'file.pkg'),
    overwrite: false,
    expected: { size: SIZE, md5, sha3 },
    done: [],
    url: new PresignedUrl(issueUrl),
    checkpoint: async (r, p) => {
      checkpoints.push(r);
      recorded.push(p);
    },
    progress: () => undefined,
    log: line => lines.push(line),
    rangeSize: RANGE,
    concurrency: 4,
    dispatcher: agent,
    checkpoints,
    recorded,
    lines,
    ...over,
  };
}

describe('downloadFile', () => {
  it('fetches every range, verifies MD5 and SHA3-512 and moves the file into place', async () => {
    const o = options();
    const r = await downloadFile(o);
    expect(r).toMatchObject({
      size: SIZE,
      md5,
      sha3_512: sha3,
      verified: true,
      bytesFetched: SIZE,
      resumedBytes: 0,
    });
    expect(readFileSync(o.dest).equals(content)).toBe(true);
    expect(readdirSync(dir)).toEqual(['file.pkg']);
    expect(state.bytesServed).toBe(SIZE);
    expect(o.checkpoints.at(-1)).toEqual([[0, SIZE - 1]]);
    // The partial file was recorded before a byte was written, under a random name.
    expect(o.checkpoints[0]).toEqual([]);
    expect(isPartialName(o.recorded[0]!.name)).toBe(true);
    expect(new Set(o.recorded.map(p => p.name)).size).toBe(1);
  });

  it('resumes from a checkpoint and fetches only the missing bytes', async () => {
    const dest = join(dir, 'file.pkg');
    const partial = Buffer.alloc(SIZE);
    content.copy(partial, 0, 0, 5 * RANGE);
    content.copy(partial, 8 * RANGE, 8 * RANGE, 10 * RANGE);
    const recorded = leftPartial(partial);
    const done: ByteRange[] = [
      [0, 5 * RANGE - 1],
      [8 * RANGE, 10 * RANGE - 1],
    ];
    const o = options({ done, partial: recorded });
    const r = await downloadFile(o);
    expect(r.resumedBytes).toBe(7 * RANGE);
    expect(state.bytesServed).toBe(SIZE - 7 * RANGE);
    expect(readFileSync(dest).equals(content)).toBe(true);
    // The file moved into place is the partial file itself (its inode).
    expect(statSync(dest, { bigint: true }).ino.toString()).toBe(recorded.ino);
    expect(new Set(o.recorded.map(p => p.name))).toEqual(new Set([recorded.name]));
    expect(partials()).toEqual([]);
  });

  it('an older version’s checkpoint (<dest>.partial) is dropped: a link planted there is never followed', async () => {
    const v = victim();
    const dest = join(dir, 'file.pkg');
    symlinkSync(v.path, `${dest}.partial`);
    const o = options({ done: [[0, 5 * RANGE - 1]] });
    const r = await downloadFile(o);
    expect(r.resumedBytes).toBe(0);
    expect(o.lines.join('\n')).toMatch(
      /older version .*neither trusted nor touched; starting over/,
    );
    expect(readFileSync(v.path, 'utf8')).toBe(v.text);
    expect(lstatSync(dest).isFile()).toBe(true);
    expect(readFileSync(dest).equals(content)).toBe(true);
    expect(readlinkSync(`${dest}.partial`)).toBe(v.path);
  });

  it('a symbolic link put at the recorded partial name is not opened: left alone, starting over', async () => {
    const v = victim();
    const recorded = leftPartial(content.subarray(0, 5 * RANGE));
    rmSync(join(dir, recorded.name));
    symlinkSync(v.path, join(dir, recorded.name));
    const o = options({ done: [[0, 5 * RANGE - 1]], partial: recorded });
    const r = await downloadFile(o);
    expect(r.resumedBytes).toBe(0);
    expect(o.lines.join('\n')).toMatch(/is a symbolic link now, not the partial file: left alone/);
    expect(readFileSync(v.path, 'utf8')).toBe(v.text);
    expect(readFileSync(o.dest).equals(content)).toBe(true);
    expect(lstatSync(join(dir, recorded.name)).isSymbolicLink()).toBe(true);
    expect(o.recorded.at(-1)!.name).not.toBe(recorded.name);
  });

  it('another file put at the recorded partial name (other inode) is not written: starting over', async () => {
    const recorded = leftPartial(content.subarray(0, 5 * RANGE));
    // Moved away (so its inode stays in use), another file put at its name.
    renameSync(join(dir, recorded.name), join(dir, 'moved-away'));
    writeFileSync(join(dir, recorded.name), 'planted by someone else');
    const o = options({ done: [[0, 5 * RANGE - 1]], partial: recorded });
    const r = await downloadFile(o);
    expect(r.resumedBytes).toBe(0);
    expect(o.lines.join('\n')).toMatch(/is not the partial file this download created/);
    expect(readFileSync(join(dir, recorded.name), 'utf8')).toBe('planted by someone else');
    expect(readFileSync(o.dest).equals(content)).toBe(true);
  });

  it('a hard link put at the recorded partial name is not written (a second name of another file)', async () => {
    const v = victim();
    const recorded = leftPartial(content.subarray(0, 5 * RANGE));
    rmSync(join(dir, recorded.name));
    linkSync(v.path, join(dir, recorded.name));
    const o = options({ done: [[0, 5 * RANGE - 1]], partial: recorded });
    await downloadFile(o);
    expect(readFileSync(v.path, 'utf8')).toBe(v.text);
    expect(readFileSync(o.dest).equals(content)).toBe(true);
  });

  it('a checkpoint naming a file this program does not make is ignored', async () => {
    const v = victim();
    writeFileSync(join(dir, 'notes.txt'), 'keep me');
    const st = statSync(join(dir, 'notes.txt'), { bigint: true });
    const o = options({
      done: [[0, 5 * RANGE - 1]],
      partial: { name: 'notes.txt', dev: st.dev.toString(), ino: st.ino.toString() },
    });
    await downloadFile(o);
    expect(o.lines.join('\n')).toMatch(/not a name this program makes: ignored/);
    expect(readFileSync(join(dir, 'notes.txt'), 'utf8')).toBe('keep me');
    expect(readFileSync(v.path, 'utf8')).toBe(v.text);
  });

  it('a 255-byte file name downloads (the partial name does not grow with it)', async () => {
    const name = `${'é'.repeat(124)}abc.pkg`;
    expect(Buffer.byteLength(name)).toBe(255);
    const o = options({ fileName: name, dest: join(dir, name) });
    const r = await downloadFile(o);
    expect(r.verified).toBe(true);
    expect(readFileSync(join(dir, name)).equals(content)).toBe(true);
    expect(readdirSync(dir)).toEqual([name]);
  });

  it('a symbolic link at the destination is refused, even with overwrite; the verified file is kept for a retry', async () => {
    const v = victim();
    const dest = join(dir, 'file.pkg');
    symlinkSync(v.path, dest);
    for (const overwrite of [false, true]) {
      const o = options({ overwrite });
      const err = await downloadFile(o).catch((e: unknown) => e);
      expect((err as AppError).code).toBe('DESTINATION_INVALID');
      expect((err as AppError).message).toMatch(
        /is a symbolic link: downloads never write through a link or replace one.*kept as/,
      );
      expect(readFileSync(v.path, 'utf8')).toBe(v.text);
      expect(readlinkSync(dest)).toBe(v.path);
      if (overwrite) {
        // The link removed, the retry (same checkpoint) moves the kept file: nothing fetched.
        rmSync(dest);
        const served = state.bytesServed;
        const again = await downloadFile(
          options({ done: o.checkpoints.at(-1)!, partial: o.recorded.at(-1)!, overwrite }),
        );
        expect(again.bytesFetched).toBe(0);
        expect(state.bytesServed).toBe(served);
        expect(lstatSync(dest).isFile()).toBe(true);
        expect(readFileSync(dest).equals(content)).toBe(true);
      }
    }
  });

  it('drops a checkpoint whose partial file is missing and starts over', async () => {
    const o = options({ done: [[0, RANGE - 1]] });
    const r = await downloadFile(o);
    expect(r.resumedBytes).toBe(0);
    expect(o.checkpoints[0]).toEqual([]);
    expect(o.lines.join('\n')).toMatch(/starting over/);
    expect(state.bytesServed).toBe(SIZE);
  });

  it('gets a fresh URL after a 403 (expired) without failing', async () => {
    let loads = 0;
    const url = new PresignedUrl(async () => {
      loads++;
      // The first URL is already expired: the server does not know its token.
      return loads === 1 ? `${base}/file.pkg?X-Amz-Signature=expired` : issueUrl();
    });
    const o = options({ url });
    const r = await downloadFile(o);
    expect(loads).toBe(2);
    expect(r.urlRefreshes).toBeGreaterThanOrEqual(1);
    expect(readFileSync(o.dest).equals(content)).toBe(true);
    expect(o.lines.join('\n')).not.toMatch(/X-Amz-Signature/);
  });

  it('continues a range after a dropped connection from the last byte written', async () => {
    state.dropNext = 3;
    const o = options();
    const r = await downloadFile(o);
    expect(r.verified).toBe(true);
    expect(readFileSync(o.dest).equals(content)).toBe(true);
    // Half-ranges that arrived before the drop are kept: nothing is fetched twice.
    expect(state.bytesServed).toBe(SIZE);
  });

  it('with the package record’s SHA-256, verifies by SHA-256 alone', async () => {
    const o = options({ expected: { size: SIZE, md5, sha3, sha256 } });
    const r = await downloadFile(o);
    expect(r).toMatchObject({ sha256, verified: true, verifiedBy: 'sha256' });
    // Neither MD5 nor SHA3-512 was computed.
    expect(r.md5).toBeUndefined();
    expect(r.sha3_512).toBeUndefined();
    expect(readFileSync(o.dest).equals(content)).toBe(true);
    expect(o.lines.join('\n')).toMatch(/verified \(SHA-256 equals the one Jamf computed/);
  });

  it('a SHA-256 unlike the file’s (a record’s wrong claim) is not a verdict: MD5 and SHA3-512 of the listing decide', async () => {
    const o = options({ expected: { size: SIZE, md5, sha3, sha256: 'ab'.repeat(32) } });
    const r = await downloadFile(o);
    expect(r).toMatchObject({ md5, sha3_512: sha3, sha256, verified: true, verifiedBy: 'listing' });
    expect(readFileSync(o.dest).equals(content)).toBe(true);
    expect(o.lines.join('\n')).toMatch(
      /SHA-256 \w{16}… differs from the package record's abababababababab…: checking the hashes of the JCDS listing instead/,
    );
    // Fetched once: the second check read the partial file again, not the network.
    expect(state.bytesServed).toBe(SIZE);
  });

  it('fails with VERIFY_FAILED when the SHA-256 differs and so do the listed hashes', async () => {
    for (const expected of [
      { size: SIZE, md5: '0'.repeat(32), sha3, sha256: 'ab'.repeat(32) },
      { size: SIZE, sha256: 'ab'.repeat(32) },
    ]) {
      const o = options({ expected });
      const err = await downloadFile(o).catch((e: unknown) => e);
      expect((err as AppError).code).toBe('VERIFY_FAILED');
      expect((err as AppError).message).toMatch(
        expected.md5
          ? /does not match what Jamf lists \(MD5 /
          : /\(SHA-256 \w+, Jamf computed abab/,
      );
      expect(existsSync(o.dest)).toBe(false);
      expect(partials()).toEqual([]);
    }
  });

  it('fails with VERIFY_FAILED on a hash mismatch: no destination, no partial', async () => {
    const o = options({ expected: { size: SIZE, md5: '0'.repeat(32), sha3 } });
    const err = await downloadFile(o).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AppError);
    expect((err as AppError).code).toBe('VERIFY_FAILED');
    expect((err as AppError).message).toMatch(/does not match/);
    expect(existsSync(o.dest)).toBe(false);
    expect(partials()).toEqual([]);
    expect(o.checkpoints.at(-1)).toEqual([]);
  });

  it('fails with DISK_FULL on ENOSPC and keeps the partial file', async () => {
    // A real file system of 256 KiB for a file of about 1 MB.
    const small = join(dir, 'small');
    mkdirSync(small);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=256k', 'tmpfs', small]);
    try {
      const o = options({ dest: join(small, 'file.pkg') });
      const err = await downloadFile(o).catch((e: unknown) => e);
      expect((err as AppError).code).toBe('DISK_FULL');
      expect((err as AppError).message).toMatch(/is full.*free at least .* kept/);
      expect(partials(small)).toEqual([o.recorded.at(-1)!.name]);
      expect(existsSync(o.dest)).toBe(false);
    } finally {
      execFileSync('umount', [small]);
    }
  });

  it('refuses to replace a destination that appeared meanwhile, unless overwrite', async () => {
    const o = options();
    writeFileSync(o.dest, 'someone else');
    const err = await downloadFile(o).catch((e: unknown) => e);
    expect((err as AppError).code).toBe('DESTINATION_EXISTS');
    expect(readFileSync(o.dest, 'utf8')).toBe('someone else');
    const again = await downloadFile(options({ overwrite: true }));
    expect(again.verified).toBe(true);
    expect(readFileSync(o.dest).equals(content)).toBe(true);
  });
});
