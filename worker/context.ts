/**
 * What every processor in one worker process shares: configuration, the logger, one
 * Jamf client (so the 5-request cap and the token are per process), the credential
 * vault, S3 clients per upload, and the transport probe (done once, then cached).
 */
import type { S3Client } from '@aws-sdk/client-s3';
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Config } from '../shared/config.ts';
import { AppError } from '../shared/errors.ts';
import { JamfClient } from '../shared/jamf/client.ts';
import type { Logger } from '../shared/logger.ts';
import type { ConcreteTransport } from '../shared/queues/jobs.ts';
import { createS3Client } from '../shared/s3/client.ts';
import { CredentialVault, fromJcds } from '../shared/vault.ts';

export interface FleetMetrics {
  bytesUploaded(n: number): void;
  bytesDownloaded(n: number): void;
  uploadDuration(seconds: number, transport: string, outcome: string): void;
  retry(queue: string): void;
  failure(queue: string, code: string): void;
  credentialRenewal(): void;
}

export const NO_METRICS: FleetMetrics = {
  bytesUploaded: () => undefined,
  bytesDownloaded: () => undefined,
  uploadDuration: () => undefined,
  retry: () => undefined,
  failure: () => undefined,
  credentialRenewal: () => undefined,
};

export class WorkerContext {
  readonly config: Config;
  readonly logger: Logger;
  readonly redis: Redis;
  readonly metrics: FleetMetrics;
  /** The part queue: part children of an upload, and its hash job. */
  partQueue!: Queue;
  private jamfClient: JamfClient | undefined;
  private vaultInstance: CredentialVault | undefined;
  private transportProbe: Promise<ConcreteTransport> | undefined;
  private readonly s3Clients = new Map<string, S3Client>();
  /** The access key id each upload's S3 client used last (to renew after ExpiredToken). */
  readonly lastCredentials = new Map<string, string>();

  constructor(config: Config, logger: Logger, redis: Redis, metrics: FleetMetrics = NO_METRICS) {
    this.config = config;
    this.logger = logger;
    this.redis = redis;
    this.metrics = metrics;
  }

  get jamf(): JamfClient {
    if (!this.jamfClient) {
      const { jamfUrl, jamfAuth } = this.config;
      if (!jamfUrl || !jamfAuth) {
        throw new AppError(
          'CONFIG_INVALID',
          'The worker needs JAMF_URL and Jamf credentials (JAMF_CLIENT_ID + JAMF_CLIENT_SECRET, or JAMF_USERNAME + JAMF_PASSWORD).',
        );
      }
      this.jamfClient = new JamfClient({
        baseUrl: jamfUrl,
        auth: jamfAuth,
        concurrency: this.config.jamfConcurrency,
        logger: this.logger.child({ component: 'jamf' }),
      });
    }
    return this.jamfClient;
  }

  get vault(): CredentialVault {
    if (!this.vaultInstance) {
      this.vaultInstance = new CredentialVault({
        redis: this.redis,
        secret: this.config.fleetSecret ?? '',
        renew: async () => {
          const renewed = fromJcds(await this.jamf.renewJcdsCredentials());
          this.metrics.credentialRenewal();
          return renewed;
        },
      });
    }
    return this.vaultInstance;
  }

  /**
   * The S3 client for one upload: its credentials come from the vault on every request
   * that needs them, so a renewal by any worker is picked up without a restart.
   */
  s3For(vaultKey: string, region: string): S3Client {
    let client = this.s3Clients.get(vaultKey);
    if (!client) {
      client = createS3Client({
        region,
        endpoint: this.config.s3Endpoint,
        credentials: async () => {
          const c = await this.vault.get(vaultKey);
          this.lastCredentials.set(vaultKey, c.accessKeyId);
          return {
            accessKeyId: c.accessKeyId,
            secretAccessKey: c.secretAccessKey,
            sessionToken: c.sessionToken,
            // The SDK caches an identity until 5 minutes before its expiration. Claiming
            // at most one minute makes it ask the vault on every request, so a renewal
            // by another worker (or after ExpiredToken) is used at once.
            expiration: new Date(Math.min(c.expiration, Date.now() + 60_000)),
          };
        },
      });
      // Keep the cache small: one upload rarely outlives a few hundred others.
      if (this.s3Clients.size > 64) {
        const [oldest] = this.s3Clients.keys();
        if (oldest !== undefined) {
          this.s3Clients.get(oldest)?.destroy();
          this.s3Clients.delete(oldest);
        }
      }
      this.s3Clients.set(vaultKey, client);
    }
    return client;
  }

  /** Drops the cached S3 client of an upload (after it completes or aborts). */
  releaseS3(vaultKey: string): void {
    this.s3Clients.get(vaultKey)?.destroy();
    this.s3Clients.delete(vaultKey);
    this.lastCredentials.delete(vaultKey);
  }

  /** After S3 answered ExpiredToken: renew (once for the fleet) past the key that failed. */
  async renewAfterExpiry(vaultKey: string): Promise<void> {
    await this.vault.get(vaultKey, this.lastCredentials.get(vaultKey));
  }

  /** The configured transport, or for `auto` a probe done once per worker and cached. */
  async transport(override?: string): Promise<ConcreteTransport> {
    const wanted = override ?? this.config.transport;
    if (wanted === 's3' || wanted === 'package-upload') return wanted;
    this.transportProbe ??= this.jamf.probeCapabilities().then(
      caps => {
        const t: ConcreteTransport = caps.jcds ? 's3' : 'package-upload';
        this.logger.info({ transport: t, version: caps.version }, 'transport chosen by probe');
        return t;
      },
      err => {
        this.transportProbe = undefined;
        throw err;
      },
    );
    return this.transportProbe;
  }

  async close(): Promise<void> {
    for (const c of this.s3Clients.values()) c.destroy();
    this.s3Clients.clear();
    await this.jamfClient?.close().catch(() => undefined);
  }
}
