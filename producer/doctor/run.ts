/** The run: every check in order, each result reported as it ends (see index.ts). */
import type { Redis } from 'ioredis';
import { JamfTokenProvider } from '../../shared/jamf/auth.ts';
import { JamfClient } from '../../shared/jamf/client.ts';
import { JamfHttp } from '../../shared/jamf/http.ts';
import { VersionSchema } from '../../shared/jamf/types.ts';
import type { ConcreteTransport } from '../../shared/queues/jobs.ts';
import { checkClock, type ClockTarget } from './clock.ts';
import { checkDistribution, checkJcdsCredentials, type CredentialFacts } from './distribution.ts';
import { checkEnvironment } from './environment.ts';
import { displayUrl, failureText, withTimeout } from './helpers.ts';
import { checkJamfAuth, checkJamfReachable, checkJamfVersion } from './jamf.ts';
import { checkPrivileges } from './privileges.ts';
import { checkRedis, checkRedisEviction } from './redis.ts';
import {
  CHECKS,
  DEFAULT_TIMEOUT_MS,
  failed,
  passed,
  redisPassword,
  scrubSecrets,
  skipped,
  type CheckName,
  type CheckResult,
} from './report.ts';
import { checkFleetSecret } from './secret.ts';

export interface DoctorOptions {
  /** Bound of each network step. @defaultValue 5000 */
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Called with each result as soon as it is known (in order). */
  onResult?: (r: CheckResult) => void;
  fetch?: typeof fetch;
  now?: () => number;
}

/** Runs every check in order; never throws for a failed check (each becomes a line). */
export async function runDoctor(
  env: Record<string, string | undefined>,
  options: DoctorOptions = {},
): Promise<CheckResult[]> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const signal = options.signal;
  const fetchImpl = options.fetch ?? fetch;
  const now = options.now ?? Date.now;
  const results: CheckResult[] = [];
  const secrets: string[] = [];
  const report = (r: CheckResult): CheckResult => {
    const clean = scrubSecrets(r, secrets);
    results.push(clean);
    options.onResult?.(clean);
    return clean;
  };
  /** A check that throws unexpectedly is a failed line, not a crash. */
  const guard = async <T>(name: CheckName, fn: () => Promise<T>, fallback: T): Promise<T> => {
    try {
      return await fn();
    } catch (err) {
      report(
        failed(
          name,
          `unexpected error: ${failureText(err)}`,
          'Rerun with JCDS_DEBUG=1 and report it with the output.',
        ),
      );
      return fallback;
    }
  };

  // Secrets this run knows, scrubbed from every line whatever happens.
  for (const name of [
    'JAMF_CLIENT_SECRET',
    'JAMF_PASSWORD',
    'JCDS_FLEET_SECRET',
    'MONITOR_PASSWORD',
  ]) {
    const v = env[name];
    if (v) secrets.push(v, v.trim());
  }
  if (env['REDIS_URL']) secrets.push(...redisPassword(env['REDIS_URL']));

  const envCheck = checkEnvironment(env);
  report(envCheck.result);
  const config = envCheck.config;
  if (config === undefined) {
    for (const name of Object.keys(CHECKS) as CheckName[]) {
      if (name !== 'environment') report(skipped(name, 'needs a valid environment (see above)'));
    }
    return results;
  }

  let redis: Redis | undefined;
  let http: JamfHttp | undefined;
  let tokens: JamfTokenProvider | undefined;
  let jamf: JamfClient | undefined;
  try {
    // 1. Redis.
    redis = await guard(
      'redis',
      async () => {
        const c = await checkRedis(config.redisUrl, timeoutMs, signal);
        report(c.result);
        return c.redis;
      },
      undefined,
    );
    if (redis) {
      const r = redis;
      await guard(
        'redis-eviction',
        async () => report(await checkRedisEviction(r, timeoutMs, signal)),
        undefined,
      );
    } else {
      report(skipped('redis-eviction', 'needs Redis (see the Redis line)'));
    }

    // 2. Jamf Pro.
    const reach = await guard(
      'jamf',
      async () =>
        report(
          await checkJamfReachable(
            config.jamfUrl,
            envCheck.invalid.has('JAMF_URL'),
            timeoutMs,
            signal,
            fetchImpl,
          ),
        ),
      undefined,
    );
    const jamfUp = reach !== undefined && reach.level !== 'fail';
    if (jamfUp && config.jamfUrl !== undefined && config.jamfAuth !== undefined) {
      http = new JamfHttp({
        baseUrl: config.jamfUrl,
        retries: 0,
        timeoutMs,
        connectTimeoutMs: timeoutMs,
        userAgent: 'jcds-fleet/0.1 doctor',
      });
      tokens = new JamfTokenProvider({ http, auth: config.jamfAuth });
      http.tokens = tokens;
    }
    let authOk = false;
    if (!jamfUp) {
      report(skipped('jamf-auth', 'needs Jamf Pro reachable (see the Jamf Pro line)'));
    } else {
      const credentialVars = [
        'JAMF_CLIENT_ID',
        'JAMF_CLIENT_SECRET',
        'JAMF_USERNAME',
        'JAMF_PASSWORD',
      ];
      const auth = await guard(
        'jamf-auth',
        async () =>
          report(
            await checkJamfAuth(
              config.jamfAuth,
              credentialVars.some(v => envCheck.invalid.has(v)),
              tokens,
              timeoutMs,
              signal,
              now,
            ),
          ),
        undefined,
      );
      authOk = auth !== undefined && auth.level !== 'fail';
    }
    const needsToken = jamfUp
      ? 'needs a Jamf Pro token (see the authentication line)'
      : 'needs Jamf Pro reachable (see the Jamf Pro line)';

    if (authOk && http) {
      const h = http;
      await guard(
        'jamf-version',
        async () => {
          const v = await checkJamfVersion(
            async s =>
              (
                await h.request<{ version: string }>({
                  method: 'GET',
                  path: '/api/v1/jamf-pro-version',
                  schema: VersionSchema,
                  signal: s,
                })
              ).body.version,
            timeoutMs,
            signal,
          );
          report(v.result);
        },
        undefined,
      );
      await guard(
        'privileges',
        async () =>
          report(
            await checkPrivileges(
              async (p, s) =>
                (
                  await h.request({
                    method: 'GET',
                    path: p.path,
                    ...(p.query ? { query: p.query } : {}),
                    acceptStatuses: [403, 404],
                    responseType: 'none',
                    signal: s,
                  })
                ).status,
              timeoutMs,
              signal,
            ),
          ),
        undefined,
      );
    } else {
      report(skipped('jamf-version', needsToken));
      report(skipped('privileges', needsToken));
    }

    // 4. Cloud distribution point and transport.
    let transport: ConcreteTransport | undefined;
    if (authOk && config.jamfUrl !== undefined && config.jamfAuth !== undefined) {
      jamf = new JamfClient({
        baseUrl: config.jamfUrl,
        auth: config.jamfAuth,
        retries: 0,
        timeoutMs,
        userAgent: 'jcds-fleet/0.1 doctor',
      });
      const client = jamf;
      const dist = await guard(
        'distribution',
        async () => {
          const d = await checkDistribution(client, config.transport, timeoutMs, signal);
          report(d.result);
          return d;
        },
        undefined,
      );
      if (dist?.preflight && dist.result.level !== 'fail') transport = dist.preflight.transport;
    } else {
      report(skipped('distribution', needsToken));
    }

    // 5. JCDS credentials.
    let facts: CredentialFacts | undefined;
    if (transport === undefined) {
      report(
        skipped(
          'jcds-credentials',
          authOk ? 'needs the transport (see the cloud distribution point line)' : needsToken,
        ),
      );
    } else if (transport !== 's3') {
      report(passed('jcds-credentials', `not needed: the transport is ${transport}`));
    } else if (jamf) {
      const client = jamf;
      facts = await guard(
        'jcds-credentials',
        async () => {
          const c = await checkJcdsCredentials(client, timeoutMs, signal, now);
          secrets.push(...c.secrets);
          report(c.result);
          return c.facts;
        },
        undefined,
      );
    }

    // 6. Clock.
    let target: ClockTarget | undefined;
    if (config.s3Endpoint) {
      target = {
        url: config.s3Endpoint,
        label: `S3 at ${displayUrl(config.s3Endpoint)} (AWS_ENDPOINT_URL_S3)`,
      };
    } else if (facts?.region) {
      const host = `s3.${facts.region}.amazonaws.com`;
      target = { url: `https://${host}/`, label: `S3 (${host})` };
    } else if (jamfUp && config.jamfUrl) {
      // No S3 endpoint is known: Jamf Pro's clock is the next best reference.
      const why =
        transport === 'package-upload'
          ? 'the package-upload transport does not talk to S3'
          : 'no S3 endpoint known: the JCDS credentials were not issued';
      target = {
        url: `${config.jamfUrl}/`,
        label: `Jamf Pro at ${displayUrl(config.jamfUrl)} (${why})`,
      };
    }
    if (target) {
      const t = target;
      await guard(
        'clock',
        async () => report(await checkClock(t, timeoutMs, signal, fetchImpl, now)),
        undefined,
      );
    } else {
      report(
        skipped(
          'clock',
          'no server to compare with: no S3 endpoint (AWS_ENDPOINT_URL_S3 or JCDS credentials) and Jamf Pro is not reachable',
        ),
      );
    }

    // 7. Fleet secret.
    await guard(
      'fleet-secret',
      async () =>
        report(
          await checkFleetSecret(
            {
              secret: config.fleetSecret,
              previous: config.fleetSecretPrevious,
              invalid: envCheck.invalid.has('JCDS_FLEET_SECRET'),
              transport,
              configured: config.transport,
              redis,
            },
            timeoutMs,
            signal,
          ),
        ),
      undefined,
    );
  } finally {
    redis?.disconnect();
    const closing: Array<Promise<unknown>> = [];
    if (jamf) closing.push(jamf.close());
    if (tokens) closing.push(tokens.invalidate());
    await withTimeout('closing', timeoutMs, () => Promise.allSettled(closing)).catch(
      () => undefined,
    );
    await http?.close().catch(() => undefined);
  }
  return results;
}
