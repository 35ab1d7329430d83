/**
 * Double reading: each exam is read twice, blind, and arbitrated when the office's policy says so. Pure.
 */
import type { Opinion, ReadNumber } from './screening-outcomes.js';

/** When an exam goes to arbitration: only when the two reads disagree, whenever either recalls, or whenever either is not normal. */
export type ArbitrationPolicy = 'discordant' | 'all_recalls' | 'all_non_normal';

export const ARBITRATION_POLICY_LABELS: Record<ArbitrationPolicy, string> = {
  discordant: 'When the two readers disagree',
  all_recalls: 'When the readers disagree, and every recall for assessment',
  all_non_normal: 'When the readers disagree, and every opinion that is not normal',
};

export interface ReadSummary {
  readNumber: ReadNumber;
  readerId: string;
  opinion: Opinion;
}

export type ReadingStage = 'first_read' | 'second_read' | 'arbitration' | 'decided';

export interface ReadingOutcome {
  /** What the exam waits for next, or 'decided'. */
  stage: ReadingStage;
  /** The exam's opinion once decided: the two reads' when they agree and no arbitration is needed, else the arbiter's. */
  opinion: Opinion | null;
}

/** Whether two reads need an arbiter under the policy. */
export function needsArbitration(first: Opinion, second: Opinion, policy: ArbitrationPolicy): boolean {
  if (first !== second) return true;
  if (policy === 'all_recalls') return first === 'recall_assessment';
  if (policy === 'all_non_normal') return first !== 'normal';
  return false;
}

/** Where an exam's reading stands, from the reads it has (in any order). */
export function readingOutcome(reads: readonly ReadSummary[], policy: ArbitrationPolicy): ReadingOutcome {
  const byNumber = (n: ReadNumber) => reads.find((r) => r.readNumber === n);
  const [first, second, arbiter] = [byNumber(1), byNumber(2), byNumber(3)];
  if (!first) return { stage: 'first_read', opinion: null };
  if (!second) return { stage: 'second_read', opinion: null };
  if (!needsArbitration(first.opinion, second.opinion, policy)) return { stage: 'decided', opinion: first.opinion };
  if (!arbiter) return { stage: 'arbitration', opinion: null };
  return { stage: 'decided', opinion: arbiter.opinion };
}
