/**
 * The Classic API's packages (jamf-api.md 2.4), over the same package table as the Pro API.
 * Answers JSON when the request's Accept asks for application/json, XML otherwise; errors
 * are Tomcat HTML pages with a `<p>Error: …</p>` line. Writes take an XML `<package>` body
 * (name, filename and category by name); POST and PUT answer 201 `<package><id>N</id></package>`.
 * DELETE also deletes the JCDS file (SDK-PY docstring).
 */
import type { JamfContext } from './context.ts';
import { ClassicError } from './errors.ts';
import { readBody, sendJson, sendXml, wantsJson } from './http.ts';
import { blankSize, fieldString, type FieldValue, type PackageRecord } from './package-model.ts';
import { recordPackageWrite } from '../counters.ts';
import { deleteFileIfUnused, hashFields, packageByName } from './package-view.ts';
import type { RequestCtx, RouteDef } from './router.ts';
import { parseFlatXml, toXml, type XmlValue } from './xml.ts';

const NO_CATEGORY = 'No category assigned';

/** Classic element → Pro field, with its type. */
const CLASSIC_FIELDS: Record<string, [string, 'string' | 'boolean' | 'int']> = {
  name: ['packageName', 'string'],
  filename: ['fileName', 'string'],
  info: ['info', 'string'],
  notes: ['notes', 'string'],
  priority: ['priority', 'int'],
  reboot_required: ['rebootRequired', 'boolean'],
  fill_user_template: ['fillUserTemplate', 'boolean'],
  fill_existing_users: ['fillExistingUsers', 'boolean'],
  allow_uninstalled: ['uninstall', 'boolean'],
  os_requirements: ['osRequirements', 'string'],
  hash_type: ['hashType', 'string'],
  hash_value: ['hashValue', 'string'],
};

const DEFAULTS: Record<string, FieldValue> = {
  categoryId: '-1',
  priority: 10,
  fillUserTemplate: false,
  rebootRequired: false,
  osInstall: false,
  suppressUpdates: false,
  suppressFromDock: false,
  suppressEula: false,
  suppressRegistration: false,
};

function byId(ctx: JamfContext, raw: string | undefined): PackageRecord {
  const rec = ctx.packages.get(Number(raw));
  if (!rec)
    throw new ClassicError(404, 'The server has not found anything matching the request URI');
  return rec;
}

function target(ctx: JamfContext, params: Record<string, string>): PackageRecord {
  if (params['id'] !== undefined) return byId(ctx, params['id']);
  const rec = packageByName(ctx, params['name'] ?? '');
  if (!rec)
    throw new ClassicError(404, 'The server has not found anything matching the request URI');
  return rec;
}

function categoryName(ctx: JamfContext, categoryId: string | null): string {
  if (!categoryId || categoryId === '-1') return NO_CATEGORY;
  return ctx.categories.get(Number(categoryId))?.name ?? NO_CATEGORY;
}

function classicView(ctx: JamfContext, rec: PackageRecord): Record<string, XmlValue> {
  const h = hashFields(rec);
  const bool = (f: string): boolean => rec.fields[f] === true;
  return {
    id: rec.id,
    name: fieldString(rec, 'packageName') ?? '',
    category: categoryName(ctx, fieldString(rec, 'categoryId')),
    filename: fieldString(rec, 'fileName') ?? '',
    info: fieldString(rec, 'info') ?? '',
    notes: fieldString(rec, 'notes') ?? '',
    priority: Number(rec.fields['priority'] ?? 10),
    reboot_required: bool('rebootRequired'),
    fill_user_template: bool('fillUserTemplate'),
    fill_existing_users: bool('fillExistingUsers'),
    allow_uninstalled: bool('uninstall'),
    os_requirements: fieldString(rec, 'osRequirements') ?? '',
    required_processor: 'None',
    hash_type: h.hashType ?? '',
    hash_value: h.hashValue ?? '',
    switch_with_package: 'Do Not Install',
    install_if_reported_available: 'false',
    reinstall_option: 'Do Not Reinstall',
    triggering_files: {},
    send_notification: false,
  };
}

async function listPackages({ ctx, req, res }: RequestCtx): Promise<void> {
  const all = ctx.packages.all().sort((a, b) => a.id - b.id);
  const items = all.map(p => ({ id: p.id, name: fieldString(p, 'packageName') ?? '' }));
  if (wantsJson(req)) return sendJson(res, 200, { packages: items });
  sendXml(res, 200, `<packages><size>${items.length}</size>${toXml('package', items)}</packages>`);
}

async function getPackage({ ctx, req, res, params }: RequestCtx): Promise<void> {
  const view = classicView(ctx, target(ctx, params));
  if (wantsJson(req)) return sendJson(res, 200, { package: view });
  sendXml(res, 200, toXml('package', view));
}

function coerce(element: string, type: 'string' | 'boolean' | 'int', text: string): FieldValue {
  if (type === 'string') return text;
  if (type === 'boolean') return text.toLowerCase() === 'true';
  const n = Number(text);
  if (!Number.isInteger(n)) throw new ClassicError(409, `Problem with ${element}`);
  return n;
}

/** The Pro fields an XML `<package>` body sets; the write is counted (element names only). */
async function fieldsFromXml(
  ctx: JamfContext,
  rc: RequestCtx,
  method: 'POST' | 'PUT',
): Promise<Record<string, FieldValue>> {
  const parsed = parseFlatXml(await readBody(rc.req), 'package');
  recordPackageWrite(ctx.counters, { method, api: 'classic', fields: Object.keys(parsed ?? {}) });
  if (!parsed) throw new ClassicError(400, 'Unable to parse the XML body: expected <package>');
  const fields: Record<string, FieldValue> = {};
  for (const [element, [field, type]] of Object.entries(CLASSIC_FIELDS)) {
    const text = parsed[element];
    if (text !== undefined) fields[field] = coerce(element, type, text);
  }
  const category = parsed['category'];
  if (category !== undefined) {
    if (category === '' || category === NO_CATEGORY || category === 'Unknown') {
      fields['categoryId'] = '-1';
    } else {
      const c = ctx.categories.all().find(x => x.name.toLowerCase() === category.toLowerCase());
      if (!c) throw new ClassicError(409, 'Problem with category');
      fields['categoryId'] = String(c.id);
    }
  }
  return fields;
}

function checkName(ctx: JamfContext, fields: Record<string, FieldValue>, exceptId: number): void {
  const name = fields['packageName'];
  if (name !== undefined && (typeof name !== 'string' || name.trim() === '')) {
    throw new ClassicError(409, 'Name is required');
  }
  if (typeof name === 'string' && packageByName(ctx, name, exceptId)) {
    throw new ClassicError(409, 'Duplicate name');
  }
}

async function createPackage(rc: RequestCtx): Promise<void> {
  const { ctx, res } = rc;
  const fields = await fieldsFromXml(ctx, rc, 'POST');
  if (fields['packageName'] === undefined && rc.params['name'])
    fields['packageName'] = rc.params['name'];
  if (fields['packageName'] === undefined) throw new ClassicError(409, 'Name is required');
  if (!fields['fileName']) throw new ClassicError(409, 'Problem with filename');
  checkName(ctx, fields, 0);
  const rec = ctx.packages.insert({
    fields: { ...DEFAULTS, ...fields },
    cloudTransferStatus: '',
    size: null,
  });
  ctx.logger.info({ id: rec.id, fileName: fields['fileName'] }, 'package created (Classic API)');
  await ctx.processing.recordWritten(rec.id);
  sendXml(res, 201, toXml('package', { id: rec.id }));
}

async function updatePackage(rc: RequestCtx): Promise<void> {
  const { ctx, res, params } = rc;
  const rec = target(ctx, params);
  const fields = await fieldsFromXml(ctx, rc, 'PUT');
  checkName(ctx, fields, rec.id);
  const latest = ctx.packages.get(rec.id) ?? rec;
  // Assumed like the Pro API's PUT (wire 1.4): the update blanks a known size.
  ctx.packages.update(blankSize({ ...latest, fields: { ...latest.fields, ...fields } }));
  await ctx.processing.recordWritten(rec.id);
  sendXml(res, 201, toXml('package', { id: rec.id }));
}

async function deletePackage({ ctx, res, params }: RequestCtx): Promise<void> {
  const rec = target(ctx, params);
  ctx.packages.delete(rec.id);
  await deleteFileIfUnused(ctx, fieldString(rec, 'fileName'));
  sendXml(res, 200, toXml('package', { id: rec.id, successful: 'True' }));
}

const BASE = '/JSSResource/packages';

export const classicRoutes: RouteDef[] = [
  { method: 'GET', template: BASE, api: 'classic', handler: listPackages },
  { method: 'GET', template: `${BASE}/id/{id}`, api: 'classic', handler: getPackage },
  { method: 'GET', template: `${BASE}/name/{name}`, api: 'classic', handler: getPackage },
  { method: 'POST', template: `${BASE}/id/{id}`, api: 'classic', handler: createPackage },
  { method: 'POST', template: `${BASE}/name/{name}`, api: 'classic', handler: createPackage },
  { method: 'PUT', template: `${BASE}/id/{id}`, api: 'classic', handler: updatePackage },
  { method: 'PUT', template: `${BASE}/name/{name}`, api: 'classic', handler: updatePackage },
  { method: 'DELETE', template: `${BASE}/id/{id}`, api: 'classic', handler: deletePackage },
  { method: 'DELETE', template: `${BASE}/name/{name}`, api: 'classic', handler: deletePackage },
];
