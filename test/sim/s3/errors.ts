/**
 * S3 errors as the simulator answers them: a code, an HTTP status, S3's own message, and
 * optional extra XML fields (S3 adds e.g. <StringToSign> to SignatureDoesNotMatch).
 */
import { xmlEscape } from './xml.ts';

export class S3Error extends Error {
  readonly code: string;
  readonly status: number;
  readonly extra: Record<string, string>;
  /** Extra response headers (e.g. Content-Range on 416). */
  readonly headers: Record<string, string>;

  constructor(
    code: string,
    status: number,
    message: string,
    extra: Record<string, string> = {},
    headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'S3Error';
    this.code = code;
    this.status = status;
    this.extra = extra;
    this.headers = headers;
  }
}

export function errorXml(err: S3Error, requestId: string, resource?: string): string {
  const extra = Object.entries(err.extra)
    .map(([k, v]) => `<${k}>${xmlEscape(v)}</${k}>`)
    .join('');
  return (
    '<?xml version="1.0" encoding="UTF-8"?>\n' +
    `<Error><Code>${xmlEscape(err.code)}</Code><Message>${xmlEscape(err.message)}</Message>` +
    extra +
    (resource === undefined ? '' : `<Resource>${xmlEscape(resource)}</Resource>`) +
    `<RequestId>${requestId}</RequestId><HostId>${Buffer.from(requestId).toString('base64')}</HostId></Error>`
  );
}

// The errors the simulator raises, with S3's status codes and messages.
export const s3Errors = {
  accessDenied: (message = 'Access Denied'): S3Error => new S3Error('AccessDenied', 403, message),
  invalidAccessKeyId: (id: string): S3Error =>
    new S3Error(
      'InvalidAccessKeyId',
      403,
      'The AWS Access Key Id you provided does not exist in our records.',
      { AWSAccessKeyId: id },
    ),
  invalidToken: (): S3Error =>
    new S3Error('InvalidToken', 400, 'The provided token is malformed or otherwise invalid.'),
  expiredToken: (): S3Error => new S3Error('ExpiredToken', 400, 'The provided token has expired.'),
  signatureDoesNotMatch: (extra: Record<string, string> = {}): S3Error =>
    new S3Error(
      'SignatureDoesNotMatch',
      403,
      'The request signature we calculated does not match the signature you provided. Check your key and signing method.',
      extra,
    ),
  authHeaderMalformed: (message: string): S3Error =>
    new S3Error(
      'AuthorizationHeaderMalformed',
      400,
      `The authorization header is malformed; ${message}`,
    ),
  authQueryError: (message: string): S3Error =>
    new S3Error('AuthorizationQueryParametersError', 400, message),
  timeTooSkewed: (): S3Error =>
    new S3Error(
      'RequestTimeTooSkewed',
      403,
      'The difference between the request time and the current time is too large.',
    ),
  invalidRequest: (message: string): S3Error => new S3Error('InvalidRequest', 400, message),
  invalidArgument: (message: string, name?: string, value?: string): S3Error =>
    new S3Error(
      'InvalidArgument',
      400,
      message,
      name === undefined ? {} : { ArgumentName: name, ArgumentValue: value ?? '' },
    ),
  badDigest: (message = 'The Content-MD5 you specified did not match what we received.'): S3Error =>
    new S3Error('BadDigest', 400, message),
  invalidDigest: (): S3Error =>
    new S3Error('InvalidDigest', 400, 'The Content-MD5 you specified is not valid.'),
  contentShaMismatch: (): S3Error =>
    new S3Error(
      'XAmzContentSHA256Mismatch',
      400,
      "The provided 'x-amz-content-sha256' header does not match what was computed.",
    ),
  incompleteBody: (): S3Error =>
    new S3Error(
      'IncompleteBody',
      400,
      'You did not provide the number of bytes specified by the Content-Length HTTP header',
    ),
  missingContentLength: (): S3Error =>
    new S3Error('MissingContentLength', 411, 'You must provide the Content-Length HTTP header.'),
  malformedXml: (): S3Error =>
    new S3Error(
      'MalformedXML',
      400,
      'The XML you provided was not well-formed or did not validate against our published schema',
    ),
  invalidRange: (size: number): S3Error =>
    new S3Error(
      'InvalidRange',
      416,
      'The requested range is not satisfiable',
      { RangeRequested: '', ActualObjectSize: String(size) },
      { 'Content-Range': `bytes */${size}` },
    ),
  preconditionFailed: (): S3Error =>
    new S3Error(
      'PreconditionFailed',
      412,
      'At least one of the pre-conditions you specified did not hold',
      { Condition: 'If-Match' },
    ),
  noSuchKey: (key: string): S3Error =>
    new S3Error('NoSuchKey', 404, 'The specified key does not exist.', { Key: key }),
  noSuchUpload: (uploadId: string): S3Error =>
    new S3Error(
      'NoSuchUpload',
      404,
      'The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.',
      { UploadId: uploadId },
    ),
  slowDown: (): S3Error => new S3Error('SlowDown', 503, 'Please reduce your request rate.'),
  internal: (): S3Error =>
    new S3Error('InternalError', 500, 'We encountered an internal error. Please try again.'),
  notImplemented: (): S3Error =>
    new S3Error(
      'NotImplemented',
      501,
      'A header you provided implies functionality that is not implemented',
    ),
  methodNotAllowed: (): S3Error =>
    new S3Error(
      'MethodNotAllowed',
      405,
      'The specified method is not allowed against this resource.',
    ),
};
