import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Writable } from 'node:stream';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  HEADER_BYTES,
  newTransferKeyPair,
  openBuffer,
  openStream,
  PackageRefused,
  rawPublicKey,
  sealBuffer,
  sealStream,
  x25519PrivateKey,
  x25519PublicKey,
} from '../../../src/transfer/sealed-package.js';

/** The test vector in docs/transfer-package.md: any change to the format must change both. */
const VECTOR = {
  hubPrivateKey: Buffer.alloc(32, 0x42),
  hubPublicKey: '132c442be010fbd57e72603328aa76e71fccc1503aae219327d14d9c9993f472',
  fixed: {
    ephemeralPrivateKey: Buffer.alloc(32, 0x01),
    contentKey: Buffer.alloc(32, 0x02),
    noncePrefix: Buffer.from('03030303030303', 'hex'),
  },
  segmentBytes: 32,
  plain: 'Screening Hub sealed package test vector: 2 segments of 32 bytes and a short last one.\n',
  sealed:
    '5348504b47310a00a4e09292b651c278b9772c569f5fa9bb13d906b46ab68c9df9dc2b4409f8a20903030303030303469fa1fd80904d12a99581335a4bc373d50017c85a879071e368535c64f527f22a849902b885ceebf451b584051d9c90179290a92e03129ebad57b425c30772111a529803d17bae2c17fff05548675ddefa214a27cd761424310e7e40f1135463d3565461803dc38e0e21d46531b14dd8155011aea55ac4c6f4231437115f320601bef147528d564131eca313f4bfc15f257d7f26d5b2c9a4892194615033d680341ec62529d5c3c1a77312de8f01fe9fa39176a2c0bc8',
};

describe('sealed packages', () => {
  const hub = newTransferKeyPair();

  it('matches the documented test vector, and opens it', async () => {
    const hubKey = x25519PrivateKey(VECTOR.hubPrivateKey);
    expect(rawPublicKey(hubKey).toString('hex')).toBe(VECTOR.hubPublicKey);
    const sealed = await sealBuffer(
      x25519PublicKey(Buffer.from(VECTOR.hubPublicKey, 'hex')),
      Buffer.from(VECTOR.plain),
      {
        segmentBytes: VECTOR.segmentBytes,
        fixed: VECTOR.fixed,
      },
    );
    expect(sealed.toString('hex')).toBe(VECTOR.sealed);
    expect((await openBuffer(hubKey, sealed, { segmentBytes: 32 })).toString()).toBe(VECTOR.plain);
  });

  it('round-trips any content and segment size, with fresh keys every time', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ maxLength: 3000 }),
        fc.integer({ min: 1, max: 700 }),
        async (bytes, segmentBytes) => {
          const plain = Buffer.from(bytes);
          const sealed = await sealBuffer(hub.publicKey, plain, { segmentBytes });
          expect(sealed.length).toBe(
            HEADER_BYTES + plain.length + 16 * Math.max(1, Math.ceil(plain.length / segmentBytes)),
          );
          expect((await openBuffer(hub.privateKey, sealed, { segmentBytes })).equals(plain)).toBe(true);
        },
      ),
      { numRuns: 60 },
    );
    const a = await sealBuffer(hub.publicKey, Buffer.from('same'));
    const b = await sealBuffer(hub.publicKey, Buffer.from('same'));
    expect(a.equals(b)).toBe(false);
  });

  it('refuses any altered byte, a cut package, reordered segments, extra bytes and another hub’s key', async () => {
    const plain = randomBytes(1000);
    const sealed = await sealBuffer(hub.publicKey, plain, { segmentBytes: 100 });
    const refuses = (bytes: Buffer, key = hub.privateKey) =>
      expect(openBuffer(key, bytes, { segmentBytes: 100 })).rejects.toBeInstanceOf(PackageRefused);
    for (const at of [0, 10, HEADER_BYTES - 1, HEADER_BYTES, HEADER_BYTES + 500, sealed.length - 1]) {
      const altered = Buffer.from(sealed);
      altered[at]! ^= 0x01;
      await refuses(altered);
    }
    const segment = 116;
    await refuses(sealed.subarray(0, HEADER_BYTES + 3 * segment)); // cut at a segment boundary
    await refuses(sealed.subarray(0, sealed.length - 5));
    const swapped = Buffer.concat([
      sealed.subarray(0, HEADER_BYTES),
      sealed.subarray(HEADER_BYTES + segment, HEADER_BYTES + 2 * segment),
      sealed.subarray(HEADER_BYTES, HEADER_BYTES + segment),
      sealed.subarray(HEADER_BYTES + 2 * segment),
    ]);
    await refuses(swapped);
    await refuses(Buffer.concat([sealed, Buffer.from([0])]));
    await refuses(sealed, newTransferKeyPair().privateKey);
  });

  it('streams 64 MB through seal and open, holding a few segments at most', async () => {
    const block = randomBytes(1024 * 1024);
    const sealer = sealStream(hub.publicKey);
    const opener = openStream(hub.privateKey);
    const held = () => sealer.writableLength + sealer.readableLength + opener.writableLength + opener.readableLength;
    let seen = 0;
    let peak = 0;
    await pipeline(
      Readable.from(
        (function* () {
          for (let i = 0; i < 64; i++) yield block;
        })(),
      ),
      sealer,
      opener,
      new Writable({
        write(chunk: Buffer, _e, done) {
          seen += chunk.length;
          peak = Math.max(peak, held());
          setImmediate(done); // a slow consumer, like an upload
        },
      }),
    );
    expect(seen).toBe(64 * 1024 * 1024);
    expect(peak).toBeLessThanOrEqual(6 * 1024 * 1024);
  });
});
