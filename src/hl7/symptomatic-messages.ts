/**
 * Reads the HL7 v2 messages of the symptomatic link into a SymptomaticEvent (pathway/symptomatic.ts). Pure.
 * docs/hl7-symptomatic-link.md has the message types, the segments read and examples.
 *
 * - Taken: ORU^R01 (coded OBX results), ADT^A01, A03, A04, A08 and A31 (DG1 diagnoses, PR1 procedures).
 * - The patient: PID-3, the repetition whose identifier type (CX-5) is NH or whose assigning authority (CX-4) is
 *   NHS; the NHS number must pass its check digit.
 * - Diagnoses: DG1-3, or OBX-5 of a coded OBX (CE, CWE, CNE) whose result status (OBX-11) is not D, W or X; the
 *   coding system (3rd component) ICD-10 (I10, ICD10, ICD-10, I10P, ICD10UK) or empty. Dated DG1-5 / OBX-14, else
 *   OBR-7, else EVN-2, else MSH-7.
 * - Procedures: PR1-3 with coding system OPCS-4 (OPCS4, OPCS-4, OPCS, OPC4) or empty; side from PR1-16 (OPCS-4
 *   Z94.1/2/3 or HL7 table 0495 B/BIL, L, R); dated PR1-5, else EVN-2, else MSH-7.
 */
import type { IsoDate } from '../pathway/dates.js';
import { addDays, isIsoDate } from '../pathway/dates.js';
import { isValidNhsNumber } from '../pathway/nhs-number.js';
import {
  diagnosisKind,
  normaliseCode,
  procedureKind,
  sideFrom,
  type Diagnosis,
  type Procedure,
  type SymptomaticEvent,
} from '../pathway/symptomatic.js';
import { readHeader, type ErrorLocation, type Hl7ErrorCode, type MessageHeader } from './ack.js';
import { firstSegment, repetitions, segmentsNamed, value, type Hl7Message, type Segment } from './message.js';

export const MESSAGE_TYPES = ['ORU^R01', 'ADT^A01', 'ADT^A03', 'ADT^A04', 'ADT^A08', 'ADT^A31'] as const;

const ICD10_SYSTEMS = new Set(['', 'I10', 'ICD10', 'ICD-10', 'I10P', 'ICD10UK', 'ICD-10-UK']);
const OPCS4_SYSTEMS = new Set(['', 'OPCS4', 'OPCS-4', 'OPCS', 'OPC4']);
const CODED_VALUE_TYPES = new Set(['CE', 'CWE', 'CNE']);
const DROPPED_RESULT_STATUSES = new Set(['D', 'W', 'X']);

export interface Rejection {
  kind: 'reject';
  error: Hl7ErrorCode;
  reason: string;
  location?: ErrorLocation;
}

export interface Interpreted {
  kind: 'event';
  event: SymptomaticEvent;
  /** The message's own event date (EVN-2, OBR-7, else MSH-7), for the message log. */
  eventDate: IsoDate | null;
}

class Reject extends Error {
  constructor(
    readonly error: Hl7ErrorCode,
    message: string,
    readonly location?: ErrorLocation,
  ) {
    super(message);
  }
}

/** HL7 DTM/DT to a calendar date ('' → undefined); the sender's local date, as written. */
export function hl7Date(text: string, where: ErrorLocation): IsoDate | undefined {
  if (text === '') return undefined;
  const match = /^(\d{4})(\d{2})(\d{2})/.exec(text);
  const date = match ? `${match[1]}-${match[2]}-${match[3]}` : '';
  if (!isIsoDate(date))
    throw new Reject('dataTypeError', `${describe(where)} is not a date (YYYYMMDD…): "${text}"`, where);
  return date;
}

function describe(where: ErrorLocation): string {
  return `${where.segment}${where.sequence && where.sequence > 1 ? ` (segment ${where.sequence})` : ''}-${where.field}`;
}

/** Checks the header and reads the message; a message the hub cannot take comes back as a rejection. */
export function interpretMessage(message: Hl7Message, today: IsoDate): Interpreted | Rejection {
  try {
    return interpret(message, readHeader(message), today);
  } catch (error) {
    if (error instanceof Reject)
      return {
        kind: 'reject',
        error: error.error,
        reason: error.message,
        ...(error.location ? { location: error.location } : {}),
      };
    throw error;
  }
}

function interpret(message: Hl7Message, header: MessageHeader, today: IsoDate): Interpreted {
  const msh = firstSegment(message, 'MSH');
  if (!header.sendingFacility)
    throw new Reject('requiredFieldMissing', 'MSH-4 (sending facility) is empty', { segment: 'MSH', field: 4 });
  if (!header.controlId)
    throw new Reject('requiredFieldMissing', 'MSH-10 (message control id) is empty', { segment: 'MSH', field: 10 });
  if (!/^2\.[3-8](\.\d+)?$/.test(header.version))
    throw new Reject('unsupportedVersionId', `HL7 version "${header.version}" is not taken (2.3 to 2.8 are)`, {
      segment: 'MSH',
      field: 12,
    });
  if (header.processingId !== 'P')
    throw new Reject(
      'unsupportedProcessingId',
      `Processing id "${header.processingId}" is not taken: the hub holds live records and takes P (production) only`,
      { segment: 'MSH', field: 11 },
    );
  if (!(MESSAGE_TYPES as readonly string[]).includes(header.messageType)) {
    const known = ['ORU', 'ADT'].includes(value(msh, 9, 1));
    throw new Reject(
      known ? 'unsupportedEventCode' : 'unsupportedMessageType',
      `Message type "${header.messageType || '(none)'}" is not taken: the symptomatic link takes ${MESSAGE_TYPES.join(', ')}`,
      { segment: 'MSH', field: 9 },
    );
  }
  const pids = segmentsNamed(message, 'PID');
  if (pids.length !== 1)
    throw new Reject('segmentSequence', `The message must have one PID segment, not ${pids.length}`, {
      segment: 'PID',
    });
  const nhsNumber = nhsNumberOf(pids[0] as Segment);

  const messageDate = hl7Date(value(msh, 7), { segment: 'MSH', field: 7 });
  const evnDate = hl7Date(value(firstSegment(message, 'EVN'), 2), { segment: 'EVN', field: 2 });
  const obrDate = hl7Date(value(firstSegment(message, 'OBR'), 7), { segment: 'OBR', field: 7 });
  const fallback = obrDate ?? evnDate ?? messageDate;
  const dated = (date: IsoDate | undefined, where: ErrorLocation): IsoDate => {
    const chosen = date ?? fallback;
    if (!chosen)
      throw new Reject('requiredFieldMissing', `${describe(where)} has no date, and neither has the message`, where);
    if (chosen > addDays(today, 1))
      throw new Reject('dataTypeError', `${describe(where)} is in the future (${chosen})`, where);
    return chosen;
  };

  const diagnoses: Diagnosis[] = [];
  segmentsNamed(message, 'DG1').forEach((dg1, index) => {
    const where = { segment: 'DG1', sequence: index + 1, field: 3 };
    const found = coded(dg1, 3, 0, ICD10_SYSTEMS, diagnosisKind);
    if (found)
      diagnoses.push({
        ...found,
        date: dated(hl7Date(value(dg1, 5), { ...where, field: 5 }), { ...where, field: 5 }),
      });
  });
  segmentsNamed(message, 'OBX').forEach((obx, index) => {
    if (!CODED_VALUE_TYPES.has(value(obx, 2)) || DROPPED_RESULT_STATUSES.has(value(obx, 11))) return;
    const where = { segment: 'OBX', sequence: index + 1, field: 14 };
    repetitions(obx, 5).forEach((_, repetition) => {
      const found = coded(obx, 5, repetition, ICD10_SYSTEMS, diagnosisKind);
      if (found) diagnoses.push({ ...found, date: dated(hl7Date(value(obx, 14), where), where) });
    });
  });

  const procedures: Procedure[] = [];
  segmentsNamed(message, 'PR1').forEach((pr1, index) => {
    const where = { segment: 'PR1', sequence: index + 1, field: 5 };
    const found = coded(pr1, 3, 0, OPCS4_SYSTEMS, procedureKind);
    if (!found) return;
    const side =
      repetitions(pr1, 16)
        .map((rep) => sideFrom(rep[0]?.[0] ?? '') ?? sideFrom(rep[1]?.[0] ?? ''))
        .find((s) => s !== null) ?? null;
    procedures.push({ ...found, side, date: dated(hl7Date(value(pr1, 5), where), where) });
  });

  return {
    kind: 'event',
    event: { nhsNumber, diagnoses, procedures },
    eventDate: evnDate ?? obrDate ?? messageDate ?? null,
  };
}

function coded<K extends string>(
  segment: Segment,
  field: number,
  repetition: number,
  systems: Set<string>,
  classify: (code: string) => K | undefined,
): { code: string; text: string; kind: K } | undefined {
  const code = value(segment, field, 1, 1, repetition);
  const system = value(segment, field, 3, 1, repetition).toUpperCase();
  if (!systems.has(system)) return undefined;
  const kind = classify(code);
  if (!kind) return undefined;
  return { code: normaliseCode(code), text: value(segment, field, 2, 1, repetition), kind };
}

function nhsNumberOf(pid: Segment): string {
  const where = { segment: 'PID', field: 3 };
  const ids = repetitions(pid, 3).filter(
    (rep) => (rep[4]?.[0] ?? '').toUpperCase() === 'NH' || (rep[3]?.[0] ?? '').toUpperCase() === 'NHS',
  );
  const first = ids[0]?.[0]?.[0]?.replace(/\s/g, '');
  if (!first)
    throw new Reject(
      'requiredFieldMissing',
      'PID-3 has no NHS number (an identifier with type NH or assigning authority NHS)',
      where,
    );
  if (!isValidNhsNumber(first))
    throw new Reject('dataTypeError', `PID-3 NHS number "${first}" is not valid (10 digits, check digit)`, where);
  return first;
}
