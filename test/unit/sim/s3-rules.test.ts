/**
 * Pure pieces of the simulator's S3 side: flexible checksums, Range parsing, and the
 * CompleteMultipartUpload rules.
 */
import { Crc32cJs, Crc64NvmeJs } from '@aws-sdk/checksums/crc';
import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createChecksum } from '../../sim/s3/checksums.ts';
import { multipartEtag, validateCompletion } from '../../sim/s3/multipart-rules.ts';
import { parseRange } from '../../sim/s3/range.ts';
import type { PartRecord } from '../../sim/s3/store-layout.ts';

const MiB = 1024 * 1024;

describe('flexible checksums', () => {
  const check = Buffer.from('123456789');

  it.each([
    ['crc32', 'cbf43926'],
    ['crc32c', 'e3069283'],
    ['crc64nvme', 'ae8b14860a799888'],
  ] as const)('%s of "123456789" is the catalogue check value', (alg, hex) => {
    const c = createChecksum(alg);
    c.update(check);
    expect(c.digest().toString('hex')).toBe(hex);
  });

  it.each([
    ['crc32c', Crc32cJs],
    ['crc64nvme', Crc64NvmeJs],
  ] as const)(
    '%s equals the AWS SDK implementation over data fed in uneven pieces',
    async (alg, Sdk) => {
      const data = randomBytes(100_003);
      const ours = createChecksum(alg);
      for (let i = 0; i < data.length; i += 7_777) ours.update(data.subarray(i, i + 7_777));
      const sdk = new Sdk();
      sdk.update(data);
      expect(ours.digest().toString('base64')).toBe(
        Buffer.from(await sdk.digest()).toString('base64'),
      );
    },
  );

  it('sha256 matches node:crypto', () => {
    const data = randomBytes(1000);
    const c = createChecksum('sha256');
    c.update(data);
    expect(c.digest().equals(createHash('sha256').update(data).digest())).toBe(true);
  });
});

describe('parseRange', () => {
  it.each([
    ['bytes=0-9', { start: 0, end: 9 }],
    ['bytes=5-', { start: 5, end: 99 }],
    ['bytes=-10', { start: 90, end: 99 }],
    ['bytes=-1000', { start: 0, end: 99 }],
    ['bytes=90-1000', { start: 90, end: 99 }],
    ['bytes=99-99', { start: 99, end: 99 }],
  ])('%s of 100 bytes', (text, range) => {
    expect(parseRange(text, 100)).toEqual(range);
  });

  it.each([undefined, 'bytes=0-1,5-6', 'items=0-1', 'bytes=9-1', 'bytes=-'])(
    'ignores %s (whole object)',
    text => {
      expect(parseRange(text, 100)).toBeUndefined();
    },
  );

  it.each(['bytes=100-', 'bytes=100-200', 'bytes=-0'])('%s of 100 bytes is InvalidRange', text => {
    expect(() => parseRange(text, 100)).toThrow(
      expect.objectContaining({ code: 'InvalidRange', status: 416 }) as Error,
    );
  });
});

describe('CompleteMultipartUpload rules', () => {
  const md5 = (s: string): string => createHash('md5').update(s).digest('hex');
  const part = (n: number, size: number): PartRecord => ({
    partNumber: n,
    size,
    md5: md5(`part${n}`),
    file: `${n}-x`,
    lastModified: new Date().toISOString(),
  });
  const uploaded = new Map([
    [1, part(1, 5 * MiB)],
    [2, part(2, 5 * MiB)],
    [3, part(3, 10)],
    [4, part(4, 4 * MiB)],
  ]);
  const ref = (n: number, etag = `"${md5(`part${n}`)}"`) => ({ partNumber: n, etag });

  it('returns the listed parts; the last may be small', () => {
    expect(validateCompletion([ref(1), ref(2), ref(3)], uploaded).map(p => p.partNumber)).toEqual([
      1, 2, 3,
    ]);
  });

  it.each([
    ['an empty list', [], 'MalformedXML'],
    ['descending parts', [ref(2), ref(1)], 'InvalidPartOrder'],
    ['a repeated part', [ref(1), ref(1)], 'InvalidPartOrder'],
    ['a part never uploaded', [ref(1), ref(7)], 'InvalidPart'],
    ['a wrong ETag', [ref(1, '"0123456789abcdef0123456789abcdef"')], 'InvalidPart'],
    ['a small part before the last', [ref(1), ref(3), ref(4)], 'EntityTooSmall'],
  ])('refuses %s', (_what, parts, code) => {
    expect(() => validateCompletion(parts, uploaded)).toThrow(
      expect.objectContaining({ code }) as Error,
    );
  });

  describe('an upload created with a COMPOSITE CRC32 checksum', () => {
    const composite = { algorithm: 'crc32', type: 'COMPOSITE' as const };
    const sum = (n: number) => ({ algorithm: 'crc32', value: `crc-of-${n}` });
    const withSums = new Map(
      [...uploaded].map(([n, p]) => [n, { ...p, checksum: sum(n) }] as const),
    );
    const listed = (n: number, checksum = sum(n)) => ({ ...ref(n), checksum });

    it("completes when each part's checksum is listed and matches", () => {
      expect(validateCompletion([listed(1), listed(3)], withSums, composite)).toHaveLength(2);
    });

    it('refuses a part listed without its checksum (InvalidRequest naming the part)', () => {
      expect(() => validateCompletion([listed(1), ref(3)], withSums, composite)).toThrow(
        expect.objectContaining({
          code: 'InvalidRequest',
          message:
            'The upload was created using a crc32 checksum. The complete request must include the checksum for each part. It was missing for part 3 in the request.',
        }) as Error,
      );
    });

    it('refuses a listed checksum that does not match the part (InvalidPart)', () => {
      expect(() => validateCompletion([listed(1), listed(3, sum(1))], withSums, composite)).toThrow(
        expect.objectContaining({ code: 'InvalidPart' }) as Error,
      );
    });

    it('a FULL_OBJECT upload may list ETags only', () => {
      expect(
        validateCompletion([ref(1), ref(3)], withSums, { algorithm: 'crc32', type: 'FULL_OBJECT' }),
      ).toHaveLength(2);
    });
  });

  it('accepts ETags with or without quotes', () => {
    expect(validateCompletion([ref(1, md5('part1'))], uploaded)).toHaveLength(1);
  });

  it('the multipart ETag is the md5 of the binary part md5s, then -N', () => {
    const a = md5('a');
    const b = md5('b');
    const expected = createHash('md5')
      .update(Buffer.concat([Buffer.from(a, 'hex'), Buffer.from(b, 'hex')]))
      .digest('hex');
    expect(multipartEtag([a, b])).toBe(`"${expected}-2"`);
  });
});
