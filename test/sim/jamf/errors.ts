/**
 * Jamf's two error formats. The Jamf Pro API answers `ApiError`
 * `{httpStatus, errors: [{code, description, id, field}]}` (jamf-api.md 2.5); the Classic API
 * answers a Tomcat-style HTML page whose `<p>Error: …</p>` line clients regex out.
 * Handlers throw these; the router renders them.
 */
import type { ServerResponse } from 'node:http';

export interface ApiErrorItem {
  code: string;
  description: string;
  id: string | null;
  field: string | null;
}

/** A Jamf Pro API error: rendered as the ApiError JSON body. */
export class JamfApiError extends Error {
  readonly status: number;
  readonly errors: ApiErrorItem[];
  readonly headers: Record<string, string>;

  constructor(
    status: number,
    code: string,
    description: string,
    field: string | null = null,
    headers: Record<string, string> = {},
  ) {
    super(`${status} ${code}: ${description}`);
    this.name = new.target.name;
    this.status = status;
    this.errors = [{ code, description, id: '0', field }];
    this.headers = headers;
  }

  /** Several errors in one body (e.g. every missing required field). */
  static many(status: number, errors: ApiErrorItem[]): JamfApiError {
    const first = errors[0] ?? {
      code: 'INVALID_FIELD',
      description: 'Invalid',
      id: '0',
      field: null,
    };
    const e = new JamfApiError(status, first.code, first.description, first.field);
    e.errors.splice(0, e.errors.length, ...errors);
    return e;
  }
}

/** A Classic API error: rendered as an HTML page. */
export class ClassicError extends Error {
  readonly status: number;

  constructor(status: number, message: string) {
    super(message);
    this.name = new.target.name;
    this.status = status;
  }
}

export function sendApiError(res: ServerResponse, err: JamfApiError): void {
  const body = JSON.stringify({ httpStatus: err.status, errors: err.errors });
  res.writeHead(err.status, {
    ...err.headers,
    'Content-Type': 'application/json;charset=UTF-8',
    'Content-Length': Buffer.byteLength(body),
  });
  res.end(body);
}

const REASONS: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  409: 'Conflict',
  415: 'Unsupported Media Type',
  500: 'Internal Server Error',
};

/** The Tomcat status page the Classic API answers, with the `<p>Error: …</p>` line. */
export function classicErrorPage(status: number, message: string): string {
  const reason = REASONS[status] ?? 'Error';
  return (
    '<html>\n<head>\n   <title>Status page</title>\n</head>\n' +
    '<body style="font-family: sans-serif;">\n' +
    `<p style="font-size: 1.2em;font-weight: bold;margin: 1em 0px;">${escapeHtml(reason)}</p>\n` +
    `<p>Error: ${escapeHtml(message)}</p>\n` +
    '<p>You can get technical details <a href="http://www.w3.org/Protocols/rfc2616/rfc2616-sec10.html">here</a>.<br>\n' +
    'Please continue your visit at our <a href="/">home page</a>.\n</p>\n</body>\n</html>\n'
  );
}

export function sendClassicError(res: ServerResponse, err: ClassicError): void {
  const body = classicErrorPage(err.status, err.message);
  res.writeHead(err.status, {
    'Content-Type': 'text/html;charset=UTF-8',
    'Content-Length': Buffer.byteLength(body),
  });
  res.end(body);
}

export function escapeHtml(text: string): string {
  return text
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;');
}

/** 401 INVALID_TOKEN, exactly as Jamf answers an expired or missing token (jamf/mut #75). */
export function invalidToken(): JamfApiError {
  return new JamfApiError(401, 'INVALID_TOKEN', 'Unauthorized', null);
}

export function notFound(description = 'Not Found', field: string | null = null): JamfApiError {
  return new JamfApiError(404, 'NOT_FOUND', description, field);
}

export function invalidField(field: string, description: string): JamfApiError {
  return new JamfApiError(400, 'INVALID_FIELD', description, field);
}
