/**
 * The credential vault: JCDS temporary S3 credentials shared by every part job of one
 * upload, across the fleet, through Redis.
 *
 * - Encrypted with AES-256-GCM; the key is derived (scrypt) from JCDS_FLEET_SECRET, so
 *   Redis (and the dashboard, which shows job data only) never holds a usable secret.
 * - Each entry expires from Redis with the credentials it holds.
 * - Renewal happens once for the whole fleet: a worker that finds the credentials within
 *   the margin of `expiration` (or that S3 answered ExpiredToken) takes a Redis lock and
 *   calls Jamf's renew-credentials; the others wait for the new entry. A forced renewal
 *   names the access key id it saw fail, so N parts failing at once renew once.
 */
import { createCipheriv, createDecipheriv, randomBytes, scryptSync } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Redis } from 'ioredis';
import { AppError } from './errors.ts';
import { QUEUE_PREFIX } from './queues/names.ts';

export interface VaultCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken: string;
  /** Epoch ms. */
  expiration: number;
  /** Epoch ms when this set was issued (used to size the renewal margin). */
  issuedAt: number;
  region: string;
  bucketName: string;
  path: string;
}

/** What POST /api/v1/jcds/files and renew-credentials return (shared/jamf JcdsCredentials). */
export interface JcdsCredentialFields {
  accessKeyID: string;
  secretAccessKey: string;
  sessionToken: string;
  /** Epoch seconds. */
  expiration: number;
  region: string;
  bucketName: string;
  path: string;
}

/** Jamf's credential object in the vault's shape (epoch ms, SDK field names). */
export function fromJcds(c: JcdsCredentialFields): Omit<VaultCredentials, 'issuedAt'> {
  return {
    accessKeyId: c.accessKeyID,
    secretAccessKey: c.secretAccessKey,
    sessionToken: c.sessionToken,
    expiration: c.expiration * 1000,
    region: c.region,
    bucketName: c.bucketName,
    path: c.path,
  };
}

/** Calls Jamf for a fresh set (POST /api/v1/jcds/renew-credentials). */
export type RenewFn = () => Promise<Omit<VaultCredentials, 'issuedAt'>>;

export interface VaultOptions {
  redis: Redis;
  secret: string;
  renew: RenewFn;
  /** Renew when less than this fraction of the lifetime remains (capped at maxMarginMs). */
  marginFraction?: number;
  maxMarginMs?: number;
  lockMs?: number;
  now?: () => number;
}

const SALT = 'jcds-fleet-vault-v1';

function secretMissing(): AppError {
  return new AppError(
    'VAULT_SECRET_MISSING',
    'JCDS_FLEET_SECRET is not set: the s3 transport keeps temporary S3 credentials encrypted in Redis and needs it. Set JCDS_FLEET_SECRET to the same random string (16+ characters) on every worker.',
  );
}

export class CredentialVault {
  private readonly redis: Redis;
  private readonly key: Buffer;
  private readonly renewFn: RenewFn;
  private readonly marginFraction: number;
  private readonly maxMarginMs: number;
  private readonly lockMs: number;
  private readonly now: () => number;
  /** One in-flight fetch/renew per entry inside this process. */
  private readonly inflight = new Map<string, Promise<VaultCredentials>>();
  renewals = 0;

  constructor(options: VaultOptions) {
    if (!options.secret) {
      throw secretMissing();
    }
    this.redis = options.redis;
    this.key = scryptSync(options.secret, SALT, 32);
    this.renewFn = options.renew;
    this.marginFraction = options.marginFraction ?? 0.3;
    this.maxMarginMs = options.maxMarginMs ?? 5 * 60_000;
    this.lockMs = options.lockMs ?? 30_000;
    this.now = options.now ?? Date.now;
  }

  private entryKey(name: string): string {
    return `${QUEUE_PREFIX}:vault:${name}`;
  }

  encrypt(creds: VaultCredentials): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv);
    const body = Buffer.concat([cipher.update(JSON.stringify(creds), 'utf8'), cipher.final()]);
    return Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64');
  }

  decrypt(blob: string): VaultCredentials {
    try {
      const raw = Buffer.from(blob, 'base64');
      const decipher = createDecipheriv('aes-256-gcm', this.key, raw.subarray(0, 12));
      decipher.setAuthTag(raw.subarray(12, 28));
      const text = Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString(
        'utf8',
      );
      return JSON.parse(text) as VaultCredentials;
    } catch (err) {
      throw new AppError(
        'VAULT_DECRYPT_FAILED',
        'The credentials stored in Redis cannot be decrypted: every worker must use the same JCDS_FLEET_SECRET.',
        { cause: err },
      );
    }
  }

  /** Stores a fresh set (from POST /api/v1/jcds/files) under `name`. */
  async put(
    name: string,
    creds: Omit<VaultCredentials, 'issuedAt'> & { issuedAt?: number },
  ): Promise<VaultCredentials> {
    const full: VaultCredentials = { ...creds, issuedAt: creds.issuedAt ?? this.now() };
    const ttl = Math.max(1_000, full.expiration - this.now());
    await this.redis.set(this.entryKey(name), this.encrypt(full), 'PX', ttl);
    return full;
  }

  async delete(name: string): Promise<void> {
    await this.redis.del(this.entryKey(name));
  }

  private marginMs(c: VaultCredentials): number {
    const lifetime = Math.max(0, c.expiration - c.issuedAt);
    return Math.min(this.maxMarginMs, lifetime * this.marginFraction);
  }

  private fresh(c: VaultCredentials): boolean {
    return c.expiration - this.now() > this.marginMs(c);
  }

  private async read(name: string): Promise<VaultCredentials | undefined> {
    const blob = await this.redis.get(this.entryKey(name));
    return blob === null ? undefined : this.decrypt(blob);
  }

  /**
   * Valid credentials for `name`, renewing them (once for the fleet) when they are within
   * the margin of expiry, missing, or equal to `staleAccessKeyId` (S3 said ExpiredToken).
   */
  async get(name: string, staleAccessKeyId?: string): Promise<VaultCredentials> {
    const current = await this.read(name);
    if (current && this.fresh(current) && current.accessKeyId !== staleAccessKeyId) return current;
    const flightKey = `${name}\u0000${staleAccessKeyId ?? ''}`;
    let p = this.inflight.get(flightKey);
    if (!p) {
      p = this.renewShared(name, staleAccessKeyId).finally(() => this.inflight.delete(flightKey));
      this.inflight.set(flightKey, p);
    }
    return p;
  }

  private async renewShared(name: string, staleAccessKeyId?: string): Promise<VaultCredentials> {
    const lockKey = `${this.entryKey(name)}:lock`;
    const token = randomBytes(8).toString('hex');
    const deadline = this.now() + this.lockMs * 2;
    for (;;) {
      const current = await this.read(name);
      if (current && this.fresh(current) && current.accessKeyId !== staleAccessKeyId)
        return current;
      const got = await this.redis.set(lockKey, token, 'PX', this.lockMs, 'NX');
      if (got === 'OK') {
        try {
          // Re-check under the lock: another worker may have renewed meanwhile.
          const again = await this.read(name);
          if (again && this.fresh(again) && again.accessKeyId !== staleAccessKeyId) return again;
          const renewed = await this.renewFn();
          this.renewals++;
          return await this.put(name, renewed);
        } finally {
          // Release only our own lock.
          await this.redis.eval(
            "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end",
            1,
            lockKey,
            token,
          );
        }
      }
      if (this.now() > deadline) {
        throw new AppError(
          'S3_CREDENTIALS_EXPIRED',
          `Timed out waiting for another worker to renew the S3 credentials of ${name}.`,
        );
      }
      await sleep(100);
    }
  }
}

/** What the upload engine needs of a vault (CredentialVault, or one that is not set up). */
export type CredentialStore = Pick<CredentialVault, 'put' | 'get' | 'delete'>;

/**
 * The vault of a worker without JCDS_FLEET_SECRET: it can still run package-upload and
 * download jobs; an s3-transport upload fails with VAULT_SECRET_MISSING when it needs it.
 */
export function missingVault(): CredentialStore {
  const fail = (): never => {
    throw secretMissing();
  };
  return { put: async () => fail(), get: async () => fail(), delete: async () => fail() };
}

// --- The fleet secret's verifier ---------------------------------------------------------
//
// Lets a process tell whether its JCDS_FLEET_SECRET is the one the fleet uses without the
// secret (or the vault key) ever leaving the process: workers store
// `secretVerifier(secret)` under SECRET_VERIFIER_KEY, `jcds doctor` compares its own.
//
// Format (v1): lowercase hex of HMAC-SHA256(key, SECRET_VERIFIER_LABEL), where key is
// scrypt(secret, "jcds-fleet-vault-v1:verifier", 32 bytes) with scrypt's default cost, the
// vault's derivation with a salt of its own (the verifier never depends on the vault's
// encryption key itself). 64 characters. A later format gets a new label and key name.
import { createHmac, timingSafeEqual } from 'node:crypto';

/** The Redis key of the fleet secret's verifier. */
export const SECRET_VERIFIER_KEY = `${QUEUE_PREFIX}:vault:verifier`;
const SECRET_VERIFIER_SALT = `${SALT}:verifier`;
const SECRET_VERIFIER_LABEL = 'jcds-fleet fleet-secret verifier v1';

/** The verifier of a fleet secret (64 hex characters); reveals nothing usable about it. */
export function secretVerifier(secret: string): string {
  const key = scryptSync(secret, SECRET_VERIFIER_SALT, 32);
  return createHmac('sha256', key).update(SECRET_VERIFIER_LABEL).digest('hex');
}

/**
 * Compares `secret` with the verifier the fleet stored in Redis: `absent` when none is
 * stored yet, else `match` or `mismatch` (constant-time).
 */
export async function checkSecretVerifier(
  redis: Pick<Redis, 'get'>,
  secret: string,
): Promise<'match' | 'mismatch' | 'absent'> {
  const stored = await redis.get(SECRET_VERIFIER_KEY);
  if (stored === null) return 'absent';
  const mine = Buffer.from(secretVerifier(secret), 'utf8');
  const theirs = Buffer.from(stored.trim().toLowerCase(), 'utf8');
  return mine.length === theirs.length && timingSafeEqual(mine, theirs) ? 'match' : 'mismatch';
}
