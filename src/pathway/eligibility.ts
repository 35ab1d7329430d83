/**
 * Routine breast screening status and next test due date (NHS Breast Screening
 * Programme, England), for the whole-person record page.
 *
 * Rules:
 * - "Women are eligible for routine screening from their 50th birthday up to their
 *   71st birthday": the routine cohort runs from the 50th birthday up to, but not
 *   including, the 71st birthday.
 * - "The first invitation is sent between the 50th and 53rd birthday": never
 *   screened → due by the 53rd birthday.
 * - "Women are invited every 3 years": next test due 36 months after the last screen.
 * - "Women aged 71 and over are not invited but can self-refer every 3 years."
 * - Very high risk (VHR) women are screened annually (12 months after the last
 *   screen), from whatever age the VHR protocol starts, "until their 71st birthday".
 *
 * Ages use nthBirthday (29 February births have their birthday on 1 March in a
 * common year). Precedence: deceased, ceased, over 71, very high risk, routine age bands.
 */
import { addMonths, compareIsoDate, formatLongDate, isIsoDate, nthBirthday, type IsoDate } from './dates.js';

export interface ScreeningFacts {
  dateOfBirth: IsoDate;
  dateOfDeath?: IsoDate | null;
  ceased?: { reason: string; on: IsoDate } | null;
  veryHighRisk?: boolean;
  lastScreenedOn?: IsoDate | null;
}

export type ScreeningStatusCode =
  | 'not_yet_eligible'
  | 'eligible'
  | 'due'
  | 'overdue'
  | 'over_age_self_referral'
  | 'ceased'
  | 'deceased'
  | 'very_high_risk';

export interface ScreeningStatus {
  code: ScreeningStatusCode;
  label: string;
  dueDate: IsoDate | null;
  explanation: string;
  eligibleFrom: IsoDate;
  routineEndsBefore: IsoDate;
}

export const ROUTINE_START_AGE = 50;
export const FIRST_CALL_BY_AGE = 53;
/** The routine cohort ends the day before this birthday. */
export const ROUTINE_END_AGE = 71;
export const ROUTINE_RECALL_MONTHS = 36;
export const VERY_HIGH_RISK_RECALL_MONTHS = 12;
/** A due date this close (or closer) makes the status 'due' rather than 'eligible'. */
export const DUE_SOON_MONTHS = 6;

export const SCREENING_STATUS_LABELS: Record<ScreeningStatusCode, string> = {
  not_yet_eligible: 'Not yet eligible',
  eligible: 'Eligible',
  due: 'Due',
  overdue: 'Overdue',
  over_age_self_referral: 'Over 71: self-referral',
  ceased: 'Ceased',
  deceased: 'Deceased',
  very_high_risk: 'Very high risk: annual',
};

const before = (a: IsoDate, b: IsoDate): boolean => compareIsoDate(a, b) < 0;

/**
 * Screening status on `today`. Throws a RangeError for a date that is not a real
 * ISO date, for `today` before the date of birth, or for a last screen before the
 * date of birth or after today.
 */
export function screeningStatus(facts: ScreeningFacts, today: IsoDate): ScreeningStatus {
  const { dateOfBirth: dob, dateOfDeath, ceased, veryHighRisk, lastScreenedOn: last } = facts;
  for (const d of [dob, today, dateOfDeath, ceased?.on, last]) {
    if (d != null && !isIsoDate(d))
      throw new RangeError(`Not a calendar date in YYYY-MM-DD form: ${JSON.stringify(d)}`);
  }
  if (before(today, dob)) throw new RangeError(`today (${today}) is before the date of birth (${dob})`);
  if (last != null && (before(last, dob) || before(today, last))) {
    throw new RangeError(`Last screen (${last}) must be between the date of birth (${dob}) and today (${today})`);
  }

  const eligibleFrom = nthBirthday(dob, ROUTINE_START_AGE);
  const firstCallBy = nthBirthday(dob, FIRST_CALL_BY_AGE);
  const routineEndsBefore = nthBirthday(dob, ROUTINE_END_AGE);
  const status = (code: ScreeningStatusCode, dueDate: IsoDate | null, explanation: string): ScreeningStatus => ({
    code,
    label: SCREENING_STATUS_LABELS[code],
    dueDate,
    explanation,
    eligibleFrom,
    routineEndsBefore,
  });
  const lastText = last != null ? `last screened on ${formatLongDate(last)}` : 'never screened';

  // Deceased: only once the date of death has passed or is today.
  if (dateOfDeath != null && !before(today, dateOfDeath)) {
    return status('deceased', null, `Died on ${formatLongDate(dateOfDeath)}. No further screening.`);
  }
  // Ceased from the programme: no invitations; a ceasing dated in the future does not apply yet.
  if (ceased != null && !before(today, ceased.on)) {
    return status(
      'ceased',
      null,
      `Ceased from screening on ${formatLongDate(ceased.on)}: ${ceased.reason.trim().replace(/\.$/, '')}.`,
    );
  }
  // On or after the 71st birthday: no routine (or VHR) invitations.
  if (!before(today, routineEndsBefore)) {
    return status(
      'over_age_self_referral',
      null,
      `Routine invitations stopped at her 71st birthday (${formatLongDate(routineEndsBefore)}). She can self-refer every 3 years; ${lastText}.`,
    );
  }
  // Very high risk: annual, due now if never screened.
  if (veryHighRisk) {
    const due = last != null ? addMonths(last, VERY_HIGH_RISK_RECALL_MONTHS) : today;
    const overdue = before(due, today) ? ' (overdue)' : '';
    return status(
      'very_high_risk',
      due,
      `Very high risk: screened every 12 months until her 71st birthday; ${lastText}. Next test due ${formatLongDate(due)}${overdue}.`,
    );
  }
  // Under 50: first invitation comes between the 50th and 53rd birthdays.
  if (before(today, eligibleFrom)) {
    return status(
      'not_yet_eligible',
      firstCallBy,
      `Routine screening starts at her 50th birthday (${formatLongDate(eligibleFrom)}): first invitation between 50th and 53rd birthday, by ${formatLongDate(firstCallBy)}.`,
    );
  }

  // Routine cohort. A screen whose 36-month recall falls before the 50th birthday
  // (for example a screen at 45) does not move the first call: it is still due by the 53rd birthday.
  const recall = last != null ? addMonths(last, ROUTINE_RECALL_MONTHS) : null;
  const due = recall != null && !before(recall, eligibleFrom) ? recall : firstCallBy;
  if (!before(due, routineEndsBefore)) {
    return status(
      'eligible',
      null,
      `Last routine screen done (${lastText}): the next would fall after her 71st birthday (${formatLongDate(routineEndsBefore)}). After 71 she can self-refer every 3 years.`,
    );
  }
  const basis =
    recall === due && last != null
      ? `3 years after her last screen on ${formatLongDate(last)}`
      : `first routine invitation by her 53rd birthday; ${lastText}`;
  if (before(due, today)) return status('overdue', due, `Was due on ${formatLongDate(due)} (${basis}).`);
  if (!before(addMonths(today, DUE_SOON_MONTHS), due))
    return status('due', due, `Due by ${formatLongDate(due)} (${basis}).`);
  return status('eligible', due, `In the routine programme: next test due ${formatLongDate(due)} (${basis}).`);
}
