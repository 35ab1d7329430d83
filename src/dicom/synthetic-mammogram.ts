import { part10File } from './part10.js';

export const MG_FOR_PRESENTATION = '1.2.840.10008.5.1.4.1.1.1.2';
export const EXPLICIT_VR_LITTLE_ENDIAN = '1.2.840.10008.1.2.1';

export interface SyntheticMammogramFile {
  sopInstanceUid: string;
  /** 16-bit pixel data, rows × columns × 2 bytes. */
  pixels: Buffer;
  rows: number;
  columns: number;
  sopClassUid?: string;
  /** Dataset attributes that replace the defaults (AccessionNumber, PatientID, PatientName, StudyInstanceUID, …). */
  attributes?: Record<string, unknown>;
}

/**
 * A synthetic digital mammogram as a Part 10 file in Explicit VR Little Endian (synthetic patient 999 000 0018
 * unless `attributes` say otherwise). Used by tests and by the gateway's modality emulator (the probe, issue 8).
 */
export function syntheticMammogramFile(image: SyntheticMammogramFile): Buffer {
  const sopClassUid = image.sopClassUid ?? MG_FOR_PRESENTATION;
  const { pixels } = image;
  const dataset = {
    SOPClassUID: sopClassUid,
    SOPInstanceUID: image.sopInstanceUid,
    StudyInstanceUID: '2.25.1234',
    SeriesInstanceUID: '2.25.12345',
    AccessionNumber: 'SH00000042',
    PatientID: '9990000018',
    PatientName: 'SMITH^Ada',
    Modality: 'MG',
    ViewPosition: 'CC',
    ImageLaterality: 'L',
    SamplesPerPixel: 1,
    PhotometricInterpretation: 'MONOCHROME2',
    Rows: image.rows,
    Columns: image.columns,
    BitsAllocated: 16,
    BitsStored: 14,
    HighBit: 13,
    PixelRepresentation: 0,
    PixelData: [pixels.buffer.slice(pixels.byteOffset, pixels.byteOffset + pixels.byteLength)],
    _vrMap: { PixelData: 'OW' },
    ...image.attributes,
  };
  return part10File(
    { sopClassUid, sopInstanceUid: image.sopInstanceUid, transferSyntaxUid: EXPLICIT_VR_LITTLE_ENDIAN },
    dataset,
  );
}

/** Small 14-bit pixels that look like something (a bright disc on a dark field), for the probe's image. */
export function probePixels(columns: number, rows: number): Buffer {
  const pixels = Buffer.alloc(columns * rows * 2);
  const [cx, cy, r] = [columns * 0.3, rows / 2, Math.min(columns, rows) * 0.45];
  for (let y = 0; y < rows; y++)
    for (let x = 0; x < columns; x++) {
      const d = Math.hypot(x - cx, y - cy);
      const value = d < r ? Math.round(9000 - (d / r) * 5000 + ((x * 31 + y * 17) % 97)) : 200 + ((x + y) % 13);
      pixels.writeUInt16LE(value, (y * columns + x) * 2);
    }
  return pixels;
}
