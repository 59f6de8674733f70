/**
 * The one redaction (shared/redact.ts) over every secret form it must know, and the
 * logger built on it: messages, fields, error causes, AggregateError, nested errors and
 * child bindings. The integration suite (test/integration/faults-secrets.test.ts) puts the
 * same forms through real processes.
 */
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../../shared/logger.ts';
import { isSecretKey, redactText, redactValue, serializeError } from '../../../shared/redact.ts';
import { presentLog, presentReason } from '../../../worker/monitor/present.ts';
import { redact } from '../../../worker/monitor/redact.ts';
import { allForms, SECRET_FORMS, plantedSecrets } from '../../helpers/secret-forms.ts';
import { toS3AppError } from '../../../shared/s3/errors.ts';

describe('redactText: every secret form', () => {
  for (const form of SECRET_FORMS) {
    it(`${form.name}`, () => {
      const out = redactText(form.text);
      for (const secret of form.secrets) expect(out, form.text).not.toContain(secret);
      for (const kept of form.keeps ?? []) expect(out).toContain(kept);
      expect(out).toContain('[REDACTED]');
    });
  }

  it('is idempotent', () => {
    const all = SECRET_FORMS.map(f => f.text).join('\n');
    expect(redactText(redactText(all))).toBe(redactText(all));
  });

  it('leaves prose that names a secret without giving one', () => {
    const prose = [
      'Jamf refused the client: check JAMF_CLIENT_ID and JAMF_CLIENT_SECRET.',
      'the password is wrong; check the token expiry and the signature version',
      'S3 refused UploadPart: SignatureDoesNotMatch (HTTP 403): The request signature we calculated does not match the signature you provided.',
      'GET https://jamf.example.com/api/v1/packages?page=0&page-size=100 answered 500',
      'nextToken=abc continuation and tokenType Bearer',
      'https://jamf.example.com:8443/api/v1/oauth/token',
    ];
    for (const line of prose) expect(redactText(line)).toBe(line);
  });
});

describe('redactValue', () => {
  it('masks secret-named keys at any depth and redacts every string', () => {
    const out = JSON.stringify(
      redactValue({
        a: { b: { c: { d: { sessionToken: 'DEEP-TOKEN', note: 'Bearer abcdefghijkl' } } } },
        list: [{ secretAccessKey: 'LIST-SECRET' }, 'x-amz-security-token: LISTTOKEN'],
        headers: { Authorization: 'AWS4-HMAC-SHA256 Credential=X', 'x-amz-security-token': 'H' },
      }),
    );
    for (const s of ['DEEP-TOKEN', 'abcdefghijkl', 'LIST-SECRET', 'LISTTOKEN', 'Credential=X'])
      expect(out).not.toContain(s);
  });

  it('cuts cycles and keeps numbers, booleans and null', () => {
    const o: Record<string, unknown> = { n: 1, ok: true, none: null };
    o['self'] = o;
    expect(redactValue(o)).toEqual({ n: 1, ok: true, none: null, self: '[Circular]' });
  });

  it('the secret key names cover the vault, Jamf and S3 fields', () => {
    for (const k of [
      'secretAccessKey',
      'sessionToken',
      'accessKeyId',
      'accessKeyID',
      'client_secret',
      'clientSecret',
      'access_token',
      'password',
      'authorization',
      'x-amz-security-token',
      'fleetSecret',
    ])
      expect(isSecretKey(k), k).toBe(true);
    for (const k of ['tokenType', 'fileName', 'signatureVersion', 'expires_in'])
      expect(isSecretKey(k), k).toBe(false);
  });
});

describe('serializeError', () => {
  it('redacts the message, the stack and every cause, and AggregateError errors', () => {
    const leaf = new Error('leaf <SessionToken>LEAF-TOKEN</SessionToken>');
    const agg = new AggregateError([leaf, new Error('second password=AGG-PW')], 'several');
    const mid = new Error('mid x-amz-security-token: MID-TOKEN', { cause: agg });
    const top = Object.assign(new Error('top Bearer TOP-TOKEN-123', { cause: mid }), {
      code: 'S3_ERROR',
      details: { sessionToken: 'DETAIL-TOKEN', url: 'https://u:URLPW@h/x' },
    });
    const out = serializeError(top) as Record<string, unknown>;
    const text = JSON.stringify(out);
    for (const s of ['LEAF-TOKEN', 'AGG-PW', 'MID-TOKEN', 'TOP-TOKEN-123', 'DETAIL-TOKEN', 'URLPW'])
      expect(text).not.toContain(s);
    // The chain is there, redacted: top, mid and the aggregate in message and stack.
    expect(out['message']).toBe(
      'top Bearer [REDACTED]: mid x-amz-security-token: [REDACTED]: several',
    );
    expect(String(out['stack'])).toContain('caused by: AggregateError: several');
    expect((out['aggregateErrors'] as unknown[]).length).toBe(2);
    expect(out['code']).toBe('S3_ERROR');
  });

  it('survives a cause cycle', () => {
    const a = new Error('a');
    const b = new Error('b', { cause: a });
    (a as { cause?: unknown }).cause = b;
    expect((serializeError(a) as { message: string }).message).toBe('a: b');
  });
});

/** A logger writing JSON lines into an array. */
function capture(): { lines: string[]; logger: ReturnType<typeof createLogger> } {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(chunk.toString());
      cb();
    },
  });
  return { lines, logger: createLogger({ level: 'debug', destination }) };
}

describe('the logger', () => {
  it('prints no secret form through any way of logging', () => {
    const { lines, logger } = capture();
    for (const form of SECRET_FORMS) {
      const cause = new Error(`cause: ${form.text}`);
      const err = new Error(`top: ${form.text}`, { cause });
      logger.error({ err }, `message: ${form.text}`);
      logger.warn({ reason: form.text, nested: { deeper: { error: err } } }, 'nested');
      logger.error(err);
      logger.info('format %s', form.text);
      logger.child({ binding: form.text }).info('child');
      logger.child({ a: 1 }).child({ binding: form.text }).info('grandchild');
      logger.error({ err: new AggregateError([err], `aggregate ${form.text}`) }, 'aggregate');
    }
    const text = lines.join('');
    for (const s of plantedSecrets()) expect(text).not.toContain(s);
    // Still useful: the messages and the cause chain are there.
    expect(text).toContain('caused by: Error: cause: ');
    expect(lines.every(l => JSON.parse(l))).toBe(true);
  });

  it('logs an S3 error redacted with its cause, the SDK error holding the raw text', () => {
    // pino's own serializer prints this cause chain as it is: every planted secret.
    const sdk = Object.assign(new Error(allForms()), {
      name: 'InvalidRequest',
      $metadata: { httpStatusCode: 400 },
    });
    const err = toS3AppError(sdk, 'UploadPart 1 of Office.pkg');
    const { lines, logger } = capture();
    logger.warn({ reason: err.message, err }, 'upload job failed');
    const text = lines.join('');
    expect(text).toContain('caused by: InvalidRequest');
    for (const s of plantedSecrets()) expect(text).not.toContain(s);
  });

  it('keeps the key-path redaction of objects (headers, credentials)', () => {
    const { lines, logger } = capture();
    logger.info({ headers: { authorization: 'Zm9v', cookie: 'c=1' }, creds: { password: 'p' } });
    const rec = JSON.parse(lines[0]!) as Record<string, Record<string, string>>;
    expect(rec['headers']!['authorization']).toBe('[REDACTED]');
    expect(rec['creds']!['password']).toBe('[REDACTED]');
  });
});

describe('the dashboard formatters use the same redaction', () => {
  it('job data, failure reasons and job logs carry no secret form', () => {
    for (const form of SECRET_FORMS) {
      const shown = [
        JSON.stringify(redact({ data: form.text, nested: [{ text: form.text }] })),
        presentReason('upload', {}, `[S3_ERROR] ${form.text}`),
        presentLog(`attempt 1 failed: ${form.text}`),
      ].join('\n');
      for (const s of form.secrets) expect(shown, form.name).not.toContain(s);
    }
  });
});
