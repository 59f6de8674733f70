/**
 * The cloud distribution point (its cdnType is the `--cdn-type` setting, JAMF_CLOUD by
 * default, switchable at run time; always the principal one), its upload capability,
 * refresh-inventory, the Jamf Pro version, and categories (seeded, list with RSQL, get,
 * create).
 */
import type { CategoryRecord } from './context.ts';
import { JamfApiError } from './errors.ts';
import { baseUrl, readJsonObject, sendJson } from './http.ts';
import { refreshInventory } from './inventory.ts';
import { listRows, type ListSpec } from './list-query.ts';
import type { RequestCtx, RouteDef } from './router.ts';

const CATEGORY_LIST: ListSpec<CategoryRecord> = {
  filterFields: ['id', 'name', 'priority'],
  sortFields: ['id', 'name', 'priority'],
  numericFields: ['id', 'priority'],
  get: (c, field) => (field === 'id' ? c.id : field === 'name' ? c.name : c.priority),
};

function presentCategory(c: CategoryRecord): Record<string, unknown> {
  return { id: String(c.id), name: c.name, priority: c.priority };
}

function cloudDistributionPoint({ ctx, res }: RequestCtx): void {
  sendJson(res, 200, {
    inventoryId: '1',
    cdnType: ctx.settings.cdnType,
    master: true,
    username: null,
    directory: null,
    cdnUrl: null,
    uploadUrl: null,
    downloadUrl: null,
    secondaryAuthRequired: false,
    secondaryAuthStatusCode: 0,
    secondaryAuthTimeToLive: 0,
    requireSignedUrls: true,
    keyPairId: null,
    expirationSeconds: 0,
    hasConnectionSucceeded: true,
    message: '',
    hasPrivateKey: false,
  });
}

/**
 * Consistent with cdnType: a Jamf Cloud or AWS principal distribution point takes uploads
 * through Jamf Pro; with NONE there is nothing to upload to (both false). The AWS answer is
 * an assumption (not seen on the wire).
 */
function uploadCapability({ ctx, res }: RequestCtx): void {
  const capable = ctx.settings.cdnType !== 'NONE';
  sendJson(res, 200, {
    principalDistributionTechnology: capable,
    directUploadCapable: capable,
  });
}

function version({ ctx, res }: RequestCtx): void {
  sendJson(res, 200, { version: ctx.settings.version });
}

function listCategories({ ctx, res, url }: RequestCtx): void {
  const page = listRows(ctx.categories.all(), url.searchParams, CATEGORY_LIST);
  sendJson(res, 200, { totalCount: page.totalCount, results: page.results.map(presentCategory) });
}

function getCategory({ ctx, res, params }: RequestCtx): void {
  const c = ctx.categories.get(Number(params['id']));
  if (!c)
    throw new JamfApiError(
      404,
      'INVALID_ID',
      `Category with id ${params['id']} does not exist`,
      'id',
    );
  sendJson(res, 200, presentCategory(c));
}

async function createCategory({ ctx, req, res }: RequestCtx): Promise<void> {
  const body = await readJsonObject(req);
  const name = body['name'];
  if (typeof name !== 'string' || name.trim() === '') {
    throw new JamfApiError(400, 'INVALID_FIELD', 'must not be null', 'name');
  }
  const priority = body['priority'] === undefined ? 9 : Number(body['priority']);
  if (!Number.isInteger(priority))
    throw new JamfApiError(400, 'INVALID_FIELD', 'Invalid priority', 'priority');
  if (ctx.categories.all().some(c => c.name.toLowerCase() === name.toLowerCase())) {
    throw new JamfApiError(400, 'DUPLICATE_FIELD', 'duplicate name', 'name');
  }
  const c = ctx.categories.insert({ name, priority });
  sendJson(res, 201, { id: String(c.id), href: `${baseUrl(req)}/api/v1/categories/${c.id}` });
}

const CDP = '/api/v1/cloud-distribution-point';

export const cdpRoutes: RouteDef[] = [
  { method: 'GET', template: CDP, api: 'pro', handler: cloudDistributionPoint },
  { method: 'GET', template: `${CDP}/upload-capability`, api: 'pro', handler: uploadCapability },
  { method: 'POST', template: `${CDP}/refresh-inventory`, api: 'pro', handler: refreshInventory },
  { method: 'GET', template: '/api/v1/jamf-pro-version', api: 'pro', handler: version },
  { method: 'GET', template: '/api/v1/categories', api: 'pro', handler: listCategories },
  { method: 'POST', template: '/api/v1/categories', api: 'pro', handler: createCategory },
  { method: 'GET', template: '/api/v1/categories/{id}', api: 'pro', handler: getCategory },
];
