/**
 * The fleet secret, checked rather than trusted. A worker whose JCDS_FLEET_SECRET differs
 * from the fleet's seals vault entries nobody else can open (and opens none of theirs): one
 * such worker made every upload of a 2-worker fleet fail for good. So:
 *
 * - At start, before it takes a job, a worker compares its secret with the verifier in
 *   Redis (SECRET_VERIFIER_KEY, shared/vault.ts), writing it when there is none (SET NX: the
 *   first worker defines the fleet's secret). A mismatch refuses the start with
 *   FLEET_SECRET_MISMATCH (exit 3), saying who set the fleet up and when, never the secret.
 * - Rotation: a worker may hold the previous secret too (JCDS_FLEET_SECRET_PREVIOUS). It
 *   is accepted when the fleet still uses it (the rotation has not been run yet), and it
 *   reads entries sealed with it. New entries are sealed with whichever of the worker's
 *   secrets the fleet's verifier names, read before every write, so a worker that already
 *   has the new secret keeps writing what workers still on the old one can read until
 *   `jcds vault rotate` switches the fleet (rotateFleetSecret below): it replaces the
 *   verifier and re-seals every entry under the new secret.
 * - A running worker whose secrets no longer include the fleet's (the rotation ran without
 *   it) meets FLEET_SECRET_MISMATCH at its next vault write: the failure policy treats it
 *   like lost Jamf credentials (worker/fitness.ts).
 */
import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Redis } from 'ioredis';
import { AppError } from './errors.ts';
import { QUEUE_PREFIX } from './queues/names.ts';
import {
  entryKeyId,
  openEntry,
  parseVerifierRecord,
  sameVerifier,
  sealEntry,
  SECRET_VERIFIER_KEY,
  vaultKey,
  type VaultKey,
  type VerifierRecord,
} from './vault.ts';

/** This worker's fleet secrets, as vault keys. */
export interface FleetKeys {
  current: VaultKey;
  previous?: VaultKey | undefined;
}

/** A rotation's secrets: the new one (`current`) and the one it replaces. */
export interface RotationKeys {
  current: VaultKey;
  previous: VaultKey;
}

export function fleetKeys(secret: string, previous?: string): FleetKeys {
  return { current: vaultKey(secret), previous: previous ? vaultKey(previous) : undefined };
}

/** "host (pid N)": who wrote a verifier record. */
export function writer(): string {
  return `${hostname()} (pid ${process.pid})`;
}

const ROTATION_DOC = 'README.md, "Rotating the fleet secret"';

function describeRecord(r: VerifierRecord): string {
  const when = r.writtenAt ?? 'at an unknown date';
  const by = r.writtenBy ? ` by ${r.writtenBy}` : '';
  return r.rotatedAt ? `rotated ${when}${by}` : `written ${when}${by}`;
}

/** The refusal of a secret that matches neither the fleet's verifier nor a rotation's. */
export function mismatchError(record: VerifierRecord, keys: FleetKeys): AppError {
  const where = `the verifier in Redis, ${SECRET_VERIFIER_KEY}, ${describeRecord(record)}`;
  if (
    sameVerifier(keys.current.verifier, record.previous) ||
    sameVerifier(keys.previous?.verifier, record.previous)
  ) {
    const message = sameVerifier(keys.current.verifier, record.previous)
      ? `JCDS_FLEET_SECRET is the secret this fleet used before its rotation (${where}): set JCDS_FLEET_SECRET to the fleet's new secret (the one the other workers use) and drop JCDS_FLEET_SECRET_PREVIOUS.`
      : `JCDS_FLEET_SECRET is not this fleet's secret, and JCDS_FLEET_SECRET_PREVIOUS is the one its rotation replaced (${where}): set JCDS_FLEET_SECRET to the fleet's new secret (the one the other workers use) and drop JCDS_FLEET_SECRET_PREVIOUS.`;
    return new AppError('FLEET_SECRET_MISMATCH', message, {
      details: { verifierWrittenAt: record.writtenAt, verifierWrittenBy: record.writtenBy },
    });
  }
  const also = keys.previous ? ' (nor does JCDS_FLEET_SECRET_PREVIOUS)' : '';
  return new AppError(
    'FLEET_SECRET_MISMATCH',
    `JCDS_FLEET_SECRET differs from the one this fleet was set up with (${where})${also}: this worker could not read the S3 credentials the others store, nor they its. Set JCDS_FLEET_SECRET to the value every other worker uses. To change the fleet's secret instead, give workers the new one in JCDS_FLEET_SECRET and the old one in JCDS_FLEET_SECRET_PREVIOUS, then run \`jcds vault rotate\` (${ROTATION_DOC}).`,
    { details: { verifierWrittenAt: record.writtenAt, verifierWrittenBy: record.writtenBy } },
  );
}

export interface FleetSecretCheck {
  /** Which of this worker's secrets the fleet uses now. */
  matched: 'current' | 'previous';
  /** True when this worker wrote the verifier (the first worker of the fleet). */
  created: boolean;
  record: VerifierRecord;
}

/** Reads the record; undefined when there is none. */
async function readRecord(redis: Pick<Redis, 'get'>): Promise<VerifierRecord | undefined> {
  const text = await redis.get(SECRET_VERIFIER_KEY);
  return text === null ? undefined : parseVerifierRecord(text);
}

function recordText(r: VerifierRecord): string {
  return JSON.stringify(r);
}

/** The fleet's secret as this worker sees it: checked at start, and before each vault write. */
export class FleetSecret {
  private readonly redis: Pick<Redis, 'get' | 'set'>;
  readonly keys: FleetKeys;

  constructor(redis: Pick<Redis, 'get' | 'set'>, keys: FleetKeys) {
    this.redis = redis;
    this.keys = keys;
  }

  private match(record: VerifierRecord): 'current' | 'previous' | undefined {
    if (sameVerifier(this.keys.current.verifier, record.verifier)) return 'current';
    if (sameVerifier(this.keys.previous?.verifier, record.verifier)) return 'previous';
    return undefined;
  }

  /**
   * Before the worker takes a job: writes the verifier of JCDS_FLEET_SECRET when Redis has
   * none (atomically: of two first workers with different secrets, one is refused), else
   * compares. Throws FLEET_SECRET_MISMATCH.
   */
  async ensure(): Promise<FleetSecretCheck> {
    const fresh: VerifierRecord = {
      verifier: this.keys.current.verifier,
      writtenAt: new Date().toISOString(),
      writtenBy: writer(),
    };
    const created = await this.redis.set(SECRET_VERIFIER_KEY, recordText(fresh), 'NX');
    if (created === 'OK') return { matched: 'current', created: true, record: fresh };
    const record = await readRecord(this.redis);
    // Deleted between the two calls (an operator resetting it): try once more.
    if (record === undefined) return this.ensure();
    const matched = this.match(record);
    if (matched === undefined) throw mismatchError(record, this.keys);
    return { matched, created: false, record };
  }

  /** The key new vault entries are sealed with: the one of ours the fleet uses now. */
  readonly writeKey = async (): Promise<VaultKey> => {
    const record = await readRecord(this.redis);
    if (record === undefined) return this.keys.current;
    const matched = this.match(record);
    if (matched === 'current') return this.keys.current;
    if (matched === 'previous') return this.keys.previous!;
    throw mismatchError(record, this.keys);
  };
}

// --- Rotation -------------------------------------------------------------------------

export interface RotationResult {
  /** What the verifier was: the previous secret's (rotated now), already the new one, or none. */
  verifier: 'rotated' | 'already-current' | 'written';
  /** Entries re-sealed under the new secret. */
  resealed: number;
  /** Entries already sealed with it. */
  current: number;
  /** Entries of the first format or sealed with a secret neither given (renewed by workers). */
  skipped: number;
  /** Sweeps made (a worker that read the old verifier just before the switch may write once more). */
  sweeps: number;
}

/** Replaces the verifier only if it is still `expected` (another rotation may race). */
const SWAP_IF_SAME = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2])
  return 1
end
return 0`;

/** Re-seals an entry only if nobody rewrote it meanwhile, keeping its expiry. */
const RESEAL_IF_SAME = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
local ttl = redis.call('PTTL', KEYS[1])
if ttl > 0 then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ttl)
else
  redis.call('SET', KEYS[1], ARGV[2])
end
return 1`;

const VAULT_PATTERN = `${QUEUE_PREFIX}:vault:*`;

async function sweep(
  redis: Redis,
  keys: RotationKeys,
): Promise<Pick<RotationResult, 'resealed' | 'current' | 'skipped'>> {
  const out = { resealed: 0, current: 0, skipped: 0 };
  const ring = new Map([[keys.previous.id, keys.previous]]);
  let cursor = '0';
  do {
    const [next, found] = await redis.scan(cursor, 'MATCH', VAULT_PATTERN, 'COUNT', 500);
    cursor = next;
    for (const redisKey of found) {
      if (redisKey === SECRET_VERIFIER_KEY || redisKey.endsWith(':lock')) continue;
      const blob = await redis.get(redisKey).catch(() => null);
      if (blob === null) continue;
      const id = entryKeyId(blob);
      if (id === keys.current.id) {
        out.current++;
        continue;
      }
      if (id !== keys.previous.id) {
        out.skipped++;
        continue;
      }
      let plain: string | undefined;
      try {
        plain = openEntry(redisKey, blob, ring);
      } catch {
        plain = undefined;
      }
      if (plain === undefined) {
        out.skipped++;
        continue;
      }
      const sealed = sealEntry(redisKey, plain, keys.current);
      const done = await redis.eval(RESEAL_IF_SAME, 1, redisKey, blob, sealed);
      if (done === 1) out.resealed++;
    }
  } while (cursor !== '0');
  return out;
}

/**
 * `jcds vault rotate`: makes `keys.current` the fleet's secret. The verifier moves from the
 * previous secret's to the current one's (remembering the previous, so a worker still on
 * it is told what happened), then every vault entry sealed with the previous secret is
 * re-sealed with the current one, keeping its expiry. Sweeps again until one finds nothing
 * to re-seal (at most `maxSweeps`): a worker that read the old verifier just before the
 * switch may write one more entry with it. Idempotent: run it again after an interruption.
 */
export async function rotateFleetSecret(
  redis: Redis,
  keys: RotationKeys,
  options: { maxSweeps?: number; pauseMs?: number } = {},
): Promise<RotationResult> {
  const now = new Date().toISOString();
  const text = await redis.get(SECRET_VERIFIER_KEY);
  const record = text === null ? undefined : parseVerifierRecord(text);
  let verifier: RotationResult['verifier'];
  if (record === undefined) {
    const fresh: VerifierRecord = {
      verifier: keys.current.verifier,
      writtenAt: now,
      writtenBy: writer(),
    };
    const set = await redis.set(SECRET_VERIFIER_KEY, recordText(fresh), 'NX');
    if (set !== 'OK') return rotateFleetSecret(redis, keys, options);
    verifier = 'written';
  } else if (sameVerifier(keys.current.verifier, record.verifier)) {
    verifier = 'already-current';
  } else if (sameVerifier(keys.previous.verifier, record.verifier)) {
    const next: VerifierRecord = {
      verifier: keys.current.verifier,
      writtenAt: now,
      writtenBy: writer(),
      previous: keys.previous.verifier,
      rotatedAt: now,
    };
    const swapped = await redis.eval(SWAP_IF_SAME, 1, SECRET_VERIFIER_KEY, text!, recordText(next));
    if (swapped !== 1) return rotateFleetSecret(redis, keys, options);
    verifier = 'rotated';
  } else {
    throw mismatchError(record, keys);
  }
  const total = { resealed: 0, current: 0, skipped: 0 };
  const maxSweeps = options.maxSweeps ?? 3;
  let sweeps = 0;
  for (;;) {
    const r = await sweep(redis, keys);
    sweeps++;
    total.resealed += r.resealed;
    total.current = r.current;
    total.skipped = r.skipped;
    if ((r.resealed === 0 && sweeps > 1) || sweeps >= maxSweeps) break;
    await sleep(options.pauseMs ?? 1_000);
  }
  return { verifier, ...total, sweeps };
}
