/**
 * The monitor under attack (issue 13, §5 and the Bull Board part of §7), over real
 * processes: monitor processes (`node worker/monitor/main.ts`) on a real Redis, spoken to
 * over raw HTTP with exactly the headers a browser or an attacker sends, from several
 * loopback source addresses (127.x.y.z: other clients, as far as the monitor can tell).
 *
 * - Another site cannot drive the dashboard: with valid Basic credentials (a browser
 *   sends cached ones with any request), a cross-site `text/plain` or form POST to
 *   Bull Board's add route, a JSON one from a foreign Origin, a bodiless PUT from another
 *   site, a request without Origin: all refused (403), nothing added or paused. The
 *   dashboard's own requests (same origin, JSON or no body) work with --allow-writes.
 * - Read-only unless --allow-writes (or MONITOR_ALLOW_WRITES=1; --read-only wins): every
 *   write answers 405, Bull Board reports readOnlyMode, the page says read-only.
 * - DNS rebinding: a monitor without credentials answers only to a loopback Host.
 * - Failed logins are throttled per address and overall; a request without credentials
 *   is not a failure; a known address keeps working.
 * - /healthz names no host or port, with Redis up or down.
 * - A failed job whose failure reason, stack trace and log lines (and a completed job
 *   whose return value) carry a bearer token, a presigned URL, an x-amz-security-token
 *   header, an AWS4 Credential/Signature header, an STS <SessionToken> and an AWS secret
 *   key: no Bull Board API answer shows any of them.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Worker, type Job, type Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openQueue } from '../../shared/queues/factory.ts';
import { QUEUE_PREFIX } from '../../shared/queues/names.ts';
import { basicAuth, raw, startMonitor, type Monitor } from '../helpers/monitor.ts';
import { startRedis, type RedisServer } from '../helpers/redis.ts';

const USER = 'ops';
const PASSWORD = 'monitor-password-for-the-hostile-suite';
const AUTH = basicAuth(USER, PASSWORD);
const BAD = basicAuth(USER, 'not-the-password');
const EVIL = 'https://evil.example';

let redis: RedisServer;
let downloads: Queue;
/** Credentials, --allow-writes. */
let writable: Monitor;
/** Credentials, no flag: read-only. */
let readOnly: Monitor;
/** No credentials (loopback only), MONITOR_ALLOW_WRITES=1. */
let envWritable: Monitor;
/** MONITOR_ALLOW_WRITES=1 with --read-only. */
let flagWins: Monitor;

const api = (m: Monitor, path: string): string => `${m.dashboard}api/${path}`;
const ADD = 'queues/download/add';
const ownOrigin = (m: Monitor): string => m.url;

async function downloadJobCount(): Promise<number> {
  const counts = await downloads.getJobCounts();
  return Object.values(counts).reduce((a, b) => a + b, 0);
}

/** A job body as Bull Board's "Add job" sends it; delayed, so nothing would run it. */
const addBody = (note: string): string =>
  JSON.stringify({
    name: 'download',
    data: { fileName: `${note}.pkg`, dest: `/tmp/${note}.pkg` },
    options: { delay: 3_600_000 },
  });

beforeAll(async () => {
  redis = await startRedis();
  const connection = new Redis(redis.url, { maxRetriesPerRequest: null });
  // The /healthz test stops Redis for a moment: reconnecting is expected, not news.
  connection.on('error', () => undefined);
  downloads = openQueue('download', connection);
  const env = { REDIS_URL: redis.url, LOG_LEVEL: 'warn' };
  const creds = { ...env, MONITOR_USER: USER, MONITOR_PASSWORD: PASSWORD };
  [writable, readOnly, envWritable, flagWins] = await Promise.all([
    startMonitor(creds, ['--allow-writes']),
    startMonitor(creds),
    startMonitor({ ...env, MONITOR_ALLOW_WRITES: '1' }),
    startMonitor({ ...env, MONITOR_ALLOW_WRITES: '1' }, ['--read-only']),
  ]);
}, 60_000);

afterAll(async () => {
  await Promise.allSettled([writable, readOnly, envWritable, flagWins].map(m => m?.stop()));
  await downloads?.close();
  await redis?.stop();
});

describe('another site cannot drive the dashboard (--allow-writes, valid credentials)', () => {
  it('a cross-site text/plain POST to the add route is refused (403), nothing added', async () => {
    const before = await downloadJobCount();
    const res = await raw(api(writable, ADD), {
      method: 'POST',
      headers: {
        ...AUTH,
        'Content-Type': 'text/plain;charset=UTF-8',
        Origin: EVIL,
        'Sec-Fetch-Site': 'cross-site',
        'Sec-Fetch-Mode': 'no-cors',
      },
      body: addBody('TextPlain'),
    });
    expect(res.status).toBe(403);
    expect(res.json()).toMatchObject({
      error: expect.stringMatching(/cross-site request refused.*Sec-Fetch-Site: cross-site/),
      hint: expect.stringContaining('Origin'),
    });
    expect(await downloadJobCount()).toBe(before);
  });

  it('a cross-site HTML form POST (urlencoded, older browser: Origin only) is refused', async () => {
    const before = await downloadJobCount();
    const res = await raw(api(writable, ADD), {
      method: 'POST',
      headers: {
        ...AUTH,
        'Content-Type': 'application/x-www-form-urlencoded',
        Origin: EVIL,
      },
      body: 'name=download&data=%7B%7D',
    });
    expect(res.status).toBe(403);
    expect((res.json() as { error: string }).error).toContain(`Origin ${EVIL}`);
    expect(await downloadJobCount()).toBe(before);
  });

  it('a JSON POST from a foreign or opaque origin, or from a sibling site, is refused', async () => {
    const before = await downloadJobCount();
    const cases: Array<Record<string, string>> = [
      { Origin: EVIL },
      { Origin: 'null' },
      { Origin: `${EVIL}`, 'Sec-Fetch-Site': 'cross-site' },
      { Origin: 'http://dashboard.127.0.0.1.nip.io', 'Sec-Fetch-Site': 'same-site' },
      // Same host name, another port: another origin.
      { Origin: writable.url.replace(/:\d+$/, ':1') },
    ];
    for (const headers of cases) {
      const res = await raw(api(writable, ADD), {
        method: 'POST',
        headers: { ...AUTH, 'Content-Type': 'application/json', ...headers },
        body: addBody('ForeignJson'),
      });
      expect(res.status, JSON.stringify(headers)).toBe(403);
      expect((res.json() as { error: string }).error).toMatch(/^cross-site request refused/);
    }
    expect(await downloadJobCount()).toBe(before);
  });

  it('a write without Origin or Sec-Fetch-Site is refused: where it comes from is unknown', async () => {
    const before = await downloadJobCount();
    const res = await raw(api(writable, ADD), {
      method: 'POST',
      headers: { ...AUTH, 'Content-Type': 'application/json' },
      body: addBody('NoOrigin'),
    });
    expect(res.status).toBe(403);
    expect((res.json() as { error: string }).error).toContain('no Origin header');
    expect(await downloadJobCount()).toBe(before);
  });

  it('a same-origin body that is not JSON is refused too (the second lock)', async () => {
    const before = await downloadJobCount();
    for (const type of [
      'text/plain',
      'application/x-www-form-urlencoded',
      'multipart/form-data; boundary=x',
    ]) {
      const res = await raw(api(writable, ADD), {
        method: 'POST',
        headers: { ...AUTH, 'Content-Type': type, Origin: ownOrigin(writable) },
        body: addBody('SameOriginText'),
      });
      expect(res.status, type).toBe(403);
      expect((res.json() as { error: string }).error).toContain('is not application/json');
    }
    expect(await downloadJobCount()).toBe(before);
  });

  it('a cross-site bodiless PUT (pause) is refused; the queue keeps running', async () => {
    const res = await raw(api(writable, 'queues/download/pause'), {
      method: 'PUT',
      headers: { ...AUTH, Origin: EVIL, 'Sec-Fetch-Site': 'cross-site' },
    });
    expect(res.status).toBe(403);
    expect(await downloads.isPaused()).toBe(false);
  });

  it("the dashboard's own requests work: same-origin JSON add, bodiless PUTs", async () => {
    const before = await downloadJobCount();
    // Chromium over http://127.0.0.1 (a trustworthy origin) sends Sec-Fetch-Site.
    const viaFetchMetadata = await raw(api(writable, ADD), {
      method: 'POST',
      headers: {
        ...AUTH,
        'Content-Type': 'application/json',
        Origin: ownOrigin(writable),
        'Sec-Fetch-Site': 'same-origin',
      },
      body: addBody('SameOriginOne'),
    });
    expect(viaFetchMetadata.status, viaFetchMetadata.text).toBe(200);
    // A browser that sends only Origin (plain http to another host name).
    const viaOrigin = await raw(api(writable, ADD), {
      method: 'POST',
      headers: {
        ...AUTH,
        'Content-Type': 'application/json; charset=utf-8',
        Origin: ownOrigin(writable),
      },
      body: addBody('SameOriginTwo'),
    });
    expect(viaOrigin.status, viaOrigin.text).toBe(200);
    const added = [viaFetchMetadata, viaOrigin].map(
      r => (r.json() as { job: { id: string } }).job.id,
    );
    expect(await downloadJobCount()).toBe(before + 2);
    for (const id of added)
      expect((await downloads.getJob(id))?.data).toMatchObject({ fileName: expect.any(String) });

    // Bull Board's page sends its actions as PUTs without a body or a Content-Type.
    const pause = await raw(api(writable, 'queues/download/pause'), {
      method: 'PUT',
      headers: { ...AUTH, Origin: ownOrigin(writable), 'Sec-Fetch-Site': 'same-origin' },
    });
    expect(pause.status, pause.text).toBe(200);
    expect(await downloads.isPaused()).toBe(true);
    const resume = await raw(api(writable, 'queues/download/resume'), {
      method: 'PUT',
      headers: { ...AUTH, Origin: ownOrigin(writable) },
    });
    expect(resume.status, resume.text).toBe(200);
    expect(await downloads.isPaused()).toBe(false);
    for (const id of added) await downloads.remove(id);
  });
});

describe('read-only unless --allow-writes', () => {
  it('without the flag every write answers 405, even same-origin JSON; nothing added', async () => {
    const before = await downloadJobCount();
    const add = await raw(api(readOnly, ADD), {
      method: 'POST',
      headers: {
        ...AUTH,
        'Content-Type': 'application/json',
        Origin: ownOrigin(readOnly),
        'Sec-Fetch-Site': 'same-origin',
      },
      body: addBody('ReadOnly'),
    });
    expect(add.status).toBe(405);
    expect(add.headers['allow']).toBe('GET, HEAD, OPTIONS');
    expect(add.json()).toMatchObject({
      error: 'the monitor is read-only',
      hint: expect.stringContaining('--allow-writes'),
    });
    for (const [method, path] of [
      ['PUT', 'queues/download/pause'],
      ['PUT', 'queues/pause'],
      ['PUT', 'queues/download/clean/delayed'],
      ['PATCH', 'queues/download/1/update-data'],
      ['DELETE', 'queues/download'],
    ] as const) {
      const res = await raw(api(readOnly, path), {
        method,
        headers: { ...AUTH, Origin: ownOrigin(readOnly), 'Sec-Fetch-Site': 'same-origin' },
      });
      expect(res.status, `${method} ${path}`).toBe(405);
    }
    expect(await downloadJobCount()).toBe(before);
    expect(await downloads.isPaused()).toBe(false);
  });

  it('Bull Board itself is in readOnlyMode and the page says read-only', async () => {
    const list = await raw(api(readOnly, 'queues'), { headers: AUTH });
    expect(list.status).toBe(200);
    const queues = (list.json() as { queues: Array<{ name: string; readOnlyMode: boolean }> })
      .queues;
    expect(queues.map(q => q.name).sort()).toEqual(['download', 'sync', 'upload', 'upload-part']);
    for (const q of queues) expect(q.readOnlyMode, q.name).toBe(true);
    const page = await raw(readOnly.dashboard, { headers: AUTH });
    expect(page.text).toContain('read-only');
    expect(readOnly.output()).toContain('read-only: --allow-writes');

    const writableList = await raw(api(writable, 'queues'), { headers: AUTH });
    for (const q of (writableList.json() as { queues: Array<{ readOnlyMode: boolean }> }).queues)
      expect(q.readOnlyMode).toBe(false);
  });

  it('MONITOR_ALLOW_WRITES=1 allows writes; --read-only wins over it; both flags is a usage error', async () => {
    const before = await downloadJobCount();
    const add = await raw(api(envWritable, ADD), {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Origin: ownOrigin(envWritable) },
      body: addBody('EnvWritable'),
    });
    expect(add.status, add.text).toBe(200);
    expect(await downloadJobCount()).toBe(before + 1);
    await downloads.remove((add.json() as { job: { id: string } }).job.id);

    const refused = await raw(api(flagWins, ADD), {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Origin: ownOrigin(flagWins) },
      body: addBody('FlagWins'),
    });
    expect(refused.status).toBe(405);
    expect(await downloadJobCount()).toBe(before);

    await expect(
      startMonitor({ REDIS_URL: redis.url }, ['--allow-writes', '--read-only']),
    ).rejects.toThrow(/exited \(2\)[\s\S]*--read-only and --allow-writes contradict each other/);
  });

  it('without credentials, only a loopback Host is served (DNS rebinding)', async () => {
    const port = new URL(envWritable.url).port;
    const ok = await raw(api(envWritable, 'queues'), { headers: { Host: `localhost:${port}` } });
    expect(ok.status).toBe(200);
    // A page on a name that resolves to 127.0.0.1: same-origin in the browser's eyes.
    const rebound = `rebind.evil.example:${port}`;
    const read = await raw(api(envWritable, 'queues'), { headers: { Host: rebound } });
    expect(read.status).toBe(421);
    expect(read.text).not.toContain('download');
    const before = await downloadJobCount();
    const add = await raw(api(envWritable, ADD), {
      method: 'POST',
      headers: {
        Host: rebound,
        Origin: `http://${rebound}`,
        'Sec-Fetch-Site': 'same-origin',
        'Content-Type': 'application/json',
      },
      body: addBody('Rebound'),
    });
    expect(add.status).toBe(421);
    expect(add.json()).toMatchObject({ hint: expect.stringContaining('MONITOR_USER') });
    expect(await downloadJobCount()).toBe(before);
  });
});

/** Secret values, each in a form the redaction must know, and a marker that must show. */
const SECRETS = {
  bearer: 'eyJhbGciOiJSUzI1NiJ9.bearerPayloadSecret.bearerSignatureSecret',
  presignedSignature: 'a1b2c3d4e5f60718293a4b5c6d7e8f90presignedsig',
  presignedToken: 'IQoJb3JpZ2luX2VjEPresignedSessionToken',
  presignedKeyId: 'ASIAPRESIGNEDKEY2345',
  headerToken: 'IQoJb3JpZ2luX2VjEHeaderSessionTokenValue',
  credentialKeyId: 'AKIACREDENTIALKEY234',
  sigv4Signature: 'f00dfacefeedbeefsigv4headersignature0123',
  stsToken: 'FwoGZXIvYXdzEStsXmlSessionTokenValue',
  awsSecret: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYawsSecretKey',
  awsSecretText: 'k9Zq/ObjectTextSecretAccessKeyValue0123',
};

const SECRET_LINES = [
  `Authorization: Bearer ${SECRETS.bearer}`,
  `GET https://jcds.example/bucket/Probe.pkg?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=${SECRETS.presignedKeyId}%2F20260101%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Signature=${SECRETS.presignedSignature}&X-Amz-Security-Token=${SECRETS.presignedToken}`,
  `x-amz-security-token: ${SECRETS.headerToken}`,
  `Authorization: AWS4-HMAC-SHA256 Credential=${SECRETS.credentialKeyId}/20260101/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-date, Signature=${SECRETS.sigv4Signature}`,
  `<Credentials><SessionToken>${SECRETS.stsToken}</SessionToken></Credentials>`,
  `{"accessKeyId":"x","secretAccessKey":"${SECRETS.awsSecret}"}`,
  `{ secretAccessKey: '${SECRETS.awsSecretText}' }`,
];

function expectNoSecret(where: string, text: string): void {
  for (const [form, value] of Object.entries(SECRETS))
    expect(text.includes(value), `${where} shows the ${form}`).toBe(false);
}

describe('Bull Board shows no secret in failure reasons, stack traces, logs or return values', () => {
  let failedId = '';
  let completedId = '';

  beforeAll(async () => {
    const connection = new Redis(redis.url, { maxRetriesPerRequest: null });
    const worker = new Worker(
      'download',
      async (job: Job) => {
        for (const [i, line] of SECRET_LINES.entries())
          await job.log(`probe log ${i + 1}: ${line}`);
        if (job.data.fail) {
          const err = new Error(`probe failure:\n${SECRET_LINES.join('\n')}`);
          err.stack = `Error: probe failure\n${SECRET_LINES.map(l => `    at probe (${l})`).join('\n')}\n  ${SECRET_LINES.join('\n  ')}`;
          throw err;
        }
        return { fileName: 'Probe.pkg', note: SECRET_LINES.join(' | '), token: SECRETS.bearer };
      },
      { connection, prefix: QUEUE_PREFIX, autorun: true },
    );
    try {
      const failed = await downloads.add(
        'download',
        { fileName: 'Failing Probe.pkg', dest: '/tmp/Failing Probe.pkg', fail: true },
        // A field no formatter or adapter method reaches (Bull Board's diagnostics): only
        // the redaction of the API's whole answer covers it.
        { attempts: 1, deduplication: { id: `dedup ${SECRET_LINES[1]}` } },
      );
      const completed = await downloads.add(
        'download',
        { fileName: 'Completing Probe.pkg', dest: '/tmp/Completing Probe.pkg' },
        { attempts: 1 },
      );
      failedId = failed.id!;
      completedId = completed.id!;
      for (let i = 0; i < 400; i++) {
        const states = await Promise.all([
          downloads.getJobState(failedId),
          downloads.getJobState(completedId),
        ]);
        if (states[0] === 'failed' && states[1] === 'completed') break;
        await sleep(50);
      }
      expect(await downloads.getJobState(failedId)).toBe('failed');
      expect(await downloads.getJobState(completedId)).toBe('completed');
      // What Redis holds is the raw material: the secrets are there to be hidden.
      const job = (await downloads.getJob(failedId))!;
      expect(job.failedReason).toContain(SECRETS.headerToken);
      expect((job.stacktrace ?? []).join('\n')).toContain(SECRETS.stsToken);
      expect((await downloads.getJobLogs(failedId)).logs.join('\n')).toContain(SECRETS.bearer);
    } finally {
      await worker.close();
      connection.disconnect();
    }
  }, 30_000);

  it('the job list, the job, its logs and its flow: no secret, the failure and the logs still there', async () => {
    const get = async (path: string): Promise<string> => {
      const res = await raw(api(writable, path), { headers: AUTH });
      expect(res.status, path).toBe(200);
      return res.text;
    };
    const lists = [
      await get('queues?activeQueue=download&status=failed&page=1&jobsPerPage=10'),
      await get('queues?activeQueue=download&status=completed&page=1&jobsPerPage=10'),
      await get('queues?activeQueue=download&status=latest&page=1&jobsPerPage=10'),
    ];
    const job = await get(`queues/download/${failedId}`);
    const logs = await get(`queues/download/${failedId}/logs`);
    const flow = await get(`queues/download/${failedId}/flow`);
    const done = await get(`queues/download/${completedId}`);
    const doneLogs = await get(`queues/download/${completedId}/logs`);
    for (const [where, text] of Object.entries({
      'the failed list': lists[0]!,
      'the completed list': lists[1]!,
      'the latest list': lists[2]!,
      'the failed job': job,
      'the failed job logs': logs,
      'the flow': flow,
      'the completed job': done,
      'the completed job logs': doneLogs,
    }))
      expectNoSecret(where, text);

    // Not vacuous: the failure, its lines and the logs are shown, redacted.
    const shown = JSON.parse(job) as { job: { failedReason: string; stacktrace: string[] } };
    expect(shown.job.failedReason).toContain('probe failure');
    expect(shown.job.failedReason).toContain('x-amz-security-token: [REDACTED]');
    expect(shown.job.failedReason).toContain('<SessionToken>[REDACTED]</SessionToken>');
    expect(shown.job.failedReason).toMatch(/Authorization: (Bearer )?\[REDACTED\]/);
    const lines = JSON.parse(logs) as string[];
    expect(lines).toHaveLength(SECRET_LINES.length);
    expect(lines[0]).toMatch(/^probe log 1: Authorization: .*\[REDACTED\]/);
    expect(lines[2]).toBe('probe log 3: x-amz-security-token: [REDACTED]');
    const listed = (
      JSON.parse(lists[0]!) as {
        queues: Array<{ name: string; jobs: Array<{ id: string; deduplicationId?: string }> }>;
      }
    ).queues.find(q => q.name === 'download')!.jobs;
    expect(listed.map(j => j.id)).toEqual([failedId]);
    expect(listed[0]!.deduplicationId).toMatch(
      /^dedup GET https:\/\/jcds\.example\/.*\[REDACTED\]/,
    );
    const returned = JSON.parse(done) as { job: { returnValue: Record<string, string> } };
    expect(returned.job.returnValue['fileName']).toBe('Probe.pkg');
    expect(returned.job.returnValue['token']).toBe('[REDACTED]');
  });

  it('the same on the read-only monitor', async () => {
    for (const path of [`queues/download/${failedId}`, `queues/download/${failedId}/logs`]) {
      const res = await raw(api(readOnly, path), { headers: AUTH });
      expect(res.status).toBe(200);
      expect(res.text).toContain('[REDACTED]');
      expectNoSecret(`the read-only monitor's ${path}`, res.text);
    }
  });
});

describe('failed logins are throttled', () => {
  it('per address: the 6th wrong password gets 429 with Retry-After, the right one too; another address is not affected', async () => {
    const url = api(readOnly, 'queues');
    for (let i = 1; i <= 5; i++) {
      const res = await raw(url, { headers: BAD, from: '127.0.0.3' });
      expect(res.status, `wrong password #${i}`).toBe(401);
    }
    const sixth = await raw(url, { headers: BAD, from: '127.0.0.3' });
    expect(sixth.status).toBe(429);
    const retryAfter = Number(sixth.headers['retry-after']);
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(300); // the 5-minute window
    expect(sixth.json()).toMatchObject({ error: 'too many failed logins' });
    // Locked out: a right password from there is not even looked at.
    expect((await raw(url, { headers: AUTH, from: '127.0.0.3' })).status).toBe(429);
    // Another address logs in.
    expect((await raw(url, { headers: AUTH, from: '127.0.0.4' })).status).toBe(200);
    // Requests without credentials (a browser's first request) are not failures.
    for (let i = 0; i < 10; i++) expect((await raw(url, { from: '127.0.0.5' })).status).toBe(401);
    expect((await raw(url, { headers: AUTH, from: '127.0.0.5' })).status).toBe(200);
  });

  it('overall: after 100 failures from many addresses, only addresses that logged in get in', async () => {
    // A monitor of its own: its overall count starts at 0.
    const m = await startMonitor({
      REDIS_URL: redis.url,
      LOG_LEVEL: 'warn',
      MONITOR_USER: USER,
      MONITOR_PASSWORD: PASSWORD,
    });
    try {
      const url = api(m, 'queues');
      // The operator logs in before the attack.
      expect((await raw(url, { headers: AUTH, from: '127.0.0.4' })).status).toBe(200);
      // 20 addresses × 4 wrong passwords (each under its own limit of 5), then 20 more
      // failures: the 100th is the overall limit.
      for (let a = 1; a <= 20; a++)
        for (let i = 0; i < 4; i++) {
          const res = await raw(url, { headers: BAD, from: `127.0.1.${a}` });
          expect(res.status, `127.0.1.${a} #${i + 1}`).toBe(401);
        }
      for (let a = 1; a <= 20; a++) {
        // Until the 100th failure, an unknown address is still let in to try.
        expect((await raw(url, { headers: BAD, from: `127.0.3.${a}` })).status).toBe(401);
      }
      const fresh = await raw(url, { headers: AUTH, from: '127.0.2.1' });
      expect(fresh.status).toBe(429);
      const retryAfter = Number(fresh.headers['retry-after']);
      expect(retryAfter).toBeGreaterThanOrEqual(1);
      expect(retryAfter).toBeLessThanOrEqual(300);
      // The operator's address, which logged in before, keeps the dashboard.
      expect((await raw(url, { headers: AUTH, from: '127.0.0.4' })).status).toBe(200);
      // Another monitor counts its own failures.
      expect(
        (await raw(api(writable, 'queues'), { headers: AUTH, from: '127.0.2.1' })).status,
      ).toBe(200);
    } finally {
      await m.stop();
    }
  });
});

describe('/healthz names no host or port', () => {
  const hostsAndPorts = (): string[] => [
    '127.0.0.1',
    'localhost',
    'redis://',
    String(redis.port),
    new URL(readOnly.url).port,
  ];

  it('with Redis up', async () => {
    const res = await raw(`${readOnly.url}/healthz`);
    expect(res.status).toBe(200);
    expect(res.json()).toMatchObject({ status: 'ok', redis: 'up' });
    for (const s of hostsAndPorts()) expect(res.text, s).not.toContain(s);
  });

  it('with Redis down: 503, and still no host or port (the log has them)', async () => {
    await redis.kill('SIGKILL');
    try {
      const res = await raw(`${readOnly.url}/healthz`);
      expect(res.status).toBe(503);
      expect(res.json()).toMatchObject({ status: 'error', redis: 'down' });
      for (const s of hostsAndPorts()) expect(res.text, s).not.toContain(s);
    } finally {
      await redis.start();
    }
  });
});
