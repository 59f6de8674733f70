/**
 * aws-chunked decoding of the simulator's S3 side: the signed example from the S3 API
 * reference ("Signature Calculations for the Authorization Header: Transferring Payload in
 * Multiple Chunks"), unsigned bodies with trailing checksums split at every byte, and the
 * malformed bodies S3 refuses.
 */
import { describe, expect, it } from 'vitest';
import {
  decodeAwsChunked,
  type AwsChunkedOptions,
  type AwsChunkedResult,
} from '../../sim/s3/chunked.ts';
import type { S3Error } from '../../sim/s3/errors.ts';
import {
  canonicalHeaders,
  canonicalRequest,
  hmacHex,
  signingKey,
  stringToSign,
} from '../../sim/s3/sigv4.ts';

const KEY = signingKey('wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY', '20130524', 'us-east-1', 's3');
const DATE = '20130524T000000Z';
const SCOPE = '20130524/us-east-1/s3/aws4_request';
const SEED = '4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9';
const SIG1 = 'ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648';
const SIG2 = '0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497';
const SIG_FINAL = 'b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9';

async function decode(
  body: Buffer,
  options: AwsChunkedOptions,
  pieceSize = body.length,
): Promise<{ data: Buffer; result: AwsChunkedResult }> {
  async function* pieces(): AsyncGenerator<Buffer> {
    for (let i = 0; i < body.length; i += pieceSize) yield body.subarray(i, i + pieceSize);
  }
  const result: AwsChunkedResult = { trailers: new Map(), decodedLength: 0 };
  const out: Buffer[] = [];
  for await (const chunk of decodeAwsChunked(pieces(), options, result))
    out.push(Buffer.from(chunk));
  return { data: Buffer.concat(out), result };
}

function docBody(sig1 = SIG1): Buffer {
  return Buffer.concat([
    Buffer.from(`10000;chunk-signature=${sig1}\r\n`),
    Buffer.alloc(65536, 'a'),
    Buffer.from(`\r\n400;chunk-signature=${SIG2}\r\n`),
    Buffer.alloc(1024, 'a'),
    Buffer.from(`\r\n0;chunk-signature=${SIG_FINAL}\r\n\r\n`),
  ]);
}

const signing = { signingKey: KEY, amzDate: DATE, scope: SCOPE, seedSignature: SEED };

describe('signed aws-chunked (STREAMING-AWS4-HMAC-SHA256-PAYLOAD), S3 documentation example', () => {
  it('the seed signature is the request signature of the documented headers', () => {
    const headers = [
      ['content-encoding', 'aws-chunked'],
      ['content-length', '66824'],
      ['host', 's3.amazonaws.com'],
      ['x-amz-content-sha256', 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD'],
      ['x-amz-date', DATE],
      ['x-amz-decoded-content-length', '66560'],
      ['x-amz-storage-class', 'REDUCED_REDUNDANCY'],
    ];
    const signed = headers.map(([n]) => n ?? '');
    const canonical = canonicalRequest({
      method: 'PUT',
      uri: '/examplebucket/chunkObject.txt',
      query: '',
      headers: canonicalHeaders(headers.flat() as string[], signed),
      signedHeaders: signed,
      payloadHash: 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD',
    });
    expect(hmacHex(KEY, stringToSign(DATE, SCOPE, canonical))).toBe(SEED);
  });

  it.each([66824, 4096, 7, 1])(
    'verifies every chunk signature (received in %i-byte pieces)',
    async size => {
      const { data, result } = await decode(docBody(), { signing }, size);
      expect(data.length).toBe(66560);
      expect(data.equals(Buffer.alloc(66560, 'a'))).toBe(true);
      expect(result.decodedLength).toBe(66560);
    },
  );

  it('refuses a wrong chunk signature', async () => {
    const bad = SIG1.replace(/^a/, 'b');
    await expect(decode(docBody(bad), { signing })).rejects.toMatchObject({
      code: 'SignatureDoesNotMatch',
    } satisfies Partial<S3Error>);
  });

  it('refuses altered chunk data', async () => {
    const body = docBody();
    body[body.indexOf('\r\n') + 2] = 'b'.charCodeAt(0); // the first data byte
    await expect(decode(body, { signing })).rejects.toMatchObject({
      code: 'SignatureDoesNotMatch',
    });
  });

  it('refuses an unsigned chunk when signatures are required', async () => {
    const body = Buffer.from('3\r\nabc\r\n0\r\n\r\n');
    await expect(decode(body, { signing })).rejects.toMatchObject({ code: 'InvalidRequest' });
  });
});

describe('unsigned aws-chunked with a trailer (STREAMING-UNSIGNED-PAYLOAD-TRAILER)', () => {
  const body = Buffer.from(
    '5\r\nhello\r\n6\r\n world\r\n0\r\nx-amz-checksum-crc32:DUoRhQ==\r\n\r\n',
  );

  it.each([body.length, 3, 1])('decodes data and trailers (in %i-byte pieces)', async size => {
    const { data, result } = await decode(body, {}, size);
    expect(data.toString()).toBe('hello world');
    expect(result.trailers.get('x-amz-checksum-crc32')).toBe('DUoRhQ==');
  });

  it('accepts a body that ends right after the trailer line', async () => {
    const { data } = await decode(
      Buffer.from('2\r\nhi\r\n0\r\nx-amz-checksum-crc32:AAAAAA==\r\n'),
      {},
    );
    expect(data.toString()).toBe('hi');
  });

  it.each([
    ['a truncated body', '5\r\nhel', 'IncompleteBody'],
    ['no final chunk', '5\r\nhello\r\n', 'IncompleteBody'],
    ['a bad size line', 'zz\r\nhello\r\n0\r\n\r\n', 'InvalidRequest'],
    ['data longer than its size', '2\r\nhello\r\n0\r\n\r\n', 'InvalidRequest'],
    ['data after the end', '0\r\n\r\nextra', 'InvalidRequest'],
  ])('refuses %s', async (_what, text, code) => {
    await expect(decode(Buffer.from(text), {})).rejects.toMatchObject({ code });
  });
});
