/**
 * `jcds retry` end to end: a spawned `node bin/jcds.js` against a spawned redis-server, the
 * simulator and a worker process. A multipart upload whose part 3 fails for good (the
 * simulator's `failPartNumbers` fault) fails and keeps its multipart upload; retried while
 * the fault is still there it fails again, not stuck; retried once the fault is cleared,
 * it resumes: only the parts that were not done are sent (the simulator counts UploadPart
 * by part number), and the package is published and verified. Jobs that are not failed or
 * do not exist are refused with their own codes.
 */
import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Job } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JamfClient } from '../../shared/jamf/client.ts';
import type { PartResult, UploadResult } from '../../shared/queues/jobs.ts';
import { MiB } from '../../shared/units.ts';
import { Producer } from '../../producer/producer.ts';
import { ROOT, makeFile, startFleet, waitForJob, type Fleet } from '../helpers/fleet.ts';

interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
  json: Array<Record<string, unknown>>;
}

let fleet: Fleet;
let producer: Producer;
let jamf: JamfClient;

function jcds(args: string[], timeoutMs = 90_000): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(ROOT, 'bin/jcds.js'), ...args], {
      cwd: fleet.dir,
      env: {
        PATH: process.env['PATH'] ?? '',
        HOME: process.env['HOME'] ?? '/tmp',
        REDIS_URL: fleet.redis.url,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`jcds ${args.join(' ')} did not end within ${timeoutMs} ms:\n${stderr}`));
    }, timeoutMs);
    child.once('exit', code => {
      clearTimeout(timer);
      const lines = stdout.split('\n').filter(l => l.trim() !== '');
      resolve({
        code,
        stdout,
        stderr,
        json: lines.map(l => JSON.parse(l) as Record<string, unknown>),
      });
    });
  });
}

const byEvent = (run: CliRun, event: string): Array<Record<string, unknown>> =>
  run.json.filter(o => o['event'] === event);

/** The part numbers whose ETags the upload holds (its processed children). */
async function partsDone(job: Job): Promise<number[]> {
  const values = Object.values(await job.getChildrenValues<PartResult>());
  return values.map(v => v.partNumber).sort((a, b) => a - b);
}

beforeAll(async () => {
  fleet = await startFleet({
    env: {
      JCDS_PART_SIZE: '8MiB',
      JCDS_SPLIT_THRESHOLD: '16MiB',
      JCDS_TRANSPORT: 's3',
      JCDS_PART_ATTEMPTS: '2',
      JCDS_RETRY_DELAY: '100',
    },
  });
  await fleet.startWorker();
  producer = await Producer.connect({ redisUrl: fleet.redis.url });
  jamf = new JamfClient({
    baseUrl: fleet.sim.info.jamfUrl,
    auth: { kind: 'oauth', id: fleet.sim.info.clientId, secret: fleet.sim.info.clientSecret },
  });
});

afterAll(async () => {
  await producer?.close();
  await jamf?.close();
  await fleet?.close();
});

describe('jcds retry', () => {
  it('resumes a failed multipart upload: only the parts not done are sent again', async () => {
    const sim = fleet.sim.control;
    await sim.setFaults({ failPartNumbers: [3] });
    const file = await makeFile(fleet.dir, 'Retry Suite.pkg', 40 * MiB); // 5 parts
    const { jobId } = await producer.upload({ path: file.path });
    const uploads = fleet.queue('upload');

    let job = await waitForJob(uploads, jobId, 60_000);
    expect(await job.getState()).toBe('failed');
    expect(job.failedReason).toMatch(/UploadPart 3 of Retry Suite\.pkg/);
    expect(job.name).toBe('upload Retry Suite.pkg');
    // The multipart upload and the parts S3 holds are kept for the retry.
    expect(await sim.listMultipartUploads()).toHaveLength(1);
    expect(await partsDone(job)).not.toContain(3);

    // Retried while the fault is still there: it fails again with the part's reason, not
    // at once with the old one (part 3 is tried again), and not stuck.
    await sim.resetCounters();
    const again = await jcds(['retry', jobId, '--wait', '--json']);
    expect(again.code, again.stderr).toBe(1);
    expect(byEvent(again, 'retried')[0]).toMatchObject({ queue: 'upload', jobId });
    expect(byEvent(again, 'failed')[0]?.['reason']).toMatch(/UploadPart 3 of Retry Suite\.pkg/);
    expect((await sim.counters()).uploadPartByNumber['3']).toBeGreaterThanOrEqual(2);

    // The fault clears; the retry resumes.
    await sim.clearFaults();
    await sim.resetCounters();
    // Parts in flight when it failed finish meanwhile: read the parts done once idle.
    await expect
      .poll(
        async () =>
          Object.values(
            await fleet.queue('upload-part').getJobCounts('active', 'waiting', 'delayed'),
          ).reduce((x, y) => x + y, 0),
        { timeout: 30_000 },
      )
      .toBe(0);
    job = (await uploads.getJob(jobId))!;
    const doneBefore = new Set(await partsDone(job));
    const missing = [1, 2, 3, 4, 5].filter(n => !doneBefore.has(n));
    expect(missing).toContain(3);
    const run = await jcds(['retry', jobId, '--wait', '--json']);
    expect(run.code, run.stderr).toBe(0);
    expect(byEvent(run, 'retried')[0]).toMatchObject({
      queue: 'upload',
      jobId,
      fileName: 'Retry Suite.pkg',
      name: 'upload Retry Suite.pkg',
    });
    expect(byEvent(run, 'retried')[0]?.['previousReason']).toMatch(/UploadPart 3/);
    expect(byEvent(run, 'completed')).toHaveLength(1);
    const c = await sim.counters();
    expect(
      Object.keys(c.uploadPartByNumber)
        .map(Number)
        .sort((a, b) => a - b),
    ).toEqual(missing);
    for (const n of missing) expect(c.uploadPartByNumber[String(n)], `part ${n}`).toBe(1);
    expect(c.calls['CreateMultipartUpload'] ?? 0).toBe(0);

    job = await waitForJob(uploads, jobId, 10_000);
    const result = job.returnvalue as UploadResult;
    const pkg = await jamf.getPackage(result.packageId);
    expect(pkg.hashValue).toBe(file.sha3_512);
    expect(await sim.listMultipartUploads()).toEqual([]);
    const part3 = await fleet.queue('upload-part').getJob(`${jobId}-p3`);
    expect(part3?.name).toBe('part 3/5 of Retry Suite.pkg');
    expect(await part3?.getState()).toBe('completed');
  });

  it('refuses a job that is not failed (JOB_NOT_FAILED) or not found (JOB_NOT_FOUND): exit 2', async () => {
    const file = await makeFile(fleet.dir, 'Fine.pkg', 1 * MiB);
    const { jobId } = await producer.upload({ path: file.path });
    expect((await waitForJob(fleet.queue('upload'), jobId, 60_000)).failedReason).toBeUndefined();

    const done = await jcds(['retry', jobId, '--json']);
    expect(done.code).toBe(2);
    expect(byEvent(done, 'error')[0]).toMatchObject({ code: 'JOB_NOT_FAILED' });
    const human = await jcds(['retry', `upload:${jobId}`]);
    expect(human.code).toBe(2);
    expect(human.stderr).toContain(`upload:${jobId} (Fine.pkg) is completed, not failed`);

    const missing = await jcds(['retry', 'no-such-job', '--json']);
    expect(missing.code).toBe(2);
    expect(byEvent(missing, 'error')[0]).toMatchObject({ code: 'JOB_NOT_FOUND' });
    const part = await jcds(['retry', '4-p3']);
    expect(part.code).toBe(2);
    expect(part.stderr).toContain('jcds retry upload:4');
  });

  it('retries a failed download too', async () => {
    const dest = join(fleet.dir, 'downloads');
    mkdirSync(dest, { recursive: true });
    const jobId = await producer.download({ fileName: 'Not In JCDS.pkg', dest });
    const first = await waitForJob(fleet.queue('download'), jobId, 60_000);
    expect(await first.getState()).toBe('failed');
    const run = await jcds(['retry', `download:${jobId}`, '--wait', '--json']);
    expect(byEvent(run, 'retried')[0]).toMatchObject({ queue: 'download', jobId });
    // The file is still not in JCDS: it fails again, for the same reason.
    expect(run.code).not.toBe(0);
    const code = (reason: unknown): string | undefined =>
      /^\[([A-Z_]+)\]/.exec(String(reason))?.[1];
    expect(code(first.failedReason)).toBeDefined();
    expect(code(byEvent(run, 'failed')[0]?.['reason'])).toBe(code(first.failedReason));
  });
});
