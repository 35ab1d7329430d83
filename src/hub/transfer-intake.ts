import { EventEmitter } from 'node:events';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { classifyPacsError } from '../pacs/errors.js';
import { PacsRefused, type Pacs } from '../pacs/pacs.js';
import { phaseLine, type PhaseFailure } from '../protocol/failure-phase.js';
import type { UploadStatus } from '../protocol/transfer.js';
import { gatewayActor } from '../store/gateways.js';
import type { Database } from '../store/database.js';
import {
  findUpload,
  finishUpload,
  receivedUploads,
  recordStoredImage,
  supersedeUploads,
  uploadStatus,
  type UploadRow,
} from '../store/transfers.js';
import { recordProbeUpload } from '../store/probes.js';
import { FileGrowth } from '../transfer/growing-file.js';
import type { RestoreSummary } from '../transfer/image-package.js';
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
  /** Packages opened while they arrive, at most at once (default 4; 0 opens each only once it is whole). */
  earlyOpens?: number;
}

/** The intakes running in this process, latest last (the hub runs one), for the support page: currentPacsFailure. */
const running: TransferIntake[] = [];

/**
 * Why the hub's last attempt to store an image in the PACS failed (pacs_unreachable, pacs_refused or disk_full),
 * or null if it succeeded or none was made since the hub started; for the support page, which runs in the same
 * process as the gateway listener but is built before it.
 */
export function currentPacsFailure(): PhaseFailure | null {
  return running.at(-1)?.lastPacsFailure ?? null;
}

/** A package being opened as it arrives, so that little is left to do when its last byte comes. */
interface EarlyOpen {
  growth: FileGrowth;
  restoredFile: string;
  /** The restored image, or undefined if opening early failed for any reason (it is then opened again, whole). */
  result: Promise<RestoreSummary | undefined>;
}

/** An early open gives up when its package has not grown for this long (the link is down; it is opened whole). */
const EARLY_OPEN_IDLE_MS = 5 * 60_000;

/**
 * The hub's side of image transfer after the upload: each whole package is opened (its authentication tags
 * checked), the original Part 10 file restored and checked against its SHA-256, the file given to the PACS, and the
 * image recorded once with its exam's images marked available. A package that fails its checks is rejected (the
 * gateway sends it again); a PACS that cannot be reached is tried again until it can. One package at a time.
 *
 * A package is opened while it arrives (the upload says how far it has come), so its image is restored moments
 * after its last byte. That early result is only a head start: anything wrong with it (a failed check, a link down
 * for minutes, a hub restart) and the whole package is opened again once received, which alone decides a refusal.
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
  private readonly early = new Map<string, EarlyOpen>();
  /** Packages stored from their early opening, and those opened again once whole (the early opening failed). */
  readonly openedEarly = { used: 0, openedAgain: 0 };
  /** Emits 'settled' with an UploadStatus when an upload is stored or rejected. */
  readonly events = new EventEmitter();
  /** Why the last store into the PACS failed, by its phase; null once one succeeds. */
  lastPacsFailure: PhaseFailure | null = null;
  /** The error behind lastPacsFailure, so the retry's log line can be named by it. */
  private pacsError: unknown;

  constructor(private readonly options: TransferIntakeOptions) {
    this.uploadsDir = join(options.dir, 'uploads');
    this.restoredDir = join(options.dir, 'restored');
    mkdirSync(this.uploadsDir, { recursive: true, mode: 0o700 });
    // Files restored but not yet stored when the hub last stopped are restored again from their packages.
    rmSync(this.restoredDir, { recursive: true, force: true });
    mkdirSync(this.restoredDir, { recursive: true, mode: 0o700 });
    this.events.setMaxListeners(0);
    running.push(this);
  }

  partPath(id: string): string {
    return join(this.uploadsDir, `${id}.pkg`);
  }

  /** Takes up packages left whole but unstored when the hub last stopped. */
  async start(): Promise<void> {
    void this.thread.warm().catch(() => undefined);
    for (const id of await receivedUploads(this.options.database.db)) this.submit(id);
  }

  /** Bytes of a package have begun to arrive (again): it is opened as they come, if there is room for that. */
  arriving(id: string): void {
    if (this.stopped || this.early.has(id) || this.early.size >= (this.options.earlyOpens ?? 4)) return;
    const growth = new FileGrowth();
    const restoredFile = join(this.restoredDir, `${id}.early.dcm`);
    const result = this.thread
      .open(this.partPath(id), restoredFile, this.options.privateKey, { growth, idleMs: EARLY_OPEN_IDLE_MS })
      .catch(() => {
        // Opened again once whole (the answer then is the one that counts); nothing is decided here.
        if (this.early.get(id)?.result === result) this.early.delete(id);
        return undefined;
      });
    this.early.set(id, { growth, restoredFile, result });
  }

  /** The package is written as far as `bytes` (not yet fsynced: an early open may read it, not a decision). */
  grew(id: string, bytes: number): void {
    this.early.get(id)?.growth.grew(bytes);
  }

  /** The whole package is durable at the hub: it is opened (or its early opening finished) and stored. */
  received(id: string, length: number): void {
    this.early.get(id)?.growth.finish(length);
    this.submit(id);
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
        const text = `Package ${id} not stored yet, will try again: ${(error as Error).message}`;
        const pacs = error === this.pacsError ? this.lastPacsFailure : null;
        this.options.log('warn', pacs ? phaseLine({ phase: pacs.phase, message: text }) : text);
        // Issue 8 (probe): a synthetic test probe's image that cannot be stored fails the probe at this step.
        await this.probeStep(id, 'stored_in_pacs', (error as Error).message);
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
    const early = this.early.get(id);
    this.early.delete(id);
    if (!upload || upload.state !== 'received') {
      early?.growth.abandon();
      return;
    }
    // Issue 8 (probe): a synthetic test probe's package is whole at the hub.
    await this.probeStep(id, 'received_at_hub');
    const earlySummary = await early?.result;
    if (earlySummary) this.openedEarly.used += 1;
    else if (early) this.openedEarly.openedAgain += 1;
    const restored = earlySummary ? early!.restoredFile : join(this.restoredDir, `${id}.dcm`);
    try {
      let summary;
      try {
        const opened = earlySummary ?? (await this.thread.open(this.partPath(id), restored, this.options.privateKey));
        summary = this.checked(upload, opened);
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
        this.lastPacsFailure = null;
      } catch (error) {
        this.lastPacsFailure = classifyPacsError(error);
        this.pacsError = error;
        if (!(error instanceof PacsRefused)) throw error;
        // The PACS will not take this image: nothing more the transfer can do; support must look.
        const message = `The PACS refused the image: ${error.message}`;
        await finishUpload(db, id, 'rejected', message);
        await this.probeStep(id, 'stored_in_pacs', message);
        const line = `Package ${id} (${upload.sop_instance_uid}): ${message}`;
        this.options.log('error', phaseLine({ phase: 'pacs_refused', message: line }));
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
      await this.probeStep(id, 'stored_in_pacs');
      rmSync(this.partPath(id), { force: true });
      for (const left of await supersedeUploads(db, {
        id,
        gatewayId: upload.gateway_id,
        sopInstanceUid: upload.sop_instance_uid,
      })) {
        this.early.get(left)?.growth.abandon();
        rmSync(this.partPath(left), { force: true });
      }
      this.settled(upload, 'stored', '');
    } finally {
      rmSync(restored, { force: true });
    }
  }

  /** Issue 8: records a synthetic test probe's step for this upload (nothing for a clinical one); never throws. */
  private async probeStep(id: string, step: 'received_at_hub' | 'stored_in_pacs', failure?: string): Promise<void> {
    await recordProbeUpload(this.options.database.db, id, step, failure).catch((error: unknown) =>
      this.options.log('warn', `Probe step for package ${id} not recorded: ${(error as Error).message}`),
    );
  }

  /** A restored package's summary, if it holds the image its upload named (PackageRefused if not). */
  private checked(upload: NonNullable<UploadRow>, summary: RestoreSummary) {
    if (summary.sopInstanceUid !== upload.sop_instance_uid)
      throw new PackageRefused(
        `The package holds ${summary.sopInstanceUid}, not the ${upload.sop_instance_uid} its upload named`,
      );
    return { ...summary, packedBytes: Number(upload.received_bytes) };
  }

  private settled(upload: NonNullable<UploadRow>, state: 'stored' | 'rejected', message: string): void {
    const status: UploadStatus = {
      ...uploadStatus(upload),
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
    const index = running.indexOf(this);
    if (index >= 0) running.splice(index, 1);
    if (this.retry) clearTimeout(this.retry);
    for (const early of this.early.values()) early.growth.abandon();
    await this.running;
    await this.thread.close();
  }
}
