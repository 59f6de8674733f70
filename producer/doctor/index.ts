/**
 * `jcds doctor`: what a Mac admin runs first against a real Jamf Pro. Each check is a
 * function that returns a `CheckResult` (ok, warn or fail, what was found, the fix), so
 * it can be tested alone; `runDoctor` runs them in order and reports each as it ends.
 *
 *   environment       the variables parse (an invalid one is named; the rest still run)
 *   redis             REDIS_URL answers; the server's version (BullMQ needs 5+, wants 6.2+)
 *   redis-eviction    maxmemory-policy is noeviction (CONFIG GET, else INFO memory)
 *   jamf              JAMF_URL answers like the Jamf Pro API (GET /api/v1/health-check)
 *   jamf-auth         a token is issued (OAuth client or user account)
 *   jamf-version      GET /api/v1/jamf-pro-version (11.5+ for the package-upload transport)
 *   privileges        the read privileges, tried with GETs; a 403 names the missing one.
 *                     Create/Update/Delete Packages cannot be tried without writing: listed
 *                     as not checked. Create Jamf Cloud Distribution Service Files is tried
 *                     by jcds-credentials (s3 transport only).
 *   distribution      preflight(): cdnType, JCDS v1, package upload, the transport chosen
 *   jcds-credentials  s3 transport: POST /api/v1/jcds/files and renew-credentials (on Jamf
 *                     Pro this creates a temporary upload record, no file and no package)
 *   clock             skew against the Date header of S3 (AWS_ENDPOINT_URL_S3, or the
 *                     regional endpoint the credentials name), else of Jamf Pro
 *   fleet-secret      JCDS_FLEET_SECRET set when the s3 transport is used; compared with the
 *                     fleet's verifier in Redis (shared/vault.ts) when one is stored
 *
 * A check that needs an earlier one's result (a token, the transport) is reported as
 * skipped, with the reason, when that one failed. Every network step is bounded by
 * `timeoutMs`. Nothing secret is ever put in a result: no password, client secret, token,
 * S3 key, session token, presigned URL, fleet secret or verifier (every result also goes
 * through a scrub of the secret values this run knows).
 */
export { MAX_SKEW_MS, WARN_SKEW_MS, checkClock, type ClockTarget } from './clock.ts';
export {
  checkDistribution,
  checkJcdsCredentials,
  type CredentialFacts,
  type CredentialsApi,
} from './distribution.ts';
export { checkEnvironment, type EnvironmentCheck } from './environment.ts';
export { CheckTimeoutError, displayUrl, failureText, withTimeout } from './helpers.ts';
export { checkJamfAuth, checkJamfReachable, checkJamfVersion, type TokenIssuer } from './jamf.ts';
export {
  CREDENTIALS_PRIVILEGE,
  NOT_CHECKED_PRIVILEGES,
  READ_PROBES,
  checkPrivileges,
  type PrivilegeProbe,
  type ProbeFn,
} from './privileges.ts';
export { checkRedis, checkRedisEviction } from './redis.ts';
export {
  CHECKS,
  DEFAULT_TIMEOUT_MS,
  checkJson,
  checkOk,
  failed,
  formatCheck,
  formatSummary,
  passed,
  scrubSecrets,
  skipped,
  summarize,
  summaryJson,
  warned,
  type CheckLevel,
  type CheckName,
  type CheckResult,
  type DoctorSummary,
} from './report.ts';
export { runDoctor, type DoctorOptions } from './run.ts';
export { checkFleetSecret, type FleetSecretInput } from './secret.ts';
