/**
 * Key performance indicators of the NHS Breast Screening Programme (NHSBSP), measured against its standards: what
 * each one counts (the official wording quoted), red/amber/green against the thresholds in
 * config/nhsbsp-standards.json (checked here), confidence intervals, the standardised detection ratio's expected
 * number, and the before/after comparison behind intervention tracking. No I/O: src/store/kpis.ts counts, this
 * module decides.
 */
import { wilsonInterval, Z_95 } from './uptake.js';
import { z } from 'zod';
import { addDays, addMonths, compareIsoDate, type IsoDate } from './dates.js';

// --- The indicators --------------------------------------------------------------------------------------------

export const KPI_IDS = [
  'uptake',
  'coverage',
  'round_length',
  'normal_results_14_days',
  'assessment_21_days',
  'referral_first',
  'referral_repeat',
  'cancer_detection',
  'sdr',
] as const;
export type KpiId = (typeof KPI_IDS)[number];

/** How a value is shown: a percentage, a rate per 1,000 women screened, or a ratio. */
export type KpiUnit = 'percent' | 'per_1000' | 'ratio';

export interface KpiDefinition {
  id: KpiId;
  title: string;
  unit: KpiUnit;
  /** The standard's words (or the programme's definition), quoted. */
  wording: string;
  numerator: string;
  denominator: string;
  /** How the hub counts it from the live tables, where that needs saying. */
  howCounted: string;
}

export const KPI_DEFINITIONS: Record<KpiId, KpiDefinition> = {
  // NHSBSP standards, uptake: "The proportion of eligible women invited for routine screening who are screened
  // within 6 months of their invitation."
  uptake: {
    id: 'uptake',
    title: 'Uptake',
    unit: 'percent',
    wording:
      'The proportion of eligible women invited for routine screening who are screened within 6 months of their invitation.',
    numerator: 'women invited in the year who were screened within 6 months of the invitation',
    denominator: 'women aged 50 to under 71 invited for routine screening (first call or routine recall) in the year',
    howCounted:
      'An invitation is a first-call (C) or routine-recall (R) episode opened in the reporting year; her age is taken on the day it opened. An invitation whose 6 months have not yet passed counts only once she has been screened.',
  },
  // BSP-S01 (2017) coverage: "The proportion of women eligible for screening who have had a test with a recorded
  // result at least once in the previous 36 months." Numerator: "number of eligible women aged 53 to 70 registered
  // with a GP with a screening test result recorded in the past 36 months"; "Women who are ineligible for screening
  // due to having had a bilateral mastectomy will be removed from the numerator and denominator."
  coverage: {
    id: 'coverage',
    title: 'Coverage',
    unit: 'percent',
    wording:
      'The proportion of women eligible for screening who have had a test with a recorded result at least once in the previous 36 months.',
    numerator: 'eligible women aged 53 to under 71 registered with a GP, screened in the 36 months before the date',
    denominator:
      'eligible women aged 53 to under 71 registered with a GP, alive on the date, without a bilateral mastectomy',
    howCounted:
      'Taken at 31 March (the end of the reporting year), or today for the year under way, over the women the office holds today.',
  },
  // Round length: "the proportion of women whose first offered appointment is within 36 months of their previous
  // screen".
  round_length: {
    id: 'round_length',
    title: 'Round length',
    unit: 'percent',
    wording: 'The proportion of women whose first offered appointment is within 36 months of their previous screen.',
    numerator: 'routine-recall women whose first offered appointment was within 36 months of her previous screen',
    denominator: 'routine-recall (R) episodes with a previous screen whose first offered appointment is in the year',
    howCounted:
      'The first offered appointment is the earliest screening appointment booked in the episode, whatever became of it (kept, cancelled, missed or moved).',
  },
  // Time from screening to normal result: a woman with a normal result is sent her result "within 14 days (2 weeks)
  // of screening".
  normal_results_14_days: {
    id: 'normal_results_14_days',
    title: 'Normal results within 14 days',
    unit: 'percent',
    wording: 'The proportion of women with a normal result who are sent their result within 14 days of screening.',
    numerator: 'women screened in the year with a normal result whose result letter was sent within 14 days',
    denominator: 'women screened in the year whose result was normal (routine recall)',
    howCounted:
      'Counted from the day she was screened to the day (in England) her result letter was sent. A letter not yet sent counts against the standard once the 14 days are over; until then she is left out.',
  },
  // Time to assessment: a woman recalled for assessment is "offered an assessment appointment within 21 days
  // (3 weeks) of screening" (issue 7; the 2017 standard said "attend ... within 3 weeks").
  assessment_21_days: {
    id: 'assessment_21_days',
    title: 'Assessment offered within 21 days',
    unit: 'percent',
    wording:
      'The proportion of women referred for assessment who are offered an assessment appointment within 3 weeks (21 days) of screening.',
    numerator: 'women recalled for assessment whose first assessment appointment is within 21 days of screening',
    denominator: 'women screened in the year whose result was recall to assessment',
    howCounted:
      'The first assessment appointment is the earliest appointment at an assessment clinic in her episode, whatever became of it. A woman with none counts against the standard once the 21 days are over; until then she is left out.',
  },
  // Referral to assessment: the proportion of women screened who are referred (recalled) for assessment, at the
  // prevalent (first) screen and at incident (repeat) screens.
  referral_first: {
    id: 'referral_first',
    title: 'Referral to assessment, first screens',
    unit: 'percent',
    wording: 'The proportion of women screened for the first time (prevalent screen) who are referred for assessment.',
    numerator: 'women at their first screen who were recalled for assessment',
    denominator: 'women screened in the year with no earlier screen on record',
    howCounted:
      'One count per screening episode: referred when any exam of the episode had the result recall to assessment. Very high risk episodes (H, T) are left out.',
  },
  referral_repeat: {
    id: 'referral_repeat',
    title: 'Referral to assessment, repeat screens',
    unit: 'percent',
    wording:
      'The proportion of women screened who had been screened before (incident screens) who are referred for assessment.',
    numerator: 'women at a repeat screen who were recalled for assessment',
    denominator: 'women screened in the year with an earlier screen on record',
    howCounted: 'As for first screens.',
  },
  // KC62 Part 3 and the national statistics: cancers detected per 1,000 women screened.
  cancer_detection: {
    id: 'cancer_detection',
    title: 'Cancer detection rate',
    unit: 'per_1000',
    wording: 'Cancers detected (invasive, micro-invasive and non-invasive) per 1,000 women screened.',
    numerator: 'women screened in the year whose assessment outcome is a cancer',
    denominator: 'women screened in the year',
    howCounted: 'The current (not superseded) assessment outcome of the episode. Very high risk episodes are left out.',
  },
  // Age standardised detection ratios (GOV.UK): "The standardised detection ratio (SDR) for any given breast
  // screening service is the ratio of the observed number of invasive cancers to the expected number."
  sdr: {
    id: 'sdr',
    title: 'Standardised detection ratio (invasive cancers)',
    unit: 'ratio',
    wording:
      'The ratio of the observed number of invasive cancers to the expected number, the expected number coming from age-specific rates at prevalent and incident screens.',
    numerator: 'invasive cancers detected in women screened in the year (observed)',
    denominator:
      'the sum over the women screened of the expected rate for her age band and first or repeat screen (expected)',
    howCounted:
      'Her age is taken on the day she was screened. Micro-invasive cancers are not counted as invasive here. The expected rates are in config/nhsbsp-standards.json.',
  },
};

// --- The standards file ------------------------------------------------------------------------------------------

export type Direction = 'higher' | 'lower';

export interface Standard {
  direction: Direction;
  /** Absent where the programme sets no threshold (the crude cancer detection rate). */
  acceptable?: number | undefined;
  achievable?: number | undefined;
  /** True when the figure could not be confirmed against the current published standard. */
  check: boolean;
  source: string;
}

export interface SdrBand {
  band: string;
  fromAge: number;
  toAge: number;
  /** Expected invasive cancers per 1,000 women screened. */
  prevalent: number;
  incident: number;
  check: boolean;
}

export interface NhsbspStandards {
  standards: Record<KpiId, Standard>;
  nationalAverages: { year: string; source: string; values: Partial<Record<KpiId, number>> };
  sdrExpectedRates: { unit: string; source: string; bands: SdrBand[] };
}

const standardSchema = z
  .object({
    direction: z.enum(['higher', 'lower'], { message: 'must be "higher" or "lower"' }),
    acceptable: z.number({ message: 'must be a number' }).nonnegative('must not be negative').optional(),
    achievable: z.number({ message: 'must be a number' }).nonnegative('must not be negative').optional(),
    check: z.boolean({ message: 'must be true or false' }),
    source: z
      .string({ message: 'must say where the figures come from' })
      .min(10, 'must say where the figures come from'),
  })
  .strict()
  .superRefine((s, ctx) => {
    if ((s.acceptable === undefined) !== (s.achievable === undefined))
      ctx.addIssue({ code: 'custom', message: 'give both "acceptable" and "achievable", or neither' });
    else if (s.acceptable !== undefined && s.achievable !== undefined) {
      if (s.direction === 'higher' && s.achievable < s.acceptable)
        ctx.addIssue({
          code: 'custom',
          path: ['achievable'],
          message: `must be at least "acceptable" (${s.acceptable}) when higher is better`,
        });
      if (s.direction === 'lower' && s.achievable > s.acceptable)
        ctx.addIssue({
          code: 'custom',
          path: ['achievable'],
          message: `must be at most "acceptable" (${s.acceptable}) when lower is better`,
        });
    }
  });

const bandSchema = z
  .object({
    band: z.string().min(1, 'must name the band'),
    fromAge: z.number().int('must be a whole number of years').min(0),
    toAge: z.number().int('must be a whole number of years').min(0),
    prevalent: z.number({ message: 'must be a number' }).positive('must be more than 0'),
    incident: z.number({ message: 'must be a number' }).positive('must be more than 0'),
    check: z.boolean({ message: 'must be true or false' }),
  })
  .strict();

const configSchema = z
  .object({
    about: z.string().optional(),
    standards: z
      .object(Object.fromEntries(KPI_IDS.map((id) => [id, standardSchema])) as Record<KpiId, typeof standardSchema>)
      .strict(),
    nationalAverages: z
      .object({
        year: z.string().regex(/^\d{4}-\d{2}$/, 'must be a reporting year such as 2024-25'),
        source: z.string().min(10, 'must say where the figures come from'),
        values: z.object(Object.fromEntries(KPI_IDS.map((id) => [id, z.number().nonnegative().optional()]))).strict(),
      })
      .strict(),
    sdrExpectedRates: z
      .object({
        unit: z.string(),
        source: z.string().min(10, 'must say where the figures come from'),
        bands: z.array(bandSchema).min(1, 'needs at least one age band'),
      })
      .strict()
      .superRefine((rates, ctx) => {
        const bands = [...rates.bands].sort((a, b) => a.fromAge - b.fromAge);
        bands.forEach((b, i) => {
          if (b.toAge < b.fromAge)
            ctx.addIssue({ code: 'custom', path: ['bands'], message: `band "${b.band}": toAge is before fromAge` });
          const next = bands[i + 1];
          if (next && next.fromAge !== b.toAge + 1)
            ctx.addIssue({
              code: 'custom',
              path: ['bands'],
              message: `bands "${b.band}" and "${next.band}" must meet with no gap or overlap (${b.toAge} then ${next.fromAge})`,
            });
        });
        if (bands[0] && bands[0].fromAge !== 0)
          ctx.addIssue({ code: 'custom', path: ['bands'], message: 'the first band must start at age 0' });
      }),
  })
  .strict();

export class NhsbspStandardsError extends Error {
  constructor(
    where: string,
    readonly problems: string[],
  ) {
    super(`NHSBSP standards in ${where} are not valid: ${problems.join('; ')}`);
    this.name = 'NhsbspStandardsError';
  }
}

/** Checks a parsed standards file (every KPI needs an entry); throws NhsbspStandardsError naming each bad key. */
export function parseStandards(json: unknown, where: string): NhsbspStandards {
  const result = configSchema.safeParse(json);
  if (result.success) {
    const data = result.data;
    return {
      standards: data.standards,
      nationalAverages: data.nationalAverages,
      sdrExpectedRates: {
        ...data.sdrExpectedRates,
        bands: [...data.sdrExpectedRates.bands].sort((a, b) => a.fromAge - b.fromAge),
      },
    };
  }
  const problems = result.error.issues.flatMap((issue) => {
    const path = issue.path.map(String).join('.');
    if (issue.code === 'unrecognized_keys')
      return issue.keys.map(
        (k) =>
          `${path ? path + '.' : ''}${k}: not a known setting${path === 'standards' ? ` (expected one of ${KPI_IDS.join(', ')})` : ''}`,
      );
    if (issue.code === 'invalid_type' && issue.input === undefined) return [`${path}: missing`];
    return [`${path || '(the file)'}: ${issue.message}`];
  });
  throw new NhsbspStandardsError(where, problems);
}

// --- Red, amber, green -------------------------------------------------------------------------------------------

export type Rag = 'red' | 'amber' | 'green' | 'none';

export const RAG_LABELS: Record<Rag, string> = {
  red: 'Below acceptable',
  amber: 'Acceptable',
  green: 'Achievable',
  none: 'No standard',
};

/** Whether a value meets a threshold: at or above it when higher is better, below it when lower is better. */
export function meets(value: number, threshold: number, direction: Direction): boolean {
  return direction === 'higher' ? value >= threshold : value < threshold;
}

/**
 * Red when short of the acceptable level, amber when it meets acceptable but not achievable, green when it meets
 * achievable; 'none' when there is no value or the standard sets no thresholds.
 */
export function ragStatus(value: number | null, standard: Standard): Rag {
  if (value === null || standard.acceptable === undefined || standard.achievable === undefined) return 'none';
  if (!meets(value, standard.acceptable, standard.direction)) return 'red';
  if (!meets(value, standard.achievable, standard.direction)) return 'amber';
  return 'green';
}

/** '≥ 70 %' or '< 9 %': a threshold as people read it. */
export function thresholdText(threshold: number | undefined, direction: Direction, unit: KpiUnit): string {
  if (threshold === undefined) return 'None set';
  return `${direction === 'higher' ? '≥' : '<'} ${formatValue(threshold, unit)}`;
}

/** Decimal places a value is shown with: on the dashboard and in its download alike. */
export const VALUE_DECIMALS: Record<KpiUnit, number> = { percent: 1, per_1000: 1, ratio: 2 };

/** A value rounded as it is shown (null stays null). */
export function roundValue(value: number | null, unit: KpiUnit): number | null {
  return value === null || !Number.isFinite(value) ? null : Number(value.toFixed(VALUE_DECIMALS[unit]));
}

export function formatValue(value: number | null, unit: KpiUnit): string {
  if (value === null || !Number.isFinite(value)) return 'No data';
  const text = value.toFixed(VALUE_DECIMALS[unit]);
  if (unit === 'percent') return `${text} %`;
  if (unit === 'per_1000') return `${text} per 1,000`;
  return text;
}

// --- Proportions and their confidence intervals ------------------------------------------------------------------

export interface Interval {
  lower: number;
  upper: number;
}

/**
 * Confidence interval of an observed ÷ expected ratio with a Poisson count (Byar's approximation, as used for
 * standardised ratios); null without an expected number.
 */
export function ratioInterval(observed: number, expected: number, z = Z_95): Interval | null {
  if (expected <= 0) return null;
  const lower =
    observed === 0 ? 0 : (observed * (1 - 1 / (9 * observed) - z / (3 * Math.sqrt(observed))) ** 3) / expected;
  const o1 = observed + 1;
  const upper = (o1 * (1 - 1 / (9 * o1) + z / (3 * Math.sqrt(o1))) ** 3) / expected;
  return { lower, upper };
}

// --- The standardised detection ratio ----------------------------------------------------------------------------

/** Women screened of one age (on the day), at a first (prevalent) or repeat (incident) screen. */
export interface ScreenedGroup {
  age: number;
  first: boolean;
  count: number;
}

export function sdrBandOf(age: number, bands: readonly SdrBand[]): SdrBand | undefined {
  return bands.find((b) => age >= b.fromAge && age <= b.toAge);
}

/** The expected number of invasive cancers: Σ women × (rate per 1,000 for her band and screen) ÷ 1,000. */
export function expectedInvasive(groups: readonly ScreenedGroup[], bands: readonly SdrBand[]): number {
  let expected = 0;
  for (const g of groups) {
    const band = sdrBandOf(g.age, bands);
    if (!band) throw new Error(`No SDR age band for age ${g.age}`);
    expected += (g.count * (g.first ? band.prevalent : band.incident)) / 1000;
  }
  return expected;
}

// --- One KPI's figure ------------------------------------------------------------------------------------------------

/** What the store counts for one KPI and one year. */
export interface KpiCount {
  numerator: number;
  /** For the SDR, the expected number of invasive cancers. */
  denominator: number;
}

export interface KpiFigure extends KpiCount {
  id: KpiId;
  /** In the KPI's unit (percent, per 1,000, ratio); null without a denominator. */
  value: number | null;
  /** 95 % confidence interval in the same unit. */
  interval: Interval | null;
  rag: Rag;
}

export function kpiFigure(id: KpiId, count: KpiCount, standard: Standard): KpiFigure {
  const unit = KPI_DEFINITIONS[id].unit;
  const { numerator, denominator } = count;
  let value: number | null = null;
  let interval: Interval | null = null;
  if (denominator > 0) {
    if (unit === 'ratio') {
      value = numerator / denominator;
      interval = ratioInterval(numerator, denominator);
    } else {
      const scale = unit === 'percent' ? 100 : 1000;
      value = (numerator / denominator) * scale;
      const w = wilsonInterval(numerator, denominator);
      interval = w && { lower: w.lower * scale, upper: w.upper * scale };
    }
  }
  return { id, numerator, denominator, value, interval, rag: ragStatus(value, standard) };
}

// --- Interventions: before and after ---------------------------------------------------------------------------------

/** Months before and after an intervention's start compared. */
export const INTERVENTION_WINDOW_MONTHS = 12;

export interface Window {
  from: IsoDate;
  to: IsoDate;
}

/**
 * The invitation windows compared: the 12 months before the start, and from the start to the earliest of 12 months
 * on, its end, and the last day whose invitations have had their 6 months (asOf less 6 months); null after-window
 * while none of that has passed.
 */
export function interventionWindows(
  startsOn: IsoDate,
  endsOn: IsoDate | null,
  asOf: IsoDate,
  months = INTERVENTION_WINDOW_MONTHS,
): { before: Window; after: Window | null } {
  const before = { from: addMonths(startsOn, -months), to: addDays(startsOn, -1) };
  const candidates = [addDays(addMonths(startsOn, months), -1), addMonths(asOf, -6)];
  if (endsOn) candidates.push(endsOn);
  const to = candidates.sort(compareIsoDate)[0]!;
  return { before, after: compareIsoDate(to, startsOn) < 0 ? null : { from: startsOn, to } };
}

export interface UptakeCount {
  invited: number;
  screened: number;
}

export interface BeforeAfter {
  /** Uptake (percent) before and after. */
  beforePct: number | null;
  afterPct: number | null;
  /** after − before, in percentage points, with its 95 % interval. */
  change: number | null;
  changeInterval: Interval | null;
}

const proportionVariance = (c: UptakeCount) => {
  const p = c.screened / c.invited;
  return (p * (1 - p)) / c.invited;
};

/** Uptake before and after (percent) and the change in percentage points (normal approximation). */
export function beforeAfter(before: UptakeCount, after: UptakeCount | null): BeforeAfter {
  const pct = (c: UptakeCount | null) => (c && c.invited > 0 ? (100 * c.screened) / c.invited : null);
  const b = pct(before);
  const a = pct(after);
  if (b === null || a === null || !after) return { beforePct: b, afterPct: a, change: null, changeInterval: null };
  const se = 100 * Math.sqrt(proportionVariance(before) + proportionVariance(after));
  const change = a - b;
  return {
    beforePct: b,
    afterPct: a,
    change,
    changeInterval: { lower: change - Z_95 * se, upper: change + Z_95 * se },
  };
}

/**
 * The practice's change less the comparison practices' change (a difference in differences, in percentage points),
 * with its 95 % interval from the four proportions' variances; null when any of the four has no invitations.
 */
export function differenceInDifferences(
  practice: { before: UptakeCount; after: UptakeCount | null },
  comparison: { before: UptakeCount; after: UptakeCount | null },
): { difference: number; interval: Interval } | null {
  const parts = [practice.before, practice.after, comparison.before, comparison.after];
  if (parts.some((c) => !c || c.invited === 0)) return null;
  const [pb, pa, cb, ca] = parts as UptakeCount[];
  const p = (c: UptakeCount) => (100 * c.screened) / c.invited;
  const difference = p(pa!) - p(pb!) - (p(ca!) - p(cb!));
  const se = 100 * Math.sqrt(parts.reduce((s, c) => s + proportionVariance(c!), 0));
  return { difference, interval: { lower: difference - Z_95 * se, upper: difference + Z_95 * se } };
}

// --- Intervention form ---------------------------------------------------------------------------------------------

export interface InterventionInput {
  label: string;
  description: string;
  gpPracticeCode: string | null;
  startsOn: IsoDate;
  endsOn: IsoDate | null;
}
