/**
 * The fleet secret's verifier and its rotation (shared/fleet-secret.ts) against a real
 * redis-server: the first worker defines the secret (SET NX), a different one is refused
 * with what differs and never the secret, a previous secret is accepted while the fleet
 * still uses it, and `rotateFleetSecret` switches the fleet and re-seals the vault.
 * The same over worker processes: faults-services.test.ts (F14).
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { AppError } from '../../shared/errors.ts';
import { FleetSecret, fleetKeys, rotateFleetSecret } from '../../shared/fleet-secret.ts';
import { QUEUE_PREFIX } from '../../shared/queues/names.ts';
import {
  CredentialVault,
  SECRET_VERIFIER_KEY,
  checkSecretVerifier,
  parseVerifierRecord,
  secretVerifier,
  vaultKey,
  type VaultCredentials,
} from '../../shared/vault.ts';
import { startRedis, type RedisServer } from '../helpers/redis.ts';

const OLD = 'the-old-fleet-secret-0123';
const NEW = 'the-new-fleet-secret-4567';
const OTHER = 'a-stray-fleet-secret-8910';

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
beforeEach(async () => {
  await redis.flushall();
});

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

/** A worker's vault as worker/start.ts builds it. */
function workerVault(secret: string, previous?: string) {
  const guard = new FleetSecret(redis, fleetKeys(secret, previous));
  const vault = new CredentialVault({
    redis,
    secret,
    previousSecret: previous,
    writeKey: guard.writeKey,
    renew: async () => issue(60_000),
  });
  return { guard, vault };
}

async function caught(p: Promise<unknown>): Promise<AppError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(AppError);
    return err as AppError;
  }
  throw new Error('expected a rejection');
}

const keyIdOf = async (name: string) =>
  (await redis.get(`${QUEUE_PREFIX}:vault:${name}`))!.split('.')[1];

describe('the fleet secret verifier', () => {
  it('the first worker writes it (SET NX); the same secret matches; a different one is refused naming the date and writer, never the secret', async () => {
    const first = await new FleetSecret(redis, fleetKeys(OLD)).ensure();
    expect(first).toMatchObject({ created: true, matched: 'current' });
    const stored = (await redis.get(SECRET_VERIFIER_KEY))!;
    const record = parseVerifierRecord(stored);
    expect(record.verifier).toBe(secretVerifier(OLD));
    expect(record.writtenBy).toMatch(/\(pid \d+\)$/);
    expect(stored).not.toContain(OLD);
    expect(await checkSecretVerifier(redis, OLD)).toBe('match');

    const again = await new FleetSecret(redis, fleetKeys(OLD)).ensure();
    expect(again).toMatchObject({ created: false, matched: 'current' });

    const err = await caught(new FleetSecret(redis, fleetKeys(OTHER)).ensure());
    expect(err.code).toBe('FLEET_SECRET_MISMATCH');
    expect(err.message).toMatch(
      /^JCDS_FLEET_SECRET differs from the one this fleet was set up with \(the verifier in Redis/,
    );
    expect(err.message).toContain(`written ${record.writtenAt} by ${record.writtenBy}`);
    expect(err.message).toMatch(/JCDS_FLEET_SECRET_PREVIOUS.*jcds vault rotate/);
    for (const s of [OLD, OTHER, secretVerifier(OLD), secretVerifier(OTHER)])
      expect(JSON.stringify({ m: err.message, d: err.details })).not.toContain(s);
  });

  it('two first workers with different secrets at once: exactly one defines the fleet, the other is refused', async () => {
    const results = await Promise.allSettled(
      [OLD, OTHER].map(s => new FleetSecret(redis, fleetKeys(s)).ensure()),
    );
    const ok = results.filter(r => r.status === 'fulfilled');
    const refused = results.filter(r => r.status === 'rejected');
    expect(ok).toHaveLength(1);
    expect(refused).toHaveLength(1);
    expect(((refused[0] as PromiseRejectedResult).reason as AppError).code).toBe(
      'FLEET_SECRET_MISMATCH',
    );
  });

  it('a verifier of the first layout (a bare hex string, as jcds doctor tests write it) is read too', async () => {
    await redis.set(SECRET_VERIFIER_KEY, secretVerifier(OLD));
    expect(await new FleetSecret(redis, fleetKeys(OLD)).ensure()).toMatchObject({
      matched: 'current',
    });
    const err = await caught(new FleetSecret(redis, fleetKeys(OTHER)).ensure());
    expect(err.message).toContain('written at an unknown date');
  });
});

describe('rotating the fleet secret', () => {
  it('previous secret accepted and written with until the rotation; then entries re-sealed with their expiry, the new secret written with, and an old-only worker refused', async () => {
    // The fleet runs on OLD.
    const oldWorker = workerVault(OLD);
    await oldWorker.guard.ensure();
    const a = await oldWorker.vault.put('upload-a', issue(60_000));
    // A worker restarted with both secrets joins: accepted through the previous one, and it
    // keeps sealing with OLD so that workers still on OLD read what it writes.
    const both = workerVault(NEW, OLD);
    expect(await both.guard.ensure()).toMatchObject({ matched: 'previous', created: false });
    expect((await both.vault.get('upload-a')).accessKeyId).toBe(a.accessKeyId);
    const b = await both.vault.put('upload-b', issue(60_000));
    expect(await keyIdOf('upload-b')).toBe(vaultKey(OLD).id);
    expect((await oldWorker.vault.get('upload-b')).accessKeyId).toBe(b.accessKeyId);
    // A worker with only NEW is refused before the rotation, with the way to rotate.
    const early = await caught(new FleetSecret(redis, fleetKeys(NEW)).ensure());
    expect(early.message).toMatch(/JCDS_FLEET_SECRET_PREVIOUS/);

    const ttlBefore = await redis.pttl(`${QUEUE_PREFIX}:vault:upload-a`);
    const r = await rotateFleetSecret(
      redis,
      { current: vaultKey(NEW), previous: vaultKey(OLD) },
      { pauseMs: 50 },
    );
    expect(r).toMatchObject({ verifier: 'rotated', resealed: 2, skipped: 0 });
    expect(r.sweeps).toBeGreaterThanOrEqual(2);
    const ttlAfter = await redis.pttl(`${QUEUE_PREFIX}:vault:upload-a`);
    expect(ttlAfter).toBeGreaterThan(0);
    expect(ttlAfter).toBeLessThanOrEqual(ttlBefore);
    expect(await keyIdOf('upload-a')).toBe(vaultKey(NEW).id);
    expect(await keyIdOf('upload-b')).toBe(vaultKey(NEW).id);
    const record = parseVerifierRecord((await redis.get(SECRET_VERIFIER_KEY))!);
    expect(record).toMatchObject({ verifier: secretVerifier(NEW), previous: secretVerifier(OLD) });

    // The worker with both now writes with NEW and reads the re-sealed entries.
    expect((await both.vault.get('upload-a')).accessKeyId).toBe(a.accessKeyId);
    await both.vault.put('upload-c', issue(60_000));
    expect(await keyIdOf('upload-c')).toBe(vaultKey(NEW).id);
    // A worker with only NEW is accepted now.
    expect(await new FleetSecret(redis, fleetKeys(NEW)).ensure()).toMatchObject({
      matched: 'current',
    });
    // A worker started with only OLD is refused, told it holds the secret the rotation replaced.
    const late = await caught(new FleetSecret(redis, fleetKeys(OLD)).ensure());
    expect(late.code).toBe('FLEET_SECRET_MISMATCH');
    expect(late.message).toMatch(
      /JCDS_FLEET_SECRET is the secret this fleet used before its rotation/,
    );
    expect(late.message).toContain(`rotated ${record.rotatedAt}`);
    expect(late.message).not.toContain(OLD);
    // And one still running on OLD meets the same code at its next vault write: the worker
    // hands its job back (worker/fitness.ts), it does not fail it.
    const stale = await caught(oldWorker.vault.put('upload-d', issue(60_000)));
    expect(stale.code).toBe('FLEET_SECRET_MISMATCH');
    // Reading an entry it cannot open tells the same, instead of renewing over it.
    const unreadable = await caught(oldWorker.vault.get('upload-c'));
    expect(unreadable.code).toBe('FLEET_SECRET_MISMATCH');

    // Idempotent: a second run re-seals nothing.
    const again = await rotateFleetSecret(
      redis,
      { current: vaultKey(NEW), previous: vaultKey(OLD) },
      { pauseMs: 50 },
    );
    expect(again).toMatchObject({ verifier: 'already-current', resealed: 0, current: 3 });
  });

  it('refuses to rotate when neither secret is the fleet one', async () => {
    await new FleetSecret(redis, fleetKeys(OTHER)).ensure();
    const err = await caught(
      rotateFleetSecret(redis, { current: vaultKey(NEW), previous: vaultKey(OLD) }),
    );
    expect(err.code).toBe('FLEET_SECRET_MISMATCH');
    expect(parseVerifierRecord((await redis.get(SECRET_VERIFIER_KEY))!).verifier).toBe(
      secretVerifier(OTHER),
    );
  });
});
