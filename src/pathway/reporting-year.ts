/**
 * Reporting years, written once for every report (KC62 and KC63, uptake and coverage, the KPIs). Pure: no I/O.
 *
 * The NHS Breast Screening Programme's returns and standards are counted over a reporting year of 1 April to
 * 31 March (issue 7: "for any reporting year (1 April – 31 March)"); KC63 coverage is taken on its last day, 31
 * March. A year is named by the year it starts in, and shown as the return names it: 2025 is "2025-26".
 */
import type { IsoDate } from './dates.js';

/** A reporting year, named by the year it starts: 2025 is 1 April 2025 to 31 March 2026 ("2025-26"). */
export interface ReportingYear {
  start: number;
  from: IsoDate;
  to: IsoDate;
  label: string;
}

export function reportingYear(start: number): ReportingYear {
  if (!Number.isInteger(start) || start < 1988 || start > 9998) throw new RangeError(`Not a reporting year: ${start}`);
  return {
    start,
    from: `${start}-04-01`,
    to: `${start + 1}-03-31`,
    label: `${start}-${String((start + 1) % 100).padStart(2, '0')}`,
  };
}

/** The reporting year a date falls in: 2026-03-31 is in 2025-26, 2026-04-01 in 2026-27. */
export function reportingYearOf(date: IsoDate): number {
  const [y, m] = [Number(date.slice(0, 4)), Number(date.slice(5, 7))];
  return m >= 4 ? y : y - 1;
}

/** The latest reporting year that has ended on `today` (the one a return is made for). */
export function lastCompleteReportingYear(today: IsoDate): number {
  return reportingYearOf(today) - 1;
}

/** Parses "2025" or "2025-26" (the label); undefined for anything else, or a label whose halves do not agree. */
export function parseReportingYear(text: string): number | undefined {
  const match = /^(\d{4})(?:-(\d{2}))?$/.exec(text.trim());
  if (!match) return undefined;
  const start = Number(match[1]);
  if (start < 1988 || start > 9998) return undefined;
  if (match[2] !== undefined && Number(match[2]) !== (start + 1) % 100) return undefined;
  return start;
}
