/**
 * The monitor in a real browser: headless Chromium (Debian's `chromium` package) driven by
 * playwright-core, against a monitor process serving a fleet that has just published a
 * multipart upload. In the page: jobs named after what they move, an upload whose part
 * failed for good (the simulator's `failPartNumbers`) shown with its code and advice first
 * and "1 failed" child, retried with the page's Retry button once the fault is cleared:
 * it resumes and only that part is sent again (the monitor runs with --allow-writes);
 * read-only mode (the default) shows no action buttons.
 * Also checks, over plain HTTP, that nothing is served without the MONITOR_* credentials
 * except /healthz, that job data is redacted, /metrics, read-only mode and /healthz with
 * Redis down.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { PartResult } from '../../shared/queues/jobs.ts';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Producer } from '../../producer/producer.ts';
import { MiB } from '../../shared/units.ts';
import { ROOT, makeFile, startFleet, waitForJob, type Fleet } from '../helpers/fleet.ts';
import { basicAuth as basic, startMonitor, type Monitor } from '../helpers/monitor.ts';

const CHROMIUM = '/usr/bin/chromium';
const USER = 'ops';
const PASSWORD = 'correct horse battery staple';
const ARTIFACTS = join(ROOT, 'artifacts');

/**
 * The job action button whose tooltip reads `title` (Bull Board draws the actions as
 * icon buttons with a tooltip), or undefined when the page shows none.
 */
async function jobAction(page: Page, title: string) {
  const buttons = page.locator('[data-base-ui-tooltip-trigger] > button');
  const n = await buttons.count();
  for (let i = 0; i < n; i++) {
    const button = buttons.nth(i);
    await button.hover();
    const tip = page
      .locator('[data-side][data-open]')
      .filter({ hasText: new RegExp(`^${title}$`) });
    const shown = await tip
      .first()
      .waitFor({ state: 'visible', timeout: 1_500 })
      .then(() => true)
      .catch(() => false);
    if (shown) return button;
  }
  return undefined;
}

const AUTH = basic(USER, PASSWORD);

let fleet: Fleet;
let monitor: Monitor;
let readOnly: Monitor;
/** No credentials (loopback only), --allow-writes: the cross-site test's target. */
let open: Monitor;
let browser: BrowserContext | undefined;
let profileDir = '';
let uploadJobId = '';
const SECRET_JOB_ID = 'redaction-probe';

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `${CHROMIUM} is missing: the monitor browser test needs Debian's chromium. Install it with \`apt-get install -y chromium\` (run \`apt-get update\` first if needed).`,
    );
  }
  fleet = await startFleet({
    env: {
      JCDS_PART_SIZE: '8MiB',
      JCDS_SPLIT_THRESHOLD: '16MiB',
      JCDS_TRANSPORT: 's3',
      // A part that fails (the retry test's fault) fails for good quickly.
      JCDS_PART_ATTEMPTS: '2',
      JCDS_RETRY_DELAY: '100',
    },
  });
  await fleet.startWorker();
  const producer = await Producer.connect({ redisUrl: fleet.redis.url });
  try {
    const f = await makeFile(fleet.dir, 'Browser Suite.pkg', 20 * MiB);
    uploadJobId = (await producer.upload({ path: f.path })).jobId;
    const job = await waitForJob(fleet.queue('upload'), uploadJobId);
    expect(job.failedReason).toBeUndefined();
  } finally {
    await producer.close();
  }
  // A job whose data carries things that look like secrets (the product never puts any
  // there); delayed an hour so no worker touches it during the test.
  await fleet.queue('download').add(
    'download',
    {
      fileName: 'Probe.pkg',
      dest: '/tmp/Probe.pkg',
      password: 'hunter2-probe-secret',
      note: 'Authorization: Bearer abcdefghijklmnopqrstuvwxyz0123',
    },
    { jobId: SECRET_JOB_ID, delay: 3_600_000 },
  );
  // The dashboard's Retry needs --allow-writes; without it the monitor is read-only.
  monitor = await startMonitor({ ...fleet.env, MONITOR_USER: USER, MONITOR_PASSWORD: PASSWORD }, [
    '--allow-writes',
  ]);
  readOnly = await startMonitor(fleet.env);
  open = await startMonitor(fleet.env, ['--allow-writes']);
});

afterAll(async () => {
  await browser?.close().catch(() => undefined);
  if (profileDir) rmSync(profileDir, { recursive: true, force: true });
  await monitor?.stop();
  await readOnly?.stop();
  await open?.stop();
  await fleet?.close();
});

describe('monitor access control', () => {
  it('serves nothing but /healthz without credentials (dashboard, static assets, API, metrics)', async () => {
    const health = await fetch(`${monitor.url}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({
      status: 'ok',
      redis: 'up',
      maxmemoryPolicy: 'noeviction',
      evictionSafe: true,
      workers: { healthy: expect.any(Number), unhealthy: 0 },
    });

    const page = await fetch(monitor.dashboard, { headers: AUTH });
    expect(page.status).toBe(200);
    const html = await page.text();
    const asset = /(?:src|href)="((?:[^"]*\/)?static\/[^"]+\.(?:js|css))"/.exec(html)?.[1];
    expect(asset, 'the dashboard page references a static asset').toBeDefined();
    const assetUrl = new URL(asset!, monitor.dashboard).toString();
    expect((await fetch(assetUrl, { headers: AUTH })).status).toBe(200);

    for (const path of [
      '/',
      '/queues/',
      '/queues/queue/upload',
      '/queues/api/queues',
      '/metrics',
    ]) {
      const res = await fetch(`${monitor.url}${path}`, { redirect: 'manual' });
      expect(res.status, path).toBe(401);
      expect(res.headers.get('www-authenticate')).toMatch(/^Basic realm=/);
    }
    expect((await fetch(assetUrl)).status).toBe(401);
    const wrong = await fetch(monitor.dashboard, { headers: basic(USER, 'wrong password') });
    expect(wrong.status).toBe(401);
    const wrongUser = await fetch(monitor.dashboard, { headers: basic('root', PASSWORD) });
    expect(wrongUser.status).toBe(401);
  });

  it('redacts secret-looking job data in the API the dashboard uses', async () => {
    const res = await fetch(`${monitor.dashboard}api/queues/download/${SECRET_JOB_ID}`, {
      headers: AUTH,
    });
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(text).toContain('Probe.pkg');
    expect(text).toContain('[REDACTED]');
    expect(text).not.toContain('hunter2-probe-secret');
    expect(text).not.toContain('abcdefghijklmnopqrstuvwxyz0123');
  });

  it('read-only mode: views work, every write answers 405', async () => {
    const list = await fetch(`${readOnly.dashboard}api/queues`);
    expect(list.status).toBe(200);
    const retry = await fetch(`${readOnly.dashboard}api/queues/upload/retry/failed`, {
      method: 'PUT',
    });
    expect(retry.status).toBe(405);
    const clean = await fetch(`${readOnly.dashboard}api/queues/download/${SECRET_JOB_ID}/clean`, {
      method: 'PUT',
    });
    expect(clean.status).toBe(405);
    expect(await fleet.queue('download').getJob(SECRET_JOB_ID)).toBeDefined();
  });
});

describe('monitor in Chromium', () => {
  it('logs in with Basic auth, shows every queue and the upload with its part children; screenshot', async () => {
    profileDir = mkdtempSync(join(tmpdir(), 'jcds-chromium-'));
    browser = await chromium.launchPersistentContext(profileDir, {
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
      httpCredentials: { username: USER, password: PASSWORD },
      viewport: { width: 1400, height: 1000 },
    });
    // Loopback only: anything else the page asks for (a web font) is refused.
    const external: string[] = [];
    await browser.route(/^(?!https?:\/\/127\.0\.0\.1[:/])[a-z]+:/, async route => {
      external.push(route.request().url());
      await route.abort();
    });
    const page = browser.pages()[0] ?? (await browser.newPage());

    const home = await page.goto(monitor.url);
    expect(home?.status()).toBe(200);
    for (const q of ['upload', 'upload-part', 'download', 'sync']) {
      await expect
        .poll(() => page.getByRole('link', { name: q, exact: true }).count(), { timeout: 15_000 })
        .toBeGreaterThan(0);
    }

    await page.goto(`${monitor.dashboard}queue/upload?status=completed`);
    await expect
      .poll(() => page.locator('body').innerText(), { timeout: 15_000 })
      .toContain('Browser Suite.pkg');

    await page.goto(`${monitor.dashboard}queue/upload/${uploadJobId}`);
    await expect.poll(() => page.getByText('Job flow').count(), { timeout: 15_000 }).toBe(1);
    for (const child of ['p1', 'p2', 'p3']) {
      await expect
        .poll(() => page.getByText(`${uploadJobId}-${child}`, { exact: true }).count(), {
          timeout: 15_000,
        })
        .toBeGreaterThan(0);
    }
    const body = await page.locator('body').innerText();
    expect(body).toContain('3 done');
    expect(body).toContain('upload-part');
    // The monitor's Content-Security-Policy keeps the page from asking any other origin.
    expect(external).toEqual([]);

    mkdirSync(ARTIFACTS, { recursive: true });
    const shot = join(ARTIFACTS, 'monitor-upload-flow.png');
    rmSync(shot, { force: true });
    await page.screenshot({ path: shot, fullPage: true });
    expect(existsSync(shot)).toBe(true);
    const png = readFileSync(shot);
    expect(png.subarray(0, 8)).toEqual(
      Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    );
    expect(png.length).toBeGreaterThan(10_000);

    // The job page of the probe shows the redacted data, never the secret.
    await page.goto(`${monitor.dashboard}queue/download/${SECRET_JOB_ID}`);
    await expect
      .poll(() => page.locator('body').innerText(), { timeout: 15_000 })
      .toContain('[REDACTED]');
    expect(await page.content()).not.toContain('hunter2-probe-secret');
  });
});

describe('a failed upload in Chromium: names, the failure, Retry, read-only', () => {
  let page: Page;
  let failedId = '';
  let partsBefore: number[] = [];

  it('names jobs after what they move, on cards and in the flow', async () => {
    page = await browser!.newPage();
    await page.goto(`${monitor.dashboard}queue/upload?status=completed`);
    await expect
      .poll(() => page.locator('body').innerText(), { timeout: 15_000 })
      .toContain('upload Browser Suite.pkg · 20.0 MiB');
    await page.goto(`${monitor.dashboard}queue/upload-part?status=completed`);
    await expect
      .poll(() => page.locator('body').innerText(), { timeout: 15_000 })
      .toContain('part 1/3 of Browser Suite.pkg · 8.0 MiB');
    const body = await page.locator('body').innerText();
    expect(body).toContain('part 3/3 of Browser Suite.pkg · 4.0 MiB');
    expect(body).toContain('hash of Browser Suite.pkg');
    await page.goto(`${monitor.dashboard}queue/upload/${uploadJobId}`);
    await expect
      .poll(() => page.getByText('part 2/3 of Browser Suite.pkg', { exact: true }).count(), {
        timeout: 15_000,
      })
      .toBeGreaterThan(0);
    // A step job restarts itself after waiting for its children: no "N started" badge.
    expect(await page.locator('body').innerText()).not.toMatch(/\d+ started/);
  });

  it('shows a part that failed for good: code and advice first, no stack paths, "1 failed"', async () => {
    await fleet.sim.control.setFaults({ failPartNumbers: [2] });
    const producer = await Producer.connect({ redisUrl: fleet.redis.url });
    try {
      const f = await makeFile(fleet.dir, 'Retry Me.pkg', 24 * MiB);
      failedId = (await producer.upload({ path: f.path })).jobId;
    } finally {
      await producer.close();
    }
    const job = await waitForJob(fleet.queue('upload'), failedId, 60_000);
    expect(await job.getState()).toBe('failed');
    expect(job.failedReason).toMatch(/UploadPart 2 of Retry Me\.pkg/);

    await page.goto(`${monitor.dashboard}queue/upload/${failedId}`);
    await expect.poll(() => page.getByText('Job flow').count(), { timeout: 15_000 }).toBe(1);
    await expect
      .poll(() => page.locator('body').innerText(), { timeout: 15_000 })
      .toContain('part 2/3 of Retry Me.pkg');
    const body = await page.locator('body').innerText();
    expect(body).toContain('upload Retry Me.pkg · 16.0 MiB of 24.0 MiB (66%)');
    // The Error tab comes first for a failed job: the code, then what to do.
    expect(body).toMatch(
      new RegExp(
        `\\[S3_ERROR\\] What to do: Fix the cause, then Retry \\(or \`jcds retry ${failedId}\`\\)`,
      ),
    );
    expect(body).toContain('S3 refused UploadPart 2 of Retry Me.pkg');
    expect(body).not.toContain('file://');
    expect(body).not.toMatch(/\bat (async )?\w+.*\.ts:\d+/);
    // The part that failed for good counts as failed, not "ignored".
    expect(body).toContain('1 failed');
    expect(body).not.toContain('ignored');
    expect(body).not.toMatch(/\d+ started/);
    mkdirSync(ARTIFACTS, { recursive: true });
    for (const shot of [
      join(ARTIFACTS, 'monitor-failed-upload.png'),
      '/tmp/jcds-dashboard-failed-upload.png',
    ])
      await page.screenshot({ path: shot, fullPage: true });

    // The part's own card says to retry its upload.
    await page.goto(`${monitor.dashboard}queue/upload-part/${failedId}-p2`);
    await expect
      .poll(() => page.locator('body').innerText(), { timeout: 15_000 })
      .toContain(`Retry its upload (job ${failedId} in the upload queue`);
  });

  it('read-only mode: the same failed job shows no action buttons', async () => {
    const ro = await browser!.newPage();
    try {
      await ro.goto(`${readOnly.dashboard}queue/upload/${failedId}`);
      await expect
        .poll(() => ro.locator('body').innerText(), { timeout: 15_000 })
        .toContain('upload Retry Me.pkg');
      await expect.poll(() => ro.getByText('Job flow').count(), { timeout: 15_000 }).toBe(1);
      for (const action of ['Retry', 'Duplicate', 'Update Data', 'Clean'])
        expect(await jobAction(ro, action), action).toBeUndefined();
      expect(await ro.locator('body').innerText()).toMatch(/read-only/i);
      await ro.goto(`${readOnly.dashboard}queue/upload?status=failed`);
      await expect
        .poll(() => ro.locator('body').innerText(), { timeout: 15_000 })
        .toContain('upload Retry Me.pkg');
      const list = await ro.locator('body').innerText();
      expect(list).not.toContain('Retry all');
      expect(list).not.toContain('Clean all');
    } finally {
      await ro.close();
    }
    // The writable monitor shows them for the same job.
    await page.goto(`${monitor.dashboard}queue/upload?status=failed`);
    await expect
      .poll(() => page.locator('body').innerText(), { timeout: 15_000 })
      .toContain('Retry all');
  });

  it('Retry in the page resumes the upload: only the part that failed is sent again', async () => {
    // The parts that were in flight when the upload failed finish meanwhile: the parts
    // done are read once the part queue is idle.
    await expect
      .poll(
        async () =>
          Object.values(
            await fleet.queue('upload-part').getJobCounts('active', 'waiting', 'delayed'),
          ).reduce((a, b) => a + b, 0),
        { timeout: 30_000 },
      )
      .toBe(0);
    const failed = (await fleet.queue('upload').getJob(failedId))!;
    partsBefore = Object.values(await failed.getChildrenValues<PartResult>())
      .map(p => p.partNumber)
      .sort((a, b) => a - b);
    expect(partsBefore).not.toContain(2);
    await fleet.sim.control.clearFaults();
    await fleet.sim.control.resetCounters();
    await page.goto(`${monitor.dashboard}queue/upload/${failedId}`);
    await expect.poll(() => page.getByText('Job flow').count(), { timeout: 15_000 }).toBe(1);
    const retry = await jobAction(page, 'Retry');
    expect(retry, 'a Retry button on the failed job').toBeDefined();
    await retry!.click();
    const sent = page.waitForRequest(
      r => r.method() === 'PUT' && r.url().endsWith(`/upload/${failedId}/retry`),
    );
    await page.getByRole('alertdialog').getByRole('button', { name: 'Confirm' }).click();
    // What the page sends is what the monitor's write guard lets through (guard.ts): a
    // same-origin PUT without a body or a Content-Type.
    const request = await sent;
    const headers = await request.allHeaders();
    expect(headers['origin']).toBe(monitor.url);
    expect(headers['content-type']).toBeUndefined();
    expect(request.postData()).toBeNull();
    expect((await request.response())?.ok()).toBe(true);
    const uploads = fleet.queue('upload');
    await expect.poll(() => uploads.getJobState(failedId), { timeout: 10_000 }).not.toBe('failed');
    const job = await waitForJob(uploads, failedId, 60_000);
    expect(job.failedReason, job.failedReason).toBeUndefined();
    expect(await job.getState()).toBe('completed');
    const c = await fleet.sim.control.counters();
    const missing = [1, 2, 3].filter(n => !partsBefore.includes(n));
    expect(
      Object.keys(c.uploadPartByNumber)
        .map(Number)
        .sort((a, b) => a - b),
    ).toEqual(missing);
    for (const n of missing) expect(c.uploadPartByNumber[String(n)], `part ${n}`).toBe(1);
    expect(c.calls['CreateMultipartUpload'] ?? 0).toBe(0);
    expect(await fleet.sim.control.listMultipartUploads()).toEqual([]);

    await page.goto(`${monitor.dashboard}queue/upload?status=completed`);
    await expect
      .poll(() => page.locator('body').innerText(), { timeout: 15_000 })
      .toContain('upload Retry Me.pkg · 24.0 MiB');
    const body = await page.locator('body').innerText();
    expect(body).toContain('upload Browser Suite.pkg · 20.0 MiB');
    for (const shot of [
      join(ARTIFACTS, 'monitor-named-jobs.png'),
      '/tmp/jcds-dashboard-named-jobs.png',
    ])
      await page.screenshot({ path: shot, fullPage: true });
    await page.goto(`${monitor.dashboard}queue/upload/${failedId}`);
    await expect
      .poll(() => page.locator('body').innerText(), { timeout: 15_000 })
      .toContain('3 done');
    expect(await page.locator('body').innerText()).not.toContain('1 failed');
  });
});

describe('another site in the same browser cannot drive the dashboard', () => {
  /**
   * Chromium itself keeps a public page off loopback (Private Network Access) and does not
   * send cached Basic credentials with cross-site requests (its auth cache is partitioned
   * by top-level site), so the page that tries is another loopback origin (a local web
   * app, 127.0.0.2) and the target is a monitor that needs no credentials (loopback only,
   * as `jcds monitor` runs by default) with --allow-writes: nothing in the browser stops
   * these requests; only the monitor's write guard does.
   */
  it('a text/plain form POST and fetch from another origin reach the monitor and add nothing', async () => {
    const target = `${open.dashboard}api/queues/download/add`;
    const body = JSON.stringify({
      name: 'download',
      data: { fileName: 'Evil.pkg', dest: '/tmp/Evil.pkg' },
    });
    // A text/plain form posts `name=value`: split the JSON so the body is the JSON itself.
    const html = `<!doctype html><body>
<form id="f" method="POST" action="${target}" enctype="text/plain" target="sink">
<input name='${body.slice(0, -2)}' value='"}'></form><iframe name="sink"></iframe>
<script>
fetch(${JSON.stringify(target)}, { method: 'POST', mode: 'no-cors', credentials: 'include',
  headers: { 'Content-Type': 'text/plain' }, body: ${JSON.stringify(body)} })
  .then(() => document.getElementById('f').submit());
</script></body>`;
    const attacker = createServer((_req, res) => {
      res.writeHead(200, { 'Content-Type': 'text/html' }).end(html);
    });
    await new Promise<void>(resolve => attacker.listen(0, '127.0.0.2', () => resolve()));
    const downloads = fleet.queue('download');
    const count = async (): Promise<number> =>
      Object.values(await downloads.getJobCounts()).reduce((a, b) => a + b, 0);
    const before = await count();
    const page = await browser!.newPage();
    try {
      // The context lets only 127.0.0.1 through; this page may load the attacker's origin.
      await page.route(/^http:\/\/127\.0\.0\.2:/, route => route.continue());
      const answers: Array<{ status: number; type: string; origin: string }> = [];
      page.on('response', r => {
        if (!r.url().startsWith(target)) return;
        void (async () => {
          const h = await r.request().allHeaders();
          answers.push({
            status: r.status(),
            type: h['content-type'] ?? '',
            origin: h['origin'] ?? '',
          });
        })();
      });
      await page.goto(`http://127.0.0.2:${(attacker.address() as AddressInfo).port}/`);
      // Both requests reached the monitor (the browser did not stop them) and were refused.
      await expect.poll(() => answers.length, { timeout: 15_000 }).toBe(2);
      for (const a of answers) {
        expect(a.status).toBe(403);
        expect(a.type).toMatch(/^text\/plain/);
        expect(a.origin).toMatch(/^http:\/\/127\.0\.0\.2:/);
      }
      // The monitor logs each (the answers are opaque to the page): Chromium sends
      // Sec-Fetch-Site to a trustworthy origin such as 127.0.0.1.
      const refusals = (): number =>
        open
          .output()
          .split('\n')
          .filter(l => l.includes('it was sent by another site (Sec-Fetch-Site: cross-site'))
          .length;
      await expect.poll(refusals, { timeout: 5_000 }).toBe(2);
    } finally {
      await page.close();
      attacker.close();
    }
    expect(await count()).toBe(before);
  });
});

describe('metrics and health', () => {
  it("/metrics exports job counts and the workers' counters from Redis", async () => {
    const res = await fetch(`${monitor.url}/metrics`, { headers: AUTH });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
    const text = await res.text();
    expect(text).toContain('jcds_redis_up 1');
    // Two uploads of 3 parts and a hash job each: the first, and the one retried above.
    expect(text).toMatch(/^jcds_jobs\{queue="upload",state="completed"\} 2$/m);
    expect(text).toMatch(/^jcds_jobs\{queue="upload-part",state="completed"\} 8$/m);
    expect(text).toMatch(/^jcds_jobs\{queue="upload-part",state="failed"\} 0$/m);
    expect(text).toMatch(/^jcds_jobs\{queue="download",state="delayed"\} 1$/m);
    const uploaded = Number(/^jcds_bytes_uploaded_total (\d+)$/m.exec(text)?.[1]);
    expect(uploaded).toBeGreaterThanOrEqual(20 * MiB);
    expect(text).toMatch(
      /^jcds_upload_duration_seconds_count\{transport="s3",outcome="created"\} 2$/m,
    );
    expect(text).toMatch(
      /^jcds_upload_duration_seconds_bucket\{transport="s3",outcome="created",le="\+Inf"\} 2$/m,
    );
    expect(text).toContain('# TYPE jcds_credential_renewals_total counter');
    expect(text).toContain('# TYPE jcds_job_failures_total counter');
  });

  it('/healthz answers 503 when Redis is down, naming no host or port; /metrics says jcds_redis_up 0', async () => {
    await fleet.redis.kill('SIGKILL');
    try {
      const res = await fetch(`${monitor.url}/healthz`);
      expect(res.status).toBe(503);
      const body = (await res.json()) as Record<string, string>;
      expect(body['status']).toBe('error');
      expect(body['redis']).toBe('down');
      // /healthz needs no credentials: it names no host or port (the monitor's log does).
      expect(JSON.stringify(body)).not.toContain(String(fleet.redis.port));
      expect(JSON.stringify(body)).not.toContain('127.0.0.1');
      const metrics = await fetch(`${monitor.url}/metrics`, { headers: AUTH });
      expect(metrics.status).toBe(200);
      expect(await metrics.text()).toContain('jcds_redis_up 0');
    } finally {
      await fleet.redis.start();
    }
    await expect
      .poll(async () => (await fetch(`${monitor.url}/healthz`)).status, { timeout: 20_000 })
      .toBe(200);
  });
});
