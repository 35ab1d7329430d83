/**
 * Reads the FHIR R4 resources of the symptomatic link (issue 5, item 5) into the SymptomaticEvent the HL7 v2 feed
 * produces (pathway/symptomatic.ts), or says exactly what is wrong. Pure. docs/fhir-symptomatic-link.md has
 * examples.
 *
 * - Condition: a breast cancer diagnosis (code). Taken when verificationStatus is confirmed (or absent);
 *   unconfirmed, provisional and differential are not acted on; refuted and entered-in-error never suspend and
 *   come back as "withdrawn" (the store reports to staff if an earlier version of the same Condition suspended
 *   her: it never lifts a suspension by itself). clinicalStatus inactive, remission or resolved make it past
 *   history (recorded, not suspending on its own). Dated onsetDateTime, else onsetPeriod.start, else recordedDate.
 * - Procedure: breast surgery (mastectomy, excision, implant insertion) or a chemotherapy or radiotherapy episode
 *   (code). Taken when status is completed, in-progress or stopped; entered-in-error is withdrawn. Side from the
 *   code itself, else bodySite (SNOMED CT laterality qualifiers, OPCS-4 Z94, or the words left, right, bilateral).
 *   Dated performedDateTime, else performedPeriod.start.
 * - Encounter: a treatment or surgery episode: type and serviceType read as procedures, reasonCode as diagnoses.
 *   Taken when status is in-progress, onleave or finished; entered-in-error is withdrawn. Dated period.start.
 * - The patient: subject.identifier with system https://fhir.nhs.uk/Id/nhs-number (or, in a Bundle, subject.reference
 *   to a Patient entry carrying that identifier); the NHS number must pass its check digit.
 * - Codes: SNOMED CT from SYMPTOMATIC_CODES below; ICD-10 (C50, D05) and OPCS-4 (B27, B28, B30.1) by the same rules
 *   as the HL7 feed, under any system URI naming ICD-10 or OPCS-4 (http://hl7.org/fhir/sid/icd-10 and so on).
 *
 * Issues carry the HTTP status they call for: 400 for a malformed resource (wrong shape, bad NHS number or date
 * format, unknown status code), 422 for a well-formed one the hub cannot use (no date, a date in the future, a
 * partial date). Each issue names its place as a FHIRPath-like expression ("Condition.subject.identifier.value").
 */
import { addDays, isIsoDate, isoDateInLondon, type IsoDate } from '../pathway/dates.js';
import { isValidNhsNumber } from '../pathway/nhs-number.js';
import type { Side } from '../pathway/record-items.js';
import {
  diagnosisKind,
  normaliseCode,
  procedureKind,
  sideFrom,
  type CodeSystem,
  type Diagnosis,
  type DiagnosisKind,
  type Procedure,
  type ProcedureKind,
  type SymptomaticEvent,
} from '../pathway/symptomatic.js';

export const NHS_NUMBER_SYSTEM = 'https://fhir.nhs.uk/Id/nhs-number';
export const SNOMED_CT = 'http://snomed.info/sct';
const CLINICAL_STATUS = 'http://terminology.hl7.org/CodeSystem/condition-clinical';
const VERIFICATION_STATUS = 'http://terminology.hl7.org/CodeSystem/condition-ver-status';

export interface CodeEntry {
  code: string;
  display: string;
  fact: { type: 'diagnosis'; kind: DiagnosisKind } | { type: 'procedure'; kind: ProcedureKind; side?: Side };
  /** The code the HL7 feed (ICD-10 / OPCS-4) uses for the same thing, for reference. */
  hl7?: string;
}

/**
 * The SNOMED CT concepts the link acts on: one table. Descendants are not inferred (the hub holds no terminology
 * server): an EPR coding something more specific should send one of these as another coding, or the ICD-10 /
 * OPCS-4 code.
 */
export const SYMPTOMATIC_CODES: readonly CodeEntry[] = [
  {
    code: '254837009',
    display: 'Malignant neoplasm of breast',
    fact: { type: 'diagnosis', kind: 'breast_cancer' },
    hl7: 'C50.9',
  },
  {
    code: '109889007',
    display: 'Intraductal carcinoma in situ of breast',
    fact: { type: 'diagnosis', kind: 'carcinoma_in_situ' },
    hl7: 'D05.1',
  },
  { code: '172043006', display: 'Simple mastectomy', fact: { type: 'procedure', kind: 'mastectomy' }, hl7: 'B27.4' },
  {
    code: '428571003',
    display: 'Mastectomy of left breast',
    fact: { type: 'procedure', kind: 'mastectomy', side: 'left' },
    hl7: 'B27',
  },
  {
    code: '741009001',
    display: 'Simple mastectomy of left breast',
    fact: { type: 'procedure', kind: 'mastectomy', side: 'left' },
    hl7: 'B27.4',
  },
  {
    code: '726437009',
    display: 'Modified radical mastectomy of left breast',
    fact: { type: 'procedure', kind: 'mastectomy', side: 'left' },
    hl7: 'B27.2',
  },
  {
    code: '726429001',
    display: 'Radical mastectomy of left breast',
    fact: { type: 'procedure', kind: 'mastectomy', side: 'left' },
    hl7: 'B27.1',
  },
  {
    code: '429400009',
    display: 'Mastectomy of right breast',
    fact: { type: 'procedure', kind: 'mastectomy', side: 'right' },
    hl7: 'B27',
  },
  {
    code: '741010006',
    display: 'Simple mastectomy of right breast',
    fact: { type: 'procedure', kind: 'mastectomy', side: 'right' },
    hl7: 'B27.4',
  },
  {
    code: '726436000',
    display: 'Modified radical mastectomy of right breast',
    fact: { type: 'procedure', kind: 'mastectomy', side: 'right' },
    hl7: 'B27.2',
  },
  {
    code: '726430006',
    display: 'Radical mastectomy of right breast',
    fact: { type: 'procedure', kind: 'mastectomy', side: 'right' },
    hl7: 'B27.1',
  },
  {
    code: '27865001',
    display: 'Bilateral mastectomy',
    fact: { type: 'procedure', kind: 'mastectomy', side: 'bilateral' },
    hl7: 'B27 with Z94.1',
  },
  {
    code: '22418005',
    display: 'Bilateral simple mastectomy',
    fact: { type: 'procedure', kind: 'mastectomy', side: 'bilateral' },
    hl7: 'B27.4 with Z94.1',
  },
  {
    code: '17086001',
    display: 'Modified radical mastectomy, bilateral',
    fact: { type: 'procedure', kind: 'mastectomy', side: 'bilateral' },
    hl7: 'B27.2 with Z94.1',
  },
  {
    code: '726636007',
    display: 'Prophylactic bilateral mastectomy',
    fact: { type: 'procedure', kind: 'mastectomy', side: 'bilateral' },
    hl7: 'B27 with Z94.1',
  },
  { code: '392021009', display: 'Lumpectomy of breast', fact: { type: 'procedure', kind: 'excision' }, hl7: 'B28.3' },
  { code: '64368001', display: 'Partial mastectomy', fact: { type: 'procedure', kind: 'excision' }, hl7: 'B28.2' },
  {
    code: '172049005',
    display: 'Quadrantectomy of breast',
    fact: { type: 'procedure', kind: 'excision' },
    hl7: 'B28.1',
  },
  {
    code: '302343007',
    display: 'Breast prosthesis insertion',
    fact: { type: 'procedure', kind: 'implant' },
    hl7: 'B30.1',
  },
  { code: '367336001', display: 'Chemotherapy', fact: { type: 'procedure', kind: 'chemotherapy' } },
  {
    code: '108290001',
    display: 'Radiation oncology AND/OR radiotherapy',
    fact: { type: 'procedure', kind: 'radiotherapy' },
  },
  { code: '33195004', display: 'Teleradiotherapy procedure', fact: { type: 'procedure', kind: 'radiotherapy' } },
];

const BY_SNOMED = new Map(SYMPTOMATIC_CODES.map((entry) => [entry.code, entry]));

/** SNOMED CT laterality qualifiers (bodySite). */
const LATERALITY: Record<string, Side> = { '7771000': 'left', '24028007': 'right', '51440002': 'bilateral' };

export type IssueCode =
  'structure' | 'required' | 'value' | 'invalid' | 'not-supported' | 'business-rule' | 'not-found' | 'duplicate';

export interface Issue {
  /** The HTTP status the issue calls for: 400 malformed, 422 well-formed but unusable. */
  status: 400 | 422;
  code: IssueCode;
  /** Where: a FHIRPath-like expression, "Condition.subject.identifier.value". */
  expression: string;
  diagnostics: string;
}

export type SymptomaticResourceType = 'Condition' | 'Procedure' | 'Encounter';
export const RESOURCE_TYPES: readonly SymptomaticResourceType[] = ['Condition', 'Procedure', 'Encounter'];

export interface ResourceRef {
  resourceType: SymptomaticResourceType;
  id: string | null;
  versionId: string | null;
  /** meta.lastUpdated as an ISO instant. */
  lastUpdated: string | null;
}

export type SymptomaticReading =
  | { kind: 'event'; ref: ResourceRef; event: SymptomaticEvent }
  /** Well-formed; nothing in it for screening (another code, not confirmed, planned or cancelled). */
  | { kind: 'ignored'; ref: ResourceRef; nhsNumber: string; why: string }
  /** refuted or entered-in-error: never suspends; the store reports it if an earlier version suspended her. */
  | { kind: 'withdrawn'; ref: ResourceRef; nhsNumber: string; status: 'refuted' | 'entered-in-error' }
  | { kind: 'invalid'; issues: Issue[] };

class Invalid extends Error {
  constructor(readonly issue: Issue) {
    super(issue.diagnostics);
  }
}

const fail = (status: 400 | 422, code: IssueCode, expression: string, diagnostics: string): never => {
  throw new Invalid({ status, code, expression, diagnostics });
};

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

function object(v: unknown, at: string, required: true): Json;
function object(v: unknown, at: string, required?: false): Json | undefined;
function object(v: unknown, at: string, required = false): Json | undefined {
  if (v === undefined || v === null) return required ? fail(400, 'required', at, `${at} is missing`) : undefined;
  return isObject(v) ? v : fail(400, 'structure', at, `${at} must be an object`);
}

function string(v: unknown, at: string, required = false): string | undefined {
  if (v === undefined || v === null) return required ? fail(400, 'required', at, `${at} is missing`) : undefined;
  if (typeof v !== 'string' || v.trim() === '') return fail(400, 'structure', at, `${at} must be a non-empty string`);
  return v.trim();
}

function array(v: unknown, at: string): unknown[] {
  if (v === undefined || v === null) return [];
  return Array.isArray(v) ? v : fail(400, 'structure', at, `${at} must be an array`);
}

interface Coding {
  system: string;
  code: string;
  display: string;
}

/** The codings of a CodeableConcept (and its text), checked for shape. */
function codeableConcept(v: unknown, at: string): { codings: Coding[]; text: string } | undefined {
  const cc = object(v, at);
  if (!cc) return undefined;
  const codings = array(cc.coding, `${at}.coding`).map((c, i) => {
    const where = `${at}.coding[${i}]`;
    const coding = object(c, where, true);
    return {
      system: string(coding.system, `${where}.system`) ?? '',
      code: string(coding.code, `${where}.code`, true) as string,
      display: string(coding.display, `${where}.display`) ?? '',
    };
  });
  return { codings, text: string(cc.text, `${at}.text`) ?? '' };
}

/** The one code of a status CodeableConcept in its system, or undefined when absent. */
function statusCode(v: unknown, at: string, system: string, allowed: readonly string[]): string | undefined {
  const cc = codeableConcept(v, at);
  if (!cc) return undefined;
  const coding = cc.codings.find((c) => c.system === system || c.system === '');
  if (!coding) return fail(400, 'required', `${at}.coding`, `${at} has no coding in ${system}`);
  if (!allowed.includes(coding.code))
    return fail(400, 'value', `${at}.coding`, `${at} "${coding.code}" is not one of ${allowed.join(', ')}`);
  return coding.code;
}

const FHIR_ID = /^[A-Za-z0-9\-.]{1,64}$/;
const FHIR_DATE = /^\d{4}(-\d{2}(-\d{2})?)?$/;
const FHIR_DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/;

/** A FHIR date or dateTime as her calendar date in England; partial dates and future ones are unusable (422). */
function fhirDate(v: unknown, at: string, today: IsoDate): IsoDate | undefined {
  const text = string(v, at);
  if (text === undefined) return undefined;
  let date: IsoDate;
  if (FHIR_DATE_TIME.test(text)) {
    const instant = new Date(text);
    if (Number.isNaN(instant.getTime()) || !isIsoDate(text.slice(0, 10)))
      return fail(400, 'value', at, `${at} "${text}" is not a valid dateTime`);
    date = isoDateInLondon(instant);
  } else if (FHIR_DATE.test(text)) {
    if (text.length < 10)
      return fail(422, 'business-rule', at, `${at} "${text}" is a partial date: the hub needs the day`);
    const quoted = JSON.stringify(text);
    if (!isIsoDate(text)) return fail(400, 'value', at, `${at} ${quoted} is not a valid date`);
    date = text;
  } else {
    return fail(
      400,
      'value',
      at,
      `${at} "${text}" is not a FHIR date or dateTime (YYYY-MM-DD or YYYY-MM-DDThh:mm:ss+zz:zz)`,
    );
  }
  if (date > addDays(today, 1)) return fail(422, 'business-rule', at, `${at} ${date} is in the future`);
  return date;
}

/** The resource's id and meta (version and last update). */
function refOf(resource: Json, resourceType: SymptomaticResourceType): ResourceRef {
  const id = string(resource.id, `${resourceType}.id`);
  if (id !== undefined && !FHIR_ID.test(id))
    fail(400, 'value', `${resourceType}.id`, `${resourceType}.id "${id}" is not a FHIR id (A-Z a-z 0-9 - . up to 64)`);
  const meta = object(resource.meta, `${resourceType}.meta`);
  const versionId = string(meta?.versionId, `${resourceType}.meta.versionId`);
  if (versionId !== undefined && !FHIR_ID.test(versionId))
    fail(
      400,
      'value',
      `${resourceType}.meta.versionId`,
      `${resourceType}.meta.versionId "${versionId}" is not a FHIR id`,
    );
  const lastUpdatedText = string(meta?.lastUpdated, `${resourceType}.meta.lastUpdated`);
  let lastUpdated: string | null = null;
  if (lastUpdatedText !== undefined) {
    const instant = new Date(lastUpdatedText);
    if (!FHIR_DATE_TIME.test(lastUpdatedText) || Number.isNaN(instant.getTime()))
      fail(
        400,
        'value',
        `${resourceType}.meta.lastUpdated`,
        `${resourceType}.meta.lastUpdated "${lastUpdatedText}" is not a FHIR instant (YYYY-MM-DDThh:mm:ss+zz:zz)`,
      );
    lastUpdated = instant.toISOString();
  }
  return { resourceType, id: id ?? null, versionId: versionId ?? null, lastUpdated };
}

/** Resolves a reference to another entry of the Bundle (by fullUrl or "Patient/id"). */
export type ResolveReference = (reference: string) => unknown;

function nhsNumberOf(resource: Json, at: string, resolve?: ResolveReference): string {
  const subject = object(resource.subject, `${at}.subject`, true);
  let identifier = object(subject.identifier, `${at}.subject.identifier`);
  let where = `${at}.subject.identifier`;
  if (!identifier && typeof subject.reference === 'string' && resolve) {
    const patient = resolve(subject.reference);
    if (isObject(patient) && patient.resourceType === 'Patient') {
      const nhs = array(patient.identifier, 'Patient.identifier').find(
        (i) => isObject(i) && i.system === NHS_NUMBER_SYSTEM,
      );
      identifier = isObject(nhs) ? nhs : undefined;
      where = `Patient.identifier`;
    }
  }
  if (!identifier)
    return fail(
      400,
      'required',
      `${at}.subject.identifier`,
      `${at}.subject.identifier is missing: the hub matches her by NHS number (system ${NHS_NUMBER_SYSTEM})`,
    );
  if (identifier.system !== NHS_NUMBER_SYSTEM)
    return fail(400, 'value', `${where}.system`, `${where}.system must be ${NHS_NUMBER_SYSTEM}`);
  const value = string(identifier.value, `${where}.value`, true)!.replace(/\s/g, '');
  if (!isValidNhsNumber(value))
    return fail(
      400,
      'value',
      `${where}.value`,
      `${where}.value "${value}" is not a valid NHS number (10 digits, check digit)`,
    );
  return value;
}

/** A coding the link acts on; codeSystem is absent for ICD-10 and OPCS-4 (as in the HL7 feed's events). */
type Found =
  | { type: 'diagnosis'; code: string; codeSystem?: CodeSystem; kind: DiagnosisKind; text: string }
  | { type: 'procedure'; code: string; codeSystem?: CodeSystem; kind: ProcedureKind; text: string; side?: Side };

const isIcd10 = (system: string) => /icd-?10/i.test(system);
const isOpcs4 = (system: string) => /opcs-?4/i.test(system);

/** What a coding means to the link: SNOMED CT from the table, ICD-10 and OPCS-4 by the HL7 feed's rules. */
export function classifyCoding(coding: { system: string; code: string; display?: string }): Found | undefined {
  const text = coding.display ?? '';
  if (coding.system === SNOMED_CT) {
    const entry = BY_SNOMED.get(coding.code);
    if (!entry) return undefined;
    return entry.fact.type === 'diagnosis'
      ? {
          type: 'diagnosis',
          code: entry.code,
          codeSystem: 'SNOMED CT',
          kind: entry.fact.kind,
          text: text || entry.display,
        }
      : {
          type: 'procedure',
          code: entry.code,
          codeSystem: 'SNOMED CT',
          kind: entry.fact.kind,
          text: text || entry.display,
          ...(entry.fact.side ? { side: entry.fact.side } : {}),
        };
  }
  if (isIcd10(coding.system)) {
    const kind = diagnosisKind(coding.code);
    return kind ? { type: 'diagnosis', code: normaliseCode(coding.code), kind, text } : undefined;
  }
  if (isOpcs4(coding.system)) {
    const kind = procedureKind(coding.code);
    return kind ? { type: 'procedure', code: normaliseCode(coding.code), kind, text } : undefined;
  }
  return undefined;
}

/** The first coding of a concept the link acts on, of the type wanted. */
function found<T extends Found['type']>(
  cc: { codings: Coding[]; text: string } | undefined,
  type: T,
): Extract<Found, { type: T }> | undefined {
  for (const coding of cc?.codings ?? []) {
    const hit = classifyCoding(coding);
    if (hit?.type === type) return { ...hit, text: hit.text || cc?.text || '' } as Extract<Found, { type: T }>;
  }
  return undefined;
}

function sideOfBodySite(resource: Json, at: string): Side | null {
  for (const [i, site] of array(resource.bodySite, `${at}.bodySite`).entries()) {
    const cc = codeableConcept(site, `${at}.bodySite[${i}]`);
    for (const coding of cc?.codings ?? []) {
      const side = coding.system === SNOMED_CT ? LATERALITY[coding.code] : sideFrom(coding.code);
      if (side) return side;
    }
    const fromText = cc?.text ? sideFrom(cc.text) : null;
    if (fromText) return fromText;
  }
  return null;
}

const describeCodes = (cc: { codings: Coding[]; text: string } | undefined) =>
  cc?.codings.map((c) => `${c.system || '(no system)'}|${c.code}`).join(', ') || cc?.text || '(none)';

const CONDITION_CLINICAL = ['active', 'recurrence', 'relapse', 'inactive', 'remission', 'resolved'] as const;
const CONDITION_VERIFICATION = [
  'unconfirmed',
  'provisional',
  'differential',
  'confirmed',
  'refuted',
  'entered-in-error',
] as const;
const PROCEDURE_STATUS = [
  'preparation',
  'in-progress',
  'not-done',
  'on-hold',
  'stopped',
  'completed',
  'entered-in-error',
  'unknown',
] as const;
const ENCOUNTER_STATUS = [
  'planned',
  'arrived',
  'triaged',
  'in-progress',
  'onleave',
  'finished',
  'cancelled',
  'entered-in-error',
  'unknown',
] as const;

function readCondition(resource: Json, today: IsoDate, resolve?: ResolveReference): SymptomaticReading {
  const ref = refOf(resource, 'Condition');
  const nhsNumber = nhsNumberOf(resource, 'Condition', resolve);
  const verification =
    statusCode(
      resource.verificationStatus,
      'Condition.verificationStatus',
      VERIFICATION_STATUS,
      CONDITION_VERIFICATION,
    ) ?? 'confirmed';
  if (verification === 'refuted' || verification === 'entered-in-error')
    return { kind: 'withdrawn', ref, nhsNumber, status: verification };
  const clinical =
    statusCode(resource.clinicalStatus, 'Condition.clinicalStatus', CLINICAL_STATUS, CONDITION_CLINICAL) ?? 'active';
  const code = codeableConcept(resource.code, 'Condition.code');
  if (!code)
    return fail(400, 'required', 'Condition.code', 'Condition.code is missing: the hub reads the diagnosis from it');
  const hit = found(code, 'diagnosis');
  if (!hit)
    return {
      kind: 'ignored',
      ref,
      nhsNumber,
      why: `Not a breast cancer diagnosis the link acts on (${describeCodes(code)})`,
    };
  if (verification !== 'confirmed')
    return { kind: 'ignored', ref, nhsNumber, why: `The diagnosis is ${verification}, not confirmed: nothing applied` };
  const date =
    fhirDate(resource.onsetDateTime, 'Condition.onsetDateTime', today) ??
    fhirDate(object(resource.onsetPeriod, 'Condition.onsetPeriod')?.start, 'Condition.onsetPeriod.start', today) ??
    fhirDate(resource.recordedDate, 'Condition.recordedDate', today) ??
    fail(
      422,
      'required',
      'Condition.onsetDateTime',
      'The Condition has no date: give onsetDateTime (or onsetPeriod.start, or recordedDate)',
    );
  const diagnosis: Diagnosis = {
    code: hit.code,
    ...(hit.codeSystem ? { codeSystem: hit.codeSystem } : {}),
    kind: hit.kind,
    text: hit.text,
    date,
    ...(['inactive', 'remission', 'resolved'].includes(clinical) ? { historical: true } : {}),
  };
  return { kind: 'event', ref, event: { nhsNumber, diagnoses: [diagnosis], procedures: [] } };
}

function readProcedure(resource: Json, today: IsoDate, resolve?: ResolveReference): SymptomaticReading {
  const ref = refOf(resource, 'Procedure');
  const status = (typeof resource.status === 'string' ? resource.status : undefined) as
    (typeof PROCEDURE_STATUS)[number] | undefined;
  if (status === undefined) fail(400, 'required', 'Procedure.status', 'Procedure.status is missing');
  if (!PROCEDURE_STATUS.includes(status!))
    fail(
      400,
      'value',
      'Procedure.status',
      `Procedure.status "${String(status)}" is not one of ${PROCEDURE_STATUS.join(', ')}`,
    );
  const nhsNumber = nhsNumberOf(resource, 'Procedure', resolve);
  if (status === 'entered-in-error') return { kind: 'withdrawn', ref, nhsNumber, status };
  const code = codeableConcept(resource.code, 'Procedure.code');
  if (!code)
    return fail(400, 'required', 'Procedure.code', 'Procedure.code is missing: the hub reads the procedure from it');
  const hit = found(code, 'procedure');
  if (!hit)
    return {
      kind: 'ignored',
      ref,
      nhsNumber,
      why: `Not a breast procedure or treatment the link acts on (${describeCodes(code)})`,
    };
  if (!['completed', 'in-progress', 'stopped'].includes(status!))
    return {
      kind: 'ignored',
      ref,
      nhsNumber,
      why: `The procedure is ${status}: nothing applied until it has happened`,
    };
  const date =
    fhirDate(resource.performedDateTime, 'Procedure.performedDateTime', today) ??
    fhirDate(
      object(resource.performedPeriod, 'Procedure.performedPeriod')?.start,
      'Procedure.performedPeriod.start',
      today,
    ) ??
    fail(
      422,
      'required',
      'Procedure.performedDateTime',
      'The Procedure has no date: give performedDateTime (or performedPeriod.start)',
    );
  const procedure: Procedure = {
    code: hit.code,
    ...(hit.codeSystem ? { codeSystem: hit.codeSystem } : {}),
    kind: hit.kind,
    text: hit.text,
    side: hit.side ?? sideOfBodySite(resource, 'Procedure'),
    date,
  };
  return { kind: 'event', ref, event: { nhsNumber, diagnoses: [], procedures: [procedure] } };
}

function readEncounter(resource: Json, today: IsoDate, resolve?: ResolveReference): SymptomaticReading {
  const ref = refOf(resource, 'Encounter');
  const status = resource.status as (typeof ENCOUNTER_STATUS)[number] | undefined;
  if (status === undefined) fail(400, 'required', 'Encounter.status', 'Encounter.status is missing');
  if (!ENCOUNTER_STATUS.includes(status!))
    fail(
      400,
      'value',
      'Encounter.status',
      `Encounter.status "${String(status)}" is not one of ${ENCOUNTER_STATUS.join(', ')}`,
    );
  const nhsNumber = nhsNumberOf(resource, 'Encounter', resolve);
  if (status === 'entered-in-error') return { kind: 'withdrawn', ref, nhsNumber, status };
  const concepts = (field: 'type' | 'reasonCode') =>
    array(resource[field], `Encounter.${field}`).map((v, i) => codeableConcept(v, `Encounter.${field}[${i}]`));
  const types = [...concepts('type'), codeableConcept(resource.serviceType, 'Encounter.serviceType')];
  const reasons = concepts('reasonCode');
  const procedureHits = types.map((cc) => found(cc, 'procedure')).filter((h) => h !== undefined);
  const diagnosisHits = reasons.map((cc) => found(cc, 'diagnosis')).filter((h) => h !== undefined);
  if (procedureHits.length === 0 && diagnosisHits.length === 0)
    return {
      kind: 'ignored',
      ref,
      nhsNumber,
      why: 'Nothing in the Encounter for breast screening (no breast treatment in type or serviceType, no breast cancer in reasonCode)',
    };
  if (!['in-progress', 'onleave', 'finished'].includes(status!))
    return { kind: 'ignored', ref, nhsNumber, why: `The encounter is ${status}: nothing applied until it has begun` };
  const period = object(resource.period, 'Encounter.period');
  const date =
    fhirDate(period?.start, 'Encounter.period.start', today) ??
    fail(422, 'required', 'Encounter.period.start', 'The Encounter has no date: give period.start');
  const side = sideOfBodySite(resource, 'Encounter');
  return {
    kind: 'event',
    ref,
    event: {
      nhsNumber,
      diagnoses: diagnosisHits.map((h) => ({
        code: h.code,
        ...(h.codeSystem ? { codeSystem: h.codeSystem } : {}),
        kind: h.kind,
        text: h.text,
        date,
      })),
      procedures: procedureHits.map((h) => ({
        code: h.code,
        ...(h.codeSystem ? { codeSystem: h.codeSystem } : {}),
        kind: h.kind,
        text: h.text,
        side: h.side ?? side,
        date,
      })),
    },
  };
}

/**
 * Reads one Condition, Procedure or Encounter. `expected` is the type the URL names (POST /fhir/Condition), if any.
 * Issue expressions are rooted at the resource type; a Bundle entry's are prefixed by the caller.
 */
export function readSymptomaticResource(
  resource: unknown,
  today: IsoDate,
  options: { expected?: SymptomaticResourceType; resolve?: ResolveReference } = {},
): SymptomaticReading {
  try {
    if (!isObject(resource)) return fail(400, 'structure', '$', 'The body must be a FHIR resource (a JSON object)');
    const type = resource.resourceType;
    if (typeof type !== 'string') return fail(400, 'required', 'resourceType', 'resourceType is missing');
    if (options.expected && type !== options.expected)
      return fail(400, 'invalid', 'resourceType', `resourceType is "${type}": this endpoint takes ${options.expected}`);
    switch (type) {
      case 'Condition':
        return readCondition(resource, today, options.resolve);
      case 'Procedure':
        return readProcedure(resource, today, options.resolve);
      case 'Encounter':
        return readEncounter(resource, today, options.resolve);
      default:
        return fail(
          400,
          'not-supported',
          'resourceType',
          `resourceType "${type}" is not taken: the symptomatic link takes ${RESOURCE_TYPES.join(', ')} (or a Bundle of them)`,
        );
    }
  } catch (error) {
    if (error instanceof Invalid) return { kind: 'invalid', issues: [error.issue] };
    throw error;
  }
}

export interface BundleEntryReading {
  /** Position in Bundle.entry. */
  index: number;
  fullUrl: string | null;
  reading: SymptomaticReading;
}

export type BundleReading =
  | { kind: 'bundle'; type: 'transaction' | 'collection'; entries: BundleEntryReading[] }
  | { kind: 'invalid'; issues: Issue[] };

/** Largest Bundle taken: an EPR sends one patient's few resources at a time. */
export const MAX_BUNDLE_ENTRIES = 100;

/**
 * Reads a Bundle (transaction or collection) of Conditions, Procedures and Encounters; Patient entries are
 * only used to resolve subject references. Every problem in every entry is reported, each with its place
 * ("Bundle.entry[2].resource.subject.identifier.value").
 */
export function readSymptomaticBundle(bundle: unknown, today: IsoDate): BundleReading {
  const issue = (status: 400 | 422, code: IssueCode, expression: string, diagnostics: string): BundleReading => ({
    kind: 'invalid',
    issues: [{ status, code, expression, diagnostics }],
  });
  if (!isObject(bundle)) return issue(400, 'structure', '$', 'The body must be a FHIR Bundle (a JSON object)');
  if (bundle.resourceType !== 'Bundle')
    return issue(
      400,
      'invalid',
      'resourceType',
      `resourceType is "${String(bundle.resourceType)}": POST /fhir takes a Bundle`,
    );
  const type = bundle.type;
  if (type !== 'transaction' && type !== 'collection')
    return issue(
      400,
      'value',
      'Bundle.type',
      `Bundle.type "${String(type)}" is not taken: send transaction or collection (the hub applies a Bundle whole or not at all)`,
    );
  if (!Array.isArray(bundle.entry) || bundle.entry.length === 0)
    return issue(400, 'required', 'Bundle.entry', 'Bundle.entry is missing or empty');
  if (bundle.entry.length > MAX_BUNDLE_ENTRIES)
    return issue(
      422,
      'business-rule',
      'Bundle.entry',
      `The Bundle has ${bundle.entry.length} entries: send at most ${MAX_BUNDLE_ENTRIES}`,
    );
  const entries = bundle.entry as unknown[];
  const byUrl = new Map<string, unknown>();
  for (const e of entries) {
    if (!isObject(e) || !isObject(e.resource)) continue;
    if (typeof e.fullUrl === 'string') byUrl.set(e.fullUrl, e.resource);
    if (typeof e.resource.resourceType === 'string' && typeof e.resource.id === 'string')
      byUrl.set(`${e.resource.resourceType}/${e.resource.id}`, e.resource);
  }
  const resolve: ResolveReference = (reference) => byUrl.get(reference);
  const issues: Issue[] = [];
  const read: BundleEntryReading[] = [];
  entries.forEach((e, index) => {
    const at = `Bundle.entry[${index}]`;
    if (!isObject(e) || !isObject(e.resource)) {
      issues.push({
        status: 400,
        code: 'required',
        expression: `${at}.resource`,
        diagnostics: `${at}.resource is missing`,
      });
      return;
    }
    if (e.resource.resourceType === 'Patient') return;
    const reading = readSymptomaticResource(e.resource, today, { resolve });
    if (reading.kind === 'invalid') {
      for (const i of reading.issues)
        issues.push({
          ...i,
          expression: `${at}.resource${i.expression === '$' ? '' : `.${i.expression.replace(/^(Condition|Procedure|Encounter)\./, '')}`}`,
          diagnostics: `${at}: ${i.diagnostics}`,
        });
      return;
    }
    read.push({ index, fullUrl: typeof e.fullUrl === 'string' ? e.fullUrl : null, reading });
  });
  if (issues.length) return { kind: 'invalid', issues };
  if (read.length === 0)
    return issue(400, 'required', 'Bundle.entry', 'The Bundle has no Condition, Procedure or Encounter entry');
  return { kind: 'bundle', type, entries: read };
}

/** The HTTP status for a set of issues: 400 if any is malformed, else 422. */
export function statusFor(issues: readonly Issue[]): 400 | 422 {
  return issues.some((i) => i.status === 400) ? 400 : 422;
}
