/**
 * The on-disk records of DiskObjectStore (test/sim/store.ts): their types, where they live,
 * atomic writes (temp file + rename), and the synchronous load + crash recovery run when a
 * store opens. See store.ts for the layout.
 */
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from '../../../shared/logger.ts';
import type { ObjectHashes, StoredObjectInfo } from '../types.ts';

/** S3's minimum size of every part but the last. */
export const MIN_PART_SIZE = 5 * 1024 * 1024;
export const MAX_PART_NUMBER = 10_000;

/** A flexible checksum: algorithm in lower case ("crc32", "sha256"), value base64. */
export interface PartChecksum {
  algorithm: string;
  value: string;
}

/**
 * The checksum a multipart upload was created with (CreateMultipartUpload's
 * x-amz-checksum-algorithm and x-amz-checksum-type): algorithm in lower case.
 */
export interface UploadChecksum {
  algorithm: string;
  type: 'COMPOSITE' | 'FULL_OBJECT';
}

/** What a body write produced, handed to `verify` before the write is committed. */
export interface WrittenBody {
  size: number;
  md5: Buffer;
}

export interface WriteOptions {
  /** Runs once the body is on disk, before it becomes visible; throwing discards it. */
  verify?: (written: WrittenBody) => void | Promise<void>;
  /** A flexible checksum the client sent for this part (echoed by UploadPart/ListParts). */
  checksum?: PartChecksum;
}

export interface PartInfo {
  partNumber: number;
  size: number;
  /** Quoted md5 hex, as S3 returns it. */
  etag: string;
  lastModified: Date;
  checksum?: PartChecksum;
}

export interface UploadInfo {
  bucket: string;
  key: string;
  uploadId: string;
  initiated: Date;
  contentType: string | undefined;
  checksum?: UploadChecksum;
}

export interface Manifest {
  bucket: string;
  key: string;
  /** Unique per stored version; also the blob folder name. */
  version: string;
  size: number;
  /** Quoted, as S3 returns it. */
  etag: string;
  lastModified: string;
  contentType: string | undefined;
  /** Relative to the data dir. */
  blobDir: string;
  segments: Array<{ file: string; size: number }>;
  /** Set by CompleteMultipartUpload: where the blobs come from if a crash cut the rename. */
  fromUpload?: string;
  hashes?: ObjectHashes;
}

export interface UploadRecord {
  bucket: string;
  key: string;
  uploadId: string;
  initiated: string;
  contentType: string | undefined;
  /** Absent on uploads created without x-amz-checksum-algorithm. */
  checksum?: UploadChecksum;
}

export interface PartRecord {
  partNumber: number;
  size: number;
  /** md5 hex, unquoted. */
  md5: string;
  /** File name under the upload's data folder. */
  file: string;
  lastModified: string;
  checksum?: PartChecksum;
}

export function manifestPath(bucket: string, key: string): string {
  const h = createHash('sha256').update(bucket).update('\0').update(key).digest('hex');
  return path.join('objects', `${h}.json`);
}

export function uploadDir(dataDir: string, uploadId: string): string {
  return path.join(dataDir, 'uploads', uploadId);
}

async function writeJsonAtomic(file: string, value: unknown): Promise<void> {
  const tmp = `${file}.tmp-${randomBytes(6).toString('hex')}`;
  await writeFile(tmp, JSON.stringify(value));
  await rename(tmp, file);
}

export async function writeManifest(dataDir: string, m: Manifest): Promise<void> {
  await writeJsonAtomic(path.join(dataDir, manifestPath(m.bucket, m.key)), m);
}

export async function writeUpload(dataDir: string, record: UploadRecord): Promise<void> {
  const dir = uploadDir(dataDir, record.uploadId);
  await mkdir(path.join(dir, 'data'), { recursive: true });
  await mkdir(path.join(dir, 'parts'), { recursive: true });
  await writeJsonAtomic(path.join(dir, 'upload.json'), record);
}

export async function writePart(
  dataDir: string,
  uploadId: string,
  part: PartRecord,
): Promise<void> {
  await writeJsonAtomic(
    path.join(uploadDir(dataDir, uploadId), 'parts', `${part.partNumber}.json`),
    part,
  );
}

export function toInfo(m: Manifest): StoredObjectInfo {
  return {
    bucket: m.bucket,
    key: m.key,
    size: m.size,
    etag: m.etag,
    lastModified: new Date(m.lastModified),
    contentType: m.contentType,
  };
}

export function toUploadInfo(r: UploadRecord): UploadInfo {
  return {
    bucket: r.bucket,
    key: r.key,
    uploadId: r.uploadId,
    initiated: new Date(r.initiated),
    contentType: r.contentType,
    ...(r.checksum ? { checksum: r.checksum } : {}),
  };
}

export function toPartInfo(p: PartRecord): PartInfo {
  return {
    partNumber: p.partNumber,
    size: p.size,
    etag: `"${p.md5}"`,
    lastModified: new Date(p.lastModified),
    ...(p.checksum ? { checksum: p.checksum } : {}),
  };
}

function readJson<T>(file: string): T | undefined {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as T;
  } catch {
    return undefined;
  }
}

const isTemp = (name: string): boolean => name.includes('.tmp-');

export interface Loaded {
  manifests: Manifest[];
  uploads: Array<{ record: UploadRecord; parts: Map<number, PartRecord> }>;
}

/** Loads every record, finishing or removing what a crash left half done. */
export function loadSync(dataDir: string, logger: Logger | undefined): Loaded {
  for (const d of ['objects', 'blobs', 'uploads']) {
    fs.mkdirSync(path.join(dataDir, d), { recursive: true });
  }
  const manifests: Manifest[] = [];
  const objectsDir = path.join(dataDir, 'objects');
  for (const name of fs.readdirSync(objectsDir)) {
    const file = path.join(objectsDir, name);
    const m = isTemp(name) ? undefined : readJson<Manifest>(file);
    if (!m) {
      fs.rmSync(file, { force: true });
      continue;
    }
    const blobDir = path.join(dataDir, m.blobDir);
    if (!fs.existsSync(blobDir) && m.fromUpload) {
      const data = path.join(uploadDir(dataDir, m.fromUpload), 'data');
      if (fs.existsSync(data)) fs.renameSync(data, blobDir);
    }
    if (!fs.existsSync(blobDir)) {
      logger?.warn({ bucket: m.bucket, key: m.key }, 'object blobs missing; dropping it');
      fs.rmSync(file, { force: true });
      continue;
    }
    manifests.push(m);
  }

  const uploads: Loaded['uploads'] = [];
  const uploadsDir = path.join(dataDir, 'uploads');
  for (const id of fs.readdirSync(uploadsDir)) {
    const dir = path.join(uploadsDir, id);
    const record = readJson<UploadRecord>(path.join(dir, 'upload.json'));
    if (!record || !fs.existsSync(path.join(dir, 'data'))) {
      fs.rmSync(dir, { recursive: true, force: true });
      continue;
    }
    const parts = new Map<number, PartRecord>();
    const partsDir = path.join(dir, 'parts');
    fs.mkdirSync(partsDir, { recursive: true });
    for (const name of fs.readdirSync(partsDir)) {
      const p = isTemp(name) ? undefined : readJson<PartRecord>(path.join(partsDir, name));
      if (p && fs.existsSync(path.join(dir, 'data', p.file))) parts.set(p.partNumber, p);
      else fs.rmSync(path.join(partsDir, name), { force: true });
    }
    const referenced = new Set([...parts.values()].map(p => p.file));
    for (const name of fs.readdirSync(path.join(dir, 'data'))) {
      if (!referenced.has(name)) fs.rmSync(path.join(dir, 'data', name), { force: true });
    }
    uploads.push({ record, parts });
  }

  const live = new Set(manifests.map(m => path.basename(m.blobDir)));
  const blobsDir = path.join(dataDir, 'blobs');
  for (const name of fs.readdirSync(blobsDir)) {
    if (!live.has(name)) fs.rmSync(path.join(blobsDir, name), { recursive: true, force: true });
  }
  return { manifests, uploads };
}
