/**
 * Folder sync end to end (redis-server, simulator and worker processes, real files):
 * sync up publishes new and changed packages only and, thanks to the hash cache, a run
 * over unchanged files reads none of them; sync down fetches what is missing and a second
 * run does nothing; two runs of one folder never overlap.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Job } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Producer } from '../../producer/producer.ts';
import { JamfClient } from '../../shared/jamf/client.ts';
import type { SyncJobData, SyncResult } from '../../shared/queues/jobs.ts';
import { KiB, MiB } from '../../shared/units.ts';
import { hashCacheKey } from '../../worker/processors/sync-hash-cache.ts';
import { makeFile, startFleet, waitForJob, type Fleet } from '../helpers/fleet.ts';

let fleet: Fleet;
let producer: Producer;
let up: string;
const files = new Map<string, { md5: string; sha3_512: string; sha256: string }>();

async function runSync(direction: 'up' | 'down', dir: string): Promise<SyncResult> {
  const jobId = await producer.sync({ direction, dir });
  const job = await waitForJob(fleet.queue('sync'), jobId, 170_000);
  expect(job.failedReason, job.failedReason).toBeUndefined();
  return job.returnvalue as SyncResult;
}

/** 64 KiB to 1 MiB, different for each index. */
const sizeOf = (i: number): number => 64 * KiB + ((i * 37_813) % (960 * KiB));

beforeAll(async () => {
  fleet = await startFleet({ env: { JCDS_TRANSPORT: 's3', JCDS_WORKER_CONCURRENCY: '8' } });
  await fleet.startWorker();
  producer = await Producer.connect({ redisUrl: fleet.redis.url });
  up = join(fleet.dir, 'up');
  mkdirSync(up);
  for (let i = 0; i < 50; i++) {
    const name = `Package ${String(i).padStart(2, '0')}.${['pkg', 'dmg', 'zip', 'mpkg'][i % 4]}`;
    files.set(name, await makeFile(up, name, sizeOf(i)));
  }
  // Not packages: ignored by sync up.
  writeFileSync(join(up, 'README.txt'), 'not a package');
  writeFileSync(join(up, '.hidden.pkg'), 'hidden');
});

afterAll(async () => {
  await producer?.close();
  await fleet?.close();
});

describe('sync up', () => {
  it('publishes 50 new packages, then exactly the 10 that changed, then reads nothing', async () => {
    const first = await runSync('up', up);
    expect(first).toMatchObject({
      direction: 'up',
      uploaded: 50,
      unchanged: 0,
      failed: 0,
      considered: 50,
      hashesComputed: 50,
      hashCacheHits: 0,
    });
    expect(first.jobs).toHaveLength(50);

    // Ten files change (new bytes, new mtime).
    const changed = [...files.keys()].filter((_, i) => i % 5 === 0);
    expect(changed).toHaveLength(10);
    for (const [k, name] of changed.entries())
      files.set(name, await makeFile(up, name, sizeOf(k + 100)));
    await fleet.sim.control.resetCounters();
    const second = await runSync('up', up);
    expect(second).toMatchObject({
      uploaded: 10,
      unchanged: 40,
      failed: 0,
      hashesComputed: 10,
      hashCacheHits: 40,
    });
    expect(second.jobs).toHaveLength(10);
    const c = await fleet.sim.control.counters();
    expect((c.calls['PutObject'] ?? 0) + (c.calls['POST /api/v1/packages/{id}/upload'] ?? 0)).toBe(
      10,
    );
    // Replaced in place: one package per file name, holding the new bytes.
    const jamf = new JamfClient({
      baseUrl: fleet.sim.info.jamfUrl,
      auth: { kind: 'oauth', id: fleet.sim.info.clientId, secret: fleet.sim.info.clientSecret },
    });
    try {
      const pkgs = await jamf.listPackages();
      expect(pkgs).toHaveLength(50);
      for (const name of changed) {
        const rows = pkgs.filter(p => p.fileName === name);
        expect(rows).toHaveLength(1);
        expect(rows[0]!.hashValue).toBe(files.get(name)!.sha3_512);
        expect(rows[0]!.sha256).toBe(files.get(name)!.sha256);
      }
    } finally {
      await jamf.close();
    }

    const third = await runSync('up', up);
    expect(third).toMatchObject({
      uploaded: 0,
      unchanged: 50,
      failed: 0,
      hashesComputed: 0,
      hashCacheHits: 50,
      bytesHashed: 0,
    });
    expect(third.jobs).toEqual([]);
    console.log(
      `sync up: run 1 uploaded ${first.uploaded} in ${first.durationMs} ms; run 2 uploaded ${second.uploaded} (hashed ${second.hashesComputed}); run 3 hashed ${third.hashesComputed}, cache hits ${third.hashCacheHits}, ${third.durationMs} ms`,
    );
  });

  it('reports files it cannot publish with the reason, and publishes the rest', async () => {
    const dir = join(fleet.dir, 'mixed');
    mkdirSync(dir);
    await makeFile(dir, 'Good One.pkg', 100 * KiB);
    writeFileSync(join(dir, 'Empty.pkg'), '');
    const r = await runSync('up', dir);
    expect(r).toMatchObject({ uploaded: 1, failed: 1 });
    expect(r.failures).toEqual([
      {
        fileName: 'Empty.pkg',
        reason: expect.stringMatching(/^\[FILE_EMPTY\] .*Empty.pkg is empty/),
      },
    ]);
  });

  it('refuses a folder that does not exist before enqueueing', async () => {
    await expect(
      producer.sync({ direction: 'up', dir: join(fleet.dir, 'nope') }),
    ).rejects.toMatchObject({ code: 'FILE_NOT_FOUND' });
    await expect(
      producer.sync({ direction: 'down', dir: join(fleet.dir, 'nope') }),
    ).rejects.toMatchObject({
      code: 'DESTINATION_INVALID',
      message: expect.stringMatching(/create it first/),
    });
  });

  it('a second run of a folder while the first is active finishes at once as skipped', async () => {
    await makeFile(up, 'Slow New.pkg', 4 * MiB);
    await fleet.sim.control.setFaults({ s3BytesPerSecond: 1 * MiB });
    try {
      const firstId = await producer.sync({ direction: 'up', dir: up });
      const queue = fleet.queue('sync');
      for (const deadline = Date.now() + 30_000; ;) {
        const j = await Job.fromId<SyncJobData>(queue, firstId);
        if (j?.data.step === 'wait') break;
        if (Date.now() > deadline) throw new Error('the first sync did not reach its wait step');
        await sleep(50);
      }
      const second = await runSync('up', up);
      expect(second.skipped).toMatch(
        new RegExp(`already running \\(job ${firstId}\\): this run did nothing`),
      );
      expect(second.jobs).toEqual([]);
      await fleet.sim.control.clearFaults();
      const first = (await waitForJob(queue, firstId, 120_000)).returnvalue as SyncResult;
      expect(first).toMatchObject({ uploaded: 1, unchanged: 50, failed: 0 });
      expect(first.skipped).toBeUndefined();
    } finally {
      await fleet.sim.control.clearFaults();
    }
  });
});

describe('sync down', () => {
  it('fetches every JCDS file into an empty folder, then a second run does nothing', async () => {
    const down = join(fleet.dir, 'down');
    mkdirSync(down);
    const first = await runSync('down', down);
    // 51 packages from the up folder plus Good One.pkg.
    expect(first).toMatchObject({
      direction: 'down',
      downloaded: 52,
      unchanged: 0,
      failed: 0,
      considered: 52,
    });
    for (const [name, f] of files) {
      expect(
        createHash('md5')
          .update(readFileSync(join(down, name)))
          .digest('hex'),
        name,
      ).toBe(f.md5);
    }
    await fleet.sim.control.resetCounters();
    const second = await runSync('down', down);
    expect(second).toMatchObject({ downloaded: 0, unchanged: 52, failed: 0, hashesComputed: 0 });
    expect(second.jobs).toEqual([]);
    expect((await fleet.sim.control.counters()).s3BytesServed).toBe(0);
  });
});

describe('sync up compares the hash an upload converges on', () => {
  async function folder(name: string, count: number): Promise<string> {
    const dir = join(fleet.dir, name);
    mkdirSync(dir);
    for (let i = 0; i < count; i++) await makeFile(dir, `${name} ${i}.pkg`, 100 * KiB + i);
    return dir;
  }

  it('cache entries of an earlier version (no SHA-256) are hashed again, not trusted', async () => {
    const dir = await folder('Old Cache', 3);
    expect(await runSync('up', dir)).toMatchObject({ uploaded: 3, hashesComputed: 3 });
    const redis = new Redis(fleet.redis.url);
    try {
      const key = hashCacheKey(dir);
      const entries = await redis.hgetall(key);
      expect(Object.keys(entries)).toHaveLength(3);
      for (const [path, raw] of Object.entries(entries)) {
        const e = JSON.parse(raw) as Record<string, unknown>;
        expect(e['sha256']).toMatch(/^[0-9a-f]{64}$/);
        // What an earlier version stored: MD5 and SHA3-512 only.
        const old = { size: e['size'], mtimeMs: e['mtimeMs'], md5: 'a'.repeat(32) };
        await redis.hset(key, path, JSON.stringify({ ...old, sha3_512: 'b'.repeat(128) }));
      }
    } finally {
      redis.disconnect();
    }
    const again = await runSync('up', dir);
    expect(again).toMatchObject({ uploaded: 0, unchanged: 3, hashesComputed: 3, failed: 0 });
  });

  it('records without sha256 (simulator packageSha256 false): compared on the SHA3-512 hashValue', async () => {
    await fleet.sim.control.setSettings({ packageSha256: false });
    try {
      const dir = await folder('No Sha Sync', 3);
      expect(await runSync('up', dir)).toMatchObject({ uploaded: 3, failed: 0 });
      // The records carry no sha256: the local SHA3-512 is computed once, then cached.
      expect(await runSync('up', dir)).toMatchObject({
        uploaded: 0,
        unchanged: 3,
        hashesComputed: 3,
      });
      expect(await runSync('up', dir)).toMatchObject({
        uploaded: 0,
        unchanged: 3,
        hashesComputed: 0,
        hashCacheHits: 3,
      });
      await makeFile(dir, 'No Sha Sync 1.pkg', 100 * KiB + 1);
      expect(await runSync('up', dir)).toMatchObject({ uploaded: 1, unchanged: 2, failed: 0 });
    } finally {
      await fleet.sim.control.setSettings({ packageSha256: true });
    }
  });
});
