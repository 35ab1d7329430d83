/**
 * The result of one exam, from its decided reading, and the dates that go with it. Pure.
 *
 * - A result is issued only once the reading is decided (reading.ts): two blind reads, and an arbiter's when the two
 *   disagree (or when the office's arbitration policy asks for one). Fewer than two reads, or reads that disagree
 *   with no arbitration yet, and the result is refused.
 * - Normal → routine recall: her next test is due 36 months after this screen (eligibility.ts's
 *   ROUTINE_RECALL_MONTHS), or 12 months for very high risk surveillance (VERY_HIGH_RISK_RECALL_MONTHS). Whether she
 *   is still in the routine ages then is for her screening status (eligibility.ts) to say, not the result.
 * - Technical recall → a new screening appointment in the same episode, as soon as possible: within
 *   TECHNICAL_RECALL_WITHIN_DAYS of the result.
 * - Recall for assessment → an assessment clinic appointment within ASSESSMENT_WITHIN_DAYS of screening.
 * - Either appointment is at least FOLLOW_UP_NOTICE_DAYS after the result, so the letter telling her reaches her first.
 */
import { addDays, addMonths, compareIsoDate, type IsoDate } from './dates.js';
import { ROUTINE_RECALL_MONTHS, VERY_HIGH_RISK_RECALL_MONTHS } from './eligibility.js';
import { readingOutcome, type ArbitrationPolicy, type ReadSummary } from './reading.js';
import type { ExamResult, Opinion } from './screening-outcomes.js';

/** The exam result each decided reading opinion leads to. */
export const RESULT_OF_OPINION: Record<Opinion, ExamResult> = {
  normal: 'routine_recall',
  technical_recall: 'technical_recall',
  recall_assessment: 'recall_assessment',
};

/**
 * NHS Breast Screening Programme: "Where further investigation is necessary, women should be invited to attend a
 * breast screening assessment centre within three weeks of the mammogram being performed" (NHSBSP guidance, as the
 * Department of Health gave it to Parliament, HC Deb 26 October 1998); the programme standards measure the same
 * thing, the women who attend assessment within 3 weeks of attending for screening. So an assessment appointment is
 * booked no later than 21 days after the day she was screened.
 */
export const ASSESSMENT_WITHIN_DAYS = 21;

/**
 * A technical recall repeats the images she had to have again as soon as possible: there is no national standard
 * for it, so the hub books the first screening clinic at the same site with room within 4 weeks (28 days) of the
 * result, the same span an invitation offers, and says so when there is none.
 */
export const TECHNICAL_RECALL_WITHIN_DAYS = 28;

/**
 * A follow-up appointment (technical recall or assessment) is booked no sooner than this many days after the result
 * is issued: her letter is printed and posted (second class takes 2 to 3 days), so a clinic today or tomorrow would
 * come before she hears of it. There is no national figure: this is the hub's own setting. When it leaves no day
 * before the assessment standard's last day, no appointment is booked and the result says why (follow_up_problem):
 * the office books it by hand and tells her by phone.
 */
export const FOLLOW_UP_NOTICE_DAYS = 3;

/** Her next test due after a normal result: 36 months after this screen, 12 under very high risk surveillance. */
export function nextTestDue(screenedOn: IsoDate, options: { veryHighRisk: boolean }): IsoDate {
  return addMonths(screenedOn, options.veryHighRisk ? VERY_HIGH_RISK_RECALL_MONTHS : ROUTINE_RECALL_MONTHS);
}

/** Dates between which a follow-up appointment may be booked (both included); `late` when the window is empty. */
export interface BookingWindow {
  from: IsoDate;
  to: IsoDate;
  /**
   * No day is left in the window: the standard's last day has passed, or comes before the first day that gives her
   * FOLLOW_UP_NOTICE_DAYS' notice. No appointment booked now can meet it.
   */
  late: boolean;
}

/** The last day an assessment appointment meets the 3-week standard. */
export function assessmentDeadline(screenedOn: IsoDate): IsoDate {
  return addDays(screenedOn, ASSESSMENT_WITHIN_DAYS);
}

/** The first day a follow-up appointment may be on when the result is issued today. */
export function firstFollowUpDay(today: IsoDate): IsoDate {
  return addDays(today, FOLLOW_UP_NOTICE_DAYS);
}

/** From FOLLOW_UP_NOTICE_DAYS after today to 21 days after screening (late when that is no day at all). */
export function assessmentWindow(screenedOn: IsoDate, today: IsoDate): BookingWindow {
  const from = firstFollowUpDay(today);
  const to = assessmentDeadline(screenedOn);
  return { from, to, late: compareIsoDate(to, from) < 0 };
}

/** From FOLLOW_UP_NOTICE_DAYS after today to 28 days after today. */
export function technicalRecallWindow(today: IsoDate): BookingWindow {
  return { from: firstFollowUpDay(today), to: addDays(today, TECHNICAL_RECALL_WITHIN_DAYS), late: false };
}

export type ResultDecision =
  { ok: true; opinion: Opinion; result: ExamResult; arbitrated: boolean } | { ok: false; problem: string };

/**
 * Whether a result may be issued from these reads under the policy, and which. The server asks this before it
 * issues anything: a page that showed a decided exam a moment ago does not get to skip it.
 */
export function resultDecision(reads: readonly ReadSummary[], policy: ArbitrationPolicy): ResultDecision {
  const outcome = readingOutcome(reads, policy);
  const blind = reads.filter((r) => r.readNumber !== 3).length;
  if (outcome.stage === 'first_read' || outcome.stage === 'second_read') {
    return {
      ok: false,
      problem: `This exam has ${blind === 0 ? 'no reads' : blind === 1 ? 'only one read' : `${blind} reads`}: a result needs two readers' opinions`,
    };
  }
  if (outcome.stage === 'arbitration' || outcome.opinion === null) {
    const [first, second] = [1, 2].map((n) => reads.find((r) => r.readNumber === n)?.opinion);
    return {
      ok: false,
      problem:
        first !== second
          ? 'The two readers disagree: the result waits for arbitration'
          : "The office's arbitration policy sends this exam to arbitration: the result waits for the arbiter",
    };
  }
  return {
    ok: true,
    opinion: outcome.opinion,
    result: RESULT_OF_OPINION[outcome.opinion],
    arbitrated: reads.some((r) => r.readNumber === 3),
  };
}
