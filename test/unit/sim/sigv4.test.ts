/**
 * SigV4 canonicalisation and verification of the simulator's S3 side, against the worked
 * examples in the Amazon S3 API reference ("Signature Calculations for the Authorization
 * Header" and "Query String Authentication") and against the AWS SDK's own signer.
 */
import { Sha256 } from '@smithy/core/checksum';
import { S3RequestPresigner } from '@aws-sdk/s3-request-presigner';
import { SignatureV4 } from '@smithy/signature-v4';
import { describe, expect, it } from 'vitest';
import {
  authenticate,
  canonicalHeaders,
  canonicalQuery,
  canonicalRequest,
  canonicalUri,
  EMPTY_SHA256,
  hmacHex,
  parseQuery,
  signingKey,
  stringToSign,
  uriEncode,
} from '../../sim/s3/sigv4.ts';
import { S3Error } from '../../sim/s3/errors.ts';
import type { CredentialRegistry, IssuedCredential } from '../../sim/types.ts';

const SECRET = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY';
const DATE = '20130524T000000Z';
const SCOPE = '20130524/us-east-1/s3/aws4_request';

function docSignature(parts: {
  method: string;
  path: string;
  query: string;
  headers: Array<[string, string]>;
  payloadHash: string;
}): string {
  const raw = parts.headers.flat();
  const signed = parts.headers.map(([n]) => n.toLowerCase()).sort();
  const canonical = canonicalRequest({
    method: parts.method,
    uri: canonicalUri(parts.path),
    query: canonicalQuery(parseQuery(parts.query)),
    headers: canonicalHeaders(raw, signed),
    signedHeaders: signed,
    payloadHash: parts.payloadHash,
  });
  return hmacHex(
    signingKey(SECRET, '20130524', 'us-east-1', 's3'),
    stringToSign(DATE, SCOPE, canonical),
  );
}

describe('SigV4 worked examples from the S3 documentation', () => {
  it('GET object with a Range header', () => {
    const sig = docSignature({
      method: 'GET',
      path: '/test.txt',
      query: '',
      headers: [
        ['Host', 'examplebucket.s3.amazonaws.com'],
        ['Range', 'bytes=0-9'],
        ['x-amz-content-sha256', EMPTY_SHA256],
        ['x-amz-date', DATE],
      ],
      payloadHash: EMPTY_SHA256,
    });
    expect(sig).toBe('f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41');
  });

  it('PUT object whose key holds "$" (encoded once in the canonical URI)', () => {
    const payload = '44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072';
    const sig = docSignature({
      method: 'PUT',
      path: '/test%24file.text',
      query: '',
      headers: [
        ['Date', 'Fri, 24 May 2013 00:00:00 GMT'],
        ['Host', 'examplebucket.s3.amazonaws.com'],
        ['x-amz-content-sha256', payload],
        ['x-amz-date', DATE],
        ['x-amz-storage-class', 'REDUCED_REDUNDANCY'],
      ],
      payloadHash: payload,
    });
    expect(sig).toBe('98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd');
  });

  it('GET bucket with a value-less query parameter (?lifecycle)', () => {
    const sig = docSignature({
      method: 'GET',
      path: '/',
      query: 'lifecycle',
      headers: [
        ['Host', 'examplebucket.s3.amazonaws.com'],
        ['x-amz-content-sha256', EMPTY_SHA256],
        ['x-amz-date', DATE],
      ],
      payloadHash: EMPTY_SHA256,
    });
    expect(sig).toBe('fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543');
  });

  it('list objects with query parameters in unsorted order', () => {
    const sig = docSignature({
      method: 'GET',
      path: '/',
      query: 'prefix=J&max-keys=2',
      headers: [
        ['Host', 'examplebucket.s3.amazonaws.com'],
        ['x-amz-content-sha256', EMPTY_SHA256],
        ['x-amz-date', DATE],
      ],
      payloadHash: EMPTY_SHA256,
    });
    expect(sig).toBe('34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7');
  });

  it('presigned GET (query string authentication)', () => {
    const query =
      'X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request' +
      '&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host';
    const sig = docSignature({
      method: 'GET',
      path: '/test.txt',
      query,
      headers: [['Host', 'examplebucket.s3.amazonaws.com']],
      payloadHash: 'UNSIGNED-PAYLOAD',
    });
    expect(sig).toBe('aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404');
  });
});

describe('canonical forms', () => {
  it('encodes each path segment once; "+" is a literal plus', () => {
    expect(canonicalUri('/b/a%20b+c/%C3%BC%25%23%3F.pkg')).toBe('/b/a%20b%2Bc/%C3%BC%25%23%3F.pkg');
    expect(canonicalUri('/b/a b')).toBe('/b/a%20b');
    expect(uriEncode("!'()*~._-")).toBe('%21%27%28%29%2A~._-');
  });

  it('sorts query parameters by encoded name, then value', () => {
    expect(canonicalQuery(parseQuery('uploadId=x%2By&partNumber=2&b=&a=2&a=1'))).toBe(
      'a=1&a=2&b=&partNumber=2&uploadId=x%2By',
    );
  });

  it('trims and joins header values; repeated headers joined with commas', () => {
    expect(canonicalHeaders(['X-A', '  a   b ', 'x-a', 'c', 'Host', 'h'], ['host', 'x-a'])).toBe(
      'host:h\nx-a:a b,c\n',
    );
  });
});

class OneCredential implements CredentialRegistry {
  readonly cred: IssuedCredential;
  constructor(cred: IssuedCredential) {
    this.cred = cred;
  }
  issue(): IssuedCredential {
    return this.cred;
  }
  renew(): IssuedCredential {
    return this.cred;
  }
  get(id: string): IssuedCredential | undefined {
    return id === this.cred.accessKeyId ? this.cred : undefined;
  }
  expireAll(): void {
    this.cred.expiresAt = 0;
  }
}

describe('authenticate() against the AWS SDK signer', () => {
  const cred: IssuedCredential = {
    accessKeyId: 'ASIATESTTESTTESTTEST',
    secretAccessKey: 'secret/with+chars=',
    sessionToken: 'token/with+chars==',
    expiresAt: Date.now() + 3600_000,
  };
  const registry = new OneCredential(cred);
  const signer = new SignatureV4({
    credentials: cred,
    region: 'us-east-1',
    service: 's3',
    sha256: Sha256,
    uriEscapePath: false,
  });
  const presigner = new S3RequestPresigner({
    credentials: cred,
    region: 'us-east-1',
    sha256: Sha256,
  });

  async function signed(key: string, query: Record<string, string> = {}, presign = false) {
    // The SDK's S3 serializer escapes each segment before signing (uriEscapePath: false).
    const path = `/bucket/${key.split('/').map(uriEncode).join('/')}`;
    const request = {
      method: 'GET',
      protocol: 'http:',
      hostname: '127.0.0.1',
      port: 9000,
      path,
      query,
      headers: { host: '127.0.0.1:9000', 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' } as Record<
        string,
        string
      >,
    };
    const out = presign
      ? await presigner.presign(
          { ...request, headers: { host: '127.0.0.1:9000' } },
          { expiresIn: 60 },
        )
      : await signer.sign(request);
    const qs = Object.entries(out.query ?? {})
      .map(([k, v]) => `${uriEncode(k)}=${uriEncode(String(v))}`)
      .join('&');
    return {
      method: 'GET',
      rawPath: out.path,
      query: parseQuery(qs),
      rawHeaders: Object.entries(out.headers).flat(),
      headers: Object.fromEntries(
        Object.entries(out.headers).map(([k, v]) => [k.toLowerCase(), v]),
      ),
    };
  }

  const keys = ['plain.pkg', 'a b+c.pkg', 'ü/日本/%#?.pkg', "x!'()*~.dmg"];

  it.each(keys)('accepts a header-signed request for %j', async key => {
    const input = await signed(key, { versionId: 'a b' });
    const result = authenticate(input, {
      credentials: registry,
      region: 'us-east-1',
      now: Date.now(),
    });
    expect(result.credential.accessKeyId).toBe(cred.accessKeyId);
    expect(result.presigned).toBe(false);
  });

  it.each(keys)('accepts a presigned request for %j', async key => {
    const input = await signed(key, {}, true);
    const result = authenticate(input, {
      credentials: registry,
      region: 'us-east-1',
      now: Date.now(),
    });
    expect(result.presigned).toBe(true);
    expect(result.payloadHash).toBe('UNSIGNED-PAYLOAD');
  });

  it('refuses a request whose path was changed after signing', async () => {
    const input = await signed('a.pkg');
    input.rawPath = '/bucket/b.pkg';
    expect(() =>
      authenticate(input, { credentials: registry, region: 'us-east-1', now: Date.now() }),
    ).toThrow(expect.objectContaining({ code: 'SignatureDoesNotMatch', status: 403 }) as S3Error);
  });

  it('lets a URL presigned for GET answer HEAD, but not PUT', async () => {
    const input = await signed('a.pkg', {}, true);
    const deps = { credentials: registry, region: 'us-east-1', now: Date.now() };
    expect(authenticate({ ...input, method: 'HEAD' }, deps).presigned).toBe(true);
    expect(() => authenticate({ ...input, method: 'PUT' }, deps)).toThrow(
      expect.objectContaining({ code: 'SignatureDoesNotMatch' }) as S3Error,
    );
  });

  it('refuses an expired presigned URL, and a wrong region', async () => {
    const input = await signed('a.pkg', {}, true);
    expect(() =>
      authenticate(input, { credentials: registry, region: 'us-east-1', now: Date.now() + 61_000 }),
    ).toThrow(
      expect.objectContaining({ code: 'AccessDenied', message: 'Request has expired' }) as S3Error,
    );
    expect(() =>
      authenticate(input, { credentials: registry, region: 'eu-west-1', now: Date.now() }),
    ).toThrow(expect.objectContaining({ code: 'AuthorizationHeaderMalformed' }) as S3Error);
  });
});
