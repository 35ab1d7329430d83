import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { addDays, compareIsoDate, daysBetween } from '../../../src/pathway/dates.js';
import { ROUTINE_RECALL_MONTHS, VERY_HIGH_RISK_RECALL_MONTHS } from '../../../src/pathway/eligibility.js';
import type { ArbitrationPolicy, ReadSummary } from '../../../src/pathway/reading.js';
import {
  ASSESSMENT_WITHIN_DAYS,
  assessmentDeadline,
  assessmentWindow,
  firstFollowUpDay,
  FOLLOW_UP_NOTICE_DAYS,
  nextTestDue,
  RESULT_OF_OPINION,
  resultDecision,
  TECHNICAL_RECALL_WITHIN_DAYS,
  technicalRecallWindow,
} from '../../../src/pathway/results.js';
import { OPINIONS, type Opinion } from '../../../src/pathway/screening-outcomes.js';
import { fromUtcDay, isoDateArb, utcDay } from './arbitraries.js';

const read = (readNumber: 1 | 2 | 3, opinion: Opinion): ReadSummary => ({
  readNumber,
  readerId: `reader-${readNumber}`,
  opinion,
});
const opinionArb = fc.constantFrom(...OPINIONS);
const policyArb = fc.constantFrom<ArbitrationPolicy>('discordant', 'all_recalls', 'all_non_normal');

describe('next test due after a normal result', () => {
  it('is 36 months after screening, 12 under very high risk surveillance (eligibility.ts intervals)', () => {
    expect(ROUTINE_RECALL_MONTHS).toBe(36);
    expect(VERY_HIGH_RISK_RECALL_MONTHS).toBe(12);
    expect(nextTestDue('2026-11-16', { veryHighRisk: false })).toBe('2029-11-16');
    expect(nextTestDue('2026-11-16', { veryHighRisk: true })).toBe('2027-11-16');
    // The end of a longer month clamps to the end of the shorter one; 29 February to 28 February.
    expect(nextTestDue('2028-02-29', { veryHighRisk: false })).toBe('2031-02-28');
    expect(nextTestDue('2027-02-28', { veryHighRisk: true })).toBe('2028-02-28');
    expect(nextTestDue('2026-08-31', { veryHighRisk: true })).toBe('2027-08-31');
  });

  it('is always the same calendar month, 1,095 or 1,096 days on (routine) or 365 or 366 (very high risk)', () => {
    fc.assert(
      fc.property(isoDateArb(1990, 2060), fc.boolean(), (screened, veryHighRisk) => {
        const due = nextTestDue(screened, { veryHighRisk });
        const days = utcDay(due) - utcDay(screened);
        expect(veryHighRisk ? [365, 366] : [1095, 1096]).toContain(days);
        expect(Number(due.slice(0, 4)) - Number(screened.slice(0, 4))).toBe(veryHighRisk ? 1 : 3);
        expect(due.slice(5, 7)).toBe(screened.slice(5, 7));
        // Only 29 February moves, to 28 February.
        expect(due.slice(8)).toBe(screened.slice(5) === '02-29' && due.slice(5) !== '02-29' ? '28' : screened.slice(8));
      }),
    );
  });
});

describe('follow-up windows', () => {
  it('gives her 3 days to get the letter: no follow-up appointment is sooner than that after the result', () => {
    expect(FOLLOW_UP_NOTICE_DAYS).toBe(3);
    expect(firstFollowUpDay('2026-11-23')).toBe('2026-11-26');
    // Across a month end.
    expect(firstFollowUpDay('2026-11-30')).toBe('2026-12-03');
  });

  it('an assessment appointment is booked from 3 days on and no later than 21 days after screening', () => {
    expect(ASSESSMENT_WITHIN_DAYS).toBe(21);
    expect(assessmentDeadline('2026-11-16')).toBe('2026-12-07');
    // Not today or tomorrow: a clinic then would come before her letter.
    expect(assessmentWindow('2026-11-16', '2026-11-23')).toEqual({ from: '2026-11-26', to: '2026-12-07', late: false });
    // With 3 days' notice the 21st day can still be met 3 days before it; not 2 days before it.
    expect(assessmentWindow('2026-11-16', '2026-12-04')).toEqual({ from: '2026-12-07', to: '2026-12-07', late: false });
    expect(assessmentWindow('2026-11-16', '2026-12-05').late).toBe(true);
    expect(assessmentWindow('2026-11-16', '2026-12-08').late).toBe(true);
  });

  it('the assessment window runs from 3 days on to screening + 21 days, late exactly when that leaves no day', () => {
    fc.assert(
      fc.property(isoDateArb(2000, 2060), fc.integer({ min: 0, max: 60 }), (screened, after) => {
        const today = fromUtcDay(utcDay(screened) + after);
        const window = assessmentWindow(screened, today);
        expect(utcDay(window.from) - utcDay(today)).toBe(FOLLOW_UP_NOTICE_DAYS);
        expect(utcDay(window.to) - utcDay(screened)).toBe(21);
        expect(window.late).toBe(after + FOLLOW_UP_NOTICE_DAYS > 21);
        if (!window.late) expect(compareIsoDate(window.from, window.to)).toBeLessThanOrEqual(0);
      }),
    );
  });

  it('a technical recall is booked from 3 days on to 28 days after the result', () => {
    expect(TECHNICAL_RECALL_WITHIN_DAYS).toBe(28);
    fc.assert(
      fc.property(isoDateArb(2000, 2060), (today) => {
        const window = technicalRecallWindow(today);
        expect(window).toEqual({ from: addDays(today, 3), to: addDays(today, 28), late: false });
        expect(daysBetween(today, window.to)).toBe(28);
      }),
    );
  });
});

describe('the result from the reads', () => {
  it('maps each decided opinion to its result', () => {
    expect(RESULT_OF_OPINION).toEqual({
      normal: 'routine_recall',
      technical_recall: 'technical_recall',
      recall_assessment: 'recall_assessment',
    });
  });

  it('is refused with fewer than two reads', () => {
    for (const policy of ['discordant', 'all_recalls', 'all_non_normal'] as const) {
      expect(resultDecision([], policy)).toEqual({ ok: false, problem: expect.stringMatching(/no reads/) });
      expect(resultDecision([read(1, 'normal')], policy)).toEqual({
        ok: false,
        problem: expect.stringMatching(/only one read: a result needs two/),
      });
      // An arbiter's opinion alone, or with one read, is not a decided reading either.
      expect(resultDecision([read(1, 'normal'), read(3, 'normal')], policy).ok).toBe(false);
    }
  });

  it('is refused while two reads disagree without arbitration, and follows the arbiter after', () => {
    fc.assert(
      fc.property(opinionArb, opinionArb, opinionArb, policyArb, (first, second, arbiter, policy) => {
        fc.pre(first !== second);
        const two = resultDecision([read(1, first), read(2, second)], policy);
        expect(two).toEqual({ ok: false, problem: 'The two readers disagree: the result waits for arbitration' });
        const three = resultDecision([read(2, second), read(3, arbiter), read(1, first)], policy);
        expect(three).toEqual({ ok: true, opinion: arbiter, result: RESULT_OF_OPINION[arbiter], arbitrated: true });
      }),
    );
  });

  it('two reads that agree decide it, unless the policy sends that opinion to arbitration', () => {
    fc.assert(
      fc.property(opinionArb, policyArb, (opinion, policy) => {
        const decision = resultDecision([read(1, opinion), read(2, opinion)], policy);
        const arbitrate =
          (policy === 'all_recalls' && opinion === 'recall_assessment') ||
          (policy === 'all_non_normal' && opinion !== 'normal');
        if (arbitrate) expect(decision).toEqual({ ok: false, problem: expect.stringMatching(/policy/) });
        else expect(decision).toEqual({ ok: true, opinion, result: RESULT_OF_OPINION[opinion], arbitrated: false });
      }),
    );
  });
});
