import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { AppError, ERROR_CODES, describeError, redactText } from '../../../shared/errors.ts';

describe('redactText', () => {
  it('removes bearer tokens, basic auth, presigned signatures and JSON secrets', () => {
    const text = [
      'Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.payload.sig',
      'authorization: Basic dXNlcjpwYXNzd29yZA==',
      'https://s3.example/b/k?X-Amz-Credential=ASIAXXX%2F2026&X-Amz-Signature=abcdef0123&X-Amz-Security-Token=FQoGZX',
      '{"access_token":"tok-123","secretAccessKey":"wJalr","sessionToken":"IQoJ","password":"hunter2"}',
      'client_secret=abc123&grant_type=client_credentials',
    ].join('\n');
    const out = redactText(text);
    for (const secret of [
      'eyJhbGciOiJIUzI1NiJ9',
      'dXNlcjpwYXNzd29yZA',
      'abcdef0123',
      'FQoGZX',
      'ASIAXXX',
      'tok-123',
      'wJalr',
      'IQoJ',
      'hunter2',
      'abc123',
    ]) {
      expect(out).not.toContain(secret);
    }
    expect(out).toContain('grant_type=client_credentials');
  });

  it('describeError redacts messages', () => {
    expect(describeError(new Error('failed with Bearer abcdefghijklmnop'))).not.toContain(
      'abcdefghijklmnop',
    );
  });
});

describe('AppError', () => {
  it('carries a stable code and serialises without the stack', () => {
    const e = new AppError('FILE_CHANGED', 'x changed', { details: { size: 1 } });
    expect(e.code).toBe('FILE_CHANGED');
    expect(e.name).toBe('AppError');
    expect(e.toJSON()).toEqual({
      name: 'AppError',
      code: 'FILE_CHANGED',
      message: 'x changed',
      details: { size: 1 },
    });
  });

  it('every error code is documented in the README troubleshooting table', () => {
    const readme = readFileSync(new URL('../../../README.md', import.meta.url), 'utf8');
    const missing = Object.keys(ERROR_CODES).filter(code => !readme.includes(`\`${code}\``));
    expect(missing).toEqual([]);
  });
});

describe('CloudFront signed URLs (the JCDS download URL form)', () => {
  it('removes Signature, Key-Pair-Id and Policy, keeping Expires', () => {
    const out = redactText(
      'GET https://d1.cloudfront.net/tmp/a/Firefox.pkg?Expires=1796178000&Signature=Zm9vYmFy~x_-&Key-Pair-Id=K2ABCDEF&Policy=eyJTdGF0 answered 403',
    );
    expect(out).not.toContain('Zm9vYmFy');
    expect(out).not.toContain('K2ABCDEF');
    expect(out).not.toContain('eyJTdGF0');
    expect(out).toContain('Expires=1796178000');
    expect(out).toContain('Signature=[REDACTED]');
  });
});
