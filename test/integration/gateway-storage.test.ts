import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import dcmjs from 'dcmjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ImageStore, type ReceivedImage } from '../../src/gateway/image-store.js';
import { startWorklistScp, type WorklistScp } from '../../src/gateway/worklist-scp.js';
import { freePort, haveDcmtk } from '../support/dcmtk.js';
import { writeSyntheticMammogram } from '../support/mammogram.js';

const run = promisify(execFile);
const pixelHash = (file: string) => {
  const bytes = readFileSync(file);
  const parsed = dcmjs.data.DicomMessage.readFile(Uint8Array.from(bytes).buffer);
  const ds = dcmjs.data.DicomMetaDictionary.naturalizeDataset(parsed.dict) as { PixelData: ArrayBuffer[] };
  return createHash('sha256').update(Buffer.from(ds.PixelData[0]!)).digest('hex');
};

async function storescu(port: number, file: string, callingAe = 'MAMMO1') {
  try {
    const { stdout, stderr } = await run(
      'storescu',
      ['-v', '-aet', callingAe, '-aec', 'SHGATEWAY', '127.0.0.1', String(port), file],
      { timeout: 20_000 },
    );
    return { code: 0, log: stdout + stderr };
  } catch (error) {
    const e = error as { code?: number; stdout?: string; stderr?: string };
    return { code: e.code ?? 1, log: (e.stdout ?? '') + (e.stderr ?? '') };
  }
}

describe.skipIf(!haveDcmtk)('gateway storage (C-STORE SCP) fed by DCMTK storescu', () => {
  let dir: string;
  let port: number;
  let scp: WorklistScp;
  let store: ImageStore;
  const received: ReceivedImage[] = [];
  const logs: string[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'storage-'));
    store = new ImageStore(join(dir, 'gateway'), 1024 * 1024);
    port = await freePort();
    scp = startWorklistScp({
      port,
      aeTitle: 'SHGATEWAY',
      allowedCallingAeTitles: ['MAMMO1'],
      worklist: () => [],
      images: store,
      onImage: (image) => received.push(image),
      log: (level, message) => logs.push(`${level}: ${message}`),
    });
    await new Promise((r) => setTimeout(r, 200));
  });
  afterAll(() => {
    scp?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('stores a mammogram durably as a Part 10 file with the same pixels, indexed by accession number', async () => {
    const file = join(dir, 'in.dcm');
    const pixels = writeSyntheticMammogram(file, { sopInstanceUid: '2.25.777001', side: 512 });
    const sent = await storescu(port, file);
    expect(sent.code).toBe(0);
    expect(sent.log).toMatch(/Received Store Response \(Success\)/);
    const stored = join(dir, 'gateway', 'images', '2.25.777001.dcm');
    expect(pixelHash(stored)).toBe(createHash('sha256').update(pixels).digest('hex'));
    await run('dcmdump', ['-q', stored]);
    expect(received.at(-1)).toMatchObject({
      sopInstanceUid: '2.25.777001',
      accessionNumber: 'SH00000042',
      patientId: '9990000018',
    });
    const index = readFileSync(join(dir, 'gateway', 'received.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as ReceivedImage);
    expect(index.map((i) => i.sopInstanceUid)).toContain('2.25.777001');
  });

  it('refuses with Out of Resources when free space is below the limit, so the modality keeps its copy', async () => {
    const full = new ImageStore(join(dir, 'full'), Number.MAX_SAFE_INTEGER);
    const fullPort = await freePort();
    const fullScp = startWorklistScp({
      port: fullPort,
      aeTitle: 'SHGATEWAY',
      allowedCallingAeTitles: ['MAMMO1'],
      worklist: () => [],
      images: full,
      log: (level, message) => logs.push(`${level}: ${message}`),
    });
    try {
      await new Promise((r) => setTimeout(r, 200));
      const file = join(dir, 'in2.dcm');
      writeSyntheticMammogram(file, { sopInstanceUid: '2.25.777002', side: 512 });
      const sent = await storescu(fullPort, file);
      expect(sent.log).toMatch(/Out of Resources|Refused: OutOfResources|0xa700/i);
      expect(logs.some((l) => /Image 2\.25\.777002 .* refused: only \d+ bytes free/.test(l))).toBe(true);
    } finally {
      fullScp.close();
    }
  });

  it('does not offer storage for other kinds of image', async () => {
    const file = join(dir, 'ct.dcm');
    writeSyntheticMammogram(file, {
      sopInstanceUid: '2.25.777003',
      side: 512,
      sopClassUid: '1.2.840.10008.5.1.4.1.1.2',
    });
    const sent = await storescu(port, file);
    expect(sent.log).toMatch(/No presentation context for: \(CT\)/);
    expect(sent.code).not.toBe(0);
    expect(received.map((r) => r.sopInstanceUid)).not.toContain('2.25.777003');
  });
});
