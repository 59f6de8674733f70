/**
 * A streamed multipart/form-data body with one file field, for
 * `POST /api/v1/packages/{id}/upload` (field `file`).
 *
 * The body is never buffered whole: it is the preamble (boundary and part headers), the
 * file streamed from disk, then the epilogue (closing boundary), and its exact length is
 * computed up front so the request carries a Content-Length (Jamf Pro, like most servlet
 * containers, wants one for multi-GiB uploads; chunked encoding is not assumed to work).
 *
 * The file is read from an open handle for exactly `size` bytes; a file that is shorter
 * than announced, or whose size or mtime changes while it is sent, fails with FILE_CHANGED
 * instead of publishing a mixture.
 */
import { randomBytes } from 'node:crypto';
import { open, type FileHandle } from 'node:fs/promises';
import { AppError } from '../errors.ts';

const CRLF = '\r\n';
const READ_CHUNK = 1024 * 1024;

export interface MultipartFileSpec {
  /** Form field name; Jamf wants `file`. */
  fieldName: string;
  /** The file name Jamf stores (the part's `filename`). */
  fileName: string;
  /** Bytes of the file. */
  size: number;
  /** @defaultValue `application/octet-stream` */
  contentType?: string;
}

/** A boundary that cannot occur by chance in the file (RFC 2046: up to 70 characters). */
export function makeBoundary(): string {
  return `----jcds-fleet-${randomBytes(16).toString('hex')}`;
}

/**
 * A form-data `filename` value as browsers write it (WHATWG HTML "multipart/form-data
 * encoding"): UTF-8, with `"`, CR and LF percent-escaped so the header cannot be broken.
 */
export function encodeFormFileName(name: string): string {
  return name.replace(/"/g, '%22').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
}

/** The bytes before and after the file content. */
export function multipartFrame(
  spec: MultipartFileSpec,
  boundary: string,
): { preamble: Buffer; epilogue: Buffer } {
  const preamble = Buffer.from(
    `--${boundary}${CRLF}` +
      `Content-Disposition: form-data; name="${encodeFormFileName(spec.fieldName)}"; filename="${encodeFormFileName(spec.fileName)}"${CRLF}` +
      `Content-Type: ${spec.contentType ?? 'application/octet-stream'}${CRLF}${CRLF}`,
    'utf8',
  );
  const epilogue = Buffer.from(`${CRLF}--${boundary}--${CRLF}`, 'utf8');
  return { preamble, epilogue };
}

/** Total body length: preamble + file + epilogue. */
export function multipartLength(spec: MultipartFileSpec, boundary: string): number {
  const { preamble, epilogue } = multipartFrame(spec, boundary);
  return preamble.length + spec.size + epilogue.length;
}

export interface MultipartBody {
  contentType: string;
  length: number;
  /** The body; each iteration opens the file again (so a retry starts from byte 0). */
  stream: () => AsyncIterable<Buffer>;
}

export interface FileBodyOptions extends MultipartFileSpec {
  filePath: string;
  /**
   * Opens the file for each pass over the body (default: `open(filePath)`); the worker's
   * checks that the file is still the one enqueued (shared/file-identity.ts).
   */
  openFile?: (() => Promise<FileHandle>) | undefined;
  /** The file's mtime when `size` was taken; a change while sending fails the upload. */
  mtimeMs?: number;
  boundary?: string;
  /** Called with the total file bytes handed to the connection so far. */
  onProgress?: (fileBytesSent: number) => void;
}

/** Builds the streamed multipart body of one file. */
export function multipartFileBody(options: FileBodyOptions): MultipartBody {
  const boundary = options.boundary ?? makeBoundary();
  const { preamble, epilogue } = multipartFrame(options, boundary);
  return {
    contentType: `multipart/form-data; boundary=${boundary}`,
    length: preamble.length + options.size + epilogue.length,
    stream: () => streamBody(options, preamble, epilogue),
  };
}

async function* streamBody(
  options: FileBodyOptions,
  preamble: Buffer,
  epilogue: Buffer,
): AsyncGenerator<Buffer> {
  const { filePath, size } = options;
  let handle: FileHandle;
  try {
    handle = options.openFile ? await options.openFile() : await open(filePath, 'r');
  } catch (err) {
    if (err instanceof AppError) throw err;
    throw fileError(err, filePath);
  }
  try {
    yield preamble;
    let sent = 0;
    options.onProgress?.(0);
    while (sent < size) {
      const want = Math.min(READ_CHUNK, size - sent);
      const buf = Buffer.allocUnsafe(want);
      const { bytesRead } = await handle.read(buf, 0, want, sent);
      if (bytesRead === 0) {
        throw new AppError(
          'FILE_CHANGED',
          `${filePath} is shorter than the ${size} bytes it had when the upload started: it changed on disk`,
          { details: { path: filePath, expectedSize: size, readSize: sent } },
        );
      }
      sent += bytesRead;
      yield bytesRead === want ? buf : buf.subarray(0, bytesRead);
      options.onProgress?.(sent);
    }
    const after = await handle.stat();
    if (
      after.size !== size ||
      (options.mtimeMs !== undefined && Math.abs(after.mtimeMs - options.mtimeMs) > 1)
    ) {
      throw new AppError(
        'FILE_CHANGED',
        `${filePath} changed on disk while it was being uploaded (size ${size} -> ${after.size})`,
        { details: { path: filePath, expectedSize: size, size: after.size } },
      );
    }
    yield epilogue;
  } finally {
    await handle.close();
  }
}

function fileError(err: unknown, filePath: string): AppError {
  const code = (err as { code?: unknown }).code;
  if (code === 'ENOENT') {
    return new AppError('FILE_NOT_FOUND', `${filePath} does not exist`, { cause: err });
  }
  return new AppError('FILE_UNREADABLE', `${filePath} cannot be read (${String(code)})`, {
    cause: err,
  });
}
