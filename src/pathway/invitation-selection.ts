/**
 * Who a routine invitation batch takes, and why not (NHS Breast Screening Programme, England). A screening office
 * invites by GP practice (or outcode, or birth month) once a round, every 3 years; each woman in the batch is
 * selected or excluded with a reason staff can read. Pure: the facts come from the record, the batch date from the
 * office's plan (the date its first appointments fall).
 *
 * - Ages: from 49 years 8 months on the batch date (so her appointment falls after her 50th birthday) up to the
 *   day before her 71st birthday. Over 71 she self-refers; a very high risk woman is recalled annually from the
 *   age her surveillance began, to her 71st birthday, and is not in routine batches.
 * - Safety period: a woman screened less than 24 months before the batch date is left out of a routine batch (a
 *   round brought forward must not recall her early); nobody screened in the last 12 months is invited at all.
 * - Excluded whatever else: died, moved to another office's area, ceased (with the reason), or invitations
 *   suspended while she is in treatment for breast cancer (the symptomatic link says so).
 */
import { ceasingLabel, ceasingReasonFrom, stillInRoutineScreening } from './ceasing.js';
import { addMonths, compareIsoDate, formatLongDate, isIsoDate, nthBirthday, type IsoDate } from './dates.js';
import { INVITABLE_FROM_MONTHS, ROUTINE_END_AGE } from './eligibility.js';

export const SAFETY_PERIOD_MONTHS = 24;
export const NEVER_WITHIN_MONTHS = 12;

export interface SelectionFacts {
  dateOfBirth: IsoDate;
  dateOfDeath?: IsoDate | null;
  /** The office responsible for her now (her GP practice's), and the batch's office. */
  bsoCode: string;
  /** Ceased: the reason as a code, or as the record's text (see ceasingReasonFrom). */
  ceased?: { reason: string; on: IsoDate } | null;
  /** Invitations suspended (breast cancer treatment, from the symptomatic link), with why. */
  suspended?: { reason: string; since: IsoDate } | null;
  veryHighRisk?: boolean;
  lastScreenedOn?: IsoDate | null;
}

export type ExclusionCode =
  | 'died'
  | 'moved_out'
  | 'ceased'
  | 'suspended'
  | 'very_high_risk'
  | 'under_age'
  | 'over_age'
  | 'screened_recently'
  | 'safety_period';

export type Selection =
  | { selected: true; basis: 'first_call' | 'routine_recall'; explanation: string }
  | { selected: false; code: ExclusionCode; explanation: string };

export const EXCLUSION_LABELS: Record<ExclusionCode, string> = {
  died: 'Died',
  moved_out: 'Moved to another office',
  ceased: 'Ceased',
  suspended: 'In treatment: invitations suspended',
  very_high_risk: 'Very high risk: annual recall',
  under_age: 'Under 49 years 8 months',
  over_age: '71 or over',
  screened_recently: 'Screened in the last 12 months',
  safety_period: 'Screened in the last 24 months',
};

const before = (a: IsoDate, b: IsoDate) => compareIsoDate(a, b) < 0;

/** Whether a routine batch for `batchBso` dated `batchDate` takes her, and why (not). */
export function selectForBatch(facts: SelectionFacts, batchBso: string, batchDate: IsoDate): Selection {
  for (const d of [facts.dateOfBirth, batchDate, facts.dateOfDeath, facts.lastScreenedOn])
    if (d != null && !isIsoDate(d))
      throw new RangeError(`Not a calendar date in YYYY-MM-DD form: ${JSON.stringify(d)}`);
  const out = (code: ExclusionCode, explanation: string): Selection => ({ selected: false, code, explanation });

  if (facts.dateOfDeath != null && !before(batchDate, facts.dateOfDeath))
    return out('died', `Died on ${formatLongDate(facts.dateOfDeath)}`);
  if (facts.bsoCode !== batchBso)
    return out('moved_out', `Her GP practice is now in another office's area (${facts.bsoCode})`);
  const ceasing = facts.ceased ? ceasingReasonFrom(facts.ceased.reason) : undefined;
  if (facts.ceased && !before(batchDate, facts.ceased.on) && !stillInRoutineScreening(facts.ceased.reason))
    return out('ceased', `Ceased on ${formatLongDate(facts.ceased.on)}: ${ceasingLabel(facts.ceased.reason)}`);
  if (facts.suspended && !before(batchDate, facts.suspended.since))
    return out(
      'suspended',
      `Invitations suspended since ${formatLongDate(facts.suspended.since)}: ${facts.suspended.reason}`,
    );
  const withdrawnFromVhr = ceasing === 'very_high_risk_withdrawal';
  if (facts.veryHighRisk && !withdrawnFromVhr)
    return out('very_high_risk', 'Recalled every 12 months on the very high risk pathway, not in routine batches');

  const invitableFrom = addMonths(facts.dateOfBirth, INVITABLE_FROM_MONTHS);
  const over = nthBirthday(facts.dateOfBirth, ROUTINE_END_AGE);
  if (before(batchDate, invitableFrom))
    return out('under_age', `Invitable from ${formatLongDate(invitableFrom)} (49 years 8 months)`);
  if (!before(batchDate, over))
    return out('over_age', `71 on ${formatLongDate(over)}: she can self-refer every 3 years`);

  const last = facts.lastScreenedOn;
  if (last != null) {
    if (before(batchDate, addMonths(last, NEVER_WITHIN_MONTHS)))
      return out('screened_recently', `Screened on ${formatLongDate(last)}, less than 12 months before`);
    if (before(batchDate, addMonths(last, SAFETY_PERIOD_MONTHS)))
      return out('safety_period', `Screened on ${formatLongDate(last)}, less than 24 months before`);
    return {
      selected: true,
      basis: 'routine_recall',
      explanation: `Routine recall: last screened on ${formatLongDate(last)}`,
    };
  }
  return { selected: true, basis: 'first_call', explanation: 'First call: never screened' };
}
