/**
 * The hub's HL7 v2 listener for the symptomatic link (issue 5, item 5): MLLP over TCP from a Trust's interface
 * engine; every message is logged and answered with an ACK (AA, AE or AR; ack.ts). docs/hl7-symptomatic-link.md
 * describes what is taken and how. Only the sending facilities (MSH-4) on the allow-list are taken: a message from
 * any other is answered AR and logged, and nothing of it is applied.
 */
import { createHash } from 'node:crypto';
import { isoDateInLondon } from '../pathway/dates.js';
import type { Database } from '../store/database.js';
import type { Db } from '../store/database.js';
import { logRejectedHl7Message, receiveHl7Event } from '../store/symptomatic.js';
import { readHeader, sniffHeader, writeAck, type MessageHeader } from './ack.js';
import { Hl7ParseError, parseMessage } from './message.js';
import { startMllpServer, type Log, type MllpInput } from './mllp-server.js';
import { interpretMessage } from './symptomatic-messages.js';

/** Default largest message: far above any ADT/ORU of the link (a few kB), far below a memory problem. */
export const DEFAULT_MAX_MESSAGE_BYTES = 1024 * 1024;

export interface Hl7ListenerOptions {
  database: Database;
  port: number;
  host: string;
  maxMessageBytes?: number;
  /**
   * The sending facilities (MSH-4 namespace id, e.g. the Trust's ODS code) taken; compared without regard to case.
   * Absent: any facility (tests and local demos; the CLI requires a list).
   */
  allowedFacilities?: readonly string[];
  log?: Log;
  /** The clock (tests). */
  now?: () => Date;
}

export async function startHl7Listener(options: Hl7ListenerOptions) {
  const log = options.log ?? ((level, message) => console[level](message));
  const maxFrameBytes = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
  const allowedFacilities = options.allowedFacilities ? facilitySet(options.allowedFacilities) : undefined;
  return startMllpServer({
    port: options.port,
    host: options.host,
    maxFrameBytes,
    log,
    handle: (input, peer) =>
      handleHl7Input(options.database.db, input, peer, {
        maxFrameBytes,
        log,
        now: options.now?.() ?? new Date(),
        ...(allowedFacilities ? { allowedFacilities } : {}),
      }),
  });
}

/** An allow-list as given (CLI --allow RX1,RYJ) to the set compared against; refuses an empty or odd name. */
export function facilitySet(facilities: readonly string[]): ReadonlySet<string> {
  const names = facilities.map((f) => f.trim().toUpperCase());
  if (names.length === 0) throw new Error('The allow-list of sending facilities is empty');
  for (const name of names)
    if (!/^[A-Z0-9][A-Z0-9._-]{0,39}$/.test(name))
      throw new Error(`"${name}" is not a sending facility name (MSH-4: letters, digits, . _ -)`);
  return new Set(names);
}

/** Text of a message: UTF-8 unless MSH-18 says ISO 8859-1. */
export function decodeMessageBytes(payload: Buffer): string {
  const msh = payload.toString('latin1').split(/\r|\n/, 1)[0] ?? '';
  const charset = msh.length > 3 ? (msh.split(msh[3] as string)[17] ?? '') : '';
  return payload.toString(/8859\/1/.test(charset) ? 'latin1' : 'utf8');
}

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

/** Answers one message (or oversize frame) from an MLLP connection with its ACK. */
export async function handleHl7Input(
  db: Db,
  input: MllpInput,
  peer: string | null,
  context: { maxFrameBytes: number; log: Log; now: Date; allowedFacilities?: ReadonlySet<string> },
): Promise<string> {
  const { log, now } = context;
  const refuse = async (
    header: Partial<MessageHeader>,
    bytes: Buffer,
    size: number,
    reason: string,
    code: 'segmentSequence' | 'dataTypeError',
  ) => {
    log('warn', `HL7 ${peer ?? ''}: rejected ${header.sendingFacility ?? ''}/${header.controlId ?? ''}: ${reason}`);
    await logRejectedHl7Message(db, { ...header, peer, sha256: sha256(bytes), sizeBytes: size }, 'AR', reason, now);
    return writeAck({ code: 'AR', header, text: reason, error: { code }, now });
  };
  try {
    if (input.kind === 'oversize') {
      const header = sniffHeader(input.head.toString('latin1'));
      return await refuse(
        header,
        input.head,
        input.size,
        `The message is ${input.size} bytes, over the ${context.maxFrameBytes}-byte limit`,
        'dataTypeError',
      );
    }
    const text = decodeMessageBytes(input.payload);
    let message;
    try {
      message = parseMessage(text);
    } catch (error) {
      if (!(error instanceof Hl7ParseError)) throw error;
      return await refuse(sniffHeader(text), input.payload, input.payload.length, error.message, 'segmentSequence');
    }
    const header = readHeader(message);
    const receipt = {
      peer,
      sendingApplication: header.sendingApplication,
      sendingFacility: header.sendingFacility,
      controlId: header.controlId,
      messageType: header.messageType,
      sha256: sha256(input.payload),
      sizeBytes: input.payload.length,
    };
    if (context.allowedFacilities && !context.allowedFacilities.has(header.sendingFacility.trim().toUpperCase())) {
      const reason = `Sending facility "${header.sendingFacility || '(none)'}" (MSH-4) is not on the hub's allow-list for the symptomatic link: nothing applied. Ask the screening office to add it`;
      log('warn', `HL7 ${peer ?? ''}: rejected ${header.sendingFacility}/${header.controlId}: not on the allow-list`);
      await logRejectedHl7Message(db, receipt, 'AR', reason, now);
      return writeAck({
        code: 'AR',
        header,
        text: reason,
        error: { code: 'tableValueNotFound', location: { segment: 'MSH', field: 4 } },
        now,
      });
    }
    const interpreted = interpretMessage(message, isoDateInLondon(now));
    if (interpreted.kind === 'reject') {
      log('warn', `HL7 ${peer ?? ''}: rejected ${header.sendingFacility}/${header.controlId}: ${interpreted.reason}`);
      await logRejectedHl7Message(db, receipt, 'AR', interpreted.reason, now);
      return writeAck({
        code: 'AR',
        header,
        text: interpreted.reason,
        error: { code: interpreted.error, ...(interpreted.location ? { location: interpreted.location } : {}) },
        now,
      });
    }
    const result = await receiveHl7Event(db, { ...receipt, eventDate: interpreted.eventDate }, interpreted.event, now);
    if (result.ack === 'AE') {
      log('warn', `HL7 ${peer ?? ''}: ${header.sendingFacility}/${header.controlId}: ${result.text}`);
      return writeAck({
        code: 'AE',
        header,
        text: result.text,
        error: { code: 'unknownKeyIdentifier', location: { segment: 'PID', field: 3 } },
        now,
      });
    }
    log(
      'info',
      `HL7 ${peer ?? ''}: ${header.messageType} ${header.sendingFacility}/${header.controlId}: ${result.text}`,
    );
    return writeAck({ code: 'AA', header, text: result.text, now });
  } catch (error) {
    // The database could not be reached, or a fault: nothing was applied; the sender should send it again.
    log('error', `HL7 ${peer ?? ''}: message not applied: ${(error as Error).message}`);
    const header =
      input.kind === 'frame'
        ? sniffHeader(input.payload.toString('latin1'))
        : sniffHeader(input.head.toString('latin1'));
    return writeAck({
      code: 'AE',
      header,
      text: 'The hub could not apply the message just now: nothing was applied; send it again',
      error: { code: 'internalError' },
      now,
    });
  }
}
