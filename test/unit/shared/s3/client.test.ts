/**
 * What goes on the wire (shared/s3/client.ts with shared/upload/multipart.ts and single.ts):
 * a local HTTP server captures each request the real SDK sends, so the checks see the
 * headers S3 would see. Each part and PutObject must carry exactly one checksum,
 * x-amz-checksum-crc32 with the right value, computed once: no Content-MD5, no second
 * checksum added by the SDK, no aws-chunked trailer, and UNSIGNED-PAYLOAD (no SHA-256 pass
 * for the signature).
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../../../shared/logger.ts';
import { crc32Base64, MultipartEngine } from '../../../../shared/upload/multipart.ts';
import { S3Sessions } from '../../../../shared/upload/s3-sessions.ts';
import { uploadSingle } from '../../../../shared/upload/single.ts';
import { fakeVault } from '../upload/fake-s3.ts';

interface Captured {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

let server: Server;
let endpoint: string;
let dir: string;
const captured: Captured[] = [];

/** The checksum headers of a request (x-amz-checksum-* carrying a value, and Content-MD5). */
function checksumHeaders(h: IncomingHttpHeaders): string[] {
  return Object.keys(h)
    .filter(
      k =>
        k === 'content-md5' ||
        (k.startsWith('x-amz-checksum-') &&
          k !== 'x-amz-checksum-algorithm' &&
          k !== 'x-amz-checksum-type'),
    )
    .sort();
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'jcds-s3-capture-'));
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = req.url ?? '';
      captured.push({
        method: req.method ?? '',
        url,
        headers: req.headers,
        body: Buffer.concat(chunks),
      });
      if (req.method === 'POST' && url.includes('uploads')) {
        res.writeHead(200, {
          'content-type': 'application/xml',
          'x-amz-checksum-algorithm': 'CRC32',
          'x-amz-checksum-type': 'COMPOSITE',
        });
        res.end(
          '<InitiateMultipartUploadResult><Bucket>b</Bucket><Key>k</Key><UploadId>up-1</UploadId></InitiateMultipartUploadResult>',
        );
      } else if (req.method === 'GET' && url.includes('uploadId')) {
        res.writeHead(403, { 'content-type': 'application/xml' });
        res.end('<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>');
      } else if (req.method === 'POST' && url.includes('uploadId')) {
        res.writeHead(200, { 'content-type': 'application/xml' });
        res.end(
          '<CompleteMultipartUploadResult><Bucket>b</Bucket><Key>k</Key><ETag>"x-2"</ETag></CompleteMultipartUploadResult>',
        );
      } else {
        const value = req.headers['x-amz-checksum-crc32'];
        res.writeHead(200, {
          ETag: '"etag"',
          ...(typeof value === 'string' ? { 'x-amz-checksum-crc32': value } : {}),
        });
        res.end();
      }
    });
  });
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise(resolve => server.close(resolve));
  rmSync(dir, { recursive: true, force: true });
});

function sessions(): S3Sessions {
  return new S3Sessions({ vault: fakeVault().source, endpoint });
}

const target = { bucket: 'jcds-bucket', key: 'files/Big.pkg', region: 'us-east-1', vaultKey: 'v1' };

describe('a multipart upload on the wire', () => {
  it('creates with CRC32, sends each part with exactly one x-amz-checksum-crc32, lists them in Complete', async () => {
    captured.length = 0;
    const s = sessions();
    const engine = new MultipartEngine(s, createLogger({ level: 'silent' }));
    const created = await engine.create(target, 'Big.pkg');
    expect(created).toEqual({ uploadId: 'up-1', checksumAlgorithm: 'CRC32' });
    const u = {
      ...target,
      uploadId: created.uploadId,
      checksumAlgorithm: created.checksumAlgorithm,
    };
    const bodies = [randomBytes(256 * 1024), randomBytes(1000)];
    const sent = [];
    for (const [i, body] of bodies.entries())
      sent.push({
        partNumber: i + 1,
        size: body.length,
        ...(await engine.sendPart(u, { partNumber: i + 1, body, what: 'Big.pkg' })),
      });
    await engine.completeOrConfirm(u, sent, { size: 256 * 1024 + 1000, what: 'Big.pkg' });
    s.release('v1');

    const [create, part1, part2, list, complete] = captured;
    expect(create?.headers['x-amz-checksum-algorithm']).toBe('CRC32');
    expect(create?.headers['x-amz-checksum-type']).toBe('COMPOSITE');
    for (const [i, part] of [part1, part2].entries()) {
      expect(part?.url).toContain(`partNumber=${i + 1}`);
      expect(checksumHeaders(part!.headers)).toEqual(['x-amz-checksum-crc32']);
      expect(part!.headers['x-amz-checksum-crc32']).toBe(crc32Base64(bodies[i]!));
      expect(part!.headers['x-amz-sdk-checksum-algorithm']).toBeUndefined();
      expect(part!.headers['x-amz-trailer']).toBeUndefined();
      expect(part!.headers['content-encoding']).toBeUndefined();
      expect(part!.headers['x-amz-content-sha256']).toBe('UNSIGNED-PAYLOAD');
      expect(part!.body.equals(bodies[i]!)).toBe(true);
    }
    expect(list?.method).toBe('GET');
    const xml = complete!.body.toString('utf8');
    for (const [i, body] of bodies.entries())
      expect(xml).toContain(
        `<ChecksumCRC32>${crc32Base64(body)}</ChecksumCRC32><PartNumber>${i + 1}</PartNumber>`,
      );
    expect(captured).toHaveLength(5);
  });
});

describe('a single-request upload on the wire', () => {
  it('sends PutObject with exactly one x-amz-checksum-crc32 of the file and no Content-MD5', async () => {
    captured.length = 0;
    const file = join(dir, 'small.pkg');
    const bytes = randomBytes(300 * 1024 + 7);
    writeFileSync(file, bytes);
    const s = sessions();
    await uploadSingle(s, target, { path: file, fileName: 'small.pkg', partSize: 8 * 1024 * 1024 });
    s.release('v1');
    expect(captured).toHaveLength(1);
    const put = captured[0]!;
    expect(put.method).toBe('PUT');
    expect(checksumHeaders(put.headers)).toEqual(['x-amz-checksum-crc32']);
    expect(put.headers['x-amz-checksum-crc32']).toBe(crc32Base64(bytes));
    expect(put.headers['x-amz-trailer']).toBeUndefined();
    expect(put.headers['x-amz-content-sha256']).toBe('UNSIGNED-PAYLOAD');
    expect(put.body.equals(bytes)).toBe(true);
  });
});
