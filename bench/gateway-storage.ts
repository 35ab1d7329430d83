/**
 * C-STORE ingest: a 4-view screening exam (4 × 27 MB, 16-bit digital mammograms) sent by DCMTK's storescu in one
 * association, to the gateway (streams to disk, fsyncs each image before Success) and to DCMTK's storescp on the
 * same machine (which writes files without fsync). Prints MB/s; the data is random, so nothing compresses.
 *
 *   npx tsx bench/gateway-storage.ts [--runs 3]
 */
import { execFile, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { promisify } from 'node:util';
import { ImageStore } from '../src/gateway/image-store.js';
import { startWorklistScp } from '../src/gateway/worklist-scp.js';
import { freePort } from '../test/support/dcmtk.js';
import { writeSyntheticMammogram } from '../test/support/mammogram.js';

const run = promisify(execFile);
const { values } = parseArgs({ options: { runs: { type: 'string', default: '3' } } });
const RUNS = Number(values.runs);
const SIDE = 3700; // 3700 × 3700 × 2 bytes ≈ 27.4 MB, a 2D view

const dir = mkdtempSync(join(tmpdir(), 'ingest-'));
const files: string[] = [];
for (let view = 0; view < 4; view++) {
  const file = join(dir, `view${view}.dcm`);
  writeSyntheticMammogram(file, { sopInstanceUid: `2.25.4242${view}`, side: SIDE, accessionNumber: 'SH00004242' });
  files.push(file);
}
const megabytes = files.reduce((sum, f) => sum + statSync(f).size, 0) / 1e6;

async function timeSend(port: number, calledAe: string): Promise<number> {
  const started = performance.now();
  await run('storescu', ['-aet', 'MAMMO1', '-aec', calledAe, '127.0.0.1', String(port), ...files], {
    timeout: 300_000,
  });
  return (performance.now() - started) / 1000;
}

const gatewayPort = await freePort();
const gatewayDir = join(dir, 'gateway');
const scp = startWorklistScp({
  port: gatewayPort,
  aeTitle: 'SHGATEWAY',
  allowedCallingAeTitles: ['MAMMO1'],
  worklist: () => [],
  images: new ImageStore(gatewayDir, 1024 * 1024 * 1024),
  log: () => undefined,
});
const dcmtkPort = await freePort();
const dcmtkDir = join(dir, 'storescp');
mkdirSync(dcmtkDir);
const storescp = spawn('storescp', ['-od', dcmtkDir, String(dcmtkPort)], { stdio: 'ignore' });
await new Promise((r) => setTimeout(r, 500));

console.log(`C-STORE of a 4-view exam (${megabytes.toFixed(1)} MB) by storescu in one association, ${RUNS} runs`);
console.log('| receiver | best s | MB/s (best) | median s |');
console.log('|---|---:|---:|---:|');
try {
  for (const [label, port, ae] of [
    ['Screening Hub gateway (fsync before Success)', gatewayPort, 'SHGATEWAY'],
    ['DCMTK storescp 3.6.7 (no fsync)', dcmtkPort, 'STORESCP'],
  ] as const) {
    const times: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      times.push(await timeSend(port, ae));
      rmSync(join(gatewayDir, 'images'), { recursive: true, force: true });
      mkdirSync(join(gatewayDir, 'images'));
    }
    times.sort((a, b) => a - b);
    console.log(
      `| ${label} | ${times[0]!.toFixed(2)} | ${(megabytes / times[0]!).toFixed(0)} | ${times[Math.floor(times.length / 2)]!.toFixed(2)} |`,
    );
  }
} finally {
  scp.close();
  storescp.kill();
  rmSync(dir, { recursive: true, force: true });
}
