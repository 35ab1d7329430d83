/**
 * Uptake and coverage (issue 7, item 2): the definitions, written once. Pure: no I/O; the store counts women with
 * the same rules (src/store/uptake.ts passes these constants into its SQL).
 *
 * Uptake
 *   NHS Digital, Breast Screening Programme England (annual report, notes): "Uptake is the percentage of women
 *   invited for screening in the year, who were screened adequately within six months of invitation", and it
 *   "refers only to women who have received a routine invite to screening, it does not include short term recalls
 *   or GP and self-referrals". The NHS Data Dictionary calls the same figure "the uptake rate (also known as the
 *   acceptance rate) for Breast Screening" (WOMEN INVITED FOR ROUTINE SCREENING WITH TECHNICALLY ADEQUATE RESULT
 *   (PERCENTAGE OF INVITED)).
 *   Here: each routine invitation (an episode of type C first call or R routine recall; not E early recall, H/T
 *   higher risk, G GP referral or S self-referral) whose invitation date (the day the episode opened: the batch
 *   that offered her an appointment) falls in the period is one woman invited; she counts as screened when the
 *   episode's screening date is on or after the invitation and no later than six calendar months after it.
 *
 * Coverage
 *   NHS Digital (same report, glossary): "The percentage of women in the population who are eligible for screening
 *   at a particular point in time ..., who have had a test with a recorded result at least once within the
 *   screening round, i.e. in the previous three years. Currently coverage is best assessed using the 53-70 age
 *   group." Eligibility: "Women are eligible for screening when in the screening age range, unless they are ceased
 *   due to ... bilateral mastectomies"; women ceased by a best interests decision or by their own choice "are
 *   included in the eligible population".
 *   Here: on a date, the office's women aged 53 or more and under 71, alive, not ceased for bilateral mastectomy
 *   (on or before the date); covered when screened in the 36 months up to and including the date (after the same
 *   day 36 months before).
 *
 * Deprivation: postcode → LSOA (ONS postcode directory) → Index of Multiple Deprivation decile (MHCLG English
 * Indices of Deprivation 2019: "decile 1 is the most deprived 10% of LSOAs"), grouped in fifths: quintile 1 most
 * deprived (deciles 1–2) .. quintile 5 least deprived (deciles 9–10). A postcode not in the lookup is "unknown".
 *
 * Confidence intervals: the Wilson score interval for a proportion (Wilson 1927; the method the Public Health
 * England / OHID "Technical Guide: Confidence Intervals" recommends for proportions), 95 % (z = 1.959964).
 */
// Age bands are the KC62 return's (age at invitation for uptake, on the date for coverage), from age-bands.ts.
import { AGE_BANDS, ageBand } from './age-bands.js';
import { addMonths, ageOn, type IsoDate } from './dates.js';
// Coverage is KC63's: aged 53 to under 71, screened in the last 36 months (defined once, in kc62.ts).
import { COVERAGE_END_AGE, COVERAGE_MIN_AGE, COVERAGE_MONTHS } from './kc62.js';

/** Routine invitations: first call and routine recall (episode types). */
export const ROUTINE_INVITATION_TYPES = ['C', 'R'] as const;
/** She is counted as taking up her invitation when screened no later than this many months after it. */
export const UPTAKE_WINDOW_MONTHS = 6;
/** The ceasing reason that takes a woman out of the eligible population. */
export const COVERAGE_EXCLUDED_CEASING = 'bilateral_mastectomy';
/** z for a two-sided 95 % interval. */
export const Z_95 = 1.959964;

export const IMD_QUINTILES = [1, 2, 3, 4, 5] as const;
export type ImdQuintile = (typeof IMD_QUINTILES)[number];
export const IMD_QUINTILE_LABELS: Record<ImdQuintile | 'unknown', string> = {
  1: '1 (most deprived)',
  2: '2',
  3: '3',
  4: '4',
  5: '5 (least deprived)',
  unknown: 'Unknown (postcode not in the lookup)',
};

/** Decile 1..10 → quintile 1..5 (as the lsoa_imd table's generated column). */
export function quintileOfDecile(decile: number): ImdQuintile {
  if (!Number.isInteger(decile) || decile < 1 || decile > 10)
    throw new RangeError(`IMD decile must be 1..10: ${decile}`);
  return Math.ceil(decile / 2) as ImdQuintile;
}

/** The Wilson score interval for x of n (null when n is 0). */
export function wilsonInterval(x: number, n: number, z = Z_95): { lower: number; upper: number } | null {
  if (!Number.isInteger(x) || !Number.isInteger(n) || x < 0 || n < 0 || x > n)
    throw new RangeError(`Need whole numbers 0 ≤ x ≤ n: ${x} of ${n}`);
  if (n === 0) return null;
  const p = x / n;
  const z2 = z * z;
  const denominator = 1 + z2 / n;
  const centre = (p + z2 / (2 * n)) / denominator;
  const half = (z / denominator) * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n));
  // In exact arithmetic x = 0 gives a lower limit of 0 and x = n an upper limit of 1: keep them exact.
  return { lower: x === 0 ? 0 : Math.max(0, centre - half), upper: x === n ? 1 : Math.min(1, centre + half) };
}

/** A proportion with its 95 % interval: rate, lower and upper are fractions (0..1), null when nobody is counted. */
export interface Rate {
  numerator: number;
  denominator: number;
  rate: number | null;
  lower: number | null;
  upper: number | null;
}

export function rate(numerator: number, denominator: number): Rate {
  const ci = wilsonInterval(numerator, denominator);
  return {
    numerator,
    denominator,
    rate: denominator === 0 ? null : numerator / denominator,
    lower: ci?.lower ?? null,
    upper: ci?.upper ?? null,
  };
}

/** Screened within the uptake window of her invitation. */
export function takenUp(invitedOn: IsoDate, screenedOn: IsoDate | null): boolean {
  return screenedOn !== null && screenedOn >= invitedOn && screenedOn <= addMonths(invitedOn, UPTAKE_WINDOW_MONTHS);
}

/** Invitations on or after this date may still be taken up on `today`: their uptake is not final. */
export function uptakeFinalBefore(today: IsoDate): IsoDate {
  return addMonths(today, -UPTAKE_WINDOW_MONTHS);
}

export interface CoverageFacts {
  dateOfBirth: IsoDate;
  dateOfDeath: IsoDate | null;
  ceasedReason: string | null;
  ceasedOn: IsoDate | null;
  /** Every screening date she has (any episode). */
  screenedOn: readonly IsoDate[];
}

/** In the coverage population on `asOf`. */
export function inCoveragePopulation(f: CoverageFacts, asOf: IsoDate): boolean {
  if (f.dateOfBirth > asOf) return false;
  const age = ageOn(f.dateOfBirth, asOf);
  if (age < COVERAGE_MIN_AGE || age >= COVERAGE_END_AGE) return false;
  if (f.dateOfDeath !== null && f.dateOfDeath <= asOf) return false;
  return !(f.ceasedReason === COVERAGE_EXCLUDED_CEASING && f.ceasedOn !== null && f.ceasedOn <= asOf);
}

/** Screened after the same day COVERAGE_MONTHS before `asOf`, up to and including `asOf`. */
export function coveredOn(screenedOn: readonly IsoDate[], asOf: IsoDate): boolean {
  const after = addMonths(asOf, -COVERAGE_MONTHS);
  return screenedOn.some((d) => d > after && d <= asOf);
}

// ---------------------------------------------------------------------------------------------------------------
// Periods (a reporting year, reporting-year.ts, is one).

export interface Period {
  from: IsoDate;
  to: IsoDate;
  label: string;
}

/** Problems with a chosen period, in the design system's words, by field. */
export function periodProblems(from: IsoDate, to: IsoDate, today: IsoDate): Partial<Record<'from' | 'to', string>> {
  const problems: Partial<Record<'from' | 'to', string>> = {};
  if (to > today) problems.to = 'End date must be today or in the past';
  if (from > to) problems.from = 'Start date must be the same as or before the end date';
  else if (to > addMonths(from, 10 * 12)) problems.from = 'The period must be 10 years or shorter';
  return problems;
}

// ---------------------------------------------------------------------------------------------------------------
// Grouping counts into rows.

/** Counts for one group of women: the numerator (screened or covered) of the denominator (invited or eligible). */
export interface GroupCount {
  age: number;
  quintile: number | null;
  practice: string | null;
  numerator: number;
  denominator: number;
}

export interface RateRow extends Rate {
  key: string;
  label: string;
}

function sumBy<K extends string>(counts: readonly GroupCount[], keyOf: (c: GroupCount) => K) {
  const totals = new Map<K, { numerator: number; denominator: number }>();
  for (const c of counts) {
    const k = keyOf(c);
    const t = totals.get(k) ?? { numerator: 0, denominator: 0 };
    t.numerator += c.numerator;
    t.denominator += c.denominator;
    totals.set(k, t);
  }
  return totals;
}

/** All groups together. */
export function overall(counts: readonly GroupCount[]): Rate {
  const t = sumBy(counts, () => 'all').get('all') ?? { numerator: 0, denominator: 0 };
  return rate(t.numerator, t.denominator);
}

/** By age band, in band order; bands with nobody counted are left out. */
export function byAgeBand(counts: readonly GroupCount[]): RateRow[] {
  const totals = sumBy(counts, (c) => ageBand(c.age));
  return AGE_BANDS.filter((b) => totals.has(b.id)).map((b) => {
    const t = totals.get(b.id)!;
    return { key: b.id, label: b.label, ...rate(t.numerator, t.denominator) };
  });
}

/** By IMD quintile 1..5 then unknown; every row is shown, even with nobody in it. */
export function byQuintile(counts: readonly GroupCount[]): RateRow[] {
  const totals = sumBy(counts, (c) => (c.quintile === null ? 'unknown' : String(c.quintile)));
  return [...IMD_QUINTILES.map(String), 'unknown'].map((k) => {
    const t = totals.get(k) ?? { numerator: 0, denominator: 0 };
    return {
      key: k,
      label: IMD_QUINTILE_LABELS[k as keyof typeof IMD_QUINTILE_LABELS],
      ...rate(t.numerator, t.denominator),
    };
  });
}

/** The key used for women with no GP practice recorded. */
export const NO_PRACTICE = 'none';

/**
 * By GP practice, ranked: highest rate first (ties: more women first, then by name); practices with nobody counted
 * are left out. `names` gives each practice's name (ODS code → name).
 */
export function byPractice(counts: readonly GroupCount[], names: ReadonlyMap<string, string>): RateRow[] {
  const totals = sumBy(counts, (c) => c.practice ?? NO_PRACTICE);
  const rows: RateRow[] = [...totals].map(([k, t]) => ({
    key: k,
    label: k === NO_PRACTICE ? 'No practice recorded' : `${names.get(k) ?? 'Unknown practice'} (${k})`,
    ...rate(t.numerator, t.denominator),
  }));
  return rows.sort(
    (a, b) =>
      (b.rate ?? -1) - (a.rate ?? -1) || b.denominator - a.denominator || a.label.localeCompare(b.label, 'en-GB'),
  );
}

/** A rate (a fraction) as a percentage rounded to one decimal place, as pages and downloads show it: 0.70588 → 70.6. */
export function percentValue(value: number): number {
  return Number((value * 100).toFixed(1));
}

/** A rate as a percentage with one decimal place: 0.70588 → '70.6%'; null → 'No women'. */
export function formatPercent(value: number | null): string {
  return value === null ? 'No women' : `${percentValue(value).toFixed(1)}%`;
}

/** Uptake and coverage of the same groups side by side: groups in the uptake list's order, then any only in coverage. */
export function sideBySide(
  uptake: readonly RateRow[],
  coverage: readonly RateRow[],
): { key: string; label: string; uptake: RateRow | undefined; coverage: RateRow | undefined }[] {
  const keys = uptake.map((r) => r.key);
  for (const c of coverage) if (!keys.includes(c.key)) keys.push(c.key);
  return keys.map((key) => {
    const u = uptake.find((r) => r.key === key);
    const c = coverage.find((r) => r.key === key);
    return { key, label: (u ?? c)!.label, uptake: u, coverage: c };
  });
}
