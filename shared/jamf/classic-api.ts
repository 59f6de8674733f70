/**
 * The Classic API (`/JSSResource/packages`), the fallback for package records on servers
 * or accounts where the Jamf Pro API packages endpoints are missing. Reads ask for JSON
 * (`Accept: application/json`); writes are XML (`Content-Type: text/xml`) and Jamf
 * answers XML `<package><id>N</id></package>`.
 */
import type { z } from 'zod';
import { jamfBadResponse } from './errors.ts';
import { encodePathSegment, type JamfHttp } from './http.ts';
import type { CallOptions } from './jcds-api.ts';
import {
  ClassicPackageListSchema,
  ClassicPackageSchema,
  type ClassicNewPackage,
  type ClassicPackage,
  type ClassicPackageRef,
} from './types.ts';

export const CLASSIC_PACKAGES_PATH = '/JSSResource/packages';

/** XML 1.0 forbids these characters outright, even as references. */
// eslint-disable-next-line no-control-regex
const XML_INVALID = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]/g;

/** Escapes text for an XML element or attribute; drops characters XML cannot carry. */
export function xmlEscape(value: string | number | boolean): string {
  return String(value)
    .replace(XML_INVALID, '')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;');
}

/** The `<package>` document for POST /JSSResource/packages/id/0. */
export function classicPackageXml(pkg: ClassicNewPackage): string {
  const fields: Array<[string, string | number | undefined]> = [
    ['name', pkg.name],
    ['category', pkg.category],
    ['filename', pkg.filename],
    ['info', pkg.info],
    ['notes', pkg.notes],
    ['priority', pkg.priority],
  ];
  const inner = fields
    .filter((f): f is [string, string | number] => f[1] !== undefined)
    .map(([k, v]) => `<${k}>${xmlEscape(v)}</${k}>`)
    .join('');
  return `<?xml version="1.0" encoding="UTF-8"?><package>${inner}</package>`;
}

/** The id in Jamf's answer to a Classic create: `<package><id>42</id></package>`. */
export function parseClassicId(xml: string): number | undefined {
  const m = /<id>\s*(\d+)\s*<\/id>/.exec(xml);
  return m?.[1] === undefined ? undefined : Number(m[1]);
}

/** GET /JSSResource/packages: id and name of every package. */
export async function classicListPackages(
  http: JamfHttp,
  options: CallOptions = {},
): Promise<ClassicPackageRef[]> {
  const res = await http.request<z.output<typeof ClassicPackageListSchema>>({
    method: 'GET',
    path: CLASSIC_PACKAGES_PATH,
    schema: ClassicPackageListSchema,
    signal: options.signal,
  });
  return res.body.map(p => ({ id: p.id, name: p.name }));
}

/** GET /JSSResource/packages/id/{id}. */
export async function classicGetPackage(
  http: JamfHttp,
  id: number | string,
  options: CallOptions = {},
): Promise<ClassicPackage> {
  const res = await http.request<ClassicPackage>({
    method: 'GET',
    path: `${CLASSIC_PACKAGES_PATH}/id/${encodePathSegment(String(id))}`,
    template: `${CLASSIC_PACKAGES_PATH}/id/{id}`,
    schema: ClassicPackageSchema,
    signal: options.signal,
  });
  return res.body;
}

/** POST /JSSResource/packages/id/0 with an XML body → the new id. */
export async function classicCreatePackage(
  http: JamfHttp,
  pkg: ClassicNewPackage,
  options: CallOptions = {},
): Promise<{ id: number }> {
  const path = `${CLASSIC_PACKAGES_PATH}/id/0`;
  const res = await http.request<string>({
    method: 'POST',
    path,
    xml: classicPackageXml(pkg),
    accept: 'application/xml, text/xml',
    responseType: 'text',
    signal: options.signal,
  });
  const id = parseClassicId(res.body);
  if (id === undefined) {
    throw jamfBadResponse({
      method: 'POST',
      path,
      host: http.host,
      status: res.status,
      problem: 'answered without a <package><id>',
      hint: 'not what the Classic API sends: check JAMF_URL',
    });
  }
  return { id };
}
