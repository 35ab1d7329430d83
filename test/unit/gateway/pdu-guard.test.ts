import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PduFraming, type PduLimits } from '../../../src/gateway/pdu-guard.js';
import { associateRq, cFindRq, cStoreRq, pData, releaseRq } from '../../support/raw-dicom.js';

const limits: PduLimits = { maxPduBytes: 64 * 1024, maxCommandBytes: 1024, maxDatasetBytes: 100_000 };
const dataset = (bytes: number, pdvBytes = 16_000) => {
  const pdus: Buffer[] = [];
  for (let at = 0; at < bytes; at += pdvBytes)
    pdus.push(pData(1, Buffer.alloc(Math.min(pdvBytes, bytes - at)), { command: false, last: at + pdvBytes >= bytes }));
  return pdus;
};
/** Feeds the stream in the given chunk sizes; returns the first violation's reason. */
const feed = (stream: Buffer, cuts: number[] = []) => {
  const framing = new PduFraming(limits);
  let at = 0;
  for (const size of [...cuts, stream.length]) {
    const violation = framing.accept(stream.subarray(at, at + size));
    if (violation) return violation.reason;
    at += size;
    if (at >= stream.length) break;
  }
  return undefined;
};

describe('PDU framing guard', () => {
  const association = associateRq('MAMMO1', 'SHGATEWAY', [
    { id: 1, abstractSyntax: '1.2.840.10008.5.1.4.1.1.1.2', transferSyntaxes: ['1.2.840.10008.1.2.1'] },
  ]);
  // A C-STORE may be as large as an image; a C-FIND after it is held to the dataset limit again.
  const valid = Buffer.concat([
    association,
    pData(1, cStoreRq('1.2.840.10008.5.1.4.1.1.1.2', '2.25.1'), { command: true, last: true }),
    ...dataset(500_000),
    pData(1, cFindRq('1.2.840.10008.5.1.4.31'), { command: true, last: true }),
    ...dataset(50_000),
    releaseRq(),
  ]);

  it('lets a well-formed exchange through however the network splits it', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 70_000 }), { maxLength: 40 }), (cuts) => {
        expect(feed(valid, cuts)).toBeUndefined();
      }),
      { numRuns: 200 },
    );
  });

  it('stops unknown PDU types, lying lengths and oversized messages', () => {
    expect(feed(Buffer.from('GET / HTTP/1.1\r\n'))).toMatch(/unknown PDU type 0x47/);
    expect(feed(Buffer.from([1, 0, 0xff, 0xff, 0xff, 0xff]))).toMatch(/claims 4294967295 bytes/);
    const lying = pData(1, Buffer.alloc(10), { command: false, last: true });
    lying.writeUInt32BE(13, 6); // 13 + 4 > the PDU's 16
    expect(feed(lying)).toMatch(/PDV item length 13 does not fit/);
    const query = Buffer.concat([
      pData(1, cFindRq('1.2.840.10008.5.1.4.31'), { command: true, last: true }),
      ...dataset(150_000),
    ]);
    expect(feed(query, [7, 1000, 3])).toMatch(/DIMSE dataset longer than 100000 bytes/);
    expect(feed(pData(1, Buffer.alloc(2000), { command: true, last: false }))).toMatch(/command longer than 1024/);
  });
});
