import { COHORT_HEADER, cohortCsvLine, type CohortRow } from '../../src/cohort/cohort-csv.js';
import { nextNhsNumber } from './fixtures.js';

/** The day the cohort tests are run as (dates after it are refused). */
export const COHORT_TODAY = '2026-11-23';

/** A row every cohort format must read back as it is: a synthetic woman, valid in every field. */
export const GOOD_COHORT_ROW: CohortRow = {
  nhsNumber: '9990010005',
  familyName: 'Testwoman',
  givenName: 'Jane',
  dateOfBirth: '1966-05-14',
  dateOfDeath: null,
  sex: 'female',
  addressLine1: '2 Test Street',
  addressLine2: null,
  town: 'Leeds',
  postcode: 'LS6 2AB',
  gpPracticeCode: 'Y00001',
  effectiveDate: '2026-01-02',
};

/** A valid feed row for a new synthetic woman (a fresh test-range NHS number), with `overrides`. */
export const cohortRow = (overrides: Partial<CohortRow> = {}): CohortRow => ({
  ...GOOD_COHORT_ROW,
  nhsNumber: nextNhsNumber(),
  ...overrides,
});

/** A cohort CSV file of these rows (or lines already written). */
export const cohortCsv = (...rows: (CohortRow | string)[]): string =>
  COHORT_HEADER + rows.map((r) => (typeof r === 'string' ? r : cohortCsvLine(r))).join('');
