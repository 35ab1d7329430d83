/**
 * Lossless codecs for image transfer (issue 4): compression ratio, encode and decode speed on one core, and a
 * bit-exact check, for a synthetic 14-bit mammogram (test/support/realistic-mammogram.ts), beside gzip. The codecs
 * are dcmjs-codecs' WebAssembly builds (CharLS, OpenJPH, OpenJPEG, libjxl).
 *
 *   npx tsx bench/transfer-codecs.ts [--width 2560] [--height 3328]
 */
import { createHash } from 'node:crypto';
import { parseArgs } from 'node:util';
import { gunzipSync, gzipSync } from 'node:zlib';
import dcmjsCodecs from 'dcmjs-codecs';
import { realisticMammogramPixels } from '../test/support/realistic-mammogram.js';

const { values } = parseArgs({
  options: { width: { type: 'string', default: '2560' }, height: { type: 'string', default: '3328' } },
});
const [W, H] = [Number(values.width), Number(values.height)];
const { NativeCodecs, Context } = dcmjsCodecs;
await NativeCodecs.initializeAsync();

const raw = Buffer.from(realisticMammogramPixels(W, H).buffer);
const frame = {
  width: W,
  height: H,
  bitsAllocated: 16,
  bitsStored: 14,
  samplesPerPixel: 1,
  pixelRepresentation: 0,
  photometricInterpretation: 'MONOCHROME2',
};
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const original = sha(raw);
const mbs = (ms: number) => (raw.length / 1e6 / (ms / 1000)).toFixed(1);

console.log(`Lossless compression of one ${W} × ${H} 14-bit synthetic mammogram (${(raw.length / 1e6).toFixed(1)} MB)`);
console.log('| codec | ratio | encode MB/s | decode MB/s | bit-exact |');
console.log('|---|---:|---:|---:|---|');
const codecs = [
  ['JPEG-LS (CharLS)', 'encodeJpegLs', 'decodeJpegLs'],
  ['HTJ2K (OpenJPH)', 'encodeHtJpeg2000', 'decodeHtJpeg2000'],
  ['JPEG 2000 (OpenJPEG)', 'encodeJpeg2000', 'decodeJpeg2000'],
  ['JPEG XL (libjxl)', 'encodeJpegXl', 'decodeJpegXl'],
] as const;
for (const [name, encode, decode] of codecs) {
  let started = performance.now();
  const encoded = NativeCodecs[encode](new Context({ ...frame, decodedBuffer: new Uint8Array(raw) }), {
    lossy: false,
  }).getEncodedBuffer()!;
  const encodeMs = performance.now() - started;
  started = performance.now();
  const decoded = NativeCodecs[decode](new Context({ ...frame, encodedBuffer: encoded }), {}).getDecodedBuffer()!;
  const decodeMs = performance.now() - started;
  console.log(
    `| ${name} | ${(raw.length / encoded.length).toFixed(2)} | ${mbs(encodeMs)} | ${mbs(decodeMs)} | ${sha(decoded) === original ? 'yes' : 'NO'} |`,
  );
}
let started = performance.now();
const gz = gzipSync(raw);
const gzipMs = performance.now() - started;
started = performance.now();
const back = gunzipSync(gz);
console.log(
  `| gzip -6 | ${(raw.length / gz.length).toFixed(2)} | ${mbs(gzipMs)} | ${mbs(performance.now() - started)} | ${sha(back) === original ? 'yes' : 'NO'} |`,
);
