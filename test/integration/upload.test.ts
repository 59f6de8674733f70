/**
 * The upload fleet end to end: a spawned redis-server, the simulator process and worker
 * processes, over real HTTP with real files.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Job } from 'bullmq';
import { JamfClient } from '../../shared/jamf/client.ts';
import { MiB } from '../../shared/units.ts';
import { Producer } from '../../producer/producer.ts';
import type { UploadResult } from '../../shared/queues/jobs.ts';
import { makeFile, startFleet, waitForJob, type Fleet } from '../helpers/fleet.ts';

let fleet: Fleet;
let producer: Producer;
let jamf: JamfClient;

beforeAll(async () => {
  fleet = await startFleet({
    env: { JCDS_PART_SIZE: '8MiB', JCDS_SPLIT_THRESHOLD: '16MiB', JCDS_TRANSPORT: 's3' },
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

/**
 * The stored object's ETag, from a HEAD of its download URL (JCDS serves the object behind a
 * CloudFront signed URL whose HEAD gives its length and ETag; jamf-wire-2026.md 4). A HEAD
 * with fresh credentials cannot find it: each set has a tmp/<uuid>/ prefix of its own.
 */
async function headEtag(fileName: string): Promise<string | undefined> {
  const res = await fetch(await jamf.getJcdsDownloadUrl(fileName), { method: 'HEAD' });
  return res.headers.get('etag') ?? undefined;
}

async function publish(
  path: string,
  extra: Partial<Parameters<Producer['upload']>[0]> = {},
): Promise<{ job: Job; result: UploadResult }> {
  const { jobId } = await producer.upload({ path, ...extra });
  const job = await waitForJob(fleet.queue('upload'), jobId);
  return { job, result: job.returnvalue as UploadResult };
}

describe('upload fleet (s3 transport)', () => {
  it('publishes a small file in one job; Jamf md5 equals the local one', async () => {
    const f = await makeFile(fleet.dir, 'Small App.pkg', 1 * MiB + 7);
    const { job, result } = await publish(f.path);
    expect(job.failedReason).toBeUndefined();
    expect(result.outcome).toBe('created');
    expect(result.transport).toBe('s3');
    expect(result.md5).toBe(f.md5);
    const pkg = await jamf.getPackage(result.packageId);
    expect(pkg.fileName).toBe('Small App.pkg');
    expect(pkg.md5).toBe(f.md5);
    expect(pkg.hashType).toBe('SHA3_512');
    expect(pkg.hashValue).toBe(f.sha3_512);
    // No part children for a small file.
    expect(await fleet.queue('upload-part').getJob(`${job.id}-p1`)).toBeUndefined();
  });

  it('splits 200 MiB into 25 part children plus a hash job; ETag md5-25; verified SHA3-512', async () => {
    await fleet.sim.control.resetCounters();
    const f = await makeFile(fleet.dir, 'Big Suite.pkg', 200 * MiB);
    const { job, result } = await publish(f.path);
    expect(job.failedReason).toBeUndefined();
    const children = await job.getChildrenValues();
    const values = Object.values(children) as Array<{ partNumber?: number; kind?: string }>;
    expect(values.filter(v => v.partNumber !== undefined)).toHaveLength(25);
    // The hash job runs beside the parts, not as a child: the object is completed without it.
    expect(values.filter(v => v.kind === 'hash')).toHaveLength(0);
    const hashJob = await fleet.queue('upload-part').getJob(`${job.id}-hash`);
    expect(hashJob?.returnvalue).toMatchObject({ sha3_512: f.sha3_512, md5: f.md5 });
    const counters = await fleet.sim.control.counters();
    expect(counters.calls['UploadPart']).toBe(25);
    const files = await jamf.listJcdsFiles();
    const stored = files.find(x => x.fileName === 'Big Suite.pkg');
    expect(stored?.md5).toBe(f.md5);
    expect(stored?.length).toBe(200 * MiB);
    expect(await headEtag('Big Suite.pkg')).toMatch(/^"[0-9a-f]{32}-25"$/);
    const pkg = await jamf.getPackage(result.packageId);
    expect(pkg.hashType).toBe('SHA3_512');
    expect(pkg.hashValue).toBe(f.sha3_512);
    expect(result.sha3_512).toBe(f.sha3_512);
    expect(await fleet.sim.control.listMultipartUploads()).toEqual([]);
  });

  it('ifExists skip sends no bytes when the hash is the same, and fails when it differs', async () => {
    const f = await makeFile(fleet.dir, 'Skip Me.dmg', 2 * MiB);
    const first = await publish(f.path);
    await fleet.sim.control.resetCounters();
    const again = await publish(f.path, { ifExists: 'skip' });
    expect(again.result.outcome).toBe('unchanged');
    expect(again.result.bytesSent).toBe(0);
    expect(again.result.packageId).toBe(first.result.packageId);
    const c = await fleet.sim.control.counters();
    expect(c.calls['PutObject'] ?? 0).toBe(0);
    expect(c.calls['UploadPart'] ?? 0).toBe(0);

    await makeFile(fleet.dir, 'Skip Me.dmg', 2 * MiB); // new contents, same name
    const changed = await publish(f.path, { ifExists: 'skip' });
    expect(changed.job.failedReason).toMatch(/PACKAGE_EXISTS.*--if-exists replace/);
  });

  it('ifExists replace sends new bytes under the same package id; fail refuses', async () => {
    const f = await makeFile(fleet.dir, 'Replace Me.zip', 3 * MiB);
    const first = await publish(f.path);
    const g = await makeFile(fleet.dir, 'Replace Me.zip', 3 * MiB + 11);
    const replaced = await publish(g.path, { ifExists: 'replace' });
    expect(replaced.result.outcome).toBe('replaced');
    expect(replaced.result.packageId).toBe(first.result.packageId);
    const pkg = await jamf.getPackage(first.result.packageId);
    expect(pkg.hashValue).toBe(g.sha3_512);
    expect(pkg.md5).toBe(g.md5);

    const failed = await publish(g.path, { ifExists: 'fail' });
    expect(failed.job.failedReason).toMatch(/PACKAGE_EXISTS/);
    expect(await failed.job.getState()).toBe('failed');
  });

  it('enqueuing the same fileName while in flight returns the existing job', async () => {
    const f = await makeFile(fleet.dir, 'Twice.pkg', 40 * MiB);
    const [a, b] = await Promise.all([
      producer.upload({ path: f.path }),
      producer.upload({ path: f.path }),
    ]);
    expect(a!.jobId).toBe(b!.jobId);
    expect([a!.created, b!.created].filter(Boolean)).toHaveLength(1);
    const job = await waitForJob(fleet.queue('upload'), a!.jobId);
    expect((job.returnvalue as UploadResult).outcome).toBe('created');
  });

  it('two workers, 20 files: each published exactly once, no duplicate package', async () => {
    await fleet.startWorker();
    const files = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        makeFile(fleet.dir, `Batch ${i}.pkg`, (i % 4 === 0 ? 20 : 1) * MiB + i),
      ),
    );
    const enq = await producer.uploadMany(files.map(f => ({ path: f.path })));
    const jobs = await Promise.all(enq.map(e => waitForJob(fleet.queue('upload'), e.jobId)));
    for (const [i, job] of jobs.entries()) {
      expect(job.failedReason, job.failedReason).toBeUndefined();
      expect((job.returnvalue as UploadResult).md5).toBe(files[i]!.md5);
    }
    const pkgs = await jamf.listPackages();
    for (let i = 0; i < 20; i++) {
      expect(pkgs.filter(p => p.fileName === `Batch ${i}.pkg`)).toHaveLength(1);
    }
    // Both workers took part.
    const busy = fleet.workers.filter(w =>
      /single upload done|multipart upload created/.test(w.logs()),
    );
    expect(busy).toHaveLength(2);
  });
});
