import { readSync } from 'node:fs';

/** Explicit VRs with a reserved 2 bytes and a 4-byte length (PS3.5 7.1.2); the others have a 2-byte length. */
const LONG_VRS = new Set(['OB', 'OD', 'OF', 'OL', 'OV', 'OW', 'SQ', 'SV', 'UC', 'UN', 'UR', 'UT', 'UV']);
const UNDEFINED = 0xffffffff;
const ITEM = 0xfffee000;
const ITEM_END = 0xfffee00d;
const SEQUENCE_END = 0xfffee0dd;
const PIXEL_DATA = 0x7fe00010;
/** Deeper nesting than this is taken as hostile rather than walked (real images nest a few levels). */
const MAX_DEPTH = 32;

class Incomplete extends Error {}

export interface DatasetShape {
  /** What is wrong with the dataset's structure, if anything. */
  incomplete?: string;
  /** Whether the dataset holds Pixel Data (7FE0,0010) at its top level. */
  hasPixelData: boolean;
}

/**
 * Checks that the bytes of a Little Endian dataset in a file, from `start` to `end`, are a whole dataset: every
 * element, sequence, item and pixel data fragment is complete and the last one ends exactly at `end`. Only element
 * headers are read (a 1.8 GB tomosynthesis image costs a few hundred small reads), so a dataset cut short anywhere,
 * even inside the pixel data, is found. One cut exactly between two top-level elements leaves a whole, shorter
 * dataset: for images, `hasPixelData` tells whether it still has its pixels.
 */
export function datasetShape(fd: number, start: number, end: number, explicitVr: boolean): DatasetShape {
  const reader = new HeaderReader(fd, end);
  reader.position = start;
  try {
    readElements(reader, explicitVr, 0, false);
    return { hasPixelData: reader.sawPixelData };
  } catch (error) {
    if (error instanceof Incomplete) return { incomplete: error.message, hasPixelData: reader.sawPixelData };
    throw error;
  }
}

/** Where Pixel Data (7FE0,0010) is in a file: its element's first byte, its value's first byte and its length. */
export interface PixelDataPlace {
  elementOffset: number;
  valueOffset: number;
  /** The value length in bytes, or undefined for undefined length (encapsulated pixel data). */
  length: number | undefined;
}

/**
 * As datasetShape, and where the top-level Pixel Data (7FE0,0010) is (the first, if there were more), so that it
 * can be read frame by frame without parsing the dataset again.
 */
export function locatePixelData(
  fd: number,
  start: number,
  end: number,
  explicitVr: boolean,
): DatasetShape & { pixelData?: PixelDataPlace } {
  const reader = new HeaderReader(fd, end);
  reader.position = start;
  let incomplete: string | undefined;
  try {
    readElements(reader, explicitVr, 0, false);
  } catch (error) {
    if (!(error instanceof Incomplete)) throw error;
    incomplete = error.message;
  }
  return {
    ...(incomplete === undefined ? {} : { incomplete }),
    hasPixelData: reader.sawPixelData,
    ...(reader.pixelData ? { pixelData: reader.pixelData } : {}),
  };
}

/** Reads elements to `reader.end` (top level) or to an item delimiter (inside an undefined-length item). */
function readElements(reader: HeaderReader, explicitVr: boolean, depth: number, inItem: boolean): void {
  if (depth > MAX_DEPTH) throw new Incomplete(`sequences nested more than ${MAX_DEPTH} deep`);
  while (reader.position < reader.end || inItem) {
    const at = reader.position;
    const tag = reader.tag();
    if (tag === ITEM_END && inItem) {
      reader.uint32();
      return;
    }
    if (tag >>> 16 === 0xfffe) throw new Incomplete(`unexpected ${hex(tag)} at byte ${at}`);
    let vr = '';
    let length: number;
    if (explicitVr) {
      vr = reader.vr(at);
      length = LONG_VRS.has(vr) ? (reader.skip(2), reader.uint32()) : reader.uint16();
    } else {
      length = reader.uint32();
    }
    if (tag === PIXEL_DATA && depth === 0) {
      reader.sawPixelData = true;
      reader.pixelData ??= {
        elementOffset: at,
        valueOffset: reader.position,
        length: length === UNDEFINED ? undefined : length,
      };
    }
    if (length !== UNDEFINED) {
      reader.skip(length, `element ${hex(tag)}`);
      continue;
    }
    if (tag === PIXEL_DATA || vr === 'OB' || vr === 'OW') readFragments(reader, tag);
    // UN of undefined length holds a sequence in Implicit VR Little Endian (PS3.5 6.2.2).
    else if (!explicitVr || vr === 'SQ' || vr === 'UN') readSequence(reader, explicitVr && vr !== 'UN', depth + 1);
    else throw new Incomplete(`element ${hex(tag)} (${vr}) of undefined length at byte ${at}`);
  }
}

function readSequence(reader: HeaderReader, explicitVr: boolean, depth: number): void {
  for (;;) {
    const at = reader.position;
    const tag = reader.tag();
    const length = reader.uint32();
    if (tag === SEQUENCE_END) return;
    if (tag !== ITEM) throw new Incomplete(`expected a sequence item at byte ${at}, found ${hex(tag)}`);
    if (length === UNDEFINED) readElements(reader, explicitVr, depth, true);
    else reader.skip(length, 'sequence item');
  }
}

/** Encapsulated pixel data (PS3.5 A.4): items of defined length up to a sequence delimiter. */
function readFragments(reader: HeaderReader, tag: number): void {
  for (;;) {
    const at = reader.position;
    const item = reader.tag();
    const length = reader.uint32();
    if (item === SEQUENCE_END) return;
    if (item !== ITEM || length === UNDEFINED)
      throw new Incomplete(`expected a fragment of ${hex(tag)} at byte ${at}, found ${hex(item)}`);
    reader.skip(length, `fragment of ${hex(tag)}`);
  }
}

function hex(tag: number): string {
  const h = tag.toString(16).toUpperCase().padStart(8, '0');
  return `(${h.slice(0, 4)},${h.slice(4)})`;
}

/** Reads element headers from a file through a small buffer, never past `end`. */
class HeaderReader {
  position = 0;
  sawPixelData = false;
  pixelData: PixelDataPlace | undefined;
  private buffer = Buffer.alloc(64 * 1024);
  private bufferStart = 0;
  private bufferLength = 0;

  constructor(
    private readonly fd: number,
    readonly end: number,
  ) {}

  tag(): number {
    const bytes = this.take(4, 'element tag');
    return ((bytes.readUInt16LE(0) << 16) | bytes.readUInt16LE(2)) >>> 0;
  }

  vr(at: number): string {
    const vr = this.take(2, 'VR').toString('latin1');
    if (!/^[A-Z]{2}$/.test(vr)) throw new Incomplete(`not a VR at byte ${at + 4}`);
    return vr;
  }

  uint16(): number {
    return this.take(2, 'element length').readUInt16LE(0);
  }

  uint32(): number {
    return this.take(4, 'length').readUInt32LE(0);
  }

  skip(length: number, what = 'value'): void {
    if (this.position + length > this.end)
      throw new Incomplete(
        `${what} at byte ${this.position} needs ${length} bytes, ${this.end - this.position} left: cut short`,
      );
    this.position += length;
  }

  private take(length: number, what: string): Buffer {
    if (this.position + length > this.end) throw new Incomplete(`${what} at byte ${this.position} cut short`);
    const offset = this.position - this.bufferStart;
    if (offset < 0 || offset + length > this.bufferLength) {
      this.bufferStart = this.position;
      this.bufferLength = readSync(this.fd, this.buffer, 0, this.buffer.length, this.position);
      if (this.bufferLength < length) throw new Incomplete(`${what} at byte ${this.position} cut short`);
      return this.take(length, what);
    }
    this.position += length;
    return this.buffer.subarray(offset, offset + length);
  }
}
