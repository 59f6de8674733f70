/**
 * The cloud distribution point and transport (the preflight), and the JCDS credentials
 * the s3 transport needs (issued, then renewed).
 */
import type { Transport } from '../../shared/config.ts';
import { errorCode } from '../../shared/errors.ts';
import type { JamfClient } from '../../shared/jamf/client.ts';
import { preflight, type PreflightApi, type PreflightResult } from '../../shared/jamf/preflight.ts';
import { failureText, formatLifetime, hintFor, withTimeout } from './helpers.ts';
import { CREDENTIALS_PRIVILEGE } from './privileges.ts';
import { failed, passed, warned, type CheckResult } from './report.ts';

export async function checkDistribution(
  jamf: PreflightApi,
  configured: Transport,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<{ result: CheckResult; preflight: PreflightResult | undefined }> {
  let pf: PreflightResult;
  try {
    pf = await withTimeout(
      'the preflight',
      timeoutMs,
      s => preflight(jamf, configured, { signal: s }),
      signal,
    );
  } catch (err) {
    return {
      result: failed(
        'distribution',
        failureText(err),
        hintFor(err, 'Check JAMF_URL and the privileges above, then run `jcds doctor` again.'),
      ),
      preflight: undefined,
    };
  }
  const facts = [
    `cdnType ${pf.cdnType ?? 'unknown (no cloud-distribution-point endpoint)'}`,
    `JCDS v1 ${pf.jcds ? 'answers' : 'not available (404)'}`,
    `package upload ${pf.packageUpload ? 'available' : 'not available (Jamf Pro before 11.5)'}`,
    configured === 'auto'
      ? `JCDS_TRANSPORT=auto chooses ${pf.transport}`
      : `JCDS_TRANSPORT=${configured}`,
  ].join('; ');
  const data = {
    cdnType: pf.cdnType ?? null,
    jcds: pf.jcds,
    packageUpload: pf.packageUpload,
    transport: pf.transport,
  };
  if (pf.transport === 's3' && !pf.jcds) {
    return {
      result: failed(
        'distribution',
        `${facts}: the s3 transport needs the JCDS v1 endpoints`,
        'Set JCDS_TRANSPORT=auto (or package-upload, Jamf Pro 11.5+).',
        data,
      ),
      preflight: pf,
    };
  }
  if (pf.transport === 'package-upload' && !pf.packageUpload) {
    return {
      result: failed(
        'distribution',
        `${facts}: the package-upload transport needs Jamf Pro 11.5 or later`,
        pf.jcds
          ? 'Set JCDS_TRANSPORT=s3 (or auto), or upgrade Jamf Pro to 11.5+.'
          : 'Upgrade Jamf Pro to 11.5 or later: this server offers neither upload path.',
        data,
      ),
      preflight: pf,
    };
  }
  if (pf.transport === 's3' && pf.cdnType !== undefined && pf.cdnType !== 'JAMF_CLOUD') {
    return {
      result: {
        ...warned(
          'distribution',
          `${facts}: the principal distribution point is ${pf.cdnType}, not Jamf Cloud, so files sent to JCDS are not what it serves`,
          'Set JCDS_TRANSPORT=auto: it uploads through Jamf Pro (package-upload) on this server.',
        ),
        data,
      },
      preflight: pf,
    };
  }
  return { result: passed('distribution', facts, data), preflight: pf };
}

// --- JCDS credentials ----------------------------------------------------------------------

export type CredentialsApi = Pick<JamfClient, 'createJcdsFile' | 'renewJcdsCredentials'>;

/** What later checks may use of the credentials (nothing secret). */
export interface CredentialFacts {
  region: string;
  bucketName: string;
}

export async function checkJcdsCredentials(
  jamf: CredentialsApi,
  timeoutMs: number,
  signal?: AbortSignal,
  now: () => number = Date.now,
): Promise<{ result: CheckResult; facts: CredentialFacts | undefined; secrets: string[] }> {
  const secrets: string[] = [];
  const keep = (c: { accessKeyID: string; secretAccessKey: string; sessionToken: string }) =>
    secrets.push(c.accessKeyID, c.secretAccessKey, c.sessionToken);
  let facts: CredentialFacts | undefined;
  const fix = (err: unknown): string =>
    errorCode(err) === 'JAMF_FORBIDDEN'
      ? `Add "${CREDENTIALS_PRIVILEGE}" to the API role (before Jamf Pro 11.20: "Create Jamf Content Distribution Server Files"), or set JCDS_TRANSPORT=package-upload (Jamf Pro 11.5+).`
      : hintFor(
          err,
          'Run `jcds doctor` again; if it persists, set JCDS_TRANSPORT=package-upload (Jamf Pro 11.5+).',
        );
  try {
    const created = await withTimeout(
      'POST /api/v1/jcds/files',
      timeoutMs,
      s => jamf.createJcdsFile({ signal: s }),
      signal,
    );
    keep(created);
    facts = { region: created.region, bucketName: created.bucketName };
    const lifetime = created.expiration * 1000 - now();
    let renewed;
    try {
      renewed = await withTimeout(
        'POST /api/v1/jcds/renew-credentials',
        timeoutMs,
        s => jamf.renewJcdsCredentials({ signal: s }),
        signal,
      );
      keep(renewed);
    } catch (err) {
      return {
        result: failed(
          'jcds-credentials',
          `POST /api/v1/jcds/files issued credentials (valid ${formatLifetime(lifetime)}), but renewing them failed: ${failureText(err)}`,
          fix(err),
        ),
        facts,
        secrets,
      };
    }
    const renewedLife = renewed.expiration * 1000 - now();
    const detail = `POST /api/v1/jcds/files issued temporary S3 credentials (region ${created.region || 'unset'}, valid ${formatLifetime(lifetime)}); POST /api/v1/jcds/renew-credentials renewed them (valid ${formatLifetime(renewedLife)})`;
    if (lifetime <= 0 || renewedLife <= 0) {
      return {
        result: warned(
          'jcds-credentials',
          `${detail}: they are already expired by this machine's clock`,
          'Check the clock line below and sync this machine with NTP.',
        ),
        facts,
        secrets,
      };
    }
    return {
      result: passed('jcds-credentials', detail, {
        credentials: {
          lifetimeSeconds: Math.round(lifetime / 1000),
          renewedLifetimeSeconds: Math.round(renewedLife / 1000),
        },
      }),
      facts,
      secrets,
    };
  } catch (err) {
    return {
      result: failed(
        'jcds-credentials',
        `POST /api/v1/jcds/files failed: ${failureText(err)}`,
        fix(err),
      ),
      facts,
      secrets,
    };
  }
}
