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
import { simToken } from '../helpers/sim.ts';

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
  it('publishes a small file in one job, verified on the sha256 Jamf computed', async () => {
    const f = await makeFile(fleet.dir, 'Small App.pkg', 1 * MiB + 7);
    const { job, result } = await publish(f.path);
    expect(job.failedReason).toBeUndefined();
    expect(result.outcome).toBe('created');
    expect(result.transport).toBe('s3');
    expect(result.sha256).toBe(f.sha256);
    // SHA-256 alone was computed: no SHA3-512 or MD5 pass over the file.
    expect(result).not.toHaveProperty('sha3_512');
    expect(result).not.toHaveProperty('md5');
    const pkg = await jamf.getPackage(result.packageId);
    expect(pkg.fileName).toBe('Small App.pkg');
    expect(pkg.sha256).toBe(f.sha256);
    expect(pkg.md5).toBe(f.md5);
    expect(pkg.hashType).toBe('SHA3_512');
    expect(pkg.hashValue).toBe(f.sha3_512);
    // No part children for a small file.
    expect(await fleet.queue('upload-part').getJob(`${job.id}-p1`)).toBeUndefined();
  });

  it('splits 200 MiB into 25 part children plus a hash job; ETag md5-25; verified SHA-256', async () => {
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
    expect(hashJob?.returnvalue).toEqual({ kind: 'hash', sha256: f.sha256 });
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
    expect(pkg.sha256).toBe(f.sha256);
    expect(result.sha256).toBe(f.sha256);
    expect(result).not.toHaveProperty('sha3_512');
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
    expect(pkg.sha256).toBe(g.sha256);
    expect(replaced.result.sha256).toBe(g.sha256);

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
      expect((job.returnvalue as UploadResult).sha256).toBe(files[i]!.sha256);
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

  describe('a tenant whose package records carry no sha256 (simulator packageSha256 false)', () => {
    beforeAll(async () => {
      await fleet.sim.control.setSettings({ packageSha256: false });
    });
    afterAll(async () => {
      await fleet.sim.control.setSettings({ packageSha256: true });
    });

    /** The record as the Pro API sends it (the JSON keys, not the client's parse). */
    async function rawRecord(id: string): Promise<Record<string, unknown>> {
      const token = await simToken(fleet.sim.info);
      const res = await fetch(`${fleet.sim.info.jamfUrl}/api/v1/packages/${id}`, {
        headers: { authorization: `Bearer ${token}` },
      });
      return (await res.json()) as Record<string, unknown>;
    }

    it('falls back to SHA3-512 against hashValue, small and multipart, new and replaced', async () => {
      const small = await makeFile(fleet.dir, 'No Sha Small.pkg', 1 * MiB + 3);
      const big = await makeFile(fleet.dir, 'No Sha Big.pkg', 40 * MiB + 5);
      for (const f of [small, big]) {
        const { job, result } = await publish(f.path);
        expect(job.failedReason, job.failedReason).toBeUndefined();
        expect(result).toMatchObject({
          outcome: 'created',
          sha256: f.sha256,
          sha3_512: f.sha3_512,
        });
        const raw = await rawRecord(result.packageId);
        expect(raw).not.toHaveProperty('sha256');
        expect(raw['hashValue']).toBe(f.sha3_512);
        const logs = await fleet.queue('upload').getJobLogs(String(job.id));
        expect(logs.logs.join('\n')).toMatch(/no sha256: comparing its SHA3-512 hashValue/);
      }
      // A replace: the record's previous hashValue is not taken for the new file's.
      const g = await makeFile(fleet.dir, 'No Sha Small.pkg', 1 * MiB + 9);
      const replaced = await publish(g.path, { ifExists: 'replace' });
      expect(replaced.job.failedReason, replaced.job.failedReason).toBeUndefined();
      expect(replaced.result).toMatchObject({ outcome: 'replaced', sha3_512: g.sha3_512 });
      expect((await jamf.getPackage(replaced.result.packageId)).hashValue).toBe(g.sha3_512);
      // skip compares the SHA3-512 hashValue too.
      const again = await publish(g.path, { ifExists: 'skip' });
      expect(again.result).toMatchObject({ outcome: 'unchanged', bytesSent: 0 });
    });
  });
});
