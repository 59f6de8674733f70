/**
 * The simulator's Jamf Pro side, through plain fetch against spawned simulator processes:
 * auth, JCDS v1, packages (pagination, RSQL, errors, upload), the Classic API,
 * refresh-inventory, faults, counters and persistence across a restart.
 */
import { GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, openAsBlob, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  simApi,
  simToken,
  spawnSimulator,
  type SimApi,
  type SimInfo,
  type SpawnedSimulator,
} from '../helpers/sim.ts';

const tmp = mkdtempSync(join(tmpdir(), 'sim-jamf-test-'));
const spawned: SpawnedSimulator[] = [];

async function start(opts: Parameters<typeof spawnSimulator>[0] = {}): Promise<SpawnedSimulator> {
  const s = await spawnSimulator(opts);
  spawned.push(s);
  return s;
}

async function oauth(info: SimInfo, path = '/api/v1/oauth/token'): Promise<Response> {
  return fetch(`${info.jamfUrl}${path}`, {
    method: 'POST',
    body: new URLSearchParams({
      client_id: info.clientId,
      client_secret: info.clientSecret,
      grant_type: 'client_credentials',
    }),
  });
}

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

async function createPkg(api: SimApi, name: string, fileName: string): Promise<string> {
  const res = await api('/api/v1/packages', { method: 'POST', json: pkgBody(name, fileName) });
  expect(res.status).toBe(201);
  return ((await res.json()) as { id: string }).id;
}

const errorBody = (status: number, code: string, field: string | null) => ({
  httpStatus: status,
  errors: [expect.objectContaining({ code, field, id: '0', description: expect.any(String) })],
});

const hex = (algo: string, data: Buffer) => createHash(algo).update(data).digest('hex');

afterAll(async () => {
  await Promise.all(spawned.map(s => s.stop()));
  rmSync(tmp, { recursive: true, force: true });
});

describe('startup', () => {
  it('npm run sim -- --port 0 prints the ready line and serves Jamf', async () => {
    const s = await start({ viaNpm: true });
    for (const k of [
      'jamfUrl',
      's3Endpoint',
      'clientId',
      'clientSecret',
      'username',
      'password',
    ] as const) {
      expect(s.info[k]).toEqual(expect.any(String));
      expect(s.info[k].length).toBeGreaterThan(0);
    }
    expect(s.info.jamfUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(s.info.s3Endpoint).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const api = simApi(s.info, await simToken(s.info));
    expect(await (await api('/api/v1/jamf-pro-version')).json()).toEqual({
      version: '11.25.0-sim',
    });
    await s.stop();
    expect(s.extraStdout()).toEqual([]);
  });
});

describe('simulator', () => {
  let sim: SpawnedSimulator;
  let api: SimApi;

  beforeAll(async () => {
    sim = await start({ presignTtl: 120 });
    api = simApi(sim.info, await simToken(sim.info));
  });

  it('issues OAuth tokens on both paths and user tokens; keep-alive and invalidate revoke', async () => {
    for (const path of ['/api/v1/oauth/token', '/api/oauth/token']) {
      const res = await oauth(sim.info, path);
      const body = (await res.json()) as Record<string, unknown>;
      expect(body).toEqual({
        access_token: expect.any(String),
        scope: expect.any(String),
        token_type: 'Bearer',
        // Jamf's API client tokens live about 60 s by default (jamf-wire-2026.md 5).
        expires_in: 59,
      });
      const me = simApi(sim.info, body['access_token'] as string);
      expect((await me('/api/v1/packages')).status).toBe(200);
    }
    const bad = await fetch(`${sim.info.jamfUrl}/api/v1/oauth/token`, {
      method: 'POST',
      body: new URLSearchParams({
        client_id: sim.info.clientId,
        client_secret: 'wrong',
        grant_type: 'client_credentials',
      }),
    });
    expect(bad.status).toBe(401);

    const basic = `Basic ${Buffer.from(`${sim.info.username}:${sim.info.password}`).toString('base64')}`;
    const ut = await fetch(`${sim.info.jamfUrl}/api/v1/auth/token`, {
      method: 'POST',
      headers: { Authorization: basic },
    });
    const user = (await ut.json()) as { token: string; expires: string };
    expect(Date.parse(user.expires)).toBeGreaterThan(Date.now() + 1700_000);
    const ka = await simApi(sim.info, user.token)('/api/v1/auth/keep-alive', { method: 'POST' });
    const renewed = (await ka.json()) as { token: string; expires: string };
    expect(renewed.token).not.toBe(user.token);
    const old = await simApi(sim.info, user.token)('/api/v1/packages');
    expect(old.status).toBe(401);
    expect(await old.json()).toEqual(errorBody(401, 'INVALID_TOKEN', null));
    const fresh = simApi(sim.info, renewed.token);
    expect((await fresh('/api/v1/packages')).status).toBe(200);
    expect((await fresh('/api/v1/auth/invalidate-token', { method: 'POST' })).status).toBe(204);
    expect((await fresh('/api/v1/packages')).status).toBe(401);
    const wrongUser = await fetch(`${sim.info.jamfUrl}/api/v1/auth/token`, {
      method: 'POST',
      headers: { Authorization: `Basic ${Buffer.from('x:y').toString('base64')}` },
    });
    expect(wrongUser.status).toBe(401);
  });

  it('hands out, renews and lists JCDS credentials and files', async () => {
    const before = await sim.control.counters();
    const created = await api('/api/v1/jcds/files', { method: 'POST' });
    expect(created.status).toBe(201);
    const c = (await created.json()) as Record<string, unknown>;
    expect(Object.keys(c).sort()).toEqual(
      [
        'accessKeyID',
        'bucketName',
        'expiration',
        'path',
        'region',
        'secretAccessKey',
        'sessionToken',
        'uuid',
      ].sort(),
    );
    expect(c['accessKeyID']).toMatch(/^ASIA[A-Z2-7]{16}$/);
    expect(c['path']).toMatch(/\/$/);
    expect(c['expiration']).toBeGreaterThan(Date.now() / 1000 + 3500);
    expect(c['expiration']).toBeLessThan(Date.now() / 1000 + 3700);
    const renewed = await api('/api/v1/jcds/renew-credentials', { method: 'POST' });
    expect(renewed.status).toBe(200);
    expect(((await renewed.json()) as Record<string, unknown>)['accessKeyID']).not.toBe(
      c['accessKeyID'],
    );
    expect((await sim.control.counters()).credentialRenewals).toBe(before.credentialRenewals + 1);

    // The credentials really work against the S3 side, and really expire.
    const s3 = new S3Client({
      region: c['region'] as string,
      endpoint: sim.info.s3Endpoint,
      forcePathStyle: true,
      credentials: {
        accessKeyId: c['accessKeyID'] as string,
        secretAccessKey: c['secretAccessKey'] as string,
        sessionToken: c['sessionToken'] as string,
      },
    });
    const key = `${c['path'] as string}direct.pkg`;
    await s3.send(
      new PutObjectCommand({ Bucket: c['bucketName'] as string, Key: key, Body: 'direct upload' }),
    );
    const files = (await (await api('/api/v1/jcds/files')).json()) as Array<
      Record<string, unknown>
    >;
    expect(files).toContainEqual({
      fileName: 'direct.pkg',
      length: 13,
      md5: hex('md5', Buffer.from('direct upload')),
      region: 'us-east-1',
      sha3: hex('sha3-512', Buffer.from('direct upload')),
    });
    await sim.control.expireCredentials();
    await expect(
      s3.send(new GetObjectCommand({ Bucket: c['bucketName'] as string, Key: key })),
    ).rejects.toMatchObject({
      name: 'ExpiredToken',
    });
    s3.destroy();

    expect((await api('/api/v1/jcds/files/missing.pkg')).status).toBe(404);
    expect((await api('/api/v1/jcds/files/missing.pkg', { method: 'DELETE' })).status).toBe(404);
    expect((await api('/api/v1/jcds/files/direct.pkg', { method: 'DELETE' })).status).toBe(204);
    const after = (await (await api('/api/v1/jcds/files')).json()) as Array<{ fileName: string }>;
    expect(after.map(f => f.fileName)).not.toContain('direct.pkg');
  });

  it('restarts S3 on the same port, refusing connections meanwhile', async () => {
    const restarting = sim.control.restartS3(500);
    await sleep(150);
    await expect(fetch(`${sim.info.s3Endpoint}/${sim.info.bucket}/x.pkg`)).rejects.toThrow();
    await restarting;
    const back = await fetch(`${sim.info.s3Endpoint}/${sim.info.bucket}/x.pkg`);
    expect(back.status).toBe(403); // listening again; an unsigned request is refused
    expect(await back.text()).toContain('<Error>');
  });

  it('pages, filters and sorts 2,500 packages', async () => {
    const names = Array.from({ length: 2500 }, (_, i) =>
      i % 100 === 7 ? `Foo Tool ${i}` : `Package ${String(i).padStart(4, '0')}`,
    );
    for (let i = 0; i < names.length; i += 10) {
      await Promise.all(
        names.slice(i, i + 10).map((n, j) => createPkg(api, n, `bulk-${i + j}.pkg`)),
      );
    }
    const seen = new Set<string>();
    for (let page = 0; page < 3; page++) {
      const res = await api(
        `/api/v1/packages?page=${page}&page-size=1000&sort=id:asc&filter=${encodeURIComponent('fileName=="bulk-*"')}`,
      );
      const body = (await res.json()) as { totalCount: number; results: Array<{ id: string }> };
      expect(body.totalCount).toBe(2500);
      expect(body.results).toHaveLength(page < 2 ? 1000 : 500);
      for (const r of body.results) seen.add(r.id);
    }
    expect(seen.size).toBe(2500);

    const q = async (filter: string, extra = '') => {
      const res = await api(
        `/api/v1/packages?page-size=2000&filter=${encodeURIComponent(filter)}${extra}`,
      );
      expect(res.status).toBe(200);
      return (await res.json()) as {
        totalCount: number;
        results: Array<{ id: string; packageName: string; fileName: string }>;
      };
    };
    expect((await q('fileName=="bulk-42.pkg"')).results.map(r => r.packageName)).toEqual([
      'Package 0042',
    ]);
    expect((await q('packageName=="*foo*"')).totalCount).toBe(25);
    expect((await q('fileName=in=("bulk-1.pkg",bulk-2.pkg,bulk-3.pkg)')).totalCount).toBe(3);
    expect(
      (await q('packageName=="*foo*";fileName=="bulk-10*"')).results.map(r => r.fileName),
    ).toEqual(['bulk-107.pkg', 'bulk-1007.pkg']);
    expect((await q('fileName=="bulk-5.pkg",fileName=="bulk-6.pkg"')).totalCount).toBe(2);
    expect((await q('fileName=="bulk-*";packageName!="Package*"')).totalCount).toBe(25);
    const desc = await q('packageName=="*foo*"', '&sort=packageName:desc');
    expect(desc.results[0]?.packageName).toBe('Foo Tool 907');
    const ids = (await q('fileName=in=(bulk-5.pkg,bulk-6.pkg)')).results.map(r => r.id);
    const del = await api('/api/v1/packages/delete-multiple', { method: 'POST', json: { ids } });
    expect(del.status).toBe(204);
    expect((await api(`/api/v1/packages/${ids[0]}`)).status).toBe(404);
    expect((await q('fileName=="bulk-*"')).totalCount).toBe(2498);
    // Above 2000, page-size is silently clamped to 2000 (jamf-wire-2026.md 1.6).
    const tooBig = await api('/api/v1/packages?page-size=2001');
    expect(tooBig.status).toBe(200);
    expect(((await tooBig.json()) as { results: unknown[] }).results).toHaveLength(2000);
    const badFilter = await api(`/api/v1/packages?filter=${encodeURIComponent('fileName=="x')}`);
    expect(badFilter.status).toBe(400);
  });

  it('answers Jamf error bodies for duplicates, file types and missing fields', async () => {
    await createPkg(api, 'Dup Name', 'dup-1.pkg');
    const dup = await api('/api/v1/packages', {
      method: 'POST',
      json: pkgBody('Dup Name', 'dup-2.pkg'),
    });
    expect(dup.status).toBe(400);
    expect(await dup.json()).toEqual(errorBody(400, 'DUPLICATE_FIELD', 'packageName'));
    const exe = await api('/api/v1/packages', { method: 'POST', json: pkgBody('Exe', 'tool.exe') });
    expect(exe.status).toBe(400);
    expect(await exe.json()).toEqual({
      httpStatus: 400,
      errors: [
        {
          code: 'UNSUPPORTED_FILE_TYPE',
          description: 'Unsupported file extension. Acceptable formats are pkg, mpkg, dmg or zip.',
          id: '0',
          field: 'fileName',
        },
      ],
    });
    await createPkg(api, 'Upper', 'UPPER.DMG');
    const { priority: _p, ...noPriority } = pkgBody('No priority', 'np.pkg');
    const missing = await api('/api/v1/packages', { method: 'POST', json: noPriority });
    expect(missing.status).toBe(400);
    expect(await missing.json()).toEqual(errorBody(400, 'INVALID_FIELD', 'priority'));
    expect((await api('/api/v1/packages/999999')).status).toBe(404);
  });

  it('streams a package upload, reports the stored hashes and serves it presigned', async () => {
    const data = randomBytes(5 * 1024 * 1024 + 12345);
    const path = join(tmp, 'upload.pkg');
    writeFileSync(path, data);
    const id = await createPkg(api, 'Uploaded', 'upload.pkg');
    const claimed = await api(`/api/v1/packages/${id}`, {
      method: 'PUT',
      json: { hashType: 'SHA3_512', hashValue: 'f'.repeat(128) },
    });
    expect(((await claimed.json()) as { size: unknown }).size).toBeNull();
    const form = new FormData();
    form.append('file', await openAsBlob(path), 'upload.pkg');
    const up = await api(`/api/v1/packages/${id}/upload`, { method: 'POST', body: form });
    expect(up.status).toBe(201);
    expect(await up.json()).toEqual({ id, href: `${sim.info.jamfUrl}/api/v1/packages/${id}` });

    let pkg: Record<string, unknown> = {};
    for (let i = 0; i < 50 && pkg['hashValue'] !== hex('sha3-512', data); i++) {
      pkg = (await (await api(`/api/v1/packages/${id}`)).json()) as Record<string, unknown>;
      if (pkg['hashValue'] !== hex('sha3-512', data)) await sleep(100);
    }
    expect(pkg).toMatchObject({
      md5: hex('md5', data),
      sha256: hex('sha256', data),
      hashType: 'SHA3_512',
      hashValue: hex('sha3-512', data),
      size: String(data.length),
    });
    const files = (await (await api('/api/v1/jcds/files')).json()) as Array<
      Record<string, unknown>
    >;
    expect(files).toContainEqual(
      expect.objectContaining({
        fileName: 'upload.pkg',
        length: data.length,
        md5: hex('md5', data),
      }),
    );

    const { uri } = (await (await api('/api/v1/jcds/files/upload.pkg')).json()) as { uri: string };
    // A CloudFront signed URL (jamf-wire-2026.md 4).
    expect(uri).toMatch(/[?&]Expires=\d+&Signature=[^&]+&Key-Pair-Id=/);
    const whole = Buffer.from(await (await fetch(uri)).arrayBuffer());
    expect(hex('md5', whole)).toBe(hex('md5', data));
    const ranged = await fetch(uri, { headers: { Range: 'bytes=1000-1999' } });
    expect(ranged.status).toBe(206);
    expect(Buffer.from(await ranged.arrayBuffer()).equals(data.subarray(1000, 2000))).toBe(true);

    // A PUT carrying size blanks Jamf's size until the inventory is refreshed for the file.
    await api(`/api/v1/packages/${id}`, { method: 'PUT', json: { ...pkg, size: pkg['size'] } });
    expect(
      ((await (await api(`/api/v1/packages/${id}`)).json()) as { size: unknown }).size,
      // jamf-wire-2026.md 1.4: a PUT blanks size to "".
    ).toBe('');
    const refresh = await api(
      '/api/v1/cloud-distribution-point/refresh-inventory?file-name=upload.pkg',
      { method: 'POST' },
    );
    expect(refresh.status).toBe(204);
    expect(((await (await api(`/api/v1/packages/${id}`)).json()) as { size: unknown }).size).toBe(
      String(data.length),
    );

    // Corruption flips stored bytes: Jamf keeps its hash, the download differs.
    await sim.control.corrupt('upload.pkg');
    const again = (await (await api('/api/v1/jcds/files/upload.pkg')).json()) as { uri: string };
    expect(hex('md5', Buffer.from(await (await fetch(again.uri)).arrayBuffer()))).not.toBe(
      hex('md5', data),
    );
    expect(await sim.control.listMultipartUploads()).toEqual([]);

    // Deleting through the Classic API deletes the JCDS file too.
    const del = await api(`/JSSResource/packages/id/${id}`, { method: 'DELETE' });
    expect(del.status).toBe(200);
    const left = (await (await api('/api/v1/jcds/files')).json()) as Array<{ fileName: string }>;
    expect(left.map(f => f.fileName)).not.toContain('upload.pkg');
  });

  it('expires presigned URLs after faults.presignTtlSeconds', async () => {
    const id = await createPkg(api, 'Short lived', 'short.pkg');
    const form = new FormData();
    form.append('file', new Blob([Buffer.from('short-lived bytes')]), 'short.pkg');
    expect(
      (await api(`/api/v1/packages/${id}/upload`, { method: 'POST', body: form })).status,
    ).toBe(201);
    await sim.control.setFaults({ presignTtlSeconds: 1 });
    const { uri } = (await (await api('/api/v1/jcds/files/short.pkg')).json()) as { uri: string };
    await sim.control.clearFaults();
    expect(uri).toMatch(/[?&]Expires=\d+&Signature=/);
    expect((await fetch(uri)).status).toBe(200);
    await sleep(2100);
    expect((await fetch(uri)).status).toBe(403);
  });

  it('lets clients HEAD the presigned download URL for the size', async () => {
    const id = await createPkg(api, 'Headed', 'headed.pkg');
    const form = new FormData();
    form.append('file', new Blob([Buffer.from('0123456789')]), 'headed.pkg');
    expect(
      (await api(`/api/v1/packages/${id}/upload`, { method: 'POST', body: form })).status,
    ).toBe(201);
    const { uri } = (await (await api('/api/v1/jcds/files/headed.pkg')).json()) as { uri: string };
    const head = await fetch(uri, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers.get('content-length')).toBe('10');
  });

  it('serves the Classic API in JSON and XML with HTML errors', async () => {
    const xml =
      '<package><name>Classic &amp; Co</name><filename>classic.pkg</filename><category>Utilities</category></package>';
    const created = await api('/JSSResource/packages/id/0', {
      method: 'POST',
      headers: { 'Content-Type': 'text/xml' },
      body: xml,
    });
    expect(created.status).toBe(201);
    const id = /<package><id>(\d+)<\/id><\/package>/.exec(await created.text())?.[1];
    expect(id).toMatch(/^\d+$/);
    const json = (await (
      await api('/JSSResource/packages', { headers: { Accept: 'application/json' } })
    ).json()) as {
      packages: Array<{ id: number; name: string }>;
    };
    expect(json.packages).toContainEqual({ id: Number(id), name: 'Classic & Co' });
    const xmlList = await (await api('/JSSResource/packages')).text();
    expect(xmlList).toMatch(
      /^<\?xml version="1.0" encoding="UTF-8"\?><packages><size>\d+<\/size><package>/,
    );
    expect(xmlList).toContain(`<package><id>${id}</id><name>Classic &amp; Co</name></package>`);
    const pro = (await (await api(`/api/v1/packages/${id}`)).json()) as Record<string, unknown>;
    expect(pro).toMatchObject({
      packageName: 'Classic & Co',
      fileName: 'classic.pkg',
      categoryId: '2',
    });
    const byName = await api(`/JSSResource/packages/name/${encodeURIComponent('Classic & Co')}`, {
      headers: { Accept: 'application/json' },
    });
    expect(((await byName.json()) as { package: { filename: string } }).package.filename).toBe(
      'classic.pkg',
    );

    const dup = await api('/JSSResource/packages/id/0', { method: 'POST', body: xml });
    expect(dup.status).toBe(409);
    expect(await dup.text()).toMatch(/<html>[\s\S]*<p>Error: Duplicate name<\/p>/);
    const missing = await api('/JSSResource/packages/id/987654');
    expect(missing.status).toBe(404);
    expect(missing.headers.get('content-type')).toMatch(/text\/html/);
    expect(await missing.text()).toMatch(/<p>Error: [^<]+<\/p>/);
    const unauth = await fetch(`${sim.info.jamfUrl}/JSSResource/packages`);
    expect(unauth.status).toBe(401);
  });

  it('serves the cloud distribution point, the version and categories', async () => {
    expect(await (await api('/api/v1/cloud-distribution-point')).json()).toMatchObject({
      cdnType: 'JAMF_CLOUD',
      master: true,
    });
    expect(await (await api('/api/v1/cloud-distribution-point/upload-capability')).json()).toEqual({
      principalDistributionTechnology: true,
      directUploadCapable: true,
    });
    const made = await api('/api/v1/categories', {
      method: 'POST',
      json: { name: 'Fleet Tools', priority: 5 },
    });
    expect(made.status).toBe(201);
    const { id } = (await made.json()) as { id: string };
    const found = await api(
      `/api/v1/categories?filter=${encodeURIComponent('name=="Fleet Tools"')}`,
    );
    expect(await found.json()).toEqual({
      totalCount: 1,
      results: [{ id, name: 'Fleet Tools', priority: 5 }],
    });
    const again = await api('/api/v1/categories', {
      method: 'POST',
      json: { name: 'fleet tools' },
    });
    expect(await again.json()).toEqual(errorBody(400, 'DUPLICATE_FIELD', 'name'));
    const inCategory = await api('/api/v1/packages', {
      method: 'POST',
      json: pkgBody('Categorised', 'cat.pkg', { categoryId: id }),
    });
    expect(inCategory.status).toBe(201);
    const badCategory = await api('/api/v1/packages', {
      method: 'POST',
      json: pkgBody('Lost', 'lost.pkg', { categoryId: '9999' }),
    });
    expect(await badCategory.json()).toEqual(errorBody(400, 'INVALID_FIELD', 'categoryId'));
  });

  it('limits refresh-inventory without a file name to once in 15 s', async () => {
    const first = await api('/api/v1/cloud-distribution-point/refresh-inventory', {
      method: 'POST',
    });
    expect(first.status).toBe(204);
    const second = await api('/api/v1/jcds/refresh-inventory', { method: 'POST' });
    expect(second.status).toBe(429);
    expect(Number(second.headers.get('retry-after'))).toBeGreaterThanOrEqual(14);
    const named = await api('/api/v1/jcds/refresh-inventory?file-name=x.pkg', { method: 'POST' });
    expect(named.status).toBe(204);
  });

  it('injects 429, 503, drops, latency and token failures, and counts calls', async () => {
    await sim.control.resetCounters();
    await sim.control.setFaults({ jamf429Count: 2, jamf429RetryAfterSeconds: 3 });
    expect((await oauth(sim.info)).status).toBe(200); // token requests are exempt
    for (let i = 0; i < 2; i++) {
      const r = await api('/api/v1/packages/1');
      expect(r.status).toBe(429);
      expect(r.headers.get('retry-after')).toBe('3');
      expect(await r.json()).toEqual(errorBody(429, 'TOO_MANY_REQUESTS', null));
    }
    expect((await api('/api/v1/packages/1')).status).toBe(200);
    await sim.control.setFaults({ jamf503Count: 1 });
    expect((await api('/api/v1/packages/1')).status).toBe(503);
    expect((await api('/api/v1/packages/1')).status).toBe(200);
    await sim.control.setFaults({ jamfDropCount: 1 });
    await expect(api('/api/v1/packages/1')).rejects.toThrow();
    await sim.control.setFaults({ tokenFailCount: 1, jamfLatencyMs: 300 });
    expect((await oauth(sim.info)).status).toBe(401);
    const t0 = Date.now();
    expect((await oauth(sim.info)).status).toBe(200);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(290);
    await sim.control.clearFaults();
    expect(await sim.control.faults()).toEqual({});
    await api('/api/v1/packages/1', { headers: { Cookie: 'APBALANCEID=sim.1' } });
    const c = await sim.control.counters();
    expect(c.calls['GET /api/v1/packages/{id}']).toBe(7);
    expect(c.tokenRequests).toBe(3);
    expect(c.requestsWithoutCookie).toBe(9);
  });
});

describe('token expiry, --no-jcds and persistence', () => {
  it('expires tokens after --token-ttl', async () => {
    const s = await start({ tokenTtl: 2 });
    const res = await oauth(s.info);
    const body = (await res.json()) as { access_token: string; expires_in: number };
    expect(body.expires_in).toBe(2);
    const api = simApi(s.info, body.access_token);
    expect((await api('/api/v1/packages')).status).toBe(200);
    await sleep(3000);
    const late = await api('/api/v1/packages');
    expect(late.status).toBe(401);
    expect(await late.json()).toEqual(errorBody(401, 'INVALID_TOKEN', null));
    await s.stop();
  });

  it('answers 404 on every JCDS endpoint with --no-jcds while packages still upload', async () => {
    const s = await start({ jcds: false });
    const api = simApi(s.info, await simToken(s.info));
    const calls: Array<[string, string]> = [
      ['POST', '/api/v1/jcds/files'],
      ['GET', '/api/v1/jcds/files'],
      ['GET', '/api/v1/jcds/files/a.pkg'],
      ['DELETE', '/api/v1/jcds/files/a.pkg'],
      ['POST', '/api/v1/jcds/renew-credentials'],
      ['POST', '/api/v1/jcds/refresh-inventory'],
    ];
    for (const [method, path] of calls) {
      const r = await api(path, { method });
      expect(r.status, `${method} ${path}`).toBe(404);
      expect(((await r.json()) as { httpStatus: number }).httpStatus).toBe(404);
    }
    const id = await createPkg(api, 'NoJcds', 'nojcds.pkg');
    const form = new FormData();
    form.append('file', new Blob([Buffer.from('tiny package')]), 'nojcds.pkg');
    expect(
      (await api(`/api/v1/packages/${id}/upload`, { method: 'POST', body: form })).status,
    ).toBe(201);
    await s.stop();
  });

  it('keeps packages, files and tokens across a restart with the same data dir', async () => {
    const dataDir = join(tmp, 'persist');
    const first = await start({ dataDir });
    const token = await simToken(first.info);
    const api1 = simApi(first.info, token);
    const id = await createPkg(api1, 'Persisted', 'persisted.pkg');
    const form = new FormData();
    form.append('file', new Blob([Buffer.from('persisted bytes')]), 'persisted.pkg');
    expect(
      (await api1(`/api/v1/packages/${id}/upload`, { method: 'POST', body: form })).status,
    ).toBe(201);
    expect(
      (await api1('/api/v1/categories', { method: 'POST', json: { name: 'Kept' } })).status,
    ).toBe(201);
    await first.stop();

    // Stopped right after the upload, the first simulator may not have processed it yet (its
    // processing is due processingMs = 300 ms after the upload): the due processing is
    // persisted on the record and re-armed by the second one, which then reports Jamf's
    // computed md5 and the size. Read until it is due, plus a slack for a loaded machine.
    const second = await start({ dataDir });
    const api2 = simApi(second.info, token);
    const readPkg = async (): Promise<Record<string, unknown>> =>
      (await (await api2(`/api/v1/packages/${id}`)).json()) as Record<string, unknown>;
    let pkg = await readPkg();
    for (const deadline = Date.now() + 300 + 10_000; !pkg['md5'] && Date.now() < deadline;) {
      await sleep(50);
      pkg = await readPkg();
    }
    expect(pkg).toMatchObject({
      packageName: 'Persisted',
      md5: hex('md5', Buffer.from('persisted bytes')),
      size: '15',
    });
    const kept = await api2(`/api/v1/categories?filter=${encodeURIComponent('name==Kept')}`);
    expect(((await kept.json()) as { totalCount: number }).totalCount).toBe(1);
    const next = await createPkg(api2, 'After restart', 'after.pkg');
    expect(Number(next)).toBe(Number(id) + 1);
    expect((await second.control.packages()).map(p => p['id'])).toEqual([Number(id), Number(next)]);
    await second.stop();
  });
});
