import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  BIOPSIES,
  checkOutcome,
  checkProcedure,
  EARLY_RECALL_MONTHS,
  episodeEnd,
  type OutcomeInput,
  type ProcedureInput,
} from '../../../src/pathway/assessment.js';
import { addMonths } from '../../../src/pathway/dates.js';
import {
  ASSESSMENT_OUTCOMES,
  ASSESSMENT_PROCEDURES,
  B_CODES,
  isMalignant,
} from '../../../src/pathway/screening-outcomes.js';
import { isoDateArb } from './arbitraries.js';

const facts = { screenedOn: '2026-11-16', today: '2026-11-23' };

const outcome = (overrides: Partial<OutcomeInput> = {}): OutcomeInput => ({
  outcome: 'benign',
  side: null,
  sizeMm: null,
  grade: null,
  earlyRecallMonths: null,
  referredToTreatment: false,
  treatmentProvider: null,
  decidedOn: '2026-11-20',
  ...overrides,
});
const malignant = (overrides: Partial<OutcomeInput> = {}) =>
  outcome({
    outcome: 'malignant_invasive',
    side: 'left',
    sizeMm: '14.5',
    grade: '2',
    referredToTreatment: true,
    treatmentProvider: 'Leeds Teaching Hospitals',
    ...overrides,
  });
const procedure = (overrides: Partial<ProcedureInput> = {}): ProcedureInput => ({
  procedure: 'core_biopsy',
  side: 'left',
  performedOn: '2026-11-20',
  bCode: 'B2',
  notes: '',
  ...overrides,
});

describe('how an assessment outcome ends the episode', () => {
  it('normal or benign: routine recall 36 months after screening (12 under very high risk)', () => {
    for (const o of ['normal', 'benign'] as const) {
      expect(
        episodeEnd({ outcome: o, earlyRecallMonths: null }, { screenedOn: '2026-11-16', veryHighRisk: false }),
      ).toEqual({ endCode: 'SC', finalAction: 'RR', nextTestDue: '2029-11-16' });
      expect(
        episodeEnd({ outcome: o, earlyRecallMonths: null }, { screenedOn: '2026-11-16', veryHighRisk: true }),
      ).toEqual({ endCode: 'SC', finalAction: 'RR', nextTestDue: '2027-11-16' });
    }
  });

  it('early recall: EC, due the chosen months after screening; malignant: MT with no screening date', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...ASSESSMENT_OUTCOMES),
        fc.option(fc.constantFrom(...EARLY_RECALL_MONTHS), { nil: null }),
        isoDateArb(2000, 2060),
        fc.boolean(),
        (o, months, screenedOn, veryHighRisk) => {
          const end = episodeEnd({ outcome: o, earlyRecallMonths: months }, { screenedOn, veryHighRisk });
          expect(end.endCode).toBe('SC');
          if (isMalignant(o)) expect(end).toEqual({ endCode: 'SC', finalAction: 'MT', nextTestDue: null });
          else if (months !== null)
            expect(end).toEqual({ endCode: 'SC', finalAction: 'EC', nextTestDue: addMonths(screenedOn, months) });
          else expect(end.finalAction).toBe('RR');
        },
      ),
    );
  });
});

describe('recording a procedure', () => {
  it('accepts a biopsy with its side and B code, and any procedure without one', () => {
    expect(checkProcedure(procedure(), facts)).toEqual({
      ok: true,
      value: { procedure: 'core_biopsy', side: 'left', performedOn: '2026-11-20', bCode: 'B2', notes: '' },
    });
    expect(checkProcedure(procedure({ procedure: 'ultrasound', side: null, bCode: null }), facts).ok).toBe(true);
    expect(checkProcedure(procedure({ bCode: null }), facts).ok).toBe(true);
  });

  it('gives every problem at once, each at its field', () => {
    expect(
      checkProcedure(
        { procedure: 'x-ray', side: 'middle', performedOn: '2026-02-30', bCode: 'B9', notes: 'n'.repeat(2001) },
        facts,
      ),
    ).toEqual({
      ok: false,
      problems: {
        procedure: 'Choose the procedure',
        side: 'Choose left, right or both',
        performedOn: 'Enter the date of the procedure as a real date',
        bCode: 'Choose a B code from B1 to B5c',
        notes: 'Notes must be 2,000 characters or fewer',
      },
    });
  });

  it('a B code only for a biopsy, a biopsy always with its side; dates from screening to today', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...ASSESSMENT_PROCEDURES),
        fc.option(fc.constantFrom(...B_CODES), { nil: null }),
        fc.option(fc.constantFrom('left', 'right', 'bilateral'), { nil: null }),
        fc.integer({ min: -3, max: 10 }),
        (p, bCode, side, day) => {
          const performedOn = `2026-11-${String(16 + day).padStart(2, '0')}`;
          const checked = checkProcedure({ procedure: p, side, performedOn, bCode, notes: '' }, facts);
          const biopsy = BIOPSIES.includes(p);
          const expectOk = (bCode === null || biopsy) && (!biopsy || side !== null) && day >= 0 && day <= 7;
          expect(checked.ok).toBe(expectOk);
          if (!checked.ok) {
            if (bCode !== null && !biopsy) expect(checked.problems.bCode).toMatch(/Only a biopsy/);
            if (biopsy && side === null) expect(checked.problems.side).toMatch(/which breast the biopsy/);
            if (day < 0) expect(checked.problems.performedOn).toMatch(/before she was screened/);
            if (day > 7) expect(checked.problems.performedOn).toMatch(/today or in the past/);
          }
        },
      ),
    );
  });
});

describe('recording an outcome', () => {
  it('accepts a malignant outcome with size, grade, side and referral', () => {
    expect(checkOutcome(malignant(), facts)).toEqual({
      ok: true,
      value: {
        outcome: 'malignant_invasive',
        side: 'left',
        sizeMm: 14.5,
        grade: 2,
        earlyRecallMonths: null,
        referredToTreatment: true,
        treatmentProvider: 'Leeds Teaching Hospitals',
        decidedOn: '2026-11-20',
      },
    });
    // Size and grade may not be known yet.
    expect(checkOutcome(malignant({ sizeMm: '', grade: null, outcome: 'malignant_non_invasive' }), facts).ok).toBe(
      true,
    );
  });

  it('size and grade only for a malignant outcome; referral only for one, and always for one', () => {
    expect(checkOutcome(outcome({ sizeMm: '10', grade: '1' }), facts)).toEqual({
      ok: false,
      problems: {
        sizeMm: 'Only a malignant outcome has a size: leave it blank',
        grade: 'Only a malignant outcome has a grade: leave it blank',
      },
    });
    expect(checkOutcome(outcome({ referredToTreatment: true, treatmentProvider: 'St Elsewhere' }), facts)).toEqual({
      ok: false,
      problems: { referredToTreatment: 'Only a malignant outcome is referred to treatment' },
    });
    expect(checkOutcome(malignant({ referredToTreatment: false, treatmentProvider: null }), facts)).toEqual({
      ok: false,
      problems: { referredToTreatment: 'A malignant outcome is referred to treatment: record the referral' },
    });
    expect(checkOutcome(malignant({ treatmentProvider: '  ' }), facts)).toEqual({
      ok: false,
      problems: { treatmentProvider: 'Enter where she is referred for treatment' },
    });
    expect(checkOutcome(malignant({ side: null }), facts)).toEqual({
      ok: false,
      problems: { side: 'Choose which breast the cancer is in' },
    });
    expect(checkOutcome(outcome({ outcome: 'normal', side: 'left' }), facts).ok).toBe(false);
  });

  it('sizes above 0 and below 500 mm with at most one decimal place; grades 1 to 3', () => {
    for (const bad of ['0', '500', '-3', '12.25', 'twelve', '1e2'])
      expect(checkOutcome(malignant({ sizeMm: bad }), facts)).toEqual({
        ok: false,
        problems: { sizeMm: expect.stringMatching(/^Enter the size in millimetres/) },
      });
    for (const good of ['0.1', '9', '49.9', '499.9'])
      expect(checkOutcome(malignant({ sizeMm: good }), facts).ok).toBe(true);
    for (const bad of ['0', '4', 'high']) expect(checkOutcome(malignant({ grade: bad }), facts).ok).toBe(false);
  });

  it('early recall of 6, 12, 18 or 24 months, and never with a malignant outcome', () => {
    fc.assert(
      fc.property(fc.constantFrom(...ASSESSMENT_OUTCOMES), fc.integer({ min: 0, max: 30 }), (o, months) => {
        const input = isMalignant(o)
          ? malignant({ outcome: o, earlyRecallMonths: String(months) })
          : outcome({ outcome: o, earlyRecallMonths: String(months) });
        const checked = checkOutcome(input, facts);
        const allowed = (EARLY_RECALL_MONTHS as readonly number[]).includes(months) && !isMalignant(o);
        expect(checked.ok).toBe(allowed);
        if (checked.ok) expect(checked.value.earlyRecallMonths).toBe(months);
      }),
    );
  });

  it('the decision date is from screening to today', () => {
    expect(checkOutcome(outcome({ decidedOn: '2026-11-15' }), facts)).toEqual({
      ok: false,
      problems: { decidedOn: 'The date of the decision cannot be before she was screened' },
    });
    expect(checkOutcome(outcome({ decidedOn: '2026-11-24' }), facts).ok).toBe(false);
    expect(checkOutcome(outcome({ decidedOn: '2026-11-16' }), facts).ok).toBe(true);
    expect(checkOutcome(outcome({ decidedOn: '2026-11-23' }), facts).ok).toBe(true);
  });
});
