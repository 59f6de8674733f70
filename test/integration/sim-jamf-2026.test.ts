/**
 * The simulator against jamf-wire-2026.md, over real HTTP against spawned simulator
 * processes: client hash fields stored and shown as sent until Jamf's own processing
 * replaces them; processing after a package upload or a new JCDS object (and on
 * refresh-inventory); the replace, stale-size, never-landed and vanished-object cases;
 * page-size clamping; cdnType; CloudFront-style download URLs; token, credential and
 * Deprecation header defaults; and the package-write counters.
 */
import {
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { createHash, randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  simApi,
  simToken,
  spawnSimulator,
  type SimApi,
  type SpawnedSimulator,
} from '../helpers/sim.ts';

const spawned: SpawnedSimulator[] = [];

async function start(opts: Parameters<typeof spawnSimulator>[0] = {}): Promise<SpawnedSimulator> {
  const s = await spawnSimulator(opts);
  spawned.push(s);
  return s;
}

afterAll(async () => {
  await Promise.all(spawned.map(s => s.stop()));
});

const hex = (algo: string, data: Buffer) => createHash(algo).update(data).digest('hex');
const hashesOf = (data: Buffer) => ({
  md5: hex('md5', data),
  sha256: hex('sha256', data),
  hashType: 'SHA3_512',
  hashValue: hex('sha3-512', data),
  sha3512: hex('sha3-512', data),
  size: String(data.length),
});

function pkgBody(packageName: string, fileName: string, extra: Record<string, unknown> = {}) {
  return {
    packageName,
    fileName,
    categoryId: '-1',
    priority: 10,
    fillUserTemplate: false,
    rebootRequired: false,
    osInstall: false,
    suppressUpdates: false,
    suppressFromDock: false,
    suppressEula: false,
    suppressRegistration: false,
    ...extra,
  };
}

type Pkg = Record<string, unknown>;

async function createPkg(api: SimApi, fileName: string, extra: Pkg = {}): Promise<string> {
  const res = await api('/api/v1/packages', {
    method: 'POST',
    json: pkgBody(`Package ${fileName}`, fileName, extra),
  });
  expect(res.status).toBe(201);
  return ((await res.json()) as { id: string }).id;
}

async function getPkg(api: SimApi, id: string): Promise<Pkg> {
  const res = await api(`/api/v1/packages/${id}`);
  expect(res.status).toBe(200);
  return (await res.json()) as Pkg;
}

async function upload(api: SimApi, id: string, fileName: string, data: Buffer): Promise<void> {
  const form = new FormData();
  form.append('file', new Blob([data]), fileName);
  const res = await api(`/api/v1/packages/${id}/upload`, { method: 'POST', body: form });
  expect(res.status).toBe(201);
}

/** Polls `read` until `done` holds (every 50 ms, at most `timeoutMs`); returns the last value. */
async function until<T>(read: () => Promise<T>, done: (v: T) => boolean, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  let v = await read();
  while (!done(v) && Date.now() < deadline) {
    await sleep(50);
    v = await read();
  }
  return v;
}

interface JcdsCreds {
  accessKeyID: string;
  secretAccessKey: string;
  sessionToken: string;
  region: string;
  bucketName: string;
  path: string;
  uuid: string;
}

async function jcdsCreds(api: SimApi): Promise<JcdsCreds> {
  const res = await api('/api/v1/jcds/files', { method: 'POST' });
  expect(res.status).toBe(201);
  return (await res.json()) as JcdsCreds;
}

function s3For(sim: SpawnedSimulator, c: JcdsCreds): S3Client {
  return new S3Client({
    region: c.region,
    endpoint: sim.info.s3Endpoint,
    forcePathStyle: true,
    credentials: {
      accessKeyId: c.accessKeyID,
      secretAccessKey: c.secretAccessKey,
      sessionToken: c.sessionToken,
    },
  });
}

/** PUTs `data` to JCDS the v1 way: fresh credentials, key = path + fileName. */
async function putJcds(sim: SpawnedSimulator, api: SimApi, fileName: string, data: Buffer) {
  const c = await jcdsCreds(api);
  const s3 = s3For(sim, c);
  try {
    await s3.send(
      new PutObjectCommand({ Bucket: c.bucketName, Key: `${c.path}${fileName}`, Body: data }),
    );
  } finally {
    s3.destroy();
  }
  return c;
}

interface JcdsFile {
  fileName: string;
  length: number;
  md5: string | null;
  region: string;
  sha3: string | null;
}

async function listed(api: SimApi, fileName: string): Promise<JcdsFile | undefined> {
  const files = (await (await api('/api/v1/jcds/files')).json()) as JcdsFile[];
  return files.find(f => f.fileName === fileName);
}

const refresh = (api: SimApi, fileName: string) =>
  api(`/api/v1/jcds/refresh-inventory?file-name=${encodeURIComponent(fileName)}`, {
    method: 'POST',
  });

describe('wire 2026 (one simulator, --processing-ms 300)', () => {
  let sim: SpawnedSimulator;
  let api: SimApi;

  beforeAll(async () => {
    sim = await start();
    api = simApi(sim.info, await simToken(sim.info));
  });

  beforeEach(async () => {
    await sim.control.clearFaults();
    await sim.control.setSettings({
      cdnType: 'JAMF_CLOUD',
      deprecationHeader: false,
      processingMs: 300,
      downloadUrlTtlSeconds: 300,
      downloadUrlForm: 'cloudfront',
      packageSha256: true,
    });
  });

  it('answers OAuth tokens with expires_in 59 by default', async () => {
    const res = await fetch(`${sim.info.jamfUrl}/api/v1/oauth/token`, {
      method: 'POST',
      body: new URLSearchParams({
        client_id: sim.info.clientId,
        client_secret: sim.info.clientSecret,
        grant_type: 'client_credentials',
      }),
    });
    const body = (await res.json()) as { access_token: string; expires_in: number };
    expect(body.expires_in).toBe(59);
    const claims = JSON.parse(
      Buffer.from(body.access_token.split('.')[1] ?? '', 'base64url').toString(),
    ) as { exp: number };
    expect(claims.exp - Date.now()).toBeGreaterThan(58_000);
    expect(claims.exp - Date.now()).toBeLessThanOrEqual(60_000);
  });

  it('stores client hash fields as sent, ignores a POSTed size, then replaces them after processing', async () => {
    await sim.control.resetCounters();
    const claim = {
      hashType: 'SHA3_512',
      hashValue: 'a'.repeat(128),
      md5: 'b'.repeat(32),
      sha256: 'c'.repeat(64),
      sha3512: 'a'.repeat(128),
    };
    const id = await createPkg(api, 'claimed.pkg', { ...claim, size: '12345' });
    const before = await getPkg(api, id);
    expect(before).toMatchObject({ ...claim, size: null, cloudTransferStatus: '' });

    const data = randomBytes(300_000);
    await upload(api, id, 'claimed.pkg', data);
    // Right after the 201, Jamf has not processed the file: the claim still shows.
    expect(await getPkg(api, id)).toMatchObject({
      ...claim,
      size: null,
      cloudTransferStatus: 'IN_PROGRESS',
    });
    const after = await until(
      () => getPkg(api, id),
      p => p['cloudTransferStatus'] === 'READY',
    );
    expect(after).toMatchObject({ ...hashesOf(data), cloudTransferStatus: 'READY' });

    // A client hash written after processing is stored as sent too (Jamf checks nothing).
    const put = await api(`/api/v1/packages/${id}`, {
      method: 'PUT',
      json: { ...after, hashValue: 'd'.repeat(128) },
    });
    expect(((await put.json()) as Pkg)['hashValue']).toBe('d'.repeat(128));
    expect((await getPkg(api, id))['hashValue']).toBe('d'.repeat(128));

    const c = await sim.control.counters();
    expect(c.uploadsProcessed).toBe(1);
    expect(c.packageWrites).toEqual([
      {
        method: 'POST',
        api: 'pro',
        fields: [...Object.keys(pkgBody('x', 'x')), ...Object.keys(claim), 'size'],
      },
      { method: 'PUT', api: 'pro', fields: Object.keys(after) },
    ]);
  });

  it('reads hashType SHA_512 on a record that never had a file, unless the client sent one', async () => {
    const plain = await getPkg(api, await createPkg(api, 'never.pkg'));
    expect(plain).toMatchObject({
      hashType: 'SHA_512',
      hashValue: null,
      md5: null,
      size: null,
      cloudTransferStatus: '',
    });
    const md5 = await getPkg(api, await createPkg(api, 'never-md5.pkg', { hashType: 'MD5' }));
    expect(md5['hashType']).toBe('MD5');
    // Only Jamf's hash type names are accepted on a write.
    const bad = await api('/api/v1/packages', {
      method: 'POST',
      json: pkgBody('Bad hash type', 'bad-type.pkg', { hashType: 'SHA3-512' }),
    });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { errors: Array<{ field: string }> }).errors[0]?.field).toBe(
      'hashType',
    );
  });

  it('blanks size to "" on any PUT until refresh-inventory, and counts Classic writes', async () => {
    await sim.control.resetCounters();
    const data = randomBytes(4321);
    const id = await createPkg(api, 'blank.pkg');
    await upload(api, id, 'blank.pkg', data);
    const done = await until(
      () => getPkg(api, id),
      p => p['size'] === '4321',
    );
    // A PUT that does not carry size blanks it all the same.
    const { size: _size, ...withoutSize } = done;
    const put = await api(`/api/v1/packages/${id}`, {
      method: 'PUT',
      json: { ...withoutSize, info: 'edited' },
    });
    expect(await put.json()).toMatchObject({ info: 'edited', size: '' });
    expect((await getPkg(api, id))['size']).toBe('');
    expect((await refresh(api, 'blank.pkg')).status).toBe(204);
    expect(await getPkg(api, id)).toMatchObject({ info: 'edited', ...hashesOf(data) });

    // The Classic API's update blanks it as well; the write is counted by element name.
    const classic = await api(`/JSSResource/packages/id/${id}`, {
      method: 'PUT',
      body: '<package><notes>classic</notes><hash_type>MD5</hash_type></package>',
    });
    expect(classic.status).toBe(201);
    expect(await getPkg(api, id)).toMatchObject({ notes: 'classic', hashType: 'MD5', size: '' });
    const c = await sim.control.counters();
    expect(c.packageWrites.at(-1)).toEqual({
      method: 'PUT',
      api: 'classic',
      fields: ['notes', 'hash_type'],
    });
    expect(c.packageWrites.filter(w => w.fields.includes('size'))).toEqual([]);
  });

  it('packageSha256 false: processed records carry no sha256 key (a tenant that does not fill it)', async () => {
    await sim.control.setSettings({ packageSha256: false });
    const data = randomBytes(2000);
    const id = await createPkg(api, 'no-sha256.pkg');
    await upload(api, id, 'no-sha256.pkg', data);
    const done = await until(
      () => getPkg(api, id),
      p => p['cloudTransferStatus'] === 'READY',
    );
    const { sha256: _s, ...others } = hashesOf(data);
    expect(done).toMatchObject(others);
    expect(done).not.toHaveProperty('sha256');
    const list = (await (await api('/api/v1/packages')).json()) as { results: Pkg[] };
    for (const p of list.results) expect(p).not.toHaveProperty('sha256');
    // Switched back on: the next processing computes it again.
    await sim.control.setSettings({ packageSha256: true });
    const again = randomBytes(2000);
    await upload(api, id, 'no-sha256.pkg', again);
    const redone = await until(
      () => getPkg(api, id),
      p => p['sha256'] === hex('sha256', again),
    );
    expect(redone).toMatchObject({ ...hashesOf(again), cloudTransferStatus: 'READY' });
  });

  it('processes a package upload only after the processing delay (setting and fault)', async () => {
    await sim.control.setSettings({ processingMs: 1500 });
    const data = randomBytes(1000);
    const id = await createPkg(api, 'delayed.pkg');
    await upload(api, id, 'delayed.pkg', data);
    const t0 = Date.now();
    // refresh-inventory does not hurry Jamf's own transfer of an upload.
    await refresh(api, 'delayed.pkg');
    await sleep(700);
    expect(await getPkg(api, id)).toMatchObject({
      hashType: 'SHA_512',
      size: null,
      cloudTransferStatus: 'IN_PROGRESS',
    });
    const done = await until(
      () => getPkg(api, id),
      p => p['cloudTransferStatus'] === 'READY',
    );
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1300);
    expect(done).toMatchObject(hashesOf(data));

    await sim.control.setFaults({ processingDelayMs: 2000 });
    const id2 = await createPkg(api, 'delayed-more.pkg');
    await upload(api, id2, 'delayed-more.pkg', data);
    await sleep(1600);
    expect((await getPkg(api, id2))['cloudTransferStatus']).toBe('IN_PROGRESS');
    expect(
      (
        await until(
          () => getPkg(api, id2),
          p => p['cloudTransferStatus'] === 'READY',
        )
      )['size'],
    ).toBe('1000');
  });

  it('shows the OLD hash and size on a replace until processing completes', async () => {
    const first = randomBytes(2000);
    const second = randomBytes(3000);
    const id = await createPkg(api, 'replace.pkg');
    await upload(api, id, 'replace.pkg', first);
    await until(
      () => getPkg(api, id),
      p => p['size'] === '2000',
    );
    await sim.control.setSettings({ processingMs: 1000 });
    await upload(api, id, 'replace.pkg', second);
    expect(await getPkg(api, id)).toMatchObject({
      ...hashesOf(first),
      cloudTransferStatus: 'IN_PROGRESS',
    });
    const done = await until(
      () => getPkg(api, id),
      p => p['hashValue'] === hex('sha3-512', second),
    );
    expect(done).toMatchObject({ ...hashesOf(second), cloudTransferStatus: 'READY' });
  });

  it('staleSizeMs: after a replace, the new hash with the old size for a while, then the new size', async () => {
    const first = randomBytes(1111);
    const second = randomBytes(2222);
    const id = await createPkg(api, 'stale.pkg');
    await upload(api, id, 'stale.pkg', first);
    await until(
      () => getPkg(api, id),
      p => p['size'] === '1111',
    );
    await sim.control.setFaults({ staleSizeMs: 1500 });
    await upload(api, id, 'stale.pkg', second);
    const transient = await until(
      () => getPkg(api, id),
      p => p['hashValue'] === hex('sha3-512', second),
    );
    expect(transient).toMatchObject({
      hashType: 'SHA3_512',
      hashValue: hex('sha3-512', second),
      md5: hex('md5', second),
      cloudTransferStatus: 'READY',
      size: '1111',
    });
    const t0 = Date.now();
    const settled = await until(
      () => getPkg(api, id),
      p => p['size'] === '2222',
    );
    expect(Date.now() - t0).toBeGreaterThan(800);
    expect(settled).toMatchObject({ ...hashesOf(second), cloudTransferStatus: 'READY' });
  });

  it('bytesNeverLandCount (package upload): the new hash with size "0", nothing stored; a second upload lands', async () => {
    await sim.control.resetCounters();
    const data = randomBytes(5000);
    const id = await createPkg(api, 'never-lands.pkg');
    await sim.control.setFaults({ bytesNeverLandCount: 1 });
    await upload(api, id, 'never-lands.pkg', data);
    const failed = await until(
      () => getPkg(api, id),
      p => p['size'] === '0',
    );
    expect(failed).toMatchObject({
      hashType: 'SHA3_512',
      hashValue: hex('sha3-512', data),
      size: '0',
      cloudTransferStatus: 'IN_PROGRESS',
    });
    expect(await listed(api, 'never-lands.pkg')).toBeUndefined();
    expect((await api('/api/v1/jcds/files/never-lands.pkg')).status).toBe(404);
    // refresh-inventory does not bring it back: there is nothing stored.
    await refresh(api, 'never-lands.pkg');
    await sleep(500);
    expect((await getPkg(api, id))['size']).toBe('0');
    expect((await sim.control.faults()).bytesNeverLandCount).toBe(0);

    await upload(api, id, 'never-lands.pkg', data);
    const landed = await until(
      () => getPkg(api, id),
      p => p['cloudTransferStatus'] === 'READY',
    );
    expect(landed).toMatchObject(hashesOf(data));
    expect(await listed(api, 'never-lands.pkg')).toMatchObject({ length: 5000 });
    const c = await sim.control.counters();
    expect([c.bytesNeverLanded, c.uploadsProcessed]).toEqual([1, 1]);
  });

  it('s3 transport: credentials path tmp/<uuid>/, the object listed under its fileName, newest wins', async () => {
    const a = await jcdsCreds(api);
    const b = await jcdsCreds(api);
    expect(a.path).toMatch(/^tmp\/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\/$/);
    expect(a.path).toBe(`tmp/${a.uuid}/`);
    expect(b.path).not.toBe(a.path);
    const renewed = (await (
      await api('/api/v1/jcds/renew-credentials', { method: 'POST' })
    ).json()) as JcdsCreds;
    expect(renewed.path).toMatch(/^tmp\/[0-9a-f-]{36}\/$/);

    const older = randomBytes(1500);
    const newer = randomBytes(2500);
    await putJcds(sim, api, 'two-objects.pkg', older);
    await sleep(20);
    await putJcds(sim, api, 'two-objects.pkg', newer);
    expect(await listed(api, 'two-objects.pkg')).toEqual({
      fileName: 'two-objects.pkg',
      length: 2500,
      md5: hex('md5', newer),
      region: sim.info.region,
      sha3: hex('sha3-512', newer),
    });
    const { uri } = (await (await api('/api/v1/jcds/files/two-objects.pkg')).json()) as {
      uri: string;
    };
    expect(Buffer.from(await (await fetch(uri)).arrayBuffer()).equals(newer)).toBe(true);
    const id = await createPkg(api, 'two-objects.pkg');
    const done = await until(
      () => getPkg(api, id),
      p => p['cloudTransferStatus'] === 'READY',
    );
    expect(done).toMatchObject(hashesOf(newer));
    // Deleting the JCDS file deletes every object of that name.
    expect((await api('/api/v1/jcds/files/two-objects.pkg', { method: 'DELETE' })).status).toBe(
      204,
    );
    expect(await listed(api, 'two-objects.pkg')).toBeUndefined();
  });

  it('s3 transport: processed on its own after the delay, or at once on refresh-inventory', async () => {
    const data = randomBytes(7000);
    await putJcds(sim, api, 'by-itself.pkg', data);
    const id = await createPkg(api, 'by-itself.pkg', {
      hashType: 'SHA3_512',
      hashValue: 'e'.repeat(128),
    });
    // Before processing the record shows the client's claim; no refresh is ever called.
    expect(await getPkg(api, id)).toMatchObject({ hashValue: 'e'.repeat(128), size: null });
    const done = await until(
      () => getPkg(api, id),
      p => p['cloudTransferStatus'] === 'READY',
    );
    expect(done).toMatchObject(hashesOf(data));

    await sim.control.setSettings({ processingMs: 60_000 });
    const other = randomBytes(8000);
    await putJcds(sim, api, 'refreshed.pkg', other);
    const id2 = await createPkg(api, 'refreshed.pkg');
    await sleep(500);
    expect(await getPkg(api, id2)).toMatchObject({ hashType: 'SHA_512', size: null });
    expect((await refresh(api, 'refreshed.pkg')).status).toBe(204);
    const t0 = Date.now();
    const refreshed = await until(
      () => getPkg(api, id2),
      p => p['cloudTransferStatus'] === 'READY',
    );
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(refreshed).toMatchObject(hashesOf(other));

    // A replace through S3: the old hash and size until refresh-inventory processes the new.
    const replacement = randomBytes(9000);
    await putJcds(sim, api, 'refreshed.pkg', replacement);
    await sleep(300);
    expect(await getPkg(api, id2)).toMatchObject(hashesOf(other));
    await refresh(api, 'refreshed.pkg');
    expect(
      await until(
        () => getPkg(api, id2),
        p => p['size'] === '9000',
      ),
    ).toMatchObject(hashesOf(replacement));
  });

  it('bytesNeverLandCount (s3 transport): size "0" and the object gone; sent again, it lands', async () => {
    await sim.control.setFaults({ bytesNeverLandCount: 1 });
    const data = randomBytes(6000);
    await putJcds(sim, api, 's3-never.pkg', data);
    const id = await createPkg(api, 's3-never.pkg');
    await refresh(api, 's3-never.pkg');
    const failed = await until(
      () => getPkg(api, id),
      p => p['size'] === '0',
    );
    expect(failed).toMatchObject({
      hashValue: hex('sha3-512', data),
      size: '0',
      cloudTransferStatus: 'IN_PROGRESS',
    });
    expect(await listed(api, 's3-never.pkg')).toBeUndefined();
    await putJcds(sim, api, 's3-never.pkg', data);
    await refresh(api, 's3-never.pkg');
    const landed = await until(
      () => getPkg(api, id),
      p => p['cloudTransferStatus'] === 'READY',
    );
    expect(landed).toMatchObject(hashesOf(data));
    expect(await listed(api, 's3-never.pkg')).toMatchObject({ length: 6000 });
  });

  it('vanishObjectCount: a stored object (PutObject, CompleteMultipartUpload) is deleted after its 200', async () => {
    await sim.control.resetCounters();
    await sim.control.setFaults({ vanishObjectCount: 2 });
    const small = randomBytes(3000);
    await putJcds(sim, api, 'vanish.pkg', small); // answered 200
    const c = await jcdsCreds(api);
    const s3 = s3For(sim, c);
    const key = `${c.path}vanish-mp.pkg`;
    const part = randomBytes(5 * 1024 * 1024);
    try {
      const { UploadId } = await s3.send(
        new CreateMultipartUploadCommand({ Bucket: c.bucketName, Key: key }),
      );
      const parts = [];
      for (const n of [1, 2]) {
        const { ETag } = await s3.send(
          new UploadPartCommand({
            Bucket: c.bucketName,
            Key: key,
            UploadId,
            PartNumber: n,
            Body: part,
          }),
        );
        parts.push({ ETag, PartNumber: n });
      }
      await s3.send(
        new CompleteMultipartUploadCommand({
          Bucket: c.bucketName,
          Key: key,
          UploadId,
          MultipartUpload: { Parts: parts },
        }),
      );
    } finally {
      s3.destroy();
    }
    await sleep(200);
    expect(await listed(api, 'vanish.pkg')).toBeUndefined();
    expect(await listed(api, 'vanish-mp.pkg')).toBeUndefined();
    const id = await createPkg(api, 'vanish.pkg');
    await refresh(api, 'vanish.pkg');
    await sleep(600);
    expect(await getPkg(api, id)).toMatchObject({
      hashType: 'SHA_512',
      hashValue: null,
      size: null,
      cloudTransferStatus: '',
    });
    expect((await sim.control.counters()).objectsVanished).toBe(2);
    // The count is used up: the next object stays.
    await putJcds(sim, api, 'vanish.pkg', small);
    expect(await listed(api, 'vanish.pkg')).toMatchObject({ length: 3000 });
  });

  it('hands out CloudFront-style download URLs: HEAD, Range 206, ETag, no redirect; 403 when expired or forged', async () => {
    const data = randomBytes(100_000);
    const id = await createPkg(api, 'cdn file+1.pkg');
    await upload(api, id, 'cdn file+1.pkg', data);
    const { uri } = (await (
      await api(`/api/v1/jcds/files/${encodeURIComponent('cdn file+1.pkg')}`)
    ).json()) as { uri: string };
    const url = new URL(uri);
    expect([...url.searchParams.keys()]).toEqual(['Expires', 'Signature', 'Key-Pair-Id']);
    expect(uri).not.toMatch(/X-Amz-/);
    const expires = Number(url.searchParams.get('Expires'));
    expect(expires - Date.now() / 1000).toBeGreaterThan(290);
    expect(expires - Date.now() / 1000).toBeLessThanOrEqual(301);
    expect(url.searchParams.get('Signature')).toMatch(/^[A-Za-z0-9~_-]+$/);

    const head = await fetch(uri, { method: 'HEAD', redirect: 'manual' });
    expect(head.status).toBe(200);
    expect(head.headers.get('content-length')).toBe('100000');
    expect(head.headers.get('etag')).toBe(`"${hex('md5', data)}"`);
    const ranged = await fetch(uri, { headers: { Range: 'bytes=0-0' }, redirect: 'manual' });
    expect(ranged.status).toBe(206);
    expect(ranged.headers.get('content-range')).toBe('bytes 0-0/100000');
    expect(ranged.headers.get('etag')).toBe(`"${hex('md5', data)}"`);
    expect(Buffer.from(await ranged.arrayBuffer())).toEqual(data.subarray(0, 1));

    const forged = new URL(uri);
    const sig = forged.searchParams.get('Signature') ?? '';
    forged.searchParams.set('Signature', (sig[0] === 'A' ? 'B' : 'A') + sig.slice(1));
    expect((await fetch(forged)).status).toBe(403);
    const otherKey = new URL(uri);
    otherKey.searchParams.set('Key-Pair-Id', 'KNOTTHEKEY');
    expect((await fetch(otherKey)).status).toBe(403);
    const later = new URL(uri);
    later.searchParams.set('Expires', String(expires + 3600));
    expect((await fetch(later)).status).toBe(403);

    // A short lifetime: the setting, and the presignTtlSeconds fault that overrides it.
    await sim.control.setSettings({ downloadUrlTtlSeconds: 2 });
    const short = (await (
      await api(`/api/v1/jcds/files/${encodeURIComponent('cdn file+1.pkg')}`)
    ).json()) as { uri: string };
    await sim.control.setSettings({ downloadUrlTtlSeconds: 300 });
    await sim.control.setFaults({ presignTtlSeconds: 4 });
    const viaFault = (await (
      await api(`/api/v1/jcds/files/${encodeURIComponent('cdn file+1.pkg')}`)
    ).json()) as { uri: string };
    expect((await fetch(short.uri, { method: 'HEAD' })).status).toBe(200);
    await sleep(2100);
    const expired = await fetch(short.uri);
    expect(expired.status).toBe(403);
    expect(await expired.text()).toContain('<Code>AccessDenied</Code>');
    expect((await fetch(viaFault.uri, { method: 'HEAD' })).status).toBe(200);
    await sleep(2000);
    expect((await fetch(viaFault.uri, { method: 'HEAD' })).status).toBe(403);

    // The pre-2026 form stays available behind a switch.
    await sim.control.clearFaults();
    await sim.control.setSettings({ downloadUrlForm: 's3-presigned' });
    const legacy = (await (
      await api(`/api/v1/jcds/files/${encodeURIComponent('cdn file+1.pkg')}`)
    ).json()) as { uri: string };
    expect(legacy.uri).toContain('X-Amz-Expires=300');
    expect(Buffer.from(await (await fetch(legacy.uri)).arrayBuffer()).equals(data)).toBe(true);
  });

  it('cdnType AWS and NONE: the JCDS endpoints answer 404 "JCDS Settings record not found"', async () => {
    const jcdsCalls: Array<[string, string]> = [
      ['POST', '/api/v1/jcds/files'],
      ['GET', '/api/v1/jcds/files'],
      ['GET', '/api/v1/jcds/files/a.pkg'],
      ['DELETE', '/api/v1/jcds/files/a.pkg'],
      ['POST', '/api/v1/jcds/renew-credentials'],
      ['POST', '/api/v1/jcds/refresh-inventory?file-name=a.pkg'],
    ];
    const data = randomBytes(2048);
    for (const cdnType of ['AWS', 'NONE'] as const) {
      await sim.control.setSettings({ cdnType });
      expect(await (await api('/api/v1/cloud-distribution-point')).json()).toMatchObject({
        cdnType,
        master: true,
      });
      expect(
        await (await api('/api/v1/cloud-distribution-point/upload-capability')).json(),
      ).toEqual({
        principalDistributionTechnology: cdnType === 'AWS',
        directUploadCapable: cdnType === 'AWS',
      });
      for (const [method, path] of jcdsCalls) {
        const r = await api(path, { method });
        expect(r.status, `${cdnType} ${method} ${path}`).toBe(404);
        expect(await r.json()).toEqual({
          httpStatus: 404,
          errors: [
            expect.objectContaining({ description: 'JCDS Settings record not found', id: '0' }),
          ],
        });
      }
      // Uploads are accepted either way; only a distribution point makes them READY.
      const id = await createPkg(api, `cdn-${cdnType}.pkg`);
      await upload(api, id, `cdn-${cdnType}.pkg`, data);
      await sleep(900);
      const p = await getPkg(api, id);
      if (cdnType === 'AWS')
        expect(p).toMatchObject({ ...hashesOf(data), cloudTransferStatus: 'READY' });
      else expect(p).toMatchObject({ cloudTransferStatus: 'IN_PROGRESS', size: null });
    }
    // Back to Jamf Cloud: the held-back processing goes on.
    await sim.control.setSettings({ cdnType: 'JAMF_CLOUD' });
    const ids = (await (
      await api(`/api/v1/packages?filter=${encodeURIComponent('fileName=="cdn-NONE.pkg"')}`)
    ).json()) as { results: Array<{ id: string }> };
    const none = ids.results[0]?.id ?? '';
    expect(
      await until(
        () => getPkg(api, none),
        p => p['cloudTransferStatus'] === 'READY',
      ),
    ).toMatchObject(hashesOf(data));
    expect((await api('/api/v1/jcds/files')).status).toBe(200);
  });

  it('sends Deprecation: date="2025-08-28T00:00:00Z" on every JCDS answer when switched on', async () => {
    expect((await api('/api/v1/jcds/files')).headers.get('deprecation')).toBeNull();
    await sim.control.setSettings({ deprecationHeader: true });
    const want = 'date="2025-08-28T00:00:00Z"';
    expect((await api('/api/v1/jcds/files')).headers.get('deprecation')).toBe(want);
    const created = await api('/api/v1/jcds/files', { method: 'POST' });
    expect(created.headers.get('deprecation')).toBe(want);
    const missing = await api('/api/v1/jcds/files/not-there.pkg');
    expect([missing.status, missing.headers.get('deprecation')]).toEqual([404, want]);
    expect((await api('/api/v1/packages')).headers.get('deprecation')).toBeNull();
    await sim.control.setSettings({ cdnType: 'AWS' });
    const aws = await api('/api/v1/jcds/renew-credentials', { method: 'POST' });
    expect([aws.status, aws.headers.get('deprecation')]).toEqual([404, want]);
  });

  it('refuses unknown or invalid settings and faults', async () => {
    const put = (path: string, body: unknown) =>
      fetch(`${sim.info.controlUrl}${path}`, { method: 'PUT', body: JSON.stringify(body) });
    expect((await put('/settings', { cdnType: 'AKAMAI' })).status).toBe(400);
    expect((await put('/settings', { nope: 1 })).status).toBe(400);
    expect((await put('/faults', { staleSizeMs: -1 })).status).toBe(400);
    expect((await put('/settings', { packageSha256: 'no' })).status).toBe(400);
    expect(await sim.control.settings()).toEqual({
      cdnType: 'JAMF_CLOUD',
      deprecationHeader: false,
      processingMs: 300,
      downloadUrlTtlSeconds: 300,
      downloadUrlForm: 'cloudfront',
      packageSha256: true,
    });
  });
});

describe('page-size above 2000', () => {
  it('is clamped to 2000, not refused', async () => {
    const sim = await start();
    const api = simApi(sim.info, await simToken(sim.info));
    for (let i = 0; i < 2001; i += 25) {
      await Promise.all(
        Array.from({ length: Math.min(25, 2001 - i) }, (_, j) =>
          api('/api/v1/packages', {
            method: 'POST',
            json: pkgBody(`Bulk ${i + j}`, `bulk-${i + j}.pkg`),
          }).then(r => expect(r.status).toBe(201)),
        ),
      );
    }
    const res = await api('/api/v1/packages?page-size=5000');
    expect(res.status).toBe(200);
    const body = (await res.json()) as { totalCount: number; results: unknown[] };
    expect(body.totalCount).toBe(2001);
    expect(body.results).toHaveLength(2000);
    // The clamped size also places the pages: page 1 starts at the 2001st.
    const next = (await (await api('/api/v1/packages?page=1&page-size=5000')).json()) as {
      results: Array<{ packageName: string }>;
    };
    expect(next.results).toHaveLength(1);
    await sim.stop();
  });
});

describe('startup options', () => {
  it('--no-package-sha256 and JCDS_SIM_PACKAGE_SHA256=0 start without sha256 on package records', async () => {
    for (const opts of [
      { args: ['--no-package-sha256'] },
      { env: { JCDS_SIM_PACKAGE_SHA256: '0' } },
    ]) {
      const sim = await start(opts);
      expect(await sim.control.settings()).toMatchObject({ packageSha256: false });
      await sim.stop();
    }
  });

  it('--cdn-type NONE, --deprecation-header, --processing-ms and --download-url-ttl', async () => {
    const sim = await start({
      cdnType: 'NONE',
      deprecationHeader: true,
      processingMs: 100,
      downloadUrlTtl: 30,
    });
    expect(await sim.control.settings()).toEqual({
      cdnType: 'NONE',
      deprecationHeader: true,
      processingMs: 100,
      downloadUrlTtlSeconds: 30,
      downloadUrlForm: 'cloudfront',
      packageSha256: true,
    });
    const api = simApi(sim.info, await simToken(sim.info));
    const r = await api('/api/v1/jcds/files');
    expect([r.status, r.headers.get('deprecation')]).toEqual([404, 'date="2025-08-28T00:00:00Z"']);
    expect(await (await api('/api/v1/cloud-distribution-point')).json()).toMatchObject({
      cdnType: 'NONE',
    });
    await sim.stop();
  });
});
