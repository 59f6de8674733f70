/**
 * The `jcds` command end to end: spawned `node bin/jcds.js` processes against a spawned
 * redis-server, the simulator and a worker process. Producer commands get only REDIS_URL
 * (and PATH/HOME), as an operator's shell would; `ls` gets the Jamf variables.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MiB } from '../../shared/units.ts';
import { freePort } from '../helpers/redis.ts';
import { ROOT, makeFile, startFleet, type Fleet } from '../helpers/fleet.ts';

interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
  /** stdout parsed as NDJSON (with --json every line must be JSON; empty without). */
  json: Array<Record<string, unknown>>;
}

let fleet: Fleet;
/** The producer's environment: nothing but where Redis is. */
let producerEnv: Record<string, string>;

function baseEnv(): Record<string, string> {
  return { PATH: process.env['PATH'] ?? '', HOME: process.env['HOME'] ?? '/tmp' };
}

function jcds(
  args: string[],
  env: Record<string, string> = producerEnv,
  timeoutMs = 90_000,
  onStdout?: (text: string) => void,
): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(ROOT, 'bin/jcds.js'), ...args], {
      cwd: fleet?.dir ?? ROOT,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => {
      stdout += b.toString();
      onStdout?.(stdout);
    });
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`jcds ${args.join(' ')} did not end within ${timeoutMs} ms:\n${stderr}`));
    }, timeoutMs);
    child.once('exit', code => {
      clearTimeout(timer);
      const lines = stdout.split('\n').filter(l => l.trim() !== '');
      let json: Array<Record<string, unknown>> = [];
      try {
        // With --json stdout must be NDJSON; without, it holds tables (status, ls).
        if (args.includes('--json'))
          json = lines.map(l => JSON.parse(l) as Record<string, unknown>);
      } catch (err) {
        reject(
          new Error(`stdout of jcds ${args.join(' ')} is not NDJSON:\n${stdout}`, { cause: err }),
        );
        return;
      }
      resolve({ code, stdout, stderr, json });
    });
  });
}

const byEvent = (run: CliRun, event: string): Array<Record<string, unknown>> =>
  run.json.filter(o => o['event'] === event);

beforeAll(async () => {
  fleet = await startFleet({
    env: { JCDS_PART_SIZE: '8MiB', JCDS_SPLIT_THRESHOLD: '16MiB', JCDS_TRANSPORT: 's3' },
  });
  await fleet.startWorker();
  producerEnv = { ...baseEnv(), REDIS_URL: fleet.redis.url };
});

afterAll(async () => {
  await fleet?.close();
});

let multipartJobId = '';

describe('jcds upload', () => {
  it('--wait --json publishes a batch (one multipart) and prints NDJSON events and a summary; exit 0', async () => {
    const small = await makeFile(fleet.dir, 'Cli Small.pkg', 1 * MiB + 3);
    const big = await makeFile(fleet.dir, 'Cli Big.pkg', 20 * MiB);
    const run = await jcds(['upload', small.path, big.path, '--wait', '--json']);
    expect(run.code, run.stderr).toBe(0);

    const enqueued = byEvent(run, 'enqueued');
    expect(enqueued.map(e => e['fileName']).sort()).toEqual(['Cli Big.pkg', 'Cli Small.pkg']);
    for (const e of enqueued) {
      expect(e).toMatchObject({ queue: 'upload', created: true });
      expect(typeof e['jobId']).toBe('string');
      expect(typeof e['size']).toBe('number');
    }
    const completed = byEvent(run, 'completed');
    expect(completed).toHaveLength(2);
    const bigDone = completed.find(e => e['fileName'] === 'Cli Big.pkg')!;
    const result = bigDone['result'] as Record<string, unknown>;
    expect(result).toMatchObject({ outcome: 'created', transport: 's3', size: 20 * MiB });
    // Verified on the sha256 Jamf computed: the result shows the local SHA-256.
    expect(result['sha256']).toBe(big.sha256);
    expect(typeof result['packageId']).toBe('string');
    multipartJobId = String(bigDone['jobId']);

    const progress = byEvent(run, 'progress');
    expect(progress.length).toBeGreaterThan(0);
    for (const p of progress) expect(p).toHaveProperty('bytesDone');

    const summary = run.json.at(-1)!;
    expect(summary).toMatchObject({
      event: 'summary',
      waited: true,
      total: 2,
      completed: 2,
      failed: 0,
    });
    expect(summary['bytes']).toBe(21 * MiB + 3);
    // stdout is NDJSON only; nothing secret anywhere.
    for (const secret of [fleet.sim.info.clientSecret, 'test-fleet-secret-0123456789']) {
      expect(run.stdout + run.stderr).not.toContain(secret);
    }
  });

  it('a batch of 100 files is enqueued at once and followed to the end (jobs that wait long included)', async () => {
    const dir = join(fleet.dir, 'batch');
    mkdirSync(dir, { recursive: true });
    const paths: string[] = [];
    for (let i = 0; i < 100; i++) {
      const name = `Batch ${String(i).padStart(3, '0')}.pkg`;
      writeFileSync(join(dir, name), `package ${i} ${'x'.repeat(4096 + i)}`);
      paths.push(join(dir, name));
    }
    const run = await jcds(['upload', ...paths, '--wait', '--json'], producerEnv, 170_000);
    expect(run.code, run.stderr).toBe(0);
    expect(byEvent(run, 'enqueued')).toHaveLength(100);
    expect(byEvent(run, 'completed')).toHaveLength(100);
    expect(run.json.at(-1)).toMatchObject({
      event: 'summary',
      total: 100,
      completed: 100,
      failed: 0,
    });
  });

  it('without --json, --wait shows progress lines on stderr (not a TTY) and a summary table', async () => {
    const f = await makeFile(fleet.dir, 'Cli Plain.dmg', 512 * 1024);
    const run = await jcds(['upload', f.path, '--wait']);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toBe('');
    expect(run.stderr).toContain('Enqueued 1 upload job(s)');
    expect(run.stderr).toMatch(/✔ Cli Plain\.dmg \[upload \d+\]: package \d+ created, verified/);
    expect(run.stderr).toMatch(/1 done, 0 failed/);
  });

  it('a job that fails (--if-exists fail on an existing package) exits 1 with the reason and advice', async () => {
    const f = await makeFile(fleet.dir, 'Cli Twice.pkg', 256 * 1024);
    const first = await jcds(['upload', f.path, '--wait', '--json']);
    expect(first.code, first.stderr).toBe(0);

    const json = await jcds(['upload', f.path, '--if-exists', 'fail', '--wait', '--json']);
    expect(json.code).toBe(1);
    const failed = byEvent(json, 'failed');
    expect(failed).toHaveLength(1);
    expect(failed[0]).toMatchObject({ code: 'PACKAGE_EXISTS', fileName: 'Cli Twice.pkg' });
    expect(String(failed[0]!['reason'])).toMatch(/^\[PACKAGE_EXISTS\] .*Cli Twice\.pkg/);
    expect(json.json.at(-1)).toMatchObject({ event: 'summary', completed: 0, failed: 1 });

    const human = await jcds(['upload', f.path, '--if-exists', 'fail', '--wait']);
    expect(human.code).toBe(1);
    expect(human.stderr).toContain('[PACKAGE_EXISTS]');
    expect(human.stderr).toContain('--if-exists replace');
    expect(human.stderr).toMatch(/0 done, 1 failed/);

    // The same bytes under the default skip: done, and nothing was sent.
    const same = await jcds(['upload', f.path, '--wait']);
    expect(same.code, same.stderr).toBe(0);
    expect(same.stderr).toMatch(/unchanged \(same hash already in Jamf\), nothing sent in/);
    expect(same.stderr).not.toMatch(/unchanged.* via s3/);
    expect(same.stderr).toMatch(/1 done \(1 unchanged, nothing sent\), 0 failed, 0 B sent in/);

    // Other bytes under the same name with the default skip: the advice is not "skip".
    const otherDir = join(fleet.dir, 'other');
    mkdirSync(otherDir, { recursive: true });
    const other = await makeFile(otherDir, 'Cli Twice.pkg', 300 * 1024);
    const conflict = await jcds(['upload', other.path, '--wait']);
    expect(conflict.code).toBe(1);
    expect(conflict.stderr).toContain('[PACKAGE_EXISTS]');
    expect(conflict.stderr).toContain('rename the file');
    expect(conflict.stderr).not.toContain('--if-exists skip to keep');
    expect(conflict.stderr).toMatch(/0 done, 1 failed, 0 B sent in/);
  });

  it('bad input exits 2 before anything is enqueued, naming every bad file and the fix', async () => {
    const counts = await fleet.queue('upload').getJobCounts();
    const txt = join(fleet.dir, 'notes.txt');
    writeFileSync(txt, 'hello');
    const missing = join(fleet.dir, 'Missing.pkg');

    const one = await jcds(['upload', missing]);
    expect(one.code).toBe(2);
    expect(one.stderr).toContain('[FILE_NOT_FOUND]');
    expect(one.stderr).toContain(`${missing} does not exist: check the path`);

    const ext = await jcds(['upload', txt, '--json']);
    expect(ext.code).toBe(2);
    expect(ext.json).toEqual([
      expect.objectContaining({ event: 'error', code: 'UNSUPPORTED_FILE_TYPE', exitCode: 2 }),
    ]);
    expect(ext.stderr).toContain('Jamf Pro accepts only .pkg, .mpkg, .dmg and .zip');

    const both = await jcds(['upload', missing, txt]);
    expect(both.code).toBe(2);
    expect(both.stderr).toContain('2 of 2 files cannot be uploaded; nothing was enqueued');
    expect(both.stderr).toContain('Missing.pkg does not exist');
    expect(both.stderr).toContain('"notes.txt" has the extension .txt');

    const usage = await jcds(['upload', missing, '--if-exists', 'sometimes']);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toMatch(/Allowed choices are skip, replace, fail/);
    expect(await fleet.queue('upload').getJobCounts()).toEqual(counts);
  });
});

describe('jcds download', () => {
  it('--wait --json fetches a JCDS file into a folder, verified; a second run without --overwrite exits 2', async () => {
    const dir = join(fleet.dir, 'downloads');
    mkdirSync(dir, { recursive: true });
    const run = await jcds(['download', 'Cli Big.pkg', dir, '--wait', '--json']);
    expect(run.code, run.stderr).toBe(0);
    expect(byEvent(run, 'enqueued')[0]).toMatchObject({
      queue: 'download',
      fileName: 'Cli Big.pkg',
      dest: join(dir, 'Cli Big.pkg'),
    });
    const done = byEvent(run, 'completed')[0]!;
    expect(done['result']).toMatchObject({
      path: join(dir, 'Cli Big.pkg'),
      size: 20 * MiB,
      verified: true,
    });
    const bytes = readFileSync(join(dir, 'Cli Big.pkg'));
    expect(createHash('md5').update(bytes).digest('hex')).toBe(
      (done['result'] as { md5: string }).md5,
    );
    expect(run.json.at(-1)).toMatchObject({ event: 'summary', completed: 1, failed: 0 });

    const again = await jcds(['download', 'Cli Big.pkg', dir]);
    expect(again.code).toBe(2);
    expect(again.stderr).toContain('[DESTINATION_EXISTS]');
    expect(again.stderr).toContain('--overwrite');

    const unsafe = await jcds(['download', '../etc/passwd.pkg', dir]);
    expect(unsafe.code).toBe(2);
    expect(unsafe.stderr).toContain('[UNSAFE_FILE_NAME]');
  });
});

describe('jcds sync and schedule', () => {
  it('sync up --wait publishes a folder and reports the counts; a second run finds nothing to do', async () => {
    const dir = join(fleet.dir, 'sync-up');
    mkdirSync(dir, { recursive: true });
    await makeFile(dir, 'Sync One.pkg', 300 * 1024);
    await makeFile(dir, 'Sync Two.dmg', 200 * 1024);
    const run = await jcds(['sync', 'up', dir, '--wait', '--json']);
    expect(run.code, run.stderr).toBe(0);
    expect(byEvent(run, 'enqueued')[0]).toMatchObject({ queue: 'sync', dir });
    const result = byEvent(run, 'completed')[0]!['result'] as Record<string, unknown>;
    expect(result).toMatchObject({ direction: 'up', uploaded: 2, failed: 0 });

    const human = await jcds(['sync', 'up', dir, '--wait']);
    expect(human.code, human.stderr).toBe(0);
    expect(human.stderr).toMatch(/0 uploaded, 0 downloaded, 2 unchanged, 0 failed/);
    // The last line counts the same files as the row above it.
    expect(human.stderr).toMatch(/2 file\(s\) done \(2 unchanged\), 0 failed in/);
  });

  it('sync of a folder that does not exist exits 2', async () => {
    const run = await jcds(['sync', 'up', join(fleet.dir, 'no-such-folder')]);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('[FILE_NOT_FOUND]');
    expect(run.stderr).toContain('does not exist');
  });

  it('schedule add, ls and rm', async () => {
    const dir = join(fleet.dir, 'sync-up');
    const add = await jcds([
      'schedule',
      'add',
      'nightly-up',
      '--cron',
      '0 2 * * *',
      '--tz',
      'UTC',
      'sync',
      'up',
      dir,
      '--json',
    ]);
    expect(add.code, add.stderr).toBe(0);
    expect(add.json[0]).toMatchObject({
      event: 'schedule',
      name: 'nightly-up',
      cron: '0 2 * * *',
      tz: 'UTC',
      direction: 'up',
      dir,
    });
    expect(add.json[0]!['next']).toEqual(expect.any(Number));
    // No run has started yet: RUNS is 0 (BullMQ counts the scheduled one).
    expect(add.json[0]!['runs']).toBe(0);

    const human = await jcds([
      'schedule',
      'add',
      'nightly-up',
      '--cron',
      '0 2 * * *',
      '--tz',
      'UTC',
      'sync',
      'up',
      dir,
    ]);
    expect(human.stderr).toMatch(/next run \d{4}-\d\d-\d\d 02:00 UTC\./);

    // The list is the command's output: stdout (issue 15: it was on stderr).
    const ls = await jcds(['schedule', 'ls']);
    expect(ls.code).toBe(0);
    expect(ls.stdout).toMatch(
      /nightly-up\s+0 2 \* \* \*\s+UTC\s+up\s+\S+\s+\d{4}-\d\d-\d\d 02:00 UTC\s+0\s+-$/m,
    );

    const bad = await jcds(['schedule', 'add', 'x', '--cron', 'every night', 'sync', 'up', dir]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('0 2 * * *');

    const rm = await jcds(['schedule', 'rm', 'nightly-up']);
    expect(rm.code, rm.stderr).toBe(0);
    const lsJson = await jcds(['schedule', 'ls', '--json']);
    expect(lsJson.json).toEqual([]);
    const rmAgain = await jcds(['schedule', 'rm', 'nightly-up']);
    expect(rmAgain.code).toBe(2);
    expect(rmAgain.stderr).toContain('jcds schedule ls');
  });
});

describe('jcds status', () => {
  it('--json gives queue counts and recent jobs with state, size and speed', async () => {
    const run = await jcds(['status', '--json', '--limit', '500']);
    expect(run.code, run.stderr).toBe(0);
    expect(run.json).toHaveLength(1);
    const status = run.json[0]!;
    const queues = status['queues'] as Record<string, Record<string, number>>;
    expect(Object.keys(queues).sort()).toEqual(['download', 'sync', 'upload', 'upload-part']);
    expect(queues['upload']!['completed']).toBeGreaterThanOrEqual(4);
    expect(queues['upload']!['failed']).toBeGreaterThanOrEqual(2);
    const jobs = status['jobs'] as Array<Record<string, unknown>>;
    const big = jobs.find(j => j['label'] === 'Cli Big.pkg' && j['queue'] === 'upload');
    expect(big).toMatchObject({ queue: 'upload', state: 'completed', size: 20 * MiB, error: null });
    expect(big!['speed']).toBeGreaterThan(0);
    const failed = jobs.find(j => j['state'] === 'failed');
    expect(failed).toMatchObject({ code: 'PACKAGE_EXISTS' });
  });

  it('JOB_ID --json shows the upload with its part children; a human view too', async () => {
    expect(multipartJobId).not.toBe('');
    const run = await jcds(['status', `upload:${multipartJobId}`, '--json']);
    expect(run.code, run.stderr).toBe(0);
    const { job, parts } = run.json[0] as {
      job: Record<string, unknown>;
      parts: Array<Record<string, unknown>>;
    };
    expect(job).toMatchObject({ queue: 'upload', jobId: multipartJobId, state: 'completed' });
    const partRows = parts.filter(p => p['name'] === 'part');
    expect(partRows.map(p => p['partNumber'])).toEqual([1, 2, 3]);
    expect(partRows.every(p => p['state'] === 'completed')).toBe(true);
    expect(partRows.reduce((s, p) => s + Number(p['size']), 0)).toBe(20 * MiB);
    expect(parts.filter(p => p['name'] === 'hash')).toHaveLength(1);

    // The job's view is the command's output: stdout (issue 15: it was on stderr).
    const human = await jcds(['status', multipartJobId]);
    expect(human.code).toBe(0);
    expect(human.stdout).toContain('Parts (4/4 done)');
    expect(human.stdout).toContain(`${multipartJobId}-p3`);
    expect(human.stderr).not.toContain('Parts (');
  });

  it('tables go to stdout, so `jcds status | grep` and `jcds ls > file` work', async () => {
    const status = await jcds(['status', '--limit', '500']);
    expect(status.code, status.stderr).toBe(0);
    expect(status.stderr).toBe('');
    const rows = status.stdout
      .split('\n')
      .filter(l => l.startsWith('upload ') && l.includes('Cli Big.pkg'));
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatch(/^upload\s+\d+\s+Cli Big\.pkg\s+completed\s+20\.0 MiB\s+100%/);
    // Not a terminal: no colour codes in what a pipe gets.
    expect(status.stdout).not.toContain('\u001b[');

    const env = {
      ...producerEnv,
      JAMF_URL: fleet.sim.info.jamfUrl,
      JAMF_CLIENT_ID: fleet.sim.info.clientId,
      JAMF_CLIENT_SECRET: fleet.sim.info.clientSecret,
    };
    const ls = await jcds(['ls'], env);
    expect(ls.code, ls.stderr).toBe(0);
    expect(ls.stdout).toMatch(/^NAME\s+SIZE\s+SHA-256\s+SHA3-512\s+PACKAGE\s+PACKAGE NAME$/m);
    expect(ls.stdout).toMatch(
      /^Cli Big\.pkg\s+20\.0 MiB\s+[0-9a-f]{16}…\s+[0-9a-f]{16}…\s+\d+\s+Cli Big\.pkg$/m,
    );
    // The count is a note for people: stderr.
    expect(ls.stderr).toMatch(/name\(s\): \d+ JCDS file\(s\), \d+ package\(s\)/);
    expect(ls.stdout).not.toContain('name(s):');
  });

  it('status --follow follows an upload to its end and reports a part while it is retried', async () => {
    const f = await makeFile(fleet.dir, 'Cli Follow.pkg', 20 * MiB);
    await fleet.sim.control.setFaults({ failPartNumbers: [2] });
    try {
      const enq = await jcds(['upload', f.path, '--json']);
      expect(enq.code, enq.stderr).toBe(0);
      const jobId = String(byEvent(enq, 'enqueued')[0]!['jobId']);
      expect(byEvent(enq, 'summary')[0]).toMatchObject({ waited: false });
      expect(enq.stderr).toBe('');
      // Once the follower has reported part 2 retried, let it through.
      let cleared: Promise<unknown> | undefined;
      const run = await jcds(
        ['status', '--follow', `upload:${jobId}`, '--json'],
        producerEnv,
        90_000,
        out => {
          if (!cleared && out.includes('"event":"part-retrying"'))
            cleared = fleet.sim.control.setFaults({ failPartNumbers: null });
        },
      );
      await cleared;
      expect(run.code, run.stderr).toBe(0);
      const retry = byEvent(run, 'part-retrying')[0];
      expect(retry).toMatchObject({
        queue: 'upload',
        jobId,
        fileName: 'Cli Follow.pkg',
        part: 2,
        attempts: 6,
      });
      // The attempt under way or next: at least the second (how many failed first is timing).
      expect(retry!['attempt']).toBeGreaterThanOrEqual(2);
      expect(String(retry!['reason'])).toContain('UploadPart 2');
      expect(byEvent(run, 'completed')[0]).toMatchObject({ jobId });
      expect(run.json.at(-1)).toMatchObject({
        event: 'summary',
        total: 1,
        completed: 1,
        failed: 0,
      });
    } finally {
      await fleet.sim.control.setFaults({ failPartNumbers: null });
    }
  });

  it('status --follow with no id follows every unfinished job; with none it says so', async () => {
    const f = await makeFile(fleet.dir, 'Cli Follow All.pkg', 6 * MiB);
    // Slow enough to be still in flight when `status --follow` starts.
    await fleet.sim.control.setFaults({ s3BytesPerSecond: 2 * MiB });
    try {
      const enq = await jcds(['upload', f.path]);
      expect(enq.code, enq.stderr).toBe(0);
      expect(enq.stderr).toMatch(/follow with `jcds status --follow upload:\d+`/);
      const run = await jcds(['status', '--follow']);
      expect(run.code, run.stderr).toBe(0);
      expect(run.stdout).toBe('');
      expect(run.stderr).toMatch(/Following 1 job\(s\): upload:\d+/);
      expect(run.stderr).toMatch(
        /✔ Cli Follow All\.pkg \[upload \d+\]: package \d+ created, verified/,
      );
      expect(run.stderr).toMatch(/1 done, 0 failed, 6\.0 MiB sent in/);
    } finally {
      await fleet.sim.control.setFaults({ s3BytesPerSecond: null });
    }
    const idle = await jcds(['status', '--follow']);
    expect(idle.code).toBe(0);
    expect(idle.stderr).toContain('Nothing in flight');
  });

  it('an unknown job id exits 2 and says how to find one', async () => {
    const run = await jcds(['status', 'upload:999999']);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('[JOB_NOT_FOUND]');
    expect(run.stderr).toContain('jcds status');
  });
});

describe('jcds ls', () => {
  it('--json lists JCDS files and packages side by side (needs Jamf)', async () => {
    const env = {
      ...producerEnv,
      JAMF_URL: fleet.sim.info.jamfUrl,
      JAMF_CLIENT_ID: fleet.sim.info.clientId,
      JAMF_CLIENT_SECRET: fleet.sim.info.clientSecret,
    };
    const run = await jcds(['ls', '--json'], env);
    expect(run.code, run.stderr).toBe(0);
    const big = byEvent(run, 'file').find(f => f['fileName'] === 'Cli Big.pkg');
    expect(big).toMatchObject({ size: 20 * MiB, inJcds: true });
    expect(big!['packageId']).toEqual(expect.any(String));
    expect(big!['sha3']).toMatch(/^[0-9a-f]{128}$/);
    expect(run.json.at(-1)).toMatchObject({ event: 'summary', jcds: true });
    expect(run.stdout + run.stderr).not.toContain(fleet.sim.info.clientSecret);
  });

  it('without the Jamf variables exits 3 and lists what to set', async () => {
    const run = await jcds(['ls']);
    expect(run.code).toBe(3);
    expect(run.stderr).toContain('[CONFIG_INVALID]');
    expect(run.stderr).toContain('JAMF_URL is not set');
    expect(run.stderr).toContain('JAMF_CLIENT_ID and JAMF_CLIENT_SECRET');
  });
});

describe('configuration and connection errors exit 3', () => {
  it('names every bad variable', async () => {
    const f = await makeFile(fleet.dir, 'Cli Conf.pkg', 1024);
    const run = await jcds(['upload', f.path], {
      ...baseEnv(),
      REDIS_URL: 'http://nope',
      JCDS_PART_SIZE: '1',
    });
    expect(run.code).toBe(3);
    expect(run.stderr).toContain('[CONFIG_INVALID]');
    expect(run.stderr).toContain('REDIS_URL is "http://nope"');
    expect(run.stderr).toContain('JCDS_PART_SIZE is "1" (below the minimum');
  });

  it('Redis down: names the URL and what to check', async () => {
    const port = await freePort();
    const f = await makeFile(fleet.dir, 'Cli Down.pkg', 1024);
    const run = await jcds(['upload', f.path, '--json'], {
      ...baseEnv(),
      REDIS_URL: `redis://127.0.0.1:${port}`,
    });
    expect(run.code).toBe(3);
    expect(run.stderr).toContain('[REDIS_UNAVAILABLE]');
    expect(run.stderr).toContain(`redis://127.0.0.1:${port}`);
    expect(run.stderr).toContain('redis-server is running');
    expect(run.json[0]).toMatchObject({ event: 'error', code: 'REDIS_UNAVAILABLE', exitCode: 3 });
  });

  it('jcds monitor refuses a non-loopback host without MONITOR_USER/MONITOR_PASSWORD', async () => {
    const run = await jcds(['monitor', '--host', '0.0.0.0', '--port', '0']);
    expect(run.code).toBe(3);
    expect(run.stderr).toContain('Refusing to serve the monitor on 0.0.0.0 without authentication');
    expect(run.stderr).toContain('MONITOR_USER and MONITOR_PASSWORD');
  });

  it('jcds monitor passes --allow-writes and --read-only on, and refuses both at once', async () => {
    const run = await jcds(['monitor', '--port', '0', '--allow-writes', '--read-only']);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('--read-only and --allow-writes contradict each other');
  });
});

describe('jcds worker', () => {
  it('runs a worker process that drains and exits 0 on SIGTERM', async () => {
    const child = spawn(
      process.execPath,
      [join(ROOT, 'bin/jcds.js'), 'worker', '--concurrency', '2'],
      {
        cwd: ROOT,
        env: { ...baseEnv(), ...fleet.env },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => (out += b.toString()));
    const exited = new Promise<number | null>(resolve => child.once('exit', code => resolve(code)));
    const deadline = Date.now() + 20_000;
    while (!out.includes('worker ready')) {
      if (Date.now() > deadline || child.exitCode !== null)
        throw new Error(`worker did not start:\n${out}`);
      await new Promise(r => setTimeout(r, 100));
    }
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(out).toContain('shutting down gracefully');
  });
});
