/**
 * refresh-inventory, shared by POST /api/v1/jcds/refresh-inventory and
 * POST /api/v1/cloud-distribution-point/refresh-inventory. With `file-name` it refreshes
 * that file (hashes computed, a blanked size restored); without it the whole inventory, at
 * most once in 15 s (SPEC): sooner answers 429 with Retry-After.
 */
import { objectKey } from './context.ts';
import { JamfApiError } from './errors.ts';
import { readBody, sendEmpty } from './http.ts';
import { fieldString } from './package-model.ts';
import type { RequestCtx } from './router.ts';

export const FULL_REFRESH_INTERVAL_MS = 15_000;

export async function refreshInventory({ ctx, req, res, url }: RequestCtx): Promise<void> {
  await readBody(req);
  const fileName = url.searchParams.get('file-name');
  if (fileName !== null && fileName !== '') {
    if (fileName.length > 255) {
      throw new JamfApiError(400, 'INVALID_FIELD', 'file-name is longer than 255', 'file-name');
    }
    for (const p of ctx.packages.all()) {
      if (p.sizeBlanked && fieldString(p, 'fileName') === fileName) {
        ctx.packages.update({ ...p, sizeBlanked: false });
      }
    }
    const key = objectKey(ctx, fileName);
    if (await ctx.store.head(ctx.settings.bucket, key)) {
      ctx.store.hashes(ctx.settings.bucket, key).catch((err: unknown) => {
        ctx.logger.warn({ err, fileName }, 'hashing on refresh-inventory failed');
      });
    }
    sendEmpty(res, 204);
    return;
  }
  const now = Date.now();
  const wait = ctx.inventory.lastFullRefresh + FULL_REFRESH_INTERVAL_MS - now;
  if (wait > 0) {
    throw new JamfApiError(
      429,
      'TOO_MANY_REQUESTS',
      'The inventory can be refreshed once every 15 seconds',
      null,
      { 'Retry-After': String(Math.ceil(wait / 1000)) },
    );
  }
  ctx.inventory.lastFullRefresh = now;
  for (const p of ctx.packages.all()) {
    if (p.sizeBlanked) ctx.packages.update({ ...p, sizeBlanked: false });
  }
  sendEmpty(res, 204);
}
