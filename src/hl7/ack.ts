/**
 * The header of an incoming message (MSH) and the general acknowledgement (ACK: MSH, MSA, ERR) the hub answers
 * every message with, in original acknowledgement mode:
 *
 * - AA (application accept): applied, or nothing to apply, or a copy of a message already applied.
 * - AE (application error): understood but not applied (for example an NHS number the hub does not know); the
 *   reason is in MSA-3 and ERR-8. The sender may send the same message again once the cause is put right.
 * - AR (application reject): malformed, or a message type, version or processing id the hub does not take.
 *
 * MSA-2 echoes the message's MSH-10 (message control id). ERR-3 carries the HL7 table 0357 error code.
 */
import { randomBytes } from 'node:crypto';
import { firstSegment, value, writeMessage, type Hl7Message, type SegmentInput } from './message.js';

export type AckCode = 'AA' | 'AE' | 'AR';

/** HL7 table 0357 (message error condition codes) used by the hub. */
export const HL7_ERROR = {
  segmentSequence: ['100', 'Segment sequence error'],
  requiredFieldMissing: ['101', 'Required field missing'],
  dataTypeError: ['102', 'Data type error'],
  tableValueNotFound: ['103', 'Table value not found'],
  unsupportedMessageType: ['200', 'Unsupported message type'],
  unsupportedEventCode: ['201', 'Unsupported event code'],
  unsupportedProcessingId: ['202', 'Unsupported processing id'],
  unsupportedVersionId: ['203', 'Unsupported version id'],
  unknownKeyIdentifier: ['204', 'Unknown key identifier'],
  internalError: ['207', 'Application internal error'],
} as const satisfies Record<string, readonly [string, string]>;

export type Hl7ErrorCode = keyof typeof HL7_ERROR;

/** Where in the message an error is: segment, its sequence (from 1), field. */
export interface ErrorLocation {
  segment: string;
  sequence?: number;
  field?: number;
}

export interface MessageHeader {
  sendingApplication: string;
  /** MSH-4 namespace id (or universal id): with the control id, the key a message is applied once under. */
  sendingFacility: string;
  receivingApplication: string;
  receivingFacility: string;
  /** MSH-9 as 'ORU^R01'. */
  messageType: string;
  triggerEvent: string;
  controlId: string;
  processingId: string;
  version: string;
}

/** The header as far as it can be read (for a reply to a message that is otherwise malformed). */
export function readHeader(message: Hl7Message): MessageHeader {
  const msh = firstSegment(message, 'MSH');
  const hd = (field: number) => value(msh, field, 1) || value(msh, field, 2);
  return {
    sendingApplication: hd(3),
    sendingFacility: hd(4),
    receivingApplication: hd(5),
    receivingFacility: hd(6),
    messageType: [value(msh, 9, 1), value(msh, 9, 2)].filter(Boolean).join('^'),
    triggerEvent: value(msh, 9, 2),
    controlId: value(msh, 10),
    processingId: value(msh, 11),
    version: value(msh, 12),
  };
}

/**
 * Reads MSH-3, MSH-4 and MSH-10 from the start of text that may not parse (a truncated oversize frame), so a
 * rejection can still name the message. Any field may come back ''.
 */
export function sniffHeader(text: string): Pick<MessageHeader, 'sendingApplication' | 'sendingFacility' | 'controlId'> {
  const line = text.split(/\r|\n/, 1)[0] ?? '';
  if (!line.startsWith('MSH') || line.length < 8) return { sendingApplication: '', sendingFacility: '', controlId: '' };
  const fields = line.split(line[3] as string);
  const component = line[4] as string;
  const first = (n: number) => (fields[n - 1] ?? '').split(component)[0] ?? '';
  return { sendingApplication: first(3), sendingFacility: first(4), controlId: first(10) };
}

export const HUB_APPLICATION = 'SCREENING-HUB';
export const HUB_FACILITY = 'NHSBSP';

export interface AckInput {
  code: AckCode;
  /** The incoming header (as far as known): MSA-2 is its control id. */
  header: Partial<MessageHeader>;
  text?: string;
  error?: { code: Hl7ErrorCode; location?: ErrorLocation };
  now?: Date;
}

/** HL7 DTM to the second, in UTC with its offset. */
export function hl7Timestamp(at: Date): string {
  return at.toISOString().replace(/[-:T]/g, '').slice(0, 14) + '+0000';
}

/** Writes the ACK for a message. */
export function writeAck(input: AckInput): string {
  const { header } = input;
  const segments: SegmentInput[] = [
    {
      name: 'MSH',
      fields: [
        HUB_APPLICATION,
        HUB_FACILITY,
        header.sendingApplication ?? '',
        header.sendingFacility ?? '',
        hl7Timestamp(input.now ?? new Date()),
        '',
        ['ACK', header.triggerEvent ?? '', 'ACK'],
        randomBytes(8).toString('hex').toUpperCase(),
        'P',
        header.version && /^2\.\d+(\.\d+)?$/.test(header.version) ? header.version : '2.5.1',
      ],
    },
    { name: 'MSA', fields: [input.code, header.controlId ?? '', input.text ?? ''] },
  ];
  if (input.code !== 'AA' && input.error) {
    const [code, label] = HL7_ERROR[input.error.code];
    const where = input.error.location;
    segments.push({
      name: 'ERR',
      fields: [
        '',
        where ? [where.segment, String(where.sequence ?? 1), where.field ? String(where.field) : ''] : '',
        [code, label, 'HL70357'],
        'E',
        '',
        '',
        '',
        input.text ?? '',
      ],
    });
  }
  return writeMessage(segments);
}
