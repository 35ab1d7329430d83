/**
 * Assessment (issue 6, item 3): women recalled to assessment, the procedures done, and the multidisciplinary
 * outcome, which ends the episode and queues the letter to her and the message to her GP. Procedures and outcomes
 * are never changed in place: a correction is a new outcome that replaces the old one (superseded_at), and what was
 * still waiting to tell her and her GP the old one is replaced too.
 */
import { sql } from 'kysely';
import {
  checkOutcome,
  checkProcedure,
  episodeEnd,
  REPLACED_BY_CORRECTION,
  type EpisodeEnd,
  type OutcomeInput,
  type ProcedureInput,
} from '../pathway/assessment.js';
import { slotTime } from '../pathway/clinic-slots.js';
import { assessmentDeadline } from '../pathway/results.js';
import { recordAudit, type Actor } from './audit.js';
import type { Db } from './database.js';
import { ConflictError, NotFoundError, RuleError } from './errors.js';
import { queueCommunications, readsOf } from './results.js';

/** A form the rules refused: each problem keyed by the field it is about, for the page's error summary. */
export class FormProblemsError extends RuleError {
  constructor(readonly problems: Record<string, string>) {
    super(Object.keys(problems)[0] ?? 'form', Object.values(problems).join('. '));
  }
}

/** How many recently decided outcomes the assessment list shows (for a correction). */
export const RECENT_OUTCOMES_SHOWN = 25;

/** The exam that recalled her to assessment in each of these episodes (the latest, if more than one). */
function recalls(db: Db) {
  return db
    .selectFrom('exam_result as r')
    .innerJoin('appointment as x', 'x.id', 'r.appointment_id')
    .innerJoin('clinic as xc', 'xc.id', 'x.clinic_id')
    .where('r.result', '=', 'recall_assessment');
}

/** Women recalled to assessment with no outcome yet, oldest screened first; and the latest outcomes. Audited. */
export async function assessmentWorklist(db: Db, actor: Actor) {
  const rows = await recalls(db)
    .innerJoin('episode as e', 'e.id', 'r.episode_id')
    .innerJoin('participant as p', 'p.id', 'e.participant_id')
    .leftJoin('appointment as f', 'f.id', 'r.follow_up_appointment_id')
    .leftJoin('clinic as fc', 'fc.id', 'f.clinic_id')
    .leftJoin('site as fs', 'fs.id', 'fc.site_id')
    .select([
      'e.id as episode_id',
      'r.appointment_id',
      'r.issued_at',
      'r.follow_up_problem',
      'xc.clinic_date as screened_on',
      'p.id as participant_id',
      'p.nhs_number',
      'p.given_name',
      'p.family_name',
      'p.date_of_birth',
      'f.id as follow_up_id',
      'f.status as follow_up_status',
      'f.slot_index as follow_up_slot_index',
      'fc.clinic_date as follow_up_date',
      'fc.starts_at as follow_up_starts_at',
      'fc.slot_minutes as follow_up_slot_minutes',
      'fs.name as follow_up_site',
      sql<number>`(select count(*) from assessment_procedure ap where ap.episode_id = e.id)::int`.as('procedures'),
    ])
    .where((eb) =>
      eb.not(
        eb.exists(
          eb
            .selectFrom('assessment_outcome as o')
            .select('o.id')
            .whereRef('o.episode_id', '=', 'e.id')
            .where('o.superseded_at', 'is', null),
        ),
      ),
    )
    .orderBy('xc.clinic_date')
    .orderBy('r.issued_at')
    .execute();
  // One row an episode: its latest recall.
  const byEpisode = new Map<string, (typeof rows)[number]>();
  for (const r of rows) byEpisode.set(r.episode_id, r);
  const awaiting = [...byEpisode.values()].map((r) => ({
    ...r,
    deadline: assessmentDeadline(r.screened_on),
    follow_up_time:
      r.follow_up_starts_at && r.follow_up_slot_minutes !== null && r.follow_up_slot_index !== null
        ? slotTime({ startsAt: r.follow_up_starts_at, slotMinutes: r.follow_up_slot_minutes }, r.follow_up_slot_index)
        : null,
  }));
  const recent = await db
    .selectFrom('assessment_outcome as o')
    .innerJoin('episode as e', 'e.id', 'o.episode_id')
    .innerJoin('participant as p', 'p.id', 'e.participant_id')
    .select([
      'o.id',
      'o.episode_id',
      'o.outcome',
      'o.decided_on',
      'o.recorded_at',
      'o.replaces_id',
      'e.final_action',
      'p.id as participant_id',
      'p.nhs_number',
      'p.given_name',
      'p.family_name',
    ])
    .where('o.superseded_at', 'is', null)
    .orderBy('o.recorded_at', 'desc')
    .limit(RECENT_OUTCOMES_SHOWN)
    .execute();
  await recordAudit(db, actor, {
    action: 'assessment.list',
    entityType: 'episode',
    detail: { awaiting: awaiting.map((a) => a.episode_id), recent: recent.map((r) => r.episode_id) },
  });
  return { awaiting, recent };
}

/** What the rules need to know of an episode recalled to assessment; NotFoundError when it was not. */
async function episodeFacts(db: Db, episodeId: string) {
  const row = await recalls(db)
    .innerJoin('episode as e', 'e.id', 'r.episode_id')
    .innerJoin('participant as p', 'p.id', 'e.participant_id')
    .select([
      'e.id',
      'e.participant_id',
      'e.closed_on',
      'r.appointment_id as exam_id',
      'xc.clinic_date as screened_on',
      'p.very_high_risk',
      'p.date_of_death',
      'p.gp_practice_code',
    ])
    .where('e.id', '=', episodeId)
    .orderBy('r.issued_at', 'desc')
    .executeTakeFirst();
  if (!row) throw new NotFoundError('This episode has no recall to assessment');
  return row;
}

/** One episode's assessment: her, the recall, the readers' findings, appointments, procedures and outcomes. Audited. */
export async function assessmentEpisode(db: Db, episodeId: string, actor: Actor) {
  const facts = await episodeFacts(db, episodeId);
  const [participant, episode, appointments, procedures, outcomes, reads] = await Promise.all([
    db
      .selectFrom('participant as p')
      .leftJoin('gp_practice as g', 'g.ods_code', 'p.gp_practice_code')
      .select([
        'p.id',
        'p.nhs_number',
        'p.given_name',
        'p.family_name',
        'p.date_of_birth',
        'p.date_of_death',
        'p.very_high_risk',
        'p.gp_practice_code',
        'g.name as gp_practice_name',
      ])
      .where('p.id', '=', facts.participant_id)
      .executeTakeFirstOrThrow(),
    db.selectFrom('episode').selectAll().where('id', '=', episodeId).executeTakeFirstOrThrow(),
    // Her assessment appointments in this episode: the one booked with the result, and any booked by hand.
    db
      .selectFrom('appointment as a')
      .innerJoin('clinic as c', 'c.id', 'a.clinic_id')
      .innerJoin('site as s', 's.id', 'c.site_id')
      .innerJoin('location as l', 'l.id', 'c.location_id')
      .select([
        'a.id',
        'a.status',
        'a.slot_index',
        'c.clinic_date',
        'c.starts_at',
        'c.slot_minutes',
        's.name as site_name',
        'l.name as location_name',
      ])
      .where('a.episode_id', '=', episodeId)
      .where('c.purpose', '=', 'assessment')
      .orderBy('c.clinic_date')
      .execute(),
    db
      .selectFrom('assessment_procedure as ap')
      .leftJoin('app_user as u', 'u.id', 'ap.recorded_by')
      .select([
        'ap.id',
        'ap.procedure',
        'ap.side',
        'ap.performed_on',
        'ap.b_code',
        'ap.notes',
        'ap.recorded_at',
        'u.display_name as recorded_by_name',
      ])
      .where('ap.episode_id', '=', episodeId)
      .orderBy('ap.performed_on')
      .orderBy('ap.recorded_at')
      .execute(),
    db
      .selectFrom('assessment_outcome as o')
      .leftJoin('app_user as u', 'u.id', 'o.recorded_by')
      .selectAll('o')
      .select('u.display_name as recorded_by_name')
      .where('o.episode_id', '=', episodeId)
      .orderBy('o.recorded_at', 'desc')
      .execute(),
    readsOf(db, [facts.exam_id]),
  ]);
  await recordAudit(db, actor, {
    action: 'assessment.view',
    entityType: 'episode',
    entityId: episodeId,
    participantId: participant.id,
  });
  const current = outcomes.find((o) => o.superseded_at === null) ?? null;
  return {
    participant,
    episode,
    screenedOn: facts.screened_on,
    deadline: assessmentDeadline(facts.screened_on),
    examId: facts.exam_id,
    reads: reads.get(facts.exam_id) ?? [],
    appointments: appointments.map((a) => ({
      ...a,
      time: slotTime({ startsAt: a.starts_at, slotMinutes: a.slot_minutes }, a.slot_index),
    })),
    procedures,
    current,
    history: outcomes.filter((o) => o.superseded_at !== null),
    end: current
      ? episodeEnd(
          { outcome: current.outcome, earlyRecallMonths: current.early_recall_months },
          { screenedOn: facts.screened_on, veryHighRisk: participant.very_high_risk },
        )
      : null,
  };
}

/** Records one procedure (any number an episode). FormProblemsError with every problem when the rules refuse it. */
export async function recordProcedure(
  db: Db,
  request: { episodeId: string; procedure: ProcedureInput },
  actor: Actor,
  today: string,
): Promise<string> {
  return db.transaction().execute(async (tx) => {
    const facts = await episodeFacts(tx, request.episodeId);
    const checked = checkProcedure(request.procedure, { screenedOn: facts.screened_on, today });
    if (!checked.ok) throw new FormProblemsError(checked.problems);
    const p = checked.value;
    const { id } = await tx
      .insertInto('assessment_procedure')
      .values({
        episode_id: request.episodeId,
        procedure: p.procedure,
        side: p.side,
        performed_on: p.performedOn,
        b_code: p.bCode,
        notes: p.notes,
        recorded_by: actor.userId,
      })
      .returning('id')
      .executeTakeFirstOrThrow();
    await recordAudit(tx, actor, {
      action: 'assessment.procedure',
      entityType: 'assessment_procedure',
      entityId: id,
      participantId: facts.participant_id,
      detail: { episodeId: request.episodeId, ...p },
    });
    return id;
  });
}

export interface RecordedOutcome {
  outcomeId: string;
  replacedId: string | null;
  end: EpisodeEnd;
  /** Letters and messages not queued, and why. */
  notes: string[];
}

/**
 * Records the multidisciplinary outcome, or corrects it: `replacesId` is the outcome the form was opened on (null
 * for the first). Someone else's outcome recorded in between is a ConflictError, not overwritten. The episode ends
 * (screening complete, with the final action from the outcome) and a letter to her and a message to her GP are
 * queued. On a correction, any outcome letter or GP message of the episode still waiting to be sent is failed
 * (REPLACED_BY_CORRECTION, kept for the record) and a new pair is queued for the corrected outcome.
 */
export async function recordOutcome(
  db: Db,
  request: { episodeId: string; outcome: OutcomeInput; replacesId: string | null },
  actor: Actor,
  today: string,
): Promise<RecordedOutcome> {
  return db.transaction().execute(async (tx) => {
    // The episode row is the lock: two outcomes for one episode take turns.
    await tx.selectFrom('episode').select('id').where('id', '=', request.episodeId).forUpdate().executeTakeFirst();
    const facts = await episodeFacts(tx, request.episodeId);
    const checked = checkOutcome(request.outcome, { screenedOn: facts.screened_on, today });
    if (!checked.ok) throw new FormProblemsError(checked.problems);
    const o = checked.value;
    const current = await tx
      .selectFrom('assessment_outcome')
      .select(['id', 'outcome'])
      .where('episode_id', '=', request.episodeId)
      .where('superseded_at', 'is', null)
      .executeTakeFirst();
    if ((current?.id ?? null) !== request.replacesId) {
      throw new ConflictError(
        current
          ? 'Someone else recorded an outcome for this episode after you opened it: nothing was saved. Check it, and correct it if it needs to be.'
          : 'The outcome you were correcting has changed since you opened it: nothing was saved.',
      );
    }
    if (current) {
      await tx
        .updateTable('assessment_outcome')
        .set({ superseded_at: sql<Date>`now()` })
        .where('id', '=', current.id)
        .execute();
    }
    const { id } = await tx
      .insertInto('assessment_outcome')
      .values({
        episode_id: request.episodeId,
        outcome: o.outcome,
        side: o.side,
        size_mm: o.sizeMm,
        grade: o.grade,
        early_recall_months: o.earlyRecallMonths,
        referred_to_treatment: o.referredToTreatment,
        treatment_provider: o.treatmentProvider,
        decided_on: o.decidedOn,
        recorded_by: actor.userId,
        replaces_id: current?.id ?? null,
      })
      .returning('id')
      .executeTakeFirstOrThrow();
    // A letter or GP message still waiting to go (even one already made, after a failed try) would say the old
    // outcome: fail it with the reason, keep it, and queue a new pair for this one.
    const replaced = (
      await tx
        .updateTable('communication')
        .set({ status: 'failed', last_error: REPLACED_BY_CORRECTION, next_attempt_at: null })
        .where('episode_id', '=', request.episodeId)
        .where('appointment_id', 'is', null)
        .where('kind', '=', 'assessment_outcome')
        .where('status', '=', 'queued')
        .returning(['id', 'recipient'])
        .execute()
    ).map((r) => ({ id: r.id, recipient: r.recipient }));
    for (const r of replaced)
      await recordAudit(tx, actor, {
        action: 'communication.replace',
        entityType: 'communication',
        entityId: r.id,
        participantId: facts.participant_id,
        detail: { recipient: r.recipient, kind: 'assessment_outcome', reason: REPLACED_BY_CORRECTION },
      });
    const end = episodeEnd(o, { screenedOn: facts.screened_on, veryHighRisk: facts.very_high_risk });
    // Closed on the day of the first outcome; a correction changes the final action, not the day.
    await tx
      .updateTable('episode')
      .set({
        closed_on: sql<string>`coalesce(closed_on, ${today}::date)`,
        end_code: end.endCode,
        final_action: end.finalAction,
      })
      .where('id', '=', request.episodeId)
      .execute();
    const notes = await queueCommunications(
      tx,
      {
        participantId: facts.participant_id,
        episodeId: request.episodeId,
        appointmentId: null,
        kind: 'assessment_outcome',
        dateOfDeath: facts.date_of_death,
        gpPracticeCode: facts.gp_practice_code,
      },
      today,
    );
    await recordAudit(tx, actor, {
      action: current ? 'assessment.outcome.correct' : 'assessment.outcome',
      entityType: 'assessment_outcome',
      entityId: id,
      participantId: facts.participant_id,
      detail: {
        episodeId: request.episodeId,
        ...o,
        replaces: current ? { id: current.id, outcome: current.outcome } : null,
        replacedCommunications: replaced,
        finalAction: end.finalAction,
        nextTestDue: end.nextTestDue,
        notes,
      },
    });
    return { outcomeId: id, replacedId: current?.id ?? null, end, notes };
  });
}
