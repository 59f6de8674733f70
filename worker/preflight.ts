/**
 * The transport of an upload: the job's override, the worker's JCDS_TRANSPORT, or for
 * `auto` a probe of the server done once per worker and kept (a failed probe is forgotten,
 * so the next upload probes again; concurrent uploads share one probe in flight).
 */
import { coalesce } from '../shared/coalesce.ts';
import type { Transport } from '../shared/config.ts';
import type { Capabilities } from '../shared/jamf/types.ts';
import type { Logger } from '../shared/logger.ts';
import type { ConcreteTransport } from '../shared/queues/jobs.ts';

export class TransportChooser {
  private readonly configured: Transport;
  private chosen: ConcreteTransport | undefined;
  private readonly probe: () => Promise<ConcreteTransport>;

  constructor(
    configured: Transport,
    jamf: { probeCapabilities(): Promise<Capabilities> },
    logger: Logger,
  ) {
    this.configured = configured;
    this.probe = coalesce(async () => {
      const caps = await jamf.probeCapabilities();
      const t: ConcreteTransport = caps.jcds ? 's3' : 'package-upload';
      logger.info({ transport: t, version: caps.version }, 'transport chosen by probe');
      return t;
    });
  }

  async choose(override?: Transport): Promise<ConcreteTransport> {
    const wanted = override ?? this.configured;
    if (wanted === 's3' || wanted === 'package-upload') return wanted;
    this.chosen ??= await this.probe();
    return this.chosen;
  }
}
