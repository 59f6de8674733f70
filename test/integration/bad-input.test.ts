/**
 * Bad input: each case must give a clear error that names the problem and the fix, and
 * lose nothing (nothing half-enqueued, no job failed for something a check could have
 * refused up front). And names that need encoding (spaces, +, %, #, ?, unicode) must
 * upload and download byte-exact.
 *
 * Unreadable files: root reads anything, so when the tests run as root the check runs in a
 * child process stripped of CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH (util-linux
 * `setpriv`), which makes root obey file permission bits like any other user.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AppError } from '../../shared/errors.ts';
import { MAX_OBJECT_SIZE } from '../../shared/upload/part-plan.ts';
import type { DownloadResult, UploadJobData } from '../../shared/queues/jobs.ts';
import { KiB, MiB } from '../../shared/units.ts';
import { makeFile, ROOT } from '../helpers/fleet.ts';
import {
  expectNothingHalfDone,
  expectPublished,
  useHarness,
  waitForJobSettled,
  type Harness,
} from '../helpers/faults.ts';

const h = useHarness();
beforeAll(async () => {
  await h.fleet.startWorker();
});

async function jobCount(): Promise<number> {
  const counts = await h.fleet.queue('upload').getJobCounts();
  return Object.values(counts).reduce((a, b) => a + b, 0);
}

/** The producer refuses the request with `code`, a message matching every pattern, and enqueues nothing. */
async function expectRefused(
  req: Parameters<Harness['producer']['upload']>[0],
  code: string,
  patterns: RegExp[],
): Promise<AppError> {
  const before = await jobCount();
  let err: unknown;
  try {
    await h.producer.upload(req);
  } catch (e) {
    err = e;
  }
  expect(err, `expected ${code}`).toBeInstanceOf(AppError);
  const e = err as AppError;
  expect(e.code, e.message).toBe(code);
  for (const p of patterns) expect(e.message).toMatch(p);
  expect(await jobCount()).toBe(before);
  return e;
}

describe('bad input is refused before anything is enqueued', () => {
  it('a file that does not exist', async () => {
    const path = join(h.fleet.dir, 'Missing Thing.pkg');
    const e = await expectRefused({ path }, 'FILE_NOT_FOUND', [/does not exist/, /check the path/]);
    expect(e.message).toContain(path);
  });

  it('a directory (a bundle package must be zipped)', async () => {
    const path = join(h.fleet.dir, 'Bundle.pkg');
    mkdirSync(path, { recursive: true });
    await expectRefused({ path }, 'FILE_NOT_REGULAR', [/is a directory/, /sync|zipped/]);
  });

  it('a zero-byte file', async () => {
    const path = join(h.fleet.dir, 'Empty.pkg');
    writeFileSync(path, '');
    await expectRefused({ path }, 'FILE_EMPTY', [/empty \(0 bytes\)/, /rebuild/]);
  });

  it('a file too large for 10,000 parts of 5 GiB (a sparse file)', async () => {
    // ext4 caps files at 16 TiB; tmpfs takes a sparse 48.8 TiB file without using space.
    const dir = '/dev/shm';
    const path = join(dir, `jcds-too-large-${process.pid}.pkg`);
    const r = spawnSync('truncate', ['-s', String(MAX_OBJECT_SIZE + 1), path], {
      encoding: 'utf8',
    });
    expect(
      r.status,
      `truncate -s ${MAX_OBJECT_SIZE + 1} ${path} failed (this test needs a tmpfs /dev/shm): ${r.stderr}`,
    ).toBe(0);
    try {
      await expectRefused({ path }, 'FILE_TOO_LARGE', [/10,000 parts of 5 GiB/, /53687091200001/]);
    } finally {
      rmSync(path, { force: true });
    }
  });

  it('an unsupported extension, or none', async () => {
    for (const name of ['Installer.exe', 'README', 'Tool.app.tar']) {
      const path = join(h.fleet.dir, name);
      writeFileSync(path, 'x');
      await expectRefused({ path }, 'UNSUPPORTED_FILE_TYPE', [/\.pkg, \.mpkg, \.dmg and \.zip/]);
    }
  });

  it('names with "/" or ".." are refused', async () => {
    const f = await makeFile(h.fleet.dir, 'Plain.pkg', 1 * KiB);
    for (const fileName of [
      '../Escape.pkg',
      'sub/dir.pkg',
      '..',
      'back\\slash.pkg',
      'a/../b.pkg',
    ]) {
      await expectRefused({ path: f.path, fileName }, 'UNSAFE_FILE_NAME', [
        /path separator|"\.\."/,
        /use a plain file name/,
      ]);
    }
  });

  it('one bad file in a batch: nothing of the batch is enqueued', async () => {
    const good = await makeFile(h.fleet.dir, 'Batch Good.pkg', 1 * KiB);
    const before = await jobCount();
    await expect(
      h.producer.uploadMany([
        { path: good.path },
        { path: join(h.fleet.dir, 'Batch Missing.pkg') },
      ]),
    ).rejects.toMatchObject({ code: 'FILE_NOT_FOUND' });
    expect(await jobCount()).toBe(before);
  });

  it('an unreadable file (checked without root’s permission override)', async () => {
    const dir = join(h.fleet.dir, 'locked');
    mkdirSync(dir, { recursive: true });
    const path = join(dir, 'Locked.pkg');
    writeFileSync(path, 'secret bytes');
    chmodSync(path, 0o000);
    const script = `
      const { Producer } = await import(${JSON.stringify(join(ROOT, 'producer/producer.ts'))});
      const p = await Producer.connect({ redisUrl: ${JSON.stringify(h.fleet.redis.url)} });
      try { await p.upload({ path: ${JSON.stringify(path)} }); console.log(JSON.stringify({ ok: true })); }
      catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message })); }
      finally { await p.close(); }`;
    const node = [process.execPath, '--input-type=module', '-e', script];
    let cmd = node;
    if (process.getuid?.() === 0) {
      const has = spawnSync('setpriv', ['--version']);
      expect(
        has.status,
        'running as root: this test needs setpriv (apt-get install -y util-linux) to drop CAP_DAC_OVERRIDE',
      ).toBe(0);
      cmd = [
        'setpriv',
        '--inh-caps=-dac_override,-dac_read_search',
        '--bounding-set=-dac_override,-dac_read_search',
        ...node,
      ];
    }
    const before = await jobCount();
    const out = await new Promise<string>((resolve, reject) => {
      const child = spawn(cmd[0]!, cmd.slice(1), { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
      let text = '';
      let errText = '';
      child.stdout.on('data', (b: Buffer) => (text += b.toString()));
      child.stderr.on('data', (b: Buffer) => (errText += b.toString()));
      child.on('error', reject);
      child.on('exit', code =>
        code === 0 ? resolve(text) : reject(new Error(`exit ${code}: ${errText}`)),
      );
    });
    chmodSync(path, 0o600);
    const result = JSON.parse(out.trim().split('\n').pop()!) as { code?: string; message?: string };
    expect(result.code, out).toBe('FILE_UNREADABLE');
    expect(result.message).toContain(path);
    expect(result.message).toMatch(/permission denied.*fix its permissions/);
    expect(await jobCount()).toBe(before);
  });
});

describe('names that need encoding upload and download byte-exact', () => {
  const names = [
    'Firefox 128 + ESR.pkg',
    '100% Pure #1?.dmg',
    'Café Ünïcode – ✓ 日本.zip',
    'Big & Odd #2 + 50% ?.pkg', // multipart
  ];

  it('uploads each, and the stored bytes come back the same (presigned URL and download job)', async () => {
    const files = await Promise.all(
      names.map((n, i) => makeFile(h.fleet.dir, n, i === 3 ? 12 * MiB + 3 : 64 * KiB + i)),
    );
    const enq = await h.producer.uploadMany(files.map(f => ({ path: f.path })));
    expect(enq.map(e => e.fileName)).toEqual(names);
    const destDir = join(h.fleet.dir, 'downloads');
    mkdirSync(destDir, { recursive: true });
    for (const [i, e] of enq.entries()) {
      const job = await waitForJobSettled(h.fleet.queue('upload'), e.jobId, 60_000);
      expect((job.data as UploadJobData).fileName).toBe(names[i]);
      await expectPublished(h, job, files[i]!, i === 3 ? 12 * MiB + 3 : 64 * KiB + i);

      // Through the presigned URL Jamf hands out.
      const url = await h.jamf.getJcdsDownloadUrl(names[i]!);
      const res = await fetch(url);
      expect(res.status).toBe(200);
      const bytes = Buffer.from(await res.arrayBuffer());
      expect(createHash('md5').update(bytes).digest('hex')).toBe(files[i]!.md5);

      // Through the fleet's own download job.
      const downloadId = await h.producer.download({ fileName: names[i]!, dest: destDir });
      const dl = await waitForJobSettled(h.fleet.queue('download'), downloadId, 60_000);
      expect(dl.failedReason, dl.failedReason).toBeUndefined();
      const result = dl.returnvalue as DownloadResult;
      expect(result.path).toBe(join(destDir, names[i]!));
      expect(result.verified).toBe(true);
      const local = readFileSync(result.path);
      expect(createHash('md5').update(local).digest('hex')).toBe(files[i]!.md5);
    }
    await expectNothingHalfDone(h);
  });
});

/** Runs `node worker/main.ts` with `env` until it exits (or 12 s); its exit code and output. */
async function runWorker(
  env: Record<string, string | undefined>,
): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const clean: Record<string, string> = {};
    for (const [k, v] of Object.entries({ ...process.env, ...env }))
      if (v !== undefined) clean[k] = v;
    const child = spawn(process.execPath, [join(ROOT, 'worker/main.ts')], {
      cwd: ROOT,
      env: clean,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => (out += b.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 12_000);
    child.on('error', reject);
    child.on('exit', code => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

describe('a worker with a bad environment says which variable and what to set', () => {
  it('invalid URLs and numbers: every problem listed, exit code 3, before touching anything', async () => {
    const { code, out } = await runWorker({
      ...h.fleet.env,
      JAMF_URL: 'jamf.example.com',
      REDIS_URL: 'http://127.0.0.1:6379',
      JCDS_PART_SIZE: '1MiB',
      JCDS_LOCK_DURATION: 'soon',
      JCDS_PART_ATTEMPTS: '-2',
      AWS_ENDPOINT_URL_S3: 'ftp://s3.example.com',
    });
    expect(code, out).toBe(3);
    expect(out).toMatch(
      /JAMF_URL is "jamf\.example\.com" \(not an http\(s\) URL\): set it to the Jamf Pro base URL/,
    );
    expect(out).toMatch(
      /REDIS_URL is "http:\/\/127\.0\.0\.1:6379" \(not a redis:\/\/ or unix:\/\/ URL\)/,
    );
    expect(out).toMatch(/JCDS_PART_SIZE is "1MiB" \(below the minimum of 5242880 bytes\)/);
    expect(out).toMatch(/JCDS_LOCK_DURATION is "soon" \(not a whole number/);
    expect(out).toMatch(/JCDS_PART_ATTEMPTS is "-2"/);
    expect(out).toMatch(/AWS_ENDPOINT_URL_S3 is "ftp:\/\/s3\.example\.com"/);
    expect(out).not.toContain(h.fleet.env['JAMF_CLIENT_SECRET']!);
  });

  it('missing Jamf credentials: exit code 3 naming the variables', async () => {
    const { code, out } = await runWorker({
      ...h.fleet.env,
      JAMF_CLIENT_ID: undefined,
      JAMF_CLIENT_SECRET: undefined,
    });
    expect(code, out).toBe(3);
    expect(out).toMatch(/JAMF_CLIENT_ID and JAMF_CLIENT_SECRET/);
  });

  it('no JCDS_FLEET_SECRET on a worker that uses the s3 transport: exit code 3 naming it', async () => {
    const { code, out } = await runWorker({
      ...h.fleet.env,
      JCDS_TRANSPORT: 's3',
      JCDS_FLEET_SECRET: undefined,
    });
    expect(code, out).toBe(3);
    expect(out).toMatch(/JCDS_FLEET_SECRET is not set \(needed with JCDS_TRANSPORT=s3\)/);
    expect(out).toMatch(/16 characters|16\+ characters/);
    // At start, before it could take an upload and fail it with VAULT_SECRET_MISSING.
    expect(out).not.toContain('worker ready');
  });

  it('JCDS_FLEET_SECRET_PREVIOUS equal to JCDS_FLEET_SECRET, or without it: exit code 3 naming them, never the value', async () => {
    const same = await runWorker({
      ...h.fleet.env,
      JCDS_FLEET_SECRET_PREVIOUS: h.fleet.env['JCDS_FLEET_SECRET'],
    });
    expect(same.code, same.out).toBe(3);
    expect(same.out).toMatch(/JCDS_FLEET_SECRET_PREVIOUS is the same as JCDS_FLEET_SECRET/);
    expect(same.out).not.toContain(h.fleet.env['JCDS_FLEET_SECRET']!);
    const alone = await runWorker({
      ...h.fleet.env,
      JCDS_TRANSPORT: 'package-upload',
      JCDS_FLEET_SECRET: undefined,
      JCDS_FLEET_SECRET_PREVIOUS: 'an-old-fleet-secret-0123',
    });
    expect(alone.code, alone.out).toBe(3);
    expect(alone.out).toMatch(/JCDS_FLEET_SECRET_PREVIOUS is set without JCDS_FLEET_SECRET/);
    expect(alone.out).not.toContain('an-old-fleet-secret-0123');
  });

  it('a short JCDS_FLEET_SECRET: exit code 3', async () => {
    const { code, out } = await runWorker({ ...h.fleet.env, JCDS_FLEET_SECRET: 'short' });
    expect(code, out).toBe(3);
    expect(out).toMatch(/JCDS_FLEET_SECRET is too short \(5 characters\)/);
    expect(out).not.toContain('"short"');
  });
});

describe('a Jamf URL that is not Jamf Pro', () => {
  let server: Server;
  let url: string;

  beforeAll(async () => {
    server = createServer((req, res) => {
      req.resume();
      res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
      res.end(
        '<!DOCTYPE html><html><head><title>Corporate Login</title></head><body><form>Sign in</form></body></html>',
      );
    });
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', () => resolve()));
    const addr = server.address();
    url = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
  });
  afterAll(async () => {
    await new Promise<void>(resolve => server.close(() => resolve()));
  });

  it('an HTML page instead of the API: the worker exits 3 at start naming the URL and the fix, and takes no job', async () => {
    const { fleet } = h;
    const f = await makeFile(fleet.dir, 'Wrong Server.pkg', 1 * KiB);
    // Only the bad worker: the shared one would take the job with the right JAMF_URL.
    for (const w of fleet.workers) await w.kill('SIGKILL');
    fleet.workers.length = 0;
    const { jobId } = await h.producer.upload({ path: f.path });
    const started = Date.now();
    const { code, out } = await runWorker({ ...fleet.env, JAMF_URL: url });
    const elapsed = Date.now() - started;
    const line = out.split('\n').find(l => l.startsWith('jcds worker:'));
    console.log(`HTML Jamf: worker exited ${code} after ${elapsed} ms: ${line}`);
    expect(code, out).toBe(3);
    expect(line).toMatch(/\[(JAMF_BAD_RESPONSE|JAMF_UNREACHABLE)\] The worker did not start/);
    expect(line).toContain(url.replace('http://', ''));
    expect(line).toMatch(/HTML|not (a |the )?Jamf Pro/i);
    expect(line).toMatch(/JAMF_URL/);
    expect(out).not.toContain('worker ready');
    expect(out).not.toContain(fleet.env['JAMF_CLIENT_SECRET']!);
    const job = await fleet.queue('upload').getJob(jobId);
    expect(await job!.getState()).toBe('waiting');
    expect(job!.attemptsStarted).toBe(0);
    // The right URL: the job is published.
    await fleet.startWorker();
    const done = await waitForJobSettled(fleet.queue('upload'), jobId, 60_000);
    await expectPublished(h, done, f, 1 * KiB);
  });
});
