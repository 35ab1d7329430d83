/**
 * Assessment: the procedures done at an assessment clinic and the multidisciplinary outcome, what each needs to be
 * recorded, and how the outcome ends the screening episode. Pure.
 *
 * - Procedures: any number, each with its date (not before screening, not in the future) and, for a biopsy, the
 *   breast it was on and its B code when known (B1 normal to B5 malignant). A B code belongs to a biopsy only.
 * - Outcome: normal, benign, or malignant (invasive, micro-invasive, non-invasive). Size (mm) and grade (1 to 3)
 *   describe a cancer, so only a malignant outcome has them; a malignant outcome says which breast, and she is
 *   referred to treatment (with the provider): only a malignant outcome is.
 * - Early recall (6, 12, 18 or 24 months) instead of routine recall, after a normal or benign outcome only: a woman
 *   referred to treatment is followed up by her treating team, not recalled by screening.
 * - The episode ends "screening complete" (SC) with its final action: RR routine recall; EC early (short-term)
 *   recall when early recall is set; MT medical treatment after a malignant outcome. Her next test is due the
 *   recall interval after the day she was screened (36 months, 12 under very high risk surveillance, or the early
 *   recall's months), as after a normal result.
 */
import { addMonths, compareIsoDate, isIsoDate, type IsoDate } from './dates.js';
import { nextTestDue } from './results.js';
import {
  ASSESSMENT_OUTCOMES,
  ASSESSMENT_PROCEDURES,
  B_CODES,
  isMalignant,
  type AssessmentOutcome,
  type AssessmentProcedure,
  type BCode,
  type BreastSide,
} from './screening-outcomes.js';

/**
 * The reason (communication.last_error) on a letter or GP message about an assessment outcome that was still waiting
 * to be sent when the outcome was corrected: it is failed with this reason, kept, and a new pair is queued.
 */
export const REPLACED_BY_CORRECTION = 'Replaced by a corrected outcome';

export const EARLY_RECALL_MONTHS = [6, 12, 18, 24] as const;
export type EarlyRecallMonths = (typeof EARLY_RECALL_MONTHS)[number];

export const GRADES = [1, 2, 3] as const;
export type Grade = (typeof GRADES)[number];

/** Invasive size in whole or tenth millimetres, as the column holds it (numeric(5, 1), above 0 and below 500). */
export const MAX_SIZE_MM = 500;

/** Procedures that take tissue, so have a B code. */
export const BIOPSIES: readonly AssessmentProcedure[] = ['core_biopsy', 'vacuum_biopsy', 'open_biopsy'];
export const isBiopsy = (procedure: AssessmentProcedure): boolean => BIOPSIES.includes(procedure);

export const SIDES: readonly BreastSide[] = ['left', 'right', 'bilateral'];

export type FinalAction = 'RR' | 'EC' | 'MT';
export const FINAL_ACTION_LABELS: Record<FinalAction, string> = {
  RR: 'Routine recall',
  EC: 'Early recall',
  MT: 'Referred for treatment',
};

export interface EpisodeEnd {
  endCode: 'SC';
  finalAction: FinalAction;
  /** Her next screening: null after a malignant outcome (her treating team decides). */
  nextTestDue: IsoDate | null;
}

/** How an assessment outcome ends the episode, and when she is next due. */
export function episodeEnd(
  outcome: { outcome: AssessmentOutcome; earlyRecallMonths: number | null },
  facts: { screenedOn: IsoDate; veryHighRisk: boolean },
): EpisodeEnd {
  if (isMalignant(outcome.outcome)) return { endCode: 'SC', finalAction: 'MT', nextTestDue: null };
  if (outcome.earlyRecallMonths !== null) {
    return { endCode: 'SC', finalAction: 'EC', nextTestDue: addMonths(facts.screenedOn, outcome.earlyRecallMonths) };
  }
  return { endCode: 'SC', finalAction: 'RR', nextTestDue: nextTestDue(facts.screenedOn, facts) };
}

export interface ProcedureInput {
  procedure: string;
  side: string | null;
  performedOn: string;
  bCode: string | null;
  notes: string;
}

export interface ValidProcedure {
  procedure: AssessmentProcedure;
  side: BreastSide | null;
  performedOn: IsoDate;
  bCode: BCode | null;
  notes: string;
}

export type Checked<T> = { ok: true; value: T } | { ok: false; problems: Record<string, string> };

const oneOf = <T extends string>(list: readonly T[], value: string | null): value is T =>
  value !== null && (list as readonly string[]).includes(value);

/** A date of an assessment step: a real date, on or after screening, and not in the future. */
function dateProblem(value: string, label: string, screenedOn: IsoDate, today: IsoDate): string | null {
  if (!isIsoDate(value)) return `Enter the ${label} as a real date`;
  if (compareIsoDate(value, today) > 0) return `The ${label} must be today or in the past`;
  if (compareIsoDate(value, screenedOn) < 0) return `The ${label} cannot be before she was screened`;
  return null;
}

/** Every problem with a procedure at once, keyed by the form field it is about. */
export function checkProcedure(
  input: ProcedureInput,
  facts: { screenedOn: IsoDate; today: IsoDate },
): Checked<ValidProcedure> {
  const problems: Record<string, string> = {};
  const procedure = oneOf(ASSESSMENT_PROCEDURES, input.procedure) ? input.procedure : null;
  if (!procedure) problems.procedure = 'Choose the procedure';
  const side = input.side || null;
  if (side !== null && !oneOf(SIDES, side)) problems.side = 'Choose left, right or both';
  if (procedure && isBiopsy(procedure) && side === null)
    problems.side = 'Choose which breast the biopsy was taken from';
  const date = dateProblem(input.performedOn, 'date of the procedure', facts.screenedOn, facts.today);
  if (date) problems.performedOn = date;
  const bCode = input.bCode || null;
  if (bCode !== null && !oneOf(B_CODES, bCode)) problems.bCode = 'Choose a B code from B1 to B5c';
  else if (bCode !== null && procedure && !isBiopsy(procedure))
    problems.bCode = 'Only a biopsy has a B code: leave it blank for this procedure';
  if (input.notes.length > 2000) problems.notes = 'Notes must be 2,000 characters or fewer';
  if (Object.keys(problems).length > 0 || !procedure) return { ok: false, problems };
  return {
    ok: true,
    value: {
      procedure,
      side: side as BreastSide | null,
      performedOn: input.performedOn,
      bCode: bCode as BCode | null,
      notes: input.notes,
    },
  };
}

export interface OutcomeInput {
  outcome: string;
  side: string | null;
  /** As typed: a number of millimetres, or blank. */
  sizeMm: string | null;
  grade: string | null;
  earlyRecallMonths: string | null;
  referredToTreatment: boolean;
  treatmentProvider: string | null;
  decidedOn: string;
}

export interface ValidOutcome {
  outcome: AssessmentOutcome;
  side: BreastSide | null;
  sizeMm: number | null;
  grade: Grade | null;
  earlyRecallMonths: EarlyRecallMonths | null;
  referredToTreatment: boolean;
  treatmentProvider: string | null;
  decidedOn: IsoDate;
}

/** Every problem with an outcome at once, keyed by the form field it is about. */
export function checkOutcome(
  input: OutcomeInput,
  facts: { screenedOn: IsoDate; today: IsoDate },
): Checked<ValidOutcome> {
  const problems: Record<string, string> = {};
  const outcome = oneOf(ASSESSMENT_OUTCOMES, input.outcome) ? input.outcome : null;
  if (!outcome) problems.outcome = 'Choose the outcome';
  const malignant = outcome !== null && isMalignant(outcome);
  const side = input.side || null;
  if (side !== null && !oneOf(SIDES, side)) problems.side = 'Choose left, right or both';
  else if (malignant && side === null) problems.side = 'Choose which breast the cancer is in';
  else if (outcome === 'normal' && side !== null) problems.side = 'A normal outcome has no side: leave it blank';

  const sizeText = (input.sizeMm ?? '').trim();
  let sizeMm: number | null = null;
  if (sizeText !== '') {
    sizeMm = /^\d{1,3}(\.\d)?$/.test(sizeText) ? Number(sizeText) : NaN;
    if (outcome !== null && !malignant) problems.sizeMm = 'Only a malignant outcome has a size: leave it blank';
    else if (!Number.isFinite(sizeMm) || sizeMm <= 0 || sizeMm >= MAX_SIZE_MM)
      problems.sizeMm = 'Enter the size in millimetres, like 12 or 8.5, above 0 and below 500';
  }
  const gradeText = (input.grade ?? '').trim();
  let grade: Grade | null = null;
  if (gradeText !== '') {
    if (outcome !== null && !malignant) problems.grade = 'Only a malignant outcome has a grade: leave it blank';
    else if (!oneOf(['1', '2', '3'], gradeText)) problems.grade = 'Choose grade 1, 2 or 3';
    else grade = Number(gradeText) as Grade;
  }

  const recallText = (input.earlyRecallMonths ?? '').trim();
  let earlyRecallMonths: EarlyRecallMonths | null = null;
  if (recallText !== '') {
    if (!oneOf(['6', '12', '18', '24'], recallText)) problems.earlyRecallMonths = 'Choose 6, 12, 18 or 24 months';
    else if (malignant)
      problems.earlyRecallMonths =
        'A woman referred for treatment is not recalled early by screening: choose no early recall';
    else earlyRecallMonths = Number(recallText) as EarlyRecallMonths;
  }

  const provider = (input.treatmentProvider ?? '').trim() || null;
  if (input.referredToTreatment && outcome !== null && !malignant)
    problems.referredToTreatment = 'Only a malignant outcome is referred to treatment';
  else if (malignant && !input.referredToTreatment)
    problems.referredToTreatment = 'A malignant outcome is referred to treatment: record the referral';
  if (input.referredToTreatment && provider === null && (outcome === null || malignant))
    problems.treatmentProvider = 'Enter where she is referred for treatment';
  else if (provider !== null && !input.referredToTreatment)
    problems.treatmentProvider = 'Give a treatment provider only with a referral to treatment';
  else if (provider !== null && provider.length > 200)
    problems.treatmentProvider = 'The treatment provider must be 200 characters or fewer';

  const date = dateProblem(input.decidedOn, 'date of the decision', facts.screenedOn, facts.today);
  if (date) problems.decidedOn = date;

  if (Object.keys(problems).length > 0 || !outcome) return { ok: false, problems };
  return {
    ok: true,
    value: {
      outcome,
      side: side as BreastSide | null,
      sizeMm,
      grade,
      earlyRecallMonths,
      referredToTreatment: input.referredToTreatment,
      treatmentProvider: provider,
      decidedOn: input.decidedOn,
    },
  };
}
