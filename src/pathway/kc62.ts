/**
 * KC62 and KC63: the NHS Breast Screening Programme central returns, worked out from per-episode facts. Pure: no
 * I/O. src/store/kc62.ts loads the facts (one SQL for a reporting year and office) and this module says which cells
 * of the return each episode counts in; the page, the downloads and the drill-down lists all use episodeCells, so a
 * number and the list behind it can never disagree.
 *
 * NHS Data Dictionary, NHS Breast Screening Programme Central Return Data Set (KC62):
 *   "The NHS Breast Screening Programme Central Return Data Set (KC62) requires information on women invited for
 *   Breast Screening, the outcome of the Breast Screening and further information on each cancer detected."
 *   "Women are included in the NHS Breast Screening Programme Central Return Data Set (KC62) only if the test date
 *   offered or SCREENING TEST DATE was within the review period. All Screening Tests taking place within the
 *   REPORTING PERIOD are counted. [...] Women who are referred directly for a Screening Test (rather than an
 *   invitation as part of a Screening Programme) are also included if the SCREENING TEST DATE is within the
 *   REPORTING PERIOD."
 * The return has tables A, B, C1, C2, D, E, F1, F2 and T (ISB 1597, Breast Screening Programme Dataset (KC63 and
 * KC62)); the Data Dictionary lists each table's parts (KC62 A 1 .. A 3 and so on) without their wording, so where
 * this module had to choose, the choice is written next to it and marked CHOICE.
 *
 * KC63 (coverage): "the percentage of eligible women aged 53 to 70 [...] screened within the last three years" at
 * 31 March (NHS Digital, Breast Screening Programme, England: "had a test with a recorded result within the last
 * three years").
 */
import { AGE_BANDS, ageBand, BAND_KEYS, bandLabels, type AgeBand, type BandKey } from './age-bands.js';
import { addMonths, addYears, compareIsoDate, type IsoDate } from './dates.js';
import { reportingYear } from './reporting-year.js';

// ---------------------------------------------------------------------------------------------------------------
// Tables

export const KC62_TABLES = ['A', 'B', 'C1', 'C2', 'D', 'E', 'F1', 'F2', 'T'] as const;
export type Kc62Table = (typeof KC62_TABLES)[number];
/** The tables of women invited (Part 1 has an invited column); F1 and F2 are referrals, T is all of them. */
export const INVITED_TABLES: readonly Kc62Table[] = ['A', 'B', 'C1', 'C2', 'D', 'E'];

export const TABLE_TITLES: Record<Kc62Table, string> = {
  A: 'Table A: first invitation (first call)',
  B: 'Table B: routine invitation, not screened before (previous non-attenders)',
  C1: 'Table C1: routine invitation, previously screened, last screen within 5 years',
  C2: 'Table C2: routine invitation, previously screened, last screen over 5 years ago',
  D: 'Table D: early recall',
  E: 'Table E: higher risk',
  F1: 'Table F1: self-referral',
  F2: 'Table F2: GP referral',
  T: 'Table T: all women (total of A to F2)',
};

export type EpisodeType = 'C' | 'R' | 'E' | 'H' | 'T' | 'G' | 'S';

/** How long ago her last screen was, at the relevant date: the C1/C2 split. */
export type PreviousScreen = 'none' | 'within5' | 'over5';
export const PREVIOUS_SCREEN_YEARS = 5;

/**
 * CHOICE: "within 5 years" means her latest earlier screen was on or after the relevant date less 5 years
 * (calendar years, a 29 February clamped to 28 February). The SQL in src/store/kc62.ts applies the same rule with
 * PREVIOUS_SCREEN_YEARS.
 */
export function previousScreen(previousScreenedOn: IsoDate | null, relevantDate: IsoDate): PreviousScreen {
  if (previousScreenedOn === null) return 'none';
  return compareIsoDate(previousScreenedOn, addYears(relevantDate, -PREVIOUS_SCREEN_YEARS)) >= 0 ? 'within5' : 'over5';
}

/**
 * The table an episode belongs to, from its type and her screening history (CHOICE: the mapping from this hub's
 * episode types):
 *   C first call → A; R routine recall → B when she has never been screened, C1 when her last screen was within
 *   5 years, C2 when over; E early recall → D; H and T (higher risk, very high risk) → E; S self-referral → F1;
 *   G GP referral → F2. Every episode is also in T.
 * A first-call episode stays in A even if she has an earlier screen (e.g. a self-referral before her first call).
 */
export function tableOf(type: EpisodeType, previous: PreviousScreen): Exclude<Kc62Table, 'T'> {
  switch (type) {
    case 'C':
      return 'A';
    case 'R':
      return previous === 'none' ? 'B' : previous === 'within5' ? 'C1' : 'C2';
    case 'E':
      return 'D';
    case 'H':
    case 'T':
      return 'E';
    case 'S':
      return 'F1';
    case 'G':
      return 'F2';
  }
}

/** Self- and GP referrals are counted by screening date; invited women by the first test date offered. */
export function isReferral(type: EpisodeType): boolean {
  return type === 'S' || type === 'G';
}

/**
 * CHOICE, the relevant date (for the year and for her age): for an invited woman the first test date offered (the
 * earliest screening appointment of the episode; with none, the day the episode opened, i.e. she was invited
 * without a booked time); for a referral the screening test date. "Screened" means screened in that episode,
 * whenever (a woman invited on 20 March and screened on 10 April counts in the year of her invitation).
 */
export const relevantDateRule =
  'Invited women: the first test date offered (else the day the episode opened). Referrals: the screening date.';

// ---------------------------------------------------------------------------------------------------------------
// Per-episode facts and the cells they count in

export type Outcome =
  'normal' | 'benign' | 'malignant_invasive' | 'malignant_micro_invasive' | 'malignant_non_invasive';

export interface EpisodeFacts {
  episodeType: EpisodeType;
  /** Age in whole years at the relevant date. */
  age: number;
  previous: PreviousScreen;
  screened: boolean;
  /** Recalled to assessment from a screening exam in this episode. */
  referred: boolean;
  /** A core or vacuum (needle) biopsy at assessment. */
  needleBiopsy: boolean;
  /** An open (surgical) biopsy at assessment. */
  openBiopsy: boolean;
  /** The current assessment outcome, if any. */
  outcome: Outcome | null;
  /** Invasive size in mm, for a malignant outcome when known. */
  sizeMm: number | null;
  /** Early (short-term) recall given at assessment instead of routine recall. */
  earlyRecall: boolean;
  /** A needle biopsy with a B5 result on or before any open biopsy: a non-operative diagnosis. */
  b5NeedleFirst: boolean;
}

export const SIZE_BANDS = [
  { id: 'lt10', label: 'Under 10 mm', below: 10 },
  { id: '10-15', label: '10 to under 15 mm', below: 15 },
  { id: '15-20', label: '15 to under 20 mm', below: 20 },
  { id: '20-50', label: '20 to under 50 mm', below: 50 },
  { id: 'ge50', label: '50 mm and over', below: Number.POSITIVE_INFINITY },
] as const;
export type SizeBandId = (typeof SIZE_BANDS)[number]['id'] | 'unknown';

export function sizeBand(sizeMm: number | null): SizeBandId {
  if (sizeMm === null || !Number.isFinite(sizeMm) || sizeMm <= 0) return 'unknown';
  return SIZE_BANDS.find((b) => sizeMm < b.below)!.id;
}

/** Each part's measures (columns), in the return's order. Uptake and rates are worked out from these. */
export const PARTS = {
  1: {
    title: 'Part 1: invitations and uptake',
    measures: { invited: 'Invited', screened: 'Screened' },
  },
  2: {
    title: 'Part 2: assessment',
    measures: {
      referred: 'Referred to assessment',
      needle: 'Needle biopsy',
      open: 'Open biopsy',
      benignOpen: 'Benign open biopsy',
      earlyRecall: 'Short-term (early) recall',
    },
  },
  3: {
    title: 'Part 3: cancers detected',
    measures: {
      nonInvasive: 'Non-invasive',
      microInvasive: 'Micro-invasive',
      'inv-lt10': 'Invasive under 10 mm',
      'inv-10-15': 'Invasive 10 to under 15 mm',
      'inv-15-20': 'Invasive 15 to under 20 mm',
      'inv-20-50': 'Invasive 20 to under 50 mm',
      'inv-ge50': 'Invasive 50 mm and over',
      'inv-unknown': 'Invasive, size not known',
      invasive: 'Invasive, all sizes',
      cancers: 'All cancers',
      cancerNeedle: 'Cancers with a needle biopsy',
      cancerOpen: 'Cancers with an open biopsy',
    },
  },
  4: {
    title: 'Part 4: non-operative diagnosis',
    measures: { cancers4: 'All cancers', nonOperative: 'Diagnosed non-operatively (B5 needle biopsy)' },
  },
} as const;
export type PartNumber = keyof typeof PARTS;
export const PART_NUMBERS: readonly PartNumber[] = [1, 2, 3, 4];
export type Measure = { [P in PartNumber]: keyof (typeof PARTS)[P]['measures'] }[PartNumber];
export const MEASURES: readonly Measure[] = PART_NUMBERS.flatMap((p) => Object.keys(PARTS[p].measures) as Measure[]);
export const MEASURE_LABELS = Object.fromEntries(
  PART_NUMBERS.flatMap((p) => Object.entries(PARTS[p].measures)),
) as Record<Measure, string>;

/** A cell of the return: table, measure and age band, as one string ("C1.referred.50-52"). */
export type CellKey = `${Kc62Table}.${Measure}.${BandKey}`;

export function cellKey(table: Kc62Table, measure: Measure, band: BandKey): CellKey {
  return `${table}.${measure}.${band}`;
}

export function parseCellKey(text: string): { table: Kc62Table; measure: Measure; band: BandKey } | undefined {
  const [table, measure, band, ...rest] = text.split('.');
  if (rest.length) return undefined;
  if (!(KC62_TABLES as readonly string[]).includes(table ?? '')) return undefined;
  if (!(MEASURES as readonly string[]).includes(measure ?? '')) return undefined;
  if (!(BAND_KEYS as readonly string[]).includes(band ?? '')) return undefined;
  // Referral tables have no invited column.
  if (measure === 'invited' && (table === 'F1' || table === 'F2')) return undefined;
  return { table: table as Kc62Table, measure: measure as Measure, band: band as BandKey };
}

const MALIGNANT: readonly Outcome[] = ['malignant_invasive', 'malignant_micro_invasive', 'malignant_non_invasive'];

/**
 * The measures one episode counts in (in its own table and T, in its band and "all").
 *
 * Part 1: invited (invited tables only: every episode of the year's cohort), screened.
 * Part 2 (screened women only): referred to assessment; needle biopsy (core or vacuum); open biopsy; benign open
 *   biopsy (CHOICE: an open biopsy and an outcome that is not malignant, the NHSBSP "benign biopsy" measure);
 *   short-term recall (CHOICE: early recall given as the assessment outcome).
 * Part 3 (screened women with a malignant outcome): non-invasive, micro-invasive, invasive by whole-tumour size
 *   band (<10, 10–<15, 15–<20, 20–<50, ≥50 mm, unknown), all invasive, all cancers; cancers with a needle biopsy
 *   and with an open biopsy (a woman with both counts in both).
 * Part 4: cancers, and those diagnosed non-operatively (CHOICE: a B5 needle biopsy on or before any open biopsy).
 * "One woman may not have more than one outcome of cancer in the REPORTING PERIOD": an episode has one current
 * outcome, so she counts once an episode (two episodes of hers in one year are rare and would count twice).
 */
export function episodeMeasures(f: EpisodeFacts): Measure[] {
  const table = tableOf(f.episodeType, f.previous);
  const m: Measure[] = [];
  if (INVITED_TABLES.includes(table)) m.push('invited');
  if (!f.screened) return m;
  m.push('screened');
  if (f.referred) m.push('referred');
  if (f.needleBiopsy) m.push('needle');
  if (f.openBiopsy) m.push('open');
  const malignant = f.outcome !== null && MALIGNANT.includes(f.outcome);
  if (f.openBiopsy && f.outcome !== null && !malignant) m.push('benignOpen');
  if (f.earlyRecall) m.push('earlyRecall');
  if (malignant) {
    if (f.outcome === 'malignant_non_invasive') m.push('nonInvasive');
    else if (f.outcome === 'malignant_micro_invasive') m.push('microInvasive');
    else m.push(`inv-${sizeBand(f.sizeMm)}`, 'invasive');
    m.push('cancers', 'cancers4');
    if (f.needleBiopsy) m.push('cancerNeedle');
    if (f.openBiopsy) m.push('cancerOpen');
    if (f.b5NeedleFirst) m.push('nonOperative');
  }
  return m;
}

/** Every cell an episode counts in. */
export function episodeCells(f: EpisodeFacts): CellKey[] {
  const table = tableOf(f.episodeType, f.previous);
  const band = ageBand(f.age);
  const cells: CellKey[] = [];
  for (const measure of episodeMeasures(f))
    for (const t of [table, 'T'] as const) for (const b of [band, 'all'] as const) cells.push(cellKey(t, measure, b));
  return cells;
}

export type Kc62Counts = Map<CellKey, number>;

/** Adds up the cells of many episodes, each standing for `count` identical episodes (grouped facts). */
export function tallyKc62(rows: Iterable<{ facts: EpisodeFacts; count: number }>): Kc62Counts {
  const counts: Kc62Counts = new Map();
  for (const { facts, count } of rows)
    for (const cell of episodeCells(facts)) counts.set(cell, (counts.get(cell) ?? 0) + count);
  return counts;
}

export function countOf(counts: Kc62Counts, table: Kc62Table, measure: Measure, band: BandKey): number {
  return counts.get(cellKey(table, measure, band)) ?? 0;
}

/** A percentage to one decimal place, or null when there is nothing to divide by. */
export function percent(numerator: number, denominator: number): number | null {
  return denominator > 0 ? Math.round((1000 * numerator) / denominator) / 10 : null;
}

/**
 * Uptake: women screened ÷ women invited. For T, only women screened after an invitation (T less F1 and F2)
 * count over T's invited; referral tables have no uptake.
 */
export function uptake(counts: Kc62Counts, table: Kc62Table, band: BandKey): number | null {
  if (table === 'F1' || table === 'F2') return null;
  const screened =
    table === 'T'
      ? countOf(counts, 'T', 'screened', band) -
        countOf(counts, 'F1', 'screened', band) -
        countOf(counts, 'F2', 'screened', band)
      : countOf(counts, table, 'screened', band);
  return percent(screened, countOf(counts, table, 'invited', band));
}

/** Part 4's rate: cancers diagnosed non-operatively ÷ all cancers. */
export function nonOperativeRate(counts: Kc62Counts, table: Kc62Table, band: BandKey): number | null {
  return percent(countOf(counts, table, 'nonOperative', band), countOf(counts, table, 'cancers4', band));
}

// ---------------------------------------------------------------------------------------------------------------
// KC63 coverage

/** KC63's age bands at 31 March, women 53 to under 71: the return's own bands from 53 to 54 up to 70. */
const KC63_BAND_IDS = ['53-54', '55-59', '60-64', '65-69', '70'] as const;
export type Kc63BandId = (typeof KC63_BAND_IDS)[number];
export const KC63_BANDS = AGE_BANDS.filter((b): b is Extract<AgeBand, { id: Kc63BandId }> =>
  (KC63_BAND_IDS as readonly string[]).includes(b.id),
);
export type Kc63BandKey = Kc63BandId | 'all';
export const KC63_BAND_KEYS: readonly Kc63BandKey[] = [...KC63_BAND_IDS, 'all'];
export const KC63_BAND_LABELS: Record<Kc63BandKey, string> = bandLabels(KC63_BANDS, '53 to 70');
export const COVERAGE_MONTHS = 36;
export const COVERAGE_MIN_AGE = 53;
export const COVERAGE_END_AGE = 71;

/** The band for an age at 31 March, or undefined outside 53 to under 71. */
export function kc63Band(age: number): Kc63BandId | undefined {
  return KC63_BANDS.find((b) => age >= b.min && age <= b.max)?.id;
}

/** 31 March at the end of a reporting year: the date KC63 coverage is measured at. */
export function coverageDate(year: number): IsoDate {
  return reportingYear(year).to;
}

/** Screens from this date on (after the date COVERAGE_MONTHS before) count towards coverage at `at`. */
export function coverageWindowStart(at: IsoDate): IsoDate {
  return addMonths(at, -COVERAGE_MONTHS);
}

export interface CoverageFacts {
  /** Age in whole years at the coverage date. */
  age: number;
  /** Screened in the 36 months up to and including the coverage date (after coverageWindowStart). */
  screenedInWindow: boolean;
}

/**
 * CHOICE, who is eligible at 31 March: women of the office (her current office), aged 53 to under 71 that day,
 * alive that day, and not ceased on or before it (a later reinstatement is not looked back on).
 */
export type Kc63Measure = 'eligible' | 'covered';
export type Kc63CellKey = `KC63.${Kc63Measure}.${Kc63BandKey}`;

export function coverageCells(f: CoverageFacts): Kc63CellKey[] {
  const band = kc63Band(f.age);
  if (!band) return [];
  const measures: Kc63Measure[] = f.screenedInWindow ? ['eligible', 'covered'] : ['eligible'];
  return measures.flatMap((m) => [`KC63.${m}.${band}`, `KC63.${m}.all`] as Kc63CellKey[]);
}

export function tallyKc63(rows: Iterable<{ facts: CoverageFacts; count: number }>): Map<Kc63CellKey, number> {
  const counts = new Map<Kc63CellKey, number>();
  for (const { facts, count } of rows)
    for (const cell of coverageCells(facts)) counts.set(cell, (counts.get(cell) ?? 0) + count);
  return counts;
}

export function parseKc63CellKey(text: string): { measure: Kc63Measure; band: Kc63BandKey } | undefined {
  const [kc, measure, band, ...rest] = text.split('.');
  if (kc !== 'KC63' || rest.length) return undefined;
  if (measure !== 'eligible' && measure !== 'covered') return undefined;
  if (!(KC63_BAND_KEYS as readonly string[]).includes(band ?? '')) return undefined;
  return { measure, band: band as Kc63BandKey };
}
