/** The convergence verdict (shared/upload/converge.ts), table-driven, and the write bodies. */
import { describe, expect, it } from 'vitest';
import { newPackageBody, updatePackageBody } from '../../../../shared/jamf/packages-api.ts';
import { verdict, type RecordState } from '../../../../shared/upload/converge.ts';

const local = 'a'.repeat(128);
const prior = 'b'.repeat(128);
const other = 'c'.repeat(128);
const expected = { sha3_512: local, size: 1000, priorHash: prior };
const rec = (over: RecordState): RecordState => ({
  hashType: 'SHA3_512',
  hashValue: local,
  size: 1000,
  cloudTransferStatus: 'READY',
  ...over,
});

describe('verdict', () => {
  const cases: Array<[string, RecordState, string]> = [
    ['all four hold', rec({}), 'done'],
    ['hash in upper case', rec({ hashValue: local.toUpperCase() }), 'done'],
    ['not READY yet', rec({ cloudTransferStatus: 'IN_PROGRESS' }), 'waiting'],
    ['size blank (after a PUT)', rec({ size: undefined }), 'waiting'],
    ['new hash, old size (the transient state)', rec({ size: 999 }), 'waiting'],
    ['another hash type', rec({ hashType: 'MD5' }), 'waiting'],
    ['the previous file still', rec({ hashValue: prior, size: 1000 }), 'waiting'],
    ['the previous file with size 0', rec({ hashValue: prior, size: 0 }), 'waiting'],
    [
      'a record that never had a file',
      { hashType: 'SHA_512', cloudTransferStatus: 'NONE' },
      'waiting',
    ],
    [
      'the hash changed and size is 0',
      rec({ size: 0, cloudTransferStatus: 'IN_PROGRESS' }),
      'never-landed',
    ],
    ['another hash changed and size 0', rec({ hashValue: other, size: 0 }), 'never-landed'],
    ['another hash for the local size', rec({ hashValue: other }), 'mismatch'],
    ['another hash for another size', rec({ hashValue: other, size: 5 }), 'waiting'],
  ];
  it.each(cases)('%s → %s', (_name, record, kind) => {
    expect(verdict(record, expected).kind).toBe(kind);
  });

  it('without a prior hash (a new record) any SHA3 hash is a change', () => {
    expect(verdict(rec({ size: 0 }), { sha3_512: local, size: 1000 }).kind).toBe('never-landed');
    expect(verdict(rec({ hashValue: other }), { sha3_512: local, size: 1000 }).kind).toBe(
      'mismatch',
    );
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
        hashValue: local,
        md5: 'x',
        sha256: 'y',
        sha3512: local,
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
      hashValue: local,
      md5: 'x',
      sha256: 'y',
      sha3512: local,
      size: 5,
      notes: 'kept',
    });
    expect(body).toMatchObject({ packageName: 'P', notes: 'kept' });
    for (const k of serverOwned) expect(body).not.toHaveProperty(k);
  });
});
