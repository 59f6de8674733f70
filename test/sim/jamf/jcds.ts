/**
 * The JCDS v1 endpoints (jamf-api.md 2.2, jamf-wire-2026.md 4; deprecated since 2025-08-28
 * and still served; 404 with --no-jcds): temporary S3 credentials (create and renew, each
 * with a fresh `path` `tmp/<uuid>/`), the file list (the newest object of each file name:
 * jcds-files.ts), CloudFront-style signed download URLs (../cdn.ts; they live
 * faults.presignTtlSeconds ?? --download-url-ttl seconds; the legacy S3 presigned form with
 * --download-url-form s3-presigned) and delete.
 *
 * Every handler here first applies the cloud distribution point's type: with cdnType AWS or
 * NONE the endpoints answer 404 "JCDS Settings record not found" (wire 3, seen on 11.26.1);
 * and with the deprecation header switched on every answer carries
 * `Deprecation: date="2025-08-28T00:00:00Z"` (wire 5).
 */
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import type { IssuedCredential, StoredObjectInfo } from '../types.ts';
import { hashesWithin, type JamfContext } from './context.ts';
import { JamfApiError, notFound } from './errors.ts';
import { readBody, sendEmpty, sendJson } from './http.ts';
import { refreshInventory } from './inventory.ts';
import {
  deleteFile,
  newCredentialsPath,
  newestByFileName,
  newestObject,
  type JcdsBucket,
} from './jcds-files.ts';
import type { Handler, RequestCtx, RouteDef } from './router.ts';

/** The Deprecation header value of the JCDS v1 endpoints (jamf-wire-2026.md 4 and 5). */
export const JCDS_DEPRECATION = 'date="2025-08-28T00:00:00Z"';

function credentialsBody(ctx: JamfContext, c: IssuedCredential): Record<string, unknown> {
  const path = newCredentialsPath();
  return {
    accessKeyID: c.accessKeyId,
    secretAccessKey: c.secretAccessKey,
    sessionToken: c.sessionToken,
    region: ctx.settings.region,
    expiration: Math.floor(c.expiresAt / 1000),
    bucketName: ctx.settings.bucket,
    path,
    uuid: path.slice('tmp/'.length, -1),
  };
}

function jcdsOf(ctx: JamfContext): JcdsBucket {
  return { store: ctx.store, bucket: ctx.settings.bucket };
}

function fileNameParam(raw: string | undefined): string {
  if (!raw || raw.includes('/') || raw.length > 255) {
    throw new JamfApiError(400, 'INVALID_FIELD', 'Invalid file name', 'fileName');
  }
  return raw;
}

/** Wraps a JCDS handler: the Deprecation header, then 404 unless the CDP is Jamf Cloud. */
function jcdsEndpoint(handler: Handler): Handler {
  return rc => {
    const { ctx, res } = rc;
    if (ctx.settings.deprecationHeader) res.setHeader('Deprecation', JCDS_DEPRECATION);
    if (ctx.settings.cdnType !== 'JAMF_CLOUD') {
      throw new JamfApiError(404, 'NOT_FOUND', 'JCDS Settings record not found', null);
    }
    return handler(rc);
  };
}

async function createFile({ ctx, req, res }: RequestCtx): Promise<void> {
  await readBody(req);
  const c = ctx.credentials.issue(ctx.settings.credentialTtlSeconds);
  sendJson(res, 201, credentialsBody(ctx, c));
}

async function renewCredentials({ ctx, req, res }: RequestCtx): Promise<void> {
  await readBody(req);
  const c = ctx.credentials.renew(ctx.settings.credentialTtlSeconds);
  ctx.counters.credentialRenewals++;
  sendJson(res, 200, credentialsBody(ctx, c));
}

/** How long the file list waits for a just-stored file's hashes before listing them as null. */
const LIST_HASH_WAIT_MS = 20_000;

async function listFiles({ ctx, res }: RequestCtx): Promise<void> {
  const files = [];
  for (const [fileName, o] of await newestByFileName(jcdsOf(ctx))) {
    const h = await hashesWithin(ctx, o.key, LIST_HASH_WAIT_MS);
    if (!h && !(await ctx.store.head(ctx.settings.bucket, o.key))) continue; // deleted meanwhile
    files.push({
      fileName,
      length: h?.size ?? o.size,
      md5: h?.md5 ?? null,
      region: ctx.settings.region,
      sha3: h?.sha3_512 ?? null,
    });
  }
  sendJson(res, 200, files);
}

let presignClient: { key: string; client: S3Client } | undefined;

function presignClientFor(ctx: JamfContext, c: IssuedCredential): S3Client {
  const key = `${c.accessKeyId}@${ctx.s3Endpoint()}`;
  if (presignClient?.key !== key) {
    presignClient?.client.destroy();
    presignClient = {
      key,
      client: new S3Client({
        region: ctx.settings.region,
        endpoint: ctx.s3Endpoint(),
        forcePathStyle: true,
        credentials: {
          accessKeyId: c.accessKeyId,
          secretAccessKey: c.secretAccessKey,
          sessionToken: c.sessionToken,
        },
        requestChecksumCalculation: 'WHEN_REQUIRED',
        responseChecksumValidation: 'WHEN_REQUIRED',
      }),
    };
  }
  return presignClient.client;
}

/**
 * A download URL for a JCDS file, living faults.presignTtlSeconds ?? --download-url-ttl
 * seconds: CloudFront form by default (served on the S3 port, the newest object of that
 * name at each request); with `--download-url-form s3-presigned` the pre-2026 simulator's
 * S3 presigned GET of the object's key (signed with the registry's internal credential).
 */
export async function downloadUrlFor(
  ctx: JamfContext,
  fileName: string,
  object: StoredObjectInfo,
): Promise<string> {
  const ttl = ctx.faults.presignTtlSeconds ?? ctx.settings.downloadUrlTtlSeconds;
  if (ctx.settings.downloadUrlForm === 'cloudfront') {
    return ctx.cdn.sign(ctx.s3Endpoint(), fileName, ttl);
  }
  const c = ctx.credentials.presignCredential(ttl);
  const command = new GetObjectCommand({ Bucket: object.bucket, Key: object.key });
  return getSignedUrl(presignClientFor(ctx, c), command, { expiresIn: ttl });
}

async function downloadUrl({ ctx, res, params }: RequestCtx): Promise<void> {
  const fileName = fileNameParam(params['fileName']);
  const object = await newestObject(jcdsOf(ctx), fileName);
  if (!object) throw notFound(`File ${fileName} does not exist`, 'fileName');
  sendJson(res, 200, { uri: await downloadUrlFor(ctx, fileName, object) });
}

async function removeFile({ ctx, res, params }: RequestCtx): Promise<void> {
  const fileName = fileNameParam(params['fileName']);
  if (!(await deleteFile(jcdsOf(ctx), fileName))) {
    throw notFound(`File ${fileName} does not exist`, 'fileName');
  }
  sendEmpty(res, 204);
}

const FILES = '/api/v1/jcds/files';

export const jcdsRoutes: RouteDef[] = [
  { method: 'POST', template: FILES, api: 'pro', jcds: true, handler: jcdsEndpoint(createFile) },
  { method: 'GET', template: FILES, api: 'pro', jcds: true, handler: jcdsEndpoint(listFiles) },
  {
    method: 'GET',
    template: `${FILES}/{fileName}`,
    api: 'pro',
    jcds: true,
    handler: jcdsEndpoint(downloadUrl),
  },
  {
    method: 'DELETE',
    template: `${FILES}/{fileName}`,
    api: 'pro',
    jcds: true,
    handler: jcdsEndpoint(removeFile),
  },
  {
    method: 'POST',
    template: '/api/v1/jcds/renew-credentials',
    api: 'pro',
    jcds: true,
    handler: jcdsEndpoint(renewCredentials),
  },
  {
    method: 'POST',
    template: '/api/v1/jcds/refresh-inventory',
    api: 'pro',
    jcds: true,
    handler: jcdsEndpoint(refreshInventory),
  },
];
