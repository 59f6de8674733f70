/** The credential vault against a real redis-server. */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { AppError } from '../../shared/errors.ts';
import { QUEUE_PREFIX } from '../../shared/queues/names.ts';
import { CredentialVault, type VaultCredentials } from '../../shared/vault.ts';
import { startRedis, type RedisServer } from '../helpers/redis.ts';

let server: RedisServer;
let redis: Redis;

beforeAll(async () => {
  server = await startRedis();
  redis = server.client();
});
afterAll(async () => {
  redis?.disconnect();
  await server?.stop();
});

/** The Redis key of vault entry `name` (CredentialVault's layout). */
function vaultRedisKey(name: string): string {
  return `${QUEUE_PREFIX}:vault:${name}`;
}

let serial = 0;
function issue(ttlMs: number): Omit<VaultCredentials, 'issuedAt'> {
  serial++;
  return {
    accessKeyId: `ASIA${serial}`,
    secretAccessKey: `very-secret-${serial}`,
    sessionToken: `session-token-${serial}`,
    expiration: Date.now() + ttlMs,
    region: 'us-east-1',
    bucketName: 'bucket',
    path: 'jcds/',
  };
}

describe('CredentialVault', () => {
  it('stores credentials encrypted: Redis never holds the secret in clear text', async () => {
    const vault = new CredentialVault({
      redis,
      secret: 'a-fleet-secret-of-16+',
      renew: async () => issue(60_000),
    });
    await vault.put('enc', issue(60_000));
    const keys = await redis.keys('*vault:enc*');
    expect(keys).toHaveLength(1);
    const raw = (await redis.get(keys[0]!))!;
    expect(raw).not.toMatch(/very-secret|session-token|ASIA/);
    const ttl = await redis.pttl(keys[0]!);
    expect(ttl).toBeGreaterThan(50_000);
    expect(ttl).toBeLessThanOrEqual(60_000);
    expect((await vault.get('enc')).secretAccessKey).toMatch(/^very-secret-/);
  });

  it('an entry sealed with a secret this vault lacks is never trusted: renewed, not failed', async () => {
    const a = new CredentialVault({
      redis,
      secret: 'first-secret-xxxxxxxx',
      renew: async () => issue(60_000),
    });
    let renewals = 0;
    const b = new CredentialVault({
      redis,
      secret: 'other-secret-xxxxxxxx',
      renew: async () => {
        renewals++;
        return issue(60_000);
      },
    });
    const sealedByA = await a.put('wrong', issue(60_000));
    const raw = (await redis.get(vaultRedisKey('wrong')))!;
    // b cannot open it: it names a key b does not hold.
    expect(() => b.decrypt('wrong', raw)).toThrow(/does not have \(key id [0-9a-f]{16}\)/);
    const got = await b.get('wrong');
    expect(renewals).toBe(1);
    expect(got.accessKeyId).not.toBe(sealedByA.accessKeyId);
  });

  it('an entry is bound to its key (AES-GCM associated data): copied under another key it does not decrypt, and is renewed there', async () => {
    let renewals = 0;
    const vault = new CredentialVault({
      redis,
      secret: 'bound-secret-xxxxxxxx',
      renew: async () => {
        renewals++;
        return issue(60_000);
      },
    });
    const original = await vault.put('upload-a', issue(60_000));
    const raw = (await redis.get(vaultRedisKey('upload-a')))!;
    expect(raw).toMatch(/^v2\.[0-9a-f]{16}\./);
    expect(vault.decrypt('upload-a', raw)?.accessKeyId).toBe(original.accessKeyId);
    let err: unknown;
    try {
      vault.decrypt('upload-b', raw);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(AppError);
    expect((err as AppError).code).toBe('VAULT_DECRYPT_FAILED');
    expect((err as AppError).message).toMatch(/altered or copied from another key/);
    // Copied in Redis: the reader of upload-b does not use upload-a's credentials.
    await redis.set(vaultRedisKey('upload-b'), raw, 'PX', 60_000);
    const b = await vault.get('upload-b');
    expect(renewals).toBe(1);
    expect(b.accessKeyId).not.toBe(original.accessKeyId);
    // A flipped byte is caught the same way.
    const flipped = `${raw.slice(0, -6)}${raw.slice(-6, -5) === 'A' ? 'B' : 'A'}${raw.slice(-5)}`;
    expect(() => vault.decrypt('upload-a', flipped)).toThrow(/altered or copied/);
  });

  it('an entry of the first format (no version, no associated data) is renewed like an expired one', async () => {
    let renewals = 0;
    const vault = new CredentialVault({
      redis,
      secret: 'upgrade-secret-xxxxxx',
      renew: async () => {
        renewals++;
        return issue(60_000);
      },
    });
    // The first format: base64(iv | tag | AES-GCM ciphertext), no prefix.
    const legacy = Buffer.concat([Buffer.alloc(28, 7), Buffer.from('ciphertext')]).toString(
      'base64',
    );
    await redis.set(vaultRedisKey('legacy'), legacy, 'PX', 60_000);
    expect(vault.decrypt('legacy', legacy)).toBeUndefined();
    const c = await vault.get('legacy');
    expect(renewals).toBe(1);
    expect((await redis.get(vaultRedisKey('legacy')))!).toMatch(/^v2\./);
    expect(c.expiration).toBeGreaterThan(Date.now());
  });

  it('refuses to start without a secret', () => {
    expect(() => new CredentialVault({ redis, secret: '', renew: async () => issue(1) })).toThrow(
      /JCDS_FLEET_SECRET/,
    );
  });

  it('100 concurrent readers across 3 vault instances renew expiring credentials exactly once', async () => {
    let renewals = 0;
    const renew = async (): Promise<Omit<VaultCredentials, 'issuedAt'>> => {
      renewals++;
      await sleep(50);
      return issue(60_000);
    };
    const vaults = [0, 1, 2].map(
      () => new CredentialVault({ redis, secret: 'shared-secret-xxxxxxxx', renew }),
    );
    await vaults[0]!.put('shared', { ...issue(2_000), issuedAt: Date.now() - 58_000 }); // inside the margin
    const got = await Promise.all(
      Array.from({ length: 100 }, (_, i) => vaults[i % 3]!.get('shared')),
    );
    expect(renewals).toBe(1);
    expect(new Set(got.map(c => c.accessKeyId)).size).toBe(1);
  });

  it('after ExpiredToken, N parts naming the same stale key renew once', async () => {
    let renewals = 0;
    const vault = new CredentialVault({
      redis,
      secret: 'shared-secret-xxxxxxxx',
      renew: async () => {
        renewals++;
        return issue(60_000);
      },
    });
    const first = await vault.put('stale', issue(60_000));
    const after = await Promise.all(
      Array.from({ length: 20 }, () => vault.get('stale', first.accessKeyId)),
    );
    expect(renewals).toBe(1);
    expect(after.every(c => c.accessKeyId !== first.accessKeyId)).toBe(true);
  });

  it('a missing entry (expired out of Redis) is renewed on demand', async () => {
    let renewals = 0;
    const vault = new CredentialVault({
      redis,
      secret: 'shared-secret-xxxxxxxx',
      renew: async () => {
        renewals++;
        return issue(60_000);
      },
    });
    const c = await vault.get('never-stored');
    expect(renewals).toBe(1);
    expect(c.expiration).toBeGreaterThan(Date.now());
  });
});
