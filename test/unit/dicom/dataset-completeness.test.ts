import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import dcmjs from 'dcmjs';
import { afterAll, describe, expect, it } from 'vitest';
import { datasetShape } from '../../../src/dicom/dataset-completeness.js';

const EXPLICIT = '1.2.840.10008.1.2.1';
const IMPLICIT = '1.2.840.10008.1.2';

/** dcmjs's dataset writer, which src/types/dcmjs.d.ts does not declare (the gateway itself never needs it). */
const writer = dcmjs.data as unknown as {
  WriteBufferStream: new () => { getBuffer(): ArrayBuffer };
  DicomMessage: { write(dict: unknown, stream: unknown, transferSyntax: string, options: object): void };
};

/** Each top-level element encoded on its own, so the boundaries between them are known. */
function encode(elements: Record<string, unknown>, transferSyntax: string): Buffer[] {
  return Object.entries(elements).map(([keyword, value]) => {
    const dataset: Record<string, unknown> = { [keyword]: value };
    if (keyword === 'PixelData') dataset._vrMap = { PixelData: 'OW' };
    const stream = new writer.WriteBufferStream();
    writer.DicomMessage.write(dcmjs.data.DicomMetaDictionary.denaturalizeDataset(dataset), stream, transferSyntax, {});
    return Buffer.from(stream.getBuffer());
  });
}

const pixels = new Uint8Array(64).map((_, i) => i);
const elements = {
  SOPClassUID: '1.2.840.10008.5.1.4.1.1.1.2',
  SOPInstanceUID: '2.25.42',
  PatientID: '9990000018',
  ViewCodeSequence: [
    {
      CodeValue: 'R-10242',
      CodingSchemeDesignator: 'SRT',
      CodeMeaning: 'cranio-caudal',
      ViewModifierCodeSequence: [{ CodeValue: 'R-102D2', CodingSchemeDesignator: 'SRT', CodeMeaning: 'nipple' }],
    },
  ],
  PixelData: [pixels.buffer],
};

describe('dataset completeness (is a received dataset whole?)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'shape-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const shapeOf = (bytes: Buffer, explicit: boolean, offset = 0) => {
    const file = join(dir, 'ds');
    writeFileSync(file, Buffer.concat([Buffer.alloc(offset, 0x20), bytes]));
    const fd = openSync(file, 'r');
    try {
      return datasetShape(fd, offset, offset + bytes.length, explicit);
    } finally {
      closeSync(fd);
    }
  };

  for (const [name, syntax] of [
    ['Explicit VR Little Endian', EXPLICIT],
    ['Implicit VR Little Endian', IMPLICIT],
  ] as const) {
    it(`${name}: whole is whole; cut anywhere inside an element is found; cut between elements loses the pixels`, () => {
      const parts = encode(elements, syntax);
      const whole = Buffer.concat(parts);
      const explicit = syntax === EXPLICIT;
      expect(shapeOf(whole, explicit, 132)).toEqual({ hasPixelData: true });
      const boundaries = new Set(parts.map((_, i) => Buffer.concat(parts.slice(0, i)).length));
      for (let cut = 0; cut < whole.length; cut++) {
        const shape = shapeOf(whole.subarray(0, cut), explicit);
        if (boundaries.has(cut)) expect(shape, `cut at ${cut}`).toEqual({ hasPixelData: false });
        else expect(shape.incomplete, `cut at ${cut}`).toBeDefined();
      }
    });
  }

  it('follows undefined-length sequences and encapsulated pixel data', () => {
    const le32 = (n: number) => {
      const b = Buffer.alloc(4);
      b.writeUInt32LE(n >>> 0);
      return b;
    };
    const tag = (group: number, element: number) =>
      Buffer.from([group & 0xff, group >> 8, element & 0xff, element >> 8]);
    const sequence = Buffer.concat([
      tag(0x0054, 0x0220),
      Buffer.from('SQ'),
      Buffer.alloc(2),
      le32(0xffffffff),
      tag(0xfffe, 0xe000),
      le32(0xffffffff),
      tag(0x0008, 0x0100),
      Buffer.from('SH'),
      Buffer.from([2, 0]),
      Buffer.from('R1'),
      tag(0xfffe, 0xe00d),
      le32(0),
      tag(0xfffe, 0xe0dd),
      le32(0),
    ]);
    const encapsulated = Buffer.concat([
      tag(0x7fe0, 0x0010),
      Buffer.from('OB'),
      Buffer.alloc(2),
      le32(0xffffffff),
      tag(0xfffe, 0xe000),
      le32(0),
      tag(0xfffe, 0xe000),
      le32(4),
      Buffer.from([1, 2, 3, 4]),
      tag(0xfffe, 0xe0dd),
      le32(0),
    ]);
    const whole = Buffer.concat([sequence, encapsulated]);
    expect(shapeOf(whole, true)).toEqual({ hasPixelData: true });
    for (let cut = sequence.length + 1; cut < whole.length; cut++)
      expect(shapeOf(whole.subarray(0, cut), true).incomplete, `cut at ${cut}`).toBeDefined();
    expect(shapeOf(Buffer.concat([whole, Buffer.from([0xfe, 0xff])]), true).incomplete).toMatch(/cut short/);
  });
});
