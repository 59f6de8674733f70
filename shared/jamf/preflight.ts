/**
 * The preflight of a worker (and of `jcds doctor`): before any bytes move, what the server
 * can receive and which transport an upload takes (jamf-wire-2026.md section 3).
 *
 * - `GET /api/v1/cloud-distribution-point`: `cdnType NONE` means no upload can ever
 *   converge: refused at once (NO_CLOUD_DISTRIBUTION_POINT), before any S3 call. A
 *   principal distribution point that is not JCDS (`cdnType` other than JAMF_CLOUD) takes
 *   the `package-upload` transport.
 * - The JCDS v1 endpoints are probed with the file listing (`GET /api/v1/jcds/files`),
 *   never with a file name that does not exist (broken since 11.25.2).
 */
import type { Transport } from '../config.ts';
import { AppError } from '../errors.ts';
import type { ConcreteTransport } from '../queues/jobs.ts';
import type { JamfClient } from './client.ts';
import type { CallOptions } from './jcds-api.ts';

export interface PreflightResult {
  /** Jamf Pro's version string. */
  version: string;
  /** The cloud distribution point's type; undefined on a server without the endpoint. */
  cdnType: string | undefined;
  /** The JCDS v1 endpoints answer. */
  jcds: boolean;
  /** POST /api/v1/packages/{id}/upload is available (Jamf Pro 11.5+). */
  packageUpload: boolean;
  /** The transport an upload takes (the configured one, or the one `auto` chooses). */
  transport: ConcreteTransport;
}

export type PreflightApi = Pick<JamfClient, 'getCloudDistributionPoint' | 'probeCapabilities'>;

/** Runs the preflight; throws NO_CLOUD_DISTRIBUTION_POINT when nothing can be stored. */
export async function preflight(
  jamf: PreflightApi,
  configured: Transport,
  options: CallOptions = {},
): Promise<PreflightResult> {
  const [cdp, caps] = await Promise.all([
    jamf.getCloudDistributionPoint(options),
    jamf.probeCapabilities(options),
  ]);
  const cdnType = cdp?.cdnType;
  if (cdnType === 'NONE') {
    throw new AppError(
      'NO_CLOUD_DISTRIBUTION_POINT',
      `Jamf Pro ${caps.version} has no cloud distribution point (cdnType NONE): a package uploaded there would never become available, so nothing was sent. In Jamf Pro, Settings > Server > Cloud distribution point: choose Jamf Cloud.`,
    );
  }
  // JCDS proper: the principal cloud distribution point is Jamf Cloud and its v1 endpoints
  // answer. Anything else (AWS, Akamai, …) receives packages through Jamf Pro's upload.
  const jcdsBacked = caps.jcds && (cdnType === undefined || cdnType === 'JAMF_CLOUD');
  const transport: ConcreteTransport =
    configured === 's3' || configured === 'package-upload'
      ? configured
      : jcdsBacked
        ? 's3'
        : 'package-upload';
  return {
    version: caps.version,
    cdnType,
    jcds: caps.jcds,
    packageUpload: caps.packageUpload,
    transport,
  };
}
