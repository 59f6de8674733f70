/**
 * Bodies the AWS SDK does not send by default, built and signed here: signed aws-chunked
 * bodies (STREAMING-AWS4-HMAC-SHA256-PAYLOAD and its -TRAILER variant, chunk signatures
 * computed independently from the S3 API reference) and plain signed payloads whose
 * x-amz-content-sha256 the simulator checks.
 */
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { Sha256 } from '@smithy/core/checksum';
import { SignatureV4 } from '@smithy/signature-v4';
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorCode, REGION, S3Harness, send } from '../sim/s3/harness.ts';

let h: S3Harness;
const BUCKET = 'sim-s3-signed';
const sha256 = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');

async function getBytes(key: string): Promise<Buffer> {
  const out = await h.client().send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
  return Buffer.from(
    await (out.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray(),
  );
}

beforeAll(async () => {
  h = await S3Harness.start();
});

afterAll(async () => {
  await h.close();
});

describe('plain signed payloads', () => {
  it('checks x-amz-content-sha256 of a signed payload', async () => {
    const body = Buffer.from('signed payload');
    const ok = await h.raw({
      method: 'PUT',
      path: `/${BUCKET}/signed.txt`,
      headers: { 'x-amz-content-sha256': sha256(body) },
      body,
    });
    expect(ok.status).toBe(200);
    const bad = await h.raw({
      method: 'PUT',
      path: `/${BUCKET}/signed.txt`,
      headers: { 'x-amz-content-sha256': sha256('other') },
      body,
    });
    expect([bad.status, errorCode(bad.body)]).toEqual([400, 'XAmzContentSHA256Mismatch']);
  });
});

describe('signed aws-chunked bodies (STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER])', () => {
  // Chunk signatures computed here, from the S3 API reference, independently of the simulator.
  const hmac = (key: Buffer | string, data: string): Buffer =>
    createHmac('sha256', key).update(data).digest();
  function frame(
    data: Buffer,
    chunkSize: number,
    seed: string,
    amzDate: string,
    trailer?: string,
  ): Buffer {
    const scope = `${amzDate.slice(0, 8)}/${REGION}/s3/aws4_request`;
    const key = ['s3', 'aws4_request'].reduce(
      (k, part) => hmac(k, part),
      hmac(hmac(`AWS4${h.credential.secretAccessKey}`, amzDate.slice(0, 8)), REGION),
    );
    const parts: Buffer[] = [];
    let previous = seed;
    const sign = (chunk: Buffer): string => {
      const toSign = [
        'AWS4-HMAC-SHA256-PAYLOAD',
        amzDate,
        scope,
        previous,
        sha256(''),
        sha256(chunk),
      ].join('\n');
      previous = hmac(key, toSign).toString('hex');
      return previous;
    };
    for (let off = 0; off < data.length; off += chunkSize) {
      const chunk = data.subarray(off, off + chunkSize);
      parts.push(
        Buffer.from(`${chunk.length.toString(16)};chunk-signature=${sign(chunk)}\r\n`),
        chunk,
        Buffer.from('\r\n'),
      );
    }
    parts.push(Buffer.from(`0;chunk-signature=${sign(Buffer.alloc(0))}\r\n`));
    if (trailer !== undefined) {
      const toSign = [
        'AWS4-HMAC-SHA256-TRAILER',
        amzDate,
        scope,
        previous,
        sha256(`${trailer}\n`),
      ].join('\n');
      parts.push(
        Buffer.from(
          `${trailer}\r\nx-amz-trailer-signature:${hmac(key, toSign).toString('hex')}\r\n`,
        ),
      );
    }
    parts.push(Buffer.from('\r\n'));
    return Buffer.concat(parts);
  }

  async function putChunked(
    key: string,
    data: Buffer,
    opts: { trailer?: string; tamper?: boolean } = {},
  ) {
    const now = new Date();
    const amzDate = now.toISOString().replace(/[-:]|\.\d{3}/g, '');
    const mode = opts.trailer
      ? 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER'
      : 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD';
    const headers: Record<string, string> = {
      host: `127.0.0.1:${h.port}`,
      'x-amz-content-sha256': mode,
      'x-amz-security-token': h.credential.sessionToken,
      'content-encoding': 'aws-chunked',
      'x-amz-decoded-content-length': String(data.length),
      ...(opts.trailer ? { 'x-amz-trailer': opts.trailer.split(':')[0] ?? '' } : {}),
    };
    const signer = new SignatureV4({
      credentials: h.credential,
      region: REGION,
      service: 's3',
      sha256: Sha256,
      uriEscapePath: false,
    });
    const request = {
      method: 'PUT',
      protocol: 'http:',
      hostname: '127.0.0.1',
      port: h.port,
      path: `/${BUCKET}/${key}`,
      query: {},
      headers,
    };
    const signed = await signer.sign(request, { signingDate: now });
    const seed =
      /Signature=([0-9a-f]{64})/.exec(String(signed.headers['authorization']))?.[1] ?? '';
    const body = frame(data, 64 * 1024, seed, amzDate, opts.trailer);
    if (opts.tamper) body[body.indexOf('\r\n') + 10] = (body[body.indexOf('\r\n') + 10] ?? 0) ^ 1;
    return send(
      h.port,
      'PUT',
      `/${BUCKET}/${key}`,
      { ...signed.headers, 'content-length': String(body.length) },
      body,
    );
  }

  const payload = randomBytes(200_000);

  it('verifies each chunk signature and stores only the payload', async () => {
    const res = await putChunked('chunked-signed.bin', payload);
    expect(res.status).toBe(200);
    expect((await getBytes('chunked-signed.bin')).equals(payload)).toBe(true);
  });

  it('verifies the signed trailer and its checksum', async () => {
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(payload));
    const good = await putChunked('chunked-trailer.bin', payload, {
      trailer: `x-amz-checksum-crc32:${crc.toString('base64')}`,
    });
    expect(good.status).toBe(200);
    expect(good.headers['x-amz-checksum-crc32']).toBe(crc.toString('base64'));
    const bad = await putChunked('chunked-trailer-bad.bin', payload, {
      trailer: 'x-amz-checksum-crc32:AAAAAA==',
    });
    expect([bad.status, errorCode(bad.body)]).toEqual([400, 'BadDigest']);
  });

  it('refuses a body whose chunk data was altered', async () => {
    const res = await putChunked('chunked-tampered.bin', payload, { tamper: true });
    expect([res.status, errorCode(res.body)]).toEqual([403, 'SignatureDoesNotMatch']);
    expect(await h.store.head(BUCKET, 'chunked-tampered.bin')).toBeUndefined();
  });
});
