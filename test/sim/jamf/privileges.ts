/**
 * Jamf Pro's privilege model, for the endpoints the fleet uses: which privileges each one
 * requires, which ones the API client's role holds (all by default), and the 403 a request
 * gets when one is missing.
 *
 * Names are Jamf Pro 11.20+'s (the names in Settings > API roles and clients):
 *   - Packages: Create / Read / Update / Delete Packages.
 *   - Categories: Create / Read Categories.
 *   - Cloud distribution point: Read / Update Cloud Distribution Point.
 *   - JCDS v1: Create / Read / Delete Jamf Cloud Distribution Service Files. Before 11.20
 *     these were "… Jamf Content Distribution Server Files" (jamf-api.md 2.2: the ruby-jss
 *     schema of 11.6.1; jamf-wire-2026.md section 6: "privilege renames in 11.20"); the
 *     control endpoint accepts the old spelling as an alias.
 * Sources and the gaps in them:
 *   - `POST /api/v1/packages/{id}/upload` needs Read and Update Packages (jamf-api.md 2.3).
 *   - `POST /api/v1/jcds/renew-credentials` needs Create … Files; JCDS refresh-inventory
 *     needs only Read … Files (jamf-api.md 2.2).
 *   - `POST /api/v1/cloud-distribution-point/refresh-inventory`: UNVERIFIED. jamf-api.md
 *     says it has "the same semantics as the JCDS version", so it is modelled like it, with
 *     the read privilege (Read Cloud Distribution Point), as README.md's privilege table
 *     says. (shared/jamf/errors.ts `likelyPrivilege` guesses Update for it instead.)
 *   - `GET /api/v1/jamf-pro-version`: no privilege, any valid token. UNVERIFIED: the record
 *     has no privilege listed for it (Jamf's privileges page lists "None" for /auth/*).
 *   - The Classic API's packages: the same four Packages privileges (Jamf's Classic API
 *     privilege table maps each resource to Create/Read/Update/Delete of it).
 *   - Token endpoints need none (they are not routed through this check).
 * Real Jamf Pro's 403 body: `{"httpStatus":403,"errors":[{"code":"INVALID_PRIVILEGE",
 * "description":"Forbidden",…}]}`; it does not say which privilege is missing (so clients
 * must infer it from the endpoint, as the product does). The exact code string is from
 * memory of live tenants, UNVERIFIED in the record. The Classic API answers its HTML page.
 *
 * The granted set lives in memory per simulator (not in the data dir): a restart grants
 * everything again. It applies to every caller (the simulator has one role, used by both
 * its API client and its user account).
 *
 * Control (test/sim/jamf/control.ts registers these):
 *   GET    /__sim/privileges   {all, granted, revoked}
 *   PUT    /__sim/privileges   {"revoke": [names]} and/or {"grant": [names]}; 400 on an
 *                              unknown name (nothing changes)
 *   DELETE /__sim/privileges   every privilege granted again
 */
import type { JamfContext } from './context.ts';
import { JamfApiError } from './errors.ts';
import { readJsonObject, sendJson } from './http.ts';
import type { RequestCtx, RouteDef } from './router.ts';

export const PRIVILEGES = [
  'Create Packages',
  'Read Packages',
  'Update Packages',
  'Delete Packages',
  'Create Categories',
  'Read Categories',
  'Read Cloud Distribution Point',
  'Update Cloud Distribution Point',
  'Create Jamf Cloud Distribution Service Files',
  'Read Jamf Cloud Distribution Service Files',
  'Delete Jamf Cloud Distribution Service Files',
] as const;

export type Privilege = (typeof PRIVILEGES)[number];

/** Pre-11.20 spellings, accepted by the control endpoint. */
const ALIASES: Record<string, Privilege> = {
  'Create Jamf Content Distribution Server Files': 'Create Jamf Cloud Distribution Service Files',
  'Read Jamf Content Distribution Server Files': 'Read Jamf Cloud Distribution Service Files',
  'Delete Jamf Content Distribution Server Files': 'Delete Jamf Cloud Distribution Service Files',
};

const CDP = '/api/v1/cloud-distribution-point';
const CLASSIC = '/JSSResource/packages';

/**
 * "METHOD template" (the router's route templates) → the privileges it requires, all of
 * them. A route that is not listed requires none.
 */
export const ENDPOINT_PRIVILEGES: Readonly<Record<string, readonly Privilege[]>> = {
  'GET /api/v1/jamf-pro-version': [],
  // Jamf's privileges page lists "None" for the /auth endpoints.
  'POST /api/v1/auth/invalidate-token': [],

  'GET /api/v1/packages': ['Read Packages'],
  'GET /api/v1/packages/{id}': ['Read Packages'],
  'POST /api/v1/packages': ['Create Packages'],
  'PUT /api/v1/packages/{id}': ['Update Packages'],
  'DELETE /api/v1/packages/{id}': ['Delete Packages'],
  'POST /api/v1/packages/delete-multiple': ['Delete Packages'],
  'POST /api/v1/packages/{id}/upload': ['Read Packages', 'Update Packages'],

  'GET /api/v1/categories': ['Read Categories'],
  'GET /api/v1/categories/{id}': ['Read Categories'],
  'POST /api/v1/categories': ['Create Categories'],

  [`GET ${CDP}`]: ['Read Cloud Distribution Point'],
  [`GET ${CDP}/upload-capability`]: ['Read Cloud Distribution Point'],
  [`POST ${CDP}/refresh-inventory`]: ['Read Cloud Distribution Point'],

  'GET /api/v1/jcds/files': ['Read Jamf Cloud Distribution Service Files'],
  'GET /api/v1/jcds/files/{fileName}': ['Read Jamf Cloud Distribution Service Files'],
  'POST /api/v1/jcds/files': ['Create Jamf Cloud Distribution Service Files'],
  'POST /api/v1/jcds/renew-credentials': ['Create Jamf Cloud Distribution Service Files'],
  'DELETE /api/v1/jcds/files/{fileName}': ['Delete Jamf Cloud Distribution Service Files'],
  'POST /api/v1/jcds/refresh-inventory': ['Read Jamf Cloud Distribution Service Files'],

  [`GET ${CLASSIC}`]: ['Read Packages'],
  [`GET ${CLASSIC}/id/{id}`]: ['Read Packages'],
  [`GET ${CLASSIC}/name/{name}`]: ['Read Packages'],
  [`POST ${CLASSIC}/id/{id}`]: ['Create Packages'],
  [`POST ${CLASSIC}/name/{name}`]: ['Create Packages'],
  [`PUT ${CLASSIC}/id/{id}`]: ['Update Packages'],
  [`PUT ${CLASSIC}/name/{name}`]: ['Update Packages'],
  [`DELETE ${CLASSIC}/id/{id}`]: ['Delete Packages'],
  [`DELETE ${CLASSIC}/name/{name}`]: ['Delete Packages'],
};

/** The revoked privileges of each simulator (everything else is granted). */
const revokedBy = new WeakMap<JamfContext, Set<Privilege>>();

function revoked(ctx: JamfContext): Set<Privilege> {
  let set = revokedBy.get(ctx);
  if (!set) {
    set = new Set();
    revokedBy.set(ctx, set);
  }
  return set;
}

/** The privileges the role holds now. */
export function grantedPrivileges(ctx: JamfContext): Privilege[] {
  const r = revoked(ctx);
  return PRIVILEGES.filter(p => !r.has(p));
}

/**
 * The dispatch hook (router.ts, after the endpoint is known to exist): throws Jamf's 403
 * when the role lacks a privilege the endpoint requires.
 */
export function requirePrivileges(ctx: JamfContext, method: string, template: string): void {
  const needed = ENDPOINT_PRIVILEGES[`${method} ${template}`] ?? [];
  const r = revoked(ctx);
  const missing = needed.filter(p => r.has(p));
  if (missing.length === 0) return;
  ctx.logger.debug({ method, template, missing }, 'jamf request refused: privilege revoked');
  throw new JamfApiError(403, 'INVALID_PRIVILEGE', 'Forbidden', null);
}

function canonical(name: unknown): Privilege | undefined {
  if (typeof name !== 'string') return undefined;
  if ((PRIVILEGES as readonly string[]).includes(name)) return name as Privilege;
  return ALIASES[name];
}

function names(body: Record<string, unknown>, key: 'grant' | 'revoke'): Privilege[] {
  const value = body[key];
  if (value === undefined) return [];
  if (!Array.isArray(value)) {
    throw new JamfApiError(400, 'INVALID_FIELD', `${key} must be an array of names`, key);
  }
  return value.map(v => {
    const p = canonical(v);
    if (!p) {
      throw new JamfApiError(
        400,
        'INVALID_FIELD',
        `Unknown privilege ${JSON.stringify(v)}; known: ${PRIVILEGES.join(', ')}`,
        key,
      );
    }
    return p;
  });
}

function state(ctx: JamfContext): Record<string, unknown> {
  return {
    all: [...PRIVILEGES],
    granted: grantedPrivileges(ctx),
    revoked: PRIVILEGES.filter(p => revoked(ctx).has(p)),
  };
}

function getPrivileges({ ctx, res }: RequestCtx): void {
  sendJson(res, 200, state(ctx));
}

async function putPrivileges({ ctx, req, res }: RequestCtx): Promise<void> {
  const body = await readJsonObject(req);
  for (const key of Object.keys(body)) {
    if (key !== 'grant' && key !== 'revoke') {
      throw new JamfApiError(400, 'INVALID_FIELD', `Unknown field ${key}`, key);
    }
  }
  // Validate both lists before changing anything.
  const toRevoke = names(body, 'revoke');
  const toGrant = names(body, 'grant');
  const r = revoked(ctx);
  for (const p of toRevoke) r.add(p);
  for (const p of toGrant) r.delete(p);
  sendJson(res, 200, state(ctx));
}

function deletePrivileges({ ctx, res }: RequestCtx): void {
  revoked(ctx).clear();
  sendJson(res, 200, state(ctx));
}

export const privilegeRoutes: RouteDef[] = [
  { method: 'GET', template: '/__sim/privileges', api: 'control', handler: getPrivileges },
  { method: 'PUT', template: '/__sim/privileges', api: 'control', handler: putPrivileges },
  { method: 'DELETE', template: '/__sim/privileges', api: 'control', handler: deletePrivileges },
];
