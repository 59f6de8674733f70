/**
 * The simulator's S3 endpoint: an http.Server over a DiskObjectStore, path-style
 * (`/bucket/key`), any bucket name accepted. Every request passes, in order: routing to an
 * operation name (counted in `counters.calls`), the live faults (latency, connection drop,
 * SlowDown), SigV4 verification against the CredentialRegistry, then the operation.
 *
 * Start, stop and start again on the same port with the same store: the store holds all
 * state, the server none. Clients sending `Expect: 100-continue` get their error before
 * they send a body.
 *
 * With `cdn` set it also serves the JCDS download URLs (CloudFront form, ../cdn.ts) under
 * /__cdn/<fileName>: GET and HEAD (Range, ETag, no redirect), through the same faults and
 * counters as GetObject (counted as CdnGetObject / CdnHeadObject), 403 AccessDenied past
 * `Expires` or with a wrong signature.
 */
import { randomBytes } from 'node:crypto';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../../../shared/logger.ts';
import { CDN_PREFIX, type CdnSigner } from '../cdn.ts';
import { StoreError, type DiskObjectStore } from '../store.ts';
import type { Counters, CredentialRegistry, Faults } from '../types.ts';
import { S3Error, s3Errors } from './errors.ts';
import * as mp from './multipart-ops.ts';
import * as obj from './object-ops.ts';
import { header, sendError, type S3Request } from './respond.ts';
import { authenticate, parseQuery, percentDecode, type AuthResult } from './sigv4.ts';

export interface S3ServerOptions {
  store: DiskObjectStore;
  credentials: CredentialRegistry;
  /** Live: read on every request; the *Count fields are decremented as they fire. */
  faults: Faults;
  /** Live: incremented as requests arrive. */
  counters: Counters;
  region: string;
  logger?: Logger;
  /** Clock for credential and presign expiry (tests). */
  now?: () => number;
  /** Called once an object was stored (PutObject, CompleteMultipartUpload) and S3 answered. */
  onObjectStored?: (bucket: string, key: string) => void;
  /** Serves signed download URLs under /__cdn/ (the Jamf side hands them out). */
  cdn?: CdnOptions;
}

export interface CdnOptions {
  signer: CdnSigner;
  /** The stored object a file name's download serves now (the newest of that name). */
  resolve(fileName: string): Promise<{ bucket: string; key: string } | undefined>;
}

interface Route {
  op: string;
  bucket: string;
  key: string;
}

function route(method: string, rawPath: string, q: Map<string, string>): Route | undefined {
  if (rawPath.startsWith(CDN_PREFIX)) {
    const fileName = percentDecode(rawPath.slice(CDN_PREFIX.length));
    if (fileName === undefined || fileName === '' || fileName.includes('/')) return undefined;
    const op = method === 'GET' ? 'CdnGetObject' : method === 'HEAD' ? 'CdnHeadObject' : 'Cdn';
    return { op, bucket: '', key: fileName };
  }
  const slash = rawPath.indexOf('/', 1);
  const bucket = percentDecode(slash < 0 ? rawPath.slice(1) : rawPath.slice(1, slash));
  const key = slash < 0 ? '' : percentDecode(rawPath.slice(slash + 1));
  if (bucket === undefined || key === undefined) return undefined;
  const r = (op: string): Route => ({ op, bucket, key });
  if (bucket === '') return r(method === 'GET' ? 'ListBuckets' : 'Unsupported');
  if (key === '') {
    if (method === 'GET' && q.has('uploads')) return r('ListMultipartUploads');
    if (method === 'GET' && q.has('location')) return r('GetBucketLocation');
    if (method === 'GET') return r(q.get('list-type') === '2' ? 'ListObjectsV2' : 'ListObjects');
    if (method === 'HEAD') return r('HeadBucket');
    if (method === 'PUT' && q.size === 0) return r('CreateBucket');
    if (method === 'DELETE' && q.size === 0) return r('DeleteBucket');
    return r('Unsupported');
  }
  switch (method) {
    case 'PUT':
      if (q.has('uploadId') || q.has('partNumber')) return r('UploadPart');
      return r(
        q.size === 0 || q.has('x-id') || q.has('X-Amz-Signature') ? 'PutObject' : 'Unsupported',
      );
    case 'GET':
      return r(q.has('uploadId') ? 'ListParts' : 'GetObject');
    case 'HEAD':
      return r('HeadObject');
    case 'POST':
      if (q.has('uploads')) return r('CreateMultipartUpload');
      if (q.has('uploadId')) return r('CompleteMultipartUpload');
      return r('Unsupported');
    case 'DELETE':
      return r(q.has('uploadId') ? 'AbortMultipartUpload' : 'DeleteObject');
    default:
      return r('Unsupported');
  }
}

type Handler = (ctx: obj.OpContext, r: S3Request, auth: AuthResult) => Promise<void>;

const HANDLERS: Record<string, Handler> = {
  PutObject: obj.putObject,
  GetObject: obj.getObject,
  HeadObject: obj.getObject,
  DeleteObject: obj.deleteObject,
  ListObjectsV2: obj.listObjectsV2,
  HeadBucket: obj.bucketOp,
  CreateBucket: obj.bucketOp,
  DeleteBucket: obj.bucketOp,
  GetBucketLocation: obj.bucketOp,
  CreateMultipartUpload: mp.createMultipartUpload,
  UploadPart: mp.uploadPart,
  ListParts: mp.listParts,
  CompleteMultipartUpload: mp.completeMultipartUpload,
  AbortMultipartUpload: mp.abortMultipartUpload,
  ListMultipartUploads: mp.listMultipartUploads,
};

const STORE_STATUS: Record<string, number> = { NoSuchKey: 404, NoSuchUpload: 404 };

function toS3Error(err: unknown, r: S3Request): S3Error | undefined {
  if (err instanceof S3Error) return err;
  if (err instanceof StoreError) {
    if (err.code === 'NoSuchUpload') return s3Errors.noSuchUpload(r.query.get('uploadId') ?? '');
    return new S3Error(err.code, STORE_STATUS[err.code] ?? 400, err.message);
  }
  return undefined;
}

/** Bytes after which the drop fault cuts a transfer: half the body, at most 1 MiB. */
function dropPoint(req: IncomingMessage, op: string): number | undefined {
  if (op === 'GetObject' || op === 'CdnGetObject') return 1024 * 1024;
  if (op !== 'PutObject' && op !== 'UploadPart') return undefined;
  const len = Number(req.headers['x-amz-decoded-content-length'] ?? req.headers['content-length']);
  return Number.isFinite(len) && len > 1 ? Math.min(1024 * 1024, Math.floor(len / 2)) : 1;
}

export function createS3Server(options: S3ServerOptions): http.Server {
  const { store, credentials, faults, counters, region, logger, cdn } = options;
  const now = options.now ?? Date.now;
  const ctx: obj.OpContext = {
    store,
    faults,
    counters,
    region,
    onObjectStored: options.onObjectStored,
  };

  /** A signed download URL (CloudFront form): verify, resolve the file, serve it. */
  async function serveCdn(r: S3Request): Promise<void> {
    if (!cdn || r.op === 'Cdn') throw s3Errors.methodNotAllowed();
    if (cdn.signer.verify(r.key, r.query) !== 'ok') {
      throw new S3Error('AccessDenied', 403, 'Access denied');
    }
    const target = await cdn.resolve(r.key);
    if (!target) throw s3Errors.noSuchKey(r.key);
    await obj.getObject(ctx, { ...r, bucket: target.bucket, key: target.key });
  }

  async function handle(
    req: IncomingMessage,
    res: ServerResponse,
    expectContinue: boolean,
  ): Promise<void> {
    const started = Date.now();
    const url = req.url ?? '/';
    const qi = url.indexOf('?');
    const rawPath = qi < 0 ? url : url.slice(0, qi);
    const params = parseQuery(qi < 0 ? '' : url.slice(qi + 1));
    const query = new Map(params);
    const method = req.method ?? 'GET';
    const found = route(method, rawPath, query);
    const r: S3Request = {
      req,
      res,
      requestId: randomBytes(8).toString('hex').toUpperCase(),
      op: found?.op ?? 'Unsupported',
      bucket: found?.bucket ?? '',
      key: found?.key ?? '',
      query,
      expectContinue,
      dropAfterBytes: undefined,
    };
    counters.calls[r.op] = (counters.calls[r.op] ?? 0) + 1;
    try {
      if (!found) throw new S3Error('InvalidURI', 400, "Couldn't parse the specified URI.");
      if (faults.s3LatencyMs) await sleep(faults.s3LatencyMs);
      if (faults.s3DropCount && faults.s3DropCount > 0) {
        faults.s3DropCount--;
        r.dropAfterBytes = dropPoint(req, r.op);
        if (r.dropAfterBytes === undefined) {
          req.socket.destroy();
          return;
        }
      }
      if (faults.s3SlowDownCount && faults.s3SlowDownCount > 0) {
        faults.s3SlowDownCount--;
        throw s3Errors.slowDown();
      }
      if (faults.s3ErrorCount && faults.s3ErrorCount > 0 && !r.op.startsWith('Cdn')) {
        faults.s3ErrorCount--;
        throw s3Errors.invalidRequest(faults.s3ErrorMessage ?? 'Invalid request');
      }
      if (r.op.startsWith('Cdn')) {
        await serveCdn(r);
        return;
      }
      const auth = authenticate(
        { method, rawPath, query: params, rawHeaders: req.rawHeaders, headers: req.headers },
        { credentials, region, now: now() },
      );
      const handler = HANDLERS[r.op];
      if (!handler) {
        throw r.op === 'Unsupported' ? s3Errors.methodNotAllowed() : s3Errors.notImplemented();
      }
      await handler(ctx, r, auth);
    } catch (err) {
      const s3err = toS3Error(err, r);
      if (s3err) {
        sendError(r, s3err);
      } else if (!req.socket.destroyed) {
        logger?.error({ err, op: r.op }, 's3 request failed');
        sendError(r, s3Errors.internal());
      }
    } finally {
      logger?.debug(
        {
          op: r.op,
          method,
          bucket: r.bucket,
          status: res.statusCode,
          ms: Date.now() - started,
          range: header(r, 'range'),
        },
        's3 request',
      );
    }
  }

  const server = http.createServer(
    // No request timeout: a throttled multi-GiB upload may legitimately take minutes.
    { requestTimeout: 0, keepAliveTimeout: 65_000 },
    (req, res) => void handle(req, res, false),
  );
  server.on(
    'checkContinue',
    (req: IncomingMessage, res: ServerResponse) => void handle(req, res, true),
  );
  return server;
}
