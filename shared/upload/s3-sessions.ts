/**
 * S3 clients whose credentials renew themselves, one per upload (its vault entry).
 *
 * Every request asks the vault for the upload's temporary JCDS credentials, so a renewal by
 * any worker is used at once without restarting a part. When S3 answers ExpiredToken,
 * `withRenewal` renews past the key that failed (once for the whole fleet: the vault holds
 * a Redis lock) and sends the request again; that is not a job attempt.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { createS3Client } from '../s3/client.ts';
import { isExpiredToken, s3Code, s3Status } from '../s3/errors.ts';
import type { VaultCredentials } from '../vault.ts';

/** What the sessions need of the credential vault (shared/vault.ts CredentialVault). */
export interface CredentialSource {
  /** Valid credentials, renewed when near expiry or equal to `staleAccessKeyId`. */
  get(name: string, staleAccessKeyId?: string): Promise<VaultCredentials>;
}

export interface S3SessionsOptions {
  vault: CredentialSource;
  /** An S3 endpoint override (AWS_ENDPOINT_URL_S3). */
  endpoint?: string | undefined;
  /** Clients kept at most; the oldest is dropped past it. */
  maxClients?: number;
  /** Sends after ExpiredToken before the error is given up (default 4). */
  maxRenewals?: number;
}

export class S3Sessions {
  private readonly vault: CredentialSource;
  private readonly endpoint: string | undefined;
  private readonly maxClients: number;
  private readonly maxRenewals: number;
  private readonly clients = new Map<string, S3Client>();
  /** The access key id each upload's client used last (to renew past it after ExpiredToken). */
  private readonly lastKeyId = new Map<string, string>();

  constructor(options: S3SessionsOptions) {
    this.vault = options.vault;
    this.endpoint = options.endpoint;
    this.maxClients = options.maxClients ?? 64;
    this.maxRenewals = options.maxRenewals ?? 4;
  }

  /** The S3 client of one upload (`vaultKey`), created on first use. */
  client(vaultKey: string, region: string): S3Client {
    let client = this.clients.get(vaultKey);
    if (client) return client;
    client = createS3Client({
      region,
      endpoint: this.endpoint,
      credentials: async () => {
        const c = await this.vault.get(vaultKey);
        this.lastKeyId.set(vaultKey, c.accessKeyId);
        return {
          accessKeyId: c.accessKeyId,
          secretAccessKey: c.secretAccessKey,
          sessionToken: c.sessionToken,
          // The SDK caches an identity until 5 minutes before its expiration. Claiming at
          // most one minute makes it ask the vault on every request, so a renewal by
          // another worker (or after ExpiredToken) is used at once.
          expiration: new Date(Math.min(c.expiration, Date.now() + 60_000)),
        };
      },
    });
    // Keep the cache small: one upload rarely outlives a few hundred others.
    if (this.clients.size >= this.maxClients) {
      const [oldest] = this.clients.keys();
      if (oldest !== undefined) this.release(oldest);
    }
    this.clients.set(vaultKey, client);
    return client;
  }

  /** Retries an S3 call after ExpiredToken with renewed credentials (not a job attempt). */
  async withRenewal<T>(vaultKey: string, fn: () => Promise<T>): Promise<T> {
    for (let i = 0; ; i++) {
      try {
        return await fn();
      } catch (err) {
        // A HEAD error has no body, so S3's ExpiredToken arrives as a bare 400: renew then too.
        const headExpired = s3Status(err) === 400 && s3Code(err) === 'Unknown';
        if (!(isExpiredToken(err) || headExpired) || i >= this.maxRenewals) throw err;
        await this.vault.get(vaultKey, this.lastKeyId.get(vaultKey));
      }
    }
  }

  /** Drops the client of an upload (after it completes or aborts). */
  release(vaultKey: string): void {
    this.clients.get(vaultKey)?.destroy();
    this.clients.delete(vaultKey);
    this.lastKeyId.delete(vaultKey);
  }

  close(): void {
    for (const key of [...this.clients.keys()]) this.release(key);
  }
}
