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
  writeSync,
  type WriteStream,
} from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import dcmjs from 'dcmjs';
import { part10File } from '../dicom/part10.js';

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

/**
 * Images received from the modality, streamed to disk (never held whole in memory: a tomosynthesis object is
 * 1.8 GB) as Part 10 files. An image counts as received only once its bytes and its index line are fsynced.
 */
export class ImageStore {
  readonly incoming: string;
  readonly images: string;
  private readonly index: string;

  constructor(
    dataDir: string,
    /** Refuse new images below this much free space, so the modality keeps its copy. */
    readonly minFreeBytes: number,
  ) {
    this.incoming = join(dataDir, 'incoming');
    this.images = join(dataDir, 'images');
    mkdirSync(this.incoming, { recursive: true, mode: 0o700 });
    mkdirSync(this.images, { recursive: true, mode: 0o700 });
    this.index = join(dataDir, 'received.jsonl');
    // Files still in incoming/ were never acknowledged (a crash mid-transfer): the modality still has them.
    rmSync(this.incoming, { recursive: true, force: true });
    mkdirSync(this.incoming, { recursive: true, mode: 0o700 });
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
    const fd = openSync(this.index, 'a', 0o600);
    try {
      const line = Buffer.from(JSON.stringify(image) + '\n');
      let written = 0;
      while (written < line.length) written += writeSync(fd, line, written);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    return image;
  }
}

export class IncomingImage {
  readonly partPath: string;
  readonly stream: WriteStream;
  private bytes = 0;
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
  }

  write(chunk: Buffer): boolean {
    this.bytes += chunk.length;
    return this.stream.write(chunk);
  }

  /** Waits for the bytes to reach the file, fsyncs it, moves it into images/ and indexes it. */
  async finish(): Promise<ReceivedImage> {
    await new Promise<void>((resolve) => (this.stream.writableFinished ? resolve() : this.stream.end(resolve)));
    if (this.failed) throw this.failed;
    const fd = openSync(this.partPath, 'r+');
    let header: Buffer;
    try {
      fsyncSync(fd);
      header = Buffer.alloc(Math.min(HEADER_BYTES, this.bytes));
      readSync(fd, header, 0, header.length, 0);
    } finally {
      closeSync(fd);
    }
    const parsed = dcmjs.data.DicomMessage.readFile(Uint8Array.from(header).buffer, {
      untilTag: '7FE00010',
      ignoreErrors: true,
    });
    const ds = dcmjs.data.DicomMetaDictionary.naturalizeDataset(parsed.dict);
    const text = (v: unknown) => (typeof v === 'string' ? v : '');
    const file = join(this.store.images, `${this.sopInstanceUid}.dcm`);
    renameSync(this.partPath, file);
    const dirFd = openSync(this.store.images, 'r');
    fsyncSync(dirFd);
    closeSync(dirFd);
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

  discard(): void {
    this.stream.destroy();
    rmSync(this.partPath, { force: true });
  }
}

/** A sink for the bytes of an image the gateway refuses (it must still read them off the association). */
export function discardingStream(): Writable {
  return new Writable({ write: (_chunk, _encoding, done) => done() });
}
