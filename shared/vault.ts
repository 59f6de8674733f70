/**
 * The credential vault: JCDS temporary S3 credentials shared by every part job of one
 * upload, across the fleet, through Redis.
 *
 * - Encrypted with AES-256-GCM; the key is derived (scrypt) from JCDS_FLEET_SECRET, so
 *   Redis (and the dashboard, which shows job data only) never holds a usable secret.
 * - Each entry is bound to its Redis key (AES-GCM associated data): an entry copied under
 *   another key does not decrypt. Entry format v2: `v2.<key id>.<base64 iv|tag|ciphertext>`,
 *   the key id naming which fleet secret encrypted it (a prefix of that secret's public
 *   verifier), so a worker holding JCDS_FLEET_SECRET_PREVIOUS during a rotation reads both.
 *   An entry of the first format (plain base64, no associated data) is not read: it is
 *   treated like an entry that expired, and the credentials are renewed (they are temporary
 *   S3 credentials of one upload, renewable at any time).
 * - New entries are written with the fleet's current secret (the verifier in Redis says
 *   which: shared/fleet-secret.ts), which during a rotation may still be the previous one.
 * - Each entry expires from Redis with the credentials it holds.
 * - Renewal happens once for the whole fleet: a worker that finds the credentials within
 *   the margin of `expiration` (or that S3 answered ExpiredToken) takes a Redis lock and
 *   calls Jamf's renew-credentials; the others wait for the new entry. A forced renewal
 *   names the access key id it saw fail, so N parts failing at once renew once.
 */
import {
  createCipheriv,
  createDecipheriv,
  createHmac,
  randomBytes,
  scryptSync,
  timingSafeEqual,
} from 'node:crypto';
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
  /** JCDS_FLEET_SECRET_PREVIOUS: still accepted for reading during a rotation. */
  previousSecret?: string | undefined;
  /**
   * The key new entries are written with (the fleet's current secret, read from its
   * verifier); default: `secret`'s.
   */
  writeKey?: () => Promise<VaultKey>;
  renew: RenewFn;
  /** Renew when less than this fraction of the lifetime remains (capped at maxMarginMs). */
  marginFraction?: number;
  maxMarginMs?: number;
  lockMs?: number;
  now?: () => number;
}

const SALT = 'jcds-fleet-vault-v1';
const ENTRY_PREFIX = 'v2.';
const AAD_LABEL = 'jcds-fleet vault entry v2';

/** One fleet secret's vault key: the AES-256 key and its public id. Never logged. */
export interface VaultKey {
  /** 16 hex characters of the secret's verifier: names the secret, reveals nothing. */
  readonly id: string;
  readonly verifier: string;
  readonly key: Buffer;
}

/** The vault key of a fleet secret (two scrypt derivations: call once per secret). */
export function vaultKey(secret: string): VaultKey {
  const verifier = secretVerifier(secret);
  return { id: verifier.slice(0, 16), verifier, key: scryptSync(secret, SALT, 32) };
}

/** Why an entry could not be read: `unknown-key` is this worker's configuration. */
export type DecryptFailure = 'unknown-key' | 'unreadable';

function decryptFailed(redisKey: string, why: DecryptFailure, keyId?: string, cause?: unknown) {
  const message =
    why === 'unknown-key'
      ? `The credentials stored in Redis under ${redisKey} were encrypted with a fleet secret this worker does not have (key id ${keyId}): every worker must use the fleet's JCDS_FLEET_SECRET (during a rotation, the old one goes in JCDS_FLEET_SECRET_PREVIOUS).`
      : `The credentials stored in Redis under ${redisKey} cannot be decrypted: the entry was altered or copied from another key.`;
  return new AppError('VAULT_DECRYPT_FAILED', message, {
    cause,
    details: { reason: why, ...(keyId ? { keyId } : {}) },
  });
}

/** The associated data that binds an entry to its Redis key and to the key that sealed it. */
function entryAad(redisKey: string, keyId: string): Buffer {
  return Buffer.from(`${AAD_LABEL}\u0000${redisKey}\u0000${keyId}`, 'utf8');
}

/** A v2 entry: `plaintext` sealed with `key`, bound to `redisKey`. */
export function sealEntry(redisKey: string, plaintext: string, key: VaultKey): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key.key, iv);
  cipher.setAAD(entryAad(redisKey, key.id));
  const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  return `${ENTRY_PREFIX}${key.id}.${Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64')}`;
}

/** The id of the key that sealed a v2 entry; undefined for the first format. */
export function entryKeyId(blob: string): string | undefined {
  if (!blob.startsWith(ENTRY_PREFIX)) return undefined;
  const dot = blob.indexOf('.', ENTRY_PREFIX.length);
  return dot < 0 ? '' : blob.slice(ENTRY_PREFIX.length, dot);
}

/**
 * The plaintext of the entry stored under `redisKey`; undefined for an entry of the first
 * format. Throws VAULT_DECRYPT_FAILED (see DecryptFailure).
 */
export function openEntry(
  redisKey: string,
  blob: string,
  keys: ReadonlyMap<string, VaultKey>,
): string | undefined {
  const keyId = entryKeyId(blob);
  if (keyId === undefined) return undefined;
  const key = keys.get(keyId);
  if (!key) throw decryptFailed(redisKey, 'unknown-key', keyId || '(none)');
  try {
    const raw = Buffer.from(blob.slice(ENTRY_PREFIX.length + keyId.length + 1), 'base64');
    const decipher = createDecipheriv('aes-256-gcm', key.key, raw.subarray(0, 12));
    decipher.setAAD(entryAad(redisKey, key.id));
    decipher.setAuthTag(raw.subarray(12, 28));
    return Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString('utf8');
  } catch (err) {
    throw decryptFailed(redisKey, 'unreadable', key.id, err);
  }
}

/** True for a VAULT_DECRYPT_FAILED whose cause is this worker's secrets, not the entry. */
export function isUnknownVaultKey(err: unknown): boolean {
  return err instanceof AppError && err.code === 'VAULT_DECRYPT_FAILED'
    ? err.details?.['reason'] === 'unknown-key'
    : false;
}

function secretMissing(): AppError {
  return new AppError(
    'VAULT_SECRET_MISSING',
    'JCDS_FLEET_SECRET is not set: the s3 transport keeps temporary S3 credentials encrypted in Redis and needs it. Set JCDS_FLEET_SECRET to the same random string (16+ characters) on every worker.',
  );
}

export class CredentialVault {
  private readonly redis: Redis;
  /** Every key this worker can read with, by id (current, and previous during a rotation). */
  private readonly keys = new Map<string, VaultKey>();
  private readonly writeKey: () => Promise<VaultKey>;
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
    const current = vaultKey(options.secret);
    this.keys.set(current.id, current);
    if (options.previousSecret) {
      const previous = vaultKey(options.previousSecret);
      this.keys.set(previous.id, previous);
    }
    this.writeKey = options.writeKey ?? (async () => current);
    this.renewFn = options.renew;
    this.marginFraction = options.marginFraction ?? 0.3;
    this.maxMarginMs = options.maxMarginMs ?? 5 * 60_000;
    this.lockMs = options.lockMs ?? 30_000;
    this.now = options.now ?? Date.now;
  }

  private entryKey(name: string): string {
    return `${QUEUE_PREFIX}:vault:${name}`;
  }

  /** The v2 entry of `creds` stored under `name`, sealed with `key`. */
  encrypt(name: string, creds: VaultCredentials, key: VaultKey): string {
    return sealEntry(this.entryKey(name), JSON.stringify(creds), key);
  }

  /**
   * The credentials of the entry stored under `name`; undefined for an entry of the first
   * format (renewed like an expired one). Throws VAULT_DECRYPT_FAILED: `unknown-key` when
   * no secret of this worker sealed it, `unreadable` when it was altered or copied from
   * another key.
   */
  decrypt(name: string, blob: string): VaultCredentials | undefined {
    const text = openEntry(this.entryKey(name), blob, this.keys);
    return text === undefined ? undefined : (JSON.parse(text) as VaultCredentials);
  }

  /**
   * Stores a fresh set (from POST /api/v1/jcds/files) under `name`; with `fence` (a job's
   * lock, worker/fence.ts), only while that job's lock holds, else LOCK_LOST.
   */
  async put(
    name: string,
    creds: Omit<VaultCredentials, 'issuedAt'> & { issuedAt?: number },
    fence?: FencedWriter,
  ): Promise<VaultCredentials> {
    const full: VaultCredentials = { ...creds, issuedAt: creds.issuedAt ?? this.now() };
    const ttl = Math.max(1_000, full.expiration - this.now());
    const sealed = this.encrypt(name, full, await this.writeKey());
    if (fence) await fence.set(this.entryKey(name), sealed, ttl);
    else await this.redis.set(this.entryKey(name), sealed, 'PX', ttl);
    return full;
  }

  /** Deletes the entry; with `fence`, only while that job's lock holds, else LOCK_LOST. */
  async delete(name: string, fence?: FencedWriter): Promise<void> {
    if (fence) await fence.del(this.entryKey(name));
    else await this.redis.del(this.entryKey(name));
  }

  private marginMs(c: VaultCredentials): number {
    const lifetime = Math.max(0, c.expiration - c.issuedAt);
    return Math.min(this.maxMarginMs, lifetime * this.marginFraction);
  }

  private fresh(c: VaultCredentials): boolean {
    return c.expiration - this.now() > this.marginMs(c);
  }

  /**
   * The entry under `name`, or undefined when there is none usable: missing, of the first
   * format, or unreadable (altered, or copied from another key: renewed, never trusted). An
   * entry sealed with a secret this worker lacks is renewed too, unless this worker no longer
   * holds the fleet's secret (a rotation finished without it): FLEET_SECRET_MISMATCH.
   */
  private async read(name: string): Promise<VaultCredentials | undefined> {
    const blob = await this.redis.get(this.entryKey(name));
    if (blob === null) return undefined;
    try {
      return this.decrypt(name, blob);
    } catch (err) {
      // Sealed with a secret this worker lacks: garbage if this worker holds the fleet's
      // secret (renewed); if it does not, writeKey says so (FLEET_SECRET_MISMATCH).
      if (isUnknownVaultKey(err)) await this.writeKey();
      return undefined;
    }
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

/**
 * Writes made on behalf of a job, done only while the job's lock is held by the writer
 * (worker/fence.ts JobLock); they throw LOCK_LOST otherwise and write nothing.
 */
export interface FencedWriter {
  set(key: string, value: string, ttlMs: number): Promise<void>;
  del(key: string): Promise<void>;
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
// secret (or the vault key) ever leaving the process: the first worker stores
// `secretVerifier(secret)` under SECRET_VERIFIER_KEY (SET NX), every later one compares its
// own before it takes a job (shared/fleet-secret.ts), and so does `jcds doctor`.
//
// Verifier (v1): lowercase hex of HMAC-SHA256(key, SECRET_VERIFIER_LABEL), where key is
// scrypt(secret, "jcds-fleet-vault-v1:verifier", 32 bytes) with scrypt's default cost, the
// vault's derivation with a salt of its own (the verifier never depends on the vault's
// encryption key itself). 64 characters. A later format gets a new label and key name.
//
// The key holds a JSON record, `{"verifier", "writtenAt", "writtenBy", "previous"?,
// "rotatedAt"?}` (who set the fleet up, and the secret a rotation replaced, so that a
// refusal can say what differs); a bare verifier (the first layout) is read too.

/** The Redis key of the fleet secret's verifier. */
export const SECRET_VERIFIER_KEY = `${QUEUE_PREFIX}:vault:verifier`;
const SECRET_VERIFIER_SALT = `${SALT}:verifier`;
const SECRET_VERIFIER_LABEL = 'jcds-fleet fleet-secret verifier v1';

/** The verifier of a fleet secret (64 hex characters); reveals nothing usable about it. */
export function secretVerifier(secret: string): string {
  const key = scryptSync(secret, SECRET_VERIFIER_SALT, 32);
  return createHmac('sha256', key).update(SECRET_VERIFIER_LABEL).digest('hex');
}

/** What SECRET_VERIFIER_KEY holds. No secret: verifiers, dates and a host name. */
export interface VerifierRecord {
  verifier: string;
  /** ISO date the fleet's current secret was set (by the first worker or a rotation). */
  writtenAt?: string;
  /** "host (pid N)" of the process that wrote it. */
  writtenBy?: string;
  /** The verifier of the secret the last rotation replaced. */
  previous?: string;
  rotatedAt?: string;
}

/** Parses the stored record (JSON, or a bare verifier of the first layout). */
export function parseVerifierRecord(text: string): VerifierRecord {
  const t = text.trim();
  if (t.startsWith('{')) {
    try {
      const r = JSON.parse(t) as Partial<VerifierRecord>;
      if (typeof r.verifier === 'string') {
        const out: VerifierRecord = { verifier: r.verifier.toLowerCase() };
        for (const k of ['writtenAt', 'writtenBy', 'previous', 'rotatedAt'] as const) {
          const v = r[k];
          if (typeof v === 'string') out[k] = k === 'previous' ? v.toLowerCase() : v;
        }
        return out;
      }
    } catch {
      // Not JSON: compared as it is below (and never matches).
    }
  }
  return { verifier: t.toLowerCase() };
}

/** Constant-time equality of two verifiers. */
export function sameVerifier(a: string | undefined, b: string | undefined): boolean {
  if (a === undefined || b === undefined) return false;
  const x = Buffer.from(a, 'utf8');
  const y = Buffer.from(b, 'utf8');
  return x.length === y.length && timingSafeEqual(x, y);
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
  return sameVerifier(secretVerifier(secret), parseVerifierRecord(stored).verifier)
    ? 'match'
    : 'mismatch';
}
