/**
 * The symptomatic link's rules (issue 5, item 5): which diagnoses and procedures a Trust's EPR reports to the hub
 * matter to breast screening, what each records on the whole-person record, and when routine invitations are
 * suspended. Pure: the HL7 v2 feed (src/hl7) and the FHIR endpoint both turn their messages into a
 * SymptomaticEvent and the store applies it.
 *
 * Codes taken (anything else in the message is ignored):
 * - ICD-10 C50 (malignant neoplasm of breast, any 4th character) and D05 (carcinoma in situ of breast): breast
 *   cancer. Recorded as breast cancer history; invitations suspended.
 * - OPCS-4 B27 (total excision of breast: mastectomy, any 4th character): recorded as a mastectomy with its side;
 *   invitations suspended. A bilateral mastectomy is a reason to cease her (pathway/ceasing.ts) but that needs a
 *   clinician's confirmation, so the hub suspends and says so; it does not cease by itself.
 * - OPCS-4 B28 (other excision of breast: wide local excision, quadrantectomy, excision of lesion): recorded as a
 *   lumpectomy (breast surgery when no side is given); invitations suspended.
 * - OPCS-4 B30.1 (insertion of prosthesis for breast): recorded as implants. Implants alone are not treatment:
 *   she stays invited (the record gives her the longer appointment implants need).
 *
 * From the FHIR endpoint (src/fhir/symptomatic-resources.ts) the same facts may come coded in SNOMED CT (the code
 * keeps its system: codeSystem), and two more kinds of procedure: chemotherapy and radiotherapy episodes. Both
 * suspend invitations; they put no item of their own on her record (the suspension's "in symptomatic treatment"
 * item says it). A diagnosis the EPR gives as no longer current (clinical status inactive, remission, resolved) is
 * history: recorded as previous breast cancer, it does not suspend on its own.
 *
 * Out of order and lifted suspensions: a suspension stays until staff lift it, with a reason. An event dated on
 * or before the day the last suspension was lifted does not suspend her again (staff lifted it knowing the state
 * at that date; an older message never overrides a newer decision); it is still recorded on her record. An
 * event dated after the lift suspends her again. Messages never lift a suspension.
 */
import { formatLongDate, type IsoDate } from './dates.js';
import type { Side } from './record-items.js';

export type DiagnosisKind = 'breast_cancer' | 'carcinoma_in_situ';
export type ProcedureKind = 'mastectomy' | 'excision' | 'implant' | 'chemotherapy' | 'radiotherapy';
/** The coding system of a code: HL7 v2 messages give ICD-10 and OPCS-4; FHIR resources may give SNOMED CT. */
export type CodeSystem = 'ICD-10' | 'OPCS-4' | 'SNOMED CT';

export interface Diagnosis {
  /** ICD-10, with its dot: 'C50.9' (or a SNOMED CT concept id when codeSystem says so). */
  code: string;
  /** Absent: ICD-10. */
  codeSystem?: CodeSystem;
  kind: DiagnosisKind;
  text: string;
  date: IsoDate;
  /** The EPR says it is no longer current (history): recorded, does not suspend on its own. */
  historical?: boolean;
}

export interface Procedure {
  /** OPCS-4, with its dot: 'B27.4' (or a SNOMED CT concept id when codeSystem says so). */
  code: string;
  /** Absent: OPCS-4. */
  codeSystem?: CodeSystem;
  kind: ProcedureKind;
  text: string;
  side: Side | null;
  date: IsoDate;
}

export interface SymptomaticEvent {
  nhsNumber: string;
  diagnoses: Diagnosis[];
  procedures: Procedure[];
}

/** '  c509 ' and 'C50.9' both give 'C50.9'; a code that is not letter, two digits and an optional 4th gives ''. */
export function normaliseCode(code: string): string {
  const match = /^([A-Z])(\d{2})\.?([0-9X])?$/.exec(code.trim().toUpperCase());
  if (!match) return '';
  return `${match[1]}${match[2]}${match[3] ? `.${match[3]}` : ''}`;
}

/** Whether an ICD-10 code is a breast cancer diagnosis the link acts on. */
export function diagnosisKind(icd10: string): DiagnosisKind | undefined {
  const code = normaliseCode(icd10);
  if (/^C50(\.|$)/.test(code)) return 'breast_cancer';
  if (/^D05(\.|$)/.test(code)) return 'carcinoma_in_situ';
  return undefined;
}

/** Whether an OPCS-4 code is a breast procedure the link records. */
export function procedureKind(opcs4: string): ProcedureKind | undefined {
  const code = normaliseCode(opcs4);
  if (/^B27(\.|$)/.test(code)) return 'mastectomy';
  if (/^B28(\.|$)/.test(code)) return 'excision';
  if (code === 'B30.1') return 'implant';
  return undefined;
}

/** Laterality from OPCS-4 Z94 (1 bilateral, 2 right, 3 left) or HL7 table 0495 words. */
export function sideFrom(text: string): Side | null {
  const t = text.trim().toUpperCase();
  if (['Z94.1', 'Z941', 'B', 'BIL', 'BILATERAL', 'BOTH'].includes(t)) return 'bilateral';
  if (['Z94.2', 'Z942', 'R', 'RIGHT'].includes(t)) return 'right';
  if (['Z94.3', 'Z943', 'L', 'LEFT'].includes(t)) return 'left';
  return null;
}

/** Whether the event, on its own, is a reason to suspend routine invitations. */
export function suspends(event: SymptomaticEvent): boolean {
  return event.diagnoses.some((d) => !d.historical) || event.procedures.some((p) => p.kind !== 'implant');
}

/** The date the event suspends from: its earliest suspending fact. */
export function suspendingDate(event: SymptomaticEvent): IsoDate | undefined {
  const dates = [
    ...event.diagnoses.filter((d) => !d.historical).map((d) => d.date),
    ...event.procedures.filter((p) => p.kind !== 'implant').map((p) => p.date),
  ];
  return dates.sort()[0];
}

/** The latest date in the event: what "newer than a lift" is judged by. */
export function latestDate(event: SymptomaticEvent): IsoDate | undefined {
  return [...event.diagnoses.map((d) => d.date), ...event.procedures.map((p) => p.date)].sort().at(-1);
}

const PROCEDURE_LABELS: Record<ProcedureKind, string> = {
  mastectomy: 'mastectomy',
  excision: 'breast excision',
  implant: 'breast implant insertion',
  chemotherapy: 'chemotherapy',
  radiotherapy: 'radiotherapy',
};

/** Why invitations are suspended, for staff to read (record, batch exclusions). */
export function suspensionReason(event: SymptomaticEvent): string {
  const parts = [
    ...event.diagnoses
      .filter((d) => !d.historical)
      .map(
        (d) =>
          `${d.kind === 'breast_cancer' ? 'breast cancer' : 'carcinoma in situ of breast'} diagnosed (${d.codeSystem ?? 'ICD-10'} ${d.code}) on ${formatLongDate(d.date)}`,
      ),
    ...event.procedures
      .filter((p) => p.kind !== 'implant')
      .map(
        (p) =>
          `${p.side === 'bilateral' ? 'bilateral ' : p.side ? `${p.side} ` : ''}${PROCEDURE_LABELS[p.kind]} (${p.codeSystem ?? 'OPCS-4'} ${p.code}) on ${formatLongDate(p.date)}`,
      ),
  ];
  const bilateral = event.procedures.some((p) => p.kind === 'mastectomy' && p.side === 'bilateral');
  const text = `Trust EPR: ${parts.join('; ')}`;
  return bilateral ? `${text}. Bilateral mastectomy: consider ceasing (needs a clinician's confirmation)` : text;
}

export type SuspensionDecision =
  { suspend: 'start'; since: IsoDate; reason: string } | { suspend: 'already' } | { suspend: 'no'; why: string };

/**
 * Whether this event starts a suspension, given her active one (if any) and the day the last one was lifted.
 */
export function suspensionDecision(
  event: SymptomaticEvent,
  state: { active: boolean; lastLiftedOn: IsoDate | null },
): SuspensionDecision {
  if (!suspends(event))
    return {
      suspend: 'no',
      why: event.diagnoses.length
        ? 'nothing in the message suspends invitations (the diagnosis is given as past history)'
        : 'nothing in the message suspends invitations (implants only)',
    };
  if (state.active) return { suspend: 'already' };
  const latest = latestDate(event) as IsoDate;
  if (state.lastLiftedOn && latest <= state.lastLiftedOn)
    return {
      suspend: 'no',
      why: `the event (${formatLongDate(latest)}) is not after staff lifted the last suspension on ${formatLongDate(state.lastLiftedOn)}`,
    };
  return { suspend: 'start', since: suspendingDate(event) as IsoDate, reason: suspensionReason(event) };
}
