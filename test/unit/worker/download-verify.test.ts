/**
 * Which hash a download is verified by (worker/processors/download.ts verifySha256): the
 * package record's SHA-256 only when the record describes the bytes the JCDS listing
 * describes; otherwise the listing's MD5 and SHA3-512, with the reason.
 */
import { describe, expect, it } from 'vitest';
import { verifySha256 } from '../../../worker/processors/download.ts';
import type { JamfPackage, JcdsFile } from '../../../shared/jamf/types.ts';

const MD5 = 'a'.repeat(32);
const SHA3 = 'b'.repeat(128);
const SHA256 = 'c'.repeat(64);

const file: JcdsFile = {
  fileName: 'App.pkg',
  length: 1000,
  md5: MD5,
  region: 'us-east-1',
  sha3: SHA3,
};

function record(over: Partial<JamfPackage> = {}): JamfPackage {
  return {
    id: '7',
    packageName: 'App',
    fileName: 'App.pkg',
    md5: MD5,
    sha256: SHA256,
    sha3512: SHA3,
    size: 1000,
    ...over,
  } as JamfPackage;
}

describe('verifySha256', () => {
  it('uses the SHA-256 of a record whose MD5 and SHA3-512 equal the listing’s', () => {
    expect(verifySha256(file, [record()])).toEqual({ sha256: SHA256, packageId: '7' });
  });

  it('one agreeing hash is enough when the other is not shown; case does not matter', () => {
    expect(
      verifySha256(file, [record({ sha3512: undefined, md5: MD5.toUpperCase() })]),
    ).toMatchObject({ sha256: SHA256 });
    expect(
      verifySha256({ ...file, md5: undefined }, [record({ sha256: SHA256.toUpperCase() })]),
    ).toMatchObject({ sha256: SHA256 });
  });

  it('no record of that file name: the listing, and why', () => {
    expect(verifySha256(file, [])).toEqual({ reason: 'no package record has this file name' });
    expect(verifySha256(file, [record({ fileName: 'Other.pkg' })])).toEqual({
      reason: 'no package record has this file name',
    });
  });

  it('a record without a sha256 (or not a SHA-256): the listing', () => {
    expect(verifySha256(file, [record({ sha256: undefined })])).toEqual({
      reason: 'package 7 shows no sha256',
    });
    expect(verifySha256(file, [record({ sha256: 'not hex' })])).toEqual({
      reason: 'package 7 shows no sha256',
    });
  });

  it('a record whose hashes or size differ from the listing’s describes another upload: the listing', () => {
    expect(verifySha256(file, [record({ md5: 'd'.repeat(32) })])).toEqual({
      reason: "package 7's md5 differs from the listing's (another upload of that name)",
    });
    // One agreeing hash does not outweigh one that differs.
    expect(verifySha256(file, [record({ sha3512: 'e'.repeat(128) })])).toMatchObject({
      reason: expect.stringMatching(/sha3512 differs/) as unknown,
    });
    expect(verifySha256(file, [record({ size: 999 })])).toEqual({
      reason: 'package 7 shows 999 bytes, the listing 1000',
    });
  });

  it('a record with nothing to match with the listing is not trusted', () => {
    expect(verifySha256(file, [record({ md5: undefined, sha3512: undefined })])).toEqual({
      reason: 'package 7 shows no md5 or sha3512 to match with the listing',
    });
  });

  it('of several records of the name, the first that matches the listing is used', () => {
    const stale = record({ id: '3', md5: 'd'.repeat(32), sha256: 'f'.repeat(64) });
    expect(verifySha256(file, [stale, record({ id: '9' })])).toEqual({
      sha256: SHA256,
      packageId: '9',
    });
  });
});
