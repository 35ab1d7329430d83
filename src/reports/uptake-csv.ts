/**
 * The uptake page's tables (by age band, IMD quintile and GP practice) as CSV downloads: one row a group, the same
 * counts, rates and 95% intervals as the page (percentages rounded to one decimal place, as shown), and on every
 * row the office, period and filters they are for, so a file read on its own says what it counts.
 */
import { COVERAGE_MONTHS } from '../pathway/kc62.js';
import { percentValue, UPTAKE_WINDOW_MONTHS, type Rate, type RateRow } from '../pathway/uptake.js';
import { csvRows, type Cell } from './csv.js';

/** The downloadable tables: the path part, the group column's heading, and the file name's words. */
export const UPTAKE_CSV_TABLES = {
  age: { groupHeader: 'Age band', fileWords: 'by-age-band' },
  deprivation: { groupHeader: 'IMD quintile', fileWords: 'by-imd-quintile' },
  practice: { groupHeader: 'GP practice', fileWords: 'by-gp-practice' },
} as const;
export type UptakeCsvTable = keyof typeof UPTAKE_CSV_TABLES;
export const UPTAKE_CSV_TABLE_IDS = Object.keys(UPTAKE_CSV_TABLES) as UptakeCsvTable[];

export interface UptakeCsvInput {
  table: UptakeCsvTable;
  office: string;
  from: string;
  to: string;
  site: string | null;
  location: string | null;
  rows: readonly { key: string; label: string; uptake: RateRow | undefined; coverage: RateRow | undefined }[];
}

const rateCells = (r: Rate | undefined): Cell[] => {
  const pct = (v: number | null | undefined) => (v == null ? null : percentValue(v));
  return [r?.numerator ?? 0, r?.denominator ?? 0, pct(r?.rate), pct(r?.lower), pct(r?.upper)];
};

export function uptakeCsv(input: UptakeCsvInput): string {
  const header: Cell[] = [
    'Screening office',
    'Invited from',
    'Invited up to',
    'Site',
    'Location',
    UPTAKE_CSV_TABLES[input.table].groupHeader,
    'Group code',
    `Screened within ${UPTAKE_WINDOW_MONTHS} months`,
    'Invited',
    'Uptake (%)',
    'Uptake 95% CI lower (%)',
    'Uptake 95% CI upper (%)',
    `Screened in the last ${COVERAGE_MONTHS} months`,
    'Eligible',
    'Coverage (%)',
    'Coverage 95% CI lower (%)',
    'Coverage 95% CI upper (%)',
  ];
  const context: Cell[] = [
    input.office,
    input.from,
    input.to,
    input.site ?? 'All sites',
    input.location ?? 'All locations',
  ];
  return csvRows([
    header,
    ...input.rows.map((r) => [...context, r.label, r.key, ...rateCells(r.uptake), ...rateCells(r.coverage)]),
  ]);
}

export function uptakeCsvName(input: Pick<UptakeCsvInput, 'table' | 'office' | 'from' | 'to'>): string {
  return `uptake-${UPTAKE_CSV_TABLES[input.table].fileWords}-${input.office}-${input.from}-to-${input.to}.csv`;
}
