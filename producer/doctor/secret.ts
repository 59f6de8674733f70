/** The fleet secret check: JCDS_FLEET_SECRET is set when needed and matches the fleet's. */
import type { Redis } from 'ioredis';
import type { Transport } from '../../shared/config.ts';
import type { ConcreteTransport } from '../../shared/queues/jobs.ts';
import { fleetKeys, mismatchError } from '../../shared/fleet-secret.ts';
import {
  SECRET_VERIFIER_KEY,
  parseVerifierRecord,
  sameVerifier,
  secretVerifier,
  type VerifierRecord,
} from '../../shared/vault.ts';
import { failureText, withTimeout } from './helpers.ts';
import { failed, passed, skipped, warned, type CheckResult } from './report.ts';

export interface FleetSecretInput {
  secret: string | undefined;
  /** JCDS_FLEET_SECRET_PREVIOUS: the secret a rotation replaces, accepted as a worker accepts it. */
  previous?: string | undefined;
  /** JCDS_FLEET_SECRET was set but invalid (the Environment line names it). */
  invalid: boolean;
  /** The transport uploads take (undefined: not known; judged from JCDS_TRANSPORT). */
  transport: ConcreteTransport | undefined;
  configured: Transport;
  /** Redis, or why it is not available. */
  redis: Pick<Redis, 'get'> | undefined;
}

const SECRET_FIX =
  'Set JCDS_FLEET_SECRET to the same random string (16+ characters) on every worker and here, e.g. `openssl rand -base64 32` once, shared through your secret store.';

export async function checkFleetSecret(
  input: FleetSecretInput,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<CheckResult> {
  const transport = input.transport;
  const needed =
    transport === undefined ? input.configured !== 'package-upload' : transport === 's3';
  const why =
    transport === undefined
      ? `JCDS_TRANSPORT=${input.configured}`
      : `the transport is ${transport}`;
  if (input.invalid) {
    return failed(
      'fleet-secret',
      'JCDS_FLEET_SECRET is invalid (see Environment above)',
      SECRET_FIX,
    );
  }
  if (input.secret === undefined) {
    return needed
      ? failed(
          'fleet-secret',
          `JCDS_FLEET_SECRET is not set, and ${why}: workers keep the temporary S3 credentials encrypted in Redis with it`,
          SECRET_FIX,
        )
      : passed('fleet-secret', `not needed (${why})`);
  }
  if (input.redis === undefined) {
    return skipped(
      'fleet-secret',
      'JCDS_FLEET_SECRET is set; comparing it with the fleet needs Redis (see the Redis line)',
    );
  }
  const redis = input.redis;
  let record: VerifierRecord | undefined;
  try {
    record = await withTimeout(
      `GET ${SECRET_VERIFIER_KEY}`,
      timeoutMs,
      async () => {
        const text = await redis.get(SECRET_VERIFIER_KEY);
        return text === null ? undefined : parseVerifierRecord(text);
      },
      signal,
    );
  } catch (err) {
    return warned(
      'fleet-secret',
      `JCDS_FLEET_SECRET is set; cannot read the fleet's verifier (${SECRET_VERIFIER_KEY}): ${failureText(err)}`,
      'Run `jcds doctor` again once Redis answers.',
    );
  }
  const use = needed ? '' : ` (not needed: ${why})`;
  if (record === undefined) {
    return passed(
      'fleet-secret',
      `JCDS_FLEET_SECRET is set${use}; Redis holds no verifier yet (${SECRET_VERIFIER_KEY}: workers write one), so it is not compared`,
    );
  }
  // As a worker judges it at start (shared/fleet-secret.ts): its secret, or the previous one
  // while a rotation has not been run yet.
  if (sameVerifier(secretVerifier(input.secret), record.verifier)) {
    return passed(
      'fleet-secret',
      `JCDS_FLEET_SECRET is set${use} and matches the fleet's (its verifier in Redis)` +
        (input.previous !== undefined
          ? "; JCDS_FLEET_SECRET_PREVIOUS is no longer the fleet's (the rotation has run): drop it once every worker has the new secret"
          : ''),
    );
  }
  if (
    input.previous !== undefined &&
    sameVerifier(secretVerifier(input.previous), record.verifier)
  ) {
    return passed(
      'fleet-secret',
      `JCDS_FLEET_SECRET_PREVIOUS matches the fleet's verifier and JCDS_FLEET_SECRET is the new secret${use}: a rotation is under way. Once every worker has both, run \`jcds vault rotate\` (README.md, "Rotating the fleet secret")`,
    );
  }
  const fix =
    'Use the same JCDS_FLEET_SECRET here and on every worker; to change the fleet\'s secret, follow "Rotating the fleet secret" in README.md (JCDS_FLEET_SECRET_PREVIOUS on the workers, then `jcds vault rotate`).';
  // A secret that a rotation replaced: the worker's own refusal says so and what to do.
  const keys = fleetKeys(input.secret, input.previous);
  if (
    sameVerifier(keys.current.verifier, record.previous) ||
    sameVerifier(keys.previous?.verifier, record.previous)
  ) {
    return failed(
      'fleet-secret',
      `${mismatchError(record, keys).message} (a worker started with it refuses to start: FLEET_SECRET_MISMATCH)`,
      fix,
    );
  }
  return failed(
    'fleet-secret',
    `JCDS_FLEET_SECRET is set but differs from the one the fleet uses (the verifier in ${SECRET_VERIFIER_KEY} does not match)${input.previous !== undefined ? ', and so does JCDS_FLEET_SECRET_PREVIOUS' : ''}: a worker started with ${input.previous !== undefined ? 'them' : 'it'} refuses to start (FLEET_SECRET_MISMATCH)`,
    fix,
  );
}
