/**
 * The KPI dashboard as a CSV download: one row a KPI and reporting year (the years of the dashboard's history, the
 * chosen year last), with the numerator, denominator, value and its 95% interval rounded as the page shows them,
 * the standard's thresholds and direction, the national average, and red/amber/green against the standard.
 */
import {
  KPI_DEFINITIONS,
  KPI_IDS,
  RAG_LABELS,
  roundValue,
  type KpiFigure,
  type NhsbspStandards,
} from '../pathway/kpis.js';
import { reportingYear } from '../pathway/reporting-year.js';
import type { YearFigures } from '../store/kpis.js';
import { csvRows, type Cell } from './csv.js';

export interface KpiCsvInput {
  office: string;
  standards: NhsbspStandards;
  history: readonly YearFigures[];
}

const UNIT_WORDS = { percent: 'percent', per_1000: 'per 1,000 screened', ratio: 'ratio' } as const;

/** The SDR's denominator is an expected number of cancers (not whole): shown to two decimal places. */
const denominatorOf = (f: KpiFigure) => (f.id === 'sdr' ? Number(f.denominator.toFixed(2)) : f.denominator);

export function kpiCsv(input: KpiCsvInput): string {
  const { standards } = input;
  const header: Cell[] = [
    'Screening office',
    'Reporting year',
    'Counted to',
    'KPI code',
    'KPI',
    'Unit',
    'Numerator',
    'Denominator',
    'Value',
    '95% CI lower',
    '95% CI upper',
    'Better when',
    'Acceptable',
    'Achievable',
    `National average (${standards.nationalAverages.year})`,
    'Against the standard',
    'RAG',
  ];
  const rows: Cell[][] = [header];
  for (const id of KPI_IDS) {
    const { unit, title } = KPI_DEFINITIONS[id];
    const standard = standards.standards[id];
    for (const h of input.history) {
      const f = h.figures[id];
      rows.push([
        input.office,
        reportingYear(h.year).label,
        h.asOf,
        id,
        title,
        UNIT_WORDS[unit],
        f.numerator,
        denominatorOf(f),
        roundValue(f.value, unit),
        roundValue(f.interval?.lower ?? null, unit),
        roundValue(f.interval?.upper ?? null, unit),
        standard.direction,
        standard.acceptable ?? null,
        standard.achievable ?? null,
        standards.nationalAverages.values[id] ?? null,
        f.value === null ? 'No data' : RAG_LABELS[f.rag],
        f.rag,
      ]);
    }
  }
  return csvRows(rows);
}

export function kpiCsvName(office: string, year: number): string {
  return `kpis-${office}-${reportingYear(year).label}.csv`;
}
