/** The Jamf Pro side of the simulator: one request handler over every route. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { authRoutes } from './auth.ts';
import { cdpRoutes } from './cdp.ts';
import { classicRoutes } from './classic.ts';
import type { JamfContext } from './context.ts';
import { controlRoutes } from './control.ts';
import { jcdsRoutes } from './jcds.ts';
import { packageRoutes } from './packages.ts';
import { createRouter } from './router.ts';
import { uploadRoutes } from './upload.ts';

export { createJamfContext, type JamfContext, type JamfSettings } from './context.ts';

export function createJamfHandler(
  ctx: JamfContext,
): (req: IncomingMessage, res: ServerResponse) => Promise<void> {
  return createRouter(ctx, [
    ...authRoutes,
    ...jcdsRoutes,
    ...packageRoutes,
    ...uploadRoutes,
    ...cdpRoutes,
    ...classicRoutes,
    ...controlRoutes,
  ]);
}
