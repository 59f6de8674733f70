/**
 * Jamf's processing of stored package files (jamf-wire-2026.md 1 and 2): after an upload
 * Jamf computes md5, sha256 (unless settings.packageSha256 is false), sha3512, hashValue
 * (= sha3512), hashType SHA3_512 and `size` itself and sets `cloudTransferStatus` READY, asynchronously; until then a record shows
 * what it showed before (the client's own hash claims, or the OLD file's hash and size on a
 * replace).
 *
 * When processing is scheduled, for a package record with a fileName:
 *   - package upload: `POST /api/v1/packages/{id}/upload` answered 201 → due after the
 *     processing delay (status IN_PROGRESS meanwhile); refresh-inventory does not hurry it;
 *   - s3 (JCDS v1): a JCDS object of that file name is stored while the record exists, or
 *     the record is created/updated while such an object exists that it was not processed
 *     from → due after the processing delay; refresh-inventory with that `file-name`
 *     processes it at once (hashing may take a moment: the next GETs show the result).
 * The processing delay is faults.processingDelayMs ?? settings.processingMs. Processing
 * reads the newest JCDS object of the record's fileName (jcds-files.ts). With cdnType NONE
 * nothing is processed (it stays due, and resumes if the setting changes back).
 *
 * Faults: staleSizeMs (new hash with the old size for a while after a replace),
 * bytesNeverLandCount (hash of what was sent, size "0", object deleted), and the
 * processingDelayMs override. Due processings are persisted on the record: `recover()`
 * finishes the overdue ones before the simulator listens again after a restart.
 */
import { randomUUID } from 'node:crypto';
import type { StoredObjectInfo } from '../types.ts';
import type { JamfContext } from './context.ts';
import { isNewer, jcdsFileName, newestByFileName, newestObject } from './jcds-files.ts';
import { fieldString, type PackageRecord, type ProcessedFile } from './package-model.ts';

/** Whether `obj` is a different, newer object than the one the record was processed from. */
export function isUnprocessed(obj: StoredObjectInfo, file: ProcessedFile | undefined): boolean {
  if (!file) return true;
  if (obj.key === file.key) {
    return obj.etag !== file.etag || obj.lastModified.toISOString() !== file.lastModified;
  }
  const processed: StoredObjectInfo = {
    bucket: obj.bucket,
    key: file.key,
    size: file.size,
    etag: file.etag,
    lastModified: new Date(file.lastModified),
    contentType: undefined,
  };
  return isNewer(obj, processed);
}

export class Processing {
  private readonly ctx: JamfContext;
  private readonly timers = new Map<number, NodeJS.Timeout>();
  private readonly sizeTimers = new Map<number, NodeJS.Timeout>();
  private readonly running = new Map<number, Promise<void>>();
  private closed = false;

  constructor(ctx: JamfContext) {
    this.ctx = ctx;
  }

  /** The delay from an upload (or a new object) to its processing, ms. */
  delayMs(): number {
    return this.ctx.faults.processingDelayMs ?? this.ctx.settings.processingMs;
  }

  /** Schedules the processing of one package `delayMs` from now (a new event restarts it). */
  schedule(id: number, source: 'upload' | 's3', delayMs = this.delayMs()): void {
    const rec = this.ctx.packages.get(id);
    if (!rec) return;
    // A package upload's own transfer stays the reason until it is processed.
    const kind = rec.pending?.source === 'upload' ? 'upload' : source;
    const dueAt = Date.now() + delayMs;
    this.ctx.packages.update({
      ...rec,
      pending: { source: kind, dueAt, token: randomUUID() },
      cloudTransferStatus: kind === 'upload' ? 'IN_PROGRESS' : rec.cloudTransferStatus,
    });
    this.arm(id, dueAt);
  }

  /** After a create or update: processing is due when a stored object was not processed yet. */
  async recordWritten(id: number): Promise<void> {
    const rec = this.ctx.packages.get(id);
    const fileName = rec ? fieldString(rec, 'fileName') : null;
    if (!rec || !fileName || rec.pending) return;
    const obj = await newestObject(this.jcds(), fileName);
    if (obj && isUnprocessed(obj, rec.file)) this.schedule(id, 's3');
  }

  /** The S3 side stored an object (PutObject, CompleteMultipartUpload), after answering. */
  async objectStored(bucket: string, key: string): Promise<void> {
    const { ctx } = this;
    if (bucket !== ctx.settings.bucket) return;
    const vanish = ctx.faults.vanishObjectCount ?? 0;
    if (vanish > 0) {
      ctx.faults.vanishObjectCount = vanish - 1;
      ctx.counters.objectsVanished++;
      await ctx.store.delete(bucket, key);
      ctx.logger.info({ key }, 'fault: the stored JCDS object vanished');
      return;
    }
    const fileName = jcdsFileName(key);
    if (!fileName) return;
    for (const rec of ctx.packages.all()) {
      if (fieldString(rec, 'fileName') === fileName) this.schedule(rec.id, 's3');
    }
  }

  /**
   * refresh-inventory for one file: a blanked size comes back, and a due s3 processing (or
   * a stored object not processed yet) is processed now, without waiting for it here.
   */
  async refresh(fileName: string): Promise<void> {
    const obj = await newestObject(this.jcds(), fileName);
    for (const rec of this.ctx.packages.all()) {
      if (fieldString(rec, 'fileName') === fileName) this.refreshRecord(rec, obj);
    }
  }

  /** refresh-inventory without a file name: the same for every package record. */
  async refreshAll(): Promise<void> {
    const newest = await newestByFileName(this.jcds());
    for (const rec of this.ctx.packages.all()) {
      const fileName = fieldString(rec, 'fileName');
      if (fileName) this.refreshRecord(rec, newest.get(fileName));
    }
  }

  /** After a restart: finishes overdue processings, re-arms the others. */
  async recover(): Promise<void> {
    const overdue: Array<Promise<void>> = [];
    const now = Date.now();
    for (const rec of this.ctx.packages.all()) {
      if (rec.sizeLater) this.armSize(rec.id, rec.sizeLater.at);
      if (!rec.pending) continue;
      if (rec.pending.dueAt <= now) overdue.push(this.run(rec.id));
      else this.arm(rec.id, rec.pending.dueAt);
    }
    await Promise.all(overdue);
  }

  /** Settings changed (cdnType back from NONE): re-arms every due processing. */
  resume(): void {
    for (const rec of this.ctx.packages.all()) {
      if (rec.pending) this.arm(rec.id, rec.pending.dueAt);
    }
  }

  /** Processes one package's due processing now (whatever its due time); serialised per id. */
  run(id: number): Promise<void> {
    const previous = this.running.get(id) ?? Promise.resolve();
    const next = previous
      .then(() => this.processOnce(id))
      .catch((err: unknown) => this.ctx.logger.warn({ err, id }, 'package processing failed'));
    this.running.set(id, next);
    void next.finally(() => {
      if (this.running.get(id) === next) this.running.delete(id);
    });
    return next;
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const t of [...this.timers.values(), ...this.sizeTimers.values()]) clearTimeout(t);
    this.timers.clear();
    this.sizeTimers.clear();
    await Promise.all(this.running.values());
  }

  // ---- internals -----------------------------------------------------------------------

  private jcds() {
    return { store: this.ctx.store, bucket: this.ctx.settings.bucket };
  }

  private refreshRecord(rec: PackageRecord, obj: StoredObjectInfo | undefined): void {
    this.restoreSize(rec);
    // A package upload's transfer is Jamf's own: a refresh does not hurry it.
    if (rec.pending?.source === 'upload') return;
    if (!rec.pending && !(obj && isUnprocessed(obj, rec.file))) return;
    if (!rec.pending) this.schedule(rec.id, 's3', 0);
    void this.run(rec.id);
  }

  private restoreSize(rec: PackageRecord): void {
    if (rec.size === '' && rec.file?.landed) {
      this.ctx.packages.update({ ...rec, size: String(rec.file.size) });
    }
  }

  private arm(id: number, at: number): void {
    clearTimeout(this.timers.get(id));
    if (this.closed) return;
    const t = setTimeout(
      () => {
        this.timers.delete(id);
        void this.run(id);
      },
      Math.max(0, at - Date.now()),
    );
    t.unref();
    this.timers.set(id, t);
  }

  private armSize(id: number, at: number): void {
    clearTimeout(this.sizeTimers.get(id));
    if (this.closed) return;
    const t = setTimeout(
      () => {
        this.sizeTimers.delete(id);
        const rec = this.ctx.packages.get(id);
        if (!rec?.sizeLater) return;
        this.ctx.packages.update({ ...rec, size: rec.sizeLater.value, sizeLater: undefined });
      },
      Math.max(0, at - Date.now()),
    );
    t.unref();
    this.sizeTimers.set(id, t);
  }

  private async processOnce(id: number): Promise<void> {
    const { ctx } = this;
    const rec = ctx.packages.get(id);
    if (!rec?.pending) return;
    // No cloud distribution point: nothing is ever processed (resume() re-arms it).
    if (ctx.settings.cdnType === 'NONE') return;
    const { token, source } = rec.pending;
    const fileName = fieldString(rec, 'fileName');
    const obj = fileName ? await newestObject(this.jcds(), fileName) : undefined;
    if (!obj || (source === 's3' && !isUnprocessed(obj, rec.file))) {
      // Nothing (new) stored under that name: the record keeps what it shows.
      this.clearPending(id, token);
      return;
    }
    const hashes = await ctx.store.hashes(ctx.settings.bucket, obj.key);
    const current = ctx.packages.get(id);
    // Deleted, or superseded by a newer upload or object: that one is processed instead.
    if (!current || current.pending?.token !== token) return;
    if (!hashes) {
      this.clearPending(id, token);
      return;
    }
    const computed = {
      md5: hashes.md5,
      // settings.packageSha256 false: a tenant that does not fill it.
      sha256: ctx.settings.packageSha256 ? hashes.sha256 : null,
      hashType: 'SHA3_512',
      hashValue: hashes.sha3_512,
      sha3512: hashes.sha3_512,
    };
    const file: ProcessedFile = {
      key: obj.key,
      etag: obj.etag,
      lastModified: obj.lastModified.toISOString(),
      size: hashes.size,
      landed: true,
    };
    const base = { ...current, fields: { ...current.fields, ...computed }, pending: undefined };

    const neverLand = ctx.faults.bytesNeverLandCount ?? 0;
    if (neverLand > 0) {
      ctx.faults.bytesNeverLandCount = neverLand - 1;
      ctx.counters.bytesNeverLanded++;
      await ctx.store.delete(ctx.settings.bucket, obj.key);
      ctx.packages.update({
        ...base,
        size: '0',
        cloudTransferStatus: 'IN_PROGRESS',
        file: { ...file, landed: false },
        sizeLater: undefined,
      });
      ctx.logger.info({ id, fileName, key: obj.key }, 'fault: the bytes never landed (size 0)');
      return;
    }

    ctx.counters.uploadsProcessed++;
    const staleMs = ctx.faults.staleSizeMs ?? 0;
    const previous = current.file?.landed ? current.file : undefined;
    if (staleMs > 0 && previous) {
      const at = Date.now() + staleMs;
      ctx.packages.update({
        ...base,
        size: String(previous.size),
        cloudTransferStatus: 'READY',
        file,
        sizeLater: { value: String(hashes.size), at },
      });
      this.armSize(id, at);
    } else {
      clearTimeout(this.sizeTimers.get(id));
      ctx.packages.update({
        ...base,
        size: String(hashes.size),
        cloudTransferStatus: 'READY',
        file,
        sizeLater: undefined,
      });
    }
    ctx.logger.info({ id, fileName, key: obj.key, size: hashes.size }, 'package file processed');
  }

  private clearPending(id: number, token: string): void {
    const rec = this.ctx.packages.get(id);
    if (rec?.pending?.token !== token) return;
    this.ctx.packages.update({ ...rec, pending: undefined });
  }
}
