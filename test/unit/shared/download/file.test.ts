/**
 * downloadFile against a real local HTTP server that serves byte ranges the way S3 does
 * (206 + Content-Range), refuses expired URLs with 403, and can drop connections
 * mid-body; real files in a temp folder.
 */
import { createHash, randomBytes } from 'node:crypto';
import {
  existsSync,
  lstatSync,
  mkdtempSync,
  readFileSync,
  rmSync,
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
import { PresignedUrl } from '../../../../shared/download/range-fetcher.ts';
import type { ByteRange } from '../../../../shared/download/ranges.ts';

const SIZE = 1_000_003;
const RANGE = 64 * 1024;
const content = randomBytes(SIZE);
const md5 = createHash('md5').update(content).digest('hex');
const sha3 = createHash('sha3-512').update(content).digest('hex');

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

function options(
  over: Partial<DownloadFileOptions> = {},
): DownloadFileOptions & { checkpoints: ByteRange[][]; lines: string[] } {
  const checkpoints: ByteRange[][] = [];
  const lines: string[] = [];
  return {
    fileName: 'file.pkg',
    dest: join(dir, 'file.pkg'),
    overwrite: false,
    expected: { size: SIZE, md5, sha3 },
    done: [],
    url: new PresignedUrl(issueUrl),
    checkpoint: async r => {
      checkpoints.push(r);
    },
    progress: () => undefined,
    log: line => lines.push(line),
    rangeSize: RANGE,
    concurrency: 4,
    dispatcher: agent,
    checkpoints,
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
    expect(existsSync(`${o.dest}.partial`)).toBe(false);
    expect(state.bytesServed).toBe(SIZE);
    expect(o.checkpoints.at(-1)).toEqual([[0, SIZE - 1]]);
  });

  it('resumes from a checkpoint and fetches only the missing bytes', async () => {
    const dest = join(dir, 'file.pkg');
    const partial = Buffer.alloc(SIZE);
    content.copy(partial, 0, 0, 5 * RANGE);
    content.copy(partial, 8 * RANGE, 8 * RANGE, 10 * RANGE);
    writeFileSync(`${dest}.partial`, partial);
    const done: ByteRange[] = [
      [0, 5 * RANGE - 1],
      [8 * RANGE, 10 * RANGE - 1],
    ];
    const r = await downloadFile(options({ done }));
    expect(r.resumedBytes).toBe(7 * RANGE);
    expect(state.bytesServed).toBe(SIZE - 7 * RANGE);
    expect(readFileSync(dest).equals(content)).toBe(true);
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

  it('fails with VERIFY_FAILED on a hash mismatch: no destination, no partial', async () => {
    const o = options({ expected: { size: SIZE, md5: '0'.repeat(32), sha3 } });
    const err = await downloadFile(o).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AppError);
    expect((err as AppError).code).toBe('VERIFY_FAILED');
    expect((err as AppError).message).toMatch(/does not match/);
    expect(existsSync(o.dest)).toBe(false);
    expect(existsSync(`${o.dest}.partial`)).toBe(false);
    expect(o.checkpoints.at(-1)).toEqual([]);
  });

  it('fails with DISK_FULL on ENOSPC and keeps the partial file', async () => {
    const o = options();
    symlinkSync('/dev/full', `${o.dest}.partial`);
    const err = await downloadFile(o).catch((e: unknown) => e);
    expect((err as AppError).code).toBe('DISK_FULL');
    expect((err as AppError).message).toMatch(/is full.*free at least .* kept/);
    expect(lstatSync(`${o.dest}.partial`).isSymbolicLink()).toBe(true);
    expect(existsSync(o.dest)).toBe(false);
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
