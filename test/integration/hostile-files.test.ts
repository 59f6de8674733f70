/**
 * Hostile files (issue 13 section 2): only the job's own files are read or written, tried
 * as an attacker with a shell on the machine, or a dashboard user with write access,
 * would. Real processes: redis-server, the simulator, worker processes, the CLI, real
 * files and symbolic links.
 *
 * - downloads: a link planted at the old `<dest>.partial` name, a link put at the recorded
 *   partial name of a download resumed after its worker was SIGKILLed, a link at the
 *   destination itself: the victim file elsewhere is never written;
 * - a 255-byte file name downloads;
 * - `sync up` does not follow `loot.pkg -> ../private/secret` out of its folder unless
 *   --follow-symlinks;
 * - a file rewritten in place with its mtime put back (`touch -r`), before or during the
 *   upload, or replaced by a link to another file of the same size: FILE_CHANGED,
 *   nothing published;
 * - job data is input: an upload job whose path is not a package, and a download to a
 *   folder the workers may not write, are refused.
 */
import { execFileSync, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  lstatSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  rmSync,
  statSync,
  symlinkSync,
  writeSync,
  closeSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Job } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AppError } from '../../shared/errors.ts';
import { identityOf } from '../../shared/file-identity.ts';
import { bytesIn } from '../../shared/download/ranges.ts';
import type {
  DownloadJobData,
  DownloadResult,
  SyncResult,
  UploadJobData,
} from '../../shared/queues/jobs.ts';
import { downloadJobName, uploadJobName } from '../../shared/queues/names.ts';
import { MiB } from '../../shared/units.ts';
import { makeFile, ROOT, waitForJob, type WorkerProcess } from '../helpers/fleet.ts';
import {
  donePartNumbers,
  expectNothingHalfDone,
  useHarness,
  waitUntil,
} from '../helpers/faults.ts';

const h = useHarness();
let worker: WorkerProcess;
let out: string;
let small: { path: string; md5: string };
const victimDir = mkdtempSync(join(tmpdir(), 'jcds-victim-'));

const md5 = (b: Buffer): string => createHash('md5').update(b).digest('hex');

/** A file outside the fleet's folders that no job may write. */
function victim(name: string): { path: string; text: string } {
  const path = join(victimDir, name);
  const text = `the victim's own bytes (${name})`;
  writeFileSync(path, text);
  return { path, text };
}

async function uploadAndWait(path: string, fileName?: string): Promise<Job> {
  const { jobId } = await h.producer.upload({
    path,
    ifExists: 'replace',
    ...(fileName ? { fileName } : {}),
  });
  return waitForJob(h.fleet.queue('upload'), jobId, 120_000);
}

async function downloadAndWait(fileName: string, dest: string): Promise<Job> {
  const jobId = await h.producer.download({ fileName, dest });
  return waitForJob(h.fleet.queue('download'), jobId, 120_000);
}

/** Whether Jamf holds `fileName` (a package record or a JCDS file). */
async function published(fileName: string): Promise<boolean> {
  const packages = await h.jamf.listPackages();
  const files = await h.jamf.listJcdsFiles();
  return packages.some(p => p.fileName === fileName) || files.some(f => f.fileName === fileName);
}

/** Enqueues the upload while the queue is paused, runs `tamper`, then lets the workers take it. */
async function uploadTamperedBeforeTheWorker(path: string, tamper: () => void): Promise<Job> {
  const queue = h.fleet.queue('upload');
  await queue.pause();
  try {
    const { jobId } = await h.producer.upload({ path });
    tamper();
    await queue.resume();
    return await waitForJob(queue, jobId, 120_000);
  } finally {
    await queue.resume();
  }
}

/** Rewrites `path` in place with other bytes of the same size and puts its mtime back. */
function rewriteInPlaceKeepingMtime(path: string, offset = 0): void {
  const ref = `${path}.mtime-ref`;
  writeFileSync(ref, '');
  execFileSync('touch', ['-r', path, ref]);
  const fd = openSync(path, 'r+');
  writeSync(fd, randomBytes(4096), 0, 4096, offset);
  closeSync(fd);
  execFileSync('touch', ['-r', ref, path]);
  rmSync(ref);
}

beforeAll(async () => {
  worker = await h.fleet.startWorker();
  out = join(h.fleet.dir, 'out');
  mkdirSync(out);
  small = await makeFile(h.fleet.dir, 'Small.pkg', 1 * MiB);
  const job = await uploadAndWait(small.path);
  expect(job.failedReason, job.failedReason).toBeUndefined();
}, 180_000);

afterAll(() => rmSync(victimDir, { recursive: true, force: true }));

describe('downloads write only their own files', () => {
  it('H2.1 a link planted at the old <dest>.partial name is never followed', async () => {
    const v = victim('old-partial.txt');
    const dest = join(out, 'Small.pkg');
    symlinkSync(v.path, `${dest}.partial`);
    const job = await downloadAndWait('Small.pkg', out);
    expect(job.failedReason, job.failedReason).toBeUndefined();
    expect(readFileSync(v.path, 'utf8')).toBe(v.text);
    expect(lstatSync(dest).isFile()).toBe(true);
    expect(md5(readFileSync(dest))).toBe(small.md5);
    expect(readlinkSync(`${dest}.partial`)).toBe(v.path);
    // Its own partial file had a random name, recorded in the checkpoint, and is gone.
    const { partial } = job.data as DownloadJobData;
    expect(partial?.name).toMatch(/^\.jcds-[A-Za-z0-9_-]{12}\.partial$/);
    expect(readdirSync(out).filter(n => n.startsWith('.jcds-'))).toEqual([]);
  });

  it('H2.2 a resumed download does not open a link put at its recorded partial name', async () => {
    const big = await makeFile(h.fleet.dir, 'Resume Me.pkg', 64 * MiB);
    const up = await uploadAndWait(big.path);
    expect(up.failedReason, up.failedReason).toBeUndefined();
    const v = victim('resumed-partial.txt');
    // Slow ranges (2 MiB/s each): the worker checkpoints a range, then is killed mid-download.
    await h.fleet.sim.control.setFaults({ s3BytesPerSecond: 2 * MiB });
    const queue = h.fleet.queue('download');
    const jobId = await h.producer.download({ fileName: 'Resume Me.pkg', dest: out });
    const data = await waitUntil(
      async () => {
        const d = (await Job.fromId<DownloadJobData>(queue, jobId))?.data;
        return d?.partial && bytesIn(d.doneRanges ?? []) > 0 ? d : undefined;
      },
      'a checkpointed range',
      60_000,
    );
    // The one worker is killed; the next one resumes the download.
    await worker.kill('SIGKILL');
    worker = await h.fleet.startWorker();
    const partialPath = join(out, data.partial!.name);
    rmSync(partialPath);
    symlinkSync(v.path, partialPath);
    await h.fleet.sim.control.clearFaults();
    const job = await waitForJob(queue, jobId, 120_000);
    expect(job.failedReason, job.failedReason).toBeUndefined();
    const result = job.returnvalue as DownloadResult;
    expect(result.md5).toBe(big.md5);
    expect(result.resumedBytes).toBe(0);
    expect(readFileSync(v.path, 'utf8')).toBe(v.text);
    expect(lstatSync(join(out, 'Resume Me.pkg')).isFile()).toBe(true);
    expect(readlinkSync(partialPath)).toBe(v.path);
    const { logs } = await queue.getJobLogs(jobId);
    expect(logs.join('\n')).toMatch(/is a symbolic link now, not the partial file: left alone/);
    console.log(
      `H2.2: killed after ${(bytesIn(data.doneRanges ?? []) / MiB).toFixed(0)} MiB checkpointed in ${data.partial!.name}; the link put there was left alone, the download started over (resumedBytes 0) and completed verified`,
    );
  });

  it('H2.3 a symbolic link at the destination is refused, by the producer and by the worker', async () => {
    const v = victim('dest.txt');
    const link = join(out, 'Linked.pkg');
    symlinkSync(v.path, link);
    const err = await h.producer
      .download({ fileName: 'Small.pkg', dest: link, overwrite: true })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AppError);
    expect((err as AppError).code).toBe('DESTINATION_INVALID');
    // As the dashboard would add it: the worker checks again.
    const queue = h.fleet.queue('download');
    const added = await queue.add(downloadJobName('Small.pkg'), {
      fileName: 'Small.pkg',
      dest: link,
      overwrite: true,
    } satisfies DownloadJobData);
    const job = await waitForJob(queue, String(added.id), 60_000);
    expect(job.failedReason).toMatch(
      /^\[DESTINATION_INVALID\] The destination .*Linked\.pkg is a symbolic link: downloads never write through a link or replace one/,
    );
    expect(job.attemptsMade).toBe(1);
    expect(readFileSync(v.path, 'utf8')).toBe(v.text);
    expect(readlinkSync(link)).toBe(v.path);
  });

  it('H2.4 a 255-byte file name uploads and downloads', async () => {
    const name = `${'n'.repeat(251)}.pkg`;
    expect(Buffer.byteLength(name)).toBe(255);
    const f = await makeFile(h.fleet.dir, name, 2 * MiB);
    const up = await uploadAndWait(f.path);
    expect(up.failedReason, up.failedReason).toBeUndefined();
    const dl = await downloadAndWait(name, out);
    expect(dl.failedReason, dl.failedReason).toBeUndefined();
    expect(md5(readFileSync(join(out, name)))).toBe(f.md5);
  });

  it('H2.10 a download job or sync down outside JCDS_DOWNLOAD_DIRS is refused; inside it works', async () => {
    const outside = mkdtempSync(join(tmpdir(), 'jcds-outside-'));
    try {
      const queue = h.fleet.queue('download');
      const refused = await queue.add(downloadJobName('Small.pkg'), {
        fileName: 'Small.pkg',
        dest: join(outside, 'Small.pkg'),
        overwrite: false,
      } satisfies DownloadJobData);
      const job = await waitForJob(queue, String(refused.id), 60_000);
      expect(job.failedReason).toMatch(
        /^\[DESTINATION_NOT_ALLOWED\] The download destination .*jcds-outside-.*Small\.pkg is outside the folders this worker writes downloads to \(JCDS_DOWNLOAD_DIRS: .*jcds-fleet-[^)]*\): download into one of them, or add the folder to JCDS_DOWNLOAD_DIRS/,
      );
      expect(job.attemptsMade).toBe(1);
      expect(readdirSync(outside)).toEqual([]);
      const inside = await queue.add(downloadJobName('Small.pkg'), {
        fileName: 'Small.pkg',
        dest: join(out, 'Inside.pkg'),
        overwrite: false,
      } satisfies DownloadJobData);
      const ok = await waitForJob(queue, String(inside.id), 60_000);
      expect(ok.failedReason, ok.failedReason).toBeUndefined();
      expect(md5(readFileSync(join(out, 'Inside.pkg')))).toBe(small.md5);
      // A sync down into that folder is refused as a whole, before anything is planned.
      const syncId = await h.producer.sync({ direction: 'down', dir: outside });
      const sync = await waitForJob(h.fleet.queue('sync'), syncId, 60_000);
      expect(sync.failedReason).toMatch(
        /^\[DESTINATION_NOT_ALLOWED\] The sync down folder .*jcds-outside-.* is outside the folders this worker writes downloads to/,
      );
      expect(sync.attemptsMade).toBe(1);
      expect(readdirSync(outside)).toEqual([]);
    } finally {
      rmSync(outside, { recursive: true, force: true });
    }
  });
});

describe('sync up reads only its folder', () => {
  it('H2.5 loot.pkg -> ../private/secret is not published, and is with --follow-symlinks', async () => {
    const pkgs = join(h.fleet.dir, 'pkgs');
    const priv = join(h.fleet.dir, 'private');
    mkdirSync(pkgs);
    mkdirSync(priv);
    const secret = randomBytes(200_000);
    writeFileSync(join(priv, 'secret'), secret);
    await makeFile(pkgs, 'Own.pkg', 300_000);
    symlinkSync('../private/secret', join(pkgs, 'loot.pkg'));
    const syncJob = await h.producer.sync({ direction: 'up', dir: pkgs });
    const job = await waitForJob(h.fleet.queue('sync'), syncJob, 120_000);
    expect(job.failedReason, job.failedReason).toBeUndefined();
    const result = job.returnvalue as SyncResult;
    expect(result.uploaded).toBe(1);
    expect(result.failures).toEqual([
      {
        fileName: 'loot.pkg',
        reason: expect.stringMatching(
          /^\[SYMLINK_OUTSIDE\] .*loot\.pkg is a symbolic link to .*private\/secret, outside the synced folder .*: not followed, nothing read or published\. .*--follow-symlinks/,
        ) as unknown as string,
      },
    ]);
    expect(await published('Own.pkg')).toBe(true);
    expect(await published('loot.pkg')).toBe(false);

    // The operator means it: the CLI's --follow-symlinks publishes the file it points to.
    const run = await new Promise<{ code: number | null; stdout: string; stderr: string }>(
      (resolve, reject) => {
        const child = spawn(
          process.execPath,
          [join(ROOT, 'bin/jcds.js'), 'sync', 'up', pkgs, '--follow-symlinks', '--wait', '--json'],
          {
            cwd: h.fleet.dir,
            env: {
              PATH: process.env['PATH'] ?? '',
              HOME: h.fleet.dir,
              REDIS_URL: h.fleet.redis.url,
            },
            stdio: ['ignore', 'pipe', 'pipe'],
          },
        );
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
        child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
        const timer = setTimeout(() => {
          child.kill('SIGKILL');
          reject(new Error(`jcds sync up --follow-symlinks did not end:\n${stderr}`));
        }, 120_000);
        child.once('exit', code => {
          clearTimeout(timer);
          resolve({ code, stdout, stderr });
        });
      },
    );
    expect(run.code, run.stderr).toBe(0);
    const loot = (await h.jamf.listJcdsFiles()).find(f => f.fileName === 'loot.pkg');
    expect(loot?.md5).toBe(md5(secret));
    const [syncData] = (await h.fleet.queue('sync').getJobs(['completed']))
      .filter(j => j.id !== syncJob)
      .map(j => j.data as { options?: { followSymlinks?: boolean } });
    expect(syncData?.options?.followSymlinks).toBe(true);
  });
});

describe('uploads publish the file that was enqueued, or nothing', () => {
  it('H2.6 rewritten in place after enqueue, mtime put back with touch -r: FILE_CHANGED', async () => {
    const f = await makeFile(h.fleet.dir, 'Rewritten.pkg', 3 * MiB);
    const before = statSync(f.path);
    const job = await uploadTamperedBeforeTheWorker(f.path, () => {
      rewriteInPlaceKeepingMtime(f.path);
      expect(statSync(f.path).mtimeMs).toBe(before.mtimeMs);
      expect(statSync(f.path).size).toBe(before.size);
    });
    expect(job.failedReason).toMatch(
      /^\[FILE_CHANGED\] .*Rewritten\.pkg is not the file enqueued for Rewritten\.pkg: status changed .*rewritten in place with its modified time put back.*Nothing was published; enqueue it again/,
    );
    expect(job.attemptsMade).toBe(1);
    expect(await published('Rewritten.pkg')).toBe(false);
  });

  it('H2.7 rewritten in place during a multipart upload, mtime put back: FILE_CHANGED, nothing published', async () => {
    const f = await makeFile(h.fleet.dir, 'Rewritten During.pkg', 24 * MiB);
    // Slow parts: the rewrite lands after the first part is stored, before the last.
    await h.fleet.sim.control.setFaults({ s3BytesPerSecond: 2 * MiB });
    try {
      const { jobId } = await h.producer.upload({ path: f.path });
      const queue = h.fleet.queue('upload');
      await waitUntil(
        async () => ((await donePartNumbers(queue, jobId)).size >= 1 ? true : undefined),
        'a stored part',
        60_000,
      );
      const stored = (await donePartNumbers(queue, jobId)).size;
      rewriteInPlaceKeepingMtime(f.path, 20 * MiB);
      await h.fleet.sim.control.clearFaults();
      const job = await waitForJob(queue, jobId, 120_000);
      expect(job.failedReason).toMatch(/^\[FILE_CHANGED\] .*Rewritten During\.pkg/);
      expect(job.failedReason).toMatch(/status changed|another file|enqueue it again/);
      expect(await published('Rewritten During.pkg')).toBe(false);
      await expectNothingHalfDone(h);
      console.log(`H2.7: rewritten after ${stored} of 5 parts were stored: ${job.failedReason}`);
    } finally {
      await h.fleet.sim.control.clearFaults();
    }
  });

  it('H2.8 replaced by a symbolic link to another file of the same size: FILE_CHANGED', async () => {
    const f = await makeFile(h.fleet.dir, 'Swapped.pkg', 2 * MiB);
    const other = await makeFile(victimDir, 'same-size.bin', 2 * MiB);
    const job = await uploadTamperedBeforeTheWorker(f.path, () => {
      rmSync(f.path);
      symlinkSync(other.path, f.path);
    });
    expect(job.failedReason).toMatch(
      /^\[FILE_CHANGED\] .*Swapped\.pkg is not the file enqueued for Swapped\.pkg: it was replaced by a symbolic link \(not followed\)/,
    );
    expect(job.attemptsMade).toBe(1);
    expect(await published('Swapped.pkg')).toBe(false);
  });

  it('H2.9 an upload job added as the dashboard would, path .exe and fileName .pkg: refused', async () => {
    const path = join(h.fleet.dir, 'tool.exe');
    writeFileSync(path, randomBytes(10_000));
    const st = statSync(path);
    const data: UploadJobData = {
      step: 'prepare',
      path,
      fileName: 'tool.pkg',
      ...identityOf(st, statSync(path, { bigint: true })),
      ifExists: 'replace',
      package: {},
      requestId: 'from-the-dashboard',
    };
    const queue = h.fleet.queue('upload');
    const added = await queue.add(uploadJobName('tool.pkg'), data);
    const job = await waitForJob(queue, String(added.id), 60_000);
    expect(job.failedReason).toMatch(
      /^\[UNSUPPORTED_FILE_TYPE\] .*tool\.exe has the extension \.exe \(it would be published as "tool\.pkg"\): only \.pkg, \.mpkg, \.dmg and \.zip files are uploaded/,
    );
    expect(job.attemptsMade).toBe(1);
    // Without the identity recorded at enqueue, nothing is read either.
    const bare = await queue.add(uploadJobName('bare.pkg'), {
      step: 'prepare',
      path: small.path,
      fileName: 'bare.pkg',
      size: 1 * MiB,
      mtimeMs: statSync(small.path).mtimeMs,
      ifExists: 'replace',
      package: {},
      requestId: 'from-the-dashboard-2',
    });
    const bareJob = await waitForJob(queue, String(bare.id), 60_000);
    expect(bareJob.failedReason).toMatch(
      /^\[JOB_DATA_INVALID\] The job for "bare\.pkg" does not carry the file identity recorded at enqueue \(host is missing, dev is missing, ino is missing, ctimeMs is missing\)/,
    );
    expect(await published('tool.pkg')).toBe(false);
    expect(await published('bare.pkg')).toBe(false);
  });
});
