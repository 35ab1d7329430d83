import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CEASING_REASONS, ceasingProblems, reinstatementProblems } from '../../../src/pathway/ceasing.js';
import { addDays, addMonths, compareIsoDate, nthBirthday } from '../../../src/pathway/dates.js';
import { selectForBatch, type SelectionFacts } from '../../../src/pathway/invitation-selection.js';
import { dobArb, isoDateArb } from './arbitraries.js';

const OFFICE = 'LNW';
const dob = '1975-06-15';
const facts = (more: Partial<SelectionFacts> = {}): SelectionFacts => ({ dateOfBirth: dob, bsoCode: OFFICE, ...more });
const codeOf = (f: SelectionFacts, on: string) => {
  const s = selectForBatch(f, OFFICE, on);
  return s.selected ? s.basis : s.code;
};

describe('selectForBatch: ages', () => {
  it('takes her from 49 years 8 months on the batch date, up to the day before her 71st birthday', () => {
    expect(codeOf(facts(), '2025-02-14')).toBe('under_age');
    expect(codeOf(facts(), '2025-02-15')).toBe('first_call');
    expect(codeOf(facts(), '2046-06-14')).toBe('first_call');
    expect(codeOf(facts(), '2046-06-15')).toBe('over_age');
  });

  it('counts 49 years 8 months from a 31st to the end of the shorter month', () => {
    // 31 May 1975 + 49 years 8 months is 31 January 2025; 30 June 1975 + 49 years 8 months has no 30 February: 28th.
    expect(codeOf(facts({ dateOfBirth: '1975-05-31' }), '2025-01-30')).toBe('under_age');
    expect(codeOf(facts({ dateOfBirth: '1975-05-31' }), '2025-01-31')).toBe('first_call');
    expect(codeOf(facts({ dateOfBirth: '1975-06-30' }), '2025-02-27')).toBe('under_age');
    expect(codeOf(facts({ dateOfBirth: '1975-06-30' }), '2025-02-28')).toBe('first_call');
  });
});

describe('selectForBatch: recent screens', () => {
  const last = '2030-03-10';
  it('leaves out a woman screened less than 24 months before, and never invites within 12 months', () => {
    expect(codeOf(facts({ lastScreenedOn: last }), '2031-03-09')).toBe('screened_recently');
    expect(codeOf(facts({ lastScreenedOn: last }), '2031-03-10')).toBe('safety_period');
    expect(codeOf(facts({ lastScreenedOn: last }), '2032-03-09')).toBe('safety_period');
    expect(codeOf(facts({ lastScreenedOn: last }), '2032-03-10')).toBe('routine_recall');
  });
});

describe('selectForBatch: excluded whatever else, with the reason', () => {
  const on = '2030-01-01';
  it('names the first reason that applies: died, moved out, ceased, suspended, very high risk', () => {
    expect(
      codeOf(facts({ dateOfDeath: '2029-12-31', ceased: { reason: 'informed_choice', on: '2029-01-01' } }), on),
    ).toBe('died');
    expect(codeOf(facts({ bsoCode: 'XYZ', ceased: { reason: 'informed_choice', on: '2029-01-01' } }), on)).toBe(
      'moved_out',
    );
    const ceased = selectForBatch(facts({ ceased: { reason: 'bilateral_mastectomy', on: '2029-01-01' } }), OFFICE, on);
    expect(ceased).toEqual({
      selected: false,
      code: 'ceased',
      explanation: 'Ceased on 1 January 2029: Bilateral mastectomy',
    });
    const suspended = selectForBatch(
      facts({ suspended: { reason: 'breast cancer treatment (Trust EPR)', since: '2029-06-01' } }),
      OFFICE,
      on,
    );
    expect(suspended.selected ? '' : suspended.explanation).toMatch(
      /suspended since 1 June 2029: breast cancer treatment/,
    );
    expect(codeOf(facts({ veryHighRisk: true }), on)).toBe('very_high_risk');
  });

  it('applies a death, ceasing or suspension only from its date', () => {
    expect(codeOf(facts({ dateOfDeath: '2030-01-02' }), on)).toBe('first_call');
    expect(codeOf(facts({ ceased: { reason: 'informed_choice', on: '2030-01-02' } }), on)).toBe('first_call');
    expect(codeOf(facts({ suspended: { reason: 'treatment', since: '2030-01-02' } }), on)).toBe('first_call');
  });

  it("reads a ceasing reason from the record as a code, a label or an older system's label", () => {
    const ceasedAs = (reason: string) =>
      selectForBatch(facts({ ceased: { reason, on: '2029-01-01' } }), OFFICE, on) as { explanation: string };
    expect(ceasedAs('Mental capacity').explanation).toBe(
      'Ceased on 1 January 2029: Best interests (Mental Capacity Act 2005)',
    );
    expect(ceasedAs('informed choice').explanation).toBe('Ceased on 1 January 2029: Informed choice');
    expect(ceasedAs('Moved abroad').explanation).toBe('Ceased on 1 January 2029: Moved abroad');
  });

  it('puts a woman who withdrew from very high risk screening back in routine batches', () => {
    const withdrawn = facts({ veryHighRisk: true, ceased: { reason: 'very_high_risk_withdrawal', on: '2029-01-01' } });
    expect(codeOf(withdrawn, on)).toBe('first_call');
  });

  it('refuses dates that are not real', () => {
    expect(() => selectForBatch(facts({ dateOfBirth: '1975-02-30' }), OFFICE, on)).toThrow(RangeError);
  });
});

describe('selectForBatch: properties', () => {
  const factsArb = fc.record({
    dateOfBirth: dobArb,
    dateOfDeath: fc.option(isoDateArb(1990, 2060), { nil: null }),
    bsoCode: fc.constantFrom(OFFICE, 'XYZ'),
    ceased: fc.option(fc.record({ reason: fc.constantFrom(...CEASING_REASONS), on: isoDateArb(1990, 2060) }), {
      nil: null,
    }),
    suspended: fc.option(fc.record({ reason: fc.constant('treatment'), since: isoDateArb(1990, 2060) }), { nil: null }),
    veryHighRisk: fc.boolean(),
    lastScreenedOn: fc.option(isoDateArb(1990, 2060), { nil: null }),
  });

  it('selects only a living woman of this office, in the ages, not ceased, suspended or screened in 24 months', () => {
    fc.assert(
      fc.property(factsArb, isoDateArb(2000, 2060), (f, on) => {
        const s = selectForBatch(f, OFFICE, on);
        if (!s.selected) return;
        expect(f.bsoCode).toBe(OFFICE);
        expect(f.dateOfDeath == null || compareIsoDate(on, f.dateOfDeath) < 0).toBe(true);
        expect(compareIsoDate(on, addMonths(f.dateOfBirth, 49 * 12 + 8))).toBeGreaterThanOrEqual(0);
        expect(compareIsoDate(on, nthBirthday(f.dateOfBirth, 71))).toBeLessThan(0);
        if (f.lastScreenedOn != null)
          expect(compareIsoDate(on, addMonths(f.lastScreenedOn, 24))).toBeGreaterThanOrEqual(0);
        expect(s.basis === 'first_call').toBe(f.lastScreenedOn == null);
      }),
      { numRuns: 2000 },
    );
  });

  it('a woman left out for a recent screen is taken 24 months after it, if still in the ages and nothing else changed', () => {
    fc.assert(
      fc.property(factsArb, isoDateArb(2000, 2060), (f, on) => {
        const s = selectForBatch(f, OFFICE, on);
        if (s.selected || (s.code !== 'safety_period' && s.code !== 'screened_recently')) return;
        const later = addMonths(f.lastScreenedOn!, 24);
        const then = selectForBatch(f, OFFICE, later);
        if (!then.selected) expect(['died', 'ceased', 'suspended', 'over_age']).toContain(then.code);
        else expect(then.basis).toBe('routine_recall');
        // The day before, she is still left out for it.
        const dayBefore = selectForBatch(f, OFFICE, addDays(later, -1));
        expect(dayBefore.selected).toBe(false);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('ceasing and reinstatement', () => {
  const base = { on: '2030-01-01', evidence: 'letter 2029-12-20', veryHighRisk: false, dateOfBirth: dob };
  it('takes each reason with its evidence, and says what is missing otherwise', () => {
    for (const reason of CEASING_REASONS.filter((r) => r !== 'very_high_risk_withdrawal'))
      expect(ceasingProblems({ ...base, reason }, '2030-01-01')).toEqual([]);
    expect(ceasingProblems({ ...base, reason: 'bilateral_mastectomy', evidence: ' ' }, '2030-01-01')).toEqual([
      "Record a clinician's confirmation that both breasts were removed",
    ]);
    expect(ceasingProblems({ ...base, reason: 'moved away' }, '2030-01-01')[0]).toMatch(
      /^Choose a reason for ceasing: Informed choice, Bilateral mastectomy/,
    );
  });

  it('refuses a future date, a death, a second ceasing, and very high risk withdrawal for a routine woman', () => {
    expect(ceasingProblems({ ...base, reason: 'informed_choice', on: '2030-01-02' }, '2030-01-01')).toEqual([
      'The date of ceasing cannot be in the future',
    ]);
    expect(ceasingProblems({ ...base, reason: 'informed_choice', dateOfDeath: '2029-01-01' }, '2030-01-01')).toEqual([
      'She has died: she is no longer invited, and is not ceased',
    ]);
    expect(
      ceasingProblems(
        { ...base, reason: 'informed_choice', ceased: { reason: 'best_interests', on: '2029-01-01' } },
        '2030-01-01',
      ),
    ).toEqual(['She is already ceased (Best interests (Mental Capacity Act 2005)); reinstate her first']);
    expect(ceasingProblems({ ...base, reason: 'very_high_risk_withdrawal' }, '2030-01-01')).toEqual([
      'Only a woman on very high risk screening can withdraw from it',
    ]);
    expect(ceasingProblems({ ...base, reason: 'very_high_risk_withdrawal', veryHighRisk: true }, '2030-01-01')).toEqual(
      [],
    );
  });

  it('reinstates with who decided and why, not before the ceasing nor in the future', () => {
    const ceased = { reason: 'lasting_power_of_attorney' as const, on: '2029-01-01' };
    expect(
      reinstatementProblems({ ceased, on: '2030-01-01', decidedBy: 'her attorney', reason: 'reviewed' }, '2030-01-01'),
    ).toEqual([]);
    expect(reinstatementProblems({ ceased, on: '2028-12-31', decidedBy: '', reason: '' }, '2030-01-01')).toEqual([
      'The date of reinstatement cannot be before she was ceased',
      'Say who decided: her attorney, or herself if she regains capacity',
      'Give the reason for reinstating her',
    ]);
  });
});
