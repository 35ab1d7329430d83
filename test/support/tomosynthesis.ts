import { createHash } from 'node:crypto';
import { closeSync, openSync, writeSync } from 'node:fs';
import dcmjs from 'dcmjs';

export const BREAST_TOMOSYNTHESIS = '1.2.840.10008.5.1.4.1.1.13.1.3';

/**
 * A Part 10 file (preamble, DICM, file meta information, dataset) with the dataset, given as dcmjs naturalized
 * attributes, in the given transfer syntax; the SOP Class and Instance UIDs of the file meta information are the
 * dataset's. Deterministic, for the worked example in docs/image-package.md.
 */
export function part10Image(transferSyntaxUid: string, dataset: Record<string, unknown>): Buffer {
  const dictionary = dcmjs.data.DicomMetaDictionary;
  const dict = new dcmjs.data.DicomDict(
    dictionary.denaturalizeDataset({
      FileMetaInformationVersion: new Uint8Array([0, 1]).buffer,
      MediaStorageSOPClassUID: dataset.SOPClassUID,
      MediaStorageSOPInstanceUID: dataset.SOPInstanceUID,
      TransferSyntaxUID: transferSyntaxUid,
      ImplementationClassUID: '2.25.160285186498498473470934542312348473601',
      ImplementationVersionName: 'SCREENINGHUB1',
    }),
  );
  dict.dict = dictionary.denaturalizeDataset(dataset);
  return Buffer.from(dict.write());
}

export interface SyntheticTomosynthesis {
  /** Reconstructed slices (frames): a real object has 40–100 of 2457 × 1890, about 1.8 GB at the most. */
  frames: number;
  rows: number;
  columns: number;
  sopInstanceUid: string;
  accessionNumber?: string;
  patientId?: string;
  /** 12 to 14 (the default); the words are 16 bits. */
  bitsStored?: number;
  seed?: number;
}

export interface WrittenTomosynthesis {
  bytes: number;
  sha256: string;
  pixelSha256: string;
  /** Where the Pixel Data value starts in the file. */
  pixelOffset: number;
}

/**
 * Writes a synthetic Breast Tomosynthesis Image (multi-frame, Explicit VR Little Endian, 16-bit words, BitsStored
 * 12–14) as a Part 10 file, a frame at a time: only one frame and two frame-sized textures are ever in memory, so a
 * 1.8 GB object can be made in a test. Each slice is breast-shaped (a half-ellipse from the chest wall, smaller
 * towards the paddles) with tissue texture that changes with depth and quantum-like noise; outside the breast the
 * reconstruction's background is a flat value, as in reconstructed slices. Deterministic for a seed.
 */
export function writeTomosynthesis(path: string, image: SyntheticTomosynthesis): WrittenTomosynthesis {
  const { frames, rows, columns } = image;
  const bitsStored = image.bitsStored ?? 14;
  if (bitsStored < 12 || bitsStored > 14) throw new Error('bitsStored must be 12 to 14');
  const frameBytes = rows * columns * 2;
  const pixelBytes = frameBytes * frames;
  if (pixelBytes >= 0xffffffff) throw new Error('Pixel Data of a defined length is under 4 GiB');
  const dataset = {
    SOPClassUID: BREAST_TOMOSYNTHESIS,
    SOPInstanceUID: image.sopInstanceUid,
    StudyInstanceUID: '2.25.1234',
    SeriesInstanceUID: '2.25.12346',
    AccessionNumber: image.accessionNumber ?? 'SH00000042',
    PatientID: image.patientId ?? '9990000018',
    PatientName: 'SMITH^Ada',
    Modality: 'MG',
    ImageType: ['DERIVED', 'PRIMARY', 'TOMOSYNTHESIS', 'NONE'],
    ImageLaterality: 'L',
    ViewPosition: 'CC',
    SamplesPerPixel: 1,
    PhotometricInterpretation: 'MONOCHROME2',
    NumberOfFrames: frames,
    Rows: rows,
    Columns: columns,
    BitsAllocated: 16,
    BitsStored: bitsStored,
    HighBit: bitsStored - 1,
    PixelRepresentation: 0,
  };
  const header = part10Image('1.2.840.10008.1.2.1', dataset);
  // Pixel Data (7FE0,0010) OW, defined length, written after the other attributes and filled frame by frame.
  const element = Buffer.from([0xe0, 0x7f, 0x10, 0x00, 0x4f, 0x57, 0, 0, 0, 0, 0, 0]);
  element.writeUInt32LE(pixelBytes, 8);
  const file = createHash('sha256');
  const pixels = createHash('sha256');
  const fd = openSync(path, 'w');
  try {
    const write = (bytes: Uint8Array) => {
      for (let done = 0; done < bytes.length;) done += writeSync(fd, bytes, done);
    };
    for (const bytes of [header, element]) {
      write(bytes);
      file.update(bytes);
    }
    const slice = slicer(rows, columns, bitsStored, image.seed ?? 7);
    for (let z = 0; z < frames; z++) {
      const bytes = new Uint8Array(slice(frames === 1 ? 0.5 : z / (frames - 1)).buffer);
      write(bytes);
      file.update(bytes);
      pixels.update(bytes);
    }
  } finally {
    closeSync(fd);
  }
  return {
    bytes: header.length + element.length + pixelBytes,
    sha256: file.digest('hex'),
    pixelSha256: pixels.digest('hex'),
    pixelOffset: header.length + element.length,
  };
}

/** Slices at depth 0 to 1: two tissue textures computed once, mixed by depth, with fresh noise for every slice. */
function slicer(rows: number, columns: number, bitsStored: number, seed: number): (depth: number) => Uint16Array {
  const near = new Float32Array(rows * columns);
  const far = new Float32Array(rows * columns);
  for (let y = 0; y < rows; y++) {
    for (let x = 0; x < columns; x++) {
      near[y * columns + x] =
        0.25 * Math.sin(x / 37 + Math.sin(y / 53) * 3) * Math.cos(y / 29 + Math.sin(x / 71) * 2) +
        0.15 * Math.sin((x + y) / 11);
      far[y * columns + x] =
        0.25 * Math.cos(x / 43 + Math.cos(y / 31) * 2) * Math.sin(y / 47 + Math.cos(x / 59) * 3) +
        0.15 * Math.sin((x - y) / 13);
    }
  }
  const max = (1 << bitsStored) - 1;
  const scale = (1 << bitsStored) / 16384;
  const background = Math.round(40 * scale);
  let state = seed >>> 0 || 1;
  const random = () => {
    // xorshift32: fast, and plenty for noise.
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 0x100000000;
  };
  return (depth) => {
    const pixels = new Uint16Array(rows * columns);
    const a = Math.cos(depth * Math.PI);
    const b = Math.sin(depth * Math.PI);
    // The breast is thinner towards the compression paddles: the outline shrinks in the first and last slices.
    const size = 1 - 0.2 * (2 * depth - 1) ** 2;
    for (let y = 0; y < rows; y++) {
      const dy = (y - rows / 2) / (rows * 0.45 * size);
      for (let x = 0; x < columns; x++) {
        const dx = x / (columns * 0.8 * size);
        const r = dx * dx + dy * dy;
        const i = y * columns + x;
        if (r >= 1) {
          pixels[i] = background;
          continue;
        }
        const edge = Math.min(1, (1 - r) * 6);
        const tissue = 0.5 + a * near[i]! + b * far[i]!;
        const value = (1500 + edge * (6000 + 5000 * tissue) + (random() - 0.5) * 120) * scale;
        pixels[i] = Math.max(0, Math.min(max, Math.round(value)));
      }
    }
    return pixels;
  };
}
