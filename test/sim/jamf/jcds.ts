/**
 * The JCDS v1 endpoints (jamf-api.md 2.2; deprecated in 11.24.0, 404 with --no-jcds):
 * temporary S3 credentials (create and renew), the file list, presigned download URLs and
 * delete. Presigned URLs are signed with the registry's internal credential and live
 * faults.presignTtlSeconds ?? --presign-ttl seconds.
 */
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { randomUUID } from 'node:crypto';
import type { IssuedCredential } from '../types.ts';
import { fileState, objectKey, type JamfContext } from './context.ts';
import { JamfApiError, notFound } from './errors.ts';
import { readBody, sendEmpty, sendJson } from './http.ts';
import { refreshInventory } from './inventory.ts';
import type { RequestCtx, RouteDef } from './router.ts';

function credentialsBody(ctx: JamfContext, c: IssuedCredential): Record<string, unknown> {
  return {
    accessKeyID: c.accessKeyId,
    secretAccessKey: c.secretAccessKey,
    sessionToken: c.sessionToken,
    region: ctx.settings.region,
    expiration: Math.floor(c.expiresAt / 1000),
    bucketName: ctx.settings.bucket,
    path: ctx.settings.jcdsPath,
    uuid: randomUUID(),
  };
}

function fileNameParam(raw: string | undefined): string {
  if (!raw || raw.includes('/') || raw.length > 255) {
    throw new JamfApiError(400, 'INVALID_FIELD', 'Invalid file name', 'fileName');
  }
  return raw;
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
  const prefix = ctx.settings.jcdsPath;
  const objects = await ctx.store.list(ctx.settings.bucket, prefix);
  const files = [];
  for (const o of objects) {
    const fileName = o.key.slice(prefix.length);
    if (!fileName || fileName.includes('/')) continue;
    const file = await fileState(ctx, fileName, LIST_HASH_WAIT_MS);
    if (file.state === 'missing') continue; // deleted meanwhile
    const h = file.state === 'ready' ? file.hashes : undefined;
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

function clientFor(ctx: JamfContext, c: IssuedCredential): S3Client {
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

export async function presignDownload(ctx: JamfContext, fileName: string): Promise<string> {
  const ttl = ctx.faults.presignTtlSeconds ?? ctx.settings.presignTtlSeconds;
  const c = ctx.credentials.presignCredential(ttl);
  const command = new GetObjectCommand({
    Bucket: ctx.settings.bucket,
    Key: objectKey(ctx, fileName),
  });
  return getSignedUrl(clientFor(ctx, c), command, { expiresIn: ttl });
}

async function downloadUrl({ ctx, res, params }: RequestCtx): Promise<void> {
  const fileName = fileNameParam(params['fileName']);
  const head = await ctx.store.head(ctx.settings.bucket, objectKey(ctx, fileName));
  if (!head) throw notFound(`File ${fileName} does not exist`, 'fileName');
  sendJson(res, 200, { uri: await presignDownload(ctx, fileName) });
}

async function deleteFile({ ctx, res, params }: RequestCtx): Promise<void> {
  const fileName = fileNameParam(params['fileName']);
  const deleted = await ctx.store.delete(ctx.settings.bucket, objectKey(ctx, fileName));
  if (!deleted) throw notFound(`File ${fileName} does not exist`, 'fileName');
  sendEmpty(res, 204);
}

export const jcdsRoutes: RouteDef[] = [
  { method: 'POST', template: '/api/v1/jcds/files', api: 'pro', jcds: true, handler: createFile },
  { method: 'GET', template: '/api/v1/jcds/files', api: 'pro', jcds: true, handler: listFiles },
  {
    method: 'GET',
    template: '/api/v1/jcds/files/{fileName}',
    api: 'pro',
    jcds: true,
    handler: downloadUrl,
  },
  {
    method: 'DELETE',
    template: '/api/v1/jcds/files/{fileName}',
    api: 'pro',
    jcds: true,
    handler: deleteFile,
  },
  {
    method: 'POST',
    template: '/api/v1/jcds/renew-credentials',
    api: 'pro',
    jcds: true,
    handler: renewCredentials,
  },
  {
    method: 'POST',
    template: '/api/v1/jcds/refresh-inventory',
    api: 'pro',
    jcds: true,
    handler: refreshInventory,
  },
];
