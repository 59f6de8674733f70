/**
 * The Jamf Pro API package endpoints (jamf-api.md 2.3): list with page/page-size/sort/filter,
 * create (required fields, UNSUPPORTED_FILE_TYPE, DUPLICATE_FIELD), get, update (ids in the
 * body ignored; a body carrying `size` blanks the server-managed size, as Jamf does), delete
 * and delete-multiple (the stored file goes with the last package that uses it).
 */
import type { JamfContext } from './context.ts';
import { JamfApiError } from './errors.ts';
import { baseUrl, readJsonObject, sendEmpty, sendJson } from './http.ts';
import { listRows, type ListSpec } from './list-query.ts';
import {
  duplicatePackageName,
  fieldString,
  fieldsFromBody,
  hasAllowedExtension,
  missingRequired,
  unsupportedFileType,
  type FieldValue,
  type PackageRecord,
} from './package-model.ts';
import {
  deleteFileIfUnused,
  packageById,
  packageByName,
  packageHref,
  presentPackage,
} from './package-view.ts';
import type { RequestCtx, RouteDef } from './router.ts';

const PACKAGE_LIST: ListSpec<PackageRecord> = {
  filterFields: [
    'id',
    'fileName',
    'packageName',
    'categoryId',
    'info',
    'notes',
    'manifestFileName',
    'cloudTransferStatus',
  ],
  sortFields: [
    'id',
    'packageName',
    'fileName',
    'categoryId',
    'info',
    'notes',
    'manifestFileName',
    'priority',
  ],
  numericFields: ['id', 'categoryId', 'priority'],
  get: (rec, field) => {
    if (field === 'id') return rec.id;
    if (field === 'cloudTransferStatus') return rec.cloudTransferStatus;
    return rec.fields[field] ?? null;
  },
};

/** Checks what create and update share: file type, category, name uniqueness. */
function validate(ctx: JamfContext, fields: Record<string, FieldValue>, exceptId: number): void {
  const fileName = fields['fileName'];
  if (typeof fileName === 'string' && !hasAllowedExtension(fileName)) throw unsupportedFileType();
  const categoryId = fields['categoryId'];
  if (typeof categoryId === 'string' && categoryId !== '-1') {
    const id = Number(categoryId);
    if (!Number.isSafeInteger(id) || !ctx.categories.get(id)) {
      throw new JamfApiError(
        400,
        'INVALID_FIELD',
        `Category with id ${categoryId} does not exist`,
        'categoryId',
      );
    }
  }
  const name = fields['packageName'];
  if (typeof name === 'string' && packageByName(ctx, name, exceptId)) throw duplicatePackageName();
}

async function listPackages({ ctx, res, url }: RequestCtx): Promise<void> {
  const page = listRows(ctx.packages.all(), url.searchParams, PACKAGE_LIST);
  const results = await Promise.all(page.results.map(rec => presentPackage(ctx, rec)));
  sendJson(res, 200, { totalCount: page.totalCount, results });
}

async function getPackage({ ctx, res, params }: RequestCtx): Promise<void> {
  sendJson(res, 200, await presentPackage(ctx, packageById(ctx, params['id'])));
}

async function createPackage({ ctx, req, res }: RequestCtx): Promise<void> {
  const fields = fieldsFromBody(await readJsonObject(req));
  const missing = missingRequired(fields);
  if (missing.length > 0) throw JamfApiError.many(400, missing);
  validate(ctx, fields, 0);
  const rec = ctx.packages.insert({ fields, cloudTransferStatus: 'NONE', sizeBlanked: false });
  ctx.logger.info({ id: rec.id, fileName: fields['fileName'] }, 'package created');
  sendJson(res, 201, { id: String(rec.id), href: packageHref(baseUrl(req), rec.id) });
}

async function updatePackage({ ctx, req, res, params }: RequestCtx): Promise<void> {
  const rec = packageById(ctx, params['id']);
  const body = await readJsonObject(req);
  const fields = fieldsFromBody(body);
  for (const f of ['packageName', 'fileName', 'categoryId', 'priority']) {
    if (Object.hasOwn(fields, f) && fields[f] === null) {
      throw new JamfApiError(400, 'INVALID_FIELD', 'must not be null', f);
    }
  }
  validate(ctx, fields, rec.id);
  const updated: PackageRecord = {
    ...rec,
    fields: { ...rec.fields, ...fields },
    // jamf-cli PR #258: a PUT with `size` in it blanks Jamf's own size until the file is
    // uploaded again or the inventory is refreshed.
    sizeBlanked: rec.sizeBlanked || Object.hasOwn(body, 'size'),
  };
  ctx.packages.update(updated);
  sendJson(res, 200, await presentPackage(ctx, updated));
}

async function deletePackage({ ctx, res, params }: RequestCtx): Promise<void> {
  const rec = packageById(ctx, params['id']);
  ctx.packages.delete(rec.id);
  await deleteFileIfUnused(ctx, fieldString(rec, 'fileName'));
  sendEmpty(res, 204);
}

async function deleteMultiple({ ctx, req, res }: RequestCtx): Promise<void> {
  const body = await readJsonObject(req);
  const ids = body['ids'];
  if (!Array.isArray(ids) || ids.length === 0) {
    throw new JamfApiError(400, 'INVALID_FIELD', 'ids must be a non-empty array', 'ids');
  }
  const records = ids.map(id => packageById(ctx, String(id)));
  for (const rec of records) ctx.packages.delete(rec.id);
  for (const rec of records) await deleteFileIfUnused(ctx, fieldString(rec, 'fileName'));
  sendEmpty(res, 204);
}

export const packageRoutes: RouteDef[] = [
  { method: 'GET', template: '/api/v1/packages', api: 'pro', handler: listPackages },
  { method: 'POST', template: '/api/v1/packages', api: 'pro', handler: createPackage },
  {
    method: 'POST',
    template: '/api/v1/packages/delete-multiple',
    api: 'pro',
    handler: deleteMultiple,
  },
  { method: 'GET', template: '/api/v1/packages/{id}', api: 'pro', handler: getPackage },
  { method: 'PUT', template: '/api/v1/packages/{id}', api: 'pro', handler: updatePackage },
  { method: 'DELETE', template: '/api/v1/packages/{id}', api: 'pro', handler: deletePackage },
];
