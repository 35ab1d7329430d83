import type { Socket } from 'node:net';

/**
 * Limits on what a peer may send before dcmjs-dimse sees it. dcmjs-dimse 0.3.3 buffers each PDU whole, however long
 * its header claims it is, and every DIMSE message other than a C-STORE whole in memory: without these limits one
 * connection could make the gateway hold gigabytes.
 */
export interface PduLimits {
  /** Longest PDU taken (the 6-byte header not counted). The gateway advertises 256 KiB for P-DATA. */
  maxPduBytes: number;
  /** Longest DIMSE command set (real ones are about 200 bytes). */
  maxCommandBytes: number;
  /** Longest dataset of a message other than a C-STORE request: a worklist query, an MPPS N-CREATE or N-SET. */
  maxDatasetBytes: number;
}

export const PDU_LIMITS: PduLimits = {
  maxPduBytes: 1024 * 1024,
  maxCommandBytes: 64 * 1024,
  maxDatasetBytes: 16 * 1024 * 1024,
};

/** PS3.8 9.3.1: A-ASSOCIATE-RQ 01H … A-ABORT 07H. */
const PDU_TYPES = new Set([1, 2, 3, 4, 5, 6, 7]);
const P_DATA_TF = 4;
const C_STORE_RQ = 0x0001;
/** PS3.8 9.3.8: A-ABORT reasons when the service provider aborts. */
export const ABORT_REASON = { unrecognizedPdu: 1, invalidPduParameter: 6 } as const;

export interface PduViolation {
  reason: string;
  abortReason: number;
}

/**
 * Follows the PDU and PDV framing of everything read from the socket and hands it on to the listeners already
 * installed (dcmjs-dimse's) only while it keeps within the limits. At the first violation nothing more is handed on:
 * the peer is sent an A-ABORT (service provider), `onViolation` is told and the connection is closed.
 */
export function guardIncomingPdus(
  socket: Socket,
  limits: PduLimits,
  onViolation: (violation: PduViolation) => void,
): void {
  const downstream = socket.listeners('data') as ((chunk: Buffer) => void)[];
  socket.removeAllListeners('data');
  const framing = new PduFraming(limits);
  let stopped = false;
  socket.on('data', (chunk: Buffer) => {
    if (stopped) return;
    const violation = framing.accept(chunk);
    if (violation) {
      stopped = true;
      socket.write(abortPdu(violation.abortReason));
      closeConnection(socket);
      onViolation(violation);
      return;
    }
    for (const listener of downstream) listener.call(socket, chunk);
  });
}

/** Ends the connection, and destroys it if the peer does not let the end through within a second. */
export function closeConnection(socket: Socket): void {
  if (socket.destroyed) return;
  socket.end(() => socket.destroy());
  const timer = setTimeout(() => socket.destroy(), 1000);
  timer.unref();
  socket.once('close', () => clearTimeout(timer));
}

/** A-ABORT PDU, source: DICOM UL service provider (2). */
function abortPdu(reason: number): Buffer {
  return Buffer.from([0x07, 0, 0, 0, 0, 4, 0, 0, 2, reason]);
}

/**
 * The PDU and PDV framing of a byte stream, checked as it goes (PS3.8 9.3). Only headers are looked at and kept;
 * the bytes themselves pass through.
 */
export class PduFraming {
  private header = Buffer.alloc(0);
  /** What the bytes being read now are. */
  private state: 'pdu-header' | 'pdu-body' | 'pdv-header' | 'pdv-value' = 'pdu-header';
  /** Bytes still to come of the current PDU, and of the current PDV's value. */
  private pduLeft = 0;
  private pdvLeft = 0;
  private pdvIsCommand = false;
  private pdvIsLast = false;
  private command: Buffer[] = [];
  private commandBytes = 0;
  private datasetBytes = 0;
  /** Whether the message whose dataset is arriving is a C-STORE request (its dataset is streamed, not held). */
  private storing = false;

  constructor(private readonly limits: PduLimits) {}

  /** Takes the next bytes read; returns the first violation of the framing or the limits, if any. */
  accept(chunk: Buffer): PduViolation | undefined {
    let offset = 0;
    while (offset < chunk.length) {
      switch (this.state) {
        case 'pdu-header':
        case 'pdv-header': {
          const need = 6 - this.header.length;
          const part = chunk.subarray(offset, offset + need);
          offset += part.length;
          this.header = Buffer.concat([this.header, part]);
          if (this.header.length < 6) break;
          const header = this.header;
          this.header = Buffer.alloc(0);
          const violation = this.state === 'pdu-header' ? this.startPdu(header) : this.startPdv(header);
          if (violation) return violation;
          break;
        }
        case 'pdu-body': {
          const n = Math.min(this.pduLeft, chunk.length - offset);
          offset += n;
          this.pduLeft -= n;
          if (this.pduLeft === 0) this.state = 'pdu-header';
          break;
        }
        case 'pdv-value': {
          const n = Math.min(this.pdvLeft, chunk.length - offset);
          const violation = this.pdvBytes(chunk.subarray(offset, offset + n));
          if (violation) return violation;
          offset += n;
          this.pdvLeft -= n;
          this.pduLeft -= n;
          if (this.pdvLeft === 0) this.endPdv();
          break;
        }
      }
    }
    return undefined;
  }

  private startPdu(header: Buffer): PduViolation | undefined {
    const type = header.readUInt8(0);
    const length = header.readUInt32BE(2);
    if (!PDU_TYPES.has(type))
      return { reason: `unknown PDU type 0x${type.toString(16)}`, abortReason: ABORT_REASON.unrecognizedPdu };
    if (length > this.limits.maxPduBytes)
      return {
        reason: `PDU of type ${type} claims ${length} bytes, more than the ${this.limits.maxPduBytes} taken`,
        abortReason: ABORT_REASON.invalidPduParameter,
      };
    this.pduLeft = length;
    this.state = length === 0 ? 'pdu-header' : type === P_DATA_TF ? 'pdv-header' : 'pdu-body';
    return undefined;
  }

  private startPdv(header: Buffer): PduViolation | undefined {
    // PS3.8 9.3.5.1: item length (4), presentation context ID (1), message control header (1), then the value.
    const itemLength = header.readUInt32BE(0);
    if (itemLength < 2 || itemLength + 4 > this.pduLeft)
      return {
        reason: `PDV item length ${itemLength} does not fit its P-DATA-TF PDU (${this.pduLeft} bytes left)`,
        abortReason: ABORT_REASON.invalidPduParameter,
      };
    const control = header.readUInt8(5);
    this.pdvIsCommand = (control & 0x01) !== 0;
    this.pdvIsLast = (control & 0x02) !== 0;
    this.pduLeft -= 6;
    this.pdvLeft = itemLength - 2;
    this.state = 'pdv-value';
    if (this.pdvLeft === 0) this.endPdv();
    return undefined;
  }

  private pdvBytes(bytes: Buffer): PduViolation | undefined {
    if (this.pdvIsCommand) {
      this.commandBytes += bytes.length;
      if (this.commandBytes > this.limits.maxCommandBytes)
        return {
          reason: `DIMSE command longer than ${this.limits.maxCommandBytes} bytes`,
          abortReason: ABORT_REASON.invalidPduParameter,
        };
      this.command.push(Buffer.from(bytes));
      return undefined;
    }
    this.datasetBytes += bytes.length;
    if (!this.storing && this.datasetBytes > this.limits.maxDatasetBytes)
      return {
        reason: `DIMSE dataset longer than ${this.limits.maxDatasetBytes} bytes (only images may be larger)`,
        abortReason: ABORT_REASON.invalidPduParameter,
      };
    return undefined;
  }

  private endPdv(): void {
    if (this.pdvIsLast && this.pdvIsCommand) {
      this.storing = commandField(Buffer.concat(this.command)) === C_STORE_RQ;
      this.command = [];
      this.commandBytes = 0;
      this.datasetBytes = 0;
    } else if (this.pdvIsLast) {
      this.datasetBytes = 0;
    }
    this.state = this.pduLeft === 0 ? 'pdu-header' : 'pdv-header';
  }
}

/** Command Field (0000,0100) of a command set (always Implicit VR Little Endian, PS3.7 6.3.1). */
function commandField(command: Buffer): number | undefined {
  let offset = 0;
  while (offset + 8 <= command.length) {
    const group = command.readUInt16LE(offset);
    const element = command.readUInt16LE(offset + 2);
    const length = command.readUInt32LE(offset + 4);
    if (group === 0x0000 && element === 0x0100 && length === 2 && offset + 10 <= command.length)
      return command.readUInt16LE(offset + 8);
    offset += 8 + length;
  }
  return undefined;
}
