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

/** Her next test due after a normal result: 36 months after this screen, 12 under very high risk surveillance. */
export function nextTestDue(screenedOn: IsoDate, options: { veryHighRisk: boolean }): IsoDate {
  return addMonths(screenedOn, options.veryHighRisk ? VERY_HIGH_RISK_RECALL_MONTHS : ROUTINE_RECALL_MONTHS);
}

/** Dates between which a follow-up appointment may be booked (both included); `late` when the window is empty. */
export interface BookingWindow {
  from: IsoDate;
  to: IsoDate;
  /** The standard's last day has passed: no appointment can meet it. */
  late: boolean;
}

/** The last day an assessment appointment meets the 3-week standard. */
export function assessmentDeadline(screenedOn: IsoDate): IsoDate {
  return addDays(screenedOn, ASSESSMENT_WITHIN_DAYS);
}

/** From today to 21 days after screening. */
export function assessmentWindow(screenedOn: IsoDate, today: IsoDate): BookingWindow {
  const to = assessmentDeadline(screenedOn);
  return { from: today, to, late: compareIsoDate(to, today) < 0 };
}

/** From today to 28 days on. */
export function technicalRecallWindow(today: IsoDate): BookingWindow {
  return { from: today, to: addDays(today, TECHNICAL_RECALL_WITHIN_DAYS), late: false };
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
