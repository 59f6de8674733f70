/**
 * DiskObjectStore: the simulator's S3 storage, on disk under `dataDir`, surviving restarts.
 *
 * Layout (all writes are "write a temp file, rename into place"; no fsync: the simulator must
 * survive its own process dying, not the machine):
 *   objects/<sha256(bucket NUL key)>.json   one manifest per object: size, ETag, content type,
 *                                           cached hashes, and the list of segment files
 *   blobs/<version>/<segment>               the bytes of one stored version
 *   uploads/<uploadId>/upload.json          an open multipart upload
 *   uploads/<uploadId>/parts/<n>.json       the current part n (size, md5, checksum, file)
 *   uploads/<uploadId>/data/<n>-<random>    part bytes
 *
 * An object is a manifest of segments (like Swift SLO): PutObject writes one segment;
 * CompleteMultipartUpload renames the upload's data folder to blobs/<version> in one rename
 * and writes a manifest listing the parts, so Complete costs milliseconds whatever the size
 * and never re-reads or copies the parts. Reads stream across segments. Part md5s are computed
 * while the part streams in; whole-object md5/sha256/sha3-512 are computed lazily in worker
 * threads and cached in the manifest.
 *
 * Manifests and upload records are also indexed in memory (loaded in the constructor), so
 * `read` and `info` answer synchronously. A replaced or deleted version's blobs are removed
 * once no reader holds them. Crash recovery in the constructor finishes an interrupted
 * Complete (manifest written, rename not done) and removes files nothing references.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import type { Logger } from '../../shared/logger.ts';
import { flipBytes, readSegments, writeStreamToFile } from './s3/disk-io.ts';
import { objectHashes } from './s3/hash-worker.ts';
import { KeyedMutex } from './s3/keyed-mutex.ts';
import {
  checkPartNumber,
  multipartEtag,
  noSuchKey,
  noSuchUpload,
  validateCompletion,
  type CompletePart,
} from './s3/multipart-rules.ts';
import * as layout from './s3/store-layout.ts';
import type {
  Manifest,
  PartInfo,
  PartRecord,
  UploadInfo,
  UploadRecord,
  WriteOptions,
  WrittenBody,
} from './s3/store-layout.ts';
import type { ObjectHashes, ObjectStore, StoredObjectInfo } from './types.ts';

export { MAX_PART_NUMBER, MIN_PART_SIZE } from './s3/store-layout.ts';
export { StoreError, type CompletePart, type StoreErrorCode } from './s3/multipart-rules.ts';
export type {
  PartChecksum,
  UploadChecksum,
  PartInfo,
  UploadInfo,
  WriteOptions,
  WrittenBody,
} from './s3/store-layout.ts';

interface Version {
  manifest: Manifest;
  readers: number;
  dead: boolean;
  hashing?: Promise<ObjectHashes>;
}

interface Upload {
  record: UploadRecord;
  parts: Map<number, PartRecord>;
  completing?: Promise<unknown>;
}

export interface DiskObjectStoreOptions {
  logger?: Logger;
}

export class DiskObjectStore implements ObjectStore {
  readonly dataDir: string;
  private readonly logger: Logger | undefined;
  private readonly objects = new Map<string, Map<string, Version>>();
  private readonly uploads = new Map<string, Upload>();
  private readonly locks = new KeyedMutex();

  /** Opens (creating if needed) the store under `dataDir`, recovering from a crash. */
  constructor(dataDir: string, options: DiskObjectStoreOptions = {}) {
    this.dataDir = path.resolve(dataDir);
    this.logger = options.logger;
    const loaded = layout.loadSync(this.dataDir, this.logger);
    for (const manifest of loaded.manifests) {
      this.bucket(manifest.bucket).set(manifest.key, { manifest, readers: 0, dead: false });
    }
    for (const u of loaded.uploads) {
      this.uploads.set(u.record.uploadId, { record: u.record, parts: u.parts });
    }
  }

  // ---- objects -------------------------------------------------------------------------

  /** Synchronous head (the index is in memory). */
  info(bucket: string, key: string): StoredObjectInfo | undefined {
    const v = this.objects.get(bucket)?.get(key);
    return v ? layout.toInfo(v.manifest) : undefined;
  }

  async head(bucket: string, key: string): Promise<StoredObjectInfo | undefined> {
    return this.info(bucket, key);
  }

  async list(bucket: string, prefix: string): Promise<StoredObjectInfo[]> {
    const out: StoredObjectInfo[] = [];
    for (const [key, v] of this.objects.get(bucket) ?? []) {
      if (key.startsWith(prefix)) out.push(layout.toInfo(v.manifest));
    }
    // S3 lists in UTF-8 binary order.
    return out.sort((a, b) => Buffer.compare(Buffer.from(a.key), Buffer.from(b.key)));
  }

  read(bucket: string, key: string, range?: { start: number; end: number }): Readable {
    const v = this.objects.get(bucket)?.get(key);
    if (!v) {
      const s = readSegments([], 0, -1, () => undefined);
      process.nextTick(() => s.destroy(noSuchKey()));
      return s;
    }
    const size = v.manifest.size;
    const start = range?.start ?? 0;
    const end = Math.min(range?.end ?? size - 1, size - 1);
    v.readers++;
    return readSegments(this.segments(v), start, end, () => this.release(v));
  }

  async put(
    bucket: string,
    key: string,
    body: NodeJS.ReadableStream | AsyncIterable<Buffer>,
    contentType?: string,
    options: WriteOptions = {},
  ): Promise<StoredObjectInfo> {
    const version = randomUUID();
    const blobDir = path.join('blobs', version);
    await mkdir(this.abs(blobDir), { recursive: true });
    let written: WrittenBody;
    try {
      written = await this.writeBody(body, this.abs(blobDir, '0'));
      await options.verify?.(written);
    } catch (err) {
      await rm(this.abs(blobDir), { recursive: true, force: true });
      throw err;
    }
    const manifest: Manifest = {
      bucket,
      key,
      version,
      size: written.size,
      etag: `"${written.md5.toString('hex')}"`,
      lastModified: new Date().toISOString(),
      contentType,
      blobDir,
      segments: [{ file: '0', size: written.size }],
    };
    await this.locks.run(`o:${bucket}\0${key}`, () => this.commit(manifest));
    this.startInventory(bucket, key);
    return layout.toInfo(manifest);
  }

  /**
   * Jamf starts processing a file (its hashes) as soon as it lands in the bucket, not when
   * someone first asks: begin hashing in the background so verification sees it sooner.
   */
  private startInventory(bucket: string, key: string): void {
    this.hashes(bucket, key).catch(err =>
      this.logger?.warn({ err, key }, 'background hashing failed'),
    );
  }

  async delete(bucket: string, key: string): Promise<boolean> {
    return this.locks.run(`o:${bucket}\0${key}`, async () => {
      const v = this.objects.get(bucket)?.get(key);
      if (!v) return false;
      await rm(this.abs(layout.manifestPath(bucket, key)), { force: true });
      this.objects.get(bucket)?.delete(key);
      this.retire(v);
      return true;
    });
  }

  async hashes(bucket: string, key: string): Promise<ObjectHashes | undefined> {
    const v = this.objects.get(bucket)?.get(key);
    if (!v) return undefined;
    if (v.manifest.hashes) return v.manifest.hashes;
    v.hashing ??= this.computeHashes(v).finally(() => {
      v.hashing = undefined;
    });
    return v.hashing;
  }

  async corrupt(bucket: string, key: string): Promise<void> {
    const v = this.objects.get(bucket)?.get(key);
    if (!v) throw noSuchKey();
    // Hash first, so the cached hashes are those of the good bytes.
    await this.hashes(bucket, key);
    const seg = this.segments(v).find(s => s.size > 0);
    if (!seg) return;
    await flipBytes(seg.path, seg.size);
  }

  // ---- multipart -----------------------------------------------------------------------

  async createMultipartUpload(
    bucket: string,
    key: string,
    contentType?: string,
    checksum?: layout.UploadChecksum,
  ): Promise<UploadInfo> {
    const uploadId = randomBytes(24).toString('base64url');
    const record: UploadRecord = {
      bucket,
      key,
      uploadId,
      initiated: new Date().toISOString(),
      contentType,
      ...(checksum ? { checksum } : {}),
    };
    await layout.writeUpload(this.dataDir, record);
    this.uploads.set(uploadId, { record, parts: new Map() });
    return layout.toUploadInfo(record);
  }

  /** The open upload, if it exists for this bucket and key. */
  getUpload(bucket: string, key: string, uploadId: string): UploadInfo | undefined {
    const u = this.openUpload(bucket, key, uploadId);
    return u ? layout.toUploadInfo(u.record) : undefined;
  }

  async uploadPart(
    bucket: string,
    key: string,
    uploadId: string,
    partNumber: number,
    body: NodeJS.ReadableStream | AsyncIterable<Buffer>,
    options: WriteOptions = {},
  ): Promise<PartInfo> {
    checkPartNumber(partNumber);
    if (!this.openUpload(bucket, key, uploadId)) throw noSuchUpload();
    const file = `${partNumber}-${randomBytes(6).toString('hex')}`;
    const filePath = path.join(layout.uploadDir(this.dataDir, uploadId), 'data', file);
    let written: WrittenBody;
    try {
      written = await this.writeBody(body, filePath);
      await options.verify?.(written);
    } catch (err) {
      await rm(filePath, { force: true });
      throw err;
    }
    const part: PartRecord = {
      partNumber,
      size: written.size,
      md5: written.md5.toString('hex'),
      file,
      lastModified: new Date().toISOString(),
      ...(options.checksum ? { checksum: options.checksum } : {}),
    };
    await this.locks.run(`u:${uploadId}`, async () => {
      const u = this.openUpload(bucket, key, uploadId);
      // A Complete that started meanwhile has already chosen its part files.
      if (!u || u.completing) {
        await rm(filePath, { force: true });
        throw noSuchUpload();
      }
      await layout.writePart(this.dataDir, uploadId, part);
      const previous = u.parts.get(partNumber);
      u.parts.set(partNumber, part);
      if (previous && previous.file !== file) {
        await rm(path.join(layout.uploadDir(this.dataDir, uploadId), 'data', previous.file), {
          force: true,
        });
      }
    });
    return layout.toPartInfo(part);
  }

  /** The upload's parts in part-number order, or undefined when there is no such upload. */
  listParts(bucket: string, key: string, uploadId: string): PartInfo[] | undefined {
    const u = this.openUpload(bucket, key, uploadId);
    if (!u) return undefined;
    return [...u.parts.values()].sort((a, b) => a.partNumber - b.partNumber).map(layout.toPartInfo);
  }

  async completeMultipartUpload(
    bucket: string,
    key: string,
    uploadId: string,
    parts: CompletePart[],
  ): Promise<StoredObjectInfo> {
    const pending = this.uploads.get(uploadId)?.completing;
    if (pending) {
      await pending.catch(() => undefined);
    }
    const u = this.openUpload(bucket, key, uploadId);
    if (!u) throw noSuchUpload();
    const records = validateCompletion(parts, u.parts, u.record.checksum);
    const version = randomUUID();
    const manifest: Manifest = {
      bucket,
      key,
      version,
      size: records.reduce((n, r) => n + r.size, 0),
      etag: multipartEtag(records.map(r => r.md5)),
      lastModified: new Date().toISOString(),
      contentType: u.record.contentType,
      blobDir: path.join('blobs', version),
      segments: records.map(r => ({ file: r.file, size: r.size })),
      fromUpload: uploadId,
    };
    const done = this.locks.run(`u:${uploadId}`, () =>
      this.locks.run(`o:${bucket}\0${key}`, async () => {
        // Manifest first, then the rename: the constructor finishes a rename a crash interrupted.
        await this.commit(manifest, async () => {
          await rename(
            path.join(layout.uploadDir(this.dataDir, uploadId), 'data'),
            this.abs(manifest.blobDir),
          );
        });
        this.uploads.delete(uploadId);
        await rm(layout.uploadDir(this.dataDir, uploadId), { recursive: true, force: true });
        const listed = new Set(records.map(r => r.file));
        for (const rec of u.parts.values()) {
          if (!listed.has(rec.file)) {
            await rm(this.abs(manifest.blobDir, rec.file), { force: true });
          }
        }
      }),
    );
    u.completing = done;
    await done;
    this.startInventory(bucket, key);
    return layout.toInfo(manifest);
  }

  async abortMultipartUpload(bucket: string, key: string, uploadId: string): Promise<boolean> {
    const u = this.openUpload(bucket, key, uploadId);
    if (!u || u.completing) return false;
    return this.locks.run(`u:${uploadId}`, async () => {
      if (!this.uploads.delete(uploadId)) return false;
      await rm(layout.uploadDir(this.dataDir, uploadId), { recursive: true, force: true });
      return true;
    });
  }

  async listMultipartUploads(
    bucket: string,
  ): Promise<Array<{ key: string; uploadId: string; initiated: Date }>> {
    return [...this.uploads.values()]
      .filter(u => u.record.bucket === bucket && !u.completing)
      .map(u => ({
        key: u.record.key,
        uploadId: u.record.uploadId,
        initiated: new Date(u.record.initiated),
      }))
      .sort(
        (a, b) =>
          Buffer.compare(Buffer.from(a.key), Buffer.from(b.key)) ||
          a.initiated.getTime() - b.initiated.getTime(),
      );
  }

  /** Waits for background hashing to finish (call before removing the data dir). */
  async close(): Promise<void> {
    const pending: Array<Promise<unknown>> = [];
    for (const bucket of this.objects.values()) {
      for (const v of bucket.values()) {
        if (v.hashing) pending.push(v.hashing.catch(() => undefined));
      }
    }
    await Promise.all(pending);
  }

  // ---- internals -----------------------------------------------------------------------

  private abs(...parts: string[]): string {
    return path.join(this.dataDir, ...parts);
  }

  private bucket(name: string): Map<string, Version> {
    let b = this.objects.get(name);
    if (!b) {
      b = new Map();
      this.objects.set(name, b);
    }
    return b;
  }

  private segments(v: Version): Array<{ path: string; size: number }> {
    return v.manifest.segments.map(s => ({
      path: this.abs(v.manifest.blobDir, s.file),
      size: s.size,
    }));
  }

  private openUpload(bucket: string, key: string, uploadId: string): Upload | undefined {
    const u = this.uploads.get(uploadId);
    if (!u || u.record.bucket !== bucket || u.record.key !== key) return undefined;
    return u;
  }

  private writeBody(
    body: NodeJS.ReadableStream | AsyncIterable<Buffer>,
    filePath: string,
  ): Promise<WrittenBody> {
    return writeStreamToFile(body, filePath);
  }

  /** Makes `manifest` the current version of its key (call under the key's lock). */
  private async commit(manifest: Manifest, beforeVisible?: () => Promise<void>): Promise<void> {
    await layout.writeManifest(this.dataDir, manifest);
    await beforeVisible?.();
    const b = this.bucket(manifest.bucket);
    const old = b.get(manifest.key);
    b.set(manifest.key, { manifest, readers: 0, dead: false });
    if (old) this.retire(old);
  }

  private retire(v: Version): void {
    v.dead = true;
    if (v.readers === 0) this.removeBlobs(v);
  }

  private release(v: Version): void {
    v.readers--;
    if (v.dead && v.readers === 0) this.removeBlobs(v);
  }

  private removeBlobs(v: Version): void {
    rm(this.abs(v.manifest.blobDir), { recursive: true, force: true }).catch((err: unknown) => {
      this.logger?.warn({ err, blobDir: v.manifest.blobDir }, 'could not remove old blobs');
    });
  }

  private async computeHashes(v: Version): Promise<ObjectHashes> {
    v.readers++;
    try {
      const m = v.manifest;
      const started = Date.now();
      const hashes = await objectHashes(
        m.size,
        m.etag,
        this.segments(v).map(s => s.path),
      );
      this.logger?.debug(
        { bucket: m.bucket, key: m.key, ms: Date.now() - started },
        'hashed object',
      );
      await this.locks.run(`o:${m.bucket}\0${m.key}`, async () => {
        m.hashes = hashes;
        if (this.objects.get(m.bucket)?.get(m.key) === v) {
          await layout.writeManifest(this.dataDir, m);
        }
      });
      return hashes;
    } finally {
      this.release(v);
    }
  }
}
