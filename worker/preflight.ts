/**
 * The preflight of this worker (shared/jamf/preflight.ts), done once and kept for 10
 * minutes: the cloud distribution point (NONE is refused before any bytes move) and, for
 * `auto`, the transport. It starts when the worker starts (worker/start.ts). Concurrent uploads share one preflight in flight; a failed one is forgotten,
 * so the next upload tries again. A job's own transport override still passes the
 * preflight's NONE check.
 */
import { coalesce } from '../shared/coalesce.ts';
import type { Transport } from '../shared/config.ts';
import { AppError, describeError, errorCode, errorSpec, type ErrorCode } from '../shared/errors.ts';
import type { JamfClient } from '../shared/jamf/client.ts';
import { preflight, type PreflightApi, type PreflightResult } from '../shared/jamf/preflight.ts';
import type { Logger } from '../shared/logger.ts';
import type { ConcreteTransport } from '../shared/queues/jobs.ts';

/** How long a worker keeps its preflight's answer (cdnType, transport): 10 minutes. */
export const PREFLIGHT_TTL_MS = 10 * 60_000;

export class WorkerPreflight {
  private readonly configured: Transport;
  private result: PreflightResult | undefined;
  private at = 0;
  private readonly run: () => Promise<PreflightResult>;
  private readonly ttlMs: number;
  private readonly now: () => number;

  constructor(
    configured: Transport,
    jamf: PreflightApi,
    logger: Logger,
    options: { ttlMs?: number; now?: () => number } = {},
  ) {
    this.configured = configured;
    this.ttlMs = options.ttlMs ?? PREFLIGHT_TTL_MS;
    this.now = options.now ?? Date.now;
    // A role without "Read Cloud Distribution Point" cannot read the cdnType: go on
    // without it (as on servers without the endpoint); `jcds doctor` names the privilege.
    const api: PreflightApi = {
      probeCapabilities: o => jamf.probeCapabilities(o),
      getCloudDistributionPoint: async o => {
        try {
          return await jamf.getCloudDistributionPoint(o);
        } catch (err) {
          if (errorCode(err) !== 'JAMF_FORBIDDEN') throw err;
          logger.warn('cannot read the cloud distribution point (privilege missing); going on');
          return undefined;
        }
      },
    };
    this.run = coalesce(async () => {
      const r = await preflight(api, 'auto');
      logger.info(
        { transport: r.transport, cdnType: r.cdnType, jcds: r.jcds, version: r.version },
        'preflight done: transport chosen',
      );
      return r;
    });
  }

  /**
   * The transport of an upload (its override, or the worker's). The preflight runs once and
   * is kept for PREFLIGHT_TTL_MS, so a change in Jamf (the cloud distribution point set to
   * NONE or to another type) reaches a long-running worker without a restart.
   */
  async choose(override?: Transport): Promise<ConcreteTransport> {
    if (this.result === undefined || this.now() - this.at >= this.ttlMs) {
      this.result = await this.run();
      this.at = this.now();
    }
    const wanted = override ?? this.configured;
    return wanted === 's3' || wanted === 'package-upload' ? wanted : this.result.transport;
  }
}

/** How long the start-up check may take, retries of a refused connection included. */
export const JAMF_START_TIMEOUT_MS = 60_000;

const START_ADVICE: Record<string, string> = {
  JAMF_AUTH_FAILED:
    'Set JAMF_CLIENT_ID and JAMF_CLIENT_SECRET to an enabled API client of this Jamf Pro (Settings > API Roles and Clients), or JAMF_USERNAME and JAMF_PASSWORD, then start the worker again.',
  JAMF_UNREACHABLE:
    'Check JAMF_URL (https://yourinstance.jamfcloud.com), the network, a proxy or firewall, then start the worker again.',
  JAMF_BAD_RESPONSE:
    'JAMF_URL does not point at the Jamf Pro API: set it to the server root (https://yourinstance.jamfcloud.com), then start the worker again.',
  JAMF_FORBIDDEN:
    'Give the API role the privileges listed under "Using it with a real Jamf Pro" in README.md, then start the worker again.',
};

/**
 * Before the worker takes any job: Jamf Pro answers at JAMF_URL, is the Jamf Pro API, and
 * accepts this worker's credentials (a token, then GET /api/v1/jamf-pro-version with it).
 * A worker that cannot would say "ready", take the next upload and fail it for good, an
 * upload a healthy worker would have published. Throws the failure's own code (all exit 3)
 * with what to fix; the message names JAMF_URL's host and the network error, never a secret.
 */
export async function checkJamfAtStart(
  jamf: Pick<JamfClient, 'getVersion'>,
  logger: Logger,
  timeoutMs = JAMF_START_TIMEOUT_MS,
): Promise<string> {
  try {
    // One try of the call itself: its token request retries a refused connection already,
    // and retries of both would multiply (6 × 6 tries).
    const version = await jamf.getVersion({ signal: AbortSignal.timeout(timeoutMs), retries: 0 });
    logger.info({ version }, 'jamf pro answers and accepts the credentials');
    return version;
  } catch (err) {
    const known = errorCode(err);
    const code: ErrorCode =
      known !== undefined && errorSpec(known) !== undefined
        ? (known as ErrorCode)
        : 'JAMF_UNREACHABLE';
    const what =
      err instanceof Error && err.name === 'TimeoutError'
        ? `Jamf Pro did not answer within ${Math.round(timeoutMs / 1000)} s`
        : describeError(err);
    const advice =
      START_ADVICE[code] ?? 'Run `jcds doctor` for the details, then start the worker again.';
    throw new AppError(code, `The worker did not start: ${what}. ${advice}`, {
      cause: err,
      retryable: false,
    });
  }
}
