import { EventEmitter } from 'node:events';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { PacsRefused, type Pacs } from '../pacs/pacs.js';
import type { UploadStatus } from '../protocol/transfer.js';
import { gatewayActor } from '../store/gateways.js';
import type { Database } from '../store/database.js';
import {
  findUpload,
  finishUpload,
  receivedUploads,
  recordStoredImage,
  uploadStatus,
  type UploadRow,
} from '../store/transfers.js';
import { PackageThread } from '../transfer/package-thread.js';
import { PackageRefused } from '../transfer/sealed-package.js';

export interface TransferIntakeOptions {
  database: Database;
  pacs: Pacs;
  /** Where uploads are received (uploads/) and restored before the PACS takes them (restored/). */
  dir: string;
  /** The hub's raw X25519 transfer private key. */
  privateKey: Uint8Array;
  log: (level: 'info' | 'warn' | 'error', message: string) => void;
  /** Wait before trying the PACS again after it failed (default 30 s; tests shorten it). */
  retryMs?: number;
}

/**
 * The hub's side of image transfer after the upload: each whole package is opened (its authentication tags
 * checked), the original Part 10 file restored and checked against its SHA-256, the file given to the PACS, and the
 * image recorded once with its exam's images marked available. A package that fails its checks is rejected (the
 * gateway sends it again); a PACS that cannot be reached is tried again until it can. One package at a time.
 */
export class TransferIntake {
  readonly uploadsDir: string;
  private readonly restoredDir: string;
  private readonly queue: string[] = [];
  private readonly queued = new Set<string>();
  private running: Promise<void> | undefined;
  private retry: NodeJS.Timeout | undefined;
  private stopped = false;
  private readonly thread = new PackageThread();
  /** Emits 'settled' with an UploadStatus when an upload is stored or rejected. */
  readonly events = new EventEmitter();

  constructor(private readonly options: TransferIntakeOptions) {
    this.uploadsDir = join(options.dir, 'uploads');
    this.restoredDir = join(options.dir, 'restored');
    mkdirSync(this.uploadsDir, { recursive: true, mode: 0o700 });
    mkdirSync(this.restoredDir, { recursive: true, mode: 0o700 });
    this.events.setMaxListeners(0);
  }

  partPath(id: string): string {
    return join(this.uploadsDir, `${id}.pkg`);
  }

  /** Takes up packages left whole but unstored when the hub last stopped. */
  async start(): Promise<void> {
    void this.thread.warm().catch(() => undefined);
    for (const id of await receivedUploads(this.options.database.db)) this.submit(id);
  }

  submit(id: string): void {
    if (this.stopped || this.queued.has(id)) return;
    this.queued.add(id);
    this.queue.push(id);
    this.running ??= this.drain().finally(() => (this.running = undefined));
  }

  private async drain(): Promise<void> {
    for (let id = this.queue.shift(); id && !this.stopped; id = this.queue.shift()) {
      this.queued.delete(id);
      try {
        await this.take(id);
      } catch (error) {
        // The PACS (or the database) could not be reached: the upload stays 'received' and is tried again.
        this.options.log('warn', `Package ${id} not stored yet, will try again: ${(error as Error).message}`);
        this.retry ??= setTimeout(() => {
          this.retry = undefined;
          void this.start();
        }, this.options.retryMs ?? 30_000);
      }
    }
  }

  private async take(id: string): Promise<void> {
    const db = this.options.database.db;
    const upload = await findUpload(db, id);
    if (!upload || upload.state !== 'received') return;
    const restored = join(this.restoredDir, `${id}.dcm`);
    try {
      let summary;
      try {
        summary = await this.restore(upload, restored);
      } catch (error) {
        if (!(error instanceof PackageRefused)) throw error;
        await finishUpload(db, id, 'rejected', error.message);
        rmSync(this.partPath(id), { force: true });
        this.options.log('warn', `Package ${id} (${upload.sop_instance_uid}) rejected: ${error.message}`);
        this.settled(upload, 'rejected', error.message);
        return;
      }
      try {
        await this.options.pacs.store(restored, summary);
      } catch (error) {
        if (!(error instanceof PacsRefused)) throw error;
        // The PACS will not take this image: nothing more the transfer can do; support must look.
        const message = `The PACS refused the image: ${error.message}`;
        await finishUpload(db, id, 'rejected', message);
        this.options.log('error', `Package ${id} (${upload.sop_instance_uid}): ${message}`);
        this.settled(upload, 'rejected', message);
        return;
      }
      const gateway = await db
        .selectFrom('gateway')
        .select('site_id')
        .where('id', '=', upload.gateway_id)
        .executeTakeFirstOrThrow();
      await recordStoredImage(
        db,
        summary,
        { id, gatewayId: upload.gateway_id },
        this.options.pacs.description,
        gatewayActor(gateway.site_id, null),
      );
      rmSync(this.partPath(id), { force: true });
      this.settled(upload, 'stored', '');
    } finally {
      rmSync(restored, { force: true });
    }
  }

  /** Opens and restores a package into `target`, fsynced; PackageRefused when it fails any check. */
  private async restore(upload: NonNullable<UploadRow>, target: string) {
    const summary = await this.thread.open(this.partPath(upload.id), target, this.options.privateKey);
    if (summary.sopInstanceUid !== upload.sop_instance_uid)
      throw new PackageRefused(
        `The package holds ${summary.sopInstanceUid}, not the ${upload.sop_instance_uid} its upload named`,
      );
    return { ...summary, packedBytes: Number(upload.length) };
  }

  private settled(upload: NonNullable<UploadRow>, state: 'stored' | 'rejected', message: string): void {
    const status: UploadStatus = {
      ...uploadStatus(upload),
      offset: Number(upload.length),
      state,
      message,
    };
    this.events.emit(upload.id, status);
  }

  /** Waits up to `ms` for an upload to be stored or rejected; returns its status then (or as it stands). */
  async waitFor(id: string, ms: number): Promise<UploadStatus | undefined> {
    const row = await findUpload(this.options.database.db, id);
    if (!row || row.state !== 'received') return row ? uploadStatus(row) : undefined;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.events.off(id, done);
        void findUpload(this.options.database.db, id).then((r) => resolve(r ? uploadStatus(r) : undefined));
      }, ms);
      const done = (status: UploadStatus) => {
        clearTimeout(timer);
        resolve(status);
      };
      this.events.once(id, done);
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.retry) clearTimeout(this.retry);
    await this.running;
    await this.thread.close();
  }
}
