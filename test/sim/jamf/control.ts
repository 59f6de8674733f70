/**
 * Test control endpoints under /__sim/ on the Jamf port (no auth, no faults, not counted):
 *   GET|PUT|DELETE /__sim/faults         read, merge a JSON partial (null removes a key), clear
 *   GET  /__sim/counters                 Counters + requestsWithoutCookie
 *   POST /__sim/counters/reset
 *   POST /__sim/expire-credentials       every issued S3 credential expires now
 *   POST /__sim/corrupt?fileName=        flip bytes of a stored JCDS file (the newest object of
 *                                        that name; 404 if none)
 *   GET  /__sim/multipart-uploads        open multipart uploads in the bucket
 *   POST /__sim/s3/restart?downMs=       close S3 (dropping connections), reopen after downMs;
 *                                        answers once S3 listens again
 *   GET  /__sim/packages                 the raw package table
 *   GET|PUT /__sim/settings              the run-time settings (cdnType, deprecationHeader,
 *                                        processingMs, downloadUrlTtlSeconds,
 *                                        downloadUrlForm, packageSha256): read, merge
 *   GET|PUT|DELETE /__sim/privileges     the role's privileges (privileges.ts): read, revoke or
 *                                        grant some, grant all again
 *   POST /__sim/client/rotate-secret     Jamf Pro's "Rotate Client Secret" (API Roles and Clients):
 *                                        the API client gets a new secret (the body's
 *                                        `clientSecret`, or a random one), answered as
 *                                        {clientSecret}; the old secret no longer obtains a
 *                                        token, tokens issued before stay valid until they
 *                                        expire, as on Jamf Pro
 */
import { randomBytes } from 'node:crypto';
import { resetCounters as resetAll } from '../counters.ts';
import type { Faults } from '../types.ts';
import { CDN_TYPES, DOWNLOAD_URL_FORMS, type JamfSettings } from './context.ts';
import { JamfApiError, notFound } from './errors.ts';
import { newestObject } from './jcds-files.ts';
import { readBody, readJsonObject, sendEmpty, sendJson } from './http.ts';
import { privilegeRoutes } from './privileges.ts';
import type { RequestCtx, RouteDef } from './router.ts';

const NUMERIC_FAULTS = [
  'jamfLatencyMs',
  's3LatencyMs',
  'jamf429Count',
  'jamf429RetryAfterSeconds',
  'jamf503Count',
  's3SlowDownCount',
  's3ErrorCount',
  'jamfErrorCount',
  's3DropCount',
  'jamfDropCount',
  's3BytesPerSecond',
  'presignTtlSeconds',
  'tokenFailCount',
  'processingDelayMs',
  'staleSizeMs',
  'bytesNeverLandCount',
  'vanishObjectCount',
] as const;

function clearObject(o: Record<string, unknown>): void {
  for (const k of Object.keys(o)) delete o[k];
}

function getFaults({ ctx, res }: RequestCtx): void {
  sendJson(res, 200, ctx.faults);
}

async function putFaults({ ctx, req, res }: RequestCtx): Promise<void> {
  let partial: unknown;
  try {
    partial = JSON.parse(await readBody(req));
  } catch {
    throw new JamfApiError(400, 'INVALID_JSON', 'Faults must be a JSON object');
  }
  if (typeof partial !== 'object' || partial === null || Array.isArray(partial)) {
    throw new JamfApiError(400, 'INVALID_JSON', 'Faults must be a JSON object');
  }
  const faults = ctx.faults as Record<string, unknown>;
  // Validate everything before changing anything.
  for (const [key, value] of Object.entries(partial)) {
    if (value === null) continue;
    if ((NUMERIC_FAULTS as readonly string[]).includes(key)) {
      if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
        throw new JamfApiError(400, 'INVALID_FIELD', `${key} must be a non-negative number`, key);
      }
    } else if (key === 's3ErrorMessage' || key === 'jamfErrorBody') {
      if (typeof value !== 'string') {
        throw new JamfApiError(400, 'INVALID_FIELD', `${key} must be a string`, key);
      }
    } else if (key === 'failPartNumbers' || key === 'corruptPartNumbers') {
      if (!Array.isArray(value) || !value.every(n => Number.isInteger(n) && n > 0)) {
        throw new JamfApiError(400, 'INVALID_FIELD', `${key} must be positive integers`, key);
      }
    } else {
      throw new JamfApiError(400, 'INVALID_FIELD', `Unknown fault ${key}`, key);
    }
  }
  for (const [key, value] of Object.entries(partial)) {
    if (value === null) delete faults[key];
    else faults[key] = value;
  }
  sendJson(res, 200, ctx.faults satisfies Faults);
}

function deleteFaults({ ctx, res }: RequestCtx): void {
  clearObject(ctx.faults as Record<string, unknown>);
  sendJson(res, 200, ctx.faults);
}

function getCounters({ ctx, res }: RequestCtx): void {
  sendJson(res, 200, { ...ctx.counters, requestsWithoutCookie: ctx.stats.requestsWithoutCookie });
}

function resetCounters({ ctx, res }: RequestCtx): void {
  // In place: the S3 server holds the same objects.
  resetAll(ctx.counters);
  ctx.stats.requestsWithoutCookie = 0;
  sendEmpty(res, 204);
}

function expireCredentials({ ctx, res }: RequestCtx): void {
  ctx.credentials.expireAll();
  sendEmpty(res, 204);
}

async function corrupt({ ctx, res, url }: RequestCtx): Promise<void> {
  const fileName = url.searchParams.get('fileName') ?? '';
  const stored = fileName
    ? await newestObject({ store: ctx.store, bucket: ctx.settings.bucket }, fileName)
    : undefined;
  if (!stored) throw notFound(`No stored file ${fileName}`, 'fileName');
  await ctx.store.corrupt(ctx.settings.bucket, stored.key);
  sendEmpty(res, 204);
}

async function multipartUploads({ ctx, res }: RequestCtx): Promise<void> {
  const uploads = await ctx.store.listMultipartUploads(ctx.settings.bucket);
  sendJson(
    res,
    200,
    uploads.map(u => ({ key: u.key, uploadId: u.uploadId, initiated: u.initiated.toISOString() })),
  );
}

async function restartS3({ ctx, res, url }: RequestCtx): Promise<void> {
  const downMs = Number(url.searchParams.get('downMs') ?? '0');
  if (!Number.isFinite(downMs) || downMs < 0) {
    throw new JamfApiError(400, 'INVALID_FIELD', 'downMs must be a non-negative number', 'downMs');
  }
  await ctx.restartS3(downMs);
  sendJson(res, 200, { restarted: true, downMs, s3Endpoint: ctx.s3Endpoint() });
}

/** The settings `PUT /__sim/settings` may change at run time. */
type RuntimeSettings = Pick<
  JamfSettings,
  | 'cdnType'
  | 'deprecationHeader'
  | 'processingMs'
  | 'downloadUrlTtlSeconds'
  | 'downloadUrlForm'
  | 'packageSha256'
>;

function runtimeSettings(s: JamfSettings): RuntimeSettings {
  return {
    cdnType: s.cdnType,
    deprecationHeader: s.deprecationHeader,
    processingMs: s.processingMs,
    downloadUrlTtlSeconds: s.downloadUrlTtlSeconds,
    downloadUrlForm: s.downloadUrlForm,
    packageSha256: s.packageSha256,
  };
}

function getSettings({ ctx, res }: RequestCtx): void {
  sendJson(res, 200, runtimeSettings(ctx.settings));
}

async function putSettings({ ctx, req, res }: RequestCtx): Promise<void> {
  const body = await readJsonObject(req);
  const next = runtimeSettings(ctx.settings);
  const bad = (key: string, what: string): never => {
    throw new JamfApiError(400, 'INVALID_FIELD', `${key} must be ${what}`, key);
  };
  for (const [key, value] of Object.entries(body)) {
    switch (key) {
      case 'cdnType':
        if (!(CDN_TYPES as readonly unknown[]).includes(value)) bad(key, CDN_TYPES.join(', '));
        next.cdnType = value as RuntimeSettings['cdnType'];
        break;
      case 'deprecationHeader':
        if (typeof value !== 'boolean') bad(key, 'a boolean');
        next.deprecationHeader = value as boolean;
        break;
      case 'processingMs':
        if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
          bad(key, 'a non-negative number');
        }
        next.processingMs = value as number;
        break;
      case 'downloadUrlTtlSeconds':
        if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
          bad(key, 'a positive number');
        }
        next.downloadUrlTtlSeconds = value as number;
        break;
      case 'downloadUrlForm':
        if (!(DOWNLOAD_URL_FORMS as readonly unknown[]).includes(value)) {
          bad(key, DOWNLOAD_URL_FORMS.join(', '));
        }
        next.downloadUrlForm = value as RuntimeSettings['downloadUrlForm'];
        break;
      case 'packageSha256':
        if (typeof value !== 'boolean') bad(key, 'a boolean');
        next.packageSha256 = value as boolean;
        break;
      default:
        throw new JamfApiError(400, 'INVALID_FIELD', `Unknown setting ${key}`, key);
    }
  }
  Object.assign(ctx.settings, next);
  // Processing held back by cdnType NONE goes on when the setting changes back.
  ctx.processing.resume();
  sendJson(res, 200, runtimeSettings(ctx.settings));
}

async function rotateClientSecret({ ctx, req, res }: RequestCtx): Promise<void> {
  const text = await readBody(req);
  let given: unknown;
  if (text.trim() !== '') {
    try {
      given = (JSON.parse(text) as { clientSecret?: unknown }).clientSecret;
    } catch {
      throw new JamfApiError(400, 'INVALID_JSON', 'The body must be a JSON object');
    }
  }
  if (given !== undefined && (typeof given !== 'string' || given.length < 8)) {
    throw new JamfApiError(
      400,
      'INVALID_FIELD',
      'clientSecret must be a string of 8+ characters',
      'clientSecret',
    );
  }
  ctx.settings.clientSecret =
    (given as string | undefined) ?? randomBytes(24).toString('base64url');
  sendJson(res, 200, { clientSecret: ctx.settings.clientSecret });
}

function rawPackages({ ctx, res }: RequestCtx): void {
  sendJson(
    res,
    200,
    ctx.packages.all().sort((a, b) => a.id - b.id),
  );
}

export const controlRoutes: RouteDef[] = [
  { method: 'GET', template: '/__sim/faults', api: 'control', handler: getFaults },
  { method: 'PUT', template: '/__sim/faults', api: 'control', handler: putFaults },
  { method: 'DELETE', template: '/__sim/faults', api: 'control', handler: deleteFaults },
  { method: 'GET', template: '/__sim/counters', api: 'control', handler: getCounters },
  { method: 'POST', template: '/__sim/counters/reset', api: 'control', handler: resetCounters },
  {
    method: 'POST',
    template: '/__sim/expire-credentials',
    api: 'control',
    handler: expireCredentials,
  },
  { method: 'POST', template: '/__sim/corrupt', api: 'control', handler: corrupt },
  {
    method: 'GET',
    template: '/__sim/multipart-uploads',
    api: 'control',
    handler: multipartUploads,
  },
  { method: 'POST', template: '/__sim/s3/restart', api: 'control', handler: restartS3 },
  { method: 'GET', template: '/__sim/packages', api: 'control', handler: rawPackages },
  { method: 'GET', template: '/__sim/settings', api: 'control', handler: getSettings },
  { method: 'PUT', template: '/__sim/settings', api: 'control', handler: putSettings },
  {
    method: 'POST',
    template: '/__sim/client/rotate-secret',
    api: 'control',
    handler: rotateClientSecret,
  },
  ...privilegeRoutes,
];
