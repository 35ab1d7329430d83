import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { syntheticMammogramFile } from '../../src/dicom/synthetic-mammogram.js';
import { realisticMammogramPixels } from './realistic-mammogram.js';

export { MG_FOR_PRESENTATION } from '../../src/dicom/synthetic-mammogram.js';

export interface SyntheticMammogram {
  sopInstanceUid: string;
  /** Rows and columns (square): 512 gives half a megabyte, many PDVs; 3700 gives a 27 MB 2D view. */
  side: number;
  sopClassUid?: string;
  accessionNumber?: string;
}

/**
 * Writes a synthetic digital mammogram (16-bit random pixels, synthetic patient 999 000 0018) as a Part 10 file in
 * Explicit VR Little Endian, and returns its pixel bytes so a test can check they arrive unchanged.
 */
export function writeSyntheticMammogram(path: string, image: SyntheticMammogram): Buffer {
  return writeMammogram(path, image, randomBytes(image.side * image.side * 2), image.side, image.side);
}

export interface RealisticMammogram {
  sopInstanceUid: string;
  accessionNumber: string;
  patientId: string;
  /** Default 1024 × 1280 (2.6 MB); 2560 × 3328 is a full 2D view (17 MB). */
  width?: number;
  height?: number;
  seed?: number;
  studyInstanceUid?: string;
}

/** A mammogram whose pixels compress like a real one's (realistic-mammogram.ts); returns the file's bytes. */
export function writeRealisticMammogram(path: string, image: RealisticMammogram): Buffer {
  const [width, height] = [image.width ?? 1024, image.height ?? 1280];
  const pixels = realisticMammogramPixels(width, height, image.seed ?? 7);
  writeMammogram(
    path,
    { sopInstanceUid: image.sopInstanceUid, side: 0, accessionNumber: image.accessionNumber },
    Buffer.from(pixels.buffer, pixels.byteOffset, pixels.byteLength),
    height,
    width,
    { PatientID: image.patientId, StudyInstanceUID: image.studyInstanceUid ?? '2.25.1234' },
  );
  return readFileSync(path);
}

function writeMammogram(
  path: string,
  image: SyntheticMammogram,
  pixels: Buffer,
  rows: number,
  columns: number,
  overrides: Record<string, string> = {},
): Buffer {
  writeFileSync(
    path,
    syntheticMammogramFile({
      sopInstanceUid: image.sopInstanceUid,
      ...(image.sopClassUid ? { sopClassUid: image.sopClassUid } : {}),
      pixels,
      rows,
      columns,
      attributes: { AccessionNumber: image.accessionNumber ?? 'SH00000042', ...overrides },
    }),
  );
  return pixels;
}
