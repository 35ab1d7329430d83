import { readFileSync } from 'node:fs';
import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import {
  CEASING_REASONS,
  CEASING_RULES,
  ceasingProblemsOnRecord,
  reinstatementProblemsOnRecord,
} from '../../../src/pathway/ceasing.js';
import { addDays, addMonths, addYears, ageOn, compareIsoDate, nthBirthday } from '../../../src/pathway/dates.js';
import {
  INVITABLE_FROM_MONTHS,
  ROUTINE_RECALL_MONTHS,
  SCREENING_STATUS_LABELS,
  screeningStatus,
  VHR_PROTOCOLS,
  VHR_RISK_GROUPS,
  VHR_TEST_LABELS,
  vhrTestAt,
  type ScreeningFacts,
  type ScreeningStatusCode,
  type VhrRiskGroup,
} from '../../../src/pathway/eligibility.js';
import { dobArb, fromUtcDay, utcDay } from './arbitraries.js';

const DOB = '1974-06-15'; // 49y8m 2024-02-15, 53rd 2027-06-15, 71st 2045-06-15
const ROUTINE: ScreeningStatusCode[] = ['eligible', 'due', 'overdue'];
const cmp = compareIsoDate;
const later = (a: string, b: string) => (cmp(a, b) < 0 ? b : a);

describe('screeningStatus: routine ages', () => {
  it('is not yet eligible the day before 49 years 8 months, with the first call due by the 53rd birthday', () => {
    expect(INVITABLE_FROM_MONTHS).toBe(49 * 12 + 8);
    const s = screeningStatus({ dateOfBirth: DOB }, '2024-02-14');
    expect(s).toMatchObject({
      code: 'not_yet_eligible',
      label: 'Not yet eligible',
      dueDate: '2027-06-15',
      eligibleFrom: '2024-02-15',
      firstCallBy: '2027-06-15',
      routineEndsBefore: '2045-06-15',
      ceasing: null,
      reinstatement: null,
      surveillance: null,
    });
    expect(s.explanation).toBe(
      'Routine invitations start at 49 years 8 months (15 February 2024). Her first screen is due by her 53rd birthday (15 June 2027).',
    );
  });

  it('enters routine screening at 49 years 8 months, due by the 53rd birthday if never screened', () => {
    const s = screeningStatus({ dateOfBirth: DOB }, '2024-02-15');
    expect(s).toMatchObject({ code: 'eligible', label: 'Eligible', dueDate: '2027-06-15' });
    expect(s.explanation).toContain('first screen, due by her 53rd birthday; never screened');
  });

  it('counts 49 years 8 months from a 31st to the end of the shorter month, as batch selection does', () => {
    expect(screeningStatus({ dateOfBirth: '1975-06-30' }, '2025-02-27').code).toBe('not_yet_eligible');
    expect(screeningStatus({ dateOfBirth: '1975-06-30' }, '2025-02-28')).toMatchObject({
      code: 'eligible',
      eligibleFrom: '2025-02-28',
    });
  });

  it('is due within 6 months of the due date, including the due date itself', () => {
    expect(screeningStatus({ dateOfBirth: DOB }, '2026-12-14').code).toBe('eligible'); // + 6 months = 2027-06-14
    expect(screeningStatus({ dateOfBirth: DOB }, '2026-12-15')).toMatchObject({ code: 'due', label: 'Due' });
    expect(screeningStatus({ dateOfBirth: DOB }, '2027-06-15').code).toBe('due');
  });

  it('is overdue the day after the due date', () => {
    const s = screeningStatus({ dateOfBirth: DOB }, '2027-06-16');
    expect(s).toMatchObject({ code: 'overdue', label: 'Overdue', dueDate: '2027-06-15' });
    expect(s.explanation).toContain('Was due on 15 June 2027');
  });

  it('recalls 36 months after the last screen', () => {
    expect(ROUTINE_RECALL_MONTHS).toBe(36);
    const facts = { dateOfBirth: DOB, lastScreenedOn: '2030-03-10' };
    expect(screeningStatus(facts, '2031-01-01')).toMatchObject({ code: 'eligible', dueDate: '2033-03-10' });
    expect(screeningStatus(facts, '2031-01-01').explanation).toBe(
      'In routine screening: next screen due 10 March 2033 (3 years after her last screen on 10 March 2030).',
    );
    expect(screeningStatus(facts, '2032-09-10')).toMatchObject({ code: 'due', dueDate: '2033-03-10' });
    expect(screeningStatus(facts, '2033-03-11')).toMatchObject({ code: 'overdue', dueDate: '2033-03-10' });
  });

  it('clamps the recall date to the end of a short month', () => {
    const facts = { dateOfBirth: DOB, lastScreenedOn: '2028-02-29' };
    expect(screeningStatus(facts, '2029-01-01').dueDate).toBe('2031-02-28');
  });

  it('keeps the 53rd birthday when the recall from an earlier screen falls before 49 years 8 months', () => {
    expect(screeningStatus({ dateOfBirth: DOB, lastScreenedOn: '2019-01-01' }, '2025-01-01').dueDate).toBe(
      '2027-06-15',
    );
    // recall 2024-02-14, the day before 49y8m: still the 53rd birthday; recall on 49y8m itself: the recall
    expect(screeningStatus({ dateOfBirth: DOB, lastScreenedOn: '2021-02-14' }, '2024-03-01').dueDate).toBe(
      '2027-06-15',
    );
    expect(screeningStatus({ dateOfBirth: DOB, lastScreenedOn: '2021-02-15' }, '2024-03-01').dueDate).toBe(
      '2024-02-15',
    );
  });

  it('is still routine the day before the 71st birthday', () => {
    const facts = { dateOfBirth: '1954-03-10', lastScreenedOn: '2021-05-01' };
    expect(screeningStatus(facts, '2025-03-09')).toMatchObject({
      code: 'overdue',
      dueDate: '2024-05-01',
      routineEndsBefore: '2025-03-10',
    });
  });

  it('has no due date when the next recall would fall on or after the 71st birthday', () => {
    const done = screeningStatus({ dateOfBirth: '1954-03-10', lastScreenedOn: '2023-01-05' }, '2025-03-09');
    expect(done).toMatchObject({ code: 'eligible', dueDate: null });
    expect(done.explanation).toMatch(/^Routine screening done/);
    expect(done.explanation).toMatch(/self-refer every 3 years/);
    expect(
      screeningStatus({ dateOfBirth: '1954-03-10', lastScreenedOn: '2022-03-10' }, '2024-01-01').dueDate,
    ).toBeNull();
    expect(screeningStatus({ dateOfBirth: '1954-03-10', lastScreenedOn: '2022-03-09' }, '2024-01-01').dueDate).toBe(
      '2025-03-09',
    );
  });
});

describe('screeningStatus: 71 and over', () => {
  it('is not invited from the 71st birthday, and says when she may next self-refer', () => {
    const s = screeningStatus({ dateOfBirth: '1954-03-10', lastScreenedOn: '2023-05-01' }, '2025-03-10');
    expect(s).toMatchObject({
      code: 'over_age_self_referral',
      label: 'Over 71: self-referral',
      dueDate: null,
      selfReferralFrom: '2026-05-01',
    });
    expect(s.explanation).toBe(
      'Routine invitations stopped at her 71st birthday (10 March 2025). She is not invited but can self-refer every 3 years: she can next self-refer from 1 May 2026 (last screened on 1 May 2023).',
    );
  });

  it('lets her self-refer now when 3 years have passed since her last screen, or she was never screened', () => {
    expect(screeningStatus({ dateOfBirth: '1954-03-10', lastScreenedOn: '2021-05-01' }, '2025-03-10')).toMatchObject({
      selfReferralFrom: '2025-03-10',
    });
    const never = screeningStatus({ dateOfBirth: '1950-01-01' }, '2030-06-01');
    expect(never.selfReferralFrom).toBe('2030-06-01');
    expect(never.explanation).toContain('she can self-refer now (never screened)');
  });
});

describe('screeningStatus: 29 February births', () => {
  const dob = '1960-02-29'; // 49y8m 2009-10-29, 53rd 2013-03-01, 71st 2031-03-01

  it('becomes eligible at 49 years 8 months and is due by 1 March of the 53rd year', () => {
    expect(screeningStatus({ dateOfBirth: dob }, '2009-10-28').code).toBe('not_yet_eligible');
    expect(screeningStatus({ dateOfBirth: dob }, '2009-10-29')).toMatchObject({
      code: 'eligible',
      eligibleFrom: '2009-10-29',
      dueDate: '2013-03-01',
      routineEndsBefore: '2031-03-01',
    });
  });

  it('leaves routine screening on 1 March of the 71st year', () => {
    expect(ROUTINE).toContain(screeningStatus({ dateOfBirth: dob, lastScreenedOn: '2028-06-01' }, '2031-02-28').code);
    expect(screeningStatus({ dateOfBirth: dob }, '2031-03-01').code).toBe('over_age_self_referral');
  });

  it('always puts the 53rd and 71st birthdays on 1 March (neither 53 nor 71 is a multiple of 4)', () => {
    for (const born of ['1932-02-29', '1956-02-29', '1972-02-29', '2000-02-29', '2008-02-29']) {
      const y = Number(born.slice(0, 4));
      const s = screeningStatus({ dateOfBirth: born }, `${y + 1}-01-01`);
      expect(s.eligibleFrom).toBe(`${y + 49}-10-29`);
      expect(s.dueDate).toBe(`${y + 53}-03-01`);
      expect(s.routineEndsBefore).toBe(`${y + 71}-03-01`);
    }
  });
});

describe('screeningStatus: deceased and ceased', () => {
  it('is deceased from the date of death, with no due date, whatever else is true', () => {
    const facts: ScreeningFacts = {
      dateOfBirth: DOB,
      dateOfDeath: '2028-01-10',
      ceased: { reason: 'bilateral_mastectomy', on: '2026-01-01' },
      veryHighRisk: true,
      lastScreenedOn: '2025-01-01',
    };
    const s = screeningStatus(facts, '2028-01-10');
    expect(s).toMatchObject({ code: 'deceased', label: 'Deceased', dueDate: null });
    expect(s.explanation).toBe('Died on 10 January 2028. No further screening.');
  });

  it('ignores a date of death after today', () => {
    expect(screeningStatus({ dateOfBirth: DOB, dateOfDeath: '2030-01-01' }, '2029-12-31').code).not.toBe('deceased');
  });

  it('is ceased with the reason, who can reinstate her, and no due date', () => {
    const s = screeningStatus(
      { dateOfBirth: DOB, ceased: { reason: 'bilateral_mastectomy', on: '2026-05-01' }, veryHighRisk: true },
      '2026-05-01',
    );
    expect(s).toMatchObject({
      code: 'ceased',
      label: 'Ceased',
      dueDate: null,
      ceasing: { reason: 'bilateral_mastectomy', label: 'Bilateral mastectomy', on: '2026-05-01' },
    });
    expect(s.explanation).toBe(
      'Ceased from screening on 1 May 2026: Bilateral mastectomy. She is not invited. To reinstate her: a clinician finding that breast tissue remains.',
    );
  });

  it("reads every reason as a code, its label, or an older system's text", () => {
    for (const reason of CEASING_REASONS.filter((r) => r !== 'very_high_risk_withdrawal')) {
      for (const text of [reason, CEASING_RULES[reason].label]) {
        const s = screeningStatus({ dateOfBirth: DOB, ceased: { reason: text, on: '2026-05-01' } }, '2026-06-01');
        expect(s.ceasing).toEqual({ reason, label: CEASING_RULES[reason].label, on: '2026-05-01' });
        expect(s.explanation).toContain(CEASING_RULES[reason].reinstatedBy);
      }
    }
    expect(
      screeningStatus({ dateOfBirth: DOB, ceased: { reason: 'Mental capacity', on: '2026-05-01' } }, '2026-06-01')
        .ceasing?.reason,
    ).toBe('best_interests');
    const other = screeningStatus(
      { dateOfBirth: DOB, ceased: { reason: 'Emigrated.', on: '2026-05-01' } },
      '2026-06-01',
    );
    expect(other).toMatchObject({ code: 'ceased', ceasing: { reason: null, label: 'Emigrated' } });
    expect(other.explanation).toBe('Ceased from screening on 1 May 2026: Emigrated. She is not invited.');
  });

  it('does not apply a ceasing dated after today', () => {
    const s = screeningStatus(
      { dateOfBirth: DOB, ceased: { reason: 'informed_choice', on: '2027-01-01' } },
      '2026-12-31',
    );
    expect(s.code).not.toBe('ceased');
    expect(s.ceasing).toBeNull();
  });

  it('returns a woman who withdrew from very high risk screening to routine screening in the routine ages', () => {
    const facts: ScreeningFacts = {
      dateOfBirth: DOB,
      veryHighRisk: true,
      surveillance: { riskGroup: 'brca_palb2' },
      ceased: { reason: 'very_high_risk_withdrawal', on: '2026-03-01' },
      lastScreenedOn: '2026-01-10',
    };
    const s = screeningStatus(facts, '2026-06-01');
    expect(s).toMatchObject({
      code: 'eligible',
      dueDate: '2029-01-10',
      surveillance: null,
      ceasing: { reason: 'very_high_risk_withdrawal', on: '2026-03-01' },
    });
    expect(s.explanation).toBe(
      'Withdrew from very high risk screening on 1 March 2026: she is screened routinely instead. In routine screening: next screen due 10 January 2029 (3 years after her last screen on 10 January 2026).',
    );
    // Under 49 years 8 months she is not screened at all after withdrawing.
    expect(screeningStatus({ ...facts, dateOfBirth: '1990-01-01' }, '2026-06-01').code).toBe('not_yet_eligible');
  });

  it('shows a reinstatement with the status she would have had, and hides it once she is ceased again', () => {
    const reinstated = {
      on: '2026-09-01',
      ceasedFor: 'informed_choice',
      decidedBy: 'Her own request.',
      reason: 'She changed her mind',
    };
    const s = screeningStatus({ dateOfBirth: DOB, reinstated, lastScreenedOn: '2025-01-10' }, '2026-10-01');
    expect(s).toMatchObject({
      code: 'eligible',
      dueDate: '2028-01-10',
      reinstatement: { ...reinstated, ceasedFor: 'Informed choice' },
    });
    expect(s.explanation).toBe(
      'In routine screening: next screen due 10 January 2028 (3 years after her last screen on 10 January 2025). Reinstated on 1 September 2026, after being ceased (Informed choice). Who decided: Her own request. Why: She changed her mind.',
    );
    const again = screeningStatus(
      { dateOfBirth: DOB, reinstated, ceased: { reason: 'bilateral_mastectomy', on: '2026-09-20' } },
      '2026-10-01',
    );
    expect(again).toMatchObject({ code: 'ceased', reinstatement: null });
    expect(again.explanation).not.toContain('Reinstated');
  });
});

describe('screeningStatus: very high risk surveillance', () => {
  const vhr = (riskGroup: string | null, more: Partial<ScreeningFacts> = {}): ScreeningFacts => ({
    dateOfBirth: '1990-04-20',
    veryHighRisk: true,
    surveillance: { riskGroup },
    ...more,
  });

  it('has a start age and a test by age band for every risk group, ending at the 71st birthday', () => {
    expect(Object.keys(VHR_PROTOCOLS)).toEqual([...VHR_RISK_GROUPS]);
    const starts = Object.fromEntries(VHR_RISK_GROUPS.map((g) => [g, VHR_PROTOCOLS[g].bands[0]?.fromAge]));
    expect(starts).toEqual({
      brca_palb2: 25,
      other_high_risk_gene: 30,
      untested_equivalent: 30,
      tp53: 20,
      atm_biallelic: 25,
      radiotherapy_aged_10_to_19: 25,
      radiotherapy_aged_20_to_35: 30,
    });
    // Ages 19, 20, 25, 29, 30, 39, 40, 50, 51 and 70: MG is mammography (with MRI if her breasts are dense).
    const short = { mri: 'MRI', mri_and_mammography: 'MRI+MG', mammography: 'MG' } as const;
    const at = (g: VhrRiskGroup) =>
      [19, 20, 25, 29, 30, 39, 40, 50, 51, 70]
        .map((age) => {
          const test = vhrTestAt(g, age);
          return test ? short[test] : '-';
        })
        .join(' ');
    expect(at('brca_palb2')).toBe('- - MRI MRI MRI MRI MRI+MG MRI+MG MG MG');
    expect(at('other_high_risk_gene')).toBe('- - - - MRI MRI MRI+MG MRI+MG MG MG');
    expect(at('untested_equivalent')).toBe('- - - - MRI MRI MRI+MG MRI+MG MG MG');
    expect(at('tp53')).toBe('- MRI MRI MRI MRI MRI MRI MRI MRI MRI');
    expect(at('atm_biallelic')).toBe('- - MRI MRI MRI MRI MRI MRI MRI MRI');
    expect(at('radiotherapy_aged_10_to_19')).toBe('- - MRI MRI MRI MRI MRI+MG MRI+MG MG MG');
    expect(at('radiotherapy_aged_20_to_35')).toBe('- - - - MRI MRI MRI+MG MRI+MG MG MG');
  });

  it('is due annually, with the test for her age on the day, and says so in words', () => {
    const s = screeningStatus(vhr('brca_palb2', { lastScreenedOn: '2029-05-01' }), '2029-06-01');
    expect(s).toMatchObject({
      code: 'very_high_risk',
      label: 'Very high risk: annual',
      dueDate: '2030-05-01', // she is 40 on 2030-04-20
      surveillance: {
        riskGroup: 'brca_palb2',
        startsOn: '2015-04-20',
        test: 'mri_and_mammography',
        testLabel: 'MRI and mammography',
      },
    });
    expect(s.explanation).toBe(
      'Very high risk (BRCA1, BRCA2 or PALB2 carrier): screened every 12 months until her 71st birthday; last screened on 1 May 2029. Next test due 1 May 2030: MRI and mammography.',
    );
  });

  it('picks the test by her age today when the test is overdue', () => {
    const s = screeningStatus(vhr('brca_palb2', { lastScreenedOn: '2029-03-01' }), '2030-05-01');
    expect(s).toMatchObject({ dueDate: '2030-03-01', surveillance: { test: 'mri_and_mammography' } });
    expect(s.explanation).toContain('Next test due 1 March 2030 (overdue): MRI and mammography');
  });

  it("waits for her group's start age, even when referred earlier", () => {
    const s = screeningStatus(
      vhr('other_high_risk_gene', { surveillance: { riskGroup: 'other_high_risk_gene', since: '2016-01-01' } }),
      '2016-02-01',
    );
    expect(s).toMatchObject({ dueDate: '2020-04-20', surveillance: { startsOn: '2020-04-20', test: 'mri' } });
    expect(s.explanation).toContain('Surveillance starts on 20 April 2020, her 30th birthday.');
  });

  it('never screened: due from the day she joined surveillance, or now if that is not recorded', () => {
    const joined = vhr(null, { surveillance: { riskGroup: 'tp53', since: '2026-02-01' } });
    expect(screeningStatus(joined, '2026-06-01').dueDate).toBe('2026-02-01');
    expect(screeningStatus(vhr('tp53'), '2026-06-01').dueDate).toBe('2026-06-01');
  });

  it('starts radiotherapy surveillance no sooner than 8 years after the first treatment', () => {
    const group = 'radiotherapy_aged_20_to_35';
    const s = screeningStatus(
      vhr(group, { surveillance: { riskGroup: group, radiotherapyOn: '2024-02-29' } }),
      '2026-01-01',
    );
    expect(s.surveillance?.startsOn).toBe('2032-02-29'); // later than her 30th birthday, 2020-04-20
    expect(s.dueDate).toBe('2032-02-29');
    expect(s.explanation).toContain(
      'Surveillance starts on 29 February 2032, 8 years after her radiotherapy on 29 February 2024.',
    );
    const early = screeningStatus(
      vhr(group, { surveillance: { riskGroup: group, radiotherapyOn: '2010-01-01' } }),
      '2019-01-01',
    );
    expect(early.surveillance?.startsOn).toBe('2020-04-20');
  });

  it('says to check the referral when the risk group is not recorded', () => {
    const s = screeningStatus({ dateOfBirth: DOB, veryHighRisk: true, lastScreenedOn: '2024-01-10' }, '2024-06-01');
    expect(s).toMatchObject({
      code: 'very_high_risk',
      dueDate: '2025-01-10',
      surveillance: { riskGroup: null, groupLabel: 'Risk group not recorded', test: null, startsOn: null },
    });
    expect(s.explanation).toContain('Her risk group is not recorded: check her referral');
    expect(screeningStatus(vhr('not a group'), '2026-01-01').surveillance?.riskGroup).toBeNull();
  });

  it('ends at the 71st birthday: no test falls on or after it', () => {
    const facts = vhr('brca_palb2', { dateOfBirth: '1954-03-10', lastScreenedOn: '2024-06-01' });
    expect(screeningStatus(facts, '2025-03-09')).toMatchObject({ code: 'very_high_risk', dueDate: null });
    expect(screeningStatus(facts, '2025-03-09').explanation).toContain('annual surveillance ends at her 71st birthday');
    expect(screeningStatus(facts, '2025-03-10')).toMatchObject({ code: 'over_age_self_referral', dueDate: null });
  });

  it('uses the same risk group and ceasing reason codes as migration 0006', () => {
    const sql = readFileSync(new URL('../../../src/store/migrations/0006_ceasing.sql', import.meta.url), 'utf8');
    const listed = (column: string) =>
      new RegExp(`${column} in \\(([^)]*)\\)`)
        .exec(sql)?.[1]
        ?.match(/'[a-z0-9_]+'/g)
        ?.map((s) => s.slice(1, -1));
    expect(listed('vhr_risk_group')).toEqual([...VHR_RISK_GROUPS]);
    expect(listed('ceasing_reason')).toEqual([...CEASING_REASONS]);
    expect(Object.keys(VHR_TEST_LABELS)).toEqual(['mri', 'mri_and_mammography', 'mammography']);
  });
});

describe('screeningStatus: early recall after assessment', () => {
  const dob = '1966-05-14';
  it('is due the chosen months after the assessment outcome, instead of 36 months after the screen', () => {
    const s = screeningStatus(
      { dateOfBirth: dob, lastScreenedOn: '2026-10-01', earlyRecall: { decidedOn: '2026-10-20', months: 12 } },
      '2026-11-23',
    );
    expect(s).toMatchObject({ code: 'due', dueDate: '2027-10-20' });
    expect(s.explanation).toContain('early recall 12 months after her assessment on 20 October 2026');
  });

  it('is overdue the day after, and stops applying once she is screened again', () => {
    const facts = {
      dateOfBirth: dob,
      lastScreenedOn: '2026-10-01',
      earlyRecall: { decidedOn: '2026-10-20', months: 6 },
    };
    expect(screeningStatus(facts, '2027-04-21')).toMatchObject({ code: 'overdue', dueDate: '2027-04-20' });
    expect(screeningStatus({ ...facts, lastScreenedOn: '2027-04-25' }, '2027-05-01')).toMatchObject({
      code: 'eligible',
      dueDate: '2030-04-25',
    });
  });

  it('does not reach past the 71st birthday, and a ceasing or death still comes first', () => {
    const late = {
      dateOfBirth: '1956-03-01',
      lastScreenedOn: '2026-09-01',
      earlyRecall: { decidedOn: '2026-09-20', months: 6 },
    };
    expect(screeningStatus(late, '2026-11-23')).toMatchObject({ code: 'eligible', dueDate: null });
    expect(screeningStatus({ ...late, dateOfBirth: dob, dateOfDeath: '2026-11-01' }, '2026-11-23').code).toBe(
      'deceased',
    );
  });
});

describe('screeningStatus: invalid facts', () => {
  it('throws a RangeError for impossible dates or orderings', () => {
    expect(() => screeningStatus({ dateOfBirth: '1974-02-30' }, '2024-01-01')).toThrow(RangeError);
    expect(() => screeningStatus({ dateOfBirth: DOB }, '2024-13-01')).toThrow(RangeError);
    expect(() => screeningStatus({ dateOfBirth: DOB }, '1974-06-14')).toThrow(RangeError);
    expect(() => screeningStatus({ dateOfBirth: DOB, lastScreenedOn: '2025-01-02' }, '2025-01-01')).toThrow(RangeError);
    expect(() => screeningStatus({ dateOfBirth: DOB, lastScreenedOn: '1970-01-01' }, '2025-01-01')).toThrow(RangeError);
    expect(() => screeningStatus({ dateOfBirth: DOB, dateOfDeath: 'yesterday' }, '2025-01-01')).toThrow(RangeError);
    expect(() =>
      screeningStatus({ dateOfBirth: DOB, surveillance: { riskGroup: 'tp53', since: '2025-02-30' } }, '2025-03-01'),
    ).toThrow(RangeError);
  });

  it('accepts null for optional facts', () => {
    expect(
      screeningStatus(
        {
          dateOfBirth: DOB,
          dateOfDeath: null,
          ceased: null,
          reinstated: null,
          surveillance: null,
          lastScreenedOn: null,
        },
        '2024-06-15',
      ).code,
    ).toBe('eligible');
  });
});

// Properties over random women born 1930–2010 (29 February births well represented).
const dayIn = (dob: string, fromAge: number, toAge: number) =>
  fc.integer({ min: 0, max: (toAge - fromAge) * 366 }).map((n) => addDays(nthBirthday(dob, fromAge), n));
const groupArb = fc.constantFrom(...VHR_RISK_GROUPS);

describe('screeningStatus: properties', () => {
  it('gives the right code the day before, on and after 49 years 8 months and the 71st birthday', () => {
    fc.assert(
      fc.property(dobArb, (dob) => {
        const from = addMonths(dob, INVITABLE_FROM_MONTHS);
        const b71 = nthBirthday(dob, 71);
        const code = (today: string) => screeningStatus({ dateOfBirth: dob }, today).code;
        expect(code(addDays(from, -1))).toBe('not_yet_eligible');
        expect(ROUTINE).toContain(code(from));
        expect(ROUTINE).toContain(code(addDays(from, 1)));
        expect(ROUTINE).toContain(code(addDays(b71, -1)));
        expect(code(b71)).toBe('over_age_self_referral');
        expect(code(addDays(b71, 1))).toBe('over_age_self_referral');
        const s = screeningStatus({ dateOfBirth: dob }, from);
        expect(s.eligibleFrom).toBe(from);
        expect(s.routineEndsBefore).toBe(b71);
        expect(ageOn(dob, from)).toBe(49);
        expect(ageOn(dob, addDays(b71, -1))).toBe(70);
        expect(ageOn(dob, b71)).toBe(71);
      }),
      { numRuns: 500 },
    );
  });

  it('gives a never-screened woman in routine screening a due date of her 53rd birthday', () => {
    fc.assert(
      fc.property(dobArb, fc.integer({ min: 0, max: 22 * 366 }), (dob, offset) => {
        const today = addDays(addMonths(dob, INVITABLE_FROM_MONTHS), offset);
        fc.pre(cmp(today, nthBirthday(dob, 71)) < 0);
        const s = screeningStatus({ dateOfBirth: dob }, today);
        expect(s.dueDate).toBe(nthBirthday(dob, 53));
        expect(ageOn(dob, s.dueDate!)).toBe(53);
        expect(ageOn(dob, addDays(s.dueDate!, -1))).toBe(52);
      }),
    );
  });

  it('recalls 36 months after a screen from 46 years 8 months, while that is before the 71st birthday', () => {
    fc.assert(
      fc.property(
        dobArb.chain((dob) => fc.tuple(fc.constant(dob), dayIn(dob, 46, 71), fc.integer({ min: 0, max: 4 * 366 }))),
        ([dob, last, wait]) => {
          const today = addDays(last, wait);
          const b71 = nthBirthday(dob, 71);
          fc.pre(cmp(today, b71) < 0 && cmp(last, b71) < 0);
          const recall = addMonths(last, 36);
          const s = screeningStatus({ dateOfBirth: dob, lastScreenedOn: last }, today);
          const from = addMonths(dob, INVITABLE_FROM_MONTHS);
          const expected = cmp(recall, from) >= 0 ? recall : nthBirthday(dob, 53);
          if (cmp(today, from) < 0) expect(s.code).toBe('not_yet_eligible');
          else expect(s.dueDate).toBe(cmp(expected, b71) < 0 ? expected : null);
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('lets a woman of 71 or over self-refer 36 months after her last screen, or now', () => {
    fc.assert(
      fc.property(
        dobArb.chain((dob) => fc.tuple(fc.constant(dob), dayIn(dob, 71, 90), fc.option(dayIn(dob, 45, 90)))),
        ([dob, today, lastOrNull]) => {
          const last = lastOrNull !== null && cmp(lastOrNull, today) <= 0 ? lastOrNull : null;
          const s = screeningStatus({ dateOfBirth: dob, lastScreenedOn: last }, today);
          expect(s).toMatchObject({ code: 'over_age_self_referral', dueDate: null });
          expect(s.selfReferralFrom).toBe(last ? later(addMonths(last, 36), today) : today);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('recalls very high risk women 12 months after the last test, from the start of her group, to 71', () => {
    fc.assert(
      fc.property(
        dobArb.chain((dob) =>
          fc.tuple(
            fc.constant(dob),
            groupArb,
            dayIn(dob, 18, 71),
            fc.option(fc.integer({ min: 0, max: 3 * 366 })),
            fc.option(dayIn(dob, 10, 36)),
          ),
        ),
        ([dob, group, today, lastAgo, radiotherapyOn]) => {
          const b71 = nthBirthday(dob, 71);
          fc.pre(cmp(today, b71) < 0);
          const last = lastAgo === null ? null : later(addDays(today, -lastAgo), dob);
          const rt = radiotherapyOn !== null && cmp(radiotherapyOn, today) <= 0 ? radiotherapyOn : null;
          const facts: ScreeningFacts = {
            dateOfBirth: dob,
            veryHighRisk: true,
            lastScreenedOn: last,
            surveillance: { riskGroup: group, radiotherapyOn: rt },
          };
          const s = screeningStatus(facts, today);
          const protocol = VHR_PROTOCOLS[group];
          const byAge = nthBirthday(dob, protocol.bands[0]!.fromAge);
          const startsOn =
            protocol.yearsAfterRadiotherapy && rt ? later(byAge, addYears(rt, protocol.yearsAfterRadiotherapy)) : byAge;
          expect(s.code).toBe('very_high_risk');
          expect(s.surveillance?.startsOn).toBe(startsOn);
          const due = later(last ? addMonths(last, 12) : today, startsOn);
          if (cmp(due, b71) >= 0) {
            expect(s.dueDate).toBeNull();
            expect(s.surveillance?.test).toBeNull();
            return;
          }
          expect(s.dueDate).toBe(due);
          const age = ageOn(dob, later(due, today));
          const band = protocol.bands.findLast((b) => b.fromAge <= age)!;
          expect(s.surveillance?.test).toBe(band.test);
          expect(s.explanation).toContain(VHR_TEST_LABELS[band.test]);
          if (group === 'tp53' || group === 'atm_biallelic') expect(s.surveillance?.test).toBe('mri');
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('applies a ceasing from its date, and a reinstatement gives back the status she would have had', () => {
    fc.assert(
      fc.property(
        dobArb.chain((dob) =>
          fc.tuple(
            fc.constant(dob),
            dayIn(dob, 40, 75),
            fc.constantFrom(...CEASING_REASONS),
            fc.boolean(),
            fc.integer({ min: 0, max: 800 }),
          ),
        ),
        ([dob, on, reason, veryHighRisk, gap]) => {
          const base: ScreeningFacts = { dateOfBirth: dob, veryHighRisk, surveillance: { riskGroup: 'brca_palb2' } };
          const ceased = { ...base, ceased: { reason, on } };
          const before = screeningStatus(ceased, addDays(on, -1));
          expect(before.ceasing).toBeNull();
          expect(before).toEqual(screeningStatus(base, addDays(on, -1)));
          const onTheDay = screeningStatus(ceased, on);
          expect(onTheDay.ceasing).toEqual({ reason, label: CEASING_RULES[reason].label, on });
          const withdrawal = reason === 'very_high_risk_withdrawal';
          const dead = cmp(on, nthBirthday(dob, 71)) >= 0;
          if (!withdrawal) expect(onTheDay).toMatchObject({ code: 'ceased', dueDate: null });
          else {
            const routine = screeningStatus({ ...base, veryHighRisk: false }, on);
            expect(onTheDay.code).toBe(routine.code);
            expect(onTheDay.dueDate).toBe(routine.dueDate);
            if (!dead) expect(onTheDay.code).not.toBe('very_high_risk');
          }
          // Reinstated `gap` days after: as if never ceased, with the reinstatement said.
          const reinstatedOn = addDays(on, gap);
          const reinstated = { on: reinstatedOn, ceasedFor: reason, decidedBy: 'Her own request', reason: 'Asked' };
          const back = screeningStatus({ ...base, reinstated }, reinstatedOn);
          const never = screeningStatus(base, reinstatedOn);
          expect(back.code).toBe(never.code);
          expect(back.dueDate).toBe(never.dueDate);
          expect(back.explanation.startsWith(never.explanation)).toBe(true);
          expect(back.reinstatement?.ceasedFor).toBe(CEASING_RULES[reason].label);
          expect(screeningStatus({ ...base, reinstated }, addDays(reinstatedOn, -1)).reinstatement).toBeNull();
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('keeps every status consistent with its rules', () => {
    const factsArb = dobArb.chain((dob) =>
      fc.record({
        dob: fc.constant(dob),
        todayOffset: fc.integer({ min: 0, max: 100 * 366 }),
        lastFraction: fc.option(fc.double({ min: 0, max: 1, noNaN: true }), { nil: null }),
        deathOffset: fc.option(fc.integer({ min: -2000, max: 2000 }), { nil: null }),
        ceasedOffset: fc.option(fc.integer({ min: -2000, max: 2000 }), { nil: null }),
        reason: fc.constantFrom(...CEASING_REASONS),
        veryHighRisk: fc.boolean(),
        group: fc.option(groupArb, { nil: null }),
      }),
    );
    fc.assert(
      fc.property(factsArb, (r) => {
        const dobDay = utcDay(r.dob);
        const today = fromUtcDay(dobDay + r.todayOffset);
        const lastScreenedOn =
          r.lastFraction === null ? null : fromUtcDay(dobDay + Math.floor(r.lastFraction * r.todayOffset));
        const facts: ScreeningFacts = {
          dateOfBirth: r.dob,
          lastScreenedOn,
          veryHighRisk: r.veryHighRisk,
          surveillance: { riskGroup: r.group },
          dateOfDeath: r.deathOffset === null ? null : addDays(today, r.deathOffset),
          ceased: r.ceasedOffset === null ? null : { reason: r.reason, on: addDays(today, r.ceasedOffset) },
        };
        const s = screeningStatus(facts, today);

        expect(s.label).toBe(SCREENING_STATUS_LABELS[s.code]);
        expect(s.eligibleFrom).toBe(addMonths(r.dob, INVITABLE_FROM_MONTHS));
        expect(s.firstCallBy).toBe(nthBirthday(r.dob, 53));
        expect(s.routineEndsBefore).toBe(nthBirthday(r.dob, 71));
        expect(s.explanation.length).toBeGreaterThan(0);

        const dead = facts.dateOfDeath != null && cmp(facts.dateOfDeath, today) <= 0;
        const ceasedNow = facts.ceased != null && cmp(facts.ceased.on, today) <= 0;
        const withdrawn = ceasedNow && r.reason === 'very_high_risk_withdrawal';
        const over71 = cmp(today, s.routineEndsBefore) >= 0;
        if (dead) expect(s.code).toBe('deceased');
        else if (ceasedNow && !withdrawn) expect(s.code).toBe('ceased');
        else if (over71) expect(s.code).toBe('over_age_self_referral');
        else if (r.veryHighRisk && !withdrawn) expect(s.code).toBe('very_high_risk');
        else if (cmp(today, s.eligibleFrom) < 0) expect(s.code).toBe('not_yet_eligible');
        else expect(ROUTINE).toContain(s.code);

        if (['deceased', 'ceased', 'over_age_self_referral'].includes(s.code)) expect(s.dueDate).toBeNull();
        expect(s.selfReferralFrom !== null).toBe(s.code === 'over_age_self_referral');
        expect(s.surveillance !== null).toBe(s.code === 'very_high_risk');
        if (s.code === 'ceased') expect(s.explanation).toContain(CEASING_RULES[r.reason].label);
        if (s.code === 'not_yet_eligible') expect(s.dueDate).toBe(nthBirthday(r.dob, 53));
        if (s.dueDate !== null) expect(cmp(s.dueDate, s.routineEndsBefore)).toBeLessThan(0);
        if (ROUTINE.includes(s.code)) {
          if (s.code === 'overdue') expect(cmp(s.dueDate!, today)).toBeLessThan(0);
          if (s.code === 'due') {
            expect(cmp(s.dueDate!, today)).toBeGreaterThanOrEqual(0);
            expect(cmp(s.dueDate!, addMonths(today, 6))).toBeLessThanOrEqual(0);
          }
          if (s.code === 'eligible' && s.dueDate !== null)
            expect(cmp(s.dueDate, addMonths(today, 6))).toBeGreaterThan(0);
          const recall = lastScreenedOn === null ? null : addMonths(lastScreenedOn, ROUTINE_RECALL_MONTHS);
          const expectedDue = recall !== null && cmp(recall, s.eligibleFrom) >= 0 ? recall : nthBirthday(r.dob, 53);
          expect(s.dueDate).toBe(cmp(expectedDue, s.routineEndsBefore) < 0 ? expectedDue : null);
        }
      }),
      { numRuns: 3000 },
    );
  });
});

describe('ceasing and reinstating on the record as it stands (pathway/ceasing.ts)', () => {
  const request = {
    reason: 'informed_choice',
    on: '2026-11-20',
    evidence: 'Letter',
    veryHighRisk: true,
    dateOfBirth: DOB,
  };

  it("refuses to cease a woman already ceased, whatever the record's text, and a second withdrawal", () => {
    expect(ceasingProblemsOnRecord(request, '2026-11-23')).toEqual([]);
    expect(
      ceasingProblemsOnRecord({ ...request, ceased: { reason: 'Emigrated', on: '2020-01-01' } }, '2026-11-23'),
    ).toEqual(['She is already ceased (Emigrated); reinstate her first']);
    expect(
      ceasingProblemsOnRecord({ ...request, ceased: { reason: 'Mental capacity', on: '2020-01-01' } }, '2026-11-23'),
    ).toEqual(['She is already ceased (Best interests (Mental Capacity Act 2005)); reinstate her first']);
    const withdrawn = { ...request, ceased: { reason: 'very_high_risk_withdrawal', on: '2026-01-01' } };
    expect(ceasingProblemsOnRecord(withdrawn, '2026-11-23')).toEqual([]);
    expect(ceasingProblemsOnRecord({ ...withdrawn, reason: 'very_high_risk_withdrawal' }, '2026-11-23')).toEqual([
      'She has already withdrawn from very high risk screening',
    ]);
  });

  it('reinstates only a ceased woman, by the rule when the reason is known, with the same checks when not', () => {
    const reinstate = { on: '2026-11-23', decidedBy: '', reason: '' };
    expect(reinstatementProblemsOnRecord({ ...reinstate, ceased: null }, '2026-11-23')).toEqual([
      'She is not ceased from screening: there is nothing to reinstate',
    ]);
    expect(
      reinstatementProblemsOnRecord(
        { ...reinstate, ceased: { reason: 'Bilateral mastectomy', on: '2026-01-01' } },
        '2026-11-23',
      ),
    ).toEqual([
      'Say who decided: a clinician finding that breast tissue remains',
      'Give the reason for reinstating her',
    ]);
    expect(
      reinstatementProblemsOnRecord(
        { on: '2019-12-31', decidedBy: '', reason: 'x', ceased: { reason: 'Emigrated', on: '2020-01-01' } },
        '2026-11-23',
      ),
    ).toEqual(['The date of reinstatement cannot be before she was ceased', 'Say who decided to reinstate her']);
    expect(
      reinstatementProblemsOnRecord(
        { on: '2026-11-24', decidedBy: 'GP', reason: 'x', ceased: { reason: 'Emigrated', on: '2020-01-01' } },
        '2026-11-23',
      ),
    ).toEqual(['The date of reinstatement cannot be in the future']);
  });
});
