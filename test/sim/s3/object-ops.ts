/** Object and bucket operations: PutObject, GetObject, HeadObject, DeleteObject, ListObjectsV2. */
import type { Counters, Faults } from '../types.ts';
import type { DiskObjectStore } from '../store.ts';
import { planBody } from './body.ts';
import { s3Errors } from './errors.ts';
import { parseRange } from './range.ts';
import {
  continueBody,
  header,
  sendEmpty,
  sendXml,
  startStream,
  streamBody,
  type S3Request,
} from './respond.ts';
import type { AuthResult } from './sigv4.ts';
import { doc, el, objectXml, urlEncodeKey } from './xml.ts';
import { unquoteEtag } from './multipart-rules.ts';

export interface OpContext {
  store: DiskObjectStore;
  faults: Faults;
  counters: Counters;
  region: string;
  /** Called once an object was stored (PutObject, CompleteMultipartUpload) and S3 answered. */
  onObjectStored?: ((bucket: string, key: string) => void) | undefined;
}

export const DEFAULT_CONTENT_TYPE = 'binary/octet-stream';

export async function putObject(ctx: OpContext, r: S3Request, auth: AuthResult): Promise<void> {
  const plan = planBody(r.req, auth, {
    ...ctx,
    ...(r.dropAfterBytes === undefined ? {} : { dropAfterBytes: r.dropAfterBytes }),
  });
  continueBody(r);
  const info = await ctx.store.put(r.bucket, r.key, plan.body, header(r, 'content-type'), {
    verify: written => plan.verify(written),
  });
  const sum = plan.checksum();
  sendEmpty(r, 200, {
    ETag: info.etag,
    ...(sum ? { [`x-amz-checksum-${sum.algorithm}`]: sum.value } : {}),
  });
  ctx.onObjectStored?.(r.bucket, r.key);
}

function etagMatches(list: string, etag: string): boolean {
  return list.split(',').some(e => e.trim() === '*' || unquoteEtag(e) === unquoteEtag(etag));
}

/** GetObject and HeadObject. */
export async function getObject(ctx: OpContext, r: S3Request): Promise<void> {
  const info = ctx.store.info(r.bucket, r.key);
  if (!info) throw s3Errors.noSuchKey(r.key);
  const ifMatch = header(r, 'if-match');
  if (ifMatch !== undefined && !etagMatches(ifMatch, info.etag)) {
    throw s3Errors.preconditionFailed();
  }
  const ifNoneMatch = header(r, 'if-none-match');
  const common: Record<string, string> = {
    ETag: info.etag,
    'Last-Modified': info.lastModified.toUTCString(),
    'Accept-Ranges': 'bytes',
    'Content-Type': info.contentType ?? DEFAULT_CONTENT_TYPE,
  };
  if (ifNoneMatch !== undefined && etagMatches(ifNoneMatch, info.etag)) {
    startStream(r, 304, common);
    r.res.end();
    return;
  }
  const range = parseRange(header(r, 'range'), info.size);
  const length = range ? range.end - range.start + 1 : info.size;
  const headers: Record<string, string> = { ...common, 'Content-Length': String(length) };
  if (range) headers['Content-Range'] = `bytes ${range.start}-${range.end}/${info.size}`;
  const status = range ? 206 : 200;
  if (r.req.method === 'HEAD') {
    startStream(r, status, headers);
    r.res.end();
    return;
  }
  const body = ctx.store.read(r.bucket, r.key, range);
  startStream(r, status, headers);
  await streamBody(r, body, ctx);
}

export async function deleteObject(ctx: OpContext, r: S3Request): Promise<void> {
  await ctx.store.delete(r.bucket, r.key);
  sendEmpty(r, 204);
}

/** ListObjectsV2: prefix, delimiter, max-keys, continuation-token, start-after, encoding-type. */
export async function listObjectsV2(ctx: OpContext, r: S3Request): Promise<void> {
  const prefix = r.query.get('prefix') ?? '';
  const delimiter = r.query.get('delimiter') ?? '';
  const maxKeysText = r.query.get('max-keys');
  const maxKeys = maxKeysText === undefined ? 1000 : Number(maxKeysText);
  if (!Number.isInteger(maxKeys) || maxKeys < 0) {
    throw s3Errors.invalidArgument(
      'Provided max-keys not an integer or within integer range',
      'max-keys',
      maxKeysText,
    );
  }
  const token = r.query.get('continuation-token');
  const after =
    token !== undefined
      ? Buffer.from(token, 'base64url').toString()
      : (r.query.get('start-after') ?? '');
  const encodeUrl = r.query.get('encoding-type') === 'url';
  const enc = (s: string): string => (encodeUrl ? urlEncodeKey(s) : s);
  const contents: string[] = [];
  const prefixes: string[] = [];
  let last = '';
  let truncated = false;
  for (const o of await ctx.store.list(r.bucket, prefix)) {
    if (after && Buffer.compare(Buffer.from(o.key), Buffer.from(after)) <= 0) continue;
    const rest = o.key.slice(prefix.length);
    const cut = delimiter ? rest.indexOf(delimiter) : -1;
    const common = cut >= 0 ? prefix + rest.slice(0, cut + delimiter.length) : undefined;
    if (
      common !== undefined &&
      (prefixes.at(-1) === common ||
        (after.startsWith(common) && after !== common) ||
        after === common)
    ) {
      continue;
    }
    if (contents.length + prefixes.length >= maxKeys) {
      truncated = true;
      break;
    }
    if (common !== undefined) {
      prefixes.push(common);
      last = common;
    } else {
      contents.push(objectXml(o, enc));
      last = o.key;
    }
  }
  sendXml(
    r,
    200,
    doc(
      'ListBucketResult',
      el('Name', r.bucket) +
        el('Prefix', enc(prefix)) +
        (delimiter ? el('Delimiter', enc(delimiter)) : '') +
        el('MaxKeys', maxKeys) +
        el('KeyCount', contents.length + prefixes.length) +
        el('IsTruncated', truncated) +
        (token !== undefined ? el('ContinuationToken', token) : '') +
        (truncated ? el('NextContinuationToken', Buffer.from(last).toString('base64url')) : '') +
        (r.query.has('start-after')
          ? el('StartAfter', enc(r.query.get('start-after') ?? ''))
          : '') +
        (encodeUrl ? el('EncodingType', 'url') : '') +
        contents.join('') +
        prefixes.map(p => `<CommonPrefixes>${el('Prefix', enc(p))}</CommonPrefixes>`).join(''),
    ),
  );
}

/** CreateBucket, HeadBucket, DeleteBucket, GetBucketLocation: buckets exist on first use. */
export async function bucketOp(ctx: OpContext, r: S3Request): Promise<void> {
  if (r.op === 'GetBucketLocation') {
    const location = ctx.region === 'us-east-1' ? '' : ctx.region;
    sendXml(r, 200, doc('LocationConstraint', location));
    return;
  }
  if (r.op === 'DeleteBucket') {
    sendEmpty(r, 204);
    return;
  }
  sendEmpty(r, 200, {
    'x-amz-bucket-region': ctx.region,
    ...(r.op === 'CreateBucket' ? { Location: `/${r.bucket}` } : {}),
  });
}
