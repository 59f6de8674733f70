/**
 * WorkerPreflight (worker/preflight.ts): the preflight's answer is shared by the uploads of
 * a worker and kept for its TTL, then asked again, so a change in Jamf (the cloud
 * distribution point set to NONE) reaches a long-running worker; a failure is not kept.
 */
import { describe, expect, it, vi } from 'vitest';
import { errorCode } from '../../../shared/errors.ts';
import type { PreflightApi } from '../../../shared/jamf/preflight.ts';
import { createLogger } from '../../../shared/logger.ts';
import { WorkerPreflight } from '../../../worker/preflight.ts';

function fakeJamf(cdnType: () => string) {
  const getCloudDistributionPoint = vi.fn(async () => ({ cdnType: cdnType(), master: true }));
  const probeCapabilities = vi.fn(async () => ({
    version: '11.25.0',
    jcds: true,
    packageUpload: true,
  }));
  return {
    api: { getCloudDistributionPoint, probeCapabilities } as unknown as PreflightApi,
    getCloudDistributionPoint,
  };
}

describe('WorkerPreflight', () => {
  it('asks Jamf once for concurrent uploads, keeps the answer for the TTL, then asks again', async () => {
    let now = 0;
    let type = 'JAMF_CLOUD';
    const { api, getCloudDistributionPoint } = fakeJamf(() => type);
    const logger = createLogger({ level: 'silent', name: 'test' });
    const p = new WorkerPreflight('auto', api, logger, { ttlMs: 1_000, now: () => now });
    expect(await Promise.all([p.choose(), p.choose(), p.choose()])).toEqual(['s3', 's3', 's3']);
    now = 999;
    expect(await p.choose('package-upload')).toBe('package-upload');
    expect(getCloudDistributionPoint).toHaveBeenCalledTimes(1);
    // Past the TTL: the cloud distribution point was switched off meanwhile.
    now = 1_000;
    type = 'NONE';
    const refused = await p.choose().catch((e: unknown) => e);
    expect(errorCode(refused)).toBe('NO_CLOUD_DISTRIBUTION_POINT');
    expect(getCloudDistributionPoint).toHaveBeenCalledTimes(2);
    // A failure is not kept: the next upload asks again.
    type = 'AWS';
    expect(await p.choose()).toBe('package-upload');
    expect(getCloudDistributionPoint).toHaveBeenCalledTimes(3);
  });
});
