/**
 * The JCDS file index over the object store. A JCDS file name is the last segment of an
 * object's key: JCDS v1 clients PUT to the credentials' `path` + fileName
 * (`tmp/<uuid>/<fileName>`, a fresh uuid per `POST /api/v1/jcds/files`), package uploads are
 * stored at UPLOAD_PREFIX + fileName. When several objects share a file name, the newest one
 * (lastModified, then the later key) is the file: it is what `GET /api/v1/jcds/files` lists,
 * what downloads serve and what a package record with that fileName is processed from.
 */
import { randomUUID } from 'node:crypto';
import type { ObjectStore, StoredObjectInfo } from '../types.ts';

/** Where package uploads (POST /api/v1/packages/{id}/upload) are stored: prefix + fileName. */
export const UPLOAD_PREFIX = 'jcds-sim/';
/** Every JCDS credentials' `path` starts with this (`tmp/<uuid>/`). */
export const CREDENTIALS_PATH_PREFIX = 'tmp/';

/** A fresh JCDS credentials `path`: `tmp/<uuid>/`. */
export function newCredentialsPath(): string {
  return `${CREDENTIALS_PATH_PREFIX}${randomUUID()}/`;
}

export interface JcdsBucket {
  store: ObjectStore;
  bucket: string;
}

/** The JCDS file name of an object key (its last segment); undefined for a "folder" key. */
export function jcdsFileName(key: string): string | undefined {
  const name = key.slice(key.lastIndexOf('/') + 1);
  return name === '' ? undefined : name;
}

/** True when object `a` is newer than object `b`. */
export function isNewer(a: StoredObjectInfo, b: StoredObjectInfo): boolean {
  const d = a.lastModified.getTime() - b.lastModified.getTime();
  if (d !== 0) return d > 0;
  return Buffer.compare(Buffer.from(a.key), Buffer.from(b.key)) > 0;
}

/** Every stored object of a file name. */
export async function objectsOf(j: JcdsBucket, fileName: string): Promise<StoredObjectInfo[]> {
  return (await j.store.list(j.bucket, '')).filter(o => jcdsFileName(o.key) === fileName);
}

/** The object that is the file `fileName` now (the newest of that name), if any. */
export async function newestObject(
  j: JcdsBucket,
  fileName: string,
): Promise<StoredObjectInfo | undefined> {
  let best: StoredObjectInfo | undefined;
  for (const o of await objectsOf(j, fileName)) if (!best || isNewer(o, best)) best = o;
  return best;
}

/** The newest object of every file name, in file-name order. */
export async function newestByFileName(j: JcdsBucket): Promise<Map<string, StoredObjectInfo>> {
  const out = new Map<string, StoredObjectInfo>();
  for (const o of await j.store.list(j.bucket, '')) {
    const name = jcdsFileName(o.key);
    if (name === undefined) continue;
    const best = out.get(name);
    if (!best || isNewer(o, best)) out.set(name, o);
  }
  return new Map([...out].sort(([a], [b]) => Buffer.compare(Buffer.from(a), Buffer.from(b))));
}

/** Deletes every object of a file name; false when there was none. */
export async function deleteFile(j: JcdsBucket, fileName: string): Promise<boolean> {
  const objects = await objectsOf(j, fileName);
  for (const o of objects) await j.store.delete(j.bucket, o.key);
  return objects.length > 0;
}
