/**
 * Decodes `Content-Encoding: aws-chunked` request bodies, as S3 does, into the object bytes.
 *
 *   <hex size>[;chunk-signature=<64 hex>]\r\n <size bytes> \r\n   ... repeated ...
 *   0[;chunk-signature=<sig>]\r\n
 *   [<trailer name>:<value>\r\n ...]  [x-amz-trailer-signature:<sig>\r\n]
 *   \r\n
 *
 * Signed variants (STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]) chain a signature through
 * every chunk, seeded with the request's own signature; the trailer signature covers the
 * trailing headers. Data is yielded as views into the received buffers (no copying), so the
 * framing never reaches the store. Errors are thrown as the S3Error S3 would answer.
 */
import { createHash } from 'node:crypto';
import { s3Errors, type S3Error } from './errors.ts';
import { EMPTY_SHA256, hmacHex, sameSignature, sha256Hex } from './sigv4.ts';

export interface ChunkSigning {
  signingKey: Buffer;
  amzDate: string;
  scope: string;
  /** The request's signature: the first chunk's "previous signature". */
  seedSignature: string;
}

export interface AwsChunkedOptions {
  /** Verify chunk signatures (STREAMING-AWS4-HMAC-SHA256-PAYLOAD*). */
  signing?: ChunkSigning;
  /** Expect a signed trailer (the -TRAILER signed variant). */
  signedTrailer?: boolean;
}

/** Filled in as decoding proceeds: the trailing headers (lower-case names). */
export interface AwsChunkedResult {
  trailers: Map<string, string>;
  decodedLength: number;
}

const MAX_LINE = 8 * 1024;
const CRLF = Buffer.from('\r\n');

function malformed(what: string): S3Error {
  return s3Errors.invalidRequest(`Malformed aws-chunked body: ${what}`);
}

export function chunkStringToSign(s: ChunkSigning, previous: string, dataHash: string): string {
  return ['AWS4-HMAC-SHA256-PAYLOAD', s.amzDate, s.scope, previous, EMPTY_SHA256, dataHash].join(
    '\n',
  );
}

export function trailerStringToSign(
  s: ChunkSigning,
  previous: string,
  trailerText: string,
): string {
  return ['AWS4-HMAC-SHA256-TRAILER', s.amzDate, s.scope, previous, sha256Hex(trailerText)].join(
    '\n',
  );
}

type State = 'size' | 'data' | 'data-crlf' | 'trailer' | 'done';

export async function* decodeAwsChunked(
  source: AsyncIterable<Buffer>,
  options: AwsChunkedOptions,
  result: AwsChunkedResult,
): AsyncGenerator<Buffer> {
  const signing = options.signing;
  let state: State = 'size';
  let line = Buffer.alloc(0);
  let remaining = 0;
  let chunkSignature = '';
  let previous = signing?.seedSignature ?? '';
  let chunkHash = signing ? createHash('sha256') : undefined;
  let trailerText = '';
  let trailerSignature: string | undefined;

  const verifyChunk = (): void => {
    if (!signing || !chunkHash) return;
    const expected = hmacHex(
      signing.signingKey,
      chunkStringToSign(signing, previous, chunkHash.digest('hex')),
    );
    if (!sameSignature(expected, chunkSignature)) throw s3Errors.signatureDoesNotMatch();
    previous = chunkSignature;
    chunkHash = createHash('sha256');
  };

  const onSizeLine = (text: string): State => {
    const [sizeText = '', ...ext] = text.split(';');
    if (!/^[0-9a-fA-F]{1,16}$/.test(sizeText.trim())) throw malformed('bad chunk size');
    remaining = parseInt(sizeText.trim(), 16);
    chunkSignature = '';
    for (const e of ext) {
      const i = e.indexOf('=');
      if (i > 0 && e.slice(0, i).trim() === 'chunk-signature') {
        chunkSignature = e.slice(i + 1).trim();
      }
    }
    if (signing && !chunkSignature) throw malformed('missing chunk-signature');
    if (remaining > 0) return 'data';
    // The final chunk's signature covers no data; what follows is the trailer section (or
    // just the blank line that ends the body).
    verifyChunk();
    return 'trailer';
  };

  const onTrailerLine = (text: string): State => {
    if (text === '') {
      if (options.signedTrailer && signing) {
        if (trailerSignature === undefined) throw malformed('missing x-amz-trailer-signature');
        const expected = hmacHex(
          signing.signingKey,
          trailerStringToSign(signing, previous, trailerText),
        );
        if (!sameSignature(expected, trailerSignature)) throw s3Errors.signatureDoesNotMatch();
      }
      return 'done';
    }
    const i = text.indexOf(':');
    if (i <= 0) throw malformed('bad trailer line');
    const name = text.slice(0, i).trim().toLowerCase();
    const value = text.slice(i + 1).trim();
    if (name === 'x-amz-trailer-signature') trailerSignature = value;
    else {
      result.trailers.set(name, value);
      trailerText += `${name}:${value}\n`;
    }
    return 'trailer';
  };

  for await (const chunk of source) {
    let buf = chunk;
    while (buf.length > 0) {
      if (state === 'data') {
        const n = Math.min(remaining, buf.length);
        const piece = buf.subarray(0, n);
        chunkHash?.update(piece);
        remaining -= n;
        result.decodedLength += n;
        buf = buf.subarray(n);
        if (remaining === 0) state = 'data-crlf';
        yield piece;
        continue;
      }
      if (state === 'done') {
        if (buf.toString('latin1').trim() !== '') throw malformed('data after the final chunk');
        break;
      }
      // Line-oriented states: collect up to CRLF.
      const nl = buf.indexOf(0x0a);
      const take = nl < 0 ? buf : buf.subarray(0, nl + 1);
      line = line.length === 0 ? Buffer.from(take) : Buffer.concat([line, take]);
      buf = buf.subarray(take.length);
      if (line.length > MAX_LINE) throw malformed('line too long');
      if (nl < 0) continue;
      const text = line
        .subarray(0, line.length - (line.subarray(-2).equals(CRLF) ? 2 : 1))
        .toString('latin1');
      line = Buffer.alloc(0);
      if (state === 'data-crlf') {
        if (text !== '') throw malformed('chunk data longer than its size');
        verifyChunk();
        state = 'size';
      } else if (state === 'size') {
        state = onSizeLine(text);
      } else {
        state = onTrailerLine(text);
      }
    }
  }
  // Tolerate a body that ends right after the trailers without the final blank line.
  if (state === 'trailer' && line.length === 0) state = onTrailerLine('');
  if (state !== 'done') throw s3Errors.incompleteBody();
}
