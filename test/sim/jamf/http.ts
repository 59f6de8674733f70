/** Small HTTP helpers for the Jamf handlers: bodies in, JSON/XML out. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { JamfApiError } from './errors.ts';

/** JSON and XML bodies are small; uploads never go through here. */
const MAX_BODY_BYTES = 16 * 1024 * 1024;

export async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) {
      throw new JamfApiError(413, 'PAYLOAD_TOO_LARGE', 'Request body too large', null);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** Parses a JSON object body; anything else is Jamf's 400 INVALID_JSON. */
export async function readJsonObject(req: IncomingMessage): Promise<Record<string, unknown>> {
  const text = await readBody(req);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new JamfApiError(400, 'INVALID_JSON', 'Unable to parse the request body as JSON', null);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new JamfApiError(400, 'INVALID_JSON', 'The request body must be a JSON object', null);
  }
  return value as Record<string, unknown>;
}

export function sendJson(res: ServerResponse, status: number, value: unknown): void {
  const body = JSON.stringify(value);
  res.writeHead(status, {
    'Content-Type': 'application/json;charset=UTF-8',
    'Content-Length': Buffer.byteLength(body),
  });
  res.end(body);
}

export function sendXml(res: ServerResponse, status: number, xml: string): void {
  const body = `<?xml version="1.0" encoding="UTF-8"?>${xml}`;
  res.writeHead(status, {
    'Content-Type': 'text/xml;charset=UTF-8',
    'Content-Length': Buffer.byteLength(body),
  });
  res.end(body);
}

export function sendEmpty(res: ServerResponse, status: number): void {
  res.writeHead(status);
  res.end();
}

/** The server's own base URL as the client reached it (for `href` fields). */
export function baseUrl(req: IncomingMessage): string {
  return `http://${req.headers.host ?? '127.0.0.1'}`;
}

/** True when the client asked for JSON (the Classic API's content negotiation). */
export function wantsJson(req: IncomingMessage): boolean {
  const accept = req.headers.accept ?? '';
  return /application\/json/i.test(accept);
}
