import { describe, expect, it } from 'vitest';
import {
  lastCompleteReportingYear,
  parseReportingYear,
  reportingYear,
  reportingYearOf,
} from '../../../src/pathway/reporting-year.js';

describe('reporting year', () => {
  it('runs 1 April to 31 March and is named for its start', () => {
    expect(reportingYear(1999).label).toBe('1999-00');
    expect(reportingYear(2025)).toEqual({ start: 2025, from: '2025-04-01', to: '2026-03-31', label: '2025-26' });
    expect(reportingYear(2099).label).toBe('2099-00');
    expect(reportingYearOf('2026-03-31')).toBe(2025);
    expect(reportingYearOf('2026-04-01')).toBe(2026);
    expect(lastCompleteReportingYear('2026-11-23')).toBe(2025);
    expect(lastCompleteReportingYear('2026-03-31')).toBe(2024);
  });
  it('parses 2025 and 2025-26, and refuses halves that disagree', () => {
    expect(parseReportingYear('2025')).toBe(2025);
    expect(parseReportingYear('2025-26')).toBe(2025);
    expect(parseReportingYear('2025-27')).toBeUndefined();
    expect(parseReportingYear('25')).toBeUndefined();
    expect(parseReportingYear('')).toBeUndefined();
  });
});
