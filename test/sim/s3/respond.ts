/** Response helpers shared by the S3 operations. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import type { Counters, Faults } from '../types.ts';
import { errorXml, type S3Error } from './errors.ts';
import { throttle } from './throttle.ts';

/** One S3 request as the operations see it. */
export interface S3Request {
  req: IncomingMessage;
  res: ServerResponse;
  requestId: string;
  op: string;
  bucket: string;
  key: string;
  query: Map<string, string>;
  /** The client sent `Expect: 100-continue`: call `continueBody` before reading the body. */
  expectContinue: boolean;
  /** The connection-drop fault: cut the connection after this many body bytes. */
  dropAfterBytes: number | undefined;
}

export function header(r: S3Request, name: string): string | undefined {
  const v = r.req.headers[name];
  return Array.isArray(v) ? v.join(',') : v;
}

/** Lets a client waiting on `Expect: 100-continue` send its body. */
export function continueBody(r: S3Request): void {
  if (r.expectContinue) {
    r.expectContinue = false;
    r.res.writeContinue();
  }
}

function baseHeaders(r: S3Request): Record<string, string> {
  return {
    'x-amz-request-id': r.requestId,
    'x-amz-id-2': Buffer.from(r.requestId).toString('base64'),
    Server: 'AmazonS3',
  };
}

export function sendXml(
  r: S3Request,
  status: number,
  xml: string,
  headers: Record<string, string> = {},
): void {
  const body = Buffer.from(xml);
  r.res.writeHead(status, {
    ...baseHeaders(r),
    'Content-Type': 'application/xml',
    'Content-Length': String(body.length),
    ...headers,
  });
  r.res.end(r.req.method === 'HEAD' ? undefined : body);
}

export function sendEmpty(
  r: S3Request,
  status: number,
  headers: Record<string, string> = {},
): void {
  r.res.writeHead(status, { ...baseHeaders(r), 'Content-Length': '0', ...headers });
  r.res.end();
}

export function sendError(r: S3Request, err: S3Error): void {
  if (r.res.headersSent) {
    r.res.destroy();
    return;
  }
  const headers: Record<string, string> = { ...err.headers };
  // The client held its body back for 100-continue: it will not send it now.
  if (r.expectContinue) headers['Connection'] = 'close';
  // Otherwise drain what is left of a body we stopped reading, so the connection stays usable
  // (Node only drains bodies nobody started to read).
  else if (!r.req.complete) r.req.resume();
  const resource = r.key ? `/${r.bucket}/${r.key}` : `/${r.bucket}`;
  if (r.req.method === 'HEAD') {
    r.res.writeHead(err.status, { ...baseHeaders(r), ...headers });
    r.res.end();
    return;
  }
  sendXml(r, err.status, errorXml(err, r.requestId, resource), headers);
}

export function startStream(r: S3Request, status: number, headers: Record<string, string>): void {
  r.res.writeHead(status, { ...baseHeaders(r), ...headers });
}

function waitWritable(res: ServerResponse): Promise<void> {
  return new Promise(resolve => {
    const done = (): void => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}

/** Streams an object body to the response: throttled, counted, and cut by the drop fault. */
export async function streamBody(
  r: S3Request,
  body: Readable,
  ctx: { faults: Faults; counters: Counters },
): Promise<void> {
  const res = r.res;
  let served = 0;
  try {
    for await (const chunk of throttle(
      body as AsyncIterable<Buffer>,
      () => ctx.faults.s3BytesPerSecond,
    )) {
      if (res.destroyed) return;
      let piece = chunk;
      const cut = r.dropAfterBytes !== undefined && served + piece.length >= r.dropAfterBytes;
      if (cut) piece = piece.subarray(0, Math.max(0, (r.dropAfterBytes ?? 0) - served));
      served += piece.length;
      ctx.counters.s3BytesServed += piece.length;
      const ok = res.write(piece);
      if (cut) {
        res.once('drain', () => res.destroy());
        if (ok) res.destroy();
        return;
      }
      if (!ok) await waitWritable(res);
    }
    res.end();
  } finally {
    body.destroy();
  }
}
