/**
 * refresh-inventory, shared by POST /api/v1/jcds/refresh-inventory and
 * POST /api/v1/cloud-distribution-point/refresh-inventory (204). With `file-name` it
 * refreshes that file: a blanked size comes back, and a JCDS object of that name not yet
 * processed for its package records is processed now (processing.ts; the answer does not
 * wait for the hashing). Without it, the same for every package, at most once in 15 s
 * (SPEC): sooner answers 429 with Retry-After.
 */
import { JamfApiError } from './errors.ts';
import { readBody, sendEmpty } from './http.ts';
import type { RequestCtx } from './router.ts';

export const FULL_REFRESH_INTERVAL_MS = 15_000;

export async function refreshInventory({ ctx, req, res, url }: RequestCtx): Promise<void> {
  await readBody(req);
  const fileName = url.searchParams.get('file-name');
  if (fileName !== null && fileName !== '') {
    if (fileName.length > 255) {
      throw new JamfApiError(400, 'INVALID_FIELD', 'file-name is longer than 255', 'file-name');
    }
    await ctx.processing.refresh(fileName);
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
  await ctx.processing.refreshAll();
  sendEmpty(res, 204);
}
