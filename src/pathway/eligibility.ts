/**
 * Breast screening status and next test due date (NHS Breast Screening Programme, England), for the whole-person
 * record page. Pure: the facts come from her record, `today` from the caller.
 *
 * Routine screening
 * - From 49 years 8 months (the age a routine invitation batch can take her: invitation-selection's
 *   INVITABLE_FROM_MONTHS, so that her appointment falls around her 50th birthday) up to the day before her 71st
 *   birthday.
 * - First call: never screened, she is due by her 53rd birthday. A screen whose 3-year recall falls before
 *   49 years 8 months (one at 45, say) does not move that.
 * - Then every 3 years: her next test is due 36 months after her last screen. A recall that would fall on or after
 *   her 71st birthday is not made: her routine screening is done.
 * - From her 71st birthday she is not invited but may self-refer every 3 years: from 36 months after her last
 *   screen, or straight away if that has passed.
 *
 * Very high risk (VHR) surveillance ("Protocols for the surveillance of women at higher risk of developing breast
 * cancer", NHS BSP, with the eligibility criteria and screening protocols of April 2025)
 * - Annual: the next test is due 12 months after the last one; never screened, she is due from the day she joined
 *   surveillance (or now, if that is not recorded), and never before her group's start.
 * - The start depends on her risk group (VHR_PROTOCOLS): BRCA1, BRCA2 and PALB2 carriers at 25; other high-risk
 *   genes and the untested equivalent risk at 30; TP53 (Li-Fraumeni) at 20; ATM biallelic at 25; after radiotherapy
 *   to breast tissue at 25 (treated aged 10 to 19) or 30 (treated aged 20 to 35), and never sooner than 8 years after
 *   the first treatment.
 * - The test changes with her age on the day of the test: MRI; then MRI and mammography from 40; then mammography
 *   (with MRI if her breasts are dense) from 51. TP53 and ATM biallelic: MRI only, at every age.
 * - It ends at her 71st birthday; after that she may self-refer like anyone over 71.
 *
 * Ceasing (pathway/ceasing.ts)
 * - Ceased (informed choice, bilateral mastectomy, best interests, her attorney's decision, or a reason from an
 *   older system): not invited, with the reason and who can reinstate her. A ceasing dated after today does not
 *   apply yet.
 * - Withdrawal from very high risk screening stops annual surveillance only: she returns to routine 3-yearly
 *   screening in the routine ages.
 * - Reinstated: her status is what it would be had she never been ceased, and it says she was reinstated.
 *
 * Ages use nthBirthday (29 February births have their birthday on 1 March in a common year). Precedence: deceased,
 * ceased, 71 and over, very high risk, routine age bands.
 */
import { ceasingLabel, ceasingReasonFrom, CEASING_RULES, type CeasingReason } from './ceasing.js';
import {
  addMonths,
  addYears,
  ageOn,
  compareIsoDate,
  formatLongDate,
  isIsoDate,
  nthBirthday,
  type IsoDate,
} from './dates.js';

/** Routine invitations start at 49 years 8 months, so that her first appointment falls around her 50th birthday. */
export const INVITABLE_FROM_MONTHS = 49 * 12 + 8;
export const FIRST_CALL_BY_AGE = 53;
/** The routine cohort, and very high risk surveillance, end the day before this birthday. */
export const ROUTINE_END_AGE = 71;
export const ROUTINE_RECALL_MONTHS = 36;
/** Women of 71 and over may self-refer this often. */
export const SELF_REFERRAL_MONTHS = 36;
export const VERY_HIGH_RISK_RECALL_MONTHS = 12;
/** A due date this close (or closer) makes the status 'due' rather than 'eligible'. */
export const DUE_SOON_MONTHS = 6;

/** The tests of very high risk surveillance. */
export const VHR_TEST_LABELS = {
  mri: 'MRI',
  mri_and_mammography: 'MRI and mammography',
  mammography: 'Mammography (and MRI if her breasts are dense)',
} as const;
export type VhrTest = keyof typeof VHR_TEST_LABELS;

export const VHR_RISK_GROUPS = [
  'brca_palb2',
  'other_high_risk_gene',
  'untested_equivalent',
  'tp53',
  'atm_biallelic',
  'radiotherapy_aged_10_to_19',
  'radiotherapy_aged_20_to_35',
] as const;
export type VhrRiskGroup = (typeof VHR_RISK_GROUPS)[number];

export interface VhrProtocol {
  label: string;
  /**
   * The test by age: each band runs from its birthday to the next band's, the last to the 71st birthday. The first
   * band's age is when surveillance starts.
   */
  bands: readonly { fromAge: number; test: VhrTest }[];
  /** After radiotherapy to breast tissue: surveillance starts no sooner than this many years after the first one. */
  yearsAfterRadiotherapy?: number;
}

const MRI_THEN_MAMMOGRAPHY = (fromAge: number) =>
  [
    { fromAge, test: 'mri' },
    { fromAge: 40, test: 'mri_and_mammography' },
    { fromAge: 51, test: 'mammography' },
  ] as const;

/** Very high risk surveillance by risk group: when it starts and which test at which age. */
export const VHR_PROTOCOLS: Record<VhrRiskGroup, VhrProtocol> = {
  brca_palb2: { label: 'BRCA1, BRCA2 or PALB2 carrier', bands: MRI_THEN_MAMMOGRAPHY(25) },
  other_high_risk_gene: {
    label: 'Another high-risk gene (ATM c.7271T>G, CHEK2 biallelic, PTEN, STK11 or CDH1)',
    bands: MRI_THEN_MAMMOGRAPHY(30),
  },
  untested_equivalent: {
    label: 'Risk equivalent to a BRCA carrier, not tested (a first-degree relative carries BRCA1 or BRCA2)',
    bands: MRI_THEN_MAMMOGRAPHY(30),
  },
  tp53: { label: 'TP53 (Li-Fraumeni syndrome): no mammography', bands: [{ fromAge: 20, test: 'mri' }] },
  atm_biallelic: {
    label: 'ATM biallelic (ataxia telangiectasia): no mammography',
    bands: [{ fromAge: 25, test: 'mri' }],
  },
  radiotherapy_aged_10_to_19: {
    label: 'Radiotherapy to breast tissue when aged 10 to 19',
    bands: MRI_THEN_MAMMOGRAPHY(25),
    yearsAfterRadiotherapy: 8,
  },
  radiotherapy_aged_20_to_35: {
    label: 'Radiotherapy to breast tissue when aged 20 to 35',
    bands: MRI_THEN_MAMMOGRAPHY(30),
    yearsAfterRadiotherapy: 8,
  },
};

export function isVhrRiskGroup(value: unknown): value is VhrRiskGroup {
  return VHR_RISK_GROUPS.includes(value as VhrRiskGroup);
}

/** The test her group's protocol gives at an age (the band the age falls in); undefined before it starts. */
export function vhrTestAt(group: VhrRiskGroup, age: number): VhrTest | undefined {
  return VHR_PROTOCOLS[group].bands.findLast((band) => band.fromAge <= age)?.test;
}

/** What the record says of her very high risk surveillance (all optional: older records have only the flag). */
export interface SurveillanceFacts {
  /** The protocol's risk group, as a code (VHR_RISK_GROUPS); anything else is treated as not recorded. */
  riskGroup?: string | null;
  /** The day she joined surveillance (her referral was accepted). */
  since?: IsoDate | null;
  /** The day of her first radiotherapy to breast tissue (radiotherapy groups). */
  radiotherapyOn?: IsoDate | null;
}

export interface ScreeningFacts {
  dateOfBirth: IsoDate;
  dateOfDeath?: IsoDate | null;
  /** The ceasing in force: the reason as a code, a label, or an older system's text (see ceasingReasonFrom). */
  ceased?: { reason: string; on: IsoDate } | null;
  /** Her latest reinstatement: what she had been ceased for, who decided, why. Shown unless she was ceased since. */
  reinstated?: { on: IsoDate; ceasedFor: string; decidedBy: string; reason: string } | null;
  veryHighRisk?: boolean;
  surveillance?: SurveillanceFacts | null;
  lastScreenedOn?: IsoDate | null;
  /**
   * Early (short-term) recall set by her latest assessment outcome (final action EC): `months` after the outcome
   * `decidedOn`. It replaces the routine recall until she is screened again after it.
   */
  earlyRecall?: { decidedOn: IsoDate; months: number } | null;
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
  /** The next test due (routine or very high risk); null when she is not invited. */
  dueDate: IsoDate | null;
  /** In plain words for staff: why this status, from which facts. */
  explanation: string;
  /** 49 years 8 months: routine invitations from this day. */
  eligibleFrom: IsoDate;
  /** Her 53rd birthday: the first call is due by then. */
  firstCallBy: IsoDate;
  /** Her 71st birthday: routine invitations (and very high risk surveillance) stop on this day. */
  routineEndsBefore: IsoDate;
  /** 71 and over: the day from which she may next self-refer (today when she may now). */
  selfReferralFrom: IsoDate | null;
  /** On very high risk surveillance: her group, when it starts, and the test due next. */
  surveillance: {
    riskGroup: VhrRiskGroup | null;
    groupLabel: string;
    startsOn: IsoDate | null;
    test: VhrTest | null;
    testLabel: string | null;
  } | null;
  /** The ceasing in force (including a withdrawal from very high risk screening), with its rule when known. */
  ceasing: { reason: CeasingReason | null; label: string; on: IsoDate } | null;
  /** Her latest reinstatement, unless she was ceased since. */
  reinstatement: { on: IsoDate; ceasedFor: string; decidedBy: string; reason: string } | null;
}

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
const later = (a: IsoDate, b: IsoDate): IsoDate => (before(a, b) ? b : a);
const long = formatLongDate;
/** Free text as the end of a sentence: no surrounding space, no full stop of its own. */
const sentence = (text: string) => text.trim().replace(/\.$/, '');
const ordinal = (n: number) =>
  `${n}${n % 100 >= 11 && n % 100 <= 13 ? 'th' : (['th', 'st', 'nd', 'rd'][n % 10] ?? 'th')}`;

/**
 * Screening status on `today`. Throws a RangeError for a date that is not a real ISO date, for `today` before the
 * date of birth, or for a last screen before the date of birth or after today.
 */
export function screeningStatus(facts: ScreeningFacts, today: IsoDate): ScreeningStatus {
  const { dateOfBirth: dob, dateOfDeath, ceased, reinstated, lastScreenedOn: last } = facts;
  const { since, radiotherapyOn } = facts.surveillance ?? {};
  for (const d of [dob, today, dateOfDeath, ceased?.on, reinstated?.on, last, since, radiotherapyOn]) {
    if (d != null && !isIsoDate(d))
      throw new RangeError(`Not a calendar date in YYYY-MM-DD form: ${JSON.stringify(d)}`);
  }
  if (before(today, dob)) throw new RangeError(`today (${today}) is before the date of birth (${dob})`);
  if (last != null && (before(last, dob) || before(today, last))) {
    throw new RangeError(`Last screen (${last}) must be between the date of birth (${dob}) and today (${today})`);
  }

  const eligibleFrom = addMonths(dob, INVITABLE_FROM_MONTHS);
  const firstCallBy = nthBirthday(dob, FIRST_CALL_BY_AGE);
  const routineEndsBefore = nthBirthday(dob, ROUTINE_END_AGE);
  const ceasedNow = ceased != null && !before(today, ceased.on) ? ceased : null;
  const reason = ceasedNow ? (ceasingReasonFrom(ceasedNow.reason) ?? null) : null;
  const ceasing = ceasedNow ? { reason, label: ceasingLabel(ceasedNow.reason), on: ceasedNow.on } : null;
  // A reinstatement is shown unless a ceasing made since is in force (a withdrawal from very high risk screening
  // may stay in force under a ceasing that was reinstated: it is shown with it).
  const reinstatement =
    reinstated != null &&
    !before(today, reinstated.on) &&
    (!ceasedNow || (reason === 'very_high_risk_withdrawal' && !before(reinstated.on, ceasedNow.on)))
      ? { ...reinstated, ceasedFor: ceasingLabel(reinstated.ceasedFor) }
      : null;
  const lastText = last != null ? `last screened on ${long(last)}` : 'never screened';

  // Said before the status (a withdrawal from very high risk screening) and after it (a reinstatement).
  let lead = '';
  const after = reinstatement
    ? ` Reinstated on ${long(reinstatement.on)}, after being ceased (${reinstatement.ceasedFor}). Who decided: ${sentence(reinstatement.decidedBy)}. Why: ${sentence(reinstatement.reason)}.`
    : '';
  const status = (
    code: ScreeningStatusCode,
    dueDate: IsoDate | null,
    explanation: string,
    more: Partial<Pick<ScreeningStatus, 'selfReferralFrom' | 'surveillance'>> = {},
  ): ScreeningStatus => ({
    code,
    label: SCREENING_STATUS_LABELS[code],
    dueDate,
    explanation: `${lead}${explanation}${after}`,
    eligibleFrom,
    firstCallBy,
    routineEndsBefore,
    selfReferralFrom: null,
    surveillance: null,
    ceasing,
    reinstatement,
    ...more,
  });

  // Deceased: only once the date of death has passed or is today.
  if (dateOfDeath != null && !before(today, dateOfDeath)) {
    return status('deceased', null, `Died on ${long(dateOfDeath)}. No further screening.`);
  }
  // Ceased from the programme: not invited. A withdrawal from very high risk screening is not this (below).
  const withdrawnFromVhr = reason === 'very_high_risk_withdrawal';
  if (ceasing && !withdrawnFromVhr) {
    const reinstate = reason ? ` To reinstate her: ${CEASING_RULES[reason].reinstatedBy}.` : '';
    return status(
      'ceased',
      null,
      `Ceased from screening on ${long(ceasing.on)}: ${ceasing.label}. She is not invited.${reinstate}`,
    );
  }
  if (withdrawnFromVhr && ceasing)
    lead = `Withdrew from very high risk screening on ${long(ceasing.on)}: she is screened routinely instead. `;

  // On or after the 71st birthday: not invited; she may self-refer every 3 years.
  if (!before(today, routineEndsBefore)) {
    const next = last != null ? addMonths(last, SELF_REFERRAL_MONTHS) : today;
    const from = later(next, today);
    const when = from === today ? 'she can self-refer now' : `she can next self-refer from ${long(from)}`;
    return status(
      'over_age_self_referral',
      null,
      `Routine invitations stopped at her 71st birthday (${long(routineEndsBefore)}). She is not invited but can self-refer every 3 years: ${when} (${lastText}).`,
      { selfReferralFrom: from },
    );
  }

  if (facts.veryHighRisk && !withdrawnFromVhr) return veryHighRiskStatus(facts, today, lastText, status);

  // Under 49 years 8 months: her first invitation comes by her 53rd birthday.
  if (before(today, eligibleFrom)) {
    return status(
      'not_yet_eligible',
      firstCallBy,
      `Routine invitations start at 49 years 8 months (${long(eligibleFrom)}). Her first screen is due by her 53rd birthday (${long(firstCallBy)}).`,
    );
  }

  // Routine cohort. A screen whose 36-month recall falls before 49 years 8 months (a screen at 45, say) does not
  // move the first call: it is still due by the 53rd birthday.
  const early = earlyRecallDue(facts);
  if (early) {
    const basis = `early recall ${facts.earlyRecall!.months} months after her assessment on ${long(facts.earlyRecall!.decidedOn)}`;
    if (before(early, today)) return status('overdue', early, `Was due on ${long(early)} (${basis}).`);
    return status('due', early, `Due on ${long(early)} (${basis}).`);
  }
  const recall = last != null ? addMonths(last, ROUTINE_RECALL_MONTHS) : null;
  const due = recall != null && !before(recall, eligibleFrom) ? recall : firstCallBy;
  if (!before(due, routineEndsBefore)) {
    return status(
      'eligible',
      null,
      `Routine screening done (${lastText}): the next 3-yearly screen would fall after her 71st birthday (${long(routineEndsBefore)}), so she is not invited again. From 71 she can self-refer every 3 years.`,
    );
  }
  const basis =
    recall === due && last != null
      ? `3 years after her last screen on ${long(last)}`
      : `first screen, due by her 53rd birthday; ${lastText}`;
  if (before(due, today)) return status('overdue', due, `Was due on ${long(due)} (${basis}).`);
  if (!before(addMonths(today, DUE_SOON_MONTHS), due)) return status('due', due, `Due by ${long(due)} (${basis}).`);
  return status('eligible', due, `In routine screening: next screen due ${long(due)} (${basis}).`);
}

/** Her early recall date, while it stands: set by an assessment after her last screen, and before her 71st birthday. */
function earlyRecallDue(facts: ScreeningFacts): IsoDate | null {
  const early = facts.earlyRecall;
  if (!early) return null;
  if (!isIsoDate(early.decidedOn) || !Number.isInteger(early.months) || early.months < 1)
    throw new RangeError(`Not an early recall: ${JSON.stringify(early)}`);
  // Screened again since the assessment: that screen's own recall applies.
  if (facts.lastScreenedOn != null && before(early.decidedOn, facts.lastScreenedOn)) return null;
  const due = addMonths(early.decidedOn, early.months);
  return before(due, nthBirthday(facts.dateOfBirth, ROUTINE_END_AGE)) ? due : null;
}

/** Annual surveillance by her risk group's protocol, before her 71st birthday. */
function veryHighRiskStatus(
  facts: ScreeningFacts,
  today: IsoDate,
  lastText: string,
  status: (
    code: ScreeningStatusCode,
    dueDate: IsoDate | null,
    explanation: string,
    more: Partial<Pick<ScreeningStatus, 'surveillance'>>,
  ) => ScreeningStatus,
): ScreeningStatus {
  const { dateOfBirth: dob, lastScreenedOn: last } = facts;
  const routineEndsBefore = nthBirthday(dob, ROUTINE_END_AGE);
  const recorded = facts.surveillance?.riskGroup;
  const group = isVhrRiskGroup(recorded) ? recorded : null;
  const protocol = group ? VHR_PROTOCOLS[group] : undefined;
  const startAge = protocol?.bands[0]?.fromAge;
  const radiotherapyOn = facts.surveillance?.radiotherapyOn ?? null;

  // When her surveillance starts: her group's birthday, and for radiotherapy no sooner than 8 years after it.
  let startsOn: IsoDate | null = startAge !== undefined ? nthBirthday(dob, startAge) : null;
  let startText = startAge !== undefined ? `her ${ordinal(startAge)} birthday` : '';
  if (startsOn && protocol?.yearsAfterRadiotherapy && radiotherapyOn) {
    const afterTreatment = addYears(radiotherapyOn, protocol.yearsAfterRadiotherapy);
    if (before(startsOn, afterTreatment)) {
      startsOn = afterTreatment;
      startText = `${protocol.yearsAfterRadiotherapy} years after her radiotherapy on ${long(radiotherapyOn)}`;
    }
  }

  const next = last != null ? addMonths(last, VERY_HIGH_RISK_RECALL_MONTHS) : (facts.surveillance?.since ?? today);
  const due = startsOn ? later(next, startsOn) : next;
  const groupText = protocol ? ` (${protocol.label})` : '';
  const unknownGroup = protocol
    ? ''
    : ' Her risk group is not recorded: check her referral for when surveillance starts and which test she needs.';
  const surveillance = (test: VhrTest | null) => ({
    riskGroup: group,
    groupLabel: protocol?.label ?? 'Risk group not recorded',
    startsOn,
    test,
    testLabel: test ? VHR_TEST_LABELS[test] : null,
  });

  if (!before(due, routineEndsBefore)) {
    return status(
      'very_high_risk',
      null,
      `Very high risk${groupText}: annual surveillance ends at her 71st birthday (${long(routineEndsBefore)}) and the next test would fall after it (${lastText}). From 71 she can self-refer every 3 years.${unknownGroup}`,
      { surveillance: surveillance(null) },
    );
  }
  // Her age on the day of the test (today if it is overdue) picks the test.
  const test = group ? (vhrTestAt(group, ageOn(dob, later(due, today))) ?? null) : null;
  const testText = test ? `: ${VHR_TEST_LABELS[test]}` : '';
  const overdue = before(due, today) ? ' (overdue)' : '';
  const starts = startsOn && before(today, startsOn) ? ` Surveillance starts on ${long(startsOn)}, ${startText}.` : '';
  return status(
    'very_high_risk',
    due,
    `Very high risk${groupText}: screened every 12 months until her 71st birthday; ${lastText}.${starts} Next test due ${long(due)}${overdue}${testText}.${unknownGroup}`,
    { surveillance: surveillance(test) },
  );
}
