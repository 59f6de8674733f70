/** The Jamf Pro checks: JAMF_URL answers like the API, a token is issued, the version. */
import type { JamfAuthConfig } from '../../shared/config.ts';
import { errorCode, errorSpec } from '../../shared/errors.ts';
import { parseJamfVersion, versionAtLeast } from '../../shared/jamf/version.ts';
import {
  displayUrl,
  failureText,
  formatLifetime,
  formatMs,
  hintFor,
  withTimeout,
} from './helpers.ts';
import { failed, passed, warned, type CheckResult } from './report.ts';

const UNREACHABLE_FIX =
  errorSpec('JAMF_UNREACHABLE')?.hint ??
  'Check JAMF_URL (https://yourinstance.jamfcloud.com), your network/proxy, and that the server answers in a browser.';

/**
 * JAMF_URL answers like the Jamf Pro API: an unauthenticated GET /api/v1/health-check
 * (no authentication required on 11.x; an older server answers 401 or 404 JSON, which
 * shows the API is there too). Redirects are not followed: the workers do not follow them.
 */
export async function checkJamfReachable(
  jamfUrl: string | undefined,
  invalidUrl: boolean,
  timeoutMs: number,
  signal?: AbortSignal,
  fetchImpl: typeof fetch = fetch,
): Promise<CheckResult> {
  if (jamfUrl === undefined) {
    return failed(
      'jamf',
      invalidUrl ? 'JAMF_URL is invalid (see Environment above)' : 'JAMF_URL is not set',
      'Set JAMF_URL to the Jamf Pro server root, e.g. export JAMF_URL=https://yourinstance.jamfcloud.com',
    );
  }
  const shown = displayUrl(jamfUrl);
  const started = Date.now();
  try {
    const res = await withTimeout(
      `Jamf Pro at ${shown}`,
      timeoutMs,
      async s => {
        const r = await fetchImpl(`${jamfUrl.replace(/\/+$/, '')}/api/v1/health-check`, {
          method: 'GET',
          redirect: 'manual',
          headers: { Accept: 'application/json', 'User-Agent': 'jcds-fleet/0.1 doctor' },
          signal: s,
        });
        const text = await r.text();
        return { status: r.status, text, headers: r.headers };
      },
      signal,
    );
    const ms = Date.now() - started;
    const type = res.headers.get('content-type') ?? '';
    if (res.status >= 300 && res.status < 400) {
      const location = res.headers.get('location');
      return failed(
        'jamf',
        `${shown} answered a redirect (${res.status}${location ? ` to ${displayUrl(new URL(location, jamfUrl).toString())}` : ''}); the fleet does not follow redirects`,
        'Set JAMF_URL to the address it redirects to (the Jamf Pro server root, https://).',
      );
    }
    if (/\bhtml\b/i.test(type) || /^\s*<(!doctype html|html[\s>])/i.test(res.text)) {
      return failed(
        'jamf',
        `${shown} answered an HTML page (${res.status}), not the Jamf Pro API`,
        errorSpec('JAMF_BAD_RESPONSE')?.hint ??
          'Check JAMF_URL (the server root, not a page) and any proxy in between.',
      );
    }
    if (res.status >= 500) {
      return failed(
        'jamf',
        `${shown} answered ${res.status}: Jamf Pro is unavailable`,
        "Wait and run `jcds doctor` again; if it persists, check Jamf Pro's status (status.jamf.com for Jamf Cloud).",
      );
    }
    return passed('jamf', `the Jamf Pro API answers at ${shown} (${formatMs(ms)})`);
  } catch (err) {
    return failed('jamf', `cannot reach ${shown}: ${failureText(err)}`, UNREACHABLE_FIX);
  }
}

/** What the auth check needs of a token provider (JamfTokenProvider). */
export interface TokenIssuer {
  getToken(signal?: AbortSignal): Promise<string>;
  readonly expiresAt: number | undefined;
}

const AUTH_FIX =
  'Check JAMF_CLIENT_ID and JAMF_CLIENT_SECRET (Settings > API roles and clients: the client is enabled and the secret is its current one; generating a new secret invalidates the old) or JAMF_USERNAME and JAMF_PASSWORD.';

/** A token is issued for the configured credentials (never shown). */
export async function checkJamfAuth(
  auth: JamfAuthConfig | undefined,
  invalidCredentials: boolean,
  tokens: TokenIssuer | undefined,
  timeoutMs: number,
  signal?: AbortSignal,
  now: () => number = Date.now,
): Promise<CheckResult> {
  if (auth === undefined || tokens === undefined) {
    return failed(
      'jamf-auth',
      invalidCredentials
        ? 'the Jamf credentials are incomplete (see Environment above)'
        : 'no Jamf credentials are set',
      'Set JAMF_CLIENT_ID and JAMF_CLIENT_SECRET (an API client: Settings > API roles and clients), or JAMF_USERNAME and JAMF_PASSWORD.',
    );
  }
  const who =
    auth.kind === 'oauth'
      ? `API client ${JSON.stringify(auth.id)}`
      : `user ${JSON.stringify(auth.id)}`;
  try {
    await withTimeout('the token request', timeoutMs, s => tokens.getToken(s), signal);
    const expiresAt = tokens.expiresAt;
    const life = expiresAt === undefined ? '' : `, valid ${formatLifetime(expiresAt - now())}`;
    return passed('jamf-auth', `a token was issued to ${who}${life}`);
  } catch (err) {
    const code = errorCode(err);
    return failed(
      'jamf-auth',
      code === 'JAMF_AUTH_FAILED' ? failureText(err) : `no token for ${who}: ${failureText(err)}`,
      code === 'JAMF_AUTH_FAILED' ? AUTH_FIX : hintFor(err, AUTH_FIX),
    );
  }
}

/** GET /api/v1/jamf-pro-version (11.5+ has the package upload endpoint). */
export async function checkJamfVersion(
  getVersion: (signal: AbortSignal) => Promise<string>,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<{ result: CheckResult; version: string | undefined }> {
  try {
    const version = await withTimeout(
      'GET /api/v1/jamf-pro-version',
      timeoutMs,
      getVersion,
      signal,
    );
    const parsed = parseJamfVersion(version);
    if (parsed === undefined) {
      return {
        result: warned(
          'jamf-version',
          `Jamf Pro ${JSON.stringify(version)}: not a version this tool can compare`,
          'Check that JAMF_URL is a Jamf Pro server.',
        ),
        version,
      };
    }
    if (!versionAtLeast(parsed, 11, 5)) {
      return {
        result: warned(
          'jamf-version',
          `Jamf Pro ${version}: before 11.5 there is no package upload endpoint, so only the s3 transport works`,
          'Upgrade Jamf Pro to 11.5 or later, or keep JCDS_TRANSPORT=s3 (JCDS v1).',
        ),
        version,
      };
    }
    return { result: passed('jamf-version', `Jamf Pro ${version}`), version };
  } catch (err) {
    return {
      result: failed(
        'jamf-version',
        `GET /api/v1/jamf-pro-version failed: ${failureText(err)}`,
        hintFor(err, 'Check JAMF_URL and that Jamf Pro is up.'),
      ),
      version: undefined,
    };
  }
}
