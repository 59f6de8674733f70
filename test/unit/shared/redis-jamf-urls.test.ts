/**
 * URLs are checked, not trusted (issue 13 section 6), the pure parts: REDIS_URL's unix
 * socket forms keep their password and db; no message built from REDIS_URL or JAMF_URL
 * carries the password; JAMF_URL over plain http is refused but for loopback or an
 * explicit allowance; the eviction policy is read from CONFIG GET or INFO memory.
 * Over real processes: test/integration/faults-config.test.ts.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { loadConfig } from '../../../shared/config.ts';
import { AppError } from '../../../shared/errors.ts';
import { describeRedisUrl, redisTarget } from '../../../shared/queues/connection.ts';
import { serializeError } from '../../../shared/redact.ts';
import { describeEvictionRisk, readEvictionPolicy } from '../../../shared/queues/eviction.ts';
import { isLoopbackHost, withoutCredentials } from '../../../shared/url-credentials.ts';

const PW = 'Pw-d1st1nct/ive@x';
const PW_ENC = encodeURIComponent(PW);

function configError(env: Record<string, string>): AppError {
  try {
    loadConfig(env);
  } catch (err) {
    if (err instanceof AppError) return err;
    throw err;
  }
  throw new Error('expected a CONFIG_INVALID error');
}

describe('REDIS_URL', () => {
  it('unix socket, query form: path, db, password and username are kept', () => {
    expect(redisTarget(`unix:///run/redis/redis.sock?db=2&password=${PW_ENC}`)).toEqual({
      path: '/run/redis/redis.sock',
      db: 2,
      password: PW,
    });
    expect(redisTarget('unix:///tmp/r.sock?username=app&password=p')).toMatchObject({
      username: 'app',
      password: 'p',
    });
  });

  it('unix socket, userinfo form (which WHATWG URL refuses): password and db are kept', () => {
    expect(redisTarget(`unix://:${PW_ENC}@/run/redis.sock?db=5`)).toEqual({
      path: '/run/redis.sock',
      db: 5,
      password: PW,
    });
    expect(redisTarget('unix://app:p@/run/redis.sock')).toEqual({
      path: '/run/redis.sock',
      username: 'app',
      password: 'p',
    });
    // A password typed without encoding its "/" still parses (the last "@" ends it).
    expect(redisTarget('unix://:a/b@/run/redis.sock').password).toBe('a/b');
  });

  it('redis:// forms, and an IPv6 host without its brackets', () => {
    expect(redisTarget(`redis://u:${PW_ENC}@r.example:6380/3`)).toEqual({
      host: 'r.example',
      port: 6380,
      username: 'u',
      password: PW,
      db: 3,
    });
    expect(redisTarget('rediss://[::1]')).toEqual({ host: '::1', port: 6379, tls: {} });
  });

  it('refuses a db that is not a number and unknown socket parameters', () => {
    expect(() => redisTarget('redis://h:6379/x')).toThrow(/database "x" is not a number/);
    expect(() => redisTarget('unix:///r.sock?db=two')).toThrow(/not a number/);
    expect(() => redisTarget('unix:///r.sock?timeout=1')).toThrow(/unknown parameter "timeout"/);
  });

  it('describeRedisUrl names where, never who or the password', () => {
    for (const url of [
      `redis://user:${PW_ENC}@r.example:6380/3`,
      `unix:///run/redis.sock?db=2&password=${PW_ENC}`,
      `unix://:${PW_ENC}@/run/redis.sock?db=2`,
    ]) {
      const shown = describeRedisUrl(url);
      expect(shown).not.toContain('Pw-d1st1nct');
      expect(shown).not.toContain('user');
    }
    expect(describeRedisUrl(`redis://user:${PW_ENC}@r.example:6380/3`)).toBe(
      'redis://r.example:6380/3',
    );
    expect(describeRedisUrl(`unix://:${PW_ENC}@/run/redis.sock?db=2`)).toBe(
      'unix:///run/redis.sock?db=2',
    );
  });

  it('a config error about a bad REDIS_URL does not echo its password', () => {
    for (const url of [
      `redis://:${PW}@r.example:notaport`,
      `redis://:${PW_ENC}@r.example:6379/notadb`,
      `unix:///run/redis.sock?password=${PW_ENC}&db=x`,
      `http://:${PW}@r.example:6379`,
    ]) {
      const err = configError({ REDIS_URL: url });
      expect(err.message).toMatch(/REDIS_URL is "/);
      expect(err.message).not.toContain('Pw-d1st1nct');
      expect(JSON.stringify(err.details)).not.toContain('Pw-d1st1nct');
    }
  });
});

describe('withoutCredentials', () => {
  it('hides userinfo and credential parameters, parseable or not', () => {
    expect(withoutCredentials('redis://:secret@h:1/0')).toBe('redis://***@h:1/0');
    expect(withoutCredentials('redis://u:se/c@ret@h')).toBe('redis://***@h');
    expect(withoutCredentials('unix:///s.sock?db=1&password=x')).toBe(
      'unix:///s.sock?db=1&password=***',
    );
    expect(withoutCredentials('https://jamf.example.com/path')).toBe(
      'https://jamf.example.com/path',
    );
  });
});

describe('JAMF_URL', () => {
  const creds = { JAMF_CLIENT_ID: 'id', JAMF_CLIENT_SECRET: 'client-secret-xyz' };

  it('plain http to another host is refused with the reason and both fixes', () => {
    const err = configError({ ...creds, JAMF_URL: 'http://jamf.example.com:8443' });
    expect(err.code).toBe('CONFIG_INVALID');
    expect(err.message).toMatch(/JAMF_URL is "http:\/\/jamf\.example\.com:8443"/);
    expect(err.message).toMatch(/client secret and bearer tokens in clear/);
    expect(err.message).toContain('set it to https://jamf.example.com:8443');
    expect(err.message).toContain('JCDS_ALLOW_INSECURE_JAMF=jamf.example.com');
    expect(err.message).not.toContain('client-secret-xyz');
  });

  it('plain http to loopback is fine; so is https anywhere', () => {
    for (const url of [
      'http://127.0.0.1:9000',
      'http://127.8.9.10',
      'http://[::1]:9000',
      'http://localhost:9000',
      'http://jamf.localhost',
      'https://jamf.example.com',
    ])
      expect(loadConfig({ ...creds, JAMF_URL: url }).jamfUrl).toBe(url);
  });

  it('JCDS_ALLOW_INSECURE_JAMF=1 allows any host, a host list only those hosts', () => {
    const url = 'http://jamf.example.com';
    expect(loadConfig({ ...creds, JAMF_URL: url, JCDS_ALLOW_INSECURE_JAMF: '1' }).jamfUrl).toBe(
      url,
    );
    expect(
      loadConfig({ ...creds, JAMF_URL: url, JCDS_ALLOW_INSECURE_JAMF: 'sim, jamf.example.com' })
        .jamfUrl,
    ).toBe(url);
    expect(() =>
      loadConfig({ ...creds, JAMF_URL: url, JCDS_ALLOW_INSECURE_JAMF: 'simulator' }),
    ).toThrow(/plain http:\/\/ to jamf\.example\.com/);
    expect(() => loadConfig({ ...creds, JAMF_URL: url, JCDS_ALLOW_INSECURE_JAMF: '0' })).toThrow(
      /plain http/,
    );
  });

  it('a JAMF_URL with a user name or password is refused without echoing the password', () => {
    const err = configError({ ...creds, JAMF_URL: `https://admin:${PW_ENC}@jamf.example.com` });
    expect(err.message).toMatch(
      /JAMF_URL is "https:\/\/\*\*\*@jamf\.example\.com" \(it carries a user name or password\)/,
    );
    expect(err.message).toMatch(/JAMF_CLIENT_ID and JAMF_CLIENT_SECRET/);
    expect(err.message).not.toContain('Pw-d1st1nct');
    expect(err.message).not.toContain('admin');
  });

  it('loopback detection', () => {
    for (const h of ['127.0.0.1', '127.255.0.1', '::1', '[::1]', 'LOCALHOST', '::ffff:7f00:1'])
      expect(isLoopbackHost(h), h).toBe(true);
    for (const h of ['10.0.0.1', '128.0.0.1', 'jamf.example.com', 'localhost.example.com', '::2'])
      expect(isLoopbackHost(h), h).toBe(false);
  });
});

describe('ioredis errors in logs', () => {
  it("an AUTH or HELLO command's args (REDIS_URL's password) are masked; others are kept", () => {
    const wrongPass = Object.assign(new Error('WRONGPASS invalid username-password pair'), {
      command: { name: 'auth', args: [PW] },
    });
    const hello = Object.assign(new Error('NOAUTH'), {
      command: { name: 'hello', args: ['3', 'AUTH', 'app', PW] },
    });
    for (const err of [wrongPass, hello]) {
      const out = serializeError(err) as { command: { name: string; args: unknown[] } };
      expect(JSON.stringify(out)).not.toContain('Pw-d1st1nct');
      expect(out.command).toEqual({ name: err.command.name, args: ['[REDACTED]'] });
    }
    const other = Object.assign(new Error('ERR'), { command: { name: 'get', args: ['k'] } });
    expect((serializeError(other) as { command: unknown }).command).toEqual({
      name: 'get',
      args: ['k'],
    });
  });
});

describe('docker-compose.yml', () => {
  it("the workers' defaults (the simulator, over plain http) pass the http rule, only for the simulator", () => {
    const compose = parse(
      readFileSync(join(import.meta.dirname, '../../../docker-compose.yml'), 'utf8'),
      {
        merge: true,
      },
    ) as { services: Record<string, { environment?: Record<string, string> }> };
    // `${NAME-default}` / `${NAME:-default}` as compose resolves them with NAME unset.
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(compose.services['worker']!.environment!))
      env[k] = String(v).replace(/^\$\{[A-Z0-9_]+:?-(.*)\}$/s, '$1');
    env['JCDS_FLEET_SECRET'] = 'a-fleet-secret-of-16+';
    const c = loadConfig(env, { requireJamf: true, requireSecret: 's3' });
    expect(c.jamfUrl).toBe('http://simulator:9000');
    // A real Jamf Pro given with http:// in the same compose file is still refused.
    expect(() => loadConfig({ ...env, JAMF_URL: 'http://jamf.example.com' })).toThrow(
      /plain http:\/\/ to jamf\.example\.com/,
    );
  });
});

describe('JCDS_ALLOW_REDIS_EVICTION', () => {
  it('off by default; 1/true on; anything else is a config error', () => {
    expect(loadConfig({}).allowRedisEviction).toBe(false);
    expect(loadConfig({ JCDS_ALLOW_REDIS_EVICTION: '1' }).allowRedisEviction).toBe(true);
    expect(loadConfig({ JCDS_ALLOW_REDIS_EVICTION: 'true' }).allowRedisEviction).toBe(true);
    expect(loadConfig({ JCDS_ALLOW_REDIS_EVICTION: '0' }).allowRedisEviction).toBe(false);
    expect(configError({ JCDS_ALLOW_REDIS_EVICTION: 'maybe' }).message).toMatch(
      /JCDS_ALLOW_REDIS_EVICTION is "maybe" \(not 1 or 0\)/,
    );
  });
});

describe('readEvictionPolicy', () => {
  const info = (policy: string): string =>
    `# Memory\r\nused_memory:1\r\nmaxmemory_policy:${policy}\r\n`;
  const fail = (message: string) => () => Promise.reject(new Error(message));

  it('reads CONFIG GET first', async () => {
    const r = await readEvictionPolicy({
      config: (() => Promise.resolve(['maxmemory-policy', 'allkeys-lru'])) as never,
      info: (() => Promise.resolve(info('noeviction'))) as never,
    });
    expect(r).toEqual({ policy: 'allkeys-lru', source: 'CONFIG GET', safe: false });
  });

  it('falls back to INFO memory when CONFIG is disabled (a managed Redis)', async () => {
    const r = await readEvictionPolicy({
      config: fail("ERR unknown command 'CONFIG'") as never,
      info: (() => Promise.resolve(info('noeviction'))) as never,
    });
    expect(r).toEqual({ policy: 'noeviction', source: 'INFO memory', safe: true });
  });

  it('neither readable: unknown, unsafe, and says why', async () => {
    const r = await readEvictionPolicy({
      config: fail('NOPERM this user has no permissions to run the config command') as never,
      info: fail('NOPERM info') as never,
    });
    expect(r.policy).toBeUndefined();
    expect(r.safe).toBe(false);
    expect(r.unreadable).toMatch(/CONFIG GET failed: NOPERM.*INFO memory failed: NOPERM/);
    expect(describeEvictionRisk(r)).toMatch(/cannot be read .* may not be noeviction/);
  });

  it('a refused password is thrown, not taken for an unreadable policy', async () => {
    await expect(
      readEvictionPolicy({
        config: fail('WRONGPASS invalid username-password pair or user is disabled.') as never,
        info: (() => Promise.resolve(info('noeviction'))) as never,
      }),
    ).rejects.toThrow(/^WRONGPASS/);
    await expect(
      readEvictionPolicy({
        config: fail('NOPERM no config for you') as never,
        info: fail('NOAUTH Authentication required.') as never,
      }),
    ).rejects.toThrow(/^NOAUTH/);
  });

  it('the risk names the policy, what eviction does to BullMQ and the fix', () => {
    const text = describeEvictionRisk({ policy: 'allkeys-lru', source: 'CONFIG GET', safe: false });
    expect(text).toMatch(/maxmemory-policy is allkeys-lru/);
    expect(text).toMatch(/jobs would be lost or run twice/);
    expect(text).toContain('CONFIG SET maxmemory-policy noeviction');
    expect(text).toContain('redis.conf');
  });
});
