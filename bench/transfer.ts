/**
 * Image transfer end to end (issue 4), on one 4-view 2D screening exam of synthetic mammograms that compress like
 * real ones (2560 × 3328, 14-bit; test/support/mammogram.ts writeRealisticMammogram, seeds 1–4) and one simulated
 * mobile link (test/support/link-simulator.ts; default 12 Mbit/s up and down, 40 ms one way, a TCP reset every 60 s):
 *
 *   1. compression of the exam: our image package (JPEG-LS) and sealed package, DCMTK's dcmcjpls (lossless),
 *      gzip -6, and HTJ2K (and JPEG XL with --jpeg-xl) through dcmjs-codecs, with one-core speeds;
 *   2. the gateway's compress + encrypt speed per core (sealImageFile on this thread, fsync included);
 *   3. C-STORE start (storescu → gateway) until the hub has recorded all 4 images as stored in the PACS (a real
 *      Orthanc by DICOMweb STOW-RS; a file archive if Orthanc is missing), through the link, without and with drops,
 *      against the physical minimum (sealed bytes ÷ link rate), with a per-image, per-phase timeline;
 *   4. the traditional way: storescu straight to Orthanc's DICOM port through the same link (uncompressed, no
 *      resume), run again for the files not yet stored after each drop, until all 4 are in or the time runs out.
 *
 * Everything runs on this machine (gateway, hub, link simulator and this script in one Node process; Orthanc and
 * storescu beside it), so they share its cores. The database is PostgreSQL when DATABASE_URL is set, else PGlite.
 *
 *   npx tsx bench/transfer.ts [--up-mbit 12] [--down-mbit 12] [--latency 40] [--drop-every 60] [--first-drop auto]
 *                             [--traditional-timeout 180] [--retry-after 0] [--timeout 300] [--jpeg-xl]
 *                             [--width 2560] [--height 3328]
 *
 *   --first-drop s       when the first drop comes after C-STORE starts (then every --drop-every s). "auto" (default):
 *                        once 40% of the exam's sealed bytes have gone up, mid-way through the second package (with a
 *                        drop only every 60 s, a ~25 s transfer sees one drop at most, and where it falls is luck);
 *                        the traditional way then gets its first drop at the same time after its start
 *   --retry-after s      the traditional way: wait this long before running storescu again after a failure (0)
 *   --drop-every 0       no drop runs
 */
import { spawn, execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { parseArgs, promisify } from 'node:util';
import dcmjsCodecs from 'dcmjs-codecs';
import { startGateway } from '../src/gateway/gateway.js';
import { startGatewayListener } from '../src/hub/gateway-listener.js';
import { DicomWebPacs, FileArchive, type Pacs, type StoredInstance } from '../src/pacs/pacs.js';
import { bookAppointment } from '../src/store/clinics.js';
import { loadImageCodecs, packImage } from '../src/transfer/image-package.js';
import { sealImageFile } from '../src/transfer/package-files.js';
import { newTransferKeyPair, rawPublicKey } from '../src/transfer/sealed-package.js';
import { freshDatabase } from '../test/support/database.js';
import { freePort } from '../test/support/dcmtk.js';
import { addParticipant, newClinics, smallOffice, TODAY } from '../test/support/fixtures.js';
import { enrolledGateway, until } from '../test/support/gateway-hub.js';
import { startLink, type Link } from '../test/support/link-simulator.js';
import { writeRealisticMammogram } from '../test/support/mammogram.js';
import { haveOrthanc, startOrthanc, type RunningOrthanc } from '../test/support/orthanc.js';

const execFileAsync = promisify(execFile);
const { values } = parseArgs({
  options: {
    'up-mbit': { type: 'string', default: '12' },
    'down-mbit': { type: 'string' },
    latency: { type: 'string', default: '40' },
    'drop-every': { type: 'string', default: '60' },
    'first-drop': { type: 'string', default: 'auto' },
    'traditional-timeout': { type: 'string', default: '180' },
    'retry-after': { type: 'string', default: '0' },
    timeout: { type: 'string', default: '300' },
    'jpeg-xl': { type: 'boolean', default: false },
    width: { type: 'string', default: '2560' },
    height: { type: 'string', default: '3328' },
  },
});
const num = (name: keyof typeof values, fallback?: number): number => {
  const text = values[name];
  if (text === undefined && fallback !== undefined) return fallback;
  const n = Number(text);
  if (!Number.isFinite(n) || n < 0) throw new Error(`--${name}: not a number: ${String(text)}`);
  return n;
};
const UP_BITS = num('up-mbit') * 1e6;
const DOWN_BITS = num('down-mbit', num('up-mbit')) * 1e6;
const LATENCY_MS = num('latency');
const DROP_EVERY_S = num('drop-every');
const TRADITIONAL_TIMEOUT_S = num('traditional-timeout');
const RETRY_AFTER_S = num('retry-after');
const RUN_TIMEOUT_S = num('timeout');
const [WIDTH, HEIGHT] = [num('width'), num('height')];
const VIEWS = ['RCC', 'LCC', 'RMLO', 'LMLO'] as const;
const MB = 1e6;
const PIXEL_BYTES = WIDTH * HEIGHT * 2;
const benchStart = performance.now();

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');
const f1 = (n: number) => n.toFixed(1);
const f2 = (n: number) => n.toFixed(2);
const s = (ms: number) => (ms / 1000).toFixed(1);
const linkSeconds = (bytes: number) => (bytes * 8) / UP_BITS;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------------------------------
// The images: 4 views written once with placeholder identifiers, then copied per run with that run's UIDs,
// accession and patient (same lengths, in the bytes before Pixel Data), so every run sends the same pixels but
// new instances (Orthanc keeps the first copy of an instance; the hub stores an image once).

const work = mkdtempSync(join(tmpdir(), 'bench-transfer-'));
const PLACE = { accession: 'XACCESSNX0', patient: 'XPATIENTX0', study: '2.25.7700000000', sop: '2.25.88000000' };
const sopOf = (run: number, view: number) => `${PLACE.sop.slice(0, 7)}${String(run).padStart(6, '0')}${view + 1}`;
const studyOf = (run: number) => `2.25.77${String(run).padStart(8, '0')}`;

interface ViewFile {
  view: string;
  path: string;
  sop: string;
  bytes: number;
  sha256: string;
}

const baseFiles: ViewFile[] = VIEWS.map((view, v) => {
  const path = join(work, `${view}.dcm`);
  const sop = `${PLACE.sop}${v + 1}`;
  const bytes = writeRealisticMammogram(path, {
    sopInstanceUid: sop,
    accessionNumber: PLACE.accession,
    patientId: PLACE.patient,
    studyInstanceUid: PLACE.study,
    width: WIDTH,
    height: HEIGHT,
    seed: v + 1,
  });
  return { view, path, sop, bytes: bytes.length, sha256: sha256(bytes) };
});
const examBytes = baseFiles.reduce((sum, f) => sum + f.bytes, 0);

function runFiles(run: number, accession: string, patient: string): ViewFile[] {
  const dir = join(work, `run${run}`);
  mkdirSync(dir);
  return baseFiles.map((base, v) => {
    const bytes = readFileSync(base.path);
    const header = bytes.subarray(0, bytes.length - PIXEL_BYTES);
    const sop = sopOf(run, v);
    for (const [from, to] of [
      [base.sop, sop],
      [PLACE.study, studyOf(run)],
      [PLACE.accession, accession],
      [PLACE.patient, patient],
    ] as const) {
      if (from.length !== to.length) throw new Error(`${to} is not as long as ${from}`);
      let found = 0;
      for (let at = header.indexOf(from, 0, 'latin1'); at >= 0; at = header.indexOf(from, at + 1, 'latin1')) {
        header.write(to, at, 'latin1');
        found++;
      }
      if (found === 0) throw new Error(`${from} not found in the header of ${base.path}`);
    }
    const path = join(dir, `${base.view}.dcm`);
    writeFileSync(path, bytes);
    return { view: base.view, path, sop, bytes: bytes.length, sha256: sha256(bytes) };
  });
}

// ---------------------------------------------------------------------------------------------------------------
// 1 and 2: compression and sealing, one core.

interface Measured {
  bytes: number;
  ms: number;
  /** CPU seconds (user + system), when known. */
  cpu?: number;
}

interface Compression extends Measured {
  name: string;
  note?: string;
}

const cpuSeconds = (usage: NodeJS.CpuUsage) => (usage.user + usage.system) / 1e6;

/** Runs a command under /usr/bin/time (for its CPU seconds), its stdout counted or ignored. */
async function timedCommand(command: string, args: string[], countStdout = false): Promise<Measured> {
  const timeFile = join(work, 'time.txt');
  const haveTime = existsSync('/usr/bin/time');
  const started = performance.now();
  const child = haveTime
    ? spawn('/usr/bin/time', ['-f', '%U %S', '-o', timeFile, command, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
    : spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let bytes = 0;
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (bytes += countStdout ? chunk.length : 0));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  const ms = performance.now() - started;
  if (code !== 0) throw new Error(`${command} exited with ${code}: ${stderr.slice(0, 300)}`);
  if (!haveTime) return { bytes, ms };
  const [user, system] = readFileSync(timeFile, 'utf8').trim().split(/\s+/).slice(-2).map(Number);
  return { bytes, ms, cpu: (user ?? 0) + (system ?? 0) };
}

async function countingPack(path: string): Promise<Measured> {
  let bytes = 0;
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      bytes += chunk.length;
      done();
    },
  });
  const cpu = process.cpuUsage();
  const started = performance.now();
  await packImage(path, sink);
  return { bytes, ms: performance.now() - started, cpu: cpuSeconds(process.cpuUsage(cpu)) };
}

const gzipBytes = (path: string) => timedCommand('gzip', ['-6', '-c', path], true);

async function dcmcjpls(path: string): Promise<Measured> {
  const out = `${path}.jls.dcm`;
  const measured = await timedCommand('dcmcjpls', [path, out]);
  const bytes = statSync(out).size;
  rmSync(out);
  return { ...measured, bytes };
}

function dcmjsEncode(path: string, encoder: 'encodeHtJpeg2000' | 'encodeJpegXl'): Measured {
  const { NativeCodecs, Context } = dcmjsCodecs;
  const file = readFileSync(path);
  const pixels = new Uint8Array(file.subarray(file.length - PIXEL_BYTES));
  const cpu = process.cpuUsage();
  const started = performance.now();
  const encoded = NativeCodecs[encoder](
    new Context({
      width: WIDTH,
      height: HEIGHT,
      bitsAllocated: 16,
      bitsStored: 14,
      samplesPerPixel: 1,
      pixelRepresentation: 0,
      photometricInterpretation: 'MONOCHROME2',
      decodedBuffer: pixels,
    }),
    { lossy: false },
  ).getEncodedBuffer()!;
  // The file as it would be with that pixel data (header raw, pixel data encoded; fragment items not counted).
  return {
    bytes: file.length - PIXEL_BYTES + encoded.length,
    ms: performance.now() - started,
    cpu: cpuSeconds(process.cpuUsage(cpu)),
  };
}

async function sum(
  name: string,
  each: (file: ViewFile) => Promise<Measured> | Measured,
  note?: string,
): Promise<Compression> {
  const row: Compression = { name, bytes: 0, ms: 0, cpu: 0, ...(note ? { note } : {}) };
  for (const file of baseFiles) {
    const r = await each(file);
    row.bytes += r.bytes;
    row.ms += r.ms;
    row.cpu = r.cpu === undefined || row.cpu === undefined ? undefined : row.cpu + r.cpu;
  }
  return row;
}

// ---------------------------------------------------------------------------------------------------------------
// Small helpers for the runs.

/** CPU seconds (user + system) of this process's children with the given command name, from /proc. */
function childCpuSeconds(command: string): number {
  let ticks = 0;
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const close = stat.lastIndexOf(')');
      const comm = stat.slice(stat.indexOf('(') + 1, close);
      const fields = stat.slice(close + 2).split(' ');
      if (comm !== command || Number(fields[1]) !== process.pid) continue;
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      // gone
    }
  }
  return ticks / 100;
}

interface CpuMark {
  at: number;
  node: NodeJS.CpuUsage;
  orthanc: number;
}
const cpuMark = (): CpuMark => ({
  at: performance.now(),
  node: process.cpuUsage(),
  orthanc: childCpuSeconds('Orthanc'),
});
function cpuSince(mark: CpuMark): string {
  const seconds = (performance.now() - mark.at) / 1000;
  const node = process.cpuUsage(mark.node);
  const nodeS = (node.user + node.system) / 1e6;
  const orthancS = childCpuSeconds('Orthanc') - mark.orthanc;
  return (
    `CPU over ${f1(seconds)} s on ${cpus().length} cores: this Node process (gateway + hub + link + bench, worker ` +
    `threads included) ${f1(nodeS)} s (${f2(nodeS / seconds)} cores), Orthanc ${f1(orthancS)} s ` +
    `(${f2(orthancS / seconds)} cores); load average ${loadavg()[0]!.toFixed(2)}`
  );
}

/**
 * Drops (TCP resets of every open connection on the link): the first `first.seconds` after t0, or once
 * `first.bytes` have gone up the link since t0; then every DROP_EVERY_S.
 */
function scheduleDrops(
  link: Link,
  t0: number,
  first: { seconds: number } | { bytes: number } | undefined,
  describe: () => string = () => '',
) {
  const cuts: { at: number; bytesUp: number; what: string }[] = [];
  let timer: NodeJS.Timeout | undefined;
  let watch: NodeJS.Timeout | undefined;
  const fire = () => {
    cuts.push({ at: performance.now() - t0, bytesUp: link.stats.bytesUp, what: describe() });
    link.cut();
    timer = setTimeout(fire, DROP_EVERY_S * 1000);
  };
  if (first && 'seconds' in first) timer = setTimeout(fire, first.seconds * 1000);
  else if (first) {
    const from = link.stats.bytesUp;
    watch = setInterval(() => {
      if (link.stats.bytesUp - from < first.bytes) return;
      clearInterval(watch);
      fire();
    }, 10);
  }
  return {
    cuts,
    stop: () => {
      clearTimeout(timer);
      clearInterval(watch);
    },
  };
}

/** link.stats.bytesUp every 20 ms, to see when bytes flow again after a drop. */
function sampleLink(link: Link, t0: number) {
  const samples: { at: number; bytesUp: number }[] = [];
  const timer = setInterval(() => samples.push({ at: performance.now() - t0, bytesUp: link.stats.bytesUp }), 20);
  return {
    samples,
    stop: () => clearInterval(timer),
    /** When 64 KiB more than `bytesUp` had crossed after `at` (ms after t0). */
    flowingAfter(at: number, bytesUp: number): number | undefined {
      return samples.find((x) => x.at > at && x.bytesUp >= bytesUp + 64 * 1024)?.at;
    },
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Main.

const database = await freshDatabase(process.env.DATABASE_URL ? 'postgres' : 'pglite');
const databaseText = process.env.DATABASE_URL
  ? 'PostgreSQL (DATABASE_URL, a fresh database)'
  : 'in-memory PGlite (set DATABASE_URL for PostgreSQL)';
let orthanc: RunningOrthanc | undefined;
const cleanups: (() => Promise<void> | void)[] = [];
const out: string[] = [];
const print = (line = '') => {
  console.log(line);
  out.push(line);
};

try {
  print(`# Image transfer bench (bench/transfer.ts)`);
  print();
  print(
    `Exam: 4 views (${VIEWS.join(', ')}) of ${WIDTH} × ${HEIGHT}, 14-bit, synthetic realistic mammograms ` +
      `(seeds 1–4), ${f1(examBytes / MB)} MB in all (${baseFiles.map((f) => f1(f.bytes / MB)).join(' + ')} MB).`,
  );
  print(
    `Link: ${UP_BITS / 1e6} Mbit/s up, ${DOWN_BITS / 1e6} Mbit/s down, ${LATENCY_MS} ms one way` +
      (DROP_EVERY_S > 0
        ? `, a drop (TCP reset of every open connection) every ${DROP_EVERY_S} s in the drop runs.`
        : '.'),
  );
  print(`Database: ${databaseText}. Machine: ${cpus().length} × ${cpus()[0]?.model.trim() ?? 'CPU'}.`);
  const load = loadavg()[0]!;
  print(
    `Load average at the start: ${load.toFixed(2)}` +
      (load > cpus().length * 0.75
        ? ` — **the machine is busy with other work: wall-clock times below are stretched; the CPU-second figures are not**.`
        : '.'),
  );
  print();

  // 1. Compression.
  await loadImageCodecs();
  const ours = await sum('Screening Hub image package (JPEG-LS, CharLS WebAssembly)', (f) => countingPack(f.path));
  const hubKey = newTransferKeyPair();
  const sealDir = join(work, 'sealed');
  mkdirSync(sealDir);
  const sealCpu = process.cpuUsage();
  const sealedRows: { view: string; ms: number; sealed: number; original: number }[] = [];
  for (const f of baseFiles) {
    const started = performance.now();
    const r = await sealImageFile(f.path, join(sealDir, `${f.view}.pkg`), rawPublicKey(hubKey.publicKey));
    sealedRows.push({
      view: f.view,
      ms: performance.now() - started,
      sealed: r.sealedBytes,
      original: r.originalBytes,
    });
  }
  const sealCpuUsed = process.cpuUsage(sealCpu);
  const sealMs = sealedRows.reduce((a, r) => a + r.ms, 0);
  const sealedBytes = sealedRows.reduce((a, r) => a + r.sealed, 0);
  const rows: Compression[] = [
    ours,
    {
      name: '… sealed (+ AES-256-GCM, fsync): what crosses the link',
      bytes: sealedBytes,
      ms: sealMs,
      cpu: cpuSeconds(sealCpuUsed),
    },
    await sum('DCMTK dcmcjpls (JPEG-LS lossless, native CharLS)', (f) => dcmcjpls(f.path)),
    await sum('gzip -6 of the file', (f) => gzipBytes(f.path)),
    await sum('HTJ2K (OpenJPH, dcmjs-codecs)', (f) => dcmjsEncode(f.path, 'encodeHtJpeg2000'), 'pixel data only'),
  ];
  if (values['jpeg-xl'])
    rows.push(
      await sum('JPEG XL (libjxl, dcmjs-codecs)', (f) => dcmjsEncode(f.path, 'encodeJpegXl'), 'pixel data only'),
    );
  rows.push({ name: 'uncompressed (the file as the modality sends it)', bytes: examBytes, ms: 0 });
  print(`## 1. Compression of the 4-view exam (lossless, one core each)`);
  print();
  print(`| method | MB | ratio | MB/s (wall) | MB per CPU second | seconds on the link |`);
  print(`|---|---:|---:|---:|---:|---:|`);
  for (const r of rows)
    print(
      `| ${r.name}${r.note ? ` (${r.note})` : ''} | ${f1(r.bytes / MB)} | ${f2(examBytes / r.bytes)} | ` +
        `${r.ms ? f1(examBytes / MB / (r.ms / 1000)) : '–'} | ${r.cpu ? f1(examBytes / MB / r.cpu) : '–'} | ` +
        `${f1(linkSeconds(r.bytes))} |`,
    );
  if (!values['jpeg-xl'])
    print(`(JPEG XL left out: about 1 MB/s in WebAssembly, a minute for the exam; --jpeg-xl adds it.)`);
  print();

  // 2. Sealing speed.
  const sealCpuS = (sealCpuUsed.user + sealCpuUsed.system) / 1e6;
  print(`## 2. Gateway compress + encrypt (sealImageFile on this thread, one image at a time)`);
  print();
  print(`| view | original MB | sealed MB | ms | MB/s |`);
  print(`|---|---:|---:|---:|---:|`);
  for (const r of sealedRows)
    print(
      `| ${r.view} | ${f1(r.original / MB)} | ${f1(r.sealed / MB)} | ${r.ms.toFixed(0)} | ${f1(r.original / MB / (r.ms / 1000))} |`,
    );
  print(
    `| **exam** | ${f1(examBytes / MB)} | ${f1(sealedBytes / MB)} | ${sealMs.toFixed(0)} | **${f1(examBytes / MB / (sealMs / 1000))}** |`,
  );
  print(
    `CPU ${f1(sealCpuS)} s for ${f1(sealMs / 1000)} s of sealing (${f2(sealCpuS / (sealMs / 1000))} cores): ` +
      `**${f1(examBytes / MB / sealCpuS)} MB of images per CPU second** (what one free core would do). ` +
      `The link takes ${f2(UP_BITS / 8 / MB)} MB/s of sealed bytes, that is ` +
      `${f1((UP_BITS / 8 / MB) * (examBytes / sealedBytes))} MB/s of images.`,
  );
  print();

  const physicalMinimum = linkSeconds(sealedBytes);
  // The first drop: by default once 40% of the exam's sealed bytes are up (the middle of the second package), and
  // for the traditional way at the same time after the start as it came in our run.
  const autoDrop = values['first-drop'] === 'auto';
  let firstDrop: number | undefined = DROP_EVERY_S <= 0 ? undefined : autoDrop ? 0 : num('first-drop');
  const dropsText = (at: number) => `drops at ${f1(at)} s, then every ${DROP_EVERY_S} s`;

  // Services: Orthanc (or a file archive), the hub's gateway listener, the link, an enrolled gateway.
  const useOrthanc = haveOrthanc();
  if (useOrthanc) {
    orthanc = await startOrthanc({ aeTitle: 'BENCHPACS' });
    cleanups.push(() => orthanc?.close());
  }
  const hubDir = join(work, 'hub');
  const archiveDir = join(hubDir, 'archive');
  const innerPacs: Pacs = orthanc ? new DicomWebPacs({ url: orthanc.dicomWebUrl }) : new FileArchive(archiveDir);
  const stow = new Map<string, { start: number; end?: number }>();
  const timedPacs: Pacs = {
    description: innerPacs.description,
    studyLink: (study) => innerPacs.studyLink(study),
    async store(path: string, instance: StoredInstance) {
      const mark: { start: number; end?: number } = { start: performance.now() };
      stow.set(instance.sopInstanceUid, mark);
      await innerPacs.store(path, instance);
      mark.end = performance.now();
    },
  };
  const hubLog: string[] = [];
  const gatewayLog: { at: number; level: string; message: string }[] = [];
  const listener = await startGatewayListener({
    database,
    port: 0,
    host: '127.0.0.1',
    today: () => TODAY,
    transfers: { dir: hubDir, pacs: timedPacs },
    log: (level, message) =>
      hubLog.push(`${((performance.now() - benchStart) / 1000).toFixed(1)} s ${level}: ${message}`),
  });
  cleanups.push(() => listener.close());
  // When the hub gets a package's first bytes (intake.grew), has the whole of it (intake.submit) and settles it
  // (stored or rejected, after the DB).
  const hubFirstByte = new Map<string, number>();
  const hubReceived = new Map<string, number>();
  const hubSettled = new Map<string, number>();
  const intake = listener.intake;
  const grew = intake.grew.bind(intake);
  intake.grew = (id: string, bytes: number) => {
    if (!hubFirstByte.has(id)) hubFirstByte.set(id, performance.now());
    grew(id, bytes);
  };
  const submit = intake.submit.bind(intake);
  intake.submit = (id: string) => {
    if (!hubReceived.has(id)) hubReceived.set(id, performance.now());
    submit(id);
  };
  const emit = intake.events.emit.bind(intake.events);
  intake.events.emit = (name: string | symbol, ...args: unknown[]) => {
    if (typeof name === 'string') hubSettled.set(name, performance.now());
    return emit(name, ...args);
  };

  const link = await startLink({
    target: { host: '127.0.0.1', port: listener.port },
    upBitsPerSecond: UP_BITS,
    downBitsPerSecond: DOWN_BITS,
    latencyMs: LATENCY_MS,
  });
  cleanups.push(() => link.close());
  const office = await smallOffice(database.db);
  const clinics = await newClinics(database.db);
  const hubUrl = `https://127.0.0.1:${link.port}`;
  const enrolled = await enrolledGateway(database, hubUrl, listener.authorityPem, 'mobile-1', office.actor);
  const dicomPort = await freePort();
  let runT0 = performance.now();
  const gateway = startGateway({
    hubUrl,
    identity: enrolled.identity,
    dataDir: enrolled.dataDir,
    dicomPort,
    aeTitle: 'SHGATEWAY',
    allowedCallingAeTitles: ['MOBILE1'],
    today: () => TODAY,
    log: (level, message) => gatewayLog.push({ at: performance.now() - runT0, level, message }),
  });
  cleanups.push(() => gateway.close());
  if (!(await until(() => gateway.feed.state.online, 20_000))) throw new Error('the gateway did not come online');

  const book = async () => {
    const participant = await addParticipant(database.db);
    const id = await bookAppointment(
      database.db,
      { participantId: participant.id, clinicId: clinics.inaccessibleClinic },
      office.actor,
      TODAY,
    );
    const { accession_number } = await database.db
      .selectFrom('appointment')
      .select('accession_number')
      .where('id', '=', id)
      .executeTakeFirstOrThrow();
    await until(
      () => gateway.copy.current()?.entries.some((e) => e.accessionNumber === accession_number) ?? false,
      20_000,
    );
    return { accession: accession_number, patient: participant.nhs_number };
  };

  // 3. Our way.
  interface OurResult {
    label: string;
    elapsed: number;
    sealed: number;
    bytesUp: number;
    finished: boolean;
    cuts: number;
    /** Seconds: before the first byte goes up, link idle between packages, last byte → recorded, link beyond minimum. */
    parts?: { firstByte: number; gaps: number; tail: number; linkExtra: number };
  }
  const ourRun = async (run: number, drops: boolean): Promise<OurResult> => {
    const exam = await book();
    const files = runFiles(run, exam.accession, exam.patient);
    const sops = files.map((f) => f.sop);
    const marks = new Map<string, Partial<Record<string, number>>>(sops.map((sop) => [sop, {}]));
    let t0 = performance.now();
    const onChanged = () => {
      const now = performance.now() - t0;
      for (const sop of sops) {
        const state = gateway.outbox.stateOf(sop);
        const m = marks.get(sop)!;
        if (state && m[state] === undefined) m[state] = now;
      }
    };
    gateway.outbox.events.on('changed', onChanged);
    const logFrom = gatewayLog.length;
    const hubLogFrom = hubLog.length;
    const upBefore = link.stats.bytesUp;
    const cpu = cpuMark();
    t0 = performance.now();
    runT0 = t0;
    const sampler = sampleLink(link, t0);
    const firstCut =
      !drops || firstDrop === undefined ? undefined : autoDrop ? { bytes: 0.4 * sealedBytes } : { seconds: firstDrop };
    const dropper = scheduleDrops(link, t0, firstCut, () =>
      files
        .map((f) => {
          const item = gateway.outbox.all().find((i) => i.sopInstanceUid === f.sop);
          const state = item?.state ?? 'not yet received';
          return state === 'sending'
            ? `${f.view} sending (${f2((item!.acknowledged + item!.sent) / MB)} of ${f2((item!.packedBytes ?? 0) / MB)} MB handed to the connection)`
            : `${f.view} ${state}`;
        })
        .join(', '),
    );
    let storescuMs = 0;
    const storing = execFileAsync(
      'storescu',
      ['-aet', 'MOBILE1', '-aec', 'SHGATEWAY', '127.0.0.1', String(dicomPort), ...files.map((f) => f.path)],
      { timeout: 120_000 },
    ).then(() => (storescuMs = performance.now() - t0));
    const storedCount = async () =>
      (
        await database.db
          .selectFrom('transfer_image')
          .select('sop_instance_uid')
          .where('sop_instance_uid', 'in', sops)
          .execute()
      ).length;
    const finished = await until(async () => (await storedCount()) === 4, RUN_TIMEOUT_S * 1000, 50);
    const polledAt = performance.now() - t0;
    await storing;
    dropper.stop();
    // For the "gateway told" column (not part of the elapsed time): the gateway hears the last answer a moment later.
    await until(() => sops.every((sop) => gateway.outbox.stateOf(sop) === 'in_pacs'), 5000, 20);
    sampler.stop();
    gateway.outbox.events.off('changed', onChanged);
    const cpuText = cpuSince(cpu);
    const bytesUp = link.stats.bytesUp - upBefore;

    const uploads = await database.db
      .selectFrom('transfer_upload')
      .select(['id', 'sop_instance_uid', 'length', 'state'])
      .where('sop_instance_uid', 'in', sops)
      .execute();
    const uploadOf = (sop: string) => uploads.filter((u) => u.sop_instance_uid === sop && u.state === 'stored')[0];
    const sealed = sops.reduce((a, sop) => a + Number(uploadOf(sop)?.length ?? 0), 0);
    const rel = (at: number | undefined) => (at === undefined ? undefined : at - t0);
    const sealLog = new Map<string, number>();
    for (const l of gatewayLog.slice(logFrom)) {
      const match = /^Sealed (\S+): .* in (\d+) ms$/.exec(l.message);
      if (match) sealLog.set(match[1]!, Number(match[2]));
    }
    const rows = files.map((f) => {
      const upload = uploadOf(f.sop);
      const m = marks.get(f.sop)!;
      const stowMark = stow.get(f.sop);
      return {
        f,
        sealMs: sealLog.get(f.sop),
        sealed: Number(upload?.length ?? 0),
        received: m.received,
        sealedAt: m.sealed,
        sending: rel(upload ? hubFirstByte.get(upload.id) : undefined),
        atHub: m.at_hub,
        hubReceived: rel(upload ? hubReceived.get(upload.id) : undefined),
        stowStart: rel(stowMark?.start),
        stowEnd: rel(stowMark?.end),
        recorded: rel(upload ? hubSettled.get(upload.id) : undefined),
        told: m.in_pacs,
      };
    });
    const recordedTimes = rows.map((r) => r.recorded).filter((x): x is number => x !== undefined);
    const elapsed = finished && recordedTimes.length === 4 ? Math.max(...recordedTimes) : polledAt;
    const minimum = linkSeconds(sealed) * 1000;
    const t = (ms: number | undefined) => (ms === undefined ? '–' : s(ms));
    const d = (a: number | undefined, b: number | undefined) => (a === undefined || b === undefined ? '–' : s(b - a));

    if (drops && autoDrop && dropper.cuts[0]) firstDrop = dropper.cuts[0].at / 1000;
    const label = `Screening Hub, ${drops && firstDrop !== undefined ? dropsText(firstDrop) : 'no drops'}`;
    print(`### ${label}`);
    print();
    print(
      `Times in seconds from the start of C-STORE. Seal: the gateway's worker thread (its log says ` +
        `how long); restore: the hub's worker opening the package (last byte at the hub → STOW starts); ` +
        `STOW: ${orthanc ? 'STOW-RS to Orthanc' : 'file archive store'}; recorded: transfer_image written.`,
    );
    print();
    print(
      `| view | sealed MB | received | sealed | seal s | first byte at hub | last byte at hub | upload s | restore s | STOW s | recorded | gateway told |`,
    );
    print(`|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|`);
    for (const r of rows)
      print(
        `| ${r.f.view} | ${f2(r.sealed / MB)} | ${t(r.received)} | ${t(r.sealedAt)} | ` +
          `${t(r.sealMs)} | ${t(r.sending)} | ${t(r.hubReceived)} | ${d(r.sending, r.hubReceived)} | ` +
          `${d(r.hubReceived, r.stowStart)} | ${d(r.stowStart, r.stowEnd)} | ${t(r.recorded)} | ${t(r.told)} |`,
      );
    print();
    if (!finished) print(`**Did not finish in ${RUN_TIMEOUT_S} s** (${await storedCount()} of 4 recorded).`);
    // Where the time goes: the upload is one package at a time, each confirmed stored before the next starts.
    const first = rows[0]!;
    const busy = rows.reduce((a, r) => a + (r.hubReceived! - r.sending!), 0);
    const gaps = rows.slice(1).map((r, i) => r.sending! - rows[i]!.hubReceived!);
    const last = rows[rows.length - 1]!;
    const known = rows.every((r) => r.sending !== undefined && r.hubReceived !== undefined);
    print(
      `Elapsed ${s(elapsed)} s; physical minimum ${s(minimum)} s (${f2(sealed / MB)} MB sealed at ${UP_BITS / 1e6} Mbit/s); ratio **${f2(elapsed / minimum)}×** (goal ≤ 1.15×).`,
    );
    print(`storescu (4 files into the gateway over the loopback) took ${s(storescuMs)} s.`);
    if (known) {
      print(`Where the time goes:`);
      print(
        `- before the first byte reaches the hub: ${s(first.sending!)} s (first image received at ${t(first.received)} s; ` +
          `its package goes up as it is sealed: sealed in ${t(first.sealMs)} s, at ${t(first.sealedAt)} s)`,
      );
      print(
        `- link carrying packages (first byte → last byte at hub, summed): ${s(busy)} s, against ${s(minimum)} s ` +
          `for the sealed bytes at the link rate (+${s(busy - minimum)} s: TLS/HTTP, bytes sent again, ramp-up, drops)`,
      );
      print(
        `- link idle between packages (last byte of one at the hub → first byte of the next: the answer to the ` +
          `PATCH, the next upload's creation; the hub restores, STOWs and records meanwhile): ` +
          `${gaps.map((g) => s(g)).join(' + ')} = ${s(gaps.reduce((a, b) => a + b, 0))} s (the hub's restore + STOW + record of ` +
          `each, overlapping the next upload: ${rows
            .slice(0, -1)
            .map((r) => d(r.hubReceived, r.recorded))
            .join(' + ')} s)`,
      );
      print(
        `- after the last byte: restore ${d(last.hubReceived, last.stowStart)} s + STOW ${d(last.stowStart, last.stowEnd)} s ` +
          `+ record ${d(last.stowEnd, last.recorded)} s = ${d(last.hubReceived, last.recorded)} s`,
      );
    }
    print(
      `Bytes up the link during the run: ${f2(bytesUp / MB)} MB for ${f2(sealed / MB)} MB of packages ` +
        `(+${f1(((bytesUp - sealed) / sealed) * 100)}%: TLS records, HTTP, the push stream, bytes sent again after drops).`,
    );
    for (const cut of dropper.cuts) {
      const flowing = sampler.flowingAfter(cut.at, cut.bytesUp);
      const sending = rows.find(
        (r) => r.sending !== undefined && r.sending <= cut.at && (r.hubReceived ?? Infinity) > cut.at,
      );
      print(
        `- drop at ${s(cut.at)} s (${sending ? `uploading ${sending.f.view}` : 'no upload under way'}; ${cut.what}): ` +
          (flowing === undefined ? 'no more bytes went up' : `bytes flowing again ${s(flowing - cut.at)} s later`),
      );
    }
    const warnings = gatewayLog.slice(logFrom).filter((l) => l.level !== 'info');
    for (const w of warnings.slice(0, 12)) print(`  - gateway ${w.level} at ${s(w.at)} s: ${w.message}`);
    if (warnings.length > 12) print(`  - … ${warnings.length - 12} more gateway warnings`);
    for (const line of hubLog.slice(hubLogFrom).slice(0, 8)) print(`  - hub (bench clock) ${line}`);
    print(cpuText);

    // The PACS has the images, bit for bit.
    let exact = 0;
    for (const f of files) {
      const held = orthanc
        ? await orthanc.fileOf(f.sop).catch(() => undefined)
        : (() => {
            const path = join(archiveDir, studyOf(run), `${f.sop}.dcm`);
            return existsSync(path) ? readFileSync(path) : undefined;
          })();
      if (held && sha256(held) === f.sha256) exact++;
    }
    print(`${orthanc ? 'Orthanc' : 'The file archive'} holds ${exact} of 4 images bit-exact.`);
    print();
    return {
      label,
      elapsed: elapsed / 1000,
      sealed,
      bytesUp,
      finished,
      cuts: dropper.cuts.length,
      ...(known && last.recorded !== undefined
        ? {
            parts: {
              firstByte: first.sending! / 1000,
              gaps: gaps.reduce((a, b) => a + b, 0) / 1000,
              tail: (last.recorded - last.hubReceived!) / 1000,
              linkExtra: (busy - minimum) / 1000,
            },
          }
        : {}),
    };
  };

  print(`## 3. C-STORE start → all 4 in the PACS, through the link`);
  print();
  print(
    `Gateway (storescu → C-STORE → seal in a worker → tus upload over mutual TLS) → link → hub (restore in a worker → ` +
      `${orthanc ? `DicomWebPacs, STOW-RS to Orthanc ${orthanc.dicomWebUrl}` : `FileArchive: **Orthanc not found, so a file archive stands in for the PACS**`}). ` +
      `Physical minimum: sealed bytes ÷ ${UP_BITS / 1e6} Mbit/s.` +
      (firstDrop === undefined
        ? ''
        : autoDrop
          ? ` In the drop run the first drop comes once 40% of the sealed bytes have gone up (mid-way through the ` +
            `second package; --first-drop S puts it at S s instead), then every ${DROP_EVERY_S} s.`
          : ` The drop run has ${dropsText(firstDrop)}.`),
  );
  print();
  // Warm-up: one small image through the whole path, so that neither run pays for starting the gateway's and the
  // hub's package worker threads (under tsx each loads the TypeScript loader, then CharLS's WebAssembly).
  {
    const exam = await book();
    const sop = '2.25.990000001';
    const path = join(work, 'warm-up.dcm');
    writeRealisticMammogram(path, { sopInstanceUid: sop, accessionNumber: exam.accession, patientId: exam.patient });
    const logFrom = gatewayLog.length;
    const t0 = performance.now();
    await execFileAsync('storescu', ['-aet', 'MOBILE1', '-aec', 'SHGATEWAY', '127.0.0.1', String(dicomPort), path]);
    const stored = await until(
      async () =>
        (
          await database.db
            .selectFrom('transfer_image')
            .select('sop_instance_uid')
            .where('sop_instance_uid', '=', sop)
            .execute()
        ).length === 1,
      120_000,
      50,
    );
    const sealMs = gatewayLog
      .slice(logFrom)
      .map((l) => /^Sealed \S+: .* in (\d+) ms$/.exec(l.message)?.[1])
      .find((x) => x !== undefined);
    const upload = await database.db
      .selectFrom('transfer_upload')
      .select('id')
      .where('sop_instance_uid', '=', sop)
      .executeTakeFirst();
    const received = upload ? hubReceived.get(upload.id) : undefined;
    const stowStart = stow.get(sop)?.start;
    print(
      `Warm-up (one 1024 × 1280 image, not counted): ${stored ? `in the PACS after ${s(performance.now() - t0)} s` : 'NOT STORED'}; ` +
        `its seal took ${sealMs === undefined ? '?' : s(Number(sealMs))} s and the hub's restore ` +
        `${received && stowStart ? s(stowStart - received) : '?'} s, both including the start of the worker thread ` +
        `(once per process).`,
    );
    print();
  }
  const results: OurResult[] = [await ourRun(1, false)];
  if (firstDrop !== undefined) results.push(await ourRun(2, true));

  // 4. The traditional way.
  interface TraditionalResult {
    label: string;
    elapsed: number;
    finished: boolean;
    attempts: number;
    bytesUp: number;
  }
  let storescp: ReturnType<typeof spawn> | undefined;
  let pacsDicomPort: number;
  const storescpDir = join(work, 'storescp');
  if (orthanc) pacsDicomPort = orthanc.dicomPort;
  else {
    mkdirSync(storescpDir);
    pacsDicomPort = await freePort();
    const child = spawn('storescp', ['-od', storescpDir, String(pacsDicomPort)], { stdio: 'ignore' });
    storescp = child;
    cleanups.push(() => void child.kill());
    await sleep(500);
  }
  const held = async (): Promise<Set<string>> =>
    orthanc
      ? new Set(await orthanc.instances())
      : new Set(readdirSync(storescpDir).map((name) => name.replace(/^[A-Z]{2}\./, '').replace(/\.dcm$/, '')));
  const pacsLink = await startLink({
    target: { host: '127.0.0.1', port: pacsDicomPort },
    upBitsPerSecond: UP_BITS,
    downBitsPerSecond: DOWN_BITS,
    latencyMs: LATENCY_MS,
  });
  cleanups.push(() => pacsLink.close());

  const traditionalRun = async (run: number, drops: boolean): Promise<TraditionalResult> => {
    const files = runFiles(run, `SH9${String(run).padStart(7, '0')}`, '9990000018');
    const label = `storescu → ${orthanc ? 'Orthanc' : 'storescp'} (uncompressed, no resume), ${drops && firstDrop !== undefined ? dropsText(firstDrop) : 'no drops'}`;
    const upBefore = pacsLink.stats.bytesUp;
    const cpu = cpuMark();
    const t0 = performance.now();
    const dropper = scheduleDrops(pacsLink, t0, drops && firstDrop !== undefined ? { seconds: firstDrop } : undefined);
    const deadline = t0 + TRADITIONAL_TIMEOUT_S * 1000;
    let remaining = files;
    const attempts: string[] = [];
    let storedAt = 0;
    while (remaining.length > 0 && performance.now() < deadline) {
      const started = performance.now();
      const upStart = pacsLink.stats.bytesUp;
      const child = spawn(
        'storescu',
        [
          '-aet',
          'MOBILE1',
          '-aec',
          orthanc?.aeTitle ?? 'STORESCP',
          '127.0.0.1',
          String(pacsLink.port),
          ...remaining.map((f) => f.path),
        ],
        { stdio: ['ignore', 'ignore', 'pipe'] },
      );
      let stderr = '';
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
      const killer = setTimeout(() => child.kill('SIGKILL'), Math.max(0, deadline - performance.now()));
      const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
      clearTimeout(killer);
      const have = await held();
      const before = remaining.length;
      remaining = files.filter((f) => !have.has(f.sop));
      if (remaining.length === 0) storedAt = performance.now() - t0;
      const error = stderr.split('\n').find((l) => /^[EF]:/.test(l));
      attempts.push(
        `attempt ${attempts.length + 1}: ${s(started - t0)}–${s(performance.now() - t0)} s, exit ${code ?? 'killed'}, ` +
          `${before - remaining.length} of ${before} stored, ${f1((pacsLink.stats.bytesUp - upStart) / MB)} MB up` +
          (code !== 0 && error ? ` (${error.slice(0, 100)})` : ''),
      );
      if (remaining.length > 0 && RETRY_AFTER_S > 0) await sleep(RETRY_AFTER_S * 1000);
    }
    dropper.stop();
    const finished = remaining.length === 0;
    const elapsed = finished ? storedAt : performance.now() - t0;
    const bytesUp = pacsLink.stats.bytesUp - upBefore;
    print(`### ${label}`);
    print();
    for (const a of attempts) print(`- ${a}`);
    print(
      finished
        ? `All 4 stored after ${s(elapsed)} s: ${f2(elapsed / 1000 / physicalMinimum)}× our physical minimum ` +
            `(${f1(physicalMinimum)} s); its own minimum (${f1(examBytes / MB)} MB uncompressed) is ` +
            `${f1(linkSeconds(examBytes))} s. ${f1(bytesUp / MB)} MB went up the link.`
        : `**Did not finish in ${TRADITIONAL_TIMEOUT_S} s** (${4 - remaining.length} of 4 stored; ${f1(bytesUp / MB)} MB went up the link).`,
    );
    print(cpuSince(cpu));
    print();
    return { label, elapsed: elapsed / 1000, finished, attempts: attempts.length, bytesUp };
  };

  print(`## 4. The traditional way: storescu straight to the PACS's DICOM port through the same link`);
  print();
  print(
    `Each drop aborts the association; storescu is run again at once${RETRY_AFTER_S > 0 ? ` (after ${RETRY_AFTER_S} s)` : ''} ` +
      `for the files the PACS does not hold yet (a file cut midway starts again from its first byte). ` +
      `Timeout ${TRADITIONAL_TIMEOUT_S} s (--traditional-timeout).`,
  );
  print();
  const traditional: TraditionalResult[] = [await traditionalRun(3, false)];
  if (firstDrop !== undefined) traditional.push(await traditionalRun(4, true));
  storescp?.kill();

  // Summary.
  print(`## Summary`);
  print();
  print(
    `4-view 2D exam (${WIDTH} × ${HEIGHT}, 14-bit, ${f1(examBytes / MB)} MB), link ${UP_BITS / 1e6} Mbit/s up, ` +
      `${LATENCY_MS} ms one way; PACS: ${orthanc ? 'Orthanc (DICOMweb STOW-RS for the hub, DICOM for storescu)' : 'file archive / storescp (Orthanc not found)'}; ` +
      `database: ${process.env.DATABASE_URL ? 'PostgreSQL' : 'PGlite'}; all on one ${cpus().length}-core machine.`,
  );
  print();
  print(`| | value |`);
  print(`|---|---:|`);
  print(`| compression, image package (JPEG-LS) | ${f2(examBytes / ours.bytes)}× |`);
  for (const r of rows.slice(2, -1)) print(`| compression, ${r.name} | ${f2(examBytes / r.bytes)}× |`);
  print(`| gateway compress + encrypt, one core | ${f1(examBytes / MB / (sealMs / 1000))} MB/s |`);
  print();
  print(`| path to the PACS | drops | MB up the link | elapsed s | physical minimum s | ratio (goal ≤ 1.15×) |`);
  print(`|---|---|---:|---:|---:|---:|`);
  for (const r of results)
    print(
      `| Screening Hub (JPEG-LS + AES-GCM, tus) | ${r.label.replace(/^Screening Hub, /, '')} | ${f1(r.bytesUp / MB)} | ` +
        `${r.finished ? f1(r.elapsed) : `> ${RUN_TIMEOUT_S}`} | ${f1(linkSeconds(r.sealed))} | ${r.finished ? `${f2(r.elapsed / linkSeconds(r.sealed))}×` : '–'} |`,
    );
  for (const r of traditional)
    print(
      `| storescu → PACS (uncompressed, no resume) | ${r.label.replace(/^.*\), /, '')} | ${f1(r.bytesUp / MB)} | ` +
        `${r.finished ? f1(r.elapsed) : `did not finish in ${TRADITIONAL_TIMEOUT_S} s`} | ${f1(physicalMinimum)} | ` +
        `${r.finished ? `${f2(r.elapsed / physicalMinimum)}×` : '–'} |`,
    );
  print();
  print(`Where our runs' time goes beyond the physical minimum (seconds):`);
  print();
  print(
    `| run | before the first byte at the hub (C-STORE + first stripes of the 1st image) | link idle between packages (round trips) | last byte → recorded (restore + STOW of the last) | link time beyond the minimum (TLS/HTTP, drops, resends) |`,
  );
  print(`|---|---:|---:|---:|---:|`);
  for (const r of results)
    if (r.parts)
      print(
        `| ${r.label.replace(/^Screening Hub, /, '')} | ${f1(r.parts.firstByte)} | ${f1(r.parts.gaps)} | ${f1(r.parts.tail)} | ${f1(r.parts.linkExtra)} |`,
      );
  print();
  print(
    `CPU contention: storescu, Orthanc, the gateway, the hub and the link simulator all share this machine's ` +
      `${cpus().length} cores (the gateway's sealing and the hub's restoring are one core each, at the same time ` +
      `in the pipelined part of a run), so the times above are pessimistic for a real trailer and hub.`,
  );
  print(`Whole bench: ${f1((performance.now() - benchStart) / 1000)} s.`);
  print();
  print('```');
  print(`npx tsx bench/transfer.ts ${process.argv.slice(2).join(' ')}`.trim());
  print('```');
} finally {
  for (const cleanup of cleanups.reverse()) {
    try {
      await cleanup();
    } catch {
      // keep cleaning
    }
  }
  await database.drop();
  rmSync(work, { recursive: true, force: true });
}
process.exit(0);
