import { createHash, type Hash } from 'node:crypto';
import { open, type FileHandle } from 'node:fs/promises';
import { endianness } from 'node:os';
import type { Readable, Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import dcmjs from 'dcmjs';
import dcmjsCodecs from 'dcmjs-codecs';
import { z } from 'zod';
import { locatePixelData } from '../dicom/dataset-completeness.js';
import { PackageRefused } from './sealed-package.js';

/**
 * Image packages (docs/image-package.md): the inner layer of what a gateway sends the hub, one DICOM Part 10 file
 * packed losslessly and restored bit for bit. Native (uncompressed, Little Endian) monochrome pixel data is
 * compressed with JPEG-LS (CharLS, through dcmjs-codecs), each frame as stripes of rows, each stripe its own
 * codestream; the bytes before and after the Pixel Data value travel raw. Anything else travels whole and raw
 * (codec 'none'). Both ways stream: packed bytes leave a stripe at a time (a frame is read whole), and a stripe is
 * restored as soon as it has arrived, so a 1.8 GB tomosynthesis object passes in bounded memory and the upload and
 * the restore need not wait for a whole frame. The sealed package (sealed-package.ts) then encrypts the result.
 */
export const IMAGE_MAGIC = Buffer.from('SHIMG1\n\0', 'latin1');
export const IMAGE_PACKAGE_VERSION = 2;
/** Rows in each JPEG-LS stripe of a frame unless PackOptions.stripeRows says otherwise (the last may have fewer). */
export const DEFAULT_STRIPE_ROWS = 256;

const { NativeCodecs, Context } = dcmjsCodecs;
const IMPLICIT_VR_LITTLE_ENDIAN = '1.2.840.10008.1.2';
const EXPLICIT_VR_LITTLE_ENDIAN = '1.2.840.10008.1.2.1';
/** Explicit VRs with a reserved 2 bytes and a 4-byte length (PS3.5 7.1.2); the others have a 2-byte length. */
const LONG_VRS = new Set(['OB', 'OD', 'OF', 'OL', 'OV', 'OW', 'SQ', 'SV', 'UC', 'UN', 'UR', 'UT', 'UV']);
/** Raw bytes (before and after the pixels, or a whole file with codec 'none') are read and written in these. */
const CHUNK_BYTES = 1024 * 1024;
/** Where the file meta information and identifying attributes are looked for when there is no native pixel data. */
const HEAD_BYTES = 256 * 1024;
/** The attributes before native Pixel Data are parsed in one piece up to this size (else codec 'none'). */
const MAX_ATTRIBUTE_BYTES = 64 * 1024 * 1024;
/** A frame is read whole (two at a time) to choose its bit depth when packing: larger ones travel raw. */
const MAX_FRAME_BYTES = 256 * 1024 * 1024;
const MAX_HEADER_BYTES = 1024 * 1024;
const MAX_TRAILER_BYTES = 64 * 1024;
const LITTLE_ENDIAN_HOST = endianness() === 'LE';

export type ImageCodec = 'jpeg-ls' | 'none';

/** What identifies the image, copied from the file into the package header for routing and logging. */
interface Identity {
  sopInstanceUid: string;
  sopClassUid: string;
  studyInstanceUid: string;
  accessionNumber: string;
  patientId: string;
  transferSyntaxUid: string;
}

export interface PackSummary extends Identity {
  originalBytes: number;
  originalSha256: string;
  /** hex SHA-256 of the Pixel Data value bytes as received (native syntaxes), else of the whole file */
  pixelSha256: string;
  codec: ImageCodec;
  /** Why the file travels raw, when codec is 'none'. */
  reason?: string;
  /** Frames packed with JPEG-LS, each as stripes of codestreams (0 with codec 'none'). */
  frames: number;
  /** Frames encoded at BitsAllocated because a word in them exceeded 2^BitsStored − 1 (overlay bits, signed values). */
  widenedFrames: number;
  /** Bytes of the image package (written by packImage, read by restoreImage). */
  packedBytes: number;
}

/** What restoreImage found: the package's description of the image, checked against the bytes restored. */
export type RestoreSummary = PackSummary;

export interface PackOptions {
  /**
   * true (the default): the sink is packImage's to finish. It is ended, and packImage resolves once it has emitted
   * 'finish'; if packing fails the sink is destroyed with the error. false: the sink is left open (more can be
   * written after the package), packImage resolves once the sink has accepted the package's last byte (the last
   * write's callback), and on failure the sink is left as it is for the caller to discard.
   */
  end?: boolean;
  /** 'none' packs the file raw whatever it holds; 'auto' (the default) uses JPEG-LS where it can. */
  codec?: 'auto' | 'none';
  /** Decode each stripe again after encoding it and refuse to pack if it differs (about halves the speed). */
  verify?: boolean;
  /**
   * Rows in each JPEG-LS stripe of a frame (default DEFAULT_STRIPE_ROWS; a positive integer, clamped to the image's
   * rows: more than that gives one stripe a frame). Fewer rows let bytes flow sooner, at some cost in compression.
   */
  stripeRows?: number;
}

export interface RestoreOptions {
  /**
   * true (the default): the sink is ended once the restored file has been checked, and restoreImage resolves once
   * it has emitted 'finish'; on any failure it is destroyed with the error (PackageRefused for a bad package).
   * false: the sink is left open and restoreImage resolves once the sink has accepted the last byte; on failure it
   * is left as it is. Either way bytes reach the sink before the whole-file check at the end: write to a temporary
   * file and keep it only if restoreImage resolves.
   */
  end?: boolean;
}

/** Identifying values are clipped to this many characters in the header (DICOM allows 64 at most). */
const MAX_TEXT = 256;
const uid = z.string().max(MAX_TEXT);
const count = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);
const sha256 = z.string().regex(/^[0-9a-f]{64}$/);
const headerSchema = z.object({
  version: z.literal(IMAGE_PACKAGE_VERSION),
  sopInstanceUid: uid,
  sopClassUid: uid,
  studyInstanceUid: uid,
  accessionNumber: z.string().max(MAX_TEXT),
  patientId: z.string().max(MAX_TEXT),
  transferSyntaxUid: uid,
  codec: z.enum(['jpeg-ls', 'none']),
  reason: z.string().max(1000).optional(),
  layout: z.object({
    prefixBytes: count,
    frames: count,
    frameBytes: count,
    rows: count,
    columns: count,
    stripeRows: count,
    bitsAllocated: count,
    encodedBitsPerSample: count,
    samplesPerPixel: count,
    suffixBytes: count,
  }),
});
const trailerSchema = z.object({
  originalBytes: count,
  originalSha256: sha256,
  pixelSha256: sha256,
  packedSha256: sha256,
});

/** The JSON header after the magic (docs/image-package.md). */
export type ImagePackageHeader = z.infer<typeof headerSchema>;
export type ImageLayout = ImagePackageHeader['layout'];
/** The JSON trailer at the end of a package. */
export type ImagePackageTrailer = z.infer<typeof trailerSchema>;

let codecsLoading: Promise<void> | undefined;

/** Loads CharLS's WebAssembly if it is not loaded (packImage and restoreImage call this themselves). */
export async function loadImageCodecs(): Promise<void> {
  if (NativeCodecs.isInitialized()) return;
  codecsLoading ??= NativeCodecs.initializeAsync().finally(() => (codecsLoading = undefined));
  return codecsLoading;
}

/**
 * Runs one codec call. dcmjs-codecs reports a CharLS failure (a damaged codestream, say) by throwing a JavaScript
 * error from inside the WebAssembly call, which unwinds it without restoring the module's stack pointer or freeing
 * its buffers: after some hundreds of failures the instance overwrites its own memory ("memory access out of
 * bounds"). So an instance that has failed once is dropped, and the next frame loads a fresh one (about 50 ms).
 */
function codecCall<T>(call: () => T): T {
  try {
    return call();
  } catch (error) {
    NativeCodecs.release();
    throw error;
  }
}

/**
 * Streams the Part 10 file at `path` into `sink` as an image package: a frame is read at a time, and each of its
 * stripes is written to the sink as soon as it is encoded. What happens to the sink at the end is options.end's
 * (default: ended, and awaited to 'finish'). Throws (plain Error) if options.stripeRows is not a positive integer,
 * the file is not a Part 10 file or cannot be read, changes while it is read, or (with options.verify) a stripe
 * does not decode back.
 */
export async function packImage(path: string, sink: Writable, options: PackOptions = {}): Promise<PackSummary> {
  const out = new SinkWriter(sink);
  try {
    const summary = await pack(path, out, options);
    await (options.end === false ? out.settled() : out.end());
    return summary;
  } catch (error) {
    if (options.end !== false) out.destroy(error);
    throw error;
  } finally {
    out.release();
  }
}

/**
 * Reads an image package from `source` and writes the original Part 10 file, bit for bit, to `sink`, a stripe at
 * a time (each as soon as it has arrived). Throws PackageRefused on anything malformed, a stripe that does not
 * decode to its layout or whose depth is not the rest of its frame's, a package cut short or with bytes after its
 * trailer, package bytes whose SHA-256 is not the trailer's, or a restored file whose length or SHA-256 (whole
 * file, pixel data) is not the trailer's; errors of the source itself are passed on as they are. The source is
 * read to its end, and destroyed on failure. What happens to the sink is options.end's (default: ended once the
 * restored file has been checked); bytes reach it before that check.
 */
export async function restoreImage(
  source: Readable,
  sink: Writable,
  options: RestoreOptions = {},
): Promise<RestoreSummary> {
  const out = new SinkWriter(sink);
  const reader = new ByteReader(source);
  try {
    const summary = await restore(reader, out);
    await (options.end === false ? out.settled() : out.end());
    return summary;
  } catch (error) {
    await reader.cancel();
    if (options.end !== false) out.destroy(error);
    throw error;
  } finally {
    out.release();
  }
}

/** How a file is to be packed: frame by frame in stripes with JPEG-LS, or whole and raw with the reason why. */
type Plan =
  | { codec: 'none'; reason: string; pixels?: { offset: number; length: number } }
  | {
      codec: 'jpeg-ls';
      pixelOffset: number;
      rows: number;
      columns: number;
      frames: number;
      bitsAllocated: number;
      encodedBitsPerSample: number;
      frameBytes: number;
      stripeRows: number;
    };

async function pack(path: string, out: SinkWriter, options: PackOptions): Promise<PackSummary> {
  const stripeRows = options.stripeRows ?? DEFAULT_STRIPE_ROWS;
  if (!Number.isSafeInteger(stripeRows) || stripeRows < 1)
    throw new Error(`stripeRows must be a positive integer, not ${String(stripeRows)}`);
  const file = await open(path, 'r');
  let reading: Promise<void> | undefined;
  try {
    const { size } = await file.stat();
    const { identity, plan } = await planFor(file, size, options, stripeRows);
    const layout: ImageLayout =
      plan.codec === 'none'
        ? {
            prefixBytes: size,
            frames: 0,
            frameBytes: 0,
            rows: 0,
            columns: 0,
            stripeRows: 0,
            bitsAllocated: 0,
            encodedBitsPerSample: 0,
            samplesPerPixel: 0,
            suffixBytes: 0,
          }
        : {
            prefixBytes: plan.pixelOffset,
            frames: plan.frames,
            frameBytes: plan.frameBytes,
            rows: plan.rows,
            columns: plan.columns,
            stripeRows: plan.stripeRows,
            bitsAllocated: plan.bitsAllocated,
            encodedBitsPerSample: plan.encodedBitsPerSample,
            samplesPerPixel: 1,
            suffixBytes: size - plan.pixelOffset - plan.frames * plan.frameBytes,
          };
    const header: ImagePackageHeader = {
      version: IMAGE_PACKAGE_VERSION,
      ...identity,
      codec: plan.codec,
      ...(plan.codec === 'none' ? { reason: plan.reason } : {}),
      layout,
    };
    const headerJson = Buffer.from(JSON.stringify(header));
    await out.write(Buffer.concat([IMAGE_MAGIC, uint32(headerJson.length), headerJson]));

    const fileHash = createHash('sha256');
    const pixelHash = createHash('sha256');
    let widenedFrames = 0;
    if (plan.codec === 'none') {
      // The pixel data value, if it was found, is hashed on its own as it passes.
      const pixels = plan.pixels;
      await copyRaw(file, 0, size, out, (chunk, at) => {
        fileHash.update(chunk);
        if (!pixels) return;
        const from = Math.max(at, pixels.offset);
        const to = Math.min(at + chunk.length, pixels.offset + pixels.length);
        if (from < to) pixelHash.update(chunk.subarray(from - at, to - at));
      });
    } else {
      await copyRaw(file, 0, plan.pixelOffset, out, (chunk) => fileHash.update(chunk));
      // Two frame buffers, taken in turns: the next frame is read while this one is encoded. They are hashed and
      // encoded, never handed to the sink. A frame is read whole because its bit depth is chosen from all its words;
      // then each stripe is encoded at that depth and written before the next is encoded.
      const rowBytes = plan.columns * (plan.bitsAllocated / 8);
      const buffers = [Buffer.allocUnsafeSlow(plan.frameBytes), Buffer.allocUnsafeSlow(plan.frameBytes)] as const;
      const read = (index: number) => readFully(file, buffers[index % 2]!, plan.pixelOffset + index * plan.frameBytes);
      reading = read(0);
      for (let index = 0; index < plan.frames; index++) {
        await reading;
        const frame = buffers[index % 2]!;
        reading = index + 1 < plan.frames ? read(index + 1) : undefined;
        fileHash.update(frame);
        pixelHash.update(frame);
        const bits = fitsIn(frame, plan.bitsAllocated, plan.encodedBitsPerSample)
          ? plan.encodedBitsPerSample
          : plan.bitsAllocated;
        if (bits !== plan.encodedBitsPerSample) widenedFrames += 1;
        for (let stripe = 0, top = 0; top < plan.rows; stripe++, top += plan.stripeRows) {
          const rows = Math.min(plan.stripeRows, plan.rows - top);
          const pixels = frame.subarray(top * rowBytes, (top + rows) * rowBytes);
          await loadImageCodecs();
          const codestream = encodeStripe(pixels, rows, plan.columns, bits);
          if (options.verify && !decodeStripe(codestream, plan.bitsAllocated, rows, plan.columns).equals(pixels))
            throw new Error(
              `Frame ${index}, stripe ${stripe} of ${path} does not decode back to its pixels: not packed`,
            );
          await out.write(uint32(codestream.length));
          await out.write(codestream);
        }
      }
      const suffixStart = plan.pixelOffset + plan.frames * plan.frameBytes;
      await copyRaw(file, suffixStart, size - suffixStart, out, (chunk) => fileHash.update(chunk));
    }
    if ((await file.stat()).size !== size) throw new Error(`${path} changed size while it was packed`);

    const originalSha256 = fileHash.digest('hex');
    const digestedPixels = pixelHash.digest('hex');
    const pixelSha256 = plan.codec === 'jpeg-ls' || plan.pixels ? digestedPixels : originalSha256;
    const trailer: ImagePackageTrailer = {
      originalBytes: size,
      originalSha256,
      pixelSha256,
      packedSha256: out.digest(),
    };
    const trailerJson = Buffer.from(JSON.stringify(trailer));
    await out.write(Buffer.concat([uint32(trailerJson.length), trailerJson]));
    return {
      ...identity,
      originalBytes: size,
      originalSha256,
      pixelSha256,
      codec: plan.codec,
      ...(plan.codec === 'none' ? { reason: plan.reason } : {}),
      frames: layout.frames,
      widenedFrames,
      packedBytes: out.bytes,
    };
  } finally {
    // A read ahead still under way when packing failed is let finish before its file is closed.
    await reading?.catch(() => undefined);
    await file.close();
  }
}

/** Reads the file meta information, finds the Pixel Data and reads the attributes that decide the codec. */
async function planFor(
  file: FileHandle,
  size: number,
  options: PackOptions,
  stripeRows: number,
): Promise<{ identity: Identity; plan: Plan }> {
  const head = Buffer.alloc(Math.min(size, HEAD_BYTES));
  await readFully(file, head, 0);
  const meta = readMeta(head);
  if (!meta) throw new Error('Not a DICOM Part 10 file: no DICM prefix and readable file meta information');
  const { transferSyntaxUid, datasetStart } = meta;
  const native = transferSyntaxUid === IMPLICIT_VR_LITTLE_ENDIAN || transferSyntaxUid === EXPLICIT_VR_LITTLE_ENDIAN;
  const shape = native
    ? locatePixelData(file.fd, datasetStart, size, transferSyntaxUid !== IMPLICIT_VR_LITTLE_ENDIAN)
    : undefined;
  const place = shape?.pixelData;
  // The attributes before native pixel data are parsed whole; otherwise (as the gateway does) the first 256 KB.
  let attributeBytes = head;
  if (place && place.elementOffset <= MAX_ATTRIBUTE_BYTES) {
    attributeBytes = Buffer.alloc(place.elementOffset);
    await readFully(file, attributeBytes, 0);
  }
  let ds: Record<string, unknown>;
  try {
    ds = readAttributes(attributeBytes);
  } catch (error) {
    if (attributeBytes === head) throw error;
    ds = readAttributes(head);
  }
  const identity: Identity = {
    sopInstanceUid: text(ds.SOPInstanceUID),
    sopClassUid: text(ds.SOPClassUID),
    studyInstanceUid: text(ds.StudyInstanceUID),
    accessionNumber: text(ds.AccessionNumber),
    patientId: text(ds.PatientID),
    transferSyntaxUid,
  };
  const raw = (reason: string): { identity: Identity; plan: Plan } => {
    const pixels =
      place && shape.incomplete === undefined && place.length !== undefined
        ? { offset: place.valueOffset, length: place.length }
        : undefined;
    return { identity, plan: { codec: 'none', reason, ...(pixels ? { pixels } : {}) } };
  };

  if (options.codec === 'none') return raw("codec 'none' was asked for");
  if (!native)
    return raw(`transfer syntax ${transferSyntaxUid || '(none)'} is not Implicit or Explicit VR Little Endian`);
  if (shape?.incomplete !== undefined) return raw(`the dataset is not whole (${shape.incomplete})`);
  if (!place) return raw('no Pixel Data (7FE0,0010)');
  if (place.length === undefined) return raw('Pixel Data (7FE0,0010) of undefined length');
  if (place.elementOffset > MAX_ATTRIBUTE_BYTES)
    return raw(`Pixel Data starts after ${MAX_ATTRIBUTE_BYTES} bytes of attributes`);
  const samplesPerPixel = integer(ds.SamplesPerPixel);
  if (samplesPerPixel !== 1) return raw(`SamplesPerPixel is ${show(ds.SamplesPerPixel)}, not 1`);
  const bitsAllocated = integer(ds.BitsAllocated);
  if (bitsAllocated !== 8 && bitsAllocated !== 16)
    return raw(`BitsAllocated is ${show(ds.BitsAllocated)}, not 8 or 16`);
  const rows = integer(ds.Rows);
  const columns = integer(ds.Columns);
  if (!rows || !columns || rows > 0xffff || columns > 0xffff)
    return raw(`Rows ${show(ds.Rows)} and Columns ${show(ds.Columns)} are not both 1 to 65535`);
  const frames = ds.NumberOfFrames === undefined ? 1 : integer(ds.NumberOfFrames);
  if (!frames) return raw(`NumberOfFrames is ${show(ds.NumberOfFrames)}, not a positive integer`);
  const frameBytes = rows * columns * (bitsAllocated / 8);
  if (frameBytes > MAX_FRAME_BYTES) return raw(`frames of ${frameBytes} bytes are over ${MAX_FRAME_BYTES}`);
  if (place.length !== frames * frameBytes)
    return raw(
      `Pixel Data is ${place.length} bytes, not ${rows} × ${columns} × ${frames} frames × ${bitsAllocated / 8} = ${frames * frameBytes}`,
    );
  // Words that fit in BitsStored are encoded at that depth (at least the 2 bits JPEG-LS allows, and 9 for 16-bit
  // words, whose codestreams must decode to 2 bytes a sample); frames with wider words at BitsAllocated.
  const stored = integer(ds.BitsStored);
  const bitsStored = stored && stored <= bitsAllocated ? stored : bitsAllocated;
  const encodedBitsPerSample = Math.max(bitsStored, bitsAllocated === 16 ? 9 : 2);
  return {
    identity,
    plan: {
      codec: 'jpeg-ls',
      pixelOffset: place.valueOffset,
      rows,
      columns,
      frames,
      bitsAllocated,
      encodedBitsPerSample,
      frameBytes,
      stripeRows: Math.min(stripeRows, rows),
    },
  };
}

/** The transfer syntax and where the dataset starts, from the group 0002 elements after the preamble and DICM. */
function readMeta(head: Buffer): { transferSyntaxUid: string; datasetStart: number } | undefined {
  if (head.length < 132 || head.toString('latin1', 128, 132) !== 'DICM') return undefined;
  let position = 132;
  let transferSyntaxUid = '';
  while (position + 8 <= head.length && head.readUInt16LE(position) === 0x0002) {
    const element = head.readUInt16LE(position + 2);
    const vr = head.toString('latin1', position + 4, position + 6);
    let length: number;
    let value: number;
    if (LONG_VRS.has(vr)) {
      if (position + 12 > head.length) return undefined;
      length = head.readUInt32LE(position + 8);
      value = position + 12;
    } else {
      length = head.readUInt16LE(position + 6);
      value = position + 8;
    }
    if (value + length > head.length) return undefined;
    if (element === 0x0010)
      transferSyntaxUid = head
        .toString('latin1', value, value + length)
        .replace(/[\0 ]+$/, '')
        .slice(0, MAX_TEXT);
    position = value + length;
  }
  if (position === 132) return undefined;
  return { transferSyntaxUid, datasetStart: position };
}

function readAttributes(bytes: Buffer): Record<string, unknown> {
  try {
    const parsed = dcmjs.data.DicomMessage.readFile(Uint8Array.from(bytes).buffer, {
      untilTag: '7FE00010',
      ignoreErrors: true,
    });
    return dcmjs.data.DicomMetaDictionary.naturalizeDataset(parsed.dict);
  } catch (error) {
    throw new Error(`The dataset's attributes cannot be read (${messageOf(error)})`);
  }
}

function text(value: unknown): string {
  const first: unknown = Array.isArray(value) ? value[0] : value;
  return typeof first === 'string' ? first.replace(/\0/g, '').trim().slice(0, MAX_TEXT) : '';
}

/** A whole number from a naturalized US or IS value (number or numeric string), else undefined. */
function integer(value: unknown): number | undefined {
  const first: unknown = Array.isArray(value) ? value[0] : value;
  const n = typeof first === 'string' && /^\s*[+-]?\d+\s*$/.test(first) ? Number(first) : first;
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0 ? n : undefined;
}

function show(value: unknown): string {
  return value === undefined ? 'missing' : JSON.stringify(value).slice(0, 40);
}

/** Whether every word of the frame is below 2^bits: the OR of all words has no bit at `bits` or above. */
function fitsIn(frame: Buffer, bitsAllocated: number, bits: number): boolean {
  if (bits >= bitsAllocated) return true;
  let or = 0;
  if (bitsAllocated === 8) {
    for (let i = 0; i < frame.length; i++) or |= frame[i]!;
  } else if (LITTLE_ENDIAN_HOST && frame.byteOffset % 2 === 0) {
    const words = new Uint16Array(frame.buffer, frame.byteOffset, frame.length / 2);
    for (let i = 0; i < words.length; i++) or |= words[i]!;
  } else {
    for (let i = 0; i < frame.length; i += 2) or |= frame.readUInt16LE(i);
  }
  return or >>> bits === 0;
}

/**
 * A stripe's JPEG-LS codestream (a whole JPEG-LS image of its rows), checked to say what was asked (CharLS takes the
 * bit depth as BitsAllocated).
 */
function encodeStripe(pixels: Buffer, rows: number, columns: number, bits: number): Buffer {
  const context = new Context({
    width: columns,
    height: rows,
    bitsAllocated: bits,
    bitsStored: bits,
    samplesPerPixel: 1,
    pixelRepresentation: 0,
    photometricInterpretation: 'MONOCHROME2',
    decodedBuffer: new Uint8Array(pixels.buffer, pixels.byteOffset, pixels.length),
  });
  let encoded: Uint8Array | undefined;
  try {
    encoded = codecCall(() => NativeCodecs.encodeJpegLs(context, { lossy: false }).getEncodedBuffer());
  } catch (error) {
    throw new Error(`JPEG-LS encoding failed: ${messageOf(error)}`);
  }
  if (!encoded) throw new Error('JPEG-LS encoding gave no codestream');
  const sof = frameHeader(encoded);
  if (typeof sof === 'string' || sof.bits !== bits || sof.rows !== rows || sof.columns !== columns)
    throw new Error(`The JPEG-LS encoder did not write a ${columns} × ${rows} image of ${bits} bits`);
  return Buffer.from(encoded.buffer, encoded.byteOffset, encoded.length);
}

function decodeStripe(codestream: Buffer, bitsAllocated: number, rows: number, columns: number): Buffer {
  const context = new Context({
    width: columns,
    height: rows,
    bitsAllocated,
    bitsStored: bitsAllocated,
    samplesPerPixel: 1,
    pixelRepresentation: 0,
    photometricInterpretation: 'MONOCHROME2',
    encodedBuffer: new Uint8Array(codestream.buffer, codestream.byteOffset, codestream.length),
  });
  const decoded = codecCall(() => NativeCodecs.decodeJpegLs(context, {}).getDecodedBuffer());
  if (!decoded) throw new Error('no pixels decoded');
  return Buffer.from(decoded.buffer, decoded.byteOffset, decoded.length);
}

/** The JPEG-LS frame header (SOF55, ISO 14495-1 C.2.2) of a codestream, or what is wrong with it. */
function frameHeader(
  codestream: Uint8Array,
): { bits: number; rows: number; columns: number; components: number } | string {
  const u16 = (at: number) => (codestream[at]! << 8) | codestream[at + 1]!;
  if (codestream[0] !== 0xff || codestream[1] !== 0xd8) return 'it does not start with a JPEG SOI marker';
  let position = 2;
  while (position + 4 <= codestream.length) {
    if (codestream[position] !== 0xff) return `no marker at byte ${position}`;
    const marker = codestream[position + 1]!;
    if (marker === 0xff) {
      position += 1;
      continue;
    }
    const length = u16(position + 2);
    if (marker === 0xf7) {
      if (length < 11 || position + 2 + length > codestream.length) return 'its frame header is cut short';
      return {
        bits: codestream[position + 4]!,
        rows: u16(position + 5),
        columns: u16(position + 7),
        components: codestream[position + 9]!,
      };
    }
    if (marker === 0xda || marker === 0xd9) return 'it has no JPEG-LS frame header (SOF55) before its scan';
    position += 2 + length;
  }
  return 'it has no JPEG-LS frame header (SOF55)';
}

async function restore(reader: ByteReader, out: SinkWriter): Promise<RestoreSummary> {
  const magic = await reader.read(IMAGE_MAGIC.length, 'the magic');
  if (!magic.equals(IMAGE_MAGIC)) throw new PackageRefused('Not a Screening Hub image package (SHIMG1)');
  const headerLength = (await reader.read(4, 'the header length')).readUInt32BE(0);
  if (headerLength > MAX_HEADER_BYTES)
    throw new PackageRefused(`The image package header claims ${headerLength} bytes, over ${MAX_HEADER_BYTES}`);
  const headerJson = await reader.read(headerLength, 'the header');
  const header = parseJson(headerJson, headerSchema, 'header');
  const { layout } = header;
  checkLayout(header);

  const fileHash = createHash('sha256');
  const pixelHash = createHash('sha256');
  let restored = 0;
  const emit = async (bytes: Buffer) => {
    fileHash.update(bytes);
    restored += bytes.length;
    await out.write(bytes);
  };
  for await (const chunk of reader.chunks(layout.prefixBytes, 'the bytes before the pixel data')) await emit(chunk);
  // Each stripe is decoded and passed on as soon as its codestream has arrived: a frame is never gathered.
  const rowBytes = layout.columns * (layout.bitsAllocated / 8);
  const lowest = layout.bitsAllocated === 16 ? 9 : 2;
  let widenedFrames = 0;
  for (let index = 0; index < layout.frames; index++) {
    let frameBits: number | undefined;
    for (let stripe = 0, top = 0; top < layout.rows; stripe++, top += layout.stripeRows) {
      const rows = Math.min(layout.stripeRows, layout.rows - top);
      const stripeBytes = rows * rowBytes;
      const where = `frame ${index}, stripe ${stripe}`;
      const name = `Frame ${index}, stripe ${stripe}`;
      const length = (await reader.read(4, `the length of ${where}`)).readUInt32BE(0);
      // The largest codestream CharLS writes is 1.2 × the stripe and some: a longer one is not a stripe.
      const maxCodestream = Math.ceil(stripeBytes * 1.25) + 4096;
      if (length > maxCodestream)
        throw new PackageRefused(`${name} claims a ${length}-byte codestream, over the ${maxCodestream} possible`);
      const codestream = await reader.read(length, where);
      const sof = frameHeader(codestream);
      if (typeof sof === 'string') throw new PackageRefused(`${name} is not a JPEG-LS codestream: ${sof}`);
      if (sof.rows !== rows || sof.columns !== layout.columns || sof.components !== 1)
        throw new PackageRefused(
          `${name} is ${sof.columns} × ${sof.rows} × ${sof.components}, not the layout's ${layout.columns} × ${rows} × 1`,
        );
      if (sof.bits < lowest || sof.bits > layout.bitsAllocated)
        throw new PackageRefused(`${name} has ${sof.bits}-bit samples, not ${lowest} to ${layout.bitsAllocated}`);
      if (frameBits === undefined) {
        frameBits = sof.bits;
        if (frameBits !== layout.encodedBitsPerSample) widenedFrames += 1;
      } else if (sof.bits !== frameBits)
        throw new PackageRefused(
          `${name} has ${sof.bits}-bit samples, not the ${frameBits} of the frame's stripe 0: a frame's stripes share one depth`,
        );
      let pixels: Buffer;
      await loadImageCodecs();
      try {
        pixels = decodeStripe(codestream, layout.bitsAllocated, rows, layout.columns);
      } catch (error) {
        throw new PackageRefused(`${name} does not decode: ${messageOf(error)}`);
      }
      if (pixels.length !== stripeBytes)
        throw new PackageRefused(`${name} decodes to ${pixels.length} bytes, not ${stripeBytes}`);
      pixelHash.update(pixels);
      await emit(pixels);
    }
  }
  for await (const chunk of reader.chunks(layout.suffixBytes, 'the bytes after the pixel data')) await emit(chunk);

  const packedSha256 = reader.digest();
  const trailerLength = (await reader.read(4, 'the trailer length')).readUInt32BE(0);
  if (trailerLength > MAX_TRAILER_BYTES)
    throw new PackageRefused(`The image package trailer claims ${trailerLength} bytes, over ${MAX_TRAILER_BYTES}`);
  const trailer = parseJson(await reader.read(trailerLength, 'the trailer'), trailerSchema, 'trailer');
  if (!(await reader.atEnd())) throw new PackageRefused('Bytes after the trailer of the image package');

  if (packedSha256 !== trailer.packedSha256)
    throw new PackageRefused("The image package's bytes do not match the SHA-256 in its trailer: damaged or altered");
  if (restored !== trailer.originalBytes)
    throw new PackageRefused(`The restored file is ${restored} bytes, the trailer says ${trailer.originalBytes}`);
  const originalSha256 = fileHash.digest('hex');
  if (originalSha256 !== trailer.originalSha256)
    throw new PackageRefused(
      `The restored file's SHA-256 ${originalSha256} is not the ${trailer.originalSha256} in the trailer: not bit-exact`,
    );
  if (header.codec === 'jpeg-ls') {
    const pixelSha256 = pixelHash.digest('hex');
    if (pixelSha256 !== trailer.pixelSha256)
      throw new PackageRefused(`The restored pixel data's SHA-256 ${pixelSha256} is not the trailer's`);
  }
  return {
    sopInstanceUid: header.sopInstanceUid,
    sopClassUid: header.sopClassUid,
    studyInstanceUid: header.studyInstanceUid,
    accessionNumber: header.accessionNumber,
    patientId: header.patientId,
    transferSyntaxUid: header.transferSyntaxUid,
    originalBytes: trailer.originalBytes,
    originalSha256,
    pixelSha256: trailer.pixelSha256,
    codec: header.codec,
    ...(header.reason === undefined ? {} : { reason: header.reason }),
    frames: layout.frames,
    widenedFrames,
    packedBytes: reader.bytes,
  };
}

/** The header's layout must describe what this reader can restore, before any byte is restored by it. */
function checkLayout(header: ImagePackageHeader): void {
  const { layout } = header;
  const refuse = (what: string) => {
    throw new PackageRefused(`The image package header's layout is not valid: ${what}`);
  };
  if (header.codec === 'none') {
    if (layout.frames !== 0 || layout.suffixBytes !== 0) refuse("codec 'none' with frames or suffix bytes");
    if (layout.stripeRows !== 0) refuse(`codec 'none' with stripeRows ${layout.stripeRows}, not 0`);
    return;
  }
  if (layout.frames < 1) refuse('no frames');
  if (layout.samplesPerPixel !== 1) refuse(`samplesPerPixel ${layout.samplesPerPixel}`);
  if (layout.bitsAllocated !== 8 && layout.bitsAllocated !== 16) refuse(`bitsAllocated ${layout.bitsAllocated}`);
  if (layout.rows < 1 || layout.rows > 0xffff || layout.columns < 1 || layout.columns > 0xffff)
    refuse(`${layout.columns} × ${layout.rows} frames`);
  if (layout.stripeRows < 1 || layout.stripeRows > layout.rows)
    refuse(`stripeRows ${layout.stripeRows}, not 1 to the ${layout.rows} rows of a frame`);
  if (layout.frameBytes !== (layout.rows * layout.columns * layout.bitsAllocated) / 8)
    refuse(`frameBytes ${layout.frameBytes} for ${layout.columns} × ${layout.rows} × ${layout.bitsAllocated} bits`);
  if (layout.frameBytes > MAX_FRAME_BYTES) refuse(`frames of ${layout.frameBytes} bytes`);
  const lowest = layout.bitsAllocated === 16 ? 9 : 2;
  if (layout.encodedBitsPerSample < lowest || layout.encodedBitsPerSample > layout.bitsAllocated)
    refuse(`encodedBitsPerSample ${layout.encodedBitsPerSample}`);
}

function parseJson<T>(bytes: Buffer, schema: z.ZodType<T>, what: string): T {
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new PackageRefused(`The image package ${what} is not JSON`);
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success)
    throw new PackageRefused(
      `The image package ${what} is not a version ${IMAGE_PACKAGE_VERSION} ${what}: ${z.prettifyError(parsed.error).slice(0, 300)}`,
    );
  return parsed.data;
}

function uint32(value: number): Buffer {
  const bytes = Buffer.alloc(4);
  bytes.writeUInt32BE(value);
  return bytes;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Fills `buffer` from the file at `position`; a file shorter than that has changed under us. */
async function readFully(file: FileHandle, buffer: Buffer, position: number): Promise<void> {
  let done = 0;
  while (done < buffer.length) {
    const { bytesRead } = await file.read(buffer, done, buffer.length - done, position + done);
    if (bytesRead === 0) throw new Error(`The file ended at byte ${position + done} while it was packed`);
    done += bytesRead;
  }
}

/** Writes `length` bytes of the file from `start` to the sink, in fresh chunks (the sink may keep them). */
async function copyRaw(
  file: FileHandle,
  start: number,
  length: number,
  out: SinkWriter,
  onChunk: (chunk: Buffer, at: number) => void,
): Promise<void> {
  for (let at = start; at < start + length;) {
    const chunk = Buffer.allocUnsafe(Math.min(CHUNK_BYTES, start + length - at));
    await readFully(file, chunk, at);
    onChunk(chunk, at);
    await out.write(chunk);
    at += chunk.length;
  }
}

/**
 * Writes to a sink with backpressure (waits for 'drain'), and turns the sink's errors, or its closing early, into
 * a rejected write rather than an unhandled 'error' event.
 */
class SinkWriter {
  bytes = 0;
  /** Of every byte written until digest(). */
  private hash: Hash | undefined = createHash('sha256');
  private failure: Error | undefined;
  private wake: (() => void) | undefined;
  private draining: Promise<void> | undefined;
  private lastWrite: Promise<void> = Promise.resolve();
  private readonly onError = (error: Error) => {
    this.failure ??= error;
    this.wake?.();
  };
  private readonly onDrain = () => this.wake?.();
  private readonly onClose = () => {
    this.failure ??= new Error('The sink closed before the whole package was written');
    this.wake?.();
  };

  constructor(private readonly sink: Writable) {
    sink.on('error', this.onError);
    sink.on('drain', this.onDrain);
    sink.on('close', this.onClose);
  }

  /**
   * Writes a chunk once the sink has drained what was written before it. It does not wait for this chunk to drain:
   * the next stripe is coded while the sink (a file, say) writes this one, and the sink holds at most its
   * highWaterMark and one chunk more.
   */
  async write(chunk: Buffer): Promise<void> {
    await this.drained();
    this.bytes += chunk.length;
    this.hash?.update(chunk);
    let settle: (error: Error | null | undefined) => void = () => undefined;
    this.lastWrite = new Promise<void>((resolve, reject) => {
      settle = (error) => (error ? reject(error) : resolve());
    });
    // A failed write is reported through 'error' as well; only settled() awaits the callback itself.
    this.lastWrite.catch(() => undefined);
    if (!this.sink.write(chunk, (error) => settle(error)))
      this.draining = new Promise<void>((resolve) => {
        this.wake = resolve;
        if (this.failure || !this.sink.writableNeedDrain) resolve();
      });
  }

  /** Resolves once the sink has drained (or at once if it need not), and throws if it has failed. */
  async drained(): Promise<void> {
    this.check();
    if (this.draining) {
      await this.draining;
      this.draining = undefined;
      this.wake = undefined;
      this.check();
    }
  }

  /** The SHA-256 of the bytes written so far (in hex); later ones are not hashed. */
  digest(): string {
    const hex = this.hash!.digest('hex');
    this.hash = undefined;
    return hex;
  }

  /** Resolves once the sink has accepted every byte written (the last write's callback). */
  async settled(): Promise<void> {
    await this.drained();
    await this.lastWrite;
  }

  /** Ends the sink and resolves once it has emitted 'finish'. */
  async end(): Promise<void> {
    this.check();
    this.sink.off('close', this.onClose);
    this.sink.end();
    await finished(this.sink, { readable: false });
  }

  destroy(error: unknown): void {
    // Destroying emits 'error': a listener stays, so it is not unhandled (the caller has it from the rejection).
    this.sink.on('error', () => undefined);
    this.sink.destroy(error instanceof Error ? error : new Error(String(error)));
  }

  release(): void {
    this.sink.off('error', this.onError);
    this.sink.off('drain', this.onDrain);
    this.sink.off('close', this.onClose);
  }

  private check(): void {
    if (this.failure) throw this.failure;
    if (this.sink.destroyed || this.sink.writableEnded)
      throw new Error('The sink was destroyed or ended before the whole package was written');
  }
}

/** Reads exact byte counts from a stream, holding no more than a few of its chunks beyond what is asked. */
class ByteReader {
  /** Bytes taken from the source so far. */
  bytes = 0;
  private readonly iterator: AsyncIterator<unknown>;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** Of every byte taken until digest(). */
  private hash: Hash | undefined = createHash('sha256');
  private ended = false;

  constructor(source: Readable) {
    this.iterator = source[Symbol.asyncIterator]();
  }

  /** Exactly `length` bytes, else PackageRefused: the package was cut short in `what`. */
  async read(length: number, what: string): Promise<Buffer> {
    while (this.pendingBytes < length) if (!(await this.fill())) throw this.cutShort(what);
    const first = this.pending[0];
    if (first && first.length >= length) return this.take(length);
    const out = Buffer.allocUnsafe(length);
    for (let done = 0; done < length;) {
      const piece = this.take(Math.min(this.pending[0]!.length, length - done));
      piece.copy(out, done);
      done += piece.length;
    }
    return out;
  }

  /** The next `length` bytes in the pieces they arrive in. */
  async *chunks(length: number, what: string): AsyncGenerator<Buffer> {
    for (let left = length; left > 0;) {
      if (this.pendingBytes === 0 && !(await this.fill())) throw this.cutShort(what);
      const piece = this.take(Math.min(this.pending[0]!.length, left));
      left -= piece.length;
      yield piece;
    }
  }

  /** The SHA-256 of the bytes taken so far (in hex); later ones are not hashed. */
  digest(): string {
    const hex = this.hash!.digest('hex');
    this.hash = undefined;
    return hex;
  }

  async atEnd(): Promise<boolean> {
    while (this.pendingBytes === 0) if (!(await this.fill())) return true;
    return false;
  }

  /** Stops reading: the source is destroyed (as for-await does when it is left early). */
  async cancel(): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    try {
      await this.iterator.return?.();
    } catch {
      // The source's own error is the caller's already, or does not matter beside the one being thrown.
    }
  }

  private take(length: number): Buffer {
    const first = this.pending[0]!;
    const piece = first.subarray(0, length);
    if (length === first.length) this.pending.shift();
    else this.pending[0] = first.subarray(length);
    this.pendingBytes -= length;
    this.bytes += length;
    this.hash?.update(piece);
    return piece;
  }

  private async fill(): Promise<boolean> {
    if (this.ended) return false;
    const next = await this.iterator.next();
    if (next.done) {
      this.ended = true;
      return false;
    }
    const value: unknown = next.value;
    if (!(value instanceof Uint8Array)) throw new TypeError('restoreImage needs a byte stream (no encoding set)');
    const chunk = Buffer.isBuffer(value) ? value : Buffer.from(value.buffer, value.byteOffset, value.length);
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    return true;
  }

  private cutShort(what: string): PackageRefused {
    return new PackageRefused(
      `The image package was cut short in ${what} (after ${this.bytes + this.pendingBytes} bytes)`,
    );
  }
}
