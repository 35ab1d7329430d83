/**
 * Movers: what happens when a woman's GP practice moves to another screening office's area. Pure rules, no I/O; the
 * store (src/store/movers.ts) reads the facts, applies the plan and records the move.
 *
 * There is one national record for her, keyed by NHS number: her demographics, record items, appointments and closed
 * episodes are not copied anywhere, they stay on that one record, which both offices can open. What moves is
 * responsibility (participant.bso_code), and it follows the registered GP practice: since the Department of Health's
 * 2001 "responsibility, not residence" policy, breast screening services call and recall the women registered with
 * the GP practices they are responsible for, not the women who live in their area. The rules here:
 *
 * - A move is a change of responsible office. A new practice in the same office's area, or no practice at all (she
 *   left her GP and has not registered with another: there is nothing to follow), moves nothing.
 * - Her open screening episode moves to the new office when the old office holds it and she has not yet been
 *   screened in it: the new office invites and books her from now on, so the round is not lost between the two.
 * - An open episode in which she has already been screened stays with the office that screened her, to finish:
 *   that office holds the images, reads them, sends the result and books any assessment. Moving it half-way would
 *   risk a recall to assessment falling between two offices. Her next routine invitation is the new office's.
 *   Both offices are told.
 * - An appointment she still has booked at one of the old office's clinics (not yet attended or otherwise ended, on
 *   or after the day the move takes effect) stays valid and is not cancelled for her. NHS breast screening services
 *   screen women who ask to be screened "out of area", so she may keep it; or she may prefer to be screened nearer
 *   her new practice. Both offices are told, so one of them asks her and, if she changes it, the old office cancels
 *   it. Nothing is cancelled without a person deciding.
 * - An appointment at the new office's clinics (booked out of area before the move) needs nothing: it is now local.
 *
 * Sources: Department of Health, responsibility for breast screening by GP registration rather than residence
 * (from April 2001; see Wheaton and Wallis, Breast Cancer Research 2000, 2(Suppl 2):A70, doi:10.1186/bcr259);
 * Public Health England, "Breast screening: guidance for providers on out-of-area screening" (December 2017).
 */
import { isFinal, type AppointmentStatus } from './appointment-status.js';
import type { IsoDate } from './dates.js';

/** Who told the hub about the move: the BS-Select cohort feed, or staff correcting her GP practice. */
export const MOVE_SOURCES = ['bs_select', 'staff'] as const;
export type MoveSource = (typeof MOVE_SOURCES)[number];

export const MOVE_SOURCE_LABELS: Record<MoveSource, string> = {
  bs_select: 'BS-Select cohort feed',
  staff: 'Staff correction',
};

/** Her open episode (closed_on is null), the most recent if there were more. */
export interface OpenEpisodeFacts {
  id: string;
  bsoCode: string;
  openedOn: IsoDate;
  screenedOn: IsoDate | null;
}

/** One of her appointments, with the office of the clinic's site. */
export interface AppointmentFacts {
  id: string;
  bsoCode: string;
  clinicDate: IsoDate;
  status: AppointmentStatus;
}

export interface MoveFacts {
  fromOffice: string;
  toOffice: string;
  /** The day the move takes effect (the feed row's effective date, or the date of the staff correction). */
  effectiveDate: IsoDate;
  openEpisode: OpenEpisodeFacts | null;
  appointments: readonly AppointmentFacts[];
}

/** What happens to her open episode: it moves to the new office, or stays with the old one to be finished. */
export type EpisodeOutcome = 'moved' | 'stays_to_finish';

export const EPISODE_OUTCOME_LABELS: Record<EpisodeOutcome, string> = {
  moved: 'Moved to the new office',
  stays_to_finish: 'Stays with the old office to finish (already screened)',
};

export interface MovePlan {
  /** The open episode the old office held, and what happens to it; null when there was none. */
  episode: { id: string; outcome: EpisodeOutcome } | null;
  /** Appointments still booked at the old office's clinics on or after the effective date, earliest first. */
  appointmentsAtOldOffice: string[];
}

/** Whether a change of responsible office is a move (null: she has no GP practice, so nothing to follow). */
export function isMove(fromOffice: string, toOffice: string | null): toOffice is string {
  return toOffice !== null && toOffice !== fromOffice;
}

/** What moves with her and what stays for a person to decide. Throws when the offices are the same (not a move). */
export function planMove(facts: MoveFacts): MovePlan {
  if (facts.fromOffice === facts.toOffice)
    throw new Error(`A move needs two different offices (${facts.fromOffice} to ${facts.toOffice})`);
  const open = facts.openEpisode;
  const episode =
    open && open.bsoCode === facts.fromOffice
      ? { id: open.id, outcome: open.screenedOn === null ? ('moved' as const) : ('stays_to_finish' as const) }
      : null;
  const appointmentsAtOldOffice = facts.appointments
    .filter((a) => a.bsoCode === facts.fromOffice && !isFinal(a.status) && a.clinicDate >= facts.effectiveDate)
    .sort((a, b) => (a.clinicDate < b.clinicDate ? -1 : a.clinicDate > b.clinicDate ? 1 : 0))
    .map((a) => a.id);
  return { episode, appointmentsAtOldOffice };
}

/** A recorded move as an office sees it, for the tasks below. */
export interface MoveSeen {
  fromOfficeName: string;
  toOfficeName: string;
  episodeOutcome: EpisodeOutcome | null;
  /** Appointments at the old office's clinics that are still booked now (some may have ended since the move). */
  appointmentsStillBooked: number;
}

/**
 * What the office on `side` of a move has to do or know, in plain English: 'out' is the office she left, 'in' the
 * office now responsible for her. Never empty.
 */
export function moveTasks(move: MoveSeen, side: 'in' | 'out'): string[] {
  const tasks: string[] = [];
  const n = move.appointmentsStillBooked;
  const appointments = `${n} appointment${n === 1 ? '' : 's'}`;
  if (side === 'out') {
    if (move.episodeOutcome === 'moved')
      tasks.push(`Her open screening episode moved to ${move.toOfficeName}: do not invite her again.`);
    if (move.episodeOutcome === 'stays_to_finish')
      tasks.push(
        `She has been screened in an episode that is still open: finish it here (results and any assessment). Her next routine invitation is ${move.toOfficeName}'s.`,
      );
    if (n > 0)
      tasks.push(
        `She still has ${appointments} booked at your clinics. It stays valid: agree with ${move.toOfficeName} who asks her whether she keeps it, and cancel it if she would rather be screened nearer her new GP.`,
      );
    if (tasks.length === 0) tasks.push(`Nothing open: ${move.toOfficeName} is responsible for her from now on.`);
    return tasks;
  }
  if (move.episodeOutcome === 'moved')
    tasks.push('Her open screening episode is now yours: invite or book her if she has no appointment.');
  if (move.episodeOutcome === 'stays_to_finish')
    tasks.push(
      `${move.fromOfficeName} finishes her current episode (results and any assessment). Her next routine invitation is yours.`,
    );
  if (n > 0)
    tasks.push(
      `She has ${appointments} booked with ${move.fromOfficeName}. She may keep it (out-of-area screening) or be booked at one of your clinics: agree with ${move.fromOfficeName} who asks her.`,
    );
  if (tasks.length === 0) tasks.push('Nothing open: she joins your call and recall from her next due date.');
  return tasks;
}
