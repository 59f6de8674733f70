/** The fleet secret check: JCDS_FLEET_SECRET is set when needed and matches the fleet's. */
import type { Redis } from 'ioredis';
import type { Transport } from '../../shared/config.ts';
import type { ConcreteTransport } from '../../shared/queues/jobs.ts';
import { SECRET_VERIFIER_KEY, checkSecretVerifier } from '../../shared/vault.ts';
import { failureText, withTimeout } from './helpers.ts';
import { failed, passed, skipped, warned, type CheckResult } from './report.ts';

export interface FleetSecretInput {
  secret: string | undefined;
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
  let verdict: 'match' | 'mismatch' | 'absent';
  try {
    verdict = await withTimeout(
      `GET ${SECRET_VERIFIER_KEY}`,
      timeoutMs,
      () => checkSecretVerifier(redis, input.secret!),
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
  if (verdict === 'match') {
    return passed(
      'fleet-secret',
      `JCDS_FLEET_SECRET is set${use} and matches the fleet's (its verifier in Redis)`,
    );
  }
  if (verdict === 'absent') {
    return passed(
      'fleet-secret',
      `JCDS_FLEET_SECRET is set${use}; Redis holds no verifier yet (${SECRET_VERIFIER_KEY}: workers write one), so it is not compared`,
    );
  }
  return failed(
    'fleet-secret',
    `JCDS_FLEET_SECRET is set but differs from the one the fleet uses (the verifier in ${SECRET_VERIFIER_KEY} does not match): a worker started with it refuses to start (FLEET_SECRET_MISMATCH)`,
    'Use the same JCDS_FLEET_SECRET here and on every worker; to change the fleet\'s secret, follow "Rotating the fleet secret" in README.md (JCDS_FLEET_SECRET_PREVIOUS on the workers, then `jcds vault rotate`).',
  );
}
