/**
 * Modality Worklist C-FIND latency for a 200-appointment clinic day: the gateway answering from its worklist copy
 * (as it does with the hub unreachable), beside DCMTK's reference worklist server wlmscpfs on the same machine with
 * the same 200 items, both asked by DCMTK's findscu -W (so the times include starting findscu: compare the two
 * rows, and see `echoscu` for the floor). Each query is a whole association, as a mammography machine makes it.
 *
 * What is the gateway's own: the same query from a raw-socket client in this process (it only frames PDUs and reads
 * each response's status), timed from opening the connection to the final response, and the gateway's log of each
 * query (`ms`: from the C-FIND request to the last response handed to the socket).
 *
 *   npx tsx bench/gateway-worklist.ts [--queries 300] [--appointments 200]
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import dcmjsDimse from 'dcmjs-dimse';
import { worklistItem, type WorklistEntry } from '../src/dicom/worklist-item.js';
import { startWorklistScp } from '../src/gateway/worklist-scp.js';
import { freePort } from '../test/support/dcmtk.js';
import { cFindRq, EXPLICIT_LE, IMPLICIT_LE, MWL_FIND, pData, RawPeer, releaseRq } from '../test/support/raw-dicom.js';

const { values } = parseArgs({
  options: { queries: { type: 'string', default: '300' }, appointments: { type: 'string', default: '200' } },
});
const QUERIES = Number(values.queries);
const APPOINTMENTS = Number(values.appointments);
const DAY = '2026-11-23';
const { Dataset } = dcmjsDimse;

const entries: WorklistEntry[] = Array.from({ length: APPOINTMENTS }, (_, i) => ({
  appointmentId: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
  participantId: `00000000-0000-4000-9000-${String(i).padStart(12, '0')}`,
  status: 'scheduled',
  accessionNumber: `SH${String(i).padStart(8, '0')}`,
  nhsNumber: String(9990000000 + i * 11),
  givenName: `Given${i}`,
  familyName: `Family${i}`,
  dateOfBirth: '1960-02-29',
  sex: 'female',
  clinicDate: DAY,
  startTime: `${String(8 + Math.floor(i / 25)).padStart(2, '0')}:${String((i % 25) * 2).padStart(2, '0')}`,
  stationAeTitle: 'MAMMO1',
  locationName: 'Tesco car park',
  adjustments: i % 40 === 0 ? ['Breast implants'] : [],
}));
const items = entries.map(worklistItem);

/** One query as a modality makes it: DCMTK's findscu -W, a whole association, all responses read. */
function query(port: number, calledAe: string): Promise<{ ms: number; responses: number }> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const args = [
      '-W',
      '-aet',
      'MAMMO1',
      '-aec',
      calledAe,
      '-k',
      'PatientName',
      '-k',
      'PatientID',
      '-k',
      'PatientBirthDate',
      '-k',
      'AccessionNumber',
    ];
    for (const key of [
      'Modality=MG',
      `ScheduledProcedureStepStartDate=${DAY.replaceAll('-', '')}`,
      'ScheduledStationAETitle',
      'ScheduledProcedureStepStartTime',
    ]) {
      args.push('-k', `ScheduledProcedureStepSequence[0].${key}`);
    }
    // findscu logs one 'Find Response: N (Pending)' line per match at -v.
    const child = spawn('findscu', ['-v', ...args, '127.0.0.1', String(port)], { stdio: ['ignore', 'ignore', 'pipe'] });
    let responses = 0;
    child.stderr.on('data', (chunk: Buffer) => (responses += chunk.toString().split('(Pending)').length - 1));
    child.on('error', reject);
    child.on('exit', (code) =>
      code === 0
        ? resolve({ ms: performance.now() - started, responses })
        : reject(new Error(`findscu exited ${code} against ${calledAe}`)),
    );
  });
}

async function measure(label: string, port: number, calledAe: string) {
  for (let i = 0; i < 10; i++) await query(port, calledAe); // warm up
  const times: number[] = [];
  let responses = 0;
  for (let i = 0; i < QUERIES; i++) {
    const r = await query(port, calledAe);
    times.push(r.ms);
    responses = r.responses;
  }
  row(label, times, responses);
}

function row(label: string, times: number[], responses: number | string) {
  times.sort((a, b) => a - b);
  const at = (p: number) => times[Math.min(times.length - 1, Math.floor((p / 100) * times.length))]!.toFixed(1);
  console.log(`| ${label} | ${times.length} | ${responses} | ${at(50)} | ${at(99)} |`);
}

/** The query findscu sends above, as a raw peer sends it: Explicit VR Little Endian, as findscu negotiates. */
const identifier = new Dataset(
  {
    AccessionNumber: '',
    PatientName: '',
    PatientID: '',
    PatientBirthDate: '',
    ScheduledProcedureStepSequence: [
      {
        Modality: 'MG',
        ScheduledStationAETitle: '',
        ScheduledProcedureStepStartDate: DAY.replaceAll('-', ''),
        ScheduledProcedureStepStartTime: '',
      },
    ],
  },
  EXPLICIT_LE,
).getDenaturalizedDataset();

/** One association from the raw peer: connect, associate, C-FIND, read every response, release. */
async function rawQuery(port: number): Promise<{ ms: number; responses: number }> {
  const started = performance.now();
  const peer = await RawPeer.open(port);
  try {
    const accepted = await peer.associate([
      { id: 1, abstractSyntax: MWL_FIND, transferSyntaxes: [EXPLICIT_LE, IMPLICIT_LE] },
    ]);
    if (accepted.get(1)?.result !== 0) throw new Error('worklist presentation context not accepted');
    void peer.send(
      Buffer.concat([
        pData(1, cFindRq(MWL_FIND), { command: true, last: true }),
        pData(1, identifier, { command: false, last: true }),
      ]),
    );
    let responses = 0;
    for (let status = await peer.responseStatus(); status !== 0x0000; status = await peer.responseStatus()) {
      if (status !== 0xff00) throw new Error(`C-FIND response status ${status}`);
      responses++;
    }
    const ms = performance.now() - started;
    await peer.send(releaseRq());
    await peer.nextPdu();
    return { ms, responses };
  } finally {
    peer.close();
  }
}

async function measureRaw(label: string, port: number) {
  for (let i = 0; i < 10; i++) await rawQuery(port);
  const times: number[] = [];
  let responses = 0;
  for (let i = 0; i < QUERIES; i++) {
    const r = await rawQuery(port);
    times.push(r.ms);
    responses = r.responses;
  }
  row(label, times, responses);
}

/** The `ms` of each worklist query the gateway logs. */
let logged: number[] = [];
const gatewayPort = await freePort();
const scp = startWorklistScp({
  port: gatewayPort,
  aeTitle: 'SHGATEWAY',
  allowedCallingAeTitles: ['MAMMO1'],
  worklist: () => items,
  log: (_level, message, detail) => {
    if (message.startsWith('Worklist query') && typeof detail?.ms === 'number') logged.push(detail.ms);
  },
});

// wlmscpfs reads one file per worklist item from <dir>/<called AE title>/*.wl
await new Promise((r) => setTimeout(r, 300)); // the SCP listens on the next turn of the event loop

const dir = mkdtempSync(join(tmpdir(), 'wlmscpfs-'));
mkdirSync(join(dir, 'WLMSCPFS'));
writeFileSync(join(dir, 'WLMSCPFS', 'lockfile'), '');
await Promise.all(
  items.map(
    (item, i) =>
      new Promise<void>((resolve, reject) =>
        new Dataset(item).toFile(join(dir, 'WLMSCPFS', `item${i}.wl`), (e) => (e ? reject(e) : resolve())),
      ),
  ),
);
const dcmtkPort = await freePort();
const wlmscpfs = spawn('wlmscpfs', ['-dfp', dir, String(dcmtkPort)], { stdio: 'ignore' });
await new Promise((r) => setTimeout(r, 500));

console.log(`C-FIND for one day's MG worklist (${APPOINTMENTS} appointments), one association per query, sequential`);
const echo = performance.now();
await new Promise((resolve) =>
  spawn('echoscu', ['-aet', 'MAMMO1', '-aec', 'SHGATEWAY', '127.0.0.1', String(gatewayPort)]).on('exit', resolve),
);
console.log(
  `(one echoscu association, for the cost of starting a DCMTK tool: ${(performance.now() - echo).toFixed(1)} ms)`,
);
console.log('| server | queries | responses each | p50 ms | p99 ms |');
console.log('|---|---:|---:|---:|---:|');
try {
  await measure('Screening Hub gateway (local copy, hub unreachable)', gatewayPort, 'SHGATEWAY');
  logged = [];
  await measureRaw('gateway, raw-socket peer in this process: connect to final response', gatewayPort);
  row('gateway log `ms`: C-FIND request to last response handed to the socket', logged.slice(10), '');
  if (process.env.SKIP_WLMSCPFS !== '1') await measure('DCMTK wlmscpfs 3.6.7', dcmtkPort, 'WLMSCPFS');
} finally {
  scp.close();
  wlmscpfs.kill();
  rmSync(dir, { recursive: true, force: true });
}
