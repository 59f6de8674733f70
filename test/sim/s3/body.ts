/**
 * The request body of PutObject and UploadPart, from the socket to the store: throttled
 * (fault), aws-chunked decoded when the client framed it, counted, and checked the way S3
 * checks it: x-amz-content-sha256 of a signed payload, x-amz-decoded-content-length,
 * Content-MD5, and one flexible checksum (x-amz-checksum-* header or trailer).
 */
import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { PartChecksum, WrittenBody } from '../store.ts';
import type { Counters, Faults } from '../types.ts';
import { createChecksum, isChecksumAlgorithm, type ChecksumAlgorithm } from './checksums.ts';
import { decodeAwsChunked, type AwsChunkedResult } from './chunked.ts';
import { S3Error, s3Errors } from './errors.ts';
import type { AuthResult } from './sigv4.ts';
import { throttle } from './throttle.ts';

export interface BodyPlan {
  /**
   * The flexible checksum algorithm the request declared (an x-amz-checksum-* header or
   * trailer), known before the body is read: UploadPart checks it against the upload's.
   */
  algorithm: ChecksumAlgorithm | undefined;
  body: AsyncIterable<Buffer>;
  /** Run once the body is on disk: throws the S3Error S3 would answer. */
  verify(written: WrittenBody): void;
  /** The flexible checksum the client sent (after verify), for echoing and part records. */
  checksum(): PartChecksum | undefined;
}

export interface BodyContext {
  faults: Faults;
  counters: Counters;
  /** Destroy the connection once this many body bytes arrived (the drop fault). */
  dropAfterBytes?: number;
  /** Flip the first byte of the body as it arrives (the corruptPartNumbers fault). */
  corruptInFlight?: boolean;
  /**
   * x-amz-checksum-* headers describe something other than this body (on
   * CompleteMultipartUpload they are the object's checksum): do not check them.
   */
  ignoreChecksumHeaders?: boolean;
}

const header = (req: IncomingMessage, name: string): string | undefined => {
  const v = req.headers[name];
  return Array.isArray(v) ? v.join(',') : v;
};

/** x-amz-checksum-* headers that carry no checksum value. */
const NOT_CHECKSUMS = new Set([
  'x-amz-checksum-type',
  'x-amz-checksum-mode',
  'x-amz-checksum-algorithm',
]);

const LENGTHS: Record<ChecksumAlgorithm, number> = {
  crc32: 4,
  crc32c: 4,
  crc64nvme: 8,
  sha1: 20,
  sha256: 32,
};

function checksumRequest(req: IncomingMessage): {
  algorithm?: ChecksumAlgorithm;
  value?: string;
  fromTrailer: boolean;
} {
  const named = Object.keys(req.headers)
    .filter(h => h.startsWith('x-amz-checksum-') && !NOT_CHECKSUMS.has(h))
    .map(h => h.slice('x-amz-checksum-'.length));
  const trailer = header(req, 'x-amz-trailer')?.trim().toLowerCase();
  const fromTrailer = trailer?.startsWith('x-amz-checksum-') ?? false;
  if (named.length + (fromTrailer ? 1 : 0) > 1) {
    throw s3Errors.invalidRequest(
      'Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.',
    );
  }
  const name = named[0] ?? (fromTrailer ? trailer?.slice('x-amz-checksum-'.length) : undefined);
  if (name === undefined) {
    const sdk = header(req, 'x-amz-sdk-checksum-algorithm')?.toLowerCase();
    if (sdk && !isChecksumAlgorithm(sdk)) {
      throw s3Errors.invalidRequest('Value for x-amz-sdk-checksum-algorithm header is invalid.');
    }
    return { fromTrailer: false };
  }
  if (!isChecksumAlgorithm(name)) {
    throw s3Errors.invalidRequest(
      `The algorithm type you specified in x-amz-checksum-${name} header is invalid.`,
    );
  }
  const value = fromTrailer ? undefined : header(req, `x-amz-checksum-${name}`);
  if (value !== undefined && Buffer.from(value, 'base64').length !== LENGTHS[name]) {
    throw s3Errors.invalidRequest(`Value for x-amz-checksum-${name} header is invalid.`);
  }
  return { algorithm: name, ...(value === undefined ? {} : { value }), fromTrailer };
}

/** Validates the body headers and returns the body stream with its checks. */
export function planBody(req: IncomingMessage, auth: AuthResult, ctx: BodyContext): BodyPlan {
  const payloadHash = auth.payloadHash;
  const encoding = (header(req, 'content-encoding') ?? '').toLowerCase();
  const chunked =
    payloadHash.startsWith('STREAMING-') ||
    encoding.split(',').some(e => e.trim() === 'aws-chunked');
  const signedChunks = payloadHash.startsWith('STREAMING-AWS4-HMAC-SHA256-PAYLOAD');
  if (
    chunked &&
    ![
      'STREAMING-UNSIGNED-PAYLOAD-TRAILER',
      'STREAMING-AWS4-HMAC-SHA256-PAYLOAD',
      'STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER',
      'UNSIGNED-PAYLOAD',
    ].includes(payloadHash)
  ) {
    throw s3Errors.notImplemented();
  }
  const decodedLengthText = header(req, 'x-amz-decoded-content-length');
  const decodedLength = decodedLengthText === undefined ? undefined : Number(decodedLengthText);
  if (
    chunked &&
    (decodedLength === undefined || !Number.isSafeInteger(decodedLength) || decodedLength < 0)
  ) {
    throw s3Errors.missingContentLength();
  }
  if (
    !chunked &&
    header(req, 'content-length') === undefined &&
    header(req, 'transfer-encoding') === undefined
  ) {
    throw s3Errors.missingContentLength();
  }
  const contentMd5 = header(req, 'content-md5');
  const expectedMd5 = contentMd5 === undefined ? undefined : Buffer.from(contentMd5, 'base64');
  if (expectedMd5 !== undefined && expectedMd5.length !== 16) throw s3Errors.invalidDigest();
  const wanted = ctx.ignoreChecksumHeaders ? { fromTrailer: false } : checksumRequest(req);
  if (wanted.fromTrailer && !chunked) {
    throw s3Errors.invalidRequest('x-amz-trailer requires an aws-chunked body');
  }

  const checksum = wanted.algorithm ? createChecksum(wanted.algorithm) : undefined;
  const sha256 = /^[0-9a-f]{64}$/.test(payloadHash) && !chunked ? createHash('sha256') : undefined;
  const decoded: AwsChunkedResult = { trailers: new Map(), decodedLength: 0 };
  let finalChecksum: PartChecksum | undefined;

  // Not destroyed when decoding stops early: the error response still goes out on this
  // socket, and the unread rest of the body is drained (see sendError).
  const socketBody = req.iterator({ destroyOnReturn: false }) as AsyncIterable<Buffer>;
  const throttled = throttle(socketBody, () => ctx.faults.s3BytesPerSecond);
  const source = chunked
    ? decodeAwsChunked(
        throttled,
        {
          ...(signedChunks
            ? {
                signing: {
                  signingKey: auth.signingKey,
                  amzDate: auth.amzDate,
                  scope: auth.scope,
                  seedSignature: auth.signature,
                },
              }
            : {}),
          signedTrailer: payloadHash.endsWith('-TRAILER') && signedChunks,
        },
        decoded,
      )
    : throttled;

  async function* tapped(): AsyncGenerator<Buffer> {
    let received = 0;
    for await (const arrived of source) {
      let chunk = arrived;
      if (ctx.corruptInFlight && received === 0 && chunk.length > 0) {
        chunk = Buffer.from(chunk);
        chunk[0] = (chunk[0] ?? 0) ^ 0xff;
      }
      checksum?.update(chunk);
      sha256?.update(chunk);
      received += chunk.length;
      ctx.counters.s3BytesReceived += chunk.length;
      if (ctx.dropAfterBytes !== undefined && received >= ctx.dropAfterBytes) {
        req.socket.destroy();
        throw new S3Error('InternalError', 500, 'connection dropped (fault)');
      }
      yield chunk;
    }
  }

  return {
    algorithm: wanted.algorithm,
    body: tapped(),
    verify(written: WrittenBody): void {
      if (chunked && written.size !== decodedLength) throw s3Errors.incompleteBody();
      if (sha256 && sha256.digest('hex') !== payloadHash) throw s3Errors.contentShaMismatch();
      if (expectedMd5 && !expectedMd5.equals(written.md5)) throw s3Errors.badDigest();
      if (wanted.algorithm && checksum) {
        const expected = wanted.fromTrailer
          ? decoded.trailers.get(`x-amz-checksum-${wanted.algorithm}`)
          : wanted.value;
        if (expected === undefined) {
          throw s3Errors.invalidRequest(
            `The x-amz-checksum-${wanted.algorithm} trailer was declared but not sent.`,
          );
        }
        const actual = checksum.digest().toString('base64');
        if (actual !== expected) {
          throw s3Errors.badDigest(
            `The ${wanted.algorithm.toUpperCase()} you specified did not match the calculated checksum.`,
          );
        }
        finalChecksum = { algorithm: wanted.algorithm, value: actual };
      }
    },
    checksum: () => finalChecksum,
  };
}
