import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  JamfApiError,
  codeForStatus,
  jamfErrorFromResponse,
  jamfNetworkError,
  likelyPrivilege,
  parseJamfErrorBody,
  safePath,
} from '../../../../shared/jamf/errors.ts';
import { interpretResponse } from '../../../../shared/jamf/response.ts';

const HOST = 'example.jamfcloud.com';

describe('parseJamfErrorBody', () => {
  it('reads the Jamf Pro API error body', () => {
    const body = JSON.stringify({
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
    expect(parseJamfErrorBody(body, 'application/json')).toEqual([
      {
        code: 'UNSUPPORTED_FILE_TYPE',
        description: 'Unsupported file extension. Acceptable formats are pkg, mpkg, dmg or zip.',
        field: 'fileName',
      },
    ]);
  });

  it('keeps every error item and a null field', () => {
    const body =
      '{"httpStatus":401,"errors":[{"code":"INVALID_TOKEN","description":"Unauthorized","id":"0","field":null},{"code":"X","description":"two","field":"f"}]}';
    expect(parseJamfErrorBody(body)).toEqual([
      { code: 'INVALID_TOKEN', description: 'Unauthorized', field: null },
      { code: 'X', description: 'two', field: 'f' },
    ]);
  });

  it('reads an OAuth error', () => {
    expect(
      parseJamfErrorBody('{"error":"invalid_client","error_description":"Bad client"}'),
    ).toEqual([{ code: 'invalid_client', description: 'Bad client', field: null }]);
  });

  it('reads a Classic API HTML error page', () => {
    const html = `<html>
<head><title>Status page</title></head>
<body style="font-family: sans-serif;">
<p style="font-size: 1.2em;font-weight: bold;margin: 1em 0px;">Conflict</p>
<p style="font-size: 1.2em;font-family: sans-serif;">Error: Duplicate name &amp; filename</p>
<p>You can get technical details <a href="http://www.w3.org/Protocols/rfc2616/rfc2616-sec10.html#sec10.4.10">here</a>.<br>
</body></html>`;
    expect(parseJamfErrorBody(html, 'text/html;charset=UTF-8')).toEqual([
      { code: null, description: 'Duplicate name & filename', field: null },
    ]);
  });

  it('falls back to the title of an HTML page without an Error paragraph', () => {
    const html =
      '<!DOCTYPE html><html><head><title>HTTP Status 404 – Not Found</title></head><body></body></html>';
    expect(parseJamfErrorBody(html)).toEqual([
      { code: null, description: 'HTTP Status 404 – Not Found', field: null },
    ]);
  });

  it('keeps plain text, collapsed and truncated', () => {
    const items = parseJamfErrorBody(`upstream\n  connect error ${'x'.repeat(500)}`, 'text/plain');
    expect(items).toHaveLength(1);
    expect(items[0]?.description.startsWith('upstream connect error xxx')).toBe(true);
    expect(items[0]?.description.length).toBeLessThanOrEqual(301);
  });

  it('gives nothing for an empty body or a bare httpStatus', () => {
    expect(parseJamfErrorBody('')).toEqual([]);
    expect(parseJamfErrorBody('{"httpStatus":500}')).toEqual([]);
  });

  it('redacts secrets that a body echoes back', () => {
    const body = JSON.stringify({
      httpStatus: 400,
      errors: [
        {
          code: 'BAD',
          description:
            'bad Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.abcdefgh and client_secret=hunter2hunter2',
          field: null,
        },
      ],
    });
    const [item] = parseJamfErrorBody(body);
    expect(item?.description).not.toContain('eyJhbGciOiJIUzI1NiJ9');
    expect(item?.description).not.toContain('hunter2hunter2');
    expect(item?.description).toContain('[REDACTED]');
  });
});

describe('jamfErrorFromResponse', () => {
  const make = (
    status: number,
    body = '',
    extra: Partial<{ path: string; method: string; retryAfterMs: number }> = {},
  ) =>
    jamfErrorFromResponse({
      status,
      method: extra.method ?? 'POST',
      path: extra.path ?? '/api/v1/packages',
      host: HOST,
      body,
      contentType: 'application/json',
      retryAfterMs: extra.retryAfterMs,
    });

  it('writes a message with the call, status, code, field and description', () => {
    const err = make(
      400,
      '{"httpStatus":400,"errors":[{"code":"DUPLICATE_FIELD","description":"Package name already exists","field":"packageName"}]}',
    );
    expect(err).toBeInstanceOf(JamfApiError);
    expect(err.code).toBe('JAMF_CONFLICT');
    expect(err.message).toBe(
      'Jamf Pro refused POST /api/v1/packages: 400 DUPLICATE_FIELD packageName: Package name already exists',
    );
    expect(err.status).toBe(400);
    expect(err.retryable).toBe(false);
    expect(err.jamfErrors).toEqual([
      { code: 'DUPLICATE_FIELD', description: 'Package name already exists', field: 'packageName' },
    ]);
  });

  it('maps statuses and Jamf codes onto AppError codes', () => {
    expect(make(401).code).toBe('JAMF_AUTH_FAILED');
    expect(make(403).code).toBe('JAMF_FORBIDDEN');
    expect(make(404).code).toBe('JAMF_NOT_FOUND');
    expect(make(409).code).toBe('JAMF_CONFLICT');
    expect(
      make(
        400,
        '{"errors":[{"code":"UNSUPPORTED_FILE_TYPE","description":"x","field":"fileName"}]}',
      ).code,
    ).toBe('UNSUPPORTED_FILE_TYPE');
    expect(
      make(400, '{"errors":[{"code":"INVALID_FIELD","description":"x","field":"priority"}]}').code,
    ).toBe('JAMF_BAD_REQUEST');
    expect(make(422).code).toBe('JAMF_BAD_REQUEST');
    expect(make(429).code).toBe('JAMF_RATE_LIMITED');
    expect(make(500).code).toBe('JAMF_UNAVAILABLE');
    expect(make(503).code).toBe('JAMF_UNAVAILABLE');
    expect(codeForStatus(302, [])).toBe('JAMF_BAD_RESPONSE');
  });

  it('marks only 408, 429, 502, 503 and 504 retryable', () => {
    const retryable = [400, 401, 403, 404, 408, 409, 429, 500, 502, 503, 504].filter(
      s => make(s).retryable,
    );
    expect(retryable).toEqual([408, 429, 502, 503, 504]);
  });

  it('names the likely missing privilege on 403', () => {
    const err = make(403, '', { method: 'POST', path: '/api/v1/jcds/files' });
    expect(err.message).toContain('"Create Jamf Cloud Distribution Service Files"');
    expect(likelyPrivilege('GET', '/api/v1/packages?page=0')).toBe('Read Packages');
    expect(likelyPrivilege('PUT', '/api/v1/packages/3')).toBe('Update Packages');
    expect(likelyPrivilege('POST', '/api/v1/packages/3/upload')).toBe(
      'Read Packages and Update Packages',
    );
    expect(likelyPrivilege('DELETE', '/api/v1/jcds/files/a.pkg')).toBe(
      'Delete Jamf Cloud Distribution Service Files',
    );
    expect(likelyPrivilege('GET', '/api/v1/unknown')).toBeUndefined();
  });

  it('keeps the Retry-After hint for 429 and 503 only', () => {
    const limited = make(429, '', { retryAfterMs: 2000 });
    expect(limited.retryAfterMs).toBe(2000);
    expect(limited.message).toContain('Retry-After 2 s');
    expect(limited.details).toMatchObject({ retryAfterMs: 2000, status: 429 });
    expect(make(503, '', { retryAfterMs: 1000 }).retryAfterMs).toBe(1000);
    expect(make(502, '', { retryAfterMs: 1000 }).retryAfterMs).toBeUndefined();
  });

  it('leaves the query string (and any secret in it) out of the path', () => {
    const err = make(404, '', {
      method: 'GET',
      path: '/api/v1/x?token=abcdefghijk&file-name=a.pkg',
    });
    expect(err.path).toBe('/api/v1/x');
    expect(err.message).not.toContain('abcdefghijk');
    expect(safePath('https://h/p/q?X-Amz-Signature=zzz#frag')).toBe('https://h/p/q');
  });

  it('carries no secret in its message or JSON', () => {
    const secretBody = JSON.stringify({
      httpStatus: 500,
      errors: [
        {
          code: 'LEAK',
          description:
            '{"secretAccessKey":"AKSECRETVALUE123","sessionToken":"SESSIONTOKEN999"} Bearer abcdefghijklmnop',
          field: null,
        },
      ],
    });
    const err = make(500, secretBody);
    const all = `${err.message} ${JSON.stringify(err)}`;
    for (const secret of ['AKSECRETVALUE123', 'SESSIONTOKEN999', 'abcdefghijklmnop']) {
      expect(all).not.toContain(secret);
    }
    expect(JSON.parse(JSON.stringify(err))).toMatchObject({
      code: 'JAMF_UNAVAILABLE',
      name: 'JamfApiError',
    });
  });
});

describe('jamfNetworkError', () => {
  it('names the host and what to check, and is retryable for a refused connection', () => {
    const cause = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9'), {
      code: 'ECONNREFUSED',
    });
    const err = jamfNetworkError({
      err: cause,
      method: 'GET',
      path: '/api/v1/jamf-pro-version',
      host: '127.0.0.1:9',
    });
    expect(err.code).toBe('JAMF_UNREACHABLE');
    expect(err.retryable).toBe(true);
    expect(err.status).toBeUndefined();
    expect(err.message).toContain('127.0.0.1:9');
    expect(err.message).toContain('check JAMF_URL');
  });

  it('finds the code in a cause chain and treats an unknown host as final', () => {
    const inner = Object.assign(new Error('getaddrinfo ENOTFOUND nope.invalid'), {
      code: 'ENOTFOUND',
    });
    const err = jamfNetworkError({
      err: new TypeError('fetch failed', { cause: inner }),
      method: 'GET',
      path: '/',
      host: 'nope.invalid',
    });
    expect(err.retryable).toBe(false);
    expect(err.message).toContain('DNS');
  });

  it('retries undici socket and timeout errors', () => {
    for (const code of ['UND_ERR_SOCKET', 'UND_ERR_HEADERS_TIMEOUT', 'ECONNRESET', 'EPIPE']) {
      const e = Object.assign(new Error('other side closed'), { code });
      expect(jamfNetworkError({ err: e, method: 'GET', path: '/', host: HOST }).retryable).toBe(
        true,
      );
    }
    expect(
      jamfNetworkError({ err: new Error('socket hang up'), method: 'GET', path: '/', host: HOST })
        .retryable,
    ).toBe(true);
  });
});

describe('interpretResponse', () => {
  const req = { method: 'GET', path: '/api/v1/jamf-pro-version' };

  it('calls a 200 HTML page a bad response that points at JAMF_URL', () => {
    const html =
      '<!DOCTYPE html><html><head><title>Sign in</title></head><body>Login</body></html>';
    expect(() =>
      interpretResponse(
        req,
        { status: 200, headers: { 'content-type': 'text/html' }, text: html },
        HOST,
      ),
    ).toThrowError(/answered HTML, not the Jamf Pro API: check JAMF_URL/);
    try {
      interpretResponse(req, { status: 200, headers: {}, text: html }, HOST);
    } catch (err) {
      expect((err as JamfApiError).code).toBe('JAMF_BAD_RESPONSE');
    }
  });

  it('calls a non-JSON 200 a bad response', () => {
    let caught: unknown;
    try {
      interpretResponse(
        req,
        { status: 200, headers: { 'content-type': 'text/plain' }, text: 'OK' },
        HOST,
      );
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(JamfApiError);
    expect((caught as JamfApiError).code).toBe('JAMF_BAD_RESPONSE');
    expect((caught as JamfApiError).message).toContain('not JSON (text/plain)');
  });

  it('validates with the schema', () => {
    const schema = z.object({ version: z.string() });
    const ok = interpretResponse<{ version: string }>(
      { ...req, schema },
      { status: 200, headers: {}, text: '{"version":"11.24.0"}' },
      HOST,
    );
    expect(ok.body).toEqual({ version: '11.24.0' });
    expect(() =>
      interpretResponse({ ...req, schema }, { status: 200, headers: {}, text: '{"v":1}' }, HOST),
    ).toThrowError(/unexpected shape \(version:/);
  });

  it('throws typed errors with the Retry-After of the answer', () => {
    let caught: unknown;
    try {
      interpretResponse(req, { status: 429, headers: { 'retry-after': '3' }, text: '' }, HOST);
    } catch (err) {
      caught = err;
    }
    expect((caught as JamfApiError).code).toBe('JAMF_RATE_LIMITED');
    expect((caught as JamfApiError).retryAfterMs).toBe(3000);
  });

  it('returns an accepted error status to the caller', () => {
    const res = interpretResponse(
      { ...req, acceptStatuses: [404] },
      { status: 404, headers: {}, text: '{"httpStatus":404}' },
      HOST,
    );
    expect(res.status).toBe(404);
  });
});
