/**
 * Turns a raw HTTP answer into what the caller asked for: a typed JamfApiError for a
 * non-2xx status (unless the caller accepts that status), the text, or parsed and
 * validated JSON. A 2xx that is an HTML page, not JSON, or JSON of the wrong shape is
 * JAMF_BAD_RESPONSE: the usual cause is a JAMF_URL that points at something other than
 * Jamf Pro (a login portal, a proxy's page).
 */
import type { z } from 'zod';
import { parseRetryAfter } from './backoff.ts';
import {
  jamfBadResponse,
  jamfErrorFromResponse,
  looksLikeHtml,
  type JamfApiError,
} from './errors.ts';

export type Headers = Record<string, string | string[] | undefined>;

export interface JamfResponse<T> {
  status: number;
  headers: Headers;
  body: T;
}

export interface RawResponse {
  status: number;
  headers: Headers;
  text: string;
}

export type ResponseType = 'json' | 'text' | 'none';

export interface ResponseExpectation {
  method: string;
  path: string;
  /** @defaultValue `json` */
  responseType?: ResponseType;
  schema?: z.ZodType;
  acceptStatuses?: readonly number[];
}

function headerValue(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

export function interpretResponse<T>(
  req: ResponseExpectation,
  res: RawResponse,
  host: string,
): JamfResponse<T> {
  const { status, headers, text } = res;
  const contentType = headerValue(headers['content-type']);
  const accepted = req.acceptStatuses?.includes(status) ?? false;
  if ((status < 200 || status >= 300) && !accepted) {
    throw jamfErrorFromResponse({
      status,
      method: req.method,
      path: req.path,
      host: host,
      body: text,
      contentType,
      retryAfterMs: parseRetryAfter(headers['retry-after']),
    });
  }
  const type = req.responseType ?? 'json';
  if (type === 'none' || accepted) return { status, headers, body: text as T };
  if (type === 'text') return { status, headers, body: text as T };
  const bad = (problem: string, hint?: string, cause?: unknown): JamfApiError =>
    jamfBadResponse({
      method: req.method,
      path: req.path,
      host: host,
      status,
      problem,
      ...(hint === undefined ? {} : { hint }),
      cause,
    });
  if (looksLikeHtml(text, contentType)) throw bad('answered HTML');
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    const what =
      text.trim() === ''
        ? 'an empty body'
        : `a body that is not JSON (${contentType ?? 'no content-type'})`;
    throw bad(`answered ${status} with ${what}`, undefined, err);
  }
  if (req.schema) {
    const result = req.schema.safeParse(parsed);
    if (!result.success) {
      const issue = result.error.issues[0];
      const where = issue?.path.length ? issue.path.join('.') : '(root)';
      throw bad(
        `answered JSON of an unexpected shape (${where}: ${issue?.message ?? 'invalid'})`,
        'not what the Jamf Pro API documents: check JAMF_URL and the Jamf Pro version',
      );
    }
    return { status, headers, body: result.data as T };
  }
  return { status, headers, body: parsed as T };
}
