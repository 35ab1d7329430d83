import type { CohortRow } from '../../src/cohort/cohort-csv.js';

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
