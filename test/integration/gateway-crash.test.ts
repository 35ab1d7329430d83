import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ReceivedImage } from '../../src/gateway/image-store.js';
import { echoscu, freePort, haveDcmtk } from '../support/dcmtk.js';
import { writeSyntheticMammogram } from '../support/mammogram.js';

const run = promisify(execFile);

describe.skipIf(!haveDcmtk)('gateway killed with SIGKILL (power cut on the van)', () => {
  let dir: string;
  let port: number;
  let gateway: ChildProcess | undefined;

  const start = async () => {
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        'src/cli/screening-hub.ts',
        'gateway',
        '--hub',
        'http://127.0.0.1:9',
        '--unit',
        'mobile-1',
        '--allow',
        'MAMMO1',
        '--dicom-port',
        String(port),
        '--status-port',
        String(await freePort()),
        '--min-free-mb',
        '1',
        '--data',
        join(dir, 'gateway'),
      ],
      { env: { ...process.env, SCREENING_HUB_TOKEN: 'offline-test' }, stdio: 'ignore' },
    );
    for (let i = 0; i < 100 && (await echoscu(port)) !== 0; i++) await new Promise((r) => setTimeout(r, 100));
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

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'crash-'));
    port = await freePort();
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
    gateway.kill('SIGKILL'); // right after three acknowledgements

    gateway = await start();
    // A 27 MB image (the size of one 2D view), killed while it is arriving: never acknowledged.
    writeSyntheticMammogram(join(dir, 'big.dcm'), { sopInstanceUid: '2.25.8809', side: 3700 });
    const sending = storescu(join(dir, 'big.dcm'));
    for (let i = 0; i < 200 && readdirSync(join(dir, 'gateway', 'incoming')).length === 0; i++)
      await new Promise((r) => setTimeout(r, 10));
    gateway.kill('SIGKILL');
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
});
