import { createReadStream, existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';
import { capAt, type CapPeriod } from '../pathway/bandwidth-cap.js';
import {
  encodeUploadMetadata,
  OUTBOX_PATH,
  TRANSFER_KEY_PATH,
  TUS_VERSION,
  UPLOADS_PATH,
  type OutboxReport,
  type UploadStatus,
} from '../protocol/transfer.js';
import { FileGrowth, readGrowingFile } from '../transfer/growing-file.js';
import { sealingPath } from '../transfer/package-files.js';
import { PackageThread } from '../transfer/package-thread.js';
import { phaseFailure, phaseLine, type FailurePhase, type PhaseFailure } from '../protocol/failure-phase.js';
import { classifyLinkError } from './failure-classifier.js';
import { HubError, hubMessage, type HubConnection } from './hub-connection.js';
import type { Outbox, OutboxImage } from './outbox.js';

export interface TransferSenderOptions {
  connection: HubConnection;
  outbox: Outbox;
  dataDir: string;
  /** Bandwidth cap by time of day (pathway/bandwidth-cap.ts); empty for none. */
  cap: readonly CapPeriod[];
  /** Whether the hub's push stream is up: a hint to try at once rather than wait out a backoff. */
  online: () => boolean;
  /** Longest wait between attempts after failures (default 30 s). */
  maxRetryMs?: number;
  /** How often the outbox is reported to the hub (default 30 s). */
  reportMs?: number;
  log: (level: 'info' | 'warn' | 'error', message: string) => void;
}

/** The compression ratio assumed for images not yet sealed, when estimating bytes still to send. */
const ASSUMED_RATIO = 2.5;
const RATE_WINDOW_S = 600;
/** Failures the hub reports about a package once it is whole: cleared only when an image is stored. */
const OUTCOME_PHASES = new Set<FailurePhase>(['decrypt_auth', 'pacs_refused']);

/** The package being sealed now: the link may carry it as it is sealed, if no sealed package is waiting. */
interface Sealing {
  item: OutboxImage;
  packageId: string;
  packageFile: string;
  growth: FileGrowth;
  /** Its upload has been begun while it is sealed (only once: after a failure it is sent once sealed). */
  begun: boolean;
  /** Settles once the package is sealed and journalled (true), or its sealing failed (false). */
  journalled: Promise<boolean>;
}

/**
 * Sends the outbox to the hub with nobody touching it: seals images in a worker thread (one at a time, in sending
 * order), and uploads packages one at a time over the resumable protocol, continuing from the hub's acknowledged
 * offset after every drop, within the bandwidth cap. With nothing sealed waiting, the package being sealed goes up
 * as it is written (its length told once it is sealed), so the link starts on an exam at once. An urgent exam sealed while a routine package is going
 * interrupts it; the routine one continues from where it stopped afterwards.
 */
export class TransferSender {
  private readonly thread = new PackageThread();
  private hubKey: Buffer | undefined;
  private readonly keyFile: string;
  private stopped = false;
  private wakeSealer: (() => void) | undefined;
  private wakeSender: (() => void) | undefined;
  private current: { item: OutboxImage; abort: AbortController } | undefined;
  private sealing: Sealing | undefined;
  /** The next package's upload, created while the one before was finishing (its offset at the hub). */
  private prepared: { item: OutboxImage; uploadId: string; offset: Promise<number | undefined> } | undefined;
  private readonly loops: Promise<void>[] = [];
  private readonly reporter: NodeJS.Timeout;
  /** Bytes sent per second over the last ten minutes of sending (for throughput and the time to clear). */
  private readonly sentPerSecond = new Map<number, number>();
  private readonly sealFailures = new Map<string, number>();
  /** Images whose outcome is being asked for, and those questions (awaited on stop). */
  private readonly confirming = new Set<string>();
  private readonly confirmations = new Set<Promise<void>>();
  private readonly stopping = new AbortController();
  /** The last failure in sending, by its phase (cleared when a package goes through). */
  lastFailure: PhaseFailure | undefined;
  totalSentBytes = 0;

  /** The last failure's message, for callers that show only the text. */
  get lastError(): string | undefined {
    return this.lastFailure?.message;
  }

  /** Records a failure (the phase the error shows, unless one is given) and logs it, its phase's label first. */
  private failed(
    level: 'warn' | 'error',
    context: string,
    error: unknown,
    phase?: FailurePhase,
    after = '',
  ): PhaseFailure {
    const said = error instanceof Error ? error.message : String(error);
    const named = classifyLinkError(error);
    const failure = phase
      ? phaseFailure(phase, `${context}: ${said}`)
      : { ...named, message: `${context}: ${named.message}` };
    this.lastFailure = failure;
    // The log keeps the error's own words after the phase (they are what a search of old logs finds).
    this.options.log(level, `${phaseLine({ phase: failure.phase, message: `${context}: ${said}` })}${after}`);
    return failure;
  }

  constructor(private readonly options: TransferSenderOptions) {
    this.keyFile = join(options.dataDir, 'transfer-key.json');
    if (existsSync(this.keyFile)) {
      const saved = JSON.parse(readFileSync(this.keyFile, 'utf8')) as { publicKey: string };
      this.hubKey = Buffer.from(saved.publicKey, 'base64');
    }
    options.outbox.events.on('changed', () => {
      this.wakeSealer?.();
      this.wakeSender?.();
      this.preemptIfUrgent();
    });
    this.loops.push(this.sealLoop(), this.sendLoop());
    // Packages whole at the hub before a restart: only their outcome is still to learn.
    for (const item of options.outbox.all()) if (item.state === 'at_hub') this.confirm(item);
    // The packaging thread starts now, not when the first image comes (its start costs a second or two).
    void this.thread.warm().catch(() => undefined);
    this.reporter = setInterval(() => void this.report(), options.reportMs ?? 30_000);
  }

  /** The link is back: try at once. */
  nudge(): void {
    this.wakeSealer?.();
    this.wakeSender?.();
    void this.report();
  }

  private sleep(ms: number, wake: 'sealer' | 'sender'): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      if (wake === 'sealer') this.wakeSealer = done;
      else this.wakeSender = done;
    });
  }

  /** The hub's public key, fetched once and kept, so images are sealed even while the link is down. */
  private async key(): Promise<Buffer | undefined> {
    if (this.hubKey) return this.hubKey;
    try {
      const { publicKey } = await this.options.connection.get<{ publicKey: string }>(TRANSFER_KEY_PATH);
      const key = Buffer.from(publicKey, 'base64');
      if (key.length !== 32) throw new Error('the hub sent a transfer key that is not 32 bytes');
      writeFileSync(this.keyFile, JSON.stringify({ publicKey }), { mode: 0o600 });
      this.hubKey = key;
      return key;
    } catch (error) {
      this.failed('warn', 'Could not get the hub’s transfer key', error);
      return undefined;
    }
  }

  private async sealLoop(): Promise<void> {
    while (!this.stopped) {
      const item = this.options.outbox.nextToSeal();
      const key = item ? await this.key() : undefined;
      if (!item || !key) {
        await this.sleep(item ? 5_000 : 60_000, 'sealer');
        continue;
      }
      const packageId = this.options.outbox.newPackageId();
      const packageFile = this.options.outbox.packagePath(packageId);
      const growth = new FileGrowth();
      let journalled!: (done: boolean) => void;
      const sealing: Sealing = {
        item,
        packageId,
        packageFile,
        growth,
        begun: false,
        journalled: new Promise((resolve) => (journalled = resolve)),
      };
      this.sealing = sealing;
      this.wakeSender?.();
      try {
        const started = Date.now();
        const sealed = await this.thread.seal(item.imageFile, packageFile, key, growth).finally(() => {
          this.sealing = undefined;
        });
        if (this.stopped) return journalled(false);
        try {
          this.options.outbox.sealed(item, packageId, sealed.sealedBytes, sealed.codec);
          // Going up already: its upload (the package id) is journalled now, to be resumed after a restart.
          if (sealing.begun) {
            this.options.outbox.uploadFor(item);
            this.options.outbox.progress(item, item.acknowledged, item.sent);
          }
        } catch (error) {
          // Not journalled (disk full?): this package is nobody's; the image is sealed again under a new id.
          rmSync(packageFile, { force: true });
          throw error;
        }
        journalled(true);
        this.options.log(
          'info',
          `Sealed ${item.sopInstanceUid}: ${sealed.originalBytes} bytes to ${sealed.sealedBytes} (${sealed.codec}) in ${Date.now() - started} ms`,
        );
        this.sealFailures.delete(item.sopInstanceUid);
      } catch (error) {
        journalled(false);
        if (this.stopped) return;
        const message = (error as Error).message;
        // A full disk or a stopped worker passes: try again. An image that fails three times running cannot be read.
        const failures = (this.sealFailures.get(item.sopInstanceUid) ?? 0) + 1;
        this.sealFailures.set(item.sopInstanceUid, failures);
        this.failed('error', `Could not seal ${item.sopInstanceUid} (attempt ${failures})`, error);
        if (failures >= 3 && (error as NodeJS.ErrnoException).code !== 'ENOSPC') {
          this.sealFailures.delete(item.sopInstanceUid);
          this.options.outbox.damaged(item, `Could not be sealed: ${message}`);
        } else await this.sleep(this.options.maxRetryMs ?? 10_000, 'sealer');
      }
    }
  }

  private async sendLoop(): Promise<void> {
    let backoff = 0;
    const maxRetryMs = this.options.maxRetryMs ?? 30_000;
    while (!this.stopped) {
      const next = this.options.outbox.nextToSend();
      const sealing = !next && this.sealing && !this.sealing.begun ? this.sealing : undefined;
      const item = next ?? sealing?.item;
      if (!item) {
        await this.sleep(60_000, 'sender');
        continue;
      }
      try {
        if (sealing) await this.sendWhileSealing(sealing);
        else await this.send(item);
        backoff = 0;
        // A package going up proves the link, not the packages: a refusal at the hub stays until one is stored.
        if (this.lastFailure && !OUTCOME_PHASES.has(this.lastFailure.phase)) this.lastFailure = undefined;
      } catch (error) {
        if (this.stopped) return;
        if (this.current?.abort.signal.aborted && this.current.item === item) {
          // Interrupted for an urgent exam: not a failure.
        } else {
          this.failed('warn', `Sending ${item.sopInstanceUid} stopped`, error, undefined, '; it will continue');
          // The first retry is at once (a dropped link is usually back); then 1 s, 2 s, … up to the maximum.
          await this.sleep(backoff, 'sender');
          backoff = Math.min(Math.max(backoff * 2, 1000), maxRetryMs);
        }
      } finally {
        this.current = undefined;
      }
    }
  }

  /** Interrupts a routine package when an urgent one is ready to go. */
  private preemptIfUrgent(): void {
    const current = this.current;
    if (!current || current.item.priority === 'urgent') return;
    const next = this.options.outbox.nextToSend();
    if (next && next !== current.item && next.priority === 'urgent') current.abort.abort();
  }

  /**
   * Sends a package still being sealed: its upload created without a length, and its bytes sent as the worker
   * writes them, in a PATCH that ends when the package is sealed; the rest follows as for any package, the first
   * PATCH telling the length.
   */
  private async sendWhileSealing(sealing: Sealing): Promise<void> {
    sealing.begun = true;
    const { item, packageId, packageFile, growth } = sealing;
    const abort = new AbortController();
    this.current = { item, abort };
    let offset = await this.createUpload(item, packageId, 'later', abort.signal);
    // The worker renames the package when it is sealed: the same file under its own name.
    const body = this.paced(
      readGrowingFile([sealingPath(packageFile), packageFile], growth, {
        start: offset,
        highWaterMark: 64 * 1024,
        endWhenFinished: true,
      }),
      item,
      offset,
    );
    offset = await this.patch(packageId, offset, body, undefined, abort.signal);
    // Sealing failed: the image is sealed again, as a new package; this upload is left (the hub supersedes it).
    if (!(await sealing.journalled)) return;
    await this.sendFrom(item, packageId, offset, abort.signal, true);
  }

  /** Creates the upload (or finds it again), with its length or to be told later; resolves with the hub's offset. */
  private async createUpload(
    item: OutboxImage,
    uploadId: string,
    length: number | 'later',
    signal: AbortSignal,
  ): Promise<number> {
    const created = await this.options.connection.exchange('POST', UPLOADS_PATH, {
      signal,
      headers: {
        'tus-resumable': TUS_VERSION,
        ...(length === 'later' ? { 'upload-defer-length': '1' } : { 'upload-length': String(length) }),
        'upload-metadata': this.uploadMetadata(item, uploadId),
      },
    });
    if (created.status !== 201) throw new HubError(created.status, `upload refused: ${hubMessage(created.text)}`);
    return Number(created.headers['upload-offset'] ?? 0);
  }

  /**
   * One PATCH: `body` from `offset`, of `bodyBytes` (undefined: as many as the body has, chunked); resolves with the
   * hub's offset after it.
   */
  private async patch(
    uploadId: string,
    offset: number,
    body: Readable,
    bodyBytes: number | undefined,
    signal: AbortSignal,
    uploadLength?: number,
  ): Promise<number> {
    const patched = await this.options.connection.exchange('PATCH', `${UPLOADS_PATH}/${uploadId}`, {
      signal,
      body,
      headers: {
        'tus-resumable': TUS_VERSION,
        'content-type': 'application/offset+octet-stream',
        'upload-offset': String(offset),
        ...(bodyBytes === undefined ? {} : { 'content-length': String(bodyBytes) }),
        ...(uploadLength === undefined ? {} : { 'upload-length': String(uploadLength) }),
      },
    });
    // 409: the hub has fewer bytes than asked for (it went back to its last fsync): continue from there.
    if (patched.status !== 204 && patched.status !== 409)
      throw new HubError(patched.status, `upload refused: ${hubMessage(patched.text)}`);
    const at = Number(patched.headers['upload-offset']);
    if (!Number.isSafeInteger(at)) throw new Error('the hub did not say how much of the package it has');
    if (patched.status === 409)
      this.failed(
        'warn',
        `Upload ${uploadId}`,
        new Error(`the gateway sent from byte ${offset}, the hub has ${at}: continuing from the hub’s offset`),
        'upload_offset_mismatch',
      );
    return at;
  }

  private uploadMetadata(item: OutboxImage, uploadId: string): string {
    return encodeUploadMetadata({
      id: uploadId,
      sop: item.sopInstanceUid,
      accession: item.accessionNumber,
      priority: item.priority,
      waited: Math.max(0, Math.round((Date.now() - item.receivedAt) / 1000)),
    });
  }

  /**
   * Sends one package, from the hub's offset. Its outcome is awaited apart (confirm), so the link carries the next
   * package while the hub opens and stores this one.
   */
  private async send(item: OutboxImage): Promise<void> {
    const { outbox } = this.options;
    const abort = new AbortController();
    this.current = { item, abort };
    const uploadId = outbox.uploadFor(item);
    const prepared = this.prepared?.item === item && this.prepared.uploadId === uploadId ? this.prepared : undefined;
    this.prepared = undefined;
    const offset =
      (await prepared?.offset) ?? (await this.createUpload(item, uploadId, item.packedBytes!, abort.signal));
    await this.sendFrom(item, uploadId, offset, abort.signal, false);
  }

  /**
   * Sends a sealed package's bytes from `offset` to its end (the first PATCH telling its length, if `tellLength`),
   * then asks for its outcome apart.
   */
  private async sendFrom(
    item: OutboxImage,
    uploadId: string,
    offset: number,
    signal: AbortSignal,
    tellLength: boolean,
  ): Promise<void> {
    const { outbox } = this.options;
    const length = item.packedBytes!;
    for (let first = true; offset < length || (first && tellLength); first = false) {
      outbox.progress(item, offset, 0);
      const body = this.paced(
        createReadStream(item.packageFile!, { start: offset, highWaterMark: 64 * 1024 }),
        item,
        offset,
      );
      // Its last bytes are on their way: the next package's upload is created meanwhile, not after the answer.
      body.once('end', () => this.prepareNext(item));
      offset = await this.patch(uploadId, offset, body, length - offset, signal, tellLength ? length : undefined);
    }
    outbox.uploaded(item);
    this.confirm(item);
  }

  /** Creates the upload of the package to send after `current`, so that it can start as soon as `current` ends. */
  private prepareNext(current: OutboxImage): void {
    const next = this.options.outbox.nextToSend(current);
    if (!next || next.packedBytes === undefined || this.stopped) return;
    try {
      const uploadId = this.options.outbox.uploadFor(next);
      const offset = this.createUpload(next, uploadId, next.packedBytes, this.stopping.signal).catch(() => undefined);
      this.prepared = { item: next, uploadId, offset };
    } catch {
      // Not journalled (disk full?): the upload is created when its turn comes, as usual.
    }
  }

  /** Asks the hub, until it answers, whether the PACS holds an uploaded image or the hub refused its package. */
  private confirm(item: OutboxImage): void {
    if (this.confirming.has(item.sopInstanceUid)) return;
    this.confirming.add(item.sopInstanceUid);
    const path = `${UPLOADS_PATH}/${item.uploadId!}`;
    const run = async () => {
      let backoff = 1000;
      while (!this.stopped) {
        try {
          // The hub answers as soon as it knows, or after 10 s (inside the connection's 15 s silence limit).
          const answer = await this.options.connection.exchange('GET', `${path}?wait=10`, {
            signal: this.stopping.signal,
          });
          if (answer.status !== 200) throw new HubError(answer.status, hubMessage(answer.text));
          const status = JSON.parse(answer.text) as UploadStatus;
          // Superseded: an upload of this image that was left is answered that the image is in the PACS.
          if (status.state === 'stored' || status.state === 'superseded') {
            this.lastFailure = undefined;
            this.options.log('info', `${item.sopInstanceUid} is in the PACS (${item.packedBytes} bytes sent)`);
            return this.options.outbox.stored(item);
          }
          if (status.state === 'rejected') {
            // The hub opens every package and checks it: a refusal is its decryption or an integrity check failing,
            // unless the PACS refused the restored image (transfer-intake.ts says so in the message).
            const pacs = /^The PACS refused/.test(status.message);
            this.failed(
              'warn',
              `The hub refused the package of ${item.sopInstanceUid}`,
              new Error(status.message),
              pacs ? 'pacs_refused' : 'decrypt_auth',
            );
            return this.options.outbox.rejected(item, status.message);
          }
          // The hub does not have the whole package after all (restored from a backup?): send it again.
          if (status.state === 'receiving') return this.options.outbox.sendAgain(item);
          backoff = 1000;
        } catch (error) {
          if (this.stopped) return;
          this.lastFailure = classifyLinkError(error);
          this.lastFailure.message = `Could not learn what became of ${item.sopInstanceUid}: ${this.lastFailure.message}`;
          await delay(backoff, undefined, { signal: this.stopping.signal }).catch(() => undefined);
          backoff = Math.min(backoff * 2, this.options.maxRetryMs ?? 30_000);
        }
      }
    };
    const done: Promise<void> = run().finally(() => {
      this.confirming.delete(item.sopInstanceUid);
      this.confirmations.delete(done);
    });
    this.confirmations.add(done);
  }

  /** A PATCH body: the package's bytes from `start`, paced; a failure to read them fails the body. */
  private paced(source: Readable, item: OutboxImage, start: number): Readable {
    const body = source.pipe(this.pace(item, start));
    source.once('error', (error) => body.destroy(error));
    return body;
  }

  /** Paces the bytes of a PATCH to the cap in force (checked as it goes) and counts them for progress. */
  private pace(item: OutboxImage, start: number): Transform {
    let sent = 0;
    let allowance = 0;
    let last = Date.now();
    const burst = 32 * 1024;
    return new Transform({
      highWaterMark: 64 * 1024,
      transform: (chunk: Buffer, _encoding, done: TransformCallback) => {
        const push = () => {
          this.count(chunk.length);
          sent += chunk.length;
          this.options.outbox.progress(item, start, sent);
          done(null, chunk);
        };
        const cap = this.capNow();
        if (cap === null) return push();
        const wait = () => {
          const now = Date.now();
          allowance = Math.min(burst, allowance + ((now - last) / 1000) * (cap / 8));
          last = now;
          if (allowance >= chunk.length || allowance >= burst) {
            allowance -= chunk.length;
            return push();
          }
          setTimeout(wait, Math.max(5, ((Math.min(chunk.length, burst) - allowance) / (cap / 8)) * 1000));
        };
        wait();
      },
    });
  }

  capNow(): number | null {
    const now = new Date();
    return capAt(this.options.cap, now.getHours() * 60 + now.getMinutes());
  }

  private count(bytes: number): void {
    const second = Math.floor(Date.now() / 1000);
    this.sentPerSecond.set(second, (this.sentPerSecond.get(second) ?? 0) + bytes);
    this.totalSentBytes += bytes;
    if (this.sentPerSecond.size > RATE_WINDOW_S)
      for (const s of this.sentPerSecond.keys()) if (s < second - RATE_WINDOW_S) this.sentPerSecond.delete(s);
  }

  /** Bytes per second while sending, over the last ten minutes (seconds with nothing to send do not count). */
  sendRate(): number {
    const since = Math.floor(Date.now() / 1000) - RATE_WINDOW_S;
    let bytes = 0;
    let seconds = 0;
    for (const [s, b] of this.sentPerSecond) {
      if (s < since) continue;
      bytes += b;
      seconds += 1;
    }
    return seconds === 0 ? 0 : bytes / seconds;
  }

  /** What the outbox holds, for the hub's dashboard and the gateway's own page and metrics. */
  outboxReport(): OutboxReport {
    const waiting = this.options.outbox.waiting();
    const now = Date.now();
    const bytes = waiting.reduce(
      (sum, i) =>
        sum +
        (i.packedBytes === undefined ? Math.round(i.originalBytes / ASSUMED_RATIO) : i.packedBytes - i.acknowledged),
      0,
    );
    return {
      images: waiting.length,
      bytes,
      oldestWaitingSeconds: Math.max(0, ...waiting.map((i) => Math.round((now - i.receivedAt) / 1000))),
      sendBytesPerSecond: Math.round(this.sendRate()),
      capBitsPerSecond: this.capNow(),
      damaged: this.options.outbox.damagedCount(),
    };
  }

  private async report(): Promise<void> {
    if (this.stopped || !this.options.online()) return;
    try {
      await this.options.connection.post(OUTBOX_PATH, this.outboxReport());
    } catch {
      // The next report will do: the dashboard shows when the last one came.
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.stopping.abort();
    clearInterval(this.reporter);
    this.current?.abort.abort();
    this.wakeSealer?.();
    this.wakeSender?.();
    await Promise.allSettled([...this.loops, ...this.confirmations]);
    await this.thread.close();
  }
}
