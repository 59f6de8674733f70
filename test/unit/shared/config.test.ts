import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ENV_DOC, loadConfig } from '../../../shared/config.ts';
import { AppError } from '../../../shared/errors.ts';
import { MiB } from '../../../shared/units.ts';

describe('loadConfig', () => {
  it('applies defaults', () => {
    const c = loadConfig({});
    expect(c.redisUrl).toBe('redis://127.0.0.1:6379');
    expect(c.transport).toBe('auto');
    expect(c.partSize).toBe(16 * MiB);
    expect(c.jamfConcurrency).toBe(5);
  });

  it('parses units and credentials', () => {
    const c = loadConfig({
      JAMF_URL: 'https://example.jamfcloud.com/',
      JAMF_CLIENT_ID: 'id',
      JAMF_CLIENT_SECRET: 's3cr3t',
      JCDS_PART_SIZE: '8MiB',
      JCDS_SPLIT_THRESHOLD: '100 MB',
    });
    expect(c.jamfUrl).toBe('https://example.jamfcloud.com');
    expect(c.jamfAuth).toEqual({ kind: 'oauth', id: 'id', secret: 's3cr3t' });
    expect(c.partSize).toBe(8 * MiB);
    expect(c.splitThreshold).toBe(100_000_000);
  });

  it('lists every invalid or missing variable at once, with what to set', () => {
    let err: unknown;
    try {
      loadConfig(
        {
          JAMF_URL: 'not a url',
          JCDS_PART_SIZE: '1MiB',
          JCDS_TRANSPORT: 'ftp',
          REDIS_URL: 'http://x',
          JAMF_CLIENT_SECRET: 'zzz-secret',
        },
        { requireJamf: true, requireSecret: true },
      );
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(AppError);
    const msg = (err as AppError).message;
    for (const name of [
      'JAMF_URL',
      'JCDS_PART_SIZE',
      'JCDS_TRANSPORT',
      'REDIS_URL',
      'JAMF_CLIENT_ID',
      'JCDS_FLEET_SECRET',
    ]) {
      expect(msg).toContain(name);
    }
    expect((err as AppError).code).toBe('CONFIG_INVALID');
    // The secret's value is never echoed.
    expect(msg).not.toContain('zzz-secret');
  });

  it('requires Jamf credentials when asked', () => {
    expect(() => loadConfig({ JAMF_URL: 'https://x.example' }, { requireJamf: true })).toThrow(
      /JAMF_CLIENT_ID and JAMF_CLIENT_SECRET/,
    );
  });

  it('refuses bad numbers', () => {
    expect(() => loadConfig({ JCDS_JAMF_CONCURRENCY: '0' })).toThrow(/JCDS_JAMF_CONCURRENCY/);
    expect(() => loadConfig({ JCDS_LOCK_DURATION: 'soon' })).toThrow(/JCDS_LOCK_DURATION/);
  });

  describe('JCDS_SHUTDOWN_GRACE_MS', () => {
    it('defaults to 30000 ms', () => {
      expect(loadConfig({}).shutdownGraceMs).toBe(30_000);
    });

    it('takes a whole number of ms from 0 to 3600000', () => {
      expect(loadConfig({ JCDS_SHUTDOWN_GRACE_MS: '300' }).shutdownGraceMs).toBe(300);
      expect(loadConfig({ JCDS_SHUTDOWN_GRACE_MS: '0' }).shutdownGraceMs).toBe(0);
      expect(loadConfig({ JCDS_SHUTDOWN_GRACE_MS: ' 3600000 ' }).shutdownGraceMs).toBe(3_600_000);
    });

    it.each(['soon', '30s', '-1', '1.5', '3600001'])(
      'refuses %j with CONFIG_INVALID naming the variable',
      value => {
        let err: unknown;
        try {
          loadConfig({ JCDS_SHUTDOWN_GRACE_MS: value });
        } catch (e) {
          err = e;
        }
        expect(err).toBeInstanceOf(AppError);
        expect((err as AppError).code).toBe('CONFIG_INVALID');
        expect((err as AppError).message).toContain(
          `JCDS_SHUTDOWN_GRACE_MS is ${JSON.stringify(value)} (not a whole number from 0 to 3600000)`,
        );
      },
    );
  });

  it('every variable it reads is a row of the README configuration table', () => {
    const readme = readFileSync(new URL('../../../README.md', import.meta.url), 'utf8');
    const rows = new Set([...readme.matchAll(/^\| `([A-Z0-9_]+)` +\|/gm)].map(m => m[1]));
    for (const name of Object.keys(ENV_DOC)) expect(rows, name).toContain(name);
  });
});
