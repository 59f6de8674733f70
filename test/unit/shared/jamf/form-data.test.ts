import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { AppError } from '../../../../shared/errors.ts';
import {
  encodeFormFileName,
  multipartFileBody,
  multipartFrame,
  multipartLength,
} from '../../../../shared/jamf/form-data.ts';

const dir = mkdtempSync(join(tmpdir(), 'jamf-multipart-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function collect(it: AsyncIterable<Buffer>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of it) chunks.push(c);
  return Buffer.concat(chunks);
}

describe('multipart body', () => {
  it('computes the exact length, counting UTF-8 bytes of the file name', () => {
    const boundary = 'b0undary';
    const spec = { fieldName: 'file', fileName: 'Ünïcødé app.pkg', size: 1234 };
    const { preamble, epilogue } = multipartFrame(spec, boundary);
    expect(preamble.toString('utf8')).toBe(
      '--b0undary\r\nContent-Disposition: form-data; name="file"; filename="Ünïcødé app.pkg"\r\n' +
        'Content-Type: application/octet-stream\r\n\r\n',
    );
    expect(epilogue.toString('utf8')).toBe('\r\n--b0undary--\r\n');
    expect(multipartLength(spec, boundary)).toBe(preamble.length + 1234 + epilogue.length);
    // "Ünïcødé" has 4 two-byte characters: the byte length is not the string length.
    expect(preamble.length).toBeGreaterThan(preamble.toString('utf8').length);
  });

  it('escapes quotes and line breaks in the file name', () => {
    expect(encodeFormFileName('a"b\r\nc.pkg')).toBe('a%22b%0D%0Ac.pkg');
  });

  it('streams exactly `length` bytes: preamble, the file, epilogue', async () => {
    const content = Buffer.alloc(3 * 1024 * 1024 + 17);
    for (let i = 0; i < content.length; i++) content[i] = (i * 31) % 251;
    const filePath = join(dir, 'data.pkg');
    writeFileSync(filePath, content);
    const progress: number[] = [];
    const body = multipartFileBody({
      filePath,
      fieldName: 'file',
      fileName: 'data +%#?.pkg',
      size: content.length,
      boundary: 'XyZ',
      onProgress: n => progress.push(n),
    });
    expect(body.contentType).toBe('multipart/form-data; boundary=XyZ');
    const bytes = await collect(body.stream());
    expect(bytes.length).toBe(body.length);
    const { preamble, epilogue } = multipartFrame(
      { fieldName: 'file', fileName: 'data +%#?.pkg', size: content.length },
      'XyZ',
    );
    const inner = bytes.subarray(preamble.length, bytes.length - epilogue.length);
    expect(createHash('md5').update(inner).digest('hex')).toBe(
      createHash('md5').update(content).digest('hex'),
    );
    expect(progress[0]).toBe(0);
    expect(progress.at(-1)).toBe(content.length);
    // Each iteration starts over (a retry re-sends the whole body).
    expect((await collect(body.stream())).length).toBe(body.length);
  });

  it('handles an empty file', async () => {
    const filePath = join(dir, 'empty.pkg');
    writeFileSync(filePath, '');
    const body = multipartFileBody({ filePath, fieldName: 'file', fileName: 'empty.pkg', size: 0 });
    expect((await collect(body.stream())).length).toBe(body.length);
  });

  it('fails with FILE_CHANGED when the file is shorter than announced', async () => {
    const filePath = join(dir, 'shrunk.pkg');
    writeFileSync(filePath, Buffer.alloc(1000, 1));
    const body = multipartFileBody({ filePath, fieldName: 'file', fileName: 'x.pkg', size: 1000 });
    truncateSync(filePath, 10);
    await expect(collect(body.stream())).rejects.toMatchObject({ code: 'FILE_CHANGED' });
  });

  it('fails with FILE_NOT_FOUND for a missing file', async () => {
    const body = multipartFileBody({
      filePath: join(dir, 'missing.pkg'),
      fieldName: 'file',
      fileName: 'missing.pkg',
      size: 5,
    });
    const err = await collect(body.stream()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AppError);
    expect((err as AppError).code).toBe('FILE_NOT_FOUND');
  });
});
