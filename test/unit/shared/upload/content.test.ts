/** Skip-unchanged's comparison (shared/upload/content.ts) and the hashes taken from job data. */
import { describe, expect, it } from 'vitest';
import { comparableHash, knownHashes, sameContent } from '../../../../shared/upload/content.ts';

const sha256 = 'a'.repeat(64);
const sha3 = 'b'.repeat(128);
const md5 = 'c'.repeat(32);

describe('comparableHash and sameContent', () => {
  it('compare sha256 when the record has it, whatever else it has', () => {
    const pkg = { id: '1', sha256: sha256.toUpperCase(), hashType: 'SHA3_512', hashValue: 'x' };
    expect(comparableHash(pkg)).toBe('sha256');
    expect(sameContent(pkg, { sha256 })).toBe(true);
    expect(sameContent(pkg, { sha256: 'd'.repeat(64), sha3_512: 'x' })).toBe(false);
  });

  it('fall back to the SHA3-512 hashValue, then MD5, and need the local hash to say "same"', () => {
    const sha3Record = { id: '1', hashType: 'SHA3_512', hashValue: sha3, md5 };
    expect(comparableHash(sha3Record)).toBe('sha3_512');
    expect(sameContent(sha3Record, { sha256, sha3_512: sha3 })).toBe(true);
    // Without the local SHA3-512 it is not known to be the same: not skipped.
    expect(sameContent(sha3Record, { sha256 })).toBe(false);
    const md5Record = { id: '1', md5 };
    expect(comparableHash(md5Record)).toBe('md5');
    expect(sameContent(md5Record, { sha256, md5 })).toBe(true);
    expect(sameContent(md5Record, { sha256 })).toBe(false);
  });

  it('a record with no hash is never the same', () => {
    const pkg = { id: '1', hashType: 'SHA_512' };
    expect(comparableHash(pkg)).toBeUndefined();
    expect(sameContent(pkg, { sha256, sha3_512: sha3, md5 })).toBe(false);
  });
});

describe('knownHashes', () => {
  it('keeps well-formed hashes with a SHA-256', () => {
    expect(knownHashes({ sha256, sha3_512: sha3, md5 })).toEqual({ sha256, sha3_512: sha3, md5 });
    expect(knownHashes({ sha256, sha3_512: 'bad' })).toEqual({ sha256 });
  });
  it('refuses an earlier version’s hashes (no SHA-256) and malformed input', () => {
    for (const raw of [
      undefined,
      null,
      'x',
      { sha3_512: sha3, md5 },
      { sha256: sha256.toUpperCase() },
      { sha256: 'a'.repeat(63) },
      { sha256: 5 },
    ])
      expect(knownHashes(raw)).toBeUndefined();
  });
});
