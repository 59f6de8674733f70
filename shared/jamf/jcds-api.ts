/**
 * The JCDS v1 endpoints (`/api/v1/jcds/*`): temporary S3 credentials, the file list,
 * download URLs, delete and refresh-inventory. All are deprecated since Jamf Pro 11.24.0
 * but still supported; a server where they were removed answers 404 (see
 * `probeCapabilities`). File names are encoded as one path segment, so spaces, `+`, `%`,
 * `#`, `?` and unicode reach Jamf intact.
 */
import type { z } from 'zod';
import { encodePathSegment, type JamfHttp } from './http.ts';
import {
  DownloadUrlSchema,
  JcdsCredentialsSchema,
  JcdsFileListSchema,
  type JcdsCredentials,
  type JcdsFile,
} from './types.ts';

export interface CallOptions {
  signal?: AbortSignal | undefined;
}

export const JCDS_FILES_PATH = '/api/v1/jcds/files';

/** POST /api/v1/jcds/files: a temporary upload record and its S3 credentials. */
export async function createJcdsFile(
  http: JamfHttp,
  options: CallOptions = {},
): Promise<JcdsCredentials> {
  const res = await http.request<JcdsCredentials>({
    method: 'POST',
    path: JCDS_FILES_PATH,
    schema: JcdsCredentialsSchema,
    signal: options.signal,
  });
  return res.body;
}

/** POST /api/v1/jcds/renew-credentials: new keys and token for the current upload. */
export async function renewJcdsCredentials(
  http: JamfHttp,
  options: CallOptions = {},
): Promise<JcdsCredentials> {
  const res = await http.request<JcdsCredentials>({
    method: 'POST',
    path: '/api/v1/jcds/renew-credentials',
    schema: JcdsCredentialsSchema,
    signal: options.signal,
  });
  return res.body;
}

/** GET /api/v1/jcds/files: every file in JCDS with its size and hashes. */
export async function listJcdsFiles(
  http: JamfHttp,
  options: CallOptions = {},
): Promise<JcdsFile[]> {
  const res = await http.request<z.output<typeof JcdsFileListSchema>>({
    method: 'GET',
    path: JCDS_FILES_PATH,
    schema: JcdsFileListSchema,
    signal: options.signal,
  });
  return res.body.map(f => ({
    fileName: f.fileName,
    length: f.length,
    md5: f.md5 ?? undefined,
    region: f.region ?? undefined,
    sha3: f.sha3 ?? undefined,
  }));
}

/** GET /api/v1/jcds/files/{fileName}: a presigned download URL (secret: do not log it). */
export async function getJcdsDownloadUrl(
  http: JamfHttp,
  fileName: string,
  options: CallOptions = {},
): Promise<string> {
  const res = await http.request<{ uri: string }>({
    method: 'GET',
    path: `${JCDS_FILES_PATH}/${encodePathSegment(fileName)}`,
    template: `${JCDS_FILES_PATH}/{fileName}`,
    schema: DownloadUrlSchema,
    signal: options.signal,
  });
  return res.body.uri;
}

/** DELETE /api/v1/jcds/files/{fileName}: removes the file (not the package record). */
export async function deleteJcdsFile(
  http: JamfHttp,
  fileName: string,
  options: CallOptions = {},
): Promise<void> {
  await http.request({
    method: 'DELETE',
    path: `${JCDS_FILES_PATH}/${encodePathSegment(fileName)}`,
    template: `${JCDS_FILES_PATH}/{fileName}`,
    responseType: 'none',
    signal: options.signal,
  });
}

/**
 * POST /api/v1/jcds/refresh-inventory[?file-name=]: Jamf re-reads JCDS (for one file, or
 * all of them, which Jamf allows once every 15 s).
 */
export function refreshJcdsInventory(
  http: JamfHttp,
  fileName?: string,
  options: CallOptions = {},
): Promise<void> {
  return refreshInventory(http, '/api/v1/jcds/refresh-inventory', fileName, options);
}

/** A refresh-inventory endpoint (JCDS or the cloud distribution point's), for one file or all. */
export async function refreshInventory(
  http: JamfHttp,
  path: string,
  fileName: string | undefined,
  options: CallOptions = {},
): Promise<void> {
  await http.request({
    method: 'POST',
    path,
    query: { 'file-name': fileName },
    responseType: 'none',
    signal: options.signal,
  });
}
