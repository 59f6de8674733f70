/** The privileges check: the read privileges, tried with GETs (a 403 names the missing one). */
import { failureText, withTimeout } from './helpers.ts';
import { failed, passed, warned, type CheckResult } from './report.ts';

/** A read-only request that needs exactly one privilege (Jamf Pro 11.20+ names). */
export interface PrivilegeProbe {
  privilege: string;
  path: string;
  query?: Record<string, string | number>;
  /** 404 means the endpoint is absent (not a missing privilege): not applicable. */
  absentIsNotApplicable?: boolean;
}

export const READ_PROBES: readonly PrivilegeProbe[] = [
  { privilege: 'Read Packages', path: '/api/v1/packages', query: { page: 0, 'page-size': 1 } },
  { privilege: 'Read Categories', path: '/api/v1/categories', query: { page: 0, 'page-size': 1 } },
  { privilege: 'Read Cloud Distribution Point', path: '/api/v1/cloud-distribution-point' },
  {
    privilege: 'Read Jamf Cloud Distribution Service Files',
    path: '/api/v1/jcds/files',
    absentIsNotApplicable: true,
  },
];

/** Privileges the fleet uses that no request can try without writing. */
export const NOT_CHECKED_PRIVILEGES: readonly string[] = [
  'Create Packages',
  'Update Packages',
  'Delete Packages',
];

/** Tried by the JCDS credentials check (it issues credentials: s3 transport only). */
export const CREDENTIALS_PRIVILEGE = 'Create Jamf Cloud Distribution Service Files';

/** Sends a GET; resolves with the status (403 and 404 included), throws on anything else. */
export type ProbeFn = (probe: PrivilegeProbe, signal: AbortSignal) => Promise<number>;

export async function checkPrivileges(
  send: ProbeFn,
  timeoutMs: number,
  signal?: AbortSignal,
  probes: readonly PrivilegeProbe[] = READ_PROBES,
): Promise<CheckResult> {
  const outcomes = await Promise.all(
    probes.map(async p => {
      try {
        const status = await withTimeout(`GET ${p.path}`, timeoutMs, s => send(p, s), signal);
        return { probe: p, status, error: undefined as unknown };
      } catch (error) {
        return { probe: p, status: undefined, error };
      }
    }),
  );
  const granted: string[] = [];
  const missing: string[] = [];
  const notApplicable: string[] = [];
  const unknown: string[] = [];
  const refusedBy: string[] = [];
  const errors: string[] = [];
  for (const o of outcomes) {
    const name = o.probe.privilege;
    if (o.status === 403) {
      missing.push(name);
      refusedBy.push(`GET ${o.probe.path}`);
    } else if (o.status === 404 && o.probe.absentIsNotApplicable) {
      notApplicable.push(name);
    } else if (o.status !== undefined) {
      granted.push(name);
    } else {
      unknown.push(name);
      errors.push(`${name} (${failureText(o.error)})`);
    }
  }
  const notChecked = [...NOT_CHECKED_PRIVILEGES];
  const parts: string[] = [];
  if (missing.length > 0)
    parts.push(`missing: ${missing.join(', ')} (${refusedBy.join(', ')} answered 403)`);
  if (unknown.length > 0) parts.push(`could not check: ${errors.join('; ')}`);
  if (granted.length > 0) parts.push(`granted (tried read-only): ${granted.join(', ')}`);
  if (notApplicable.length > 0)
    parts.push(
      `not applicable (this server has no JCDS v1 endpoints): ${notApplicable.join(', ')}`,
    );
  parts.push(
    `not checked (needs a write): ${notChecked.join(', ')}; ${CREDENTIALS_PRIVILEGE} is tried by the JCDS credentials check (s3 transport)`,
  );
  const data = { privileges: { granted, missing, notApplicable, unknown, notChecked } };
  const detail = parts.join('; ');
  if (missing.length > 0) {
    const jcds = missing.some(m => m.includes('Distribution Service Files'));
    return failed(
      'privileges',
      detail,
      `In Jamf Pro, Settings > API roles and clients: add ${missing.map(m => `"${m}"`).join(', ')} to the API role of this client (or to the user account's privileges). README.md, "Using it with a real Jamf Pro", lists every privilege the fleet uses.${jcds ? ' Before Jamf Pro 11.20 the JCDS ones are named "… Jamf Content Distribution Server Files".' : ''}`,
      data,
    );
  }
  if (unknown.length > 0) {
    return {
      ...warned(
        'privileges',
        detail,
        'Run `jcds doctor` again; if Jamf Pro keeps failing these requests, check its status.',
      ),
      data,
    };
  }
  return passed('privileges', detail, data);
}
