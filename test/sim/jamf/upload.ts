/**
 * POST /api/v1/packages/{id}/upload (Jamf Pro 11.5+): a multipart/form-data body whose
 * `file` part is streamed straight into the object store at UPLOAD_PREFIX + the package's
 * fileName, never buffered whole. A client that disconnects mid-body makes the store write
 * fail (and discard the partial object) instead of leaving it waiting. 201 {id, href} once
 * the body is stored; Jamf's processing (hashes, size, READY) follows asynchronously after
 * the processing delay (processing.ts), the record showing IN_PROGRESS meanwhile.
 */
import busboy from 'busboy';
import type { Readable } from 'node:stream';
import { JamfApiError } from './errors.ts';
import { UPLOAD_PREFIX } from './jcds-files.ts';
import { baseUrl, sendJson } from './http.ts';
import { fieldString } from './package-model.ts';
import { packageById, packageHref } from './package-view.ts';
import type { RequestCtx, RouteDef } from './router.ts';

async function streamFilePart(
  rc: RequestCtx,
  key: string,
): Promise<{ bytes: number; partName: string }> {
  const { ctx, req } = rc;
  let parser: busboy.Busboy;
  try {
    parser = busboy({ headers: req.headers, limits: { files: 1, fields: 50 } });
  } catch {
    throw new JamfApiError(
      415,
      'UNSUPPORTED_MEDIA_TYPE',
      'Expected a multipart/form-data body',
      'file',
    );
  }
  return new Promise((resolve, reject) => {
    let put: Promise<unknown> | undefined;
    let fileStream: Readable | undefined;
    let partName = '';
    let finished = false;
    const fail = (err: unknown): void => {
      if (finished) return;
      finished = true;
      fileStream?.destroy(err instanceof Error ? err : new Error(String(err)));
      req.unpipe(parser);
      reject(err);
    };
    parser.on('file', (name, stream, info) => {
      if (name !== 'file' || put) {
        stream.resume();
        return;
      }
      fileStream = stream;
      partName = info.filename ?? '';
      put = ctx.store.put(ctx.settings.bucket, key, stream, 'application/octet-stream');
      put.catch(fail);
    });
    parser.on('error', fail);
    parser.on('close', () => {
      if (!put) {
        fail(
          new JamfApiError(400, 'INVALID_FIELD', 'The multipart field "file" is required', 'file'),
        );
        return;
      }
      put.then(info => {
        if (finished) return;
        finished = true;
        resolve({ bytes: (info as { size: number }).size, partName });
      }, fail);
    });
    req.on('close', () => {
      if (!req.complete) fail(new Error('client disconnected during the package upload'));
    });
    req.pipe(parser);
  });
}

async function uploadPackage(rc: RequestCtx): Promise<void> {
  const { ctx, req, res, params } = rc;
  const rec = packageById(ctx, params['id']);
  const fileName = fieldString(rec, 'fileName');
  if (!fileName)
    throw new JamfApiError(400, 'INVALID_FIELD', 'The package has no fileName', 'fileName');
  const key = UPLOAD_PREFIX + fileName;
  const { bytes, partName } = await streamFilePart(rc, key);
  if (partName && partName !== fileName) {
    ctx.logger.warn(
      { id: rec.id, fileName, partName },
      'upload part name differs from the package fileName',
    );
  }
  // Jamf computes hashes and size after answering, asynchronously.
  ctx.processing.schedule(rec.id, 'upload');
  ctx.logger.info({ id: rec.id, fileName, bytes }, 'package file uploaded');
  sendJson(res, 201, { id: String(rec.id), href: packageHref(baseUrl(req), rec.id) });
}

export const uploadRoutes: RouteDef[] = [
  { method: 'POST', template: '/api/v1/packages/{id}/upload', api: 'pro', handler: uploadPackage },
];
