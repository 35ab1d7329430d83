import {
  closeSync,
  createWriteStream,
  fsyncSync,
  mkdirSync,
  openSync,
  readSync,
  renameSync,
  rmSync,
  statfsSync,
  type WriteStream,
} from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import dcmjs from 'dcmjs';
import { datasetShape, type DatasetShape } from '../dicom/dataset-completeness.js';
import { part10File } from '../dicom/part10.js';
import { fsyncPath } from '../durable.js';
import { appendLineDurably, readLines } from './jsonl-journal.js';

/** What the gateway knows of an image it holds, written to received.jsonl once the image is durable. */
export interface ReceivedImage {
  sopInstanceUid: string;
  sopClassUid: string;
  transferSyntaxUid: string;
  accessionNumber: string;
  patientId: string;
  studyInstanceUid: string;
  bytes: number;
  receivedAt: string;
  file: string;
}

const UID = /^[0-9]+(\.[0-9]+)*$/;
const HEADER_BYTES = 256 * 1024;
const IMPLICIT_VR_LITTLE_ENDIAN = '1.2.840.10008.1.2';
/** C-STORE failure statuses (PS3.4 B.2.3): the dataset is not what the command says, or cannot be understood. */
export const STORE_STATUS = { dataSetDoesNotMatchSopClass: 0xa900, cannotUnderstand: 0xc000 } as const;

/** An image received whole but refused: not indexed, its file discarded; the modality keeps its copy. */
export class ImageRefused extends Error {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

/**
 * Images received from the modality, streamed to disk (never held whole in memory: a tomosynthesis object is
 * 1.8 GB) as Part 10 files. An image counts as received only once its bytes and its index line are fsynced.
 */
export class ImageStore {
  readonly incoming: string;
  readonly images: string;
  private readonly index: string;
  /** SOP instance UIDs held, by accession number; and by Patient ID for images without an accession number. */
  private readonly byAccession = new Map<string, Set<string>>();
  private readonly unaccessionedByPatient = new Map<string, Set<string>>();
  /** The latest images received, newest last (for the trailer page). */
  private readonly latest: ReceivedImage[] = [];
  /** Called with each image once it is durable (the outbox takes it from here). */
  onRecord: ((image: ReceivedImage) => void) | undefined;

  constructor(
    dataDir: string,
    /** Refuse new images below this much free space, so the modality keeps its copy. */
    readonly minFreeBytes: number,
    /** received.jsonl as already read (the gateway reads it once for the outbox too). */
    index: readonly ReceivedImage[] = ImageStore.readIndex(dataDir),
  ) {
    this.incoming = join(dataDir, 'incoming');
    this.images = join(dataDir, 'images');
    mkdirSync(this.incoming, { recursive: true, mode: 0o700 });
    mkdirSync(this.images, { recursive: true, mode: 0o700 });
    this.index = join(dataDir, 'received.jsonl');
    // Files still in incoming/ were never acknowledged (a crash mid-transfer): the modality still has them.
    rmSync(this.incoming, { recursive: true, force: true });
    mkdirSync(this.incoming, { recursive: true, mode: 0o700 });
    for (const image of index) {
      this.remember(image);
      this.count(image);
    }
  }

  /** Every image received.jsonl records (lines too damaged to use are skipped). */
  static readIndex(dataDir: string): ReceivedImage[] {
    const images: ReceivedImage[] = [];
    for (const value of readLines(join(dataDir, 'received.jsonl')).values) {
      const image = value as Partial<ReceivedImage> | null;
      if (typeof image?.sopInstanceUid !== 'string' || typeof image.receivedAt !== 'string') continue;
      images.push({
        ...(image as ReceivedImage),
        accessionNumber: typeof image.accessionNumber === 'string' ? image.accessionNumber : '',
        patientId: typeof image.patientId === 'string' ? image.patientId : '',
      });
    }
    return images;
  }

  freeBytes(): number {
    const s = statfsSync(this.images);
    return Number(s.bavail) * Number(s.bsize);
  }

  hasRoom(): boolean {
    return this.freeBytes() >= this.minFreeBytes;
  }

  /** A stream for one image's dataset bytes, behind a Part 10 header; `finish` durably files it. */
  begin(sopClassUid: string, sopInstanceUid: string, transferSyntaxUid: string): IncomingImage {
    if (!UID.test(sopInstanceUid) || !UID.test(sopClassUid)) throw new Error(`Not a valid UID: ${sopInstanceUid}`);
    return new IncomingImage(this, sopClassUid, sopInstanceUid, transferSyntaxUid);
  }

  /** Records a durable image in the index (append, fsync) and returns what was recorded. */
  record(image: ReceivedImage): ReceivedImage {
    appendLineDurably(this.index, image);
    this.count(image);
    this.remember(image);
    this.onRecord?.(image);
    return image;
  }

  /** The images received most recently, newest first. */
  recent(limit = 50): ReceivedImage[] {
    return this.latest.slice(-limit).reverse();
  }

  private remember(image: ReceivedImage): void {
    this.latest.push(image);
    if (this.latest.length > 500) this.latest.splice(0, this.latest.length - 500);
  }

  /**
   * How many different images the gateway holds for an appointment: those with its accession number, and those that
   * came without an accession number but with the participant's Patient ID (NHS number).
   */
  countFor(accessionNumber: string, patientId: string): number {
    const byAccession = accessionNumber ? (this.byAccession.get(accessionNumber)?.size ?? 0) : 0;
    const byPatient = patientId ? (this.unaccessionedByPatient.get(patientId)?.size ?? 0) : 0;
    return byAccession + byPatient;
  }

  private count(image: Pick<ReceivedImage, 'sopInstanceUid' | 'accessionNumber' | 'patientId'>): void {
    const [map, key] = image.accessionNumber
      ? [this.byAccession, image.accessionNumber]
      : [this.unaccessionedByPatient, image.patientId];
    if (!key) return;
    const uids = map.get(key) ?? new Set<string>();
    uids.add(image.sopInstanceUid);
    map.set(key, uids);
  }
}

export class IncomingImage {
  readonly partPath: string;
  readonly stream: WriteStream;
  private bytes = 0;
  /** Where the dataset starts in the file, after the Part 10 header. */
  private readonly datasetStart: number;
  private discarded = false;
  failed: Error | undefined;

  constructor(
    private readonly store: ImageStore,
    readonly sopClassUid: string,
    readonly sopInstanceUid: string,
    readonly transferSyntaxUid: string,
  ) {
    this.partPath = join(store.incoming, `${sopInstanceUid}.part`);
    this.stream = createWriteStream(this.partPath, { mode: 0o600 });
    this.stream.on('error', (error) => (this.failed ??= error));
    // The Part 10 header first; the dataset bytes follow as they arrive, in the transfer syntax they were sent in.
    const prefix = part10File({ sopClassUid, sopInstanceUid, transferSyntaxUid });
    this.stream.write(prefix);
    this.bytes += prefix.length;
    this.datasetStart = prefix.length;
  }

  write(chunk: Buffer): boolean {
    this.bytes += chunk.length;
    return this.stream.write(chunk);
  }

  /**
   * Waits for the bytes to reach the file, fsyncs it, checks it is a whole image of the instance the command named
   * (else ImageRefused), moves it into images/ and indexes it.
   */
  async finish(): Promise<ReceivedImage> {
    if (!this.stream.writableEnded) this.stream.end();
    await finished(this.stream);
    if (this.failed) throw this.failed;
    if (this.discarded) throw new Error('the image was discarded (the association ended)');
    const fd = openSync(this.partPath, 'r+');
    let header: Buffer;
    let shape: DatasetShape;
    try {
      fsyncSync(fd);
      header = Buffer.alloc(Math.min(HEADER_BYTES, this.bytes));
      readSync(fd, header, 0, header.length, 0);
      shape = datasetShape(fd, this.datasetStart, this.bytes, this.transferSyntaxUid !== IMPLICIT_VR_LITTLE_ENDIAN);
    } finally {
      closeSync(fd);
    }
    if (shape.incomplete)
      throw new ImageRefused(`the dataset is not whole (${shape.incomplete})`, STORE_STATUS.cannotUnderstand);
    if (!shape.hasPixelData) throw new ImageRefused('it has no Pixel Data (7FE0,0010)', STORE_STATUS.cannotUnderstand);
    const ds = this.readHeader(header);
    const text = (v: unknown) => (typeof v === 'string' ? v.trim() : '');
    this.checkPlausible(text(ds.SOPClassUID), text(ds.SOPInstanceUID), text(ds.PatientID));
    const file = join(this.store.images, `${this.sopInstanceUid}.dcm`);
    renameSync(this.partPath, file);
    fsyncPath(this.store.images);
    return this.store.record({
      sopInstanceUid: this.sopInstanceUid,
      sopClassUid: this.sopClassUid,
      transferSyntaxUid: this.transferSyntaxUid,
      accessionNumber: text(ds.AccessionNumber),
      patientId: text(ds.PatientID),
      studyInstanceUid: text(ds.StudyInstanceUID),
      bytes: this.bytes,
      receivedAt: new Date().toISOString(),
      file,
    });
  }

  private readHeader(header: Buffer): Record<string, unknown> {
    try {
      const parsed = dcmjs.data.DicomMessage.readFile(Uint8Array.from(header).buffer, {
        untilTag: '7FE00010',
        ignoreErrors: true,
      });
      return dcmjs.data.DicomMetaDictionary.naturalizeDataset(parsed.dict);
    } catch (error) {
      throw new ImageRefused(`the dataset cannot be read (${(error as Error).message})`, STORE_STATUS.cannotUnderstand);
    }
  }

  /** The dataset must be the instance the C-STORE command named, of its SOP class, and say whose image it is. */
  private checkPlausible(sopClassUid: string, sopInstanceUid: string, patientId: string): void {
    if (sopInstanceUid !== this.sopInstanceUid)
      throw new ImageRefused(
        `its SOP Instance UID (0008,0018) is "${sopInstanceUid.slice(0, 64)}", not the ${this.sopInstanceUid} of the C-STORE command`,
        STORE_STATUS.cannotUnderstand,
      );
    if (sopClassUid !== this.sopClassUid)
      throw new ImageRefused(
        `its SOP Class UID (0008,0016) is "${sopClassUid.slice(0, 64)}", not the ${this.sopClassUid} of the C-STORE command`,
        STORE_STATUS.dataSetDoesNotMatchSopClass,
      );
    if (!patientId) throw new ImageRefused('it has no Patient ID (0010,0020)', STORE_STATUS.cannotUnderstand);
  }

  discard(): void {
    this.discarded = true;
    this.stream.destroy();
    rmSync(this.partPath, { force: true });
  }
}

/** A sink for the bytes of an image the gateway refuses (it must still read them off the association). */
export function discardingStream(): Writable {
  return new Writable({ write: (_chunk, _encoding, done) => done() });
}
