/**
 * Ceasing a woman from breast screening, and reinstating her (NHS Breast Screening Programme, England: "Breast
 * screening: ceasing women from the NHS Breast Screening Programme"). Pure rules: which reasons there are, what
 * each needs before a woman is ceased, and who may reinstate her. No I/O.
 *
 * - Informed choice: she asks not to be invited again, in writing, after being told what screening offers. She
 *   can ask to come back at any time.
 * - Bilateral mastectomy: no breast tissue left to screen; a clinician's confirmation is needed. Reinstated only if
 *   a clinician says breast tissue remains.
 * - Best interests: she lacks capacity to decide (Mental Capacity Act 2005) and a best-interests decision, with
 *   her GP or carers, is not to screen. Reviewed if her capacity or circumstances change.
 * - Lasting power of attorney: her attorney for health and welfare decides on her behalf, in writing.
 * - Withdrawal from very high risk screening: she leaves annual surveillance, not the programme: she returns to
 *   routine 3-yearly screening in the routine ages. Only a woman on the very high risk pathway can withdraw from it.
 */
import { compareIsoDate, isIsoDate, type IsoDate } from './dates.js';

export const CEASING_REASONS = [
  'informed_choice',
  'bilateral_mastectomy',
  'best_interests',
  'lasting_power_of_attorney',
  'very_high_risk_withdrawal',
] as const;
export type CeasingReason = (typeof CEASING_REASONS)[number];

export interface CeasingRule {
  label: string;
  /** What must be on record before she is ceased (the request is refused without it). */
  evidence: string;
  /** Who or what may reinstate her. */
  reinstatedBy: string;
  /** Whether she stays in routine screening (only very high risk surveillance stops). */
  routineContinues: boolean;
}

export const CEASING_RULES: Record<CeasingReason, CeasingRule> = {
  informed_choice: {
    label: 'Informed choice',
    evidence: 'her signed request, after being told what screening offers',
    reinstatedBy: 'her own request, at any time',
    routineContinues: false,
  },
  bilateral_mastectomy: {
    label: 'Bilateral mastectomy',
    evidence: "a clinician's confirmation that both breasts were removed",
    reinstatedBy: 'a clinician finding that breast tissue remains',
    routineContinues: false,
  },
  best_interests: {
    label: 'Best interests (Mental Capacity Act 2005)',
    evidence: 'the capacity assessment and best-interests decision, with who took part',
    reinstatedBy: 'a review of the decision (her capacity or circumstances changed)',
    routineContinues: false,
  },
  lasting_power_of_attorney: {
    label: 'Decision of her attorney (lasting power of attorney, health and welfare)',
    evidence: "the attorney's written decision and the registered power of attorney",
    reinstatedBy: 'her attorney, or herself if she regains capacity',
    routineContinues: false,
  },
  very_high_risk_withdrawal: {
    label: 'Withdrawal from very high risk screening',
    evidence: 'her signed request to leave annual surveillance',
    reinstatedBy: 'her own request to return to annual surveillance',
    routineContinues: true,
  },
};

/**
 * The ceasing reason a record's text stands for: a code, its label, or a label from the systems records came from
 * ("Mental capacity", "Personal welfare"); undefined for any other text (still a ceasing, of no known rule).
 */
export function ceasingReasonFrom(text: string): CeasingReason | undefined {
  const key = text.trim().toLowerCase();
  const legacy: Record<string, CeasingReason> = {
    'mental capacity': 'best_interests',
    'personal welfare': 'lasting_power_of_attorney',
  };
  return (
    CEASING_REASONS.find((r) => r === key || CEASING_RULES[r].label.toLowerCase() === key) ?? legacy[key] ?? undefined
  );
}

export interface CeasingRequest {
  reason: string;
  on: IsoDate;
  /** What is on record for the rule's evidence (a letter's reference, who confirmed it). */
  evidence: string;
  veryHighRisk: boolean;
  dateOfBirth: IsoDate;
  dateOfDeath?: IsoDate | null;
  /** Already ceased (an open ceasing). */
  ceased?: { reason: CeasingReason; on: IsoDate } | null;
}

/** Why a ceasing cannot be recorded, each in words staff can act on; empty when it can. */
export function ceasingProblems(request: CeasingRequest, today: IsoDate): string[] {
  const problems: string[] = [];
  const reason = CEASING_REASONS.find((r) => r === request.reason);
  if (!reason)
    problems.push(`Choose a reason for ceasing: ${CEASING_REASONS.map((r) => CEASING_RULES[r].label).join(', ')}`);
  if (!isIsoDate(request.on)) problems.push('The date of ceasing must be a real date');
  else {
    if (compareIsoDate(request.on, today) > 0) problems.push('The date of ceasing cannot be in the future');
    if (compareIsoDate(request.on, request.dateOfBirth) < 0)
      problems.push('The date of ceasing cannot be before her date of birth');
  }
  if (request.dateOfDeath) problems.push('She has died: she is no longer invited, and is not ceased');
  if (request.ceased && request.ceased.reason !== 'very_high_risk_withdrawal')
    problems.push(`She is already ceased (${CEASING_RULES[request.ceased.reason].label}); reinstate her first`);
  if (!reason) return problems;
  if (request.evidence.trim().length === 0) problems.push(`Record ${CEASING_RULES[reason].evidence}`);
  if (reason === 'very_high_risk_withdrawal' && !request.veryHighRisk)
    problems.push('Only a woman on very high risk screening can withdraw from it');
  return problems;
}

export interface ReinstatementRequest {
  ceased: { reason: CeasingReason; on: IsoDate };
  on: IsoDate;
  /** Who asked or decided (her, the attorney, the clinician), as the rule's reinstatedBy says. */
  decidedBy: string;
  reason: string;
}

/** Why a reinstatement cannot be recorded; empty when it can. */
export function reinstatementProblems(request: ReinstatementRequest, today: IsoDate): string[] {
  const problems: string[] = [];
  if (!isIsoDate(request.on)) problems.push('The date of reinstatement must be a real date');
  else {
    if (compareIsoDate(request.on, today) > 0) problems.push('The date of reinstatement cannot be in the future');
    if (compareIsoDate(request.on, request.ceased.on) < 0)
      problems.push('The date of reinstatement cannot be before she was ceased');
  }
  if (request.decidedBy.trim().length === 0)
    problems.push(`Say who decided: ${CEASING_RULES[request.ceased.reason].reinstatedBy}`);
  if (request.reason.trim().length === 0) problems.push('Give the reason for reinstating her');
  return problems;
}

/** A ceasing as a record holds it: the reason as a code, a label or an older system's text (see ceasingReasonFrom). */
export interface CeasingOnRecord {
  reason: string;
  on: IsoDate;
}

/**
 * ceasingProblems for her record as it stands, whose ceasing in force may be held as text: a ceasing of no known
 * rule (from an older system) still has to be reinstated first, and a woman who has withdrawn from very high risk
 * screening cannot withdraw again.
 */
export function ceasingProblemsOnRecord(
  request: Omit<CeasingRequest, 'ceased'> & { ceased?: CeasingOnRecord | null },
  today: IsoDate,
): string[] {
  const held = request.ceased ?? null;
  const known = held ? ceasingReasonFrom(held.reason) : undefined;
  const problems = ceasingProblems(
    { ...request, ceased: held && known ? { reason: known, on: held.on } : null },
    today,
  );
  if (held && !known) problems.push(`She is already ceased (${held.reason.trim()}); reinstate her first`);
  if (known === 'very_high_risk_withdrawal' && request.reason === 'very_high_risk_withdrawal')
    problems.push('She has already withdrawn from very high risk screening');
  return problems;
}

/**
 * reinstatementProblems for her record as it stands: she must be ceased; a ceasing of no known rule (from an older
 * system) gets the same checks, with no rule to say who decides.
 */
export function reinstatementProblemsOnRecord(
  request: Omit<ReinstatementRequest, 'ceased'> & { ceased: CeasingOnRecord | null },
  today: IsoDate,
): string[] {
  const held = request.ceased;
  if (!held) return ['She is not ceased from screening: there is nothing to reinstate'];
  const known = ceasingReasonFrom(held.reason);
  if (known) return reinstatementProblems({ ...request, ceased: { reason: known, on: held.on } }, today);
  const problems: string[] = [];
  if (!isIsoDate(request.on)) problems.push('The date of reinstatement must be a real date');
  else {
    if (compareIsoDate(request.on, today) > 0) problems.push('The date of reinstatement cannot be in the future');
    if (compareIsoDate(request.on, held.on) < 0)
      problems.push('The date of reinstatement cannot be before she was ceased');
  }
  if (request.decidedBy.trim().length === 0) problems.push('Say who decided to reinstate her');
  if (request.reason.trim().length === 0) problems.push('Give the reason for reinstating her');
  return problems;
}

/** The label of a ceasing reason held as a code, a label or an older system's text (that text, as written). */
export function ceasingLabel(reason: string): string {
  const code = ceasingReasonFrom(reason);
  return code ? CEASING_RULES[code].label : reason.trim().replace(/\.$/, '');
}

/**
 * Whether a woman ceased for this reason (a code, a label or an older system's text) is still in routine screening:
 * only a withdrawal from very high risk surveillance leaves her in it. She may be invited and booked.
 */
export function stillInRoutineScreening(reason: string): boolean {
  const code = ceasingReasonFrom(reason);
  return code !== undefined && CEASING_RULES[code].routineContinues;
}
