/**
 * JamfClient against the real simulator over real HTTP: tokens (one refresh for many
 * callers, 401 recovery, keep-alive, OAuth path fallback, wrong credentials), retries
 * (429 with Retry-After, 503, dropped connections) and their bounds, typed errors without
 * secrets, pagination over 2,500 packages, the streamed upload, JCDS, the Classic API,
 * and what a wrong JAMF_URL looks like (an HTML server, a closed port).
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../shared/logger.ts';
import { JamfApiError, JamfClient, rsql, type JamfClientOptions } from '../../shared/jamf/index.ts';
import { spawnSimulator, type SimInfo, type SpawnedSimulator } from '../helpers/sim.ts';

const JWT_PREFIX = 'eyJhbGci'; // every simulator token starts with this header

const logLines: string[] = [];
const logger = createLogger({
  level: 'debug',
  destination: { write: (s: string) => void logLines.push(s) },
});
const clients: JamfClient[] = [];

function client(info: SimInfo, extra: Partial<JamfClientOptions> = {}): JamfClient {
  const c = new JamfClient({
    baseUrl: info.jamfUrl,
    auth: { kind: 'oauth', id: info.clientId, secret: info.clientSecret },
    logger,
    retryBaseMs: 20,
    ...extra,
  });
  clients.push(c);
  return c;
}

async function caught(p: Promise<unknown>): Promise<JamfApiError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(JamfApiError);
  return err as JamfApiError;
}

function secretsOf(info: SimInfo): string[] {
  return [info.clientSecret, info.password, JWT_PREFIX];
}

function expectNoSecret(text: string, info: SimInfo): void {
  for (const s of secretsOf(info)) expect(text).not.toContain(s);
}

const tmp = mkdtempSync(join(tmpdir(), 'jamf-client-'));

afterAll(async () => {
  await Promise.allSettled(clients.map(c => c.close()));
  rmSync(tmp, { recursive: true, force: true });
  const all = logLines.join('');
  expect(all).not.toContain(JWT_PREFIX);
  expect(all).not.toContain('jcds-sim-client-secret');
  expect(all).not.toContain('jcds-sim-password');
});

describe('against the simulator', () => {
  let sim: SpawnedSimulator;
  let info: SimInfo;
  let jamf: JamfClient;
  const calls = async (key: string): Promise<number> =>
    (await sim.control.counters()).calls[key] ?? 0;

  beforeAll(async () => {
    sim = await spawnSimulator();
    info = sim.info;
    jamf = client(info);
  });
  afterAll(async () => {
    await sim?.stop();
  });

  it('reads the version and capabilities, keeping the sticky-session cookie', async () => {
    expect(await jamf.getVersion()).toBe('11.25.0-sim');
    expect(await jamf.probeCapabilities()).toEqual({
      version: '11.25.0-sim',
      jcds: true,
      packageUpload: true,
    });
    expect(jamf.cookieHeader).toContain('APBALANCEID=');
    await sim.control.resetCounters();
    await Promise.all([jamf.getVersion(), jamf.listJcdsFiles(), jamf.findCategoryId('Utilities')]);
    expect((await sim.control.counters()).requestsWithoutCookie).toBe(0);
    // Each request is logged at debug with its path template, status and duration.
    const logged = logLines.map(l => JSON.parse(l) as Record<string, unknown>);
    expect(logged).toContainEqual(
      expect.objectContaining({
        msg: 'jamf request',
        method: 'GET',
        path: '/api/v1/jamf-pro-version',
        status: 200,
        ms: expect.any(Number) as unknown,
      }),
    );
  });

  it('caps concurrent requests at 5', async () => {
    await sim.control.setFaults({ jamfLatencyMs: 100 });
    try {
      const started = performance.now();
      await Promise.all(Array.from({ length: 20 }, () => jamf.getVersion()));
      // 20 calls, 5 at a time, 100 ms each: at least 4 rounds.
      expect(performance.now() - started).toBeGreaterThanOrEqual(390);
      const wide = client(info, { concurrency: 20 });
      await wide.getVersion();
      const t0 = performance.now();
      await Promise.all(Array.from({ length: 20 }, () => wide.getVersion()));
      expect(performance.now() - t0).toBeLessThan(390);
    } finally {
      await sim.control.clearFaults();
    }
  });

  it('waits out 429 Retry-After and retries 503 and dropped connections', async () => {
    await jamf.getVersion();
    await sim.control.resetCounters();
    await sim.control.setFaults({ jamf429Count: 2, jamf429RetryAfterSeconds: 1 });
    const started = performance.now();
    expect(await jamf.getVersion()).toBe('11.25.0-sim');
    expect(performance.now() - started).toBeGreaterThanOrEqual(2000);
    expect(await calls('GET /api/v1/jamf-pro-version')).toBe(3);

    await sim.control.resetCounters();
    await sim.control.setFaults({ jamf503Count: 2, jamfDropCount: 1 });
    expect(await jamf.getVersion()).toBe('11.25.0-sim');
    expect(await calls('GET /api/v1/jamf-pro-version')).toBe(4);
    expect(logLines.some(l => l.includes('"level":40') && l.includes('retrying'))).toBe(true);
  });

  it('stops at once when the caller aborts', async () => {
    await jamf.getVersion();
    await sim.control.setFaults({ jamfLatencyMs: 3000 });
    try {
      const reason = new Error('job cancelled');
      const ac = new AbortController();
      setTimeout(() => ac.abort(reason), 100);
      const started = performance.now();
      await expect(jamf.getVersion({ signal: ac.signal })).rejects.toBe(reason);
      expect(performance.now() - started).toBeLessThan(1500);
    } finally {
      await sim.control.clearFaults();
    }
  });

  it('gives up after the retry bound, with a Retry-After hint', async () => {
    const bounded = client(info, { retries: 2 });
    await bounded.getVersion();
    await sim.control.resetCounters();
    await sim.control.setFaults({ jamf503Count: 10 });
    const err = await caught(bounded.getVersion());
    await sim.control.clearFaults();
    expect(err.code).toBe('JAMF_UNAVAILABLE');
    expect(err.retryable).toBe(true);
    expect(err.message).toContain('503 Service Temporarily Unavailable');
    expect(await calls('GET /api/v1/jamf-pro-version')).toBe(3);

    // A Retry-After longer than the client waits in-process is handed to the caller at once.
    const impatient = client(info, { maxRetryAfterMs: 500 });
    await impatient.getVersion();
    await sim.control.resetCounters();
    await sim.control.setFaults({ jamf429Count: 1, jamf429RetryAfterSeconds: 3 });
    const limited = await caught(impatient.getVersion());
    expect(limited.code).toBe('JAMF_RATE_LIMITED');
    expect(limited.retryable).toBe(true);
    expect(limited.retryAfterMs).toBe(3000);
    expect(await calls('GET /api/v1/jamf-pro-version')).toBe(1);
  });

  it('does not retry other 4xx, and types their errors', async () => {
    await sim.control.resetCounters();
    const missing = await caught(jamf.getPackage('999999'));
    expect(missing.code).toBe('JAMF_NOT_FOUND');
    expect(missing.status).toBe(404);
    expect(missing.jamfErrors[0]).toMatchObject({ code: 'INVALID_ID', field: 'id' });
    expect(await calls('GET /api/v1/packages/{id}')).toBe(1);

    const exe = await caught(jamf.createPackage({ packageName: 'Bad', fileName: 'bad.exe' }));
    expect(exe.code).toBe('UNSUPPORTED_FILE_TYPE');
    expect(exe.message).toMatch(
      /^Jamf Pro refused POST \/api\/v1\/packages: 400 UNSUPPORTED_FILE_TYPE fileName: /,
    );
    expect(await calls('POST /api/v1/packages')).toBe(1);

    await jamf.createPackage({ packageName: 'Dup', fileName: 'dup.pkg' });
    const dup = await caught(jamf.createPackage({ packageName: 'Dup', fileName: 'dup2.pkg' }));
    expect(dup.code).toBe('JAMF_CONFLICT');
    expect(dup.jamfErrors[0]).toMatchObject({ code: 'DUPLICATE_FIELD', field: 'packageName' });
    expect(await calls('POST /api/v1/packages')).toBe(3);

    const noJcdsFile = await caught(jamf.deleteJcdsFile('no such file.pkg'));
    expect(noJcdsFile.code).toBe('JAMF_NOT_FOUND');
    for (const e of [missing, exe, dup, noJcdsFile])
      expectNoSecret(`${e.message} ${JSON.stringify(e)}`, info);
  });

  it('creates, lists and filters 2,500 packages, each page once', async () => {
    const names = Array.from({ length: 2500 }, (_, i) => `bulk ${String(i).padStart(5, '0')}`);
    const ids = await Promise.all(
      names.map(n =>
        jamf.createPackage({ packageName: n, fileName: `${n.replace(' ', '-')}.pkg` }),
      ),
    );
    expect(new Set(ids.map(r => r.id)).size).toBe(2500);
    await sim.control.resetCounters();
    const all = await jamf.listPackages({ filter: rsql.eq('packageName', 'bulk*'), pageSize: 200 });
    expect(all).toHaveLength(2500);
    expect(new Set(all.map(p => p.id)).size).toBe(2500);
    expect(all.map(p => p.packageName).sort()).toEqual(names);
    expect(await calls('GET /api/v1/packages')).toBe(13);

    const everything = await jamf.listPackages();
    expect(everything.length).toBeGreaterThanOrEqual(2501);
    const three = await jamf.listPackages({
      filter: rsql.in('packageName', ['bulk 00007', 'bulk 01234', 'bulk 02499']),
    });
    expect(three.map(p => p.fileName)).toEqual([
      'bulk-00007.pkg',
      'bulk-01234.pkg',
      'bulk-02499.pkg',
    ]);
    expect((await jamf.findPackageByName('bulk 00042'))?.fileName).toBe('bulk-00042.pkg');
    // Jamf matches case-insensitively; the client wants the exact name.
    expect(await jamf.findPackageByFileName('BULK-00042.pkg')).toBeUndefined();
    expect((await jamf.findPackageByFileName('bulk-00042.pkg'))?.packageName).toBe('bulk 00042');
  });

  it('streams a 50 MiB upload; Jamf then reports the same md5 and SHA3-512', async () => {
    const fileName = 'Big App 1.0+beta #1 ü%.pkg';
    const filePath = join(tmp, 'big.pkg');
    const content = randomBytes(50 * 1024 * 1024);
    writeFileSync(filePath, content);
    const md5 = createHash('md5').update(content).digest('hex');
    const sha3 = createHash('sha3-512').update(content).digest('hex');
    const category = await jamf.findCategoryId('Utilities');
    expect(category).toMatch(/^\d+$/);
    expect(await jamf.findCategoryId('No Such Category')).toBeUndefined();

    const { id } = await jamf.createPackage({
      packageName: 'Big App',
      fileName,
      categoryId: category!,
    });
    const progress: number[] = [];
    // The first attempt's connection is dropped: the upload is retried whole.
    await sim.control.resetCounters();
    await sim.control.setFaults({ jamfDropCount: 1 });
    const up = await jamf.uploadPackageFile(id, filePath, {
      fileName,
      onProgress: n => progress.push(n),
    });
    expect(up).toMatchObject({ id, size: content.length });
    expect(await calls('POST /api/v1/packages/{id}/upload')).toBe(2);
    expect(progress.filter(n => n === 0)).toHaveLength(2);
    expect(progress.at(-1)).toBe(content.length);
    await jamf.refreshCdpInventory(fileName);

    let pkg = await jamf.getPackage(id);
    for (let i = 0; i < 100 && pkg.hashType !== 'SHA3_512'; i++) {
      await sleep(100);
      pkg = await jamf.getPackage(id);
    }
    expect(pkg).toMatchObject({
      fileName,
      hashType: 'SHA3_512',
      hashValue: sha3,
      md5,
      size: content.length,
    });

    // An update never sends `size` (nor a hash field), but any PUT blanks Jamf's size until
    // the next refresh-inventory (jamf-wire-2026.md 1.4).
    const updated = await jamf.updatePackage(id, { ...pkg, info: 'updated' });
    expect(updated).toMatchObject({ info: 'updated', size: undefined, hashValue: sha3 });
    await jamf.refreshCdpInventory(fileName);
    expect(await jamf.getPackage(id)).toMatchObject({ size: content.length });

    const listed = (await jamf.listJcdsFiles()).find(f => f.fileName === fileName);
    expect(listed).toEqual({ fileName, length: content.length, md5, region: info.region, sha3 });
    const url = await jamf.getJcdsDownloadUrl(fileName);
    const head = await fetch(url, { headers: { Range: 'bytes=0-15' } });
    expect(Buffer.from(await head.arrayBuffer())).toEqual(content.subarray(0, 16));
    await jamf.refreshJcdsInventory(fileName);
  });

  it('issues and renews JCDS credentials', async () => {
    await sim.control.resetCounters();
    const creds = await jamf.createJcdsFile();
    expect(creds).toMatchObject({
      bucketName: info.bucket,
      // A temporary prefix of its own per set of credentials (jamf-wire-2026.md 4).
      path: expect.stringMatching(new RegExp(`^${info.jcdsPath}[0-9a-f-]{36}/$`)),
      region: info.region,
    });
    expect(creds.expirationDate.getTime()).toBe(creds.expiration * 1000);
    expect(creds.expirationDate.getTime()).toBeGreaterThan(Date.now());
    const renewed = await jamf.renewJcdsCredentials();
    expect(renewed.accessKeyID).not.toBe(creds.accessKeyID);
    expect((await sim.control.counters()).credentialRenewals).toBe(1);
  });

  it('reads and writes packages through the Classic API', async () => {
    const { id } = await jamf.classicCreatePackage({
      name: 'Classic <Fish & Chips>',
      filename: 'classic-fish.pkg',
      category: 'Utilities',
      priority: 7,
      info: 'a "quoted" note',
    });
    expect(id).toBeGreaterThan(0);
    expect(await jamf.classicGetPackage(id)).toMatchObject({
      id,
      name: 'Classic <Fish & Chips>',
      filename: 'classic-fish.pkg',
      category: 'Utilities',
      priority: 7,
      info: 'a "quoted" note',
    });
    expect(await jamf.classicListPackages()).toContainEqual({ id, name: 'Classic <Fish & Chips>' });
    expect((await jamf.getPackage(String(id))).fileName).toBe('classic-fish.pkg');
    const dup = await caught(
      jamf.classicCreatePackage({ name: 'Classic <Fish & Chips>', filename: 'x.pkg' }),
    );
    expect(dup.code).toBe('JAMF_CONFLICT');
    expect(dup.jamfErrors).toEqual([{ code: null, description: 'Duplicate name', field: null }]);
  });

  it('fails fast on wrong credentials, with no secret in the error', async () => {
    const wrongSecret = 'wrong-secret-value-123';
    for (const auth of [
      { kind: 'oauth' as const, id: info.clientId, secret: wrongSecret },
      { kind: 'user' as const, id: info.username, secret: wrongSecret },
    ]) {
      await sim.control.resetCounters();
      const bad = client(info, { auth });
      const started = performance.now();
      const err = await caught(
        Promise.all([bad.getVersion(), bad.listPackages(), bad.getVersion()]),
      );
      expect(performance.now() - started).toBeLessThan(2000);
      expect(err.code).toBe('JAMF_AUTH_FAILED');
      expect(err.retryable).toBe(false);
      expect(err.message).toContain(auth.kind === 'oauth' ? 'JAMF_CLIENT_SECRET' : 'JAMF_PASSWORD');
      const tokenRequests = (await sim.control.counters()).tokenRequests;
      expect(tokenRequests).toBeGreaterThanOrEqual(1);
      expect(tokenRequests).toBeLessThanOrEqual(2);
      expect(`${err.message} ${JSON.stringify(err)}`).not.toContain(wrongSecret);
    }
  });

  it('extends a user token with keep-alive and invalidates it on close', async () => {
    let offsetMs = 0;
    const user = new JamfClient({
      baseUrl: info.jamfUrl,
      auth: { kind: 'user', id: info.username, secret: info.password },
      logger,
      now: () => Date.now() + offsetMs,
    });
    await sim.control.resetCounters();
    await user.getVersion();
    expect(await calls('POST /api/v1/auth/token')).toBe(1);
    // 30 s before the 30-minute token expires: inside the margin, still valid.
    offsetMs = 1770_000;
    await user.getVersion();
    await user.getVersion();
    expect(await calls('POST /api/v1/auth/keep-alive')).toBe(1);
    expect(await calls('POST /api/v1/auth/token')).toBe(1);
    await user.close();
    expect(await calls('POST /api/v1/auth/invalidate-token')).toBe(1);
  });

  it('falls back to /api/oauth/token when /api/v1/oauth/token is missing, and remembers', async () => {
    const seen: string[] = [];
    const proxy = createServer((req, res) => {
      seen.push(`${req.method} ${req.url}`);
      if (req.url === '/api/v1/oauth/token') {
        req.resume();
        res.writeHead(404, { 'content-type': 'application/json' });
        res.end('{"httpStatus":404,"errors":[]}');
        return;
      }
      const target = new URL(info.jamfUrl);
      const fwd = httpRequest(
        {
          host: target.hostname,
          port: target.port,
          method: req.method,
          path: req.url,
          headers: req.headers,
        },
        up => {
          res.writeHead(up.statusCode ?? 502, up.headers);
          up.pipe(res);
        },
      );
      req.pipe(fwd);
    });
    await listen(proxy);
    try {
      let offsetMs = 0;
      const viaProxy = client(info, { baseUrl: urlOf(proxy), now: () => Date.now() + offsetMs });
      expect(await viaProxy.getVersion()).toBe('11.25.0-sim');
      offsetMs = 3600_000; // the token is now expired by the client's clock
      expect(await viaProxy.getVersion()).toBe('11.25.0-sim');
      expect(seen.filter(s => s === 'POST /api/v1/oauth/token')).toHaveLength(1);
      expect(seen.filter(s => s === 'POST /api/oauth/token')).toHaveLength(2);
    } finally {
      await close(proxy);
    }
  });
});

describe('token expiry against a simulator with 3 s tokens', () => {
  let sim: SpawnedSimulator;
  beforeAll(async () => {
    sim = await spawnSimulator({ tokenTtl: 3, oauthTtl: 3 });
  });
  afterAll(async () => {
    await sim?.stop();
  });

  it('makes ONE token request for 100 concurrent calls after the token expired', async () => {
    const jamf = client(sim.info);
    await jamf.getVersion();
    await sleep(3100);
    await sim.control.resetCounters();
    const versions = await Promise.all(Array.from({ length: 100 }, () => jamf.getVersion()));
    expect(new Set(versions)).toEqual(new Set(['11.25.0-sim']));
    const counters = await sim.control.counters();
    expect(counters.tokenRequests).toBe(1);
    expect(counters.calls['GET /api/v1/jamf-pro-version']).toBe(100);
  });

  it('recovers from 401s (the server expired a token the client thinks fresh) with one refresh', async () => {
    const frozen = Date.now();
    const jamf = client(sim.info, { now: () => frozen });
    await jamf.getVersion();
    await sleep(3100);
    await sim.control.resetCounters();
    expect(await jamf.getVersion()).toBe('11.25.0-sim');
    let counters = await sim.control.counters();
    expect(counters.tokenRequests).toBe(1);
    expect(counters.calls['GET /api/v1/jamf-pro-version']).toBe(2);

    await sleep(3100);
    await sim.control.resetCounters();
    await Promise.all(Array.from({ length: 100 }, () => jamf.getVersion()));
    counters = await sim.control.counters();
    expect(counters.tokenRequests).toBe(1);
    // Only the calls already sent with the refused token (at most the 5 in flight) repeat.
    expect(counters.calls['GET /api/v1/jamf-pro-version']).toBeGreaterThan(100);
    expect(counters.calls['GET /api/v1/jamf-pro-version']).toBeLessThanOrEqual(105);

    // A streamed upload refused with 401 is sent again, whole, with the new token.
    const { id } = await jamf.createPackage({ packageName: 'After401', fileName: 'after401.pkg' });
    const filePath = join(tmp, 'after401.pkg');
    const content = randomBytes(5 * 1024 * 1024);
    writeFileSync(filePath, content);
    await sleep(3100);
    await sim.control.resetCounters();
    expect(await jamf.uploadPackageFile(id, filePath)).toMatchObject({ id, size: content.length });
    counters = await sim.control.counters();
    expect(counters.tokenRequests).toBe(1);
    expect(counters.calls['POST /api/v1/packages/{id}/upload']).toBe(2);
  });
});

describe('servers without JCDS, or not Jamf at all', () => {
  it('probes a server without the JCDS endpoints', async () => {
    const sim = await spawnSimulator({ jcds: false });
    try {
      const jamf = client(sim.info);
      expect(await jamf.probeCapabilities()).toEqual({
        version: '11.25.0-sim',
        jcds: false,
        packageUpload: true,
      });
      expect((await caught(jamf.createJcdsFile())).code).toBe('JAMF_NOT_FOUND');
    } finally {
      await sim.stop();
    }
  });

  it('calls an HTML answer a bad response that points at JAMF_URL', async () => {
    const html = createServer((req, res) => {
      req.resume();
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end(
        '<!DOCTYPE html><html><head><title>Company portal</title></head><body>Sign in</body></html>',
      );
    });
    await listen(html);
    try {
      const jamf = client(fakeInfo(urlOf(html)));
      const err = await caught(jamf.getVersion());
      expect(err.code).toBe('JAMF_BAD_RESPONSE');
      expect(err.message).toContain('answered HTML, not the Jamf Pro API: check JAMF_URL');
      expect(err.message).toContain(new URL(urlOf(html)).host);
      expect(err.message).not.toContain('fake-secret-value');
    } finally {
      await close(html);
    }
  });

  it('calls a closed port unreachable, naming the host', async () => {
    const srv = createServer();
    await listen(srv);
    const url = urlOf(srv);
    await close(srv);
    const jamf = client(fakeInfo(url), { retries: 2 });
    const err = await caught(jamf.getVersion());
    expect(err.code).toBe('JAMF_UNREACHABLE');
    expect(err.retryable).toBe(true);
    expect(err.message).toContain(new URL(url).host);
    expect(err.message).toContain('check JAMF_URL');
    expect(err.message).not.toContain('fake-secret-value');
  });
});

function fakeInfo(jamfUrl: string): SimInfo {
  return { jamfUrl, clientId: 'fake-client', clientSecret: 'fake-secret-value' } as SimInfo;
}

function listen(server: Server): Promise<void> {
  return new Promise(resolve => server.listen(0, '127.0.0.1', () => resolve()));
}

function urlOf(server: Server): string {
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

function close(server: Server): Promise<void> {
  server.closeAllConnections();
  return new Promise(resolve => server.close(() => resolve()));
}
