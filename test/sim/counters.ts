/**
 * The simulator's counters (GET /__sim/counters): one fresh set, and an in-place reset (the
 * Jamf and S3 sides hold the same object).
 */
import type { Counters, PackageWrite } from './types.ts';

/** How many package writes `counters.packageWrites` keeps (the oldest go first). */
export const MAX_PACKAGE_WRITES = 10_000;

export function emptyCounters(): Counters {
  return {
    calls: {},
    uploadPartByNumber: {},
    credentialRenewals: 0,
    tokenRequests: 0,
    s3BytesServed: 0,
    s3BytesReceived: 0,
    packageWrites: [],
    uploadsProcessed: 0,
    bytesNeverLanded: 0,
    objectsVanished: 0,
  };
}

/** Resets every counter in place. */
export function resetCounters(c: Counters): void {
  for (const k of Object.keys(c.calls)) delete c.calls[k];
  for (const k of Object.keys(c.uploadPartByNumber)) delete c.uploadPartByNumber[k];
  c.credentialRenewals = 0;
  c.tokenRequests = 0;
  c.s3BytesServed = 0;
  c.s3BytesReceived = 0;
  c.packageWrites.length = 0;
  c.uploadsProcessed = 0;
  c.bytesNeverLanded = 0;
  c.objectsVanished = 0;
}

/** Records one package create or update (field names only). */
export function recordPackageWrite(c: Counters, write: PackageWrite): void {
  c.packageWrites.push(write);
  if (c.packageWrites.length > MAX_PACKAGE_WRITES) {
    c.packageWrites.splice(0, c.packageWrites.length - MAX_PACKAGE_WRITES);
  }
}
