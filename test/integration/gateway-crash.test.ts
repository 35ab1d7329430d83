import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { request } from 'node:http';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ReceivedImage } from '../../src/gateway/image-store.js';
import { echoscu, freePort, haveDcmtk } from '../support/dcmtk.js';
import { writeSyntheticMammogram } from '../support/mammogram.js';
import { offlineGatewayFolder } from '../support/gateway-hub.js';
import { isoDateInLondon } from '../../src/pathway/dates.js';

const run = promisify(execFile);

describe.skipIf(!haveDcmtk)('gateway killed with SIGKILL (power cut on the van)', () => {
  let dir: string;
  let port: number;
  let gateway: ChildProcess | undefined;
  let statusPort: number;

  /** Power cut: SIGKILL, and wait until the process is gone. */
  const kill9 = async (child: ChildProcess | undefined) => {
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const gone = once(child, 'exit');
    child.kill('SIGKILL');
    await gone;
  };
  const start = async () => {
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        'src/cli/screening-hub.ts',
        'gateway',
        '--hub',
        'https://127.0.0.1:9',
        '--unit',
        'mobile-1',
        '--allow',
        'MAMMO1',
        '--dicom-port',
        String(port),
        '--status-port',
        String((statusPort = await freePort())),
        '--min-free-mb',
        '1',
        '--data',
        join(dir, 'gateway'),
      ],
      { stdio: 'ignore' },
    );
    // Up when both its DICOM port and its trailer page answer (the page is on a new port each start).
    const pageUp = () =>
      fetch(`http://127.0.0.1:${statusPort}/`).then(
        () => true,
        () => false,
      );
    for (let i = 0; i < 100 && ((await echoscu(port)) !== 0 || !(await pageUp())); i++)
      await new Promise((r) => setTimeout(r, 100));
    return child;
  };
  const storescu = (file: string) =>
    run('storescu', ['-aet', 'MAMMO1', '-aec', 'SHGATEWAY', '127.0.0.1', String(port), file], { timeout: 30_000 }).then(
      () => 0,
      (e: { code?: number }) => e.code ?? 1,
    );
  const index = () =>
    existsSync(join(dir, 'gateway', 'received.jsonl'))
      ? readFileSync(join(dir, 'gateway', 'received.jsonl'), 'utf8')
          .trim()
          .split('\n')
          .map((l) => JSON.parse(l) as ReceivedImage)
      : [];

  const today = isoDateInLondon(new Date());
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'crash-'));
    port = await freePort();
    // Enrolled earlier, hub unreachable now (a lay-by with no signal), with today's worklist from the hub.
    await offlineGatewayFolder(join(dir, 'gateway'), 'mobile-1', [
      {
        appointmentId: '00000000-0000-4000-8000-000000000077',
        participantId: '00000000-0000-4000-9000-000000000077',
        status: 'scheduled',
        accessionNumber: 'SH00000077',
        nhsNumber: '9990000077',
        givenName: 'Petra',
        familyName: 'Powercut',
        dateOfBirth: '1961-03-27',
        sex: 'female',
        clinicDate: today,
        startTime: '09:00',
        stationAeTitle: 'MOBILE1',
        locationName: 'Tesco car park',
        adjustments: [],
      },
    ]);
  });
  afterAll(() => {
    gateway?.kill('SIGKILL');
    if (!process.env.KEEP) rmSync(dir, { recursive: true, force: true });
  });

  it('keeps every image it acknowledged, and nothing half-received, across kill -9 at any moment', async () => {
    gateway = await start();
    for (const n of [1, 2, 3]) {
      writeSyntheticMammogram(join(dir, `small${n}.dcm`), { sopInstanceUid: `2.25.880${n}`, side: 128 });
      expect(await storescu(join(dir, `small${n}.dcm`))).toBe(0);
    }
    await kill9(gateway); // right after three acknowledgements

    gateway = await start();
    // A 27 MB image (the size of one 2D view), killed while it is arriving: never acknowledged.
    writeSyntheticMammogram(join(dir, 'big.dcm'), { sopInstanceUid: '2.25.8809', side: 3700 });
    const sending = storescu(join(dir, 'big.dcm'));
    for (let i = 0; i < 200 && readdirSync(join(dir, 'gateway', 'incoming')).length === 0; i++)
      await new Promise((r) => setTimeout(r, 10));
    await kill9(gateway);
    expect(await sending).not.toBe(0);

    gateway = await start();
    expect(index().map((i) => i.sopInstanceUid)).toEqual(['2.25.8801', '2.25.8802', '2.25.8803']);
    for (const image of index())
      await run('dcmdump', ['-q', image.file]).catch((e: { stderr?: string }) => {
        throw new Error(`dcmdump ${image.file}: ${e.stderr}`);
      }); // each one a readable DICOM file
    expect(readdirSync(join(dir, 'gateway', 'images')).sort()).toEqual([
      '2.25.8801.dcm',
      '2.25.8802.dcm',
      '2.25.8803.dcm',
    ]);
    expect(readdirSync(join(dir, 'gateway', 'incoming'))).toEqual([]);
    // And it goes on receiving.
    expect(await storescu(join(dir, 'small1.dcm').replace('small1', 'small2'))).toBe(0);
  });

  it('keeps a change made on the trailer page across kill -9 right after it was saved', async () => {
    await kill9(gateway);
    gateway = await start();
    const page = `http://127.0.0.1:${statusPort}`;
    const home = await (await fetch(page)).text();
    expect(home).toContain('POWERCUT, Petra');
    const csrf = /name="csrf" value="([0-9a-f]+)"/.exec(home)![1]!;
    const post = (path: string, form: Record<string, string>, cookie = '') =>
      fetch(`${page}${path}`, {
        method: 'POST',
        redirect: 'manual',
        headers: { 'content-type': 'application/x-www-form-urlencoded', cookie },
        body: new URLSearchParams({ csrf, ...form }),
      });
    // A page elsewhere that rebinds its own name to the gateway (DNS rebinding), or posts from another origin: refused.
    const asked = (headers: Record<string, string>, method = 'GET') =>
      new Promise<number>((resolve, reject) =>
        request({ host: '127.0.0.1', port: statusPort, path: '/', method, headers }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        })
          .on('error', reject)
          .end(),
      );
    expect(await asked({ host: `evil.example:${statusPort}` })).toBe(421);
    expect(await asked({ origin: 'http://evil.example' }, 'POST')).toBe(421);
    expect(await asked({})).toBe(200);
    const named = await post('/name', { madeBy: 'Morgan Mammographer' });
    expect(named.status).toBe(303);
    const cookie = named.headers.get('set-cookie')!.split(';')[0]!;
    const saved = await post(
      '/attendance',
      { appointment: '00000000-0000-4000-8000-000000000077', status: 'checked_in' },
      cookie,
    );
    expect(saved.status).toBe(303);
    await kill9(gateway); // the moment the page said it was saved

    gateway = await start();
    const after = await (await fetch(`http://127.0.0.1:${statusPort}/`)).text();
    expect(after).toContain('1 waiting to be sent to the hub');
    expect(after).toContain('Morgan Mammographer');
    expect(after).toMatch(/Offline/);
  });
});
