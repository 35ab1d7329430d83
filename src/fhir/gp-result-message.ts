/**
 * A breast screening result for the woman's GP practice as a FHIR R4 message (issue 6, item 5), and the practice's
 * response to it. Pure: no I/O, no clock (the caller gives the time).
 *
 * The message is a Bundle of type "message" (FHIR R4 messaging, hl7.org/fhir/R4/messaging.html):
 *   1. MessageHeader: eventCoding "breast-screening-result", source = the hub (endpoint: its MESH mailbox),
 *      destination = the practice (endpoint: the practice's MESH mailbox, receiver: the practice Organization),
 *      sender = the screening office Organization, focus = the DiagnosticReport. NHS messaging over MESH (ITK3)
 *      puts MESH mailbox IDs in source.endpoint and destination.endpoint the same way.
 *   2. DiagnosticReport: status final, category RAD (radiology), code SNOMED CT 24623002 |Screening mammography
 *      (procedure)| (a result) or the hub's own "assessment outcome" code (there is no SNOMED CT concept we are
 *      sure names breast screening assessment as a whole), subject the Patient, effectiveDateTime the screening (or
 *      assessment decision) date, issued, conclusion in words a GP reads, conclusionCode: the hub's result code, and
 *      for a normal result also SNOMED CT 168749009 |Mammography normal (finding)|.
 *   3. Patient: NHS number (https://fhir.nhs.uk/Id/nhs-number), name, birth date, generalPractitioner.
 *   4. Organization: the GP practice (ODS code, https://fhir.nhs.uk/Id/ods-organization-code).
 *   5. Organization: the breast screening office (its BSO code).
 * Every reference is a urn:uuid fullUrl inside the Bundle. Ids are derived from the communication's id (a UUID,
 * no personal data), so the same communication always makes the same message; MessageHeader.id is the
 * communication id itself. A message sent again after it was refused (`generation` 1, 2…) gets new ids.
 *
 * The SNOMED CT codes: 24623002 is "Screening mammography (procedure)" and 168749009 "Mammography normal
 * (finding)" in the International Edition as published by several independent sources we checked (value sets and
 * terminology tables); they have not been checked against a terminology server here, so a deployment should verify
 * them with NHS England's terminology service. The hub's own codes (system RESULT_CODE_SYSTEM) say exactly what the
 * result was and are always sent.
 *
 * The practice's response is a message Bundle whose MessageHeader.response.identifier is the id of our
 * MessageHeader and response.code ok | transient-error | fatal-error (details: an OperationOutcome).
 */
import { createHash } from 'node:crypto';
import { formatLongDate } from '../pathway/dates.js';
import {
  ASSESSMENT_OUTCOME_LABELS,
  COMMUNICATION_KIND_LABELS,
  EXAM_RESULT_LABELS,
  isMalignant,
  SIDE_LABELS,
  type AssessmentOutcome,
  type BreastSide,
  type CommunicationKind,
  type ExamResult,
} from '../pathway/screening-outcomes.js';

export const NHS_NUMBER_SYSTEM = 'https://fhir.nhs.uk/Id/nhs-number';
export const ODS_SYSTEM = 'https://fhir.nhs.uk/Id/ods-organization-code';
export const SNOMED_CT = 'http://snomed.info/sct';
const HUB = 'https://screening-hub.example.nhs.uk';
export const BSO_CODE_SYSTEM = `${HUB}/Id/bso-code`;
export const ACCESSION_SYSTEM = `${HUB}/Id/accession-number`;
export const MESSAGE_EVENT_SYSTEM = `${HUB}/CodeSystem/message-event`;
export const RESULT_CODE_SYSTEM = `${HUB}/CodeSystem/breast-screening-result`;
export const GP_RESULT_EVENT = {
  system: MESSAGE_EVENT_SYSTEM,
  code: 'breast-screening-result',
  display: 'Breast screening result',
};
const DIAGNOSTIC_SECTION = 'http://terminology.hl7.org/CodeSystem/v2-0074';

export const SCREENING_MAMMOGRAPHY = { system: SNOMED_CT, code: '24623002', display: 'Screening mammography' };
export const MAMMOGRAPHY_NORMAL = { system: SNOMED_CT, code: '168749009', display: 'Mammography normal' };

export const RESPONSE_CODES = ['ok', 'transient-error', 'fatal-error'] as const;
export type ResponseCode = (typeof RESPONSE_CODES)[number];

/* Minimal FHIR R4 shapes: just what these messages use. */
export interface Coding {
  system: string;
  code: string;
  display?: string;
}
export interface CodeableConcept {
  coding?: Coding[];
  text?: string;
}
export interface Reference {
  reference: string;
  display?: string;
}
export interface Identifier {
  system: string;
  value: string;
}
export interface Resource {
  resourceType: string;
  id: string;
  [key: string]: unknown;
}
export interface BundleEntry {
  fullUrl: string;
  resource: Resource;
}
export interface MessageBundle {
  resourceType: 'Bundle';
  id: string;
  identifier: Identifier;
  type: 'message';
  timestamp: string;
  entry: BundleEntry[];
}

export type ResultFinding =
  | {
      type: 'exam';
      result: ExamResult;
      /** Routine recall: when her next screening is due. */
      nextTestDue: string | null;
      /** Technical recall or assessment: the appointment booked, when there is one. */
      followUp: { date: string; place: string } | null;
      /** Why no follow-up appointment could be booked. */
      followUpProblem: string | null;
    }
  | {
      type: 'assessment';
      outcome: AssessmentOutcome;
      side: BreastSide | null;
      sizeMm: number | null;
      grade: number | null;
      earlyRecallMonths: number | null;
      referredToTreatment: boolean;
      treatmentProvider: string | null;
      decidedOn: string;
    };

export interface GpResultMessageInput {
  /** communication.id: a UUID. */
  communicationId: string;
  /** 0 for the first message; each resend after a refusal makes a new message with new ids. */
  generation?: number;
  kind: CommunicationKind;
  /** When the message was made (Bundle.timestamp, DiagnosticReport.issued). */
  at: Date;
  hub: { mailbox: string; name?: string; version?: string };
  office: { code: string; name: string };
  practice: { odsCode: string; name: string; mailbox: string };
  patient: { nhsNumber: string; givenName: string; familyName: string; birthDate: string; sex?: string };
  /** The screening date (for an assessment outcome, the date it was decided). */
  effectiveDate: string;
  accessionNumber?: string | null;
  finding: ResultFinding;
}

/** A UUID made from a name: the same name always gives the same UUID (SHA-256, shaped as RFC 9562 version 8). */
export function derivedUuid(name: string): string {
  const b = createHash('sha256').update(name).digest().subarray(0, 16);
  b[6] = (b[6]! & 0x0f) | 0x80;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
export const isUuid = (value: unknown): value is string => typeof value === 'string' && UUID.test(value);

/** The ids of one message's resources. */
export function messageIds(communicationId: string, generation = 0) {
  const id = (role: string) => derivedUuid(`${communicationId}/${generation}/${role}`);
  return {
    messageHeader: generation === 0 ? communicationId : id('MessageHeader'),
    bundle: id('Bundle'),
    report: id('DiagnosticReport'),
    patient: id('Patient'),
    practice: id('Organization/practice'),
    office: id('Organization/office'),
  };
}

const urn = (id: string) => `urn:uuid:${id}`;

/** The words the GP reads (DiagnosticReport.conclusion). */
export function resultConclusion(finding: ResultFinding): string {
  if (finding.type === 'exam') {
    const appointment = finding.followUp
      ? ` Appointment: ${formatLongDate(finding.followUp.date)} at ${finding.followUp.place}.`
      : finding.followUpProblem
        ? ` No appointment could be booked yet (${finding.followUpProblem}): the screening office will arrange one.`
        : ' The screening office will send her an appointment.';
    switch (finding.result) {
      case 'routine_recall':
        return (
          'Normal result: no evidence of breast cancer on screening mammography. Returned to routine recall' +
          (finding.nextTestDue ? `: next screening due by ${formatLongDate(finding.nextTestDue)}.` : '.')
        );
      case 'technical_recall':
        return (
          'Technical recall: the mammograms could not be read fully for technical reasons (not because of anything ' +
          'seen), so she has been invited back for more images.' +
          appointment
        );
      case 'recall_assessment':
        return (
          'Recall to assessment: her mammograms showed something that needs further tests at a breast assessment ' +
          'clinic. Most women recalled do not have cancer.' +
          appointment
        );
    }
  }
  const parts = [`Assessment outcome: ${ASSESSMENT_OUTCOME_LABELS[finding.outcome]}`];
  if (finding.side)
    parts.push(`${SIDE_LABELS[finding.side].toLowerCase()} breast${finding.side === 'bilateral' ? 's' : ''}`);
  if (finding.sizeMm !== null) parts.push(`invasive size ${finding.sizeMm} mm`);
  if (finding.grade !== null) parts.push(`grade ${finding.grade}`);
  let text = `${parts.join(', ')} (decided ${formatLongDate(finding.decidedOn)}).`;
  if (finding.referredToTreatment) {
    text += ` Referred for treatment${finding.treatmentProvider ? ` at ${finding.treatmentProvider}` : ''}.`;
  } else if (isMalignant(finding.outcome)) {
    text += ' Not yet referred for treatment.';
  }
  text += finding.earlyRecallMonths
    ? ` Early recall: next screening in ${finding.earlyRecallMonths} months.`
    : isMalignant(finding.outcome)
      ? ''
      : ' Returned to routine recall.';
  return text;
}

/** The hub's own code for the result (conclusionCode). */
export function resultCode(finding: ResultFinding): Coding {
  return finding.type === 'exam'
    ? { system: RESULT_CODE_SYSTEM, code: finding.result, display: EXAM_RESULT_LABELS[finding.result] }
    : {
        system: RESULT_CODE_SYSTEM,
        code: `assessment_${finding.outcome}`,
        display: `Assessment: ${ASSESSMENT_OUTCOME_LABELS[finding.outcome]}`,
      };
}

const FHIR_GENDER: Record<string, string> = { female: 'female', male: 'male', other: 'other', unknown: 'unknown' };

/** The result as a FHIR R4 message Bundle for the practice. */
export function buildGpResultMessage(input: GpResultMessageInput): MessageBundle {
  const ids = messageIds(input.communicationId, input.generation ?? 0);
  const at = input.at.toISOString();
  const { finding } = input;
  const practiceRef: Reference = { reference: urn(ids.practice), display: input.practice.name };
  const officeRef: Reference = { reference: urn(ids.office), display: input.office.name };
  const patientRef: Reference = {
    reference: urn(ids.patient),
    display: `${input.patient.givenName} ${input.patient.familyName.toUpperCase()}`,
  };
  const reportRef: Reference = { reference: urn(ids.report) };

  const messageHeader: Resource = {
    resourceType: 'MessageHeader',
    id: ids.messageHeader,
    eventCoding: GP_RESULT_EVENT,
    destination: [{ name: input.practice.name, endpoint: input.practice.mailbox, receiver: practiceRef }],
    sender: officeRef,
    source: {
      name: input.hub.name ?? 'Screening Hub',
      software: 'screening-hub',
      ...(input.hub.version ? { version: input.hub.version } : {}),
      endpoint: input.hub.mailbox,
    },
    reason: { text: COMMUNICATION_KIND_LABELS[input.kind] },
    focus: [reportRef],
  };
  const conclusionCode: CodeableConcept[] = [{ coding: [resultCode(finding)], text: resultCode(finding).display }];
  if (finding.type === 'exam' && finding.result === 'routine_recall') {
    conclusionCode.push({ coding: [MAMMOGRAPHY_NORMAL], text: MAMMOGRAPHY_NORMAL.display });
  }
  const report: Resource = {
    resourceType: 'DiagnosticReport',
    id: ids.report,
    ...(input.accessionNumber ? { identifier: [{ system: ACCESSION_SYSTEM, value: input.accessionNumber }] } : {}),
    status: 'final',
    category: [{ coding: [{ system: DIAGNOSTIC_SECTION, code: 'RAD', display: 'Radiology' }] }],
    code:
      finding.type === 'exam'
        ? { coding: [SCREENING_MAMMOGRAPHY], text: 'Breast screening mammography' }
        : {
            coding: [{ system: RESULT_CODE_SYSTEM, code: 'assessment', display: 'Breast screening assessment' }],
            text: 'Breast screening assessment',
          },
    subject: patientRef,
    effectiveDateTime: input.effectiveDate,
    issued: at,
    performer: [officeRef],
    conclusion: resultConclusion(finding),
    conclusionCode,
  };
  const patient: Resource = {
    resourceType: 'Patient',
    id: ids.patient,
    identifier: [{ system: NHS_NUMBER_SYSTEM, value: input.patient.nhsNumber }],
    name: [{ use: 'official', family: input.patient.familyName, given: [input.patient.givenName] }],
    ...(input.patient.sex && FHIR_GENDER[input.patient.sex] ? { gender: FHIR_GENDER[input.patient.sex] } : {}),
    birthDate: input.patient.birthDate,
    generalPractitioner: [practiceRef],
  };
  const practice: Resource = {
    resourceType: 'Organization',
    id: ids.practice,
    identifier: [{ system: ODS_SYSTEM, value: input.practice.odsCode }],
    name: input.practice.name,
  };
  const office: Resource = {
    resourceType: 'Organization',
    id: ids.office,
    identifier: [{ system: BSO_CODE_SYSTEM, value: input.office.code }],
    name: input.office.name,
  };
  return {
    resourceType: 'Bundle',
    id: ids.bundle,
    identifier: { system: 'urn:ietf:rfc:3986', value: urn(ids.bundle) },
    type: 'message',
    timestamp: at,
    entry: [messageHeader, report, patient, practice, office].map((resource) => ({
      fullUrl: urn(resource.id),
      resource,
    })),
  };
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The first entry of a message Bundle, when it is one: its MessageHeader and the Bundle's entries. */
function messageHeaderOf(json: unknown): { header: Record<string, unknown>; entries: unknown[] } | string {
  if (!isObject(json) || json.resourceType !== 'Bundle') return 'not a FHIR Bundle';
  if (json.type !== 'message') return `Bundle.type is ${JSON.stringify(json.type)}, not "message"`;
  const entries: unknown[] = Array.isArray(json.entry) ? (json.entry as unknown[]) : [];
  const first = entries[0];
  const header = isObject(first) ? first.resource : undefined;
  if (!isObject(header) || header.resourceType !== 'MessageHeader') return 'the first entry is not a MessageHeader';
  if (typeof header.id !== 'string' || !header.id) return 'MessageHeader.id is missing';
  return { header, entries };
}

export type ReadResult<T> = ({ ok: true } & T) | { ok: false; problem: string };

export interface GpResponse {
  /** The response's own MessageHeader id. */
  messageId: string;
  /** The MessageHeader id of the message it answers. */
  originalMessageId: string;
  code: ResponseCode;
  /** What the practice's system said, for an error (OperationOutcome diagnostics or text). */
  details: string | null;
}

/** Reads a practice's response message: which message it answers, and how. */
export function parseGpResponseMessage(json: unknown): ReadResult<GpResponse> {
  const found = messageHeaderOf(json);
  if (typeof found === 'string') return { ok: false, problem: found };
  const { header, entries } = found;
  const response = header.response;
  if (!isObject(response)) return { ok: false, problem: 'MessageHeader.response is missing: not a response' };
  const originalMessageId = response.identifier;
  if (typeof originalMessageId !== 'string' || !originalMessageId) {
    return { ok: false, problem: 'MessageHeader.response.identifier is missing' };
  }
  const code = response.code;
  if (!RESPONSE_CODES.includes(code as ResponseCode)) {
    return {
      ok: false,
      problem: `MessageHeader.response.code ${JSON.stringify(code)} is not ok, transient-error or fatal-error`,
    };
  }
  let details: string | null = null;
  const ref = isObject(response.details) ? response.details.reference : undefined;
  if (typeof ref === 'string') {
    const outcome = entries
      .filter(isObject)
      .find((e) => e.fullUrl === ref || (isObject(e.resource) && `OperationOutcome/${String(e.resource.id)}` === ref));
    const issues = isObject(outcome?.resource) && Array.isArray(outcome.resource.issue) ? outcome.resource.issue : [];
    const words = issues
      .filter(isObject)
      .map((i) =>
        typeof i.diagnostics === 'string' ? i.diagnostics : isObject(i.details) ? i.details.text : undefined,
      )
      .filter((t): t is string => typeof t === 'string' && t.length > 0);
    if (words.length) details = words.join('; ');
  }
  return { ok: true, messageId: header.id as string, originalMessageId, code: code as ResponseCode, details };
}

export interface ReceivedResult {
  messageId: string;
  /** Where responses go: MessageHeader.source.endpoint (the sender's mailbox). */
  sourceEndpoint: string | null;
  event: string | null;
  nhsNumber: string | null;
  conclusion: string | null;
}

/** What a practice's system reads of a result message (the simulated GP system uses this). */
export function readGpResultMessage(json: unknown): ReadResult<ReceivedResult> {
  const found = messageHeaderOf(json);
  if (typeof found === 'string') return { ok: false, problem: found };
  const { header, entries } = found;
  const resources = entries
    .filter(isObject)
    .map((e) => e.resource)
    .filter(isObject);
  const report = resources.find((r) => r.resourceType === 'DiagnosticReport');
  const patient = resources.find((r) => r.resourceType === 'Patient');
  const identifiers = Array.isArray(patient?.identifier) ? patient.identifier.filter(isObject) : [];
  const nhs = identifiers.find((i) => i.system === NHS_NUMBER_SYSTEM)?.value;
  const source = isObject(header.source) ? header.source.endpoint : undefined;
  const event = isObject(header.eventCoding) ? header.eventCoding.code : undefined;
  return {
    ok: true,
    messageId: header.id as string,
    sourceEndpoint: typeof source === 'string' ? source : null,
    event: typeof event === 'string' ? event : null,
    nhsNumber: typeof nhs === 'string' ? nhs : null,
    conclusion: typeof report?.conclusion === 'string' ? report.conclusion : null,
  };
}

export interface GpResponseInput {
  /** The MessageHeader id of the message answered. */
  originalMessageId: string;
  code: ResponseCode;
  /** The practice's MESH mailbox (source) and the mailbox the result came from (destination). */
  from: { mailbox: string; name: string };
  to: string;
  at: Date;
  /** Why, for an error. */
  details?: string;
}

/** A practice's response message (what a GP system sends back; the simulated one uses this). */
export function buildGpResponseMessage(input: GpResponseInput): MessageBundle {
  const id = (role: string) => derivedUuid(`response/${input.originalMessageId}/${input.code}/${role}`);
  const headerId = id('MessageHeader');
  const outcomeId = id('OperationOutcome');
  const header: Resource = {
    resourceType: 'MessageHeader',
    id: headerId,
    eventCoding: GP_RESULT_EVENT,
    destination: [{ endpoint: input.to }],
    source: { name: input.from.name, endpoint: input.from.mailbox },
    response: {
      identifier: input.originalMessageId,
      code: input.code,
      ...(input.details ? { details: { reference: urn(outcomeId) } } : {}),
    },
  };
  const entries: Resource[] = [header];
  if (input.details) {
    entries.push({
      resourceType: 'OperationOutcome',
      id: outcomeId,
      issue: [
        {
          severity: input.code === 'ok' ? 'information' : 'error',
          code: input.code === 'transient-error' ? 'transient' : 'processing',
          diagnostics: input.details,
        },
      ],
    });
  }
  const bundleId = id('Bundle');
  return {
    resourceType: 'Bundle',
    id: bundleId,
    identifier: { system: 'urn:ietf:rfc:3986', value: urn(bundleId) },
    type: 'message',
    timestamp: input.at.toISOString(),
    entry: entries.map((resource) => ({ fullUrl: urn(resource.id), resource })),
  };
}
