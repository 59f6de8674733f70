/** The convergence verdict (shared/upload/converge.ts), table-driven, and the write bodies. */
import { describe, expect, it } from 'vitest';
import { newPackageBody, updatePackageBody } from '../../../../shared/jamf/packages-api.ts';
import { verdict, type Expected, type RecordState } from '../../../../shared/upload/converge.ts';

const local = 'a'.repeat(64);
const prior = 'b'.repeat(64);
const other = 'c'.repeat(64);
const newSha3 = '1'.repeat(128);
const priorSha3 = '2'.repeat(128);
const otherSha3 = '3'.repeat(128);
const expected: Expected = {
  sha256: local,
  size: 1000,
  priorHash: priorSha3,
  priorSha256: prior,
};
const rec = (over: RecordState): RecordState => ({
  hashType: 'SHA3_512',
  hashValue: newSha3,
  sha256: local,
  size: 1000,
  cloudTransferStatus: 'READY',
  ...over,
});

describe('verdict on sha256', () => {
  const cases: Array<[string, RecordState, string]> = [
    ['all hold', rec({}), 'done'],
    ['hashes in upper case', rec({ sha256: local.toUpperCase() }), 'done'],
    ['not READY yet', rec({ cloudTransferStatus: 'IN_PROGRESS' }), 'waiting'],
    ['size blank (after a PUT)', rec({ size: undefined }), 'waiting'],
    ['new hash, old size (the transient state)', rec({ size: 999 }), 'waiting'],
    ['another hash type', rec({ hashType: 'MD5' }), 'waiting'],
    ['no hashValue', rec({ hashValue: undefined }), 'waiting'],
    [
      'the local sha256 but the previous hashValue (not processed yet)',
      rec({ hashValue: priorSha3 }),
      'waiting',
    ],
    ['the previous file still', rec({ hashValue: priorSha3, sha256: prior }), 'waiting'],
    [
      'the previous file with size 0',
      rec({ hashValue: priorSha3, sha256: prior, size: 0 }),
      'waiting',
    ],
    [
      'a record that never had a file',
      { hashType: 'SHA_512', sha256: null, cloudTransferStatus: 'NONE' },
      'waiting',
    ],
    [
      'the hash changed and size is 0',
      rec({ size: 0, cloudTransferStatus: 'IN_PROGRESS' }),
      'never-landed',
    ],
    [
      'another hash changed and size 0',
      rec({ sha256: other, hashValue: otherSha3, size: 0 }),
      'never-landed',
    ],
    ['another sha256 for the local size', rec({ sha256: other, hashValue: otherSha3 }), 'mismatch'],
    ['another sha256 for another size', rec({ sha256: other, size: 5 }), 'waiting'],
  ];
  it.each(cases)('%s → %s', (_name, record, kind) => {
    expect(verdict(record, expected).kind).toBe(kind);
  });

  it('names the hash of a mismatch and what Jamf reported', () => {
    expect(verdict(rec({ sha256: other }), expected)).toEqual({
      kind: 'mismatch',
      algorithm: 'SHA-256',
      reported: other,
    });
    expect(verdict(rec({ size: 0 }), expected)).toEqual({ kind: 'never-landed', reported: local });
  });

  it('without a prior hash (a new record) any SHA3 hashValue is a change', () => {
    const fresh = { sha256: local, size: 1000 };
    expect(verdict(rec({}), fresh).kind).toBe('done');
    expect(verdict(rec({ size: 0 }), fresh).kind).toBe('never-landed');
    expect(verdict(rec({ sha256: other }), fresh).kind).toBe('mismatch');
  });

  it('a replace by the same bytes is done although hashValue stays the previous one', () => {
    const same = { ...expected, priorSha256: local };
    expect(verdict(rec({ hashValue: priorSha3 }), same).kind).toBe('done');
  });

  it('a record with sha256 never asks for the local SHA3-512', () => {
    for (const r of [rec({}), rec({ sha256: other }), rec({ hashValue: priorSha3 })])
      expect(verdict(r, expected).kind).not.toBe('need-sha3');
  });
});

describe('verdict on a record without sha256 (the SHA3-512 fallback)', () => {
  const noSha = (over: RecordState): RecordState => rec({ sha256: undefined, ...over });
  it('asks for the local SHA3-512 once READY with a new hashValue', () => {
    expect(verdict(noSha({}), expected).kind).toBe('need-sha3');
    expect(verdict(noSha({ size: 999 }), expected).kind).toBe('need-sha3');
  });
  it('does not ask while Jamf still processes or shows the previous file of another size', () => {
    expect(verdict(noSha({ cloudTransferStatus: 'IN_PROGRESS' }), expected).kind).toBe('waiting');
    expect(verdict(noSha({ hashValue: priorSha3, size: 5 }), expected).kind).toBe('waiting');
    expect(verdict(noSha({ hashType: 'SHA_512' }), expected).kind).toBe('waiting');
  });
  it('never-landed needs no local SHA3-512', () => {
    expect(verdict(noSha({ size: 0, cloudTransferStatus: 'IN_PROGRESS' }), expected)).toEqual({
      kind: 'never-landed',
      reported: newSha3,
    });
  });
  const withSha3 = { ...expected, sha3_512: newSha3 };
  const cases: Array<[string, RecordState, string]> = [
    ['hashValue equals the local SHA3-512', noSha({}), 'done'],
    ['in upper case', noSha({ hashValue: newSha3.toUpperCase() }), 'done'],
    ['not READY', noSha({ cloudTransferStatus: 'IN_PROGRESS' }), 'waiting'],
    ['the transient old size', noSha({ size: 999 }), 'waiting'],
    ['the previous file still', noSha({ hashValue: priorSha3 }), 'waiting'],
    ['another hashValue for the local size', noSha({ hashValue: otherSha3 }), 'mismatch'],
    ['another hashValue with size 0', noSha({ hashValue: otherSha3, size: 0 }), 'never-landed'],
  ];
  it.each(cases)('%s → %s', (_name, record, kind) => {
    expect(verdict(record, withSha3).kind).toBe(kind);
  });
  it('a mismatch names SHA3-512', () => {
    expect(verdict(noSha({ hashValue: otherSha3 }), withSha3)).toMatchObject({
      algorithm: 'SHA3-512',
      reported: otherSha3,
    });
  });
});

describe('package write bodies carry no hash or size field', () => {
  const serverOwned = ['hashType', 'hashValue', 'md5', 'sha256', 'sha3512', 'size'];
  it('create', () => {
    const body = newPackageBody({
      packageName: 'P',
      fileName: 'P.pkg',
      extra: {
        hashType: 'SHA3_512',
        hashValue: newSha3,
        md5: 'x',
        sha256: 'y',
        sha3512: newSha3,
        size: '5',
      },
    });
    expect(body).toMatchObject({ packageName: 'P', fileName: 'P.pkg' });
    for (const k of serverOwned) expect(body).not.toHaveProperty(k);
  });
  it('update (GET, merge, PUT keeps the record’s own fields but never these)', () => {
    const body = updatePackageBody({
      packageName: 'P',
      fileName: 'P.pkg',
      hashType: 'SHA3_512',
      hashValue: newSha3,
      md5: 'x',
      sha256: 'y',
      sha3512: newSha3,
      size: 5,
      notes: 'kept',
    });
    expect(body).toMatchObject({ packageName: 'P', notes: 'kept' });
    for (const k of serverOwned) expect(body).not.toHaveProperty(k);
  });
});
