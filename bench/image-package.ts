/**
 * Image packages (src/transfer/image-package.ts, docs/image-package.md): pack and restore speed, compression ratio
 * and peak memory, with a bit-exact check, for a 4-view 2D screening exam (2560 × 3328, 14-bit, synthetic pixels
 * from test/support/realistic-mammogram.ts) and a breast tomosynthesis object (test/support/tomosynthesis.ts). Files
 * go through the file system as they would on a gateway and at the hub; one core (CharLS in WebAssembly).
 *
 *   npx tsx bench/image-package.ts [--frames 40] [--rows 2457] [--columns 1890] [--verify] [--stripe-rows 256]
 *
 * --stripe-rows: rows in each JPEG-LS stripe (default the packer's, DEFAULT_STRIPE_ROWS); a number over the rows
 * (65535, say) gives one stripe a frame.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { DEFAULT_STRIPE_ROWS, loadImageCodecs, packImage, restoreImage } from '../src/transfer/image-package.js';
import { realisticMammogramPixels } from '../test/support/realistic-mammogram.js';
import { part10Image, writeTomosynthesis } from '../test/support/tomosynthesis.js';

const { values } = parseArgs({
  options: {
    frames: { type: 'string', default: '40' },
    rows: { type: 'string', default: '2457' },
    columns: { type: 'string', default: '1890' },
    verify: { type: 'boolean', default: false },
    'stripe-rows': { type: 'string', default: String(DEFAULT_STRIPE_ROWS) },
    /** Internal: make the images in this directory and exit (run in a child, so its memory is not counted). */
    make: { type: 'string' },
  },
});
const [frames, rows, columns] = [Number(values.frames), Number(values.rows), Number(values.columns)];
const stripeRows = Number(values['stripe-rows']);
const MB = 1e6;
const VIEWS = ['RCC', 'LCC', 'RMLO', 'LMLO'];

if (values.make) {
  VIEWS.forEach((view, i) => {
    const pixels = realisticMammogramPixels(2560, 3328, 42 + i);
    writeFileSync(
      join(values.make!, `${view}.dcm`),
      part10Image('1.2.840.10008.1.2.1', {
        SOPClassUID: '1.2.840.10008.5.1.4.1.1.1.2',
        SOPInstanceUID: `2.25.${1000 + i}`,
        StudyInstanceUID: '2.25.1234',
        AccessionNumber: 'SH00000042',
        PatientID: '9990000018',
        Modality: 'MG',
        ViewPosition: view.slice(1),
        ImageLaterality: view[0],
        SamplesPerPixel: 1,
        PhotometricInterpretation: 'MONOCHROME2',
        Rows: 3328,
        Columns: 2560,
        BitsAllocated: 16,
        BitsStored: 14,
        HighBit: 13,
        PixelRepresentation: 0,
        PixelData: [pixels.buffer],
        _vrMap: { PixelData: 'OW' },
      }),
    );
  });
  writeTomosynthesis(join(values.make, 'tomo.dcm'), { frames, rows, columns, sopInstanceUid: '2.25.2000' });
  process.exit(0);
}
const dir = mkdtempSync(join(tmpdir(), 'bench-image-package-'));

async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Peak resident memory while `work` runs, sampled every 5 ms (and between frames, when the loop is free). */
async function peakRss<T>(work: () => Promise<T>): Promise<{ result: T; ms: number; cpuMs: number; peak: number }> {
  let peak = process.memoryUsage().rss;
  const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 5);
  const started = performance.now();
  const cpu = process.cpuUsage();
  try {
    const result = await work();
    const { user, system } = process.cpuUsage(cpu);
    const ms = performance.now() - started;
    return { result, ms, cpuMs: (user + system) / 1000, peak: Math.max(peak, process.memoryUsage().rss) };
  } finally {
    clearInterval(timer);
  }
}

interface Row {
  name: string;
  originalBytes: number;
  packedBytes: number;
  packMs: number;
  restoreMs: number;
  packCpuMs: number;
  restoreCpuMs: number;
  peak: number;
  exact: boolean;
}

async function run(name: string, paths: string[]): Promise<Row> {
  const row: Row = {
    name,
    originalBytes: 0,
    packedBytes: 0,
    packMs: 0,
    restoreMs: 0,
    packCpuMs: 0,
    restoreCpuMs: 0,
    peak: 0,
    exact: true,
  };
  for (const path of paths) {
    const packagePath = `${path}.shimg`;
    const restoredPath = `${path}.restored`;
    const packed = await peakRss(() =>
      packImage(path, createWriteStream(packagePath), { verify: values.verify, stripeRows }),
    );
    const restored = await peakRss(() => restoreImage(createReadStream(packagePath), createWriteStream(restoredPath)));
    row.originalBytes += packed.result.originalBytes;
    row.packedBytes += statSync(packagePath).size;
    row.packMs += packed.ms;
    row.restoreMs += restored.ms;
    row.packCpuMs += packed.cpuMs;
    row.restoreCpuMs += restored.cpuMs;
    row.peak = Math.max(row.peak, packed.peak, restored.peak);
    row.exact &&= (await sha256File(restoredPath)) === packed.result.originalSha256;
    for (const file of [path, packagePath, restoredPath]) rmSync(file);
  }
  return row;
}

try {
  await loadImageCodecs();
  const startRss = process.memoryUsage().rss;
  const made = performance.now();
  execFileSync(process.execPath, [
    ...process.execArgv,
    fileURLToPath(import.meta.url),
    ...['--make', dir, '--frames', String(frames), '--rows', String(rows), '--columns', String(columns)],
  ]);
  console.log(`Images made in ${((performance.now() - made) / 1000).toFixed(1)} s (in a child process)`);
  const views = VIEWS.map((view) => join(dir, `${view}.dcm`));
  const exam = await run('2D exam, 4 views of 2560 × 3328, 14-bit', views);
  const tomo = await run(`tomosynthesis, ${frames} frames of ${columns} × ${rows}, 14-bit`, [join(dir, 'tomo.dcm')]);

  console.log(
    `Image packages on one core (CharLS JPEG-LS, WebAssembly), stripes of ${stripeRows} rows` +
      `${values.verify ? ', each stripe verified as packed' : ''}; ` +
      `RSS before: ${(startRss / MB).toFixed(0)} MB`,
  );
  // MB/s of the original file, by the clock and per second of this process's CPU time (which a busy machine
  // does not inflate).
  const rate = (bytes: number, ms: number) => (bytes / MB / (ms / 1000)).toFixed(1);
  console.log(
    '| object | original MB | packed MB | ratio | pack MB/s | restore MB/s | pack MB/CPU-s | restore MB/CPU-s | peak RSS MB | bit-exact |',
  );
  console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|---|');
  for (const row of [exam, tomo])
    console.log(
      `| ${row.name} | ${(row.originalBytes / MB).toFixed(1)} | ${(row.packedBytes / MB).toFixed(1)} | ` +
        `${(row.originalBytes / row.packedBytes).toFixed(3)} | ${rate(row.originalBytes, row.packMs)} | ` +
        `${rate(row.originalBytes, row.restoreMs)} | ${rate(row.originalBytes, row.packCpuMs)} | ` +
        `${rate(row.originalBytes, row.restoreCpuMs)} | ${(row.peak / MB).toFixed(0)} | ${row.exact ? 'yes' : 'NO'} |`,
    );
  console.log(
    `Peak RSS of this process over the whole run (the images are made in a child): ${((process.resourceUsage().maxRSS * 1024) / MB).toFixed(0)} MB`,
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}
