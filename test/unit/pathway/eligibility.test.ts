import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { addDays, addMonths, ageOn, compareIsoDate, nthBirthday } from '../../../src/pathway/dates.js';
import {
  ROUTINE_RECALL_MONTHS,
  SCREENING_STATUS_LABELS,
  screeningStatus,
  type ScreeningFacts,
  type ScreeningStatusCode,
} from '../../../src/pathway/eligibility.js';
import { dobArb, fromUtcDay, utcDay } from './arbitraries.js';

const DOB = '1974-06-15'; // 50th 2024-06-15, 53rd 2027-06-15, 71st 2045-06-15
const ROUTINE: ScreeningStatusCode[] = ['eligible', 'due', 'overdue'];

describe('screeningStatus: age bands', () => {
  it('is not yet eligible the day before the 50th birthday, due by the 53rd', () => {
    const s = screeningStatus({ dateOfBirth: DOB }, '2024-06-14');
    expect(s).toMatchObject({
      code: 'not_yet_eligible',
      label: 'Not yet eligible',
      dueDate: '2027-06-15',
      eligibleFrom: '2024-06-15',
      routineEndsBefore: '2045-06-15',
    });
    expect(s.explanation).toContain('first invitation between 50th and 53rd birthday');
  });

  it('enters the routine cohort on the 50th birthday, due by the 53rd if never screened', () => {
    expect(screeningStatus({ dateOfBirth: DOB }, '2024-06-15')).toMatchObject({
      code: 'eligible',
      label: 'Eligible',
      dueDate: '2027-06-15',
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
    expect(s.explanation).toContain('15 June 2027');
  });

  it('recalls 36 months after the last screen', () => {
    expect(ROUTINE_RECALL_MONTHS).toBe(36);
    const facts = { dateOfBirth: DOB, lastScreenedOn: '2030-03-10' };
    expect(screeningStatus(facts, '2031-01-01')).toMatchObject({ code: 'eligible', dueDate: '2033-03-10' });
    expect(screeningStatus(facts, '2032-09-10')).toMatchObject({ code: 'due', dueDate: '2033-03-10' });
    expect(screeningStatus(facts, '2033-03-11')).toMatchObject({ code: 'overdue', dueDate: '2033-03-10' });
  });

  it('clamps the recall date to the end of a short month', () => {
    const facts = { dateOfBirth: DOB, lastScreenedOn: '2028-02-29' };
    expect(screeningStatus(facts, '2029-01-01').dueDate).toBe('2031-02-28');
  });

  it('keeps the 53rd birthday when the recall from an earlier screen falls before the 50th birthday', () => {
    const facts = { dateOfBirth: DOB, lastScreenedOn: '2019-01-01' }; // screened at 44
    expect(screeningStatus(facts, '2025-01-01').dueDate).toBe('2027-06-15');
  });

  it('uses the recall date from a screen at 49 when it falls after the 50th birthday', () => {
    const facts = { dateOfBirth: DOB, lastScreenedOn: '2024-01-01' };
    expect(screeningStatus(facts, '2024-07-01').dueDate).toBe('2027-01-01');
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
    const before71 = screeningStatus({ dateOfBirth: '1954-03-10', lastScreenedOn: '2023-01-05' }, '2025-03-09');
    expect(before71).toMatchObject({ code: 'eligible', dueDate: null });
    expect(before71.explanation).toMatch(/last routine screen done/i);
    expect(before71.explanation).toMatch(/self-refer/);
    // recall lands exactly on the 71st birthday
    expect(
      screeningStatus({ dateOfBirth: '1954-03-10', lastScreenedOn: '2022-03-10' }, '2024-01-01').dueDate,
    ).toBeNull();
    // and one day before it is still a routine due date
    expect(screeningStatus({ dateOfBirth: '1954-03-10', lastScreenedOn: '2022-03-09' }, '2024-01-01').dueDate).toBe(
      '2025-03-09',
    );
  });

  it('is over age with no due date on the 71st birthday', () => {
    const s = screeningStatus({ dateOfBirth: '1954-03-10', lastScreenedOn: '2021-05-01' }, '2025-03-10');
    expect(s).toMatchObject({ code: 'over_age_self_referral', label: 'Over 71: self-referral', dueDate: null });
    expect(s.explanation).toContain('can self-refer every 3 years');
  });
});

describe('screeningStatus: 29 February births', () => {
  const dob = '1960-02-29'; // 50th birthday 2010-03-01, 71st 2031-03-01

  it('becomes eligible on 1 March in a common year', () => {
    expect(screeningStatus({ dateOfBirth: dob }, '2010-02-28').code).toBe('not_yet_eligible');
    expect(screeningStatus({ dateOfBirth: dob }, '2010-03-01')).toMatchObject({
      code: 'eligible',
      eligibleFrom: '2010-03-01',
      dueDate: '2013-03-01', // 53rd birthday, 2013 is a common year
      routineEndsBefore: '2031-03-01',
    });
  });

  it('leaves routine screening on 1 March of the 71st year', () => {
    expect(ROUTINE).toContain(screeningStatus({ dateOfBirth: dob, lastScreenedOn: '2028-06-01' }, '2031-02-28').code);
    expect(screeningStatus({ dateOfBirth: dob }, '2031-03-01').code).toBe('over_age_self_referral');
  });

  it('always puts the 50th, 53rd and 71st birthdays on 1 March (none of 50, 53, 71 is a multiple of 4)', () => {
    for (const born of ['1932-02-29', '1956-02-29', '1972-02-29', '2000-02-29', '2008-02-29']) {
      const y = Number(born.slice(0, 4));
      const s = screeningStatus({ dateOfBirth: born }, `${y + 1}-01-01`);
      expect(s.eligibleFrom).toBe(`${y + 50}-03-01`);
      expect(s.dueDate).toBe(`${y + 53}-03-01`);
      expect(s.routineEndsBefore).toBe(`${y + 71}-03-01`);
    }
  });
});

describe('screeningStatus: deceased, ceased, very high risk', () => {
  it('is deceased from the date of death, with no due date, whatever else is true', () => {
    const facts: ScreeningFacts = {
      dateOfBirth: DOB,
      dateOfDeath: '2028-01-10',
      ceased: { reason: 'Mastectomy', on: '2026-01-01' },
      veryHighRisk: true,
      lastScreenedOn: '2025-01-01',
    };
    const s = screeningStatus(facts, '2028-01-10');
    expect(s).toMatchObject({ code: 'deceased', label: 'Deceased', dueDate: null });
    expect(s.explanation).toContain('10 January 2028');
  });

  it('ignores a date of death after today', () => {
    expect(screeningStatus({ dateOfBirth: DOB, dateOfDeath: '2030-01-01' }, '2029-12-31').code).not.toBe('deceased');
  });

  it('is ceased with the reason and no due date', () => {
    const s = screeningStatus(
      { dateOfBirth: DOB, ceased: { reason: 'Bilateral mastectomy', on: '2026-05-01' }, veryHighRisk: true },
      '2026-05-01',
    );
    expect(s).toMatchObject({ code: 'ceased', label: 'Ceased', dueDate: null });
    expect(s.explanation).toContain('Bilateral mastectomy');
    expect(s.explanation).toContain('1 May 2026');
  });

  it('does not apply a ceasing dated after today', () => {
    const s = screeningStatus(
      { dateOfBirth: DOB, ceased: { reason: 'Informed choice', on: '2027-01-01' } },
      '2026-12-31',
    );
    expect(s.code).not.toBe('ceased');
  });

  it('recalls very high risk women every 12 months', () => {
    const s = screeningStatus({ dateOfBirth: DOB, veryHighRisk: true, lastScreenedOn: '2024-01-10' }, '2024-06-01');
    expect(s).toMatchObject({ code: 'very_high_risk', label: 'Very high risk: annual', dueDate: '2025-01-10' });
  });

  it('makes a never-screened very high risk woman due today, even under 50', () => {
    expect(screeningStatus({ dateOfBirth: '1990-01-01', veryHighRisk: true }, '2025-07-01')).toMatchObject({
      code: 'very_high_risk',
      dueDate: '2025-07-01',
    });
  });

  it('says when very high risk screening is overdue', () => {
    const s = screeningStatus({ dateOfBirth: DOB, veryHighRisk: true, lastScreenedOn: '2024-01-10' }, '2025-02-01');
    expect(s.dueDate).toBe('2025-01-10');
    expect(s.explanation).toContain('overdue');
  });

  it('ends very high risk screening at the 71st birthday', () => {
    const facts = { dateOfBirth: '1954-03-10', veryHighRisk: true, lastScreenedOn: '2024-06-01' };
    expect(screeningStatus(facts, '2025-03-09').code).toBe('very_high_risk');
    expect(screeningStatus(facts, '2025-03-10')).toMatchObject({ code: 'over_age_self_referral', dueDate: null });
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
  });

  it('accepts null for optional facts', () => {
    expect(
      screeningStatus({ dateOfBirth: DOB, dateOfDeath: null, ceased: null, lastScreenedOn: null }, '2024-06-15').code,
    ).toBe('eligible');
  });
});

// Properties over random women born 1930–2010.
const factsArb = dobArb.chain((dob) =>
  fc.record({
    dob: fc.constant(dob),
    todayOffset: fc.integer({ min: 0, max: 100 * 366 }),
    lastFraction: fc.option(fc.double({ min: 0, max: 1, noNaN: true }), { nil: null }),
    deathOffset: fc.option(fc.integer({ min: -2000, max: 2000 }), { nil: null }),
    ceasedOffset: fc.option(fc.integer({ min: -2000, max: 2000 }), { nil: null }),
    veryHighRisk: fc.boolean(),
  }),
);

describe('screeningStatus: properties', () => {
  it('gives the right code the day before, on and after the 50th and 71st birthdays', () => {
    fc.assert(
      fc.property(dobArb, (dob) => {
        const b50 = nthBirthday(dob, 50);
        const b71 = nthBirthday(dob, 71);
        const code = (today: string) => screeningStatus({ dateOfBirth: dob }, today).code;
        expect(code(addDays(b50, -1))).toBe('not_yet_eligible');
        expect(ROUTINE).toContain(code(b50));
        expect(ROUTINE).toContain(code(addDays(b50, 1)));
        expect(ROUTINE).toContain(code(addDays(b71, -1)));
        expect(code(b71)).toBe('over_age_self_referral');
        expect(code(addDays(b71, 1))).toBe('over_age_self_referral');
        const s = screeningStatus({ dateOfBirth: dob }, b50);
        expect(s.eligibleFrom).toBe(b50);
        expect(s.routineEndsBefore).toBe(b71);
        expect(ageOn(dob, s.eligibleFrom)).toBe(50);
        expect(ageOn(dob, addDays(s.routineEndsBefore, -1))).toBe(70);
      }),
      { numRuns: 500 },
    );
  });

  it('gives a never-screened woman in the routine cohort a due date of her 53rd birthday', () => {
    fc.assert(
      fc.property(dobArb, fc.integer({ min: 0, max: 21 * 365 }), (dob, offset) => {
        const today = addDays(nthBirthday(dob, 50), offset);
        fc.pre(compareIsoDate(today, nthBirthday(dob, 71)) < 0);
        expect(screeningStatus({ dateOfBirth: dob }, today).dueDate).toBe(nthBirthday(dob, 53));
      }),
    );
  });

  it('keeps every status consistent with its rules', () => {
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
          dateOfDeath: r.deathOffset === null ? null : addDays(today, r.deathOffset),
          ceased: r.ceasedOffset === null ? null : { reason: 'Informed choice', on: addDays(today, r.ceasedOffset) },
        };
        const s = screeningStatus(facts, today);
        const cmp = (a: string, b: string) => compareIsoDate(a, b);

        expect(s.label).toBe(SCREENING_STATUS_LABELS[s.code]);
        expect(s.eligibleFrom).toBe(nthBirthday(r.dob, 50));
        expect(s.routineEndsBefore).toBe(nthBirthday(r.dob, 71));
        expect(s.explanation.length).toBeGreaterThan(0);

        const dead = facts.dateOfDeath != null && cmp(facts.dateOfDeath, today) <= 0;
        const ceased = facts.ceased != null && cmp(facts.ceased.on, today) <= 0;
        const over71 = cmp(today, s.routineEndsBefore) >= 0;
        if (dead) expect(s.code).toBe('deceased');
        else if (ceased) expect(s.code).toBe('ceased');
        else if (over71) expect(s.code).toBe('over_age_self_referral');
        else if (r.veryHighRisk) expect(s.code).toBe('very_high_risk');
        else if (cmp(today, s.eligibleFrom) < 0) expect(s.code).toBe('not_yet_eligible');
        else expect(ROUTINE).toContain(s.code);

        if (['deceased', 'ceased', 'over_age_self_referral'].includes(s.code)) expect(s.dueDate).toBeNull();
        if (s.code === 'ceased') expect(s.explanation).toContain('Informed choice');
        if (s.code === 'not_yet_eligible') expect(s.dueDate).toBe(nthBirthday(r.dob, 53));
        if (s.code === 'very_high_risk') {
          expect(s.dueDate).toBe(lastScreenedOn === null ? today : addMonths(lastScreenedOn, 12));
        }
        if (ROUTINE.includes(s.code)) {
          if (s.dueDate !== null) expect(cmp(s.dueDate, s.routineEndsBefore)).toBeLessThan(0);
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
