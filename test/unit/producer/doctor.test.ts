/**
 * `jcds doctor`'s checks over fakes (producer/doctor/): the line and JSON formats, the
 * summary and exit code, the lenient environment, the privilege probes, the eviction
 * policy (CONFIG disabled), the clock skew bounds, the fleet secret's verifier, the time
 * bound, and the secret scrub.
 */
import { describe, expect, it } from 'vitest';
import {
  CheckTimeoutError,
  checkClock,
  checkDistribution,
  checkEnvironment,
  checkFleetSecret,
  checkJcdsCredentials,
  checkJson,
  checkPrivileges,
  checkRedisEviction,
  failed,
  formatCheck,
  formatSummary,
  passed,
  scrubSecrets,
  skipped,
  summarize,
  warned,
  withTimeout,
  type PrivilegeProbe,
} from '../../../producer/doctor/index.ts';
import { AppError } from '../../../shared/errors.ts';
import type { PreflightApi } from '../../../shared/jamf/preflight.ts';
import { SECRET_VERIFIER_KEY, checkSecretVerifier, secretVerifier } from '../../../shared/vault.ts';

describe('lines, JSON and the summary', () => {
  it('formats ✓, !, ✗ (with the fix on the next line) and - for a skipped check', () => {
    expect(formatCheck(passed('redis', 'reachable'))).toBe('✓ Redis: reachable\n');
    expect(formatCheck(warned('clock', '2 min off', 'Use NTP.'))).toBe(
      '! Clock: 2 min off\n    fix: Use NTP.\n',
    );
    expect(formatCheck(failed('jamf', 'JAMF_URL is not set', 'Set JAMF_URL.'))).toBe(
      '✗ Jamf Pro: JAMF_URL is not set\n    fix: Set JAMF_URL.\n',
    );
    expect(formatCheck(skipped('jamf-auth', 'needs Jamf Pro'))).toBe(
      '- Jamf Pro authentication: skipped: needs Jamf Pro\n',
    );
  });

  it('the JSON of a check: event, name, ok, level, detail, fix (null when none), its data', () => {
    expect(checkJson(passed('privileges', 'granted', { privileges: { missing: [] } }))).toEqual({
      event: 'check',
      name: 'privileges',
      title: 'Privileges',
      ok: true,
      level: 'ok',
      detail: 'granted',
      fix: null,
      privileges: { missing: [] },
    });
    expect(checkJson(warned('clock', 'off', 'NTP'))).toMatchObject({ ok: true, level: 'warn' });
    expect(checkJson(failed('redis', 'down', 'start it'))).toMatchObject({
      ok: false,
      level: 'fail',
      fix: 'start it',
    });
    expect(checkJson(skipped('clock', 'why'))).toMatchObject({
      ok: false,
      level: 'warn',
      skipped: true,
    });
  });

  it('exit 0 with warnings, 3 with a failure', () => {
    const good = summarize([passed('redis', 'x'), warned('clock', 'y')]);
    expect(good).toEqual({
      ok: true,
      checks: 2,
      passed: 1,
      warnings: 1,
      failed: 0,
      skipped: 0,
      exitCode: 0,
    });
    expect(formatSummary(good)).toContain('1 passed, 1 warning, 0 failed, 0 skipped: ready');
    const bad = summarize([failed('jamf', 'x', 'f'), skipped('jamf-auth', 'y')]);
    expect(bad).toMatchObject({ ok: false, failed: 1, skipped: 1, warnings: 0, exitCode: 3 });
    expect(formatSummary(bad)).toContain('fix the ✗ lines above');
  });
});

describe('checkEnvironment', () => {
  it('passes a valid environment and says what it defaulted', () => {
    const { result, config } = checkEnvironment({ JAMF_URL: 'https://x.jamfcloud.com' });
    expect(result.level).toBe('ok');
    expect(result.detail).toContain('JCDS_TRANSPORT=auto');
    expect(result.detail).toContain('REDIS_URL not set');
    expect(config?.jamfUrl).toBe('https://x.jamfcloud.com');
  });

  it('names every invalid variable, leaves it (and its pair) out, and still returns a config', () => {
    const { result, config, invalid } = checkEnvironment({
      JCDS_PART_SIZE: 'huge',
      JAMF_CLIENT_ID: 'client',
      JAMF_URL: 'https://x.jamfcloud.com',
    });
    expect(result.level).toBe('fail');
    expect(result.detail).toContain('JCDS_PART_SIZE');
    expect(result.detail).toContain('JAMF_CLIENT_SECRET is not set');
    expect([...invalid].sort()).toEqual(['JAMF_CLIENT_ID', 'JAMF_CLIENT_SECRET', 'JCDS_PART_SIZE']);
    expect(config?.jamfUrl).toBe('https://x.jamfcloud.com');
    expect(config?.jamfAuth).toBeUndefined();
  });

  it('never shows the password of an invalid REDIS_URL', () => {
    const { result } = checkEnvironment({ REDIS_URL: 'http://user:sekr3t-pass@redis:6379' });
    expect(result.level).toBe('fail');
    expect(result.detail).toContain('REDIS_URL');
    expect(result.detail).not.toContain('sekr3t-pass');
  });
});

describe('checkPrivileges', () => {
  const run = (statuses: Record<string, number | Error>) =>
    checkPrivileges(async (p: PrivilegeProbe) => {
      const s = statuses[p.path] ?? 200;
      if (s instanceof Error) throw s;
      return s;
    }, 1_000);

  it('all read privileges granted; the write ones listed as not checked', async () => {
    const r = await run({});
    expect(r.level).toBe('ok');
    expect(r.detail).toContain('granted (tried read-only): Read Packages, Read Categories');
    expect(r.detail).toContain(
      'not checked (needs a write): Create Packages, Update Packages, Delete Packages',
    );
  });

  it('a 403 fails and names exactly that privilege', async () => {
    const r = await run({ '/api/v1/categories': 403 });
    expect(r.level).toBe('fail');
    expect(r.detail).toMatch(
      /^missing: Read Categories \(GET \/api\/v1\/categories answered 403\);/,
    );
    expect(r.data).toMatchObject({ privileges: { missing: ['Read Categories'] } });
    expect(r.fix).toContain('"Read Categories"');
    expect(r.fix).not.toContain('Content Distribution Server');
  });

  it('a 403 on the JCDS listing mentions the pre-11.20 name in the fix', async () => {
    const r = await run({ '/api/v1/jcds/files': 403 });
    expect(r.fix).toContain('Jamf Content Distribution Server Files');
  });

  it('404 on the JCDS listing is not applicable; an error is a warning', async () => {
    const absent = await run({ '/api/v1/jcds/files': 404 });
    expect(absent.level).toBe('ok');
    expect(absent.detail).toContain('not applicable (this server has no JCDS v1 endpoints)');
    const broken = await run({ '/api/v1/packages': new Error('socket hang up') });
    expect(broken.level).toBe('warn');
    expect(broken.detail).toContain('could not check: Read Packages (socket hang up)');
  });
});

describe('checkRedisEviction', () => {
  it('reads INFO memory when CONFIG is disabled', async () => {
    const r = await checkRedisEviction(
      {
        config: (async () => {
          throw new Error("ERR unknown command 'CONFIG'");
        }) as never,
        info: (async () => '# Memory\r\nmaxmemory_policy:volatile-lru\r\n') as never,
      },
      1_000,
    );
    expect(r.level).toBe('fail');
    expect(r.detail).toContain('maxmemory-policy is volatile-lru (read from INFO memory');
    expect(r.detail).toContain('noeviction');
  });

  it('noeviction passes', async () => {
    const r = await checkRedisEviction(
      {
        config: (async () => ['maxmemory-policy', 'noeviction']) as never,
        info: (async () => '') as never,
      },
      1_000,
    );
    expect(r).toMatchObject({ level: 'ok', detail: 'maxmemory-policy is noeviction' });
  });
});

describe('checkClock', () => {
  const at = (serverMs: number) =>
    (async () =>
      new Response(null, { headers: { date: new Date(serverMs).toUTCString() } })) as typeof fetch;
  const target = { url: 'http://s3.test/', label: 'S3 (s3.test)' };
  const now = Date.parse('2026-12-01T10:00:00.500Z');

  it('within a second: ok', async () => {
    const r = await checkClock(target, 1_000, undefined, at(now), () => now);
    expect(r.level).toBe('ok');
    expect(r.detail).toContain('agrees with S3 (s3.test)');
  });

  it('more than a minute: warning; more than 15 min: failure', async () => {
    const warn = await checkClock(target, 1_000, undefined, at(now - 120_000), () => now);
    expect(warn.level).toBe('warn');
    expect(warn.detail).toContain('120 s ahead of S3 (s3.test)');
    const fail = await checkClock(target, 1_000, undefined, at(now + 20 * 60_000), () => now);
    expect(fail.level).toBe('fail');
    expect(fail.detail).toContain('behind');
    expect(fail.detail).toContain('15 min');
    expect(fail.fix).toContain('NTP');
  });

  it('no Date header: a warning', async () => {
    const r = await checkClock(
      target,
      1_000,
      undefined,
      (async () => new Response(null)) as typeof fetch,
    );
    expect(r.level).toBe('warn');
  });
});

describe('the fleet secret verifier', () => {
  const fakeRedis = (stored: string | null) => ({ get: async () => stored });

  it('is 64 hex characters, stable, and differs per secret', () => {
    const v = secretVerifier('a-fleet-secret-0123456789');
    expect(v).toMatch(/^[0-9a-f]{64}$/);
    expect(secretVerifier('a-fleet-secret-0123456789')).toBe(v);
    expect(secretVerifier('another-fleet-secret-0123')).not.toBe(v);
    expect(v).not.toContain('a-fleet-secret');
    expect(SECRET_VERIFIER_KEY).toBe('{jcds}:vault:verifier');
  });

  it('match, mismatch, absent', async () => {
    const secret = 'a-fleet-secret-0123456789';
    expect(await checkSecretVerifier(fakeRedis(secretVerifier(secret)), secret)).toBe('match');
    expect(await checkSecretVerifier(fakeRedis(secretVerifier('x'.repeat(20))), secret)).toBe(
      'mismatch',
    );
    expect(await checkSecretVerifier(fakeRedis('garbage'), secret)).toBe('mismatch');
    expect(await checkSecretVerifier(fakeRedis(null), secret)).toBe('absent');
  });

  it('checkFleetSecret: needed by s3, not by package-upload; a mismatch fails', async () => {
    const base = { invalid: false, configured: 'auto' as const };
    const missing = await checkFleetSecret(
      { ...base, secret: undefined, transport: 's3', redis: fakeRedis(null) },
      1_000,
    );
    expect(missing.level).toBe('fail');
    const notNeeded = await checkFleetSecret(
      { ...base, secret: undefined, transport: 'package-upload', redis: undefined },
      1_000,
    );
    expect(notNeeded).toMatchObject({
      level: 'ok',
      detail: 'not needed (the transport is package-upload)',
    });
    const secret = 'a-fleet-secret-0123456789';
    const mismatch = await checkFleetSecret(
      { ...base, secret, transport: 's3', redis: fakeRedis(secretVerifier('y'.repeat(20))) },
      1_000,
    );
    expect(mismatch.level).toBe('fail');
    expect(JSON.stringify(mismatch)).not.toContain(secret);
    expect(JSON.stringify(mismatch)).not.toContain(secretVerifier(secret));
    const noRedis = await checkFleetSecret(
      { ...base, secret, transport: 's3', redis: undefined },
      1_000,
    );
    expect(noRedis.skipped).toBe(true);
  });

  it('checkFleetSecret judges JCDS_FLEET_SECRET_PREVIOUS as a worker does: a rotation under way passes, the secret a rotation replaced fails', async () => {
    const base = { invalid: false, configured: 'auto' as const, transport: 's3' as const };
    const oldSecret = 'the-old-fleet-secret-0123';
    const newSecret = 'the-new-fleet-secret-4567';
    const other = 'someone-elses-secret-8901';
    // Before `jcds vault rotate`: the fleet still uses the old secret.
    const pending = await checkFleetSecret(
      {
        ...base,
        secret: newSecret,
        previous: oldSecret,
        redis: fakeRedis(secretVerifier(oldSecret)),
      },
      1_000,
    );
    expect(pending).toMatchObject({ level: 'ok' });
    expect(pending.detail).toMatch(/rotation is under way.*jcds vault rotate/);
    // Without the previous secret, the same new secret is refused, as a worker would be.
    const alone = await checkFleetSecret(
      { ...base, secret: newSecret, redis: fakeRedis(secretVerifier(oldSecret)) },
      1_000,
    );
    expect(alone.level).toBe('fail');
    // After the rotation: the new secret matches; the previous one is said to be done with.
    const rotated = JSON.stringify({
      verifier: secretVerifier(newSecret),
      previous: secretVerifier(oldSecret),
      writtenAt: '2026-12-01T00:00:00.000Z',
      rotatedAt: '2026-12-01T00:00:00.000Z',
    });
    const after = await checkFleetSecret(
      { ...base, secret: newSecret, previous: oldSecret, redis: fakeRedis(rotated) },
      1_000,
    );
    expect(after).toMatchObject({ level: 'ok' });
    expect(after.detail).toMatch(/JCDS_FLEET_SECRET_PREVIOUS is no longer the fleet's/);
    // A host left on the old secret after the rotation: the worker's own words say so.
    const stale = await checkFleetSecret(
      { ...base, secret: oldSecret, redis: fakeRedis(rotated) },
      1_000,
    );
    expect(stale.level).toBe('fail');
    expect(stale.detail).toMatch(/the secret this fleet used before its rotation/);
    // Neither secret is the fleet's.
    const neither = await checkFleetSecret(
      { ...base, secret: other, previous: oldSecret, redis: fakeRedis(secretVerifier(newSecret)) },
      1_000,
    );
    expect(neither.level).toBe('fail');
    expect(neither.detail).toMatch(
      /differs from the one the fleet uses.*and so does JCDS_FLEET_SECRET_PREVIOUS/,
    );
    for (const r of [pending, alone, after, stale, neither]) {
      for (const s of [oldSecret, newSecret, other]) {
        expect(JSON.stringify(r)).not.toContain(s);
        expect(JSON.stringify(r)).not.toContain(secretVerifier(s));
      }
    }
  });
});

describe('withTimeout and scrubSecrets', () => {
  it('rejects at the deadline even when the work ignores its signal, and hands a late value to onLate', async () => {
    let late: string | undefined;
    const started = Date.now();
    const err = await withTimeout(
      'a slow thing',
      50,
      () => new Promise<string>(r => setTimeout(() => r('done'), 150)),
      undefined,
      v => (late = v),
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CheckTimeoutError);
    expect((err as Error).message).toBe('a slow thing did not answer within 50 ms');
    expect(Date.now() - started).toBeLessThan(140);
    await new Promise(r => setTimeout(r, 150));
    expect(late).toBe('done');
  });

  it('replaces known secret values in the detail, fix and data', () => {
    const r = scrubSecrets(
      failed('jamf-auth', 'said super-secret-value', 'not super-secret-value', {
        x: 'super-secret-value',
      }),
      ['super-secret-value', 'short'],
    );
    expect(JSON.stringify(r)).not.toContain('super-secret-value');
    expect(r.detail).toBe('said [REDACTED]');
  });
});

describe('checkDistribution', () => {
  const server = (
    cdnType: string | undefined,
    jcds: boolean,
    version = '11.24.0',
  ): PreflightApi => ({
    getCloudDistributionPoint: async () =>
      cdnType === undefined ? undefined : { cdnType, master: true },
    probeCapabilities: async () => ({ version, jcds, packageUpload: !version.startsWith('11.4') }),
  });

  it('reports cdnType, JCDS v1, package upload and the transport auto chooses', async () => {
    const { result, preflight } = await checkDistribution(
      server('JAMF_CLOUD', true),
      'auto',
      1_000,
    );
    expect(result.level).toBe('ok');
    expect(result.detail).toBe(
      'cdnType JAMF_CLOUD; JCDS v1 answers; package upload available; JCDS_TRANSPORT=auto chooses s3',
    );
    expect(preflight?.transport).toBe('s3');
  });

  it('cdnType NONE fails with NO_CLOUD_DISTRIBUTION_POINT and its advice', async () => {
    const { result, preflight } = await checkDistribution(server('NONE', true), 'auto', 1_000);
    expect(result.level).toBe('fail');
    expect(result.detail).toContain('no cloud distribution point (cdnType NONE)');
    expect(result.fix).toContain('Cloud distribution point: choose Jamf Cloud');
    expect(preflight).toBeUndefined();
  });

  it('a configured transport the server cannot take fails', async () => {
    const s3 = await checkDistribution(server('JAMF_CLOUD', false), 's3', 1_000);
    expect(s3.result.level).toBe('fail');
    expect(s3.result.fix).toContain('JCDS_TRANSPORT=auto');
    const pu = await checkDistribution(
      server('JAMF_CLOUD', true, '11.4.0'),
      'package-upload',
      1_000,
    );
    expect(pu.result.level).toBe('fail');
    expect(pu.result.detail).toContain('needs Jamf Pro 11.5 or later');
    const aws = await checkDistribution(server('AMAZON_S3', true), 's3', 1_000);
    expect(aws.result.level).toBe('warn');
  });
});

describe('checkJcdsCredentials', () => {
  const creds = (id: string, expiresInS: number) => ({
    accessKeyID: id,
    secretAccessKey: `secret-of-${id}`,
    sessionToken: `token-of-${id}`,
    region: 'eu-central-1',
    expiration: Math.floor(Date.now() / 1000) + expiresInS,
    expirationDate: new Date(),
    bucketName: 'jcds-bucket',
    path: 'tmp/',
    uuid: undefined,
  });

  it('issues and renews; shows lifetimes, never the values', async () => {
    const r = await checkJcdsCredentials(
      {
        createJcdsFile: async () => creds('ASIAFIRSTKEY00000000', 3600),
        renewJcdsCredentials: async () => creds('ASIASECONDKEY0000000', 3600),
      },
      1_000,
    );
    expect(r.result.level).toBe('ok');
    expect(r.result.detail).toContain('region eu-central-1, valid 60 min');
    expect(r.facts).toEqual({ region: 'eu-central-1', bucketName: 'jcds-bucket' });
    expect(r.secrets).toContain('secret-of-ASIAFIRSTKEY00000000');
    for (const secret of r.secrets) expect(JSON.stringify(r.result)).not.toContain(secret);
  });

  it('a 403 names the Create … Files privilege in the fix', async () => {
    const r = await checkJcdsCredentials(
      {
        createJcdsFile: async () => {
          throw new AppError('JAMF_FORBIDDEN', 'Jamf Pro refused POST /api/v1/jcds/files: 403');
        },
        renewJcdsCredentials: async () => creds('X', 1),
      },
      1_000,
    );
    expect(r.result.level).toBe('fail');
    expect(r.result.fix).toContain('"Create Jamf Cloud Distribution Service Files"');
  });
});
