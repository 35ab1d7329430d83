import type { AppointmentStatus } from './appointment-status.js';

/**
 * Which exams a mobile unit sends first (issue 4). An exam is urgent when a result is awaited sooner than a
 * routine one: the participant came back because her earlier images could not be used (technical recall: the
 * earlier attempt in the episode ended partially screened or attended but not screened), or the episode is an
 * early recall after assessment (E) or a higher-risk short-term recall (T).
 */
export type TransferPriority = 'urgent' | 'routine';

export type EpisodeType = 'C' | 'R' | 'E' | 'H' | 'T' | 'G' | 'S';

const URGENT_EPISODES: ReadonlySet<EpisodeType> = new Set(['E', 'T']);
const TECHNICAL_RECALL_AFTER: ReadonlySet<AppointmentStatus> = new Set(['partially_screened', 'attended_not_screened']);

export function transferPriority(exam: {
  episodeType: EpisodeType | null;
  /** The status of the appointment this one was booked again from, if any. */
  earlierAttempt: AppointmentStatus | null;
}): TransferPriority {
  if (exam.earlierAttempt && TECHNICAL_RECALL_AFTER.has(exam.earlierAttempt)) return 'urgent';
  if (exam.episodeType && URGENT_EPISODES.has(exam.episodeType)) return 'urgent';
  return 'routine';
}

/** An image waiting on a gateway, as far as the sending order cares. */
export interface WaitingImage {
  priority: TransferPriority;
  /** When the first image of its exam arrived on the gateway (ms, the gateway's clock). */
  examReceivedAt: number;
  /** Arrival order on the gateway. */
  sequence: number;
}

/** Urgent exams first; then the exam that has waited longest; within an exam, images in the order they came. */
export function sendOrder(a: WaitingImage, b: WaitingImage): number {
  return (
    Number(a.priority !== 'urgent') - Number(b.priority !== 'urgent') ||
    a.examReceivedAt - b.examReceivedAt ||
    a.sequence - b.sequence
  );
}
