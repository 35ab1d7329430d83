import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { part10File } from '../../src/dicom/part10.js';
import { ImageStore, type ReceivedImage } from '../../src/gateway/image-store.js';
import { startWorklistScp, type WorklistScp } from '../../src/gateway/worklist-scp.js';
import { echoscu, freePort, haveDcmtk } from '../support/dcmtk.js';
import { MG_FOR_PRESENTATION, writeSyntheticMammogram } from '../support/mammogram.js';
import {
  associateRq,
  cFindRq,
  cStoreRq,
  datasetOfPart10,
  EXPLICIT_BE,
  EXPLICIT_LE,
  JPEG_BASELINE,
  MWL_FIND,
  IMPLICIT_LE,
  pData,
  RawPeer,
  releaseRq,
} from '../support/raw-dicom.js';

const A_ABORT = 0x07;
const A_RELEASE_RP = 0x06;
const mammography = [{ id: 1, abstractSyntax: MG_FOR_PRESENTATION, transferSyntaxes: [EXPLICIT_LE] }];

/** Sends a dataset as P-DATA-TF PDUs of at most 16 KB, the last one flagged last. */
function datasetPdus(dataset: Buffer, contextId = 1): Buffer[] {
  const pdus: Buffer[] = [];
  for (let at = 0; at < dataset.length; at += 16_000) {
    const value = dataset.subarray(at, at + 16_000);
    pdus.push(pData(contextId, value, { command: false, last: at + 16_000 >= dataset.length }));
  }
  return pdus;
}

describe.skipIf(!haveDcmtk)('gateway against malformed, truncated and hostile input', () => {
  let dir: string;
  let port: number;
  let scp: WorklistScp;
  const received: ReceivedImage[] = [];
  const logs: string[] = [];
  const gateway = () => join(dir, 'gateway');

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'robustness-'));
    port = await freePort();
    scp = startWorklistScp({
      port,
      aeTitle: 'SHGATEWAY',
      allowedCallingAeTitles: ['MAMMO1'],
      worklist: () => [],
      images: new ImageStore(gateway(), 1024 * 1024),
      onImage: (image) => received.push(image),
      log: (level, message) => logs.push(`${level}: ${message}`),
    });
    await new Promise((r) => setTimeout(r, 200));
  });
  afterAll(() => {
    scp?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** After each hostile exchange: the gateway still answers, and has kept no image, whole or half. */
  afterEach(async () => {
    expect(await echoscu(port)).toBe(0);
    await new Promise((r) => setTimeout(r, 100));
    expect(readdirSync(join(gateway(), 'images'))).toEqual([]);
    expect(readdirSync(join(gateway(), 'incoming'))).toEqual([]);
    expect(existsSync(join(gateway(), 'received.jsonl'))).toBe(false);
    expect(received).toEqual([]);
  });

  const mammogram = (name: string, sopInstanceUid: string) => {
    const file = join(dir, name);
    writeSyntheticMammogram(file, { sopInstanceUid, side: 256 });
    return datasetOfPart10(file);
  };

  it('aborts and closes a connection that sends random bytes, or HTTP', async () => {
    for (const garbage of [
      Buffer.concat([Buffer.from([0xab]), randomBytes(64 * 1024)]),
      Buffer.from('GET / HTTP/1.1\r\nHost: gateway\r\n\r\n'),
    ]) {
      const peer = await RawPeer.open(port);
      await peer.send(garbage);
      expect((await peer.nextPdu())?.type).toBe(A_ABORT);
      await peer.closed;
    }
    expect(logs.some((l) => /aborted: unknown PDU type 0xab/.test(l))).toBe(true);
  });

  it('refuses an association that can only receive PDUs too small to carry anything (it would hang the gateway)', async () => {
    const peer = await RawPeer.open(port);
    await peer.send(
      associateRq('MAMMO1', 'SHGATEWAY', [{ id: 1, abstractSyntax: MWL_FIND, transferSyntaxes: [IMPLICIT_LE] }], 6),
    );
    expect((await peer.nextPdu())?.type).toBe(0x03); // A-ASSOCIATE-RJ
    expect(logs.some((l) => /can only receive PDUs of 6 bytes/.test(l))).toBe(true);
    expect(await echoscu(port)).toBe(0);
  });

  it('refuses a PDU that claims 4 GB, before reading it', async () => {
    const peer = await RawPeer.open(port);
    await peer.send(Buffer.from([0x01, 0x00, 0xff, 0xff, 0xff, 0xff, 0x00, 0x01]));
    expect((await peer.nextPdu())?.type).toBe(A_ABORT);
    await peer.closed;
    expect(logs.some((l) => /PDU of type 1 claims 4294967295 bytes/.test(l))).toBe(true);

    // The same header, then the peer goes away at once.
    const quitter = await RawPeer.open(port);
    await quitter.send(Buffer.from([0x01, 0x00, 0xff, 0xff, 0xff, 0xff]));
    quitter.close();
  });

  it('drops the half-received image when the connection is cut inside a P-DATA PDU', async () => {
    const dataset = mammogram('cut.dcm', '2.25.880001');
    const peer = await RawPeer.open(port);
    expect((await peer.associate(mammography)).get(1)?.result).toBe(0);
    await peer.send(pData(1, cStoreRq(MG_FOR_PRESENTATION, '2.25.880001'), { command: true, last: true }));
    const [first, second] = datasetPdus(dataset);
    await peer.send(first!);
    await peer.send(second!.subarray(0, 5000)); // a PDU that never ends
    await new Promise((r) => setTimeout(r, 200));
    expect(readdirSync(join(gateway(), 'incoming'))).toHaveLength(1); // being received…
    peer.close();
    await peer.closed;
  });

  it('refuses an image whose dataset is cut short, inside the pixel data or between elements', async () => {
    const dataset = mammogram('short.dcm', '2.25.880002');
    for (const cut of [dataset.length - 1000, dataset.length - 256 * 256 * 2 - 12]) {
      const peer = await RawPeer.open(port);
      await peer.associate(mammography);
      await peer.send(pData(1, cStoreRq(MG_FOR_PRESENTATION, '2.25.880002'), { command: true, last: true }));
      for (const p of datasetPdus(dataset.subarray(0, cut))) await peer.send(p);
      expect(await peer.responseStatus()).toBe(0xc000);
      await peer.send(releaseRq());
      expect((await peer.nextPdu())?.type).toBe(A_RELEASE_RP);
      peer.close();
    }
    expect(logs.some((l) => /Image 2\.25\.880002 .* refused: the dataset is not whole \(.*cut short\)/.test(l))).toBe(
      true,
    );
    expect(logs.some((l) => /Image 2\.25\.880002 .* refused: it has no Pixel Data/.test(l))).toBe(true);
  });

  it('refuses an image that is not the instance the command names, or names nobody', async () => {
    const other = mammogram('other.dcm', '2.25.880099');
    const file = join(dir, 'anonymous.dcm');
    const pixels = randomBytes(64 * 64 * 2);
    writeFileSync(
      file,
      part10File(
        { sopClassUid: MG_FOR_PRESENTATION, sopInstanceUid: '2.25.880004', transferSyntaxUid: EXPLICIT_LE },
        {
          SOPClassUID: MG_FOR_PRESENTATION,
          SOPInstanceUID: '2.25.880004',
          Modality: 'MG',
          Rows: 64,
          Columns: 64,
          BitsAllocated: 16,
          PixelData: [pixels.buffer.slice(pixels.byteOffset, pixels.byteOffset + pixels.byteLength)],
          _vrMap: { PixelData: 'OW' },
        },
      ),
    );
    for (const [uid, dataset, reason] of [
      ['2.25.880003', other, /SOP Instance UID \(0008,0018\) is "2\.25\.880099"/],
      ['2.25.880004', datasetOfPart10(file), /no Patient ID/],
    ] as const) {
      const peer = await RawPeer.open(port);
      await peer.associate(mammography);
      await peer.send(pData(1, cStoreRq(MG_FOR_PRESENTATION, uid), { command: true, last: true }));
      for (const p of datasetPdus(dataset)) await peer.send(p);
      expect(await peer.responseStatus()).toBe(0xc000);
      peer.close();
      expect(logs.some((l) => l.includes(`Image ${uid} from MAMMO1 refused`) && reason.test(l))).toBe(true);
    }
  });

  it('rejects mammograms offered only in big endian or JPEG baseline, and a C-STORE sent anyway', async () => {
    const peer = await RawPeer.open(port);
    const results = await peer.associate([
      { id: 1, abstractSyntax: MG_FOR_PRESENTATION, transferSyntaxes: [EXPLICIT_BE] },
      { id: 3, abstractSyntax: MG_FOR_PRESENTATION, transferSyntaxes: [JPEG_BASELINE] },
    ]);
    expect(results.get(1)?.result).toBe(4); // transfer syntaxes not supported
    expect(results.get(3)?.result).toBe(4);
    await peer.send(pData(1, cStoreRq(MG_FOR_PRESENTATION, '2.25.880005'), { command: true, last: true }));
    for (const p of datasetPdus(mammogram('be.dcm', '2.25.880005'))) await peer.send(p);
    expect(await peer.responseStatus()).toBe(0x0122);
    peer.close();
    expect(logs.some((l) => /Image 2\.25\.880005 .* refused: SOP class .* not accepted/.test(l))).toBe(true);
  });

  it('aborts a worklist query whose dataset grows past the limit, without holding it', async () => {
    const peer = await RawPeer.open(port);
    expect(
      (await peer.associate([{ id: 1, abstractSyntax: MWL_FIND, transferSyntaxes: [EXPLICIT_LE] }])).get(1)?.result,
    ).toBe(0);
    await peer.send(pData(1, cFindRq(MWL_FIND), { command: true, last: true }));
    let closed = false;
    void peer.closed.then(() => (closed = true));
    const chunk = pData(1, Buffer.alloc(15_000), { command: false, last: false });
    for (let sent = 0; sent < 24 * 1024 * 1024 && !closed; sent += chunk.length) await peer.send(chunk);
    await peer.closed;
    expect(logs.some((l) => /aborted: DIMSE dataset longer than 16777216 bytes/.test(l))).toBe(true);
  });

  it('aborts a P-DATA PDU whose PDV length does not fit it, and P-DATA before any association', async () => {
    const peer = await RawPeer.open(port);
    await peer.associate(mammography);
    const lying = pData(1, Buffer.alloc(100), { command: true, last: true });
    lying.writeUInt32BE(5000, 6); // the PDV claims more than its PDU holds
    await peer.send(lying);
    expect((await peer.nextPdu())?.type).toBe(A_ABORT);
    await peer.closed;

    const early = await RawPeer.open(port);
    await early.send(pData(1, cStoreRq(MG_FOR_PRESENTATION, '2.25.880007'), { command: true, last: true }));
    await early.closed;
  });
});
