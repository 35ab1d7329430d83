import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { addDays, addYears, ageOn } from '../../../src/pathway/dates.js';
import { VHR_RISK_GROUPS } from '../../../src/pathway/eligibility.js';
import {
  RADIOTHERAPY_AGES,
  vhrEndProblems,
  vhrReferralProblems,
  type VhrReferral,
} from '../../../src/pathway/vhr-referral.js';

const TODAY = '2026-11-23';
const referral = (overrides: Partial<VhrReferral> = {}): VhrReferral => ({
  riskGroup: 'brca_palb2',
  since: '2026-11-20',
  radiotherapyOn: null,
  referredBy: 'Regional genetics service, letter of 18 November 2026',
  dateOfBirth: '1990-02-28',
  ...overrides,
});

describe('very high risk referral rules', () => {
  it('accepts a complete referral and says every problem of an empty one at once', () => {
    expect(vhrReferralProblems(referral(), TODAY)).toEqual([]);
    expect(vhrReferralProblems(referral({ riskGroup: '', referredBy: '', since: '2026-12-01' }), TODAY)).toEqual([
      expect.stringMatching(/^Choose her risk group: BRCA1, BRCA2 or PALB2 carrier; /),
      'The date surveillance began cannot be in the future',
      'Say who referred her: the genetics service or clinician, and their letter',
    ]);
  });

  it('refuses her on or after her 71st birthday, and after her death', () => {
    expect(vhrReferralProblems(referral({ dateOfBirth: '1955-11-23' }), TODAY)).toContain(
      'Very high risk surveillance ends at her 71st birthday: she can self-refer every 3 years instead',
    );
    expect(vhrReferralProblems(referral({ dateOfBirth: '1955-11-24' }), TODAY)).toEqual([]);
    expect(vhrReferralProblems(referral({ dateOfDeath: '2026-11-01' }), TODAY)).toHaveLength(1);
  });

  it('asks for radiotherapy only for the radiotherapy groups, at the ages each is for', () => {
    const groups = VHR_RISK_GROUPS.filter((g) => RADIOTHERAPY_AGES[g]);
    fc.assert(
      fc.property(
        fc.constantFrom(...groups),
        fc.integer({ min: 0, max: 36 * 366 }),
        fc.date({ min: new Date('1956-01-01'), max: new Date('1990-12-31'), noInvalidDate: true }),
        (group, daysAfterBirth, born) => {
          const dob = born.toISOString().slice(0, 10);
          const on = addDays(dob, daysAfterBirth);
          const problems = vhrReferralProblems(
            referral({ riskGroup: group, dateOfBirth: dob, radiotherapyOn: on }),
            TODAY,
          );
          const { from, to } = RADIOTHERAPY_AGES[group]!;
          const fits = ageOn(dob, on) >= from && ageOn(dob, on) <= to && on <= TODAY;
          const over71 = addYears(dob, 71) <= TODAY;
          expect(problems.length === 0).toBe(fits && !over71);
        },
      ),
    );
    expect(vhrReferralProblems(referral({ riskGroup: 'radiotherapy_aged_20_to_35' }), TODAY)).toEqual([
      'Enter the date of her first radiotherapy to breast tissue',
    ]);
    expect(vhrReferralProblems(referral({ radiotherapyOn: '2010-01-01' }), TODAY)).toEqual([
      'Leave the date of radiotherapy empty: her risk group is not a radiotherapy group',
    ]);
  });

  it('takes her off only with a reason, and only if she is on it', () => {
    expect(vhrEndProblems({ onSurveillance: true, reason: 'Reassessed by the genetics service' })).toEqual([]);
    expect(vhrEndProblems({ onSurveillance: false, reason: ' ' })).toHaveLength(2);
  });
});
