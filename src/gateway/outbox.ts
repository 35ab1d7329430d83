import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { sendOrder, type TransferPriority } from '../pathway/transfer-priority.js';
import type { ReceivedImage } from './image-store.js';
import { appendLineDurably, readLines } from './jsonl-journal.js';

/**
 * What happens to an image on the gateway, as the trailer page shows it: received from the modality, sealed into
 * a package only the hub can open, sending (with progress), whole at the hub, in the PACS (the gateway's copy is
 * then deleted), or damaged (the hub refused its package twice: the modality must send it again).
 */
export const IMAGE_STATES = ['received', 'sealed', 'sending', 'at_hub', 'in_pacs', 'damaged'] as const;
export type ImageState = (typeof IMAGE_STATES)[number];

export interface OutboxImage {
  sopInstanceUid: string;
  accessionNumber: string;
  patientId: string;
  priority: TransferPriority;
  /** When it arrived, and when its exam's first image arrived (ms, this box's clock). */
  receivedAt: number;
  examReceivedAt: number;
  sequence: number;
  originalBytes: number;
  /** The image as received (deleted once sealed). */
  imageFile: string;
  state: ImageState;
  packageId?: string;
  packageFile?: string;
  packedBytes?: number;
  codec?: string;
  /** The upload at the hub this package is going to (a rejected package is sent again as a new upload). */
  uploadId?: string;
  /** Bytes of the package the hub has acknowledged, and bytes sent in the request in hand (progress). */
  acknowledged: number;
  sent: number;
  rejections: number;
  message?: string;
  storedAt?: number;
}

type JournalEvent =
  | { sop: string; event: 'received' }
  | { sop: string; event: 'sealed'; packageId: string; packedBytes: number; codec: string }
  | { sop: string; event: 'uploading'; uploadId: string }
  | { sop: string; event: 'uploaded'; uploadId: string }
  | { sop: string; event: 'stored'; uploadId: string }
  | { sop: string; event: 'rejected'; uploadId: string; message: string }
  | { sop: string; event: 'damaged'; message: string };

/** A package is sent again once after the hub rejects it; a second rejection means it is damaged on this box. */
const ATTEMPTS = 2;

/**
 * The gateway's outbox: every image received and not yet confirmed in the PACS, in the order it is to be sent
 * (pathway/transfer-priority.ts), with its state journalled (outbox.jsonl, fsynced) so a power cut or kill -9
 * loses nothing and repeats little. Sealed packages live in outbox/; the image as received is deleted once its
 * package is durable, and the package once the hub confirms the PACS holds the image.
 */
export class Outbox {
  readonly dir: string;
  private readonly journal: string;
  private readonly items = new Map<string, OutboxImage>();
  /** Images confirmed in the PACS, newest last (for the trailer page). */
  private readonly done: OutboxImage[] = [];
  private sequence = 0;
  /** When each exam's first image arrived, by accession number. */
  private readonly examStart = new Map<string, number>();
  /** 'changed' on any state change; 'stored' (sop) when the PACS holds an image. */
  readonly events = new EventEmitter();

  constructor(
    dataDir: string,
    receivedIndex: readonly ReceivedImage[],
    private readonly priorityOf: (accessionNumber: string) => TransferPriority,
    private readonly log: (level: 'info' | 'warn' | 'error', message: string) => void,
  ) {
    this.dir = join(dataDir, 'outbox');
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    this.journal = join(dataDir, 'outbox.jsonl');
    // A package being sealed when the box stopped is incomplete: its image is sealed again.
    for (const name of readdirSync(this.dir)) if (name.endsWith('.part')) rmSync(join(this.dir, name), { force: true });
    for (const image of receivedIndex) this.admit(image);
    for (const value of readLines(this.journal).values) this.replay(value as JournalEvent);
    for (const item of this.items.values()) this.tidy(item);
    this.events.setMaxListeners(0);
  }

  /**
   * A new image from the modality. The same instance received again while waiting is the same image: kept once.
   * One received again after it was found damaged starts afresh (the machine sent it again, as the page asked).
   */
  add(image: ReceivedImage): void {
    const existing = this.items.get(image.sopInstanceUid);
    if (existing?.state === 'damaged') {
      existing.imageFile = image.file;
      return this.record(existing, { sop: image.sopInstanceUid, event: 'received' });
    }
    if (existing && existing.state !== 'received') rmSync(image.file, { force: true });
    if (existing) return;
    this.admit(image);
    this.changed();
  }

  private admit(image: ReceivedImage): void {
    const receivedAt = Date.parse(image.receivedAt);
    const examStart = image.accessionNumber ? this.examStart.get(image.accessionNumber) : undefined;
    if (image.accessionNumber && examStart === undefined) this.examStart.set(image.accessionNumber, receivedAt);
    this.items.set(image.sopInstanceUid, {
      sopInstanceUid: image.sopInstanceUid,
      accessionNumber: image.accessionNumber,
      patientId: image.patientId,
      priority: this.priorityOf(image.accessionNumber),
      receivedAt,
      examReceivedAt: Math.min(examStart ?? receivedAt, receivedAt),
      sequence: this.sequence++,
      originalBytes: image.bytes,
      imageFile: image.file,
      state: 'received',
      acknowledged: 0,
      sent: 0,
      rejections: 0,
    });
  }

  private replay(event: JournalEvent): void {
    const item = this.items.get(event.sop);
    if (!item) return;
    this.apply(item, event);
  }

  private apply(item: OutboxImage, event: JournalEvent): void {
    switch (event.event) {
      case 'received':
        Object.assign(item, {
          state: 'received',
          packageId: undefined,
          packageFile: undefined,
          packedBytes: undefined,
          uploadId: undefined,
          acknowledged: 0,
          sent: 0,
          rejections: 0,
          message: undefined,
        });
        break;
      case 'sealed':
        Object.assign(item, {
          state: 'sealed',
          packageId: event.packageId,
          packageFile: this.packagePath(event.packageId),
          packedBytes: event.packedBytes,
          codec: event.codec,
          uploadId: undefined,
          acknowledged: 0,
        });
        break;
      case 'uploading':
        item.uploadId = event.uploadId;
        break;
      case 'uploaded':
        item.state = 'at_hub';
        item.acknowledged = item.packedBytes ?? 0;
        break;
      case 'stored':
        item.state = 'in_pacs';
        item.storedAt = Date.now();
        this.items.delete(item.sopInstanceUid);
        this.done.push(item);
        if (this.done.length > 500) this.done.splice(0, this.done.length - 500);
        break;
      case 'rejected':
        item.rejections += 1;
        item.message = event.message;
        item.state = 'sealed';
        item.uploadId = undefined;
        item.acknowledged = 0;
        break;
      case 'damaged':
        item.state = 'damaged';
        item.message = event.message;
        break;
    }
  }

  /** After a restart: files that the journal says are finished with are removed; lost images are damaged. */
  private tidy(item: OutboxImage): void {
    if (item.state !== 'received') rmSync(item.imageFile, { force: true });
    if (item.state === 'received' && !existsSync(item.imageFile))
      this.record(item, { sop: item.sopInstanceUid, event: 'damaged', message: 'The received image file is missing' });
    if (item.state === 'damaged' && item.packageFile) rmSync(item.packageFile, { force: true });
    if ((item.state === 'sealed' || item.state === 'at_hub') && item.packageFile && !existsSync(item.packageFile))
      this.record(item, { sop: item.sopInstanceUid, event: 'damaged', message: 'The sealed package file is missing' });
  }

  packagePath(packageId: string): string {
    return join(this.dir, `${packageId}.pkg`);
  }

  private record(item: OutboxImage, event: JournalEvent): void {
    appendLineDurably(this.journal, event);
    this.apply(item, event);
    this.changed();
  }

  private changed(): void {
    this.events.emit('changed');
  }

  /** The next image to seal: received, in sending order. */
  nextToSeal(): OutboxImage | undefined {
    return this.ordered().find((i) => i.state === 'received');
  }

  /**
   * The next package to send, in sending order (packages whole at the hub wait for its answer, not the link);
   * with `after`, the next but that one.
   */
  nextToSend(after?: OutboxImage): OutboxImage | undefined {
    return this.ordered().find((i) => (i.state === 'sealed' || i.state === 'sending') && i !== after);
  }

  /** The hub has less of an uploaded package than it acknowledged: it goes out again, from the hub's offset. */
  sendAgain(item: OutboxImage): void {
    item.state = 'sealed';
    this.changed();
  }

  private ordered(): OutboxImage[] {
    return [...this.items.values()].sort(sendOrder);
  }

  newPackageId(): string {
    return randomUUID();
  }

  /** The package is durable in outbox/: the image as received is deleted. */
  sealed(item: OutboxImage, packageId: string, packedBytes: number, codec: string): void {
    this.record(item, { sop: item.sopInstanceUid, event: 'sealed', packageId, packedBytes, codec });
    rmSync(item.imageFile, { force: true });
  }

  /** The upload a package goes to: the package id first, a new id after a rejection. */
  uploadFor(item: OutboxImage): string {
    if (!item.uploadId) {
      const uploadId = item.rejections === 0 && item.packageId ? item.packageId : randomUUID();
      this.record(item, { sop: item.sopInstanceUid, event: 'uploading', uploadId });
    }
    return item.uploadId!;
  }

  /** Bytes acknowledged and sent so far (in memory only: a restart asks the hub). */
  progress(item: OutboxImage, acknowledged: number, sent: number): void {
    item.acknowledged = acknowledged;
    item.sent = sent;
    if (item.state === 'sealed') {
      item.state = 'sending';
      this.changed();
    }
  }

  uploaded(item: OutboxImage): void {
    this.record(item, { sop: item.sopInstanceUid, event: 'uploaded', uploadId: item.uploadId! });
  }

  /** The hub says the PACS holds the image: the package is deleted. */
  stored(item: OutboxImage): void {
    this.record(item, { sop: item.sopInstanceUid, event: 'stored', uploadId: item.uploadId! });
    if (item.packageFile) rmSync(item.packageFile, { force: true });
    this.events.emit('stored', item.sopInstanceUid);
  }

  /** The hub refused the package: sent again as a new upload, or, the second time, the image is damaged. */
  rejected(item: OutboxImage, message: string): void {
    this.record(item, { sop: item.sopInstanceUid, event: 'rejected', uploadId: item.uploadId!, message });
    this.log('warn', `The hub refused the package of ${item.sopInstanceUid}: ${message}`);
    if (item.rejections >= ATTEMPTS) {
      this.record(item, {
        sop: item.sopInstanceUid,
        event: 'damaged',
        message: `The hub refused its package ${ATTEMPTS} times (${message}): send the image again from the machine`,
      });
      if (item.packageFile) rmSync(item.packageFile, { force: true });
    }
  }

  /** The image could not be sealed (unreadable file): nothing more the gateway can do with it. */
  damaged(item: OutboxImage, message: string): void {
    this.record(item, { sop: item.sopInstanceUid, event: 'damaged', message });
  }

  /** Where an image stands, by SOP Instance UID (undefined: never received here, or long since sent). */
  stateOf(sopInstanceUid: string): ImageState | undefined {
    return this.items.get(sopInstanceUid)?.state ?? this.done.find((i) => i.sopInstanceUid === sopInstanceUid)?.state;
  }

  /** Every image waiting, in sending order, then the latest confirmed in the PACS. */
  all(): OutboxImage[] {
    return [...this.ordered(), ...this.done.slice().reverse()];
  }

  /** The images of one exam (accession number, or Patient ID for images without one). */
  ofExam(accessionNumber: string, patientId: string): OutboxImage[] {
    return this.all().filter((i) =>
      i.accessionNumber ? i.accessionNumber === accessionNumber : i.patientId === patientId,
    );
  }

  waiting(): OutboxImage[] {
    return this.ordered().filter((i) => i.state !== 'damaged');
  }

  damagedCount(): number {
    return [...this.items.values()].filter((i) => i.state === 'damaged').length;
  }
}
