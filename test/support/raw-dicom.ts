import { readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';

/**
 * A DICOM peer built from raw PDUs (PS3.8 9.3), for sending the gateway what no well-behaved SCU would: PDUs with
 * lying lengths, datasets cut short, DIMSE messages on rejected presentation contexts.
 */

export const IMPLICIT_LE = '1.2.840.10008.1.2';
export const EXPLICIT_LE = '1.2.840.10008.1.2.1';
export const EXPLICIT_BE = '1.2.840.10008.1.2.2';
export const JPEG_BASELINE = '1.2.840.10008.1.2.4.50';
export const VERIFICATION = '1.2.840.10008.1.1';
export const MWL_FIND = '1.2.840.10008.5.1.4.31';

export interface ProposedContext {
  id: number;
  abstractSyntax: string;
  transferSyntaxes: string[];
}

const item = (type: number, body: Buffer) => {
  const header = Buffer.alloc(4);
  header.writeUInt8(type, 0);
  header.writeUInt16BE(body.length, 2);
  return Buffer.concat([header, body]);
};
const pdu = (type: number, body: Buffer) => {
  const header = Buffer.alloc(6);
  header.writeUInt8(type, 0);
  header.writeUInt32BE(body.length, 2);
  return Buffer.concat([header, body]);
};
const ae = (title: string) => Buffer.from(title.padEnd(16, ' ').slice(0, 16), 'ascii');

export function associateRq(
  calling: string,
  called: string,
  contexts: ProposedContext[],
  maxPduLength = 16384,
): Buffer {
  const fixed = Buffer.concat([Buffer.from([0, 1, 0, 0]), ae(called), ae(calling), Buffer.alloc(32)]);
  const maxLength = Buffer.alloc(4);
  maxLength.writeUInt32BE(maxPduLength);
  return pdu(
    0x01,
    Buffer.concat([
      fixed,
      item(0x10, Buffer.from('1.2.840.10008.3.1.1.1')),
      ...contexts.map((c) =>
        item(
          0x20,
          Buffer.concat([
            Buffer.from([c.id, 0, 0, 0]),
            item(0x30, Buffer.from(c.abstractSyntax)),
            ...c.transferSyntaxes.map((ts) => item(0x40, Buffer.from(ts))),
          ]),
        ),
      ),
      item(0x50, Buffer.concat([item(0x51, maxLength), item(0x52, Buffer.from('1.2.3.4.5.6.7'))])),
    ]),
  );
}

/** One P-DATA-TF PDU holding one PDV. */
export function pData(contextId: number, value: Buffer, flags: { command: boolean; last: boolean }): Buffer {
  const header = Buffer.alloc(6);
  header.writeUInt32BE(value.length + 2, 0);
  header.writeUInt8(contextId, 4);
  header.writeUInt8((flags.command ? 1 : 0) | (flags.last ? 2 : 0), 5);
  return pdu(0x04, Buffer.concat([header, value]));
}

export const releaseRq = () => pdu(0x05, Buffer.alloc(4));

/** A command set in Implicit VR Little Endian with its group length (PS3.7 E.1). */
export function commandSet(elements: [element: number, value: string | number][]): Buffer {
  const parts = elements.map(([element, value]) => {
    const bytes =
      typeof value === 'number'
        ? Buffer.from([value & 0xff, value >> 8])
        : Buffer.from(value.length % 2 ? `${value}\0` : value, 'ascii');
    const header = Buffer.alloc(8);
    header.writeUInt16LE(0x0000, 0);
    header.writeUInt16LE(element, 2);
    header.writeUInt32LE(bytes.length, 4);
    return Buffer.concat([header, bytes]);
  });
  const body = Buffer.concat(parts);
  const groupLength = Buffer.alloc(12);
  groupLength.writeUInt32LE(4, 4);
  groupLength.writeUInt32LE(body.length, 8);
  return Buffer.concat([groupLength, body]);
}

export function cStoreRq(sopClassUid: string, sopInstanceUid: string, messageId = 1): Buffer {
  return commandSet([
    [0x0002, sopClassUid],
    [0x0100, 0x0001],
    [0x0110, messageId],
    [0x0700, 0],
    [0x0800, 0x0000],
    [0x1000, sopInstanceUid],
  ]);
}

export function cFindRq(sopClassUid: string, messageId = 1): Buffer {
  return commandSet([
    [0x0002, sopClassUid],
    [0x0100, 0x0020],
    [0x0110, messageId],
    [0x0700, 0],
    [0x0800, 0x0000],
  ]);
}

/** The dataset of a Part 10 file (Explicit VR Little Endian meta), without its preamble and meta information. */
export function datasetOfPart10(file: string): Buffer {
  const bytes = readFileSync(file);
  const groupLength = bytes.readUInt32LE(132 + 8);
  return bytes.subarray(132 + 12 + groupLength);
}

export interface ReceivedPdu {
  type: number;
  body: Buffer;
}

/** A TCP connection to the gateway that reads whole PDUs back. */
export class RawPeer {
  readonly socket: Socket;
  readonly closed: Promise<void>;
  private buffered = Buffer.alloc(0);
  private waiting: (() => void) | undefined;
  private ended = false;

  private constructor(port: number) {
    this.socket = connect(port, '127.0.0.1');
    this.socket.on('data', (chunk: Buffer) => {
      this.buffered = Buffer.concat([this.buffered, chunk]);
      this.waiting?.();
    });
    this.socket.on('error', () => undefined);
    this.closed = new Promise((resolve) =>
      this.socket.on('close', () => {
        this.ended = true;
        this.waiting?.();
        resolve();
      }),
    );
  }

  static async open(port: number): Promise<RawPeer> {
    const peer = new RawPeer(port);
    await new Promise<void>((resolve, reject) => {
      peer.socket.once('connect', resolve);
      peer.socket.once('error', reject);
    });
    return peer;
  }

  send(bytes: Buffer): Promise<void> {
    return new Promise((resolve) => this.socket.write(bytes, () => resolve()));
  }

  /** The next whole PDU from the gateway, or undefined if the connection closes first (or within `ms`). */
  async nextPdu(ms = 5000): Promise<ReceivedPdu | undefined> {
    const deadline = Date.now() + ms;
    for (;;) {
      if (this.buffered.length >= 6) {
        const length = this.buffered.readUInt32BE(2);
        if (this.buffered.length >= 6 + length) {
          const received = { type: this.buffered.readUInt8(0), body: this.buffered.subarray(6, 6 + length) };
          this.buffered = this.buffered.subarray(6 + length);
          return received;
        }
      }
      if (this.ended || Date.now() > deadline) return undefined;
      await new Promise<void>((resolve) => {
        this.waiting = resolve;
        setTimeout(resolve, 50);
      });
    }
  }

  /** Associates with the given contexts; returns the result for each context ID (0 = accepted) and its syntax. */
  async associate(
    contexts: ProposedContext[],
    calling = 'MAMMO1',
    called = 'SHGATEWAY',
  ): Promise<Map<number, { result: number; transferSyntax: string }>> {
    await this.send(associateRq(calling, called, contexts));
    const answer = await this.nextPdu();
    if (answer?.type !== 0x02) throw new Error(`expected A-ASSOCIATE-AC, got ${answer?.type}`);
    const results = new Map<number, { result: number; transferSyntax: string }>();
    let offset = 68;
    while (offset + 4 <= answer.body.length) {
      const type = answer.body.readUInt8(offset);
      const length = answer.body.readUInt16BE(offset + 2);
      const body = answer.body.subarray(offset + 4, offset + 4 + length);
      if (type === 0x21) {
        const syntax = body.length > 8 ? body.subarray(8, 8 + body.readUInt16BE(6)).toString('ascii') : '';
        results.set(body.readUInt8(0), { result: body.readUInt8(2), transferSyntax: syntax.replace(/\0+$/, '') });
      }
      offset += 4 + length;
    }
    return results;
  }

  /** Status (0000,0900) of the next DIMSE response from the gateway. */
  async responseStatus(): Promise<number | undefined> {
    let command = Buffer.alloc(0);
    for (;;) {
      const received = await this.nextPdu();
      if (received?.type !== 0x04) return undefined;
      let offset = 0;
      while (offset + 6 <= received.body.length) {
        const length = received.body.readUInt32BE(offset);
        const control = received.body.readUInt8(offset + 5);
        if (control & 1) command = Buffer.concat([command, received.body.subarray(offset + 6, offset + 4 + length)]);
        offset += 4 + length;
        if (control & 1 && control & 2) return statusOf(command);
      }
    }
  }

  close(): void {
    this.socket.destroy();
  }
}

function statusOf(command: Buffer): number | undefined {
  let offset = 0;
  while (offset + 8 <= command.length) {
    const element = command.readUInt16LE(offset + 2);
    const length = command.readUInt32LE(offset + 4);
    if (element === 0x0900) return command.readUInt16LE(offset + 8);
    offset += 8 + length;
  }
  return undefined;
}
