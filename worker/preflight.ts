/**
 * The preflight of this worker (shared/jamf/preflight.ts), done once and kept: the cloud
 * distribution point (NONE is refused before any bytes move) and, for `auto`, the
 * transport. Concurrent uploads share one preflight in flight; a failed one is forgotten,
 * so the next upload tries again. A job's own transport override still passes the
 * preflight's NONE check.
 */
import { coalesce } from '../shared/coalesce.ts';
import type { Transport } from '../shared/config.ts';
import { errorCode } from '../shared/errors.ts';
import { preflight, type PreflightApi, type PreflightResult } from '../shared/jamf/preflight.ts';
import type { Logger } from '../shared/logger.ts';
import type { ConcreteTransport } from '../shared/queues/jobs.ts';

export class WorkerPreflight {
  private readonly configured: Transport;
  private result: PreflightResult | undefined;
  private readonly run: () => Promise<PreflightResult>;

  constructor(configured: Transport, jamf: PreflightApi, logger: Logger) {
    this.configured = configured;
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

  /** The transport of an upload (its override, or the worker's); runs the preflight once. */
  async choose(override?: Transport): Promise<ConcreteTransport> {
    this.result ??= await this.run();
    const wanted = override ?? this.configured;
    return wanted === 's3' || wanted === 'package-upload' ? wanted : this.result.transport;
  }
}
