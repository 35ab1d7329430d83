import {
  createCipheriv,
  createDecipheriv,
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  hkdfSync,
  randomBytes,
  type KeyObject,
} from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';

/**
 * Sealed packages (docs/transfer-package.md): what a gateway sends the hub, encrypted with AES-256-GCM under a key
 * made for that package alone, the key wrapped for the hub's X25519 public key. The gateway keeps no way to open
 * its own outbox, so a stolen box leaks nothing it has sealed. Streamed in segments (the STREAM construction): a
 * 1.8 GB tomosynthesis object passes through in bounded memory, and a reordered, cut or altered segment fails.
 */
export const MAGIC = Buffer.from('SHPKG1\n\0', 'latin1');
const EPHEMERAL_BYTES = 32;
const PREFIX_BYTES = 7;
const WRAPPED_BYTES = 32 + 16;
export const HEADER_BYTES = MAGIC.length + EPHEMERAL_BYTES + PREFIX_BYTES + WRAPPED_BYTES;
export const DEFAULT_SEGMENT_BYTES = 1024 * 1024;
const TAG_BYTES = 16;
const WRAP_INFO = Buffer.from('screening-hub package key wrap v1');

// DER prefixes of X25519 keys (RFC 8410), to move between raw 32-byte keys and Node's KeyObjects.
const PKCS8_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex');
const SPKI_PREFIX = Buffer.from('302a300506032b656e032100', 'hex');

export class PackageRefused extends Error {}

export function x25519PrivateKey(raw: Buffer): KeyObject {
  return createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, raw]), format: 'der', type: 'pkcs8' });
}

export function x25519PublicKey(raw: Buffer): KeyObject {
  return createPublicKey({ key: Buffer.concat([SPKI_PREFIX, raw]), format: 'der', type: 'spki' });
}

export function rawPublicKey(key: KeyObject): Buffer {
  return (key.type === 'private' ? createPublicKey(key) : key).export({ format: 'der', type: 'spki' }).subarray(12);
}

export function rawPrivateKey(key: KeyObject): Buffer {
  return key.export({ format: 'der', type: 'pkcs8' }).subarray(16);
}

/** The hub's transfer key pair: the private half stays at the hub, the public half goes to every gateway. */
export function newTransferKeyPair(): { privateKey: KeyObject; publicKey: KeyObject } {
  return generateKeyPairSync('x25519');
}

/** Key-encryption key and nonce for one package, from the X25519 shared secret and both public keys. */
function keyWrap(shared: Buffer, ephemeral: Buffer, recipient: Buffer): { kek: Buffer; nonce: Buffer } {
  const okm = Buffer.from(hkdfSync('sha256', shared, Buffer.concat([ephemeral, recipient]), WRAP_INFO, 44));
  return { kek: okm.subarray(0, 32), nonce: okm.subarray(32, 44) };
}

/** Segment i's nonce: the package's random prefix, the 32-bit counter, and 1 for the last segment, 0 otherwise. */
function segmentNonce(prefix: Buffer, index: number, last: boolean): Buffer {
  if (index > 0xffffffff) throw new PackageRefused('A package has at most 2^32 segments');
  const nonce = Buffer.alloc(12);
  prefix.copy(nonce, 0);
  nonce.writeUInt32BE(index, PREFIX_BYTES);
  nonce[11] = last ? 1 : 0;
  return nonce;
}

export interface SealOptions {
  segmentBytes?: number;
  /** Fixed values, for the test vector only: normally all three are fresh random bytes for every package. */
  fixed?: { ephemeralPrivateKey: Buffer; contentKey: Buffer; noncePrefix: Buffer };
}

/** A stream that seals what is written to it for the holder of `recipient`'s private key. */
export function sealStream(recipient: KeyObject, options: SealOptions = {}): Transform {
  const segmentBytes = options.segmentBytes ?? DEFAULT_SEGMENT_BYTES;
  const ephemeral = options.fixed
    ? x25519PrivateKey(options.fixed.ephemeralPrivateKey)
    : generateKeyPairSync('x25519').privateKey;
  const contentKey = options.fixed?.contentKey ?? randomBytes(32);
  const prefix = options.fixed?.noncePrefix ?? randomBytes(PREFIX_BYTES);
  const ephemeralRaw = rawPublicKey(ephemeral);
  const { kek, nonce } = keyWrap(
    diffieHellman({ privateKey: ephemeral, publicKey: recipient }),
    ephemeralRaw,
    rawPublicKey(recipient),
  );
  const start = Buffer.concat([MAGIC, ephemeralRaw, prefix]);
  const wrap = createCipheriv('aes-256-gcm', kek, nonce);
  wrap.setAAD(start);
  const wrapped = Buffer.concat([wrap.update(contentKey), wrap.final(), wrap.getAuthTag()]);

  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let index = 0;
  const seal = (plain: Buffer, last: boolean): Buffer => {
    const cipher = createCipheriv('aes-256-gcm', contentKey, segmentNonce(prefix, index++, last));
    return Buffer.concat([cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
  };
  let headerSent = false;
  return new Transform({
    transform(chunk: Buffer, _encoding, done: TransformCallback) {
      if (!headerSent) {
        this.push(Buffer.concat([start, wrapped]));
        headerSent = true;
      }
      pending.push(chunk);
      pendingBytes += chunk.length;
      // A full segment is sealed only once more bytes follow it: the last segment must be known to be last.
      while (pendingBytes > segmentBytes) {
        const all = Buffer.concat(pending);
        this.push(seal(all.subarray(0, segmentBytes), false));
        pending = [all.subarray(segmentBytes)];
        pendingBytes = pending[0]!.length;
      }
      done();
    },
    flush(done: TransformCallback) {
      if (!headerSent) this.push(Buffer.concat([start, wrapped]));
      this.push(seal(Buffer.concat(pending), true));
      done();
    },
  });
}

/**
 * A stream that opens a sealed package with the recipient's private key. It fails (PackageRefused) on a wrong key,
 * any altered byte, segments out of order, or a package cut short; bytes it has passed on before finding a bad
 * segment must be discarded by the caller (write to a temporary file, keep it only when the stream ends cleanly).
 */
export function openStream(recipientPrivateKey: KeyObject, options: { segmentBytes?: number } = {}): Transform {
  const segmentBytes = (options.segmentBytes ?? DEFAULT_SEGMENT_BYTES) + TAG_BYTES;
  let buffered: Buffer = Buffer.alloc(0);
  let contentKey: Buffer | undefined;
  let prefix: Buffer | undefined;
  let index = 0;
  let finished = false;
  const open = (sealed: Buffer, last: boolean): Buffer => {
    const decipher = createDecipheriv('aes-256-gcm', contentKey!, segmentNonce(prefix!, index, last));
    decipher.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
    try {
      const plain = Buffer.concat([decipher.update(sealed.subarray(0, sealed.length - TAG_BYTES)), decipher.final()]);
      index += 1;
      return plain;
    } catch {
      throw new PackageRefused(`Segment ${index} of the package failed authentication: altered, reordered or cut`);
    }
  };
  return new Transform({
    transform(chunk: Buffer, _encoding, done: TransformCallback) {
      try {
        if (finished) throw new PackageRefused('Bytes after the last segment of the package');
        buffered = buffered.length ? Buffer.concat([buffered, chunk]) : chunk;
        if (!contentKey) {
          if (buffered.length < HEADER_BYTES) return done();
          contentKey = unwrap(recipientPrivateKey, buffered.subarray(0, HEADER_BYTES));
          prefix = Buffer.from(
            buffered.subarray(MAGIC.length + EPHEMERAL_BYTES, MAGIC.length + EPHEMERAL_BYTES + PREFIX_BYTES),
          );
          buffered = buffered.subarray(HEADER_BYTES);
        }
        // A whole segment is opened as not-last only when more bytes follow it.
        while (buffered.length > segmentBytes) {
          this.push(open(buffered.subarray(0, segmentBytes), false));
          buffered = buffered.subarray(segmentBytes);
        }
        done();
      } catch (error) {
        done(error as Error);
      }
    },
    flush(done: TransformCallback) {
      try {
        if (!contentKey) throw new PackageRefused('The package is shorter than its header');
        if (buffered.length < TAG_BYTES) throw new PackageRefused('The package was cut short');
        this.push(open(buffered, true));
        finished = true;
        done();
      } catch (error) {
        done(error as Error);
      }
    },
  });
}

function unwrap(recipientPrivateKey: KeyObject, header: Buffer): Buffer {
  if (!header.subarray(0, MAGIC.length).equals(MAGIC)) throw new PackageRefused('Not a Screening Hub package (v1)');
  const ephemeralRaw = header.subarray(MAGIC.length, MAGIC.length + EPHEMERAL_BYTES);
  const start = header.subarray(0, MAGIC.length + EPHEMERAL_BYTES + PREFIX_BYTES);
  const wrapped = header.subarray(start.length);
  const shared = diffieHellman({
    privateKey: recipientPrivateKey,
    publicKey: x25519PublicKey(Buffer.from(ephemeralRaw)),
  });
  const { kek, nonce } = keyWrap(shared, ephemeralRaw, rawPublicKey(recipientPrivateKey));
  const decipher = createDecipheriv('aes-256-gcm', kek, nonce);
  decipher.setAAD(start);
  decipher.setAuthTag(wrapped.subarray(32));
  try {
    return Buffer.concat([decipher.update(wrapped.subarray(0, 32)), decipher.final()]);
  } catch {
    throw new PackageRefused('The package key does not open with this hub key: sealed for another hub, or altered');
  }
}

/** Seals a whole buffer (small packages, tests). */
export async function sealBuffer(recipient: KeyObject, plain: Buffer, options: SealOptions = {}): Promise<Buffer> {
  return collect(sealStream(recipient, options), plain);
}

/** Opens a whole buffer (small packages, tests). */
export async function openBuffer(
  recipientPrivateKey: KeyObject,
  sealed: Buffer,
  options: { segmentBytes?: number } = {},
): Promise<Buffer> {
  return collect(openStream(recipientPrivateKey, options), sealed);
}

function collect(stream: Transform, input: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const out: Buffer[] = [];
    stream.on('data', (c: Buffer) => out.push(c));
    stream.on('end', () => resolve(Buffer.concat(out)));
    stream.on('error', reject);
    stream.end(input);
  });
}
