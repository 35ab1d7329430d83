/**
 * Appointment statuses and the moves between them, as screening offices use them. The history of moves is kept
 * append-only by the store; this module only says which moves are allowed and what they mean.
 */
export const APPOINTMENT_STATUSES = [
  'scheduled',
  'checked_in',
  'in_progress',
  'paused',
  'cancelled',
  'did_not_attend',
  'screened',
  'partially_screened',
  'attended_not_screened',
] as const;
export type AppointmentStatus = (typeof APPOINTMENT_STATUSES)[number];

export const STATUS_LABELS: Record<AppointmentStatus, string> = {
  scheduled: 'Scheduled',
  checked_in: 'Checked in',
  in_progress: 'In progress',
  paused: 'Paused',
  cancelled: 'Cancelled',
  did_not_attend: 'Did not attend',
  screened: 'Screened',
  partially_screened: 'Partially screened',
  attended_not_screened: 'Attended, not screened',
};

/** Reasons an attended appointment ends without a mammogram (NHSBSP "attended not screened"). */
export const NOT_SCREENED_REASONS = {
  failed_identity_check: 'Failed identity check',
  pain: 'Pain or discomfort',
  symptomatic: 'Symptomatic: referred elsewhere',
  consent_withdrawn: 'Consent withdrawn',
  health: 'Physical or mental health',
  language: 'Language',
  no_mammographer: 'No mammographer',
  technical_failure: 'Technical failure',
  recent_mammogram: 'Mammogram in the last 6 months',
  other: 'Other',
} as const;

const FINAL: ReadonlySet<AppointmentStatus> = new Set([
  'cancelled',
  'did_not_attend',
  'screened',
  'partially_screened',
  'attended_not_screened',
]);

const MOVES: Record<AppointmentStatus, readonly AppointmentStatus[]> = {
  scheduled: ['checked_in', 'cancelled', 'did_not_attend'],
  checked_in: ['in_progress', 'attended_not_screened', 'scheduled', 'screened', 'partially_screened'],
  in_progress: ['paused', 'screened', 'partially_screened', 'attended_not_screened'],
  paused: ['in_progress', 'screened', 'partially_screened', 'attended_not_screened'],
  cancelled: [],
  did_not_attend: ['checked_in'],
  screened: [],
  partially_screened: [],
  attended_not_screened: [],
};

export function isFinal(status: AppointmentStatus): boolean {
  return FINAL.has(status);
}

/** Holds a slot: every status but cancelled (a did-not-attend keeps its slot as a record of the day). */
export function holdsSlot(status: AppointmentStatus): boolean {
  return status !== 'cancelled';
}

export function canMove(from: AppointmentStatus, to: AppointmentStatus): boolean {
  return MOVES[from].includes(to);
}

export type MoveProblem = { field: 'status' | 'reason'; message: string };

/**
 * Why a move is refused, or undefined when it is allowed. Did not attend is recorded on or after the clinic
 * day only; attended-not-screened and partially screened need a reason.
 */
export function moveProblem(
  move: { from: AppointmentStatus; to: AppointmentStatus; reason?: string | null; clinicDate: string },
  today: string,
): MoveProblem | undefined {
  const { from, to } = move;
  if (!canMove(from, to)) {
    return {
      field: 'status',
      message: `An appointment that is ${STATUS_LABELS[from].toLowerCase()} cannot be marked ${STATUS_LABELS[to].toLowerCase()}`,
    };
  }
  if (to === 'did_not_attend' && move.clinicDate > today) {
    return { field: 'status', message: 'Did not attend can only be recorded on or after the clinic day' };
  }
  if ((to === 'attended_not_screened' || to === 'partially_screened') && !move.reason?.trim()) {
    return { field: 'reason', message: `Give a reason why the appointment was ${STATUS_LABELS[to].toLowerCase()}` };
  }
  return undefined;
}

/** The statuses that count as having attended (KC62 and the "70 % attendance" figure count these). */
export function attended(status: AppointmentStatus): boolean {
  return status === 'screened' || status === 'partially_screened' || status === 'attended_not_screened';
}

/**
 * The shortest run of allowed moves from one status to another (breadth first), or undefined when there is none.
 * A modality reporting "completed" for an appointment still scheduled at the hub means checked in, then screened.
 */
export function movePath(from: AppointmentStatus, to: AppointmentStatus): AppointmentStatus[] | undefined {
  if (from === to) return [];
  const previous = new Map<AppointmentStatus, AppointmentStatus>();
  const queue: AppointmentStatus[] = [from];
  while (queue.length > 0) {
    const at = queue.shift()!;
    for (const next of MOVES[at]) {
      if (next === from || previous.has(next)) continue;
      previous.set(next, at);
      if (next === to) {
        const path: AppointmentStatus[] = [to];
        for (let step = at; step !== from; step = previous.get(step)!) path.unshift(step);
        return path;
      }
      queue.push(next);
    }
  }
  return undefined;
}

/**
 * What a Modality Performed Procedure Step means for the appointment: in progress; completed is screened;
 * discontinued is partially screened when images were taken, otherwise attended but not screened.
 */
export function procedureStepStatus(
  step: 'in_progress' | 'completed' | 'discontinued',
  imageCount: number,
  reason: string | undefined,
): { to: AppointmentStatus; reason: string | null } {
  if (step === 'in_progress') return { to: 'in_progress', reason: null };
  if (step === 'completed') return { to: 'screened', reason: null };
  const why = reason?.trim() || 'Stopped at the mammography machine';
  if (imageCount > 0) return { to: 'partially_screened', reason: why };
  const kind = /equipment|technical|failure/i.test(why) ? 'technical_failure' : 'other';
  return { to: 'attended_not_screened', reason: NOT_SCREENED_REASONS[kind] };
}
