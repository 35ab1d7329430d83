import { execFile, execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  createReadStream,
  createWriteStream,
  existsSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { PassThrough, Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import dcmjsCodecs from 'dcmjs-codecs';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  DEFAULT_STRIPE_ROWS,
  IMAGE_MAGIC,
  IMAGE_PACKAGE_VERSION,
  loadImageCodecs,
  packImage,
  restoreImage,
  type PackOptions,
  type PackSummary,
  type RestoreSummary,
} from '../../../src/transfer/image-package.js';
import { newTransferKeyPair, openStream, PackageRefused, sealStream } from '../../../src/transfer/sealed-package.js';
import { realisticMammogramPixels } from '../../support/realistic-mammogram.js';
import { BREAST_TOMOSYNTHESIS, part10Image, writeTomosynthesis } from '../../support/tomosynthesis.js';

const MB = 1024 * 1024;
const IMPLICIT = '1.2.840.10008.1.2';
const EXPLICIT = '1.2.840.10008.1.2.1';
const MG_FOR_PRESENTATION = '1.2.840.10008.5.1.4.1.1.1.2';
const DCMCJPLS = '/usr/bin/dcmcjpls';

/** The worked example in docs/image-package.md: any change to the format must change both. */
const EXAMPLE = {
  dataset: {
    SOPClassUID: MG_FOR_PRESENTATION,
    SOPInstanceUID: '2.25.7',
    StudyInstanceUID: '2.25.8',
    AccessionNumber: 'SH1',
    PatientID: '9990000018',
    SamplesPerPixel: 1,
    PhotometricInterpretation: 'MONOCHROME2',
    Rows: 2,
    Columns: 4,
    BitsAllocated: 16,
    BitsStored: 12,
    HighBit: 11,
    PixelRepresentation: 0,
    PixelData: [Uint16Array.from([0, 1, 2, 3, 4092, 4093, 4094, 4095]).buffer],
    _vrMap: { PixelData: 'OW' },
  },
  originalSha256: '3d3e7e98fb4792c254ed84b61f5c44005f8d55a91905bb4f70146af3f5825bf5',
  /** Packed with stripeRows 1: two stripes of one row. */
  stripeRows: 1,
  packed:
    '5348494d47310a00000001897b2276657273696f6e223a322c22736f70496e7374616e6365556964223a22322e32352e37222c22736f70436c617373556964223a22312e322e3834302e31303030382e352e312e342e312e312e312e32222c227374756479496e7374616e6365556964223a22322e32352e38222c22616363657373696f6e4e756d626572223a22534831222c2270617469656e744964223a2239393930303030303138222c227472616e7366657253796e746178556964223a22312e322e3834302e31303030382e312e322e31222c22636f646563223a226a7065672d6c73222c226c61796f7574223a7b227072656669784279746573223a3530362c226672616d6573223a312c226672616d654279746573223a31362c22726f7773223a322c22636f6c756d6e73223a342c22737472697065526f7773223a312c2262697473416c6c6f6361746564223a31362c22656e636f6465644269747350657253616d706c65223a31322c2273616d706c6573506572506978656c223a312c227375666669784279746573223a307d7d00000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000004449434d02000000554c0400a6000000020001004f4200000200000000010200020055491c00312e322e3834302e31303030382e352e312e342e312e312e312e32000200030055490600322e32352e370200100055491400312e322e3834302e31303030382e312e322e31000200120055492c00322e32352e3136303238353138363439383439383437333437303933343534323331323334383437333630310200130053480e0053435245454e494e4748554231200800160055491c00312e322e3834302e31303030382e352e312e342e312e312e312e32000800180055490600322e32352e37080050005348040053483120100020004c4f0a003939393030303030313820000d0055490600322e32352e38280002005553020001002800040043530c004d4f4e4f4348524f4d45322028001000555302000200280011005553020004002800000155530200100028000101555302000c0028000201555302000b0028000301555302000000e07f10004f570000100000000000001effd8fff7000b0c0001000401011100ffda0008010100000000a0c182ffd90000001fffd8fff7000b0c0001000401011100ffda000801010000000046830610ffd90000010c7b226f726967696e616c4279746573223a3532322c226f726967696e616c536861323536223a2233643365376539386662343739326332353465643834623631663563343430303566386435356139313930356262346637303134366166336635383235626635222c22706978656c536861323536223a2234326630343036333861366431613633363464316263336363343736333732616335636432396534663739613931323063633765333965623035393261353964222c227061636b6564536861323536223a2233353665656136653161663263316131353465363134326636393137613563333134613036306335393566666463613831386435336133363561386537346130227d',
};

const sha = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'image-package-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Image {
  rows: number;
  columns: number;
  pixels: Uint8Array;
  frames?: number;
  bitsAllocated?: number;
  bitsStored?: number;
  pixelRepresentation?: number;
  samplesPerPixel?: number;
  sopInstanceUid?: string;
  extra?: Record<string, unknown>;
}

function dataset(image: Image): Record<string, unknown> {
  const bitsAllocated = image.bitsAllocated ?? 16;
  const bitsStored = image.bitsStored ?? 14;
  const pixels = image.pixels;
  return {
    SOPClassUID: MG_FOR_PRESENTATION,
    SOPInstanceUID: image.sopInstanceUid ?? '2.25.4242',
    StudyInstanceUID: '2.25.1234',
    SeriesInstanceUID: '2.25.12345',
    AccessionNumber: 'SH00000042',
    PatientID: '9990000018',
    PatientName: 'SMITH^Ada',
    Modality: 'MG',
    SamplesPerPixel: image.samplesPerPixel ?? 1,
    PhotometricInterpretation: (image.samplesPerPixel ?? 1) === 1 ? 'MONOCHROME2' : 'RGB',
    ...(image.frames === undefined ? {} : { NumberOfFrames: image.frames }),
    Rows: image.rows,
    Columns: image.columns,
    BitsAllocated: bitsAllocated,
    BitsStored: bitsStored,
    HighBit: bitsStored - 1,
    PixelRepresentation: image.pixelRepresentation ?? 0,
    ...image.extra,
    PixelData: [pixels.buffer.slice(pixels.byteOffset, pixels.byteOffset + pixels.byteLength)],
    _vrMap: { PixelData: bitsAllocated === 8 ? 'OB' : 'OW' },
  };
}

function writeImage(name: string, bytes: Buffer): string {
  const path = join(dir, name);
  writeFileSync(path, bytes);
  return path;
}

function collector(): { sink: Writable; bytes: () => Buffer } {
  const chunks: Buffer[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      chunks.push(chunk);
      done();
    },
  });
  return { sink, bytes: () => Buffer.concat(chunks) };
}

async function pack(path: string, options?: PackOptions): Promise<{ packed: Buffer; summary: PackSummary }> {
  const { sink, bytes } = collector();
  const summary = await packImage(path, sink, options);
  return { packed: bytes(), summary };
}

/** Restores from a buffer fed in odd-sized pieces, so that every field is split across chunks somewhere. */
async function restore(packed: Buffer, pieceBytes = 65521): Promise<{ restored: Buffer; summary: RestoreSummary }> {
  const pieces: Buffer[] = [];
  for (let at = 0; at < packed.length; at += pieceBytes) pieces.push(packed.subarray(at, at + pieceBytes));
  const { sink, bytes } = collector();
  const summary = await restoreImage(Readable.from(pieces), sink);
  return { restored: bytes(), summary };
}

async function refusal(packed: Buffer, pieceBytes?: number): Promise<PackageRefused> {
  try {
    await restore(packed, pieceBytes);
  } catch (error) {
    if (error instanceof PackageRefused) return error;
    throw error;
  }
  throw new Error('the damaged package was restored');
}

interface Layout {
  prefixBytes: number;
  frames: number;
  rows: number;
  columns: number;
  stripeRows: number;
  suffixBytes: number;
}

/**
 * A package taken apart by walking its lengths: the header, where each codestream is (frame by frame, stripe by
 * stripe; its u32 length is just before), where the stripes end, and the trailer. Throws unless the trailer (JSON)
 * ends exactly at the package's end, so the number of codestreams is checked too.
 */
function parts(packed: Buffer): {
  header: { version: number; layout: Layout };
  codestreams: { offset: number; length: number }[];
  stripesEnd: number;
  trailer: Record<string, unknown>;
} {
  const headerLength = packed.readUInt32BE(8);
  const header = JSON.parse(packed.subarray(12, 12 + headerLength).toString()) as { version: number; layout: Layout };
  const { layout } = header;
  let at = 12 + headerLength + layout.prefixBytes;
  const codestreams: { offset: number; length: number }[] = [];
  const stripes = layout.frames * Math.ceil(layout.rows / Math.max(layout.stripeRows, 1));
  for (let i = 0; i < stripes; i++) {
    codestreams.push({ offset: at + 4, length: packed.readUInt32BE(at) });
    at += 4 + packed.readUInt32BE(at);
  }
  const stripesEnd = at;
  at += layout.suffixBytes;
  const trailerLength = packed.readUInt32BE(at);
  if (at + 4 + trailerLength !== packed.length) throw new Error('the trailer does not end the package');
  const trailer = JSON.parse(packed.subarray(at + 4).toString()) as Record<string, unknown>;
  return { header, codestreams, stripesEnd, trailer };
}

/** Where the `index`th codestream is in a package (counting every stripe of every frame). */
function codestreamPlace(packed: Buffer, index = 0): { offset: number; length: number } {
  return parts(packed).codestreams[index]!;
}

/** A JPEG-LS codestream's SOF55 fields: bit depth P, rows Y and columns X. */
function sof55(codestream: Buffer): { bits: number; rows: number; columns: number } {
  const at = codestream.indexOf(Buffer.from('fff7', 'hex'));
  if (at < 0) throw new Error('no SOF55');
  return { bits: codestream[at + 4]!, rows: codestream.readUInt16BE(at + 5), columns: codestream.readUInt16BE(at + 7) };
}

/** The package with its codestreams replaced by what `change` makes of them (everything else as it was). */
function withCodestreams(packed: Buffer, change: (codestreams: Buffer[]) => Buffer[]): Buffer {
  const { codestreams, stripesEnd } = parts(packed);
  const head = packed.subarray(0, codestreams[0]!.offset - 4);
  const changed = change(codestreams.map(({ offset, length }) => packed.subarray(offset, offset + length)));
  const framed = changed.flatMap((codestream) => {
    const length = Buffer.alloc(4);
    length.writeUInt32BE(codestream.length);
    return [length, codestream];
  });
  return Buffer.concat([head, ...framed, packed.subarray(stripesEnd)]);
}

/** The package with its header's layout changed (re-serialized, so the rest is as it was). */
function withLayout(packed: Buffer, changes: Partial<Layout>): Buffer {
  const headerLength = packed.readUInt32BE(8);
  const header = JSON.parse(packed.subarray(12, 12 + headerLength).toString()) as { layout: Layout };
  const json = Buffer.from(JSON.stringify({ ...header, layout: { ...header.layout, ...changes } }));
  const length = Buffer.alloc(4);
  length.writeUInt32BE(json.length);
  return Buffer.concat([packed.subarray(0, 8), length, json, packed.subarray(12 + headerLength)]);
}

/** Resolves once `ready()` holds (checked every few milliseconds), or fails after `ms`. */
async function until(ready: () => boolean, ms = 10_000): Promise<void> {
  for (const started = Date.now(); !ready(); await new Promise((resolve) => setTimeout(resolve, 5)))
    if (Date.now() - started > ms) throw new Error(`not ready after ${ms} ms`);
}

async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

describe('image packages', () => {
  // First in the file, so CharLS's WebAssembly memory has not yet grown for the larger images of other tests.
  // About 15 s on an idle core; more when the whole suite shares the machine.
  it(
    'packs and restores a 250 MB tomosynthesis object a frame at a time, in bounded memory',
    { timeout: 180_000 },
    async () => {
      const path = join(dir, 'large-tomo.dcm');
      const image = { frames: 60, rows: 2048, columns: 1024, sopInstanceUid: '2.25.250' };
      // Made in another process, so that none of its memory is in this one's to reuse.
      const generator = pathToFileURL(resolve('test/support/tomosynthesis.ts')).href;
      const written = JSON.parse(
        execFileSync(
          process.execPath,
          [
            '--import',
            'tsx',
            '--input-type=module',
            '-e',
            `import { writeTomosynthesis } from ${JSON.stringify(generator)};
           process.stdout.write(JSON.stringify(writeTomosynthesis(${JSON.stringify(path)}, ${JSON.stringify(image)})));`,
          ],
          { encoding: 'utf8' },
        ),
      ) as { bytes: number; sha256: string };
      expect(written.bytes).toBeGreaterThan(250 * 1e6);
      await loadImageCodecs();
      const baseline = process.memoryUsage().rss;
      let peak = baseline;
      const sample = () => (peak = Math.max(peak, process.memoryUsage().rss));
      const timer = setInterval(sample, 5);
      let packed: PackSummary;
      try {
        packed = await packImage(path, createWriteStream(join(dir, 'large-tomo.pkg')));
        sample();
        await restoreImage(
          createReadStream(join(dir, 'large-tomo.pkg')),
          createWriteStream(join(dir, 'large-tomo.out')),
        );
        sample();
      } finally {
        clearInterval(timer);
      }
      expect(packed.frames).toBe(60);
      expect(packed.codec).toBe('jpeg-ls');
      expect(await sha256File(join(dir, 'large-tomo.out'))).toBe(written.sha256);
      expect(peak - baseline).toBeLessThan(120 * MB);
      rmSync(path);
      rmSync(join(dir, 'large-tomo.out'));
    },
  );

  it('matches the documented worked example, and restores it', async () => {
    const original = part10Image(EXPLICIT, EXAMPLE.dataset);
    expect(sha(original)).toBe(EXAMPLE.originalSha256);
    const { packed, summary } = await pack(writeImage('example.dcm', original), { stripeRows: EXAMPLE.stripeRows });
    expect(packed.toString('hex')).toBe(EXAMPLE.packed);
    expect(summary).toMatchObject({ codec: 'jpeg-ls', frames: 1, originalBytes: 522, packedBytes: 1252 });
    const { header, codestreams } = parts(packed);
    expect(header.version).toBe(IMAGE_PACKAGE_VERSION);
    expect(IMAGE_PACKAGE_VERSION).toBe(2);
    expect(codestreams.map(({ offset, length }) => sof55(packed.subarray(offset, offset + length)))).toEqual([
      { bits: 12, rows: 1, columns: 4 },
      { bits: 12, rows: 1, columns: 4 },
    ]);
    expect((await restore(packed, 1)).restored.equals(original)).toBe(true);
  });

  it('restores a realistic 14-bit mammogram bit for bit, in under half its size', async () => {
    const [columns, rows] = [2560, 3328];
    const pixels = new Uint8Array(realisticMammogramPixels(columns, rows).buffer);
    const original = part10Image(EXPLICIT, dataset({ rows, columns, pixels }));
    const path = writeImage('mammogram.dcm', original);
    const { packed, summary } = await pack(path);
    expect(summary).toMatchObject({
      sopInstanceUid: '2.25.4242',
      sopClassUid: MG_FOR_PRESENTATION,
      studyInstanceUid: '2.25.1234',
      accessionNumber: 'SH00000042',
      patientId: '9990000018',
      transferSyntaxUid: EXPLICIT,
      codec: 'jpeg-ls',
      frames: 1,
      widenedFrames: 0,
      originalBytes: original.length,
      originalSha256: sha(original),
      pixelSha256: sha(pixels),
      packedBytes: packed.length,
    });
    expect(packed.subarray(0, 8).equals(IMAGE_MAGIC)).toBe(true);
    expect(original.length / packed.length).toBeGreaterThanOrEqual(2);
    const { restored, summary: restoredSummary } = await restore(packed);
    expect(sha(restored)).toBe(sha(original));
    expect(restoredSummary).toEqual(summary);
  });

  it('restores words above BitsStored bit for bit: overlay bits, signed values, junk', async () => {
    const [rows, columns] = [64, 48];
    const clean = Uint16Array.from({ length: rows * columns }, (_, i) => (i * 37) % 4096);
    const overlay = clean.map((v, i) => (i % columns < 10 && i < 20 * columns ? v | 0x8000 : v));
    const signed = Int16Array.from({ length: rows * columns }, (_, i) => ((i * 13) % 4096) - 2048);
    const junk = Uint16Array.from({ length: rows * columns }, (_, i) => (i * 40503) & 0xffff);
    const frames = [clean, overlay, new Uint16Array(signed.buffer), junk];
    const pixels = new Uint8Array(rows * columns * 2 * frames.length);
    frames.forEach((frame, i) => pixels.set(new Uint8Array(frame.buffer), i * rows * columns * 2));
    for (const pixelRepresentation of [0, 1]) {
      const original = part10Image(
        EXPLICIT,
        dataset({ rows, columns, pixels, frames: 4, bitsStored: 12, pixelRepresentation }),
      );
      const { packed, summary } = await pack(writeImage(`high-bits-${pixelRepresentation}.dcm`, original));
      expect(summary).toMatchObject({ codec: 'jpeg-ls', frames: 4, widenedFrames: 3, pixelSha256: sha(pixels) });
      const { restored, summary: back } = await restore(packed);
      expect(sha(restored)).toBe(sha(original));
      expect(back.widenedFrames).toBe(3);
    }
  });

  it('restores any pixel words bit for bit, whatever BitsAllocated, BitsStored and frame size', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          rows: fc.integer({ min: 1, max: 24 }),
          columns: fc.integer({ min: 1, max: 24 }),
          frames: fc.integer({ min: 1, max: 3 }),
          stripeRows: fc.integer({ min: 1, max: 30 }),
          bitsAllocated: fc.constantFrom(8, 16),
          bitsStored: fc.integer({ min: 1, max: 16 }),
          pixelRepresentation: fc.constantFrom(0, 1),
          masked: fc.boolean(),
          seed: fc.integer(),
        }),
        async (p) => {
          const bitsStored = Math.min(p.bitsStored, p.bitsAllocated);
          const bytes = p.rows * p.columns * p.frames * (p.bitsAllocated / 8);
          if (bytes % 2) return; // odd-length Pixel Data has a padding byte: covered by the 'none' cases
          let state = p.seed || 1;
          const pixels = new Uint8Array(bytes).map((_, i) => {
            state = (Math.imul(state, 1103515245) + 12345) | 0;
            const byte = (state >>> 16) & 0xff;
            // Masked: words within BitsStored (the high byte of a 16-bit word masked to what is left).
            if (!p.masked) return byte;
            const bitsInByte = p.bitsAllocated === 8 ? bitsStored : i % 2 ? Math.max(0, bitsStored - 8) : 8;
            return byte & ((1 << bitsInByte) - 1);
          });
          const original = part10Image(EXPLICIT, dataset({ ...p, bitsStored, pixels }));
          const { packed, summary } = await pack(writeImage('property.dcm', original), { stripeRows: p.stripeRows });
          expect(summary.codec).toBe('jpeg-ls');
          expect(parts(packed).codestreams.length).toBe(p.frames * Math.ceil(p.rows / p.stripeRows));
          const { restored } = await restore(packed, 97);
          expect(sha(restored)).toBe(sha(original));
        },
      ),
      { numRuns: 60 },
    );
  });

  it('restores a multi-frame tomosynthesis object frame by frame', async () => {
    const path = join(dir, 'tomo.dcm');
    const written = writeTomosynthesis(path, {
      frames: 8,
      rows: 512,
      columns: 512,
      sopInstanceUid: '2.25.8512',
      accessionNumber: 'SH00000043',
      bitsStored: 12,
    });
    const packagePath = join(dir, 'tomo.pkg');
    const summary = await packImage(path, createWriteStream(packagePath));
    expect(summary).toMatchObject({
      sopInstanceUid: '2.25.8512',
      sopClassUid: BREAST_TOMOSYNTHESIS,
      accessionNumber: 'SH00000043',
      codec: 'jpeg-ls',
      frames: 8,
      widenedFrames: 0,
      originalBytes: written.bytes,
      originalSha256: written.sha256,
      pixelSha256: written.pixelSha256,
    });
    expect(summary.packedBytes).toBeLessThan(written.bytes / 2);
    const restoredPath = join(dir, 'tomo.out');
    const back = await restoreImage(createReadStream(packagePath), createWriteStream(restoredPath));
    expect(back).toEqual(summary);
    expect(await sha256File(restoredPath)).toBe(written.sha256);
  });

  it('packs Implicit VR Little Endian with JPEG-LS too', async () => {
    const [rows, columns] = [300, 200];
    const pixels = new Uint8Array(realisticMammogramPixels(columns, rows, 3).buffer);
    const original = part10Image(IMPLICIT, dataset({ rows, columns, pixels }));
    // Implicit VR: (0008,0016) is followed by a 4-byte length (28), not a VR.
    expect(original.includes(Buffer.from('080016001c000000', 'hex'))).toBe(true);
    const { packed, summary } = await pack(writeImage('implicit.dcm', original));
    expect(summary).toMatchObject({ transferSyntaxUid: IMPLICIT, codec: 'jpeg-ls', pixelSha256: sha(pixels) });
    expect(sha((await restore(packed)).restored)).toBe(sha(original));
  });

  it.skipIf(!existsSync(DCMCJPLS))(
    `packs an already JPEG-LS (encapsulated) image raw, bit for bit (skipped without DCMTK's ${DCMCJPLS})`,
    async () => {
      const [rows, columns] = [512, 384];
      const pixels = new Uint8Array(realisticMammogramPixels(columns, rows, 5).buffer);
      const source = writeImage('to-compress.dcm', part10Image(EXPLICIT, dataset({ rows, columns, pixels })));
      const path = join(dir, 'jpeg-ls.dcm');
      await promisify(execFile)(DCMCJPLS, [source, path]);
      const original = readFileSync(path);
      const { packed, summary } = await pack(path);
      expect(summary).toMatchObject({
        transferSyntaxUid: '1.2.840.10008.1.2.4.80',
        codec: 'none',
        reason: expect.stringMatching(/not Implicit or Explicit VR Little Endian/),
        frames: 0,
        pixelSha256: sha(original),
        originalSha256: sha(original),
      });
      expect(packed.length).toBeLessThan(original.length + 1024);
      expect(sha((await restore(packed)).restored)).toBe(sha(original));
    },
  );

  it('packs raw, bit for bit, what it does not compress', async () => {
    const mono = (extra: Partial<Image> = {}) =>
      dataset({ rows: 4, columns: 4, pixels: new Uint8Array(32).map((_, i) => i), ...extra });
    const noPixels = mono();
    delete noPixels.PixelData;
    delete noPixels._vrMap;
    const cases: [string, Buffer, RegExp][] = [
      ['no pixel data', part10Image(EXPLICIT, noPixels), /no Pixel Data/],
      [
        'float pixel data',
        part10Image(EXPLICIT, { ...noPixels, FloatPixelData: [new Float32Array(16).fill(0.5).buffer] }),
        /no Pixel Data/,
      ],
      [
        'colour',
        part10Image(
          EXPLICIT,
          mono({
            samplesPerPixel: 3,
            bitsAllocated: 8,
            bitsStored: 8,
            pixels: new Uint8Array(48),
            extra: { PlanarConfiguration: 0 },
          }),
        ),
        /SamplesPerPixel is 3/,
      ],
      ['32-bit words', part10Image(EXPLICIT, mono({ bitsAllocated: 32, bitsStored: 32 })), /BitsAllocated is 32/],
      ['pixel data of the wrong length', part10Image(EXPLICIT, mono({ rows: 5 })), /Pixel Data is 32 bytes/],
      [
        'odd-length 8-bit pixel data (a padding byte)',
        part10Image(
          EXPLICIT,
          mono({ rows: 3, columns: 3, bitsAllocated: 8, bitsStored: 8, pixels: new Uint8Array(10) }),
        ),
        /Pixel Data is 10 bytes/,
      ],
      ['a dataset cut short', part10Image(EXPLICIT, mono()).subarray(0, -7), /not whole/],
    ];
    for (const [name, original, reason] of cases) {
      const { packed, summary } = await pack(writeImage('raw.dcm', original));
      expect({ name, codec: summary.codec, reason: summary.reason }).toEqual({
        name,
        codec: 'none',
        reason: expect.stringMatching(reason),
      });
      const { restored, summary: back } = await restore(packed, 13);
      expect(sha(restored)).toBe(sha(original));
      expect(back.reason).toBe(summary.reason);
    }
    // Pixel data found but not compressed: pixelSha256 is still of its value alone.
    const wrongLength = part10Image(EXPLICIT, mono({ rows: 5 }));
    expect((await pack(writeImage('raw.dcm', wrongLength))).summary.pixelSha256).toBe(
      sha(new Uint8Array(32).map((_, i) => i)),
    );
    const forced = await pack(writeImage('forced.dcm', part10Image(EXPLICIT, mono())), { codec: 'none' });
    expect(forced.summary).toMatchObject({ codec: 'none', reason: "codec 'none' was asked for" });
  });

  it('verifies each frame as it packs when asked, at no cost to the result', async () => {
    const pixels = new Uint8Array(realisticMammogramPixels(256, 256, 9).buffer);
    const path = writeImage('verify.dcm', part10Image(EXPLICIT, dataset({ rows: 256, columns: 256, pixels })));
    expect((await pack(path, { verify: true })).packed.equals((await pack(path)).packed)).toBe(true);
  });

  it('passes through a sealed package: pack, seal, open, restore, all streamed', async () => {
    const hub = newTransferKeyPair();
    const path = join(dir, 'sealed-tomo.dcm');
    const written = writeTomosynthesis(path, { frames: 3, rows: 256, columns: 200, sopInstanceUid: '2.25.33' });
    const sealedPath = join(dir, 'sealed-tomo.shpkg');
    const seal = sealStream(hub.publicKey);
    await Promise.all([packImage(path, seal), pipeline(seal, createWriteStream(sealedPath))]);
    const open = openStream(hub.privateKey);
    const { sink, bytes } = collector();
    await Promise.all([pipeline(createReadStream(sealedPath), open), restoreImage(open, sink)]);
    expect(sha(bytes())).toBe(written.sha256);
  });

  describe('stripes', () => {
    // 37 rows in stripes of 8: four of 8 rows and a last one of 5.
    const [rows, columns, stripeRows] = [37, 64, 8];
    const rowBytes = columns * 2;
    const framePixels = (seed: number) => new Uint8Array(realisticMammogramPixels(columns, rows, seed).buffer);
    let single: { path: string; original: Buffer; packed: Buffer };
    let multi: { original: Buffer; pixels: Uint8Array; packed: Buffer; summary: PackSummary };
    beforeAll(async () => {
      const original = part10Image(EXPLICIT, dataset({ rows, columns, pixels: framePixels(21) }));
      const path = writeImage('stripes.dcm', original);
      single = { path, original, packed: (await pack(path, { stripeRows })).packed };
      // Three frames; the middle one has a word above BitsStored (14) in its fourth stripe only.
      const pixels = new Uint8Array(rows * rowBytes * 3);
      [22, 23, 24].forEach((seed, i) => pixels.set(framePixels(seed), i * rows * rowBytes));
      const high = rows * rowBytes + 30 * rowBytes + 7 * 2;
      pixels[high + 1]! |= 0x80;
      const multiOriginal = part10Image(EXPLICIT, dataset({ rows, columns, pixels, frames: 3 }));
      const multiPacked = await pack(writeImage('stripes-3.dcm', multiOriginal), { stripeRows });
      multi = { original: multiOriginal, pixels, ...multiPacked };
    });
    const stripeOf = (packed: Buffer, index: number) => {
      const { offset, length } = codestreamPlace(packed, index);
      return packed.subarray(offset, offset + length);
    };

    it('packs a frame as stripes of stripeRows rows, the last one shorter, and restores it bit for bit', async () => {
      const { header, codestreams } = parts(single.packed);
      expect(header.layout).toMatchObject({ rows, columns, stripeRows, frames: 1 });
      expect(codestreams.map((_, i) => sof55(stripeOf(single.packed, i)))).toEqual([
        ...Array.from({ length: 4 }, () => ({ bits: 14, rows: 8, columns })),
        { bits: 14, rows: 5, columns },
      ]);
      const { restored, summary } = await restore(single.packed, 97);
      expect(restored.equals(single.original)).toBe(true);
      expect(summary).toMatchObject({ frames: 1, widenedFrames: 0, originalSha256: sha(single.original) });
    });

    it('takes DEFAULT_STRIPE_ROWS rows unless told, clamped to the rows, and refuses a stripeRows of no rows', async () => {
      expect(DEFAULT_STRIPE_ROWS).toBe(256);
      // The rows of each codestream, and the header's stripeRows.
      const stripesOf = async (path: string, options?: PackOptions) => {
        const { packed } = await pack(path, options);
        const { header, codestreams } = parts(packed);
        const rowsOf = codestreams.map(({ offset, length }) => sof55(packed.subarray(offset, offset + length)).rows);
        return { stripeRows: header.layout.stripeRows, rows: rowsOf };
      };
      expect(await stripesOf(single.path)).toEqual({ stripeRows: rows, rows: [rows] });
      expect(await stripesOf(single.path, { stripeRows: 1000 })).toEqual({ stripeRows: rows, rows: [rows] });
      expect(await stripesOf(single.path, { stripeRows: 1 })).toEqual({
        stripeRows: 1,
        rows: Array<number>(rows).fill(1),
      });
      const tall = writeImage(
        'tall.dcm',
        part10Image(EXPLICIT, dataset({ rows: 300, columns: 16, pixels: new Uint8Array(300 * 16 * 2) })),
      );
      expect(await stripesOf(tall)).toEqual({ stripeRows: DEFAULT_STRIPE_ROWS, rows: [256, 44] });
      for (const bad of [0, -8, 1.5, Number.NaN])
        await expect(pack(single.path, { stripeRows: bad })).rejects.toThrow(/stripeRows must be a positive integer/);
    });

    it('packs every frame in stripes, each frame at one depth, and restores them bit for bit', async () => {
      expect(multi.summary).toMatchObject({
        codec: 'jpeg-ls',
        frames: 3,
        widenedFrames: 1,
        pixelSha256: sha(multi.pixels),
      });
      const { codestreams } = parts(multi.packed);
      expect(codestreams).toHaveLength(15);
      // The middle frame is encoded at 16 bits in all its stripes, not only the one with the high word.
      expect(codestreams.map((_, i) => sof55(stripeOf(multi.packed, i)).bits)).toEqual([
        ...Array<number>(5).fill(14),
        ...Array<number>(5).fill(16),
        ...Array<number>(5).fill(14),
      ]);
      const { restored, summary } = await restore(multi.packed, 61);
      expect(restored.equals(multi.original)).toBe(true);
      expect(summary).toEqual(multi.summary);
    });

    it('refuses a header whose stripeRows does not fit the rows', async () => {
      for (const bad of [0, rows + 1])
        expect((await refusal(withLayout(single.packed, { stripeRows: bad }))).message).toMatch(
          new RegExp(`layout is not valid: stripeRows ${bad}, not 1 to the ${rows} rows`),
        );
      // Other stripeRows that fit are read as they say: the codestreams then do not.
      expect((await refusal(withLayout(single.packed, { stripeRows: 9 }))).message).toMatch(
        /Frame 0, stripe 0 is 64 × 8 × 1, not the layout's 64 × 9 × 1/,
      );
      const raw = (await pack(single.path, { codec: 'none' })).packed;
      expect(parts(raw).header.layout.stripeRows).toBe(0);
      expect((await refusal(withLayout(raw, { stripeRows: 4 }))).message).toMatch(
        /codec 'none' with stripeRows 4, not 0/,
      );
    });

    it('refuses a stripe of the wrong rows, a frame whose stripes differ in depth, a stripe cut short', async () => {
      // The short last stripe in the place of the second, and a full one in the place of the last.
      const swapped = (packed: Buffer, a: number, b: number) =>
        withCodestreams(packed, (all) =>
          all.map((codestream, i) => (i === a ? all[b]! : i === b ? all[a]! : codestream)),
        );
      expect((await refusal(swapped(single.packed, 1, 4))).message).toMatch(
        /Frame 0, stripe 1 is 64 × 5 × 1, not the layout's 64 × 8 × 1/,
      );
      const lastAsFull = withCodestreams(single.packed, (all) => [...all.slice(0, 4), all[0]!]);
      expect((await refusal(lastAsFull)).message).toMatch(
        /Frame 0, stripe 4 is 64 × 8 × 1, not the layout's 64 × 5 × 1/,
      );
      // Every stripe alone is valid; 14-bit and 16-bit stripes in one frame are not.
      expect((await refusal(swapped(multi.packed, 1, 6))).message).toMatch(
        /Frame 0, stripe 1 has 16-bit samples, not the 14 of the frame's stripe 0/,
      );
      expect((await refusal(swapped(multi.packed, 7, 12))).message).toMatch(
        /Frame 1, stripe 2 has 14-bit samples, not the 16 of the frame's stripe 0/,
      );
      // The longest codestream is the stripe's, not the frame's: 1.25 × 5 rows × 128 bytes + 4096.
      const last = codestreamPlace(single.packed, 4);
      const long = Buffer.from(single.packed);
      long.writeUInt32BE(4897, last.offset - 4);
      expect((await refusal(long)).message).toMatch(/Frame 0, stripe 4 claims a 4897-byte codestream, over the 4896/);
      // Cut short in a stripe's length, in a stripe, or a stripe that is not all there.
      const third = codestreamPlace(single.packed, 2);
      expect((await refusal(single.packed.subarray(0, third.offset - 2))).message).toMatch(
        /cut short in the length of frame 0, stripe 2 \(/,
      );
      expect((await refusal(single.packed.subarray(0, third.offset + 10))).message).toMatch(
        /cut short in frame 0, stripe 2 \(/,
      );
      const halved = withCodestreams(single.packed, (all) =>
        all.map((codestream, i) => (i === 2 ? codestream.subarray(0, codestream.length >> 1) : codestream)),
      );
      expect((await refusal(halved)).message).toMatch(/Frame 0, stripe 2 does not decode: /);
      // The codec still works after the stripe that failed to decode.
      expect((await restore(multi.packed)).restored.equals(multi.original)).toBe(true);
    });

    it("writes each stripe to the sink as soon as it is encoded, before the frame's last", async () => {
      const { codestreams } = parts(single.packed);
      const firstEnd = codestreams[0]!.offset + codestreams[0]!.length;
      // CharLS's encoder, counted: how many stripes had been encoded when the sink had the first one.
      const encoder = vi.spyOn(dcmjsCodecs.NativeCodecs, 'encodeJpegLs');
      // The sink takes every write at once, but holds the first codestream's (its callback) until released.
      const writes: { at: number; chunk: Buffer }[] = [];
      let received = 0;
      let encodedByFirst: number | undefined;
      let release: (() => void) | undefined;
      const sink = new Writable({
        highWaterMark: 16,
        write(chunk: Buffer, _encoding, done) {
          writes.push({ at: received, chunk });
          received += chunk.length;
          if (release || received < firstEnd) return done();
          encodedByFirst = encoder.mock.calls.length;
          release = done;
        },
      });
      let packing = true;
      const packed = packImage(single.path, sink, { stripeRows }).finally(() => (packing = false));
      try {
        await until(() => release !== undefined);
        await new Promise((resolve) => setTimeout(resolve, 50));
        // The first stripe (an image of the first 8 rows) reached the sink before the second was encoded; the
        // packer then waits for the sink, having encoded the second stripe at most.
        expect(encodedByFirst).toBe(1);
        expect(sof55(writes.at(-1)!.chunk)).toEqual({ bits: 14, rows: 8, columns });
        expect(packing).toBe(true);
        expect(received).toBe(firstEnd);
        expect(encoder.mock.calls.length).toBeLessThanOrEqual(2);
        release!();
        await packed;
        expect(encoder).toHaveBeenCalledTimes(5);
      } finally {
        encoder.mockRestore();
      }
      expect(Buffer.concat(writes.map(({ chunk }) => chunk)).equals(single.packed)).toBe(true);
      // Each stripe in writes of its own: a write ends where each codestream does.
      const ends = new Set(writes.map(({ at, chunk }) => at + chunk.length));
      expect(codestreams.map(({ offset, length }) => ends.has(offset + length))).toEqual(Array(5).fill(true));
    });

    it('restores each stripe as soon as it has arrived', async () => {
      const { header, codestreams } = parts(single.packed);
      const secondStart = codestreams[1]!.offset - 4;
      const source = new PassThrough();
      const { sink, bytes } = collector();
      const restoring = restoreImage(source, sink);
      source.write(single.packed.subarray(0, secondStart));
      const firstStripeEnd = header.layout.prefixBytes + stripeRows * rowBytes;
      await until(() => bytes().length >= firstStripeEnd);
      await new Promise((resolve) => setTimeout(resolve, 20));
      // The file up to the end of the first stripe's rows, restored before the rest of the frame has come.
      expect(bytes().equals(single.original.subarray(0, firstStripeEnd))).toBe(true);
      source.end(single.packed.subarray(secondStart));
      await restoring;
      expect(bytes().equals(single.original)).toBe(true);
    });
  });

  describe('damaged packages', () => {
    let packed: Buffer;
    let original: Buffer;
    beforeAll(async () => {
      const pixels = new Uint8Array(realisticMammogramPixels(64, 96, 11).buffer);
      original = part10Image(EXPLICIT, dataset({ rows: 48, columns: 64, pixels, frames: 2 }));
      // Three stripes of 16 rows a frame.
      ({ packed } = await pack(writeImage('small.dcm', original), { stripeRows: 16 }));
    });

    it('refuses a package with a byte of a stripe codestream changed', async () => {
      const { offset, length } = codestreamPlace(packed, 4);
      for (const at of [offset + 3, offset + Math.floor(length / 2), offset + length - 3]) {
        const damaged = Buffer.from(packed);
        damaged[at]! ^= 0x5a;
        expect((await refusal(damaged)).message).toMatch(/Frame 1, stripe 1|SHA-256/);
      }
    });

    it('refuses the worked example with any one byte changed, or cut short anywhere', async () => {
      const example = Buffer.from(EXAMPLE.packed, 'hex');
      for (let at = 0; at < example.length; at++) {
        const damaged = Buffer.from(example);
        damaged[at]! ^= 0xff;
        await refusal(damaged, 100);
      }
      for (let length = 0; length < example.length; length++)
        expect((await refusal(example.subarray(0, length), 100)).message).toMatch(
          /cut short|not JSON|not a version 2|Not a Screening Hub/,
        );
      // The codec still works after the frames that failed to decode.
      expect(sha((await restore(packed)).restored)).toBe(sha(original));
    });

    it('says what is wrong', async () => {
      expect((await refusal(packed.subarray(0, packed.length - 10))).message).toMatch(/cut short in the trailer/);
      expect((await refusal(Buffer.concat([packed, Buffer.from([0])]))).message).toMatch(/Bytes after the trailer/);
      expect((await refusal(Buffer.from('SHPKG1\n\0 sealed, not an image package'))).message).toMatch(
        /Not a Screening Hub image package/,
      );
      // A trailer that claims another file: its SHA-256 (re-serialized, so the package itself is well formed).
      const trailerAt = packed.lastIndexOf(Buffer.from('{"originalBytes"')) - 4;
      const trailer = JSON.parse(packed.subarray(trailerAt + 4).toString()) as Record<string, unknown>;
      const withTrailer = (changes: Record<string, unknown>) => {
        const json = Buffer.from(JSON.stringify({ ...trailer, ...changes }));
        const length = Buffer.alloc(4);
        length.writeUInt32BE(json.length);
        return Buffer.concat([packed.subarray(0, trailerAt), length, json]);
      };
      expect((await refusal(withTrailer({ originalSha256: '0'.repeat(64) }))).message).toMatch(
        /restored file's SHA-256 [0-9a-f]{64} is not the 0{64} in the trailer/,
      );
      expect((await refusal(withTrailer({ originalBytes: original.length + 1 }))).message).toMatch(
        new RegExp(`restored file is ${original.length} bytes, the trailer says ${original.length + 1}`),
      );
      expect((await refusal(withTrailer({ packedSha256: 'f'.repeat(64) }))).message).toMatch(
        /bytes do not match the SHA-256 in its trailer/,
      );
      expect((await refusal(withTrailer({ originalSha256: 'not hex' }))).message).toMatch(/trailer is not a version 2/);
      // A stripe length beyond anything CharLS writes is refused before it is read.
      const { offset } = codestreamPlace(packed);
      const huge = Buffer.from(packed);
      huge.writeUInt32BE(0xfffffff0, offset - 4);
      expect((await refusal(huge)).message).toMatch(/Frame 0, stripe 0 claims a 4294967280-byte codestream/);
      // A version 1 package (one codestream a frame) is not read.
      const headerLength = packed.readUInt32BE(8);
      const header = JSON.parse(packed.subarray(12, 12 + headerLength).toString()) as Record<string, unknown>;
      const json = Buffer.from(JSON.stringify({ ...header, version: 1 }));
      const length = Buffer.alloc(4);
      length.writeUInt32BE(json.length);
      const version1 = Buffer.concat([packed.subarray(0, 8), length, json, packed.subarray(12 + headerLength)]);
      expect((await refusal(version1)).message).toMatch(/header is not a version 2 header/);
    });
  });

  describe('sinks', () => {
    const small = () =>
      writeImage(
        'sink.dcm',
        part10Image(EXPLICIT, dataset({ rows: 16, columns: 16, pixels: new Uint8Array(512).map((_, i) => i) })),
      );

    it('ends the sink by default, and leaves it open with end: false', async () => {
      const path = small();
      const ended = new PassThrough();
      ended.resume();
      await packImage(path, ended);
      expect(ended.writableFinished).toBe(true);

      const { sink, bytes } = collector();
      const summary = await packImage(path, sink, { end: false });
      expect(sink.writableEnded).toBe(false);
      expect(bytes().length).toBe(summary.packedBytes);
      sink.end();
      const restored = collector();
      await restoreImage(Readable.from([bytes()]), restored.sink, { end: false });
      expect(restored.sink.writableEnded).toBe(false);
      expect(sha(restored.bytes())).toBe(summary.originalSha256);
    });

    it('destroys the sink when packing or restoring fails, and leaves it with end: false', async () => {
      const missing = new PassThrough();
      await expect(packImage(join(dir, 'missing.dcm'), missing)).rejects.toThrow(/ENOENT/);
      expect(missing.destroyed).toBe(true);
      const kept = new PassThrough();
      await expect(packImage(writeImage('not-dicom.dcm', Buffer.alloc(300)), kept, { end: false })).rejects.toThrow(
        /Not a DICOM Part 10 file/,
      );
      expect(kept.destroyed).toBe(false);

      const { packed } = await pack(small());
      const sink = new PassThrough();
      sink.resume();
      const source = Readable.from([packed.subarray(0, 100)]);
      await expect(restoreImage(source, sink)).rejects.toBeInstanceOf(PackageRefused);
      expect(sink.destroyed).toBe(true);
    });

    it('waits for a slow sink rather than buffering the package', async () => {
      const path = join(dir, 'slow.dcm');
      writeTomosynthesis(path, { frames: 6, rows: 256, columns: 256, sopInstanceUid: '2.25.6' });
      let most = 0;
      const slow = new Writable({
        highWaterMark: 1024,
        write(_chunk: Buffer, _encoding, done) {
          most = Math.max(most, slow.writableLength);
          setTimeout(done, 1);
        },
      });
      await packImage(path, slow, { stripeRows: 32 });
      // One stripe's codestream (of 32 rows: 16 KB raw) is the most written before waiting for 'drain'.
      expect(most).toBeLessThan(32 * 256 * 2);
    });
  });
});
