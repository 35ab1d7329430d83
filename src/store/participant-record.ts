import { sql } from 'kysely';
import { slotTime } from '../pathway/clinic-slots.js';
import { recordAudit, type Actor } from './audit.js';
import { findAppointments } from './clinics.js';
import type { Db } from './database.js';
import { NotFoundError } from './errors.js';

/** Appointment statuses whose images are read (an exam). */
const EXAM_STATUSES = ['screened', 'partially_screened'] as const;

/**
 * Her exams, newest first: each screened appointment with its result once issued (and the follow-up it booked), or
 * how far its reading has gone. Blind double reading stays blind: only the number of reads is counted here, never
 * an opinion (film readers open this record).
 */
async function examsOf(db: Db, participantId: string) {
  const rows = await db
    .selectFrom('appointment as a')
    .innerJoin('clinic as c', 'c.id', 'a.clinic_id')
    .innerJoin('site as s', 's.id', 'c.site_id')
    .innerJoin('location as l', 'l.id', 'c.location_id')
    .leftJoin('exam_result as r', 'r.appointment_id', 'a.id')
    .leftJoin('app_user as u', 'u.id', 'r.issued_by')
    .leftJoin('appointment as fa', 'fa.id', 'r.follow_up_appointment_id')
    .leftJoin('clinic as fc', 'fc.id', 'fa.clinic_id')
    .leftJoin('site as fs', 'fs.id', 'fc.site_id')
    .leftJoin('location as fl', 'fl.id', 'fc.location_id')
    .select([
      'a.id as appointment_id',
      'a.episode_id',
      'a.status',
      'a.accession_number',
      'a.images_available_at',
      'c.clinic_date as screened_on',
      's.name as site_name',
      'l.name as location_name',
      'r.result',
      'r.next_test_due',
      'r.follow_up_problem',
      'r.issued_at',
      'u.display_name as issued_by_name',
      'fa.id as follow_up_id',
      'fa.status as follow_up_status',
      'fa.slot_index as follow_up_slot',
      'fc.clinic_date as follow_up_date',
      'fc.starts_at as follow_up_starts_at',
      'fc.slot_minutes as follow_up_slot_minutes',
      'fs.name as follow_up_site',
      'fl.name as follow_up_location',
      sql<number>`(select count(*) from reading_opinion o where o.appointment_id = a.id)::int`.as('reads'),
    ])
    .where('a.participant_id', '=', participantId)
    .where('a.status', 'in', EXAM_STATUSES)
    .where((eb) => eb.or([eb('c.purpose', '=', 'screening'), eb('r.appointment_id', 'is not', null)]))
    .orderBy('c.clinic_date', 'desc')
    .orderBy('c.starts_at', 'desc')
    .execute();
  return rows.map((r) => ({
    ...r,
    follow_up_time:
      r.follow_up_slot !== null && r.follow_up_starts_at !== null && r.follow_up_slot_minutes !== null
        ? slotTime({ startsAt: r.follow_up_starts_at, slotMinutes: r.follow_up_slot_minutes }, r.follow_up_slot)
        : null,
  }));
}

/** Her current assessment outcomes (one an episode, the ones not replaced), the latest decided first. */
function assessmentOutcomesOf(db: Db, participantId: string) {
  return db
    .selectFrom('assessment_outcome as o')
    .innerJoin('episode as e', 'e.id', 'o.episode_id')
    .select([
      'o.id',
      'o.episode_id',
      'o.outcome',
      'o.side',
      'o.early_recall_months',
      'o.referred_to_treatment',
      'o.treatment_provider',
      'o.decided_on',
    ])
    .where('e.participant_id', '=', participantId)
    .where('o.superseded_at', 'is', null)
    .orderBy('o.decided_on', 'desc')
    .orderBy('o.recorded_at', 'desc')
    .execute();
}

/**
 * Letters to her and messages to her GP, newest first, with what became of each. The words themselves are not read
 * here: whether they were kept (content_sha256) says whether the letter can be shown again.
 */
function communicationsOf(db: Db, participantId: string) {
  return db
    .selectFrom('communication as m')
    .leftJoin('gp_practice as g', 'g.ods_code', 'm.gp_practice_code')
    .select([
      'm.id',
      'm.episode_id',
      'm.appointment_id',
      'm.recipient',
      'm.kind',
      'm.channel',
      'm.gp_practice_code',
      'g.name as gp_practice_name',
      'm.format',
      'm.language',
      'm.status',
      'm.attempts',
      'm.last_error',
      'm.created_at',
      'm.sent_at',
      'm.delivered_at',
      'm.acknowledged_at',
      sql<boolean>`m.content_sha256 is not null`.as('words_kept'),
    ])
    .where('m.participant_id', '=', participantId)
    .orderBy('m.created_at', 'desc')
    .orderBy('m.id')
    .execute();
}

/**
 * Everything known about one person, read in one go for the record page and the API, including her exams (results
 * or how far reading has gone), assessment outcomes and communications. Audited as a view.
 */
export async function loadParticipantRecord(db: Db, key: { id: string } | { nhsNumber: string }, actor: Actor) {
  const participant = await db
    .selectFrom('participant as p')
    .leftJoin('gp_practice as g', 'g.ods_code', 'p.gp_practice_code')
    .innerJoin('screening_office as o', 'o.code', 'p.bso_code')
    .selectAll('p')
    .select(['g.name as gp_practice_name', 'o.name as bso_name'])
    .$if('id' in key, (q) => q.where('p.id', '=', (key as { id: string }).id))
    .$if('nhsNumber' in key, (q) => q.where('p.nhs_number', '=', (key as { nhsNumber: string }).nhsNumber))
    .executeTakeFirst();
  if (!participant) throw new NotFoundError('There is no participant with that NHS number or record');
  const id = participant.id;
  const [items, changes, episodes, appointments, exams, assessmentOutcomes, communications] = await Promise.all([
    db
      .selectFrom('record_item as i')
      .leftJoin('app_user as u', 'u.id', 'i.recorded_by')
      .selectAll('i')
      .select('u.display_name as recorded_by_name')
      .where('i.participant_id', '=', id)
      .orderBy('i.recorded_at')
      .execute(),
    db
      .selectFrom('participant_change as c')
      .leftJoin('app_user as u', 'u.id', 'c.changed_by')
      .selectAll('c')
      .select('u.display_name as changed_by_name')
      .where('c.participant_id', '=', id)
      .orderBy('c.id', 'desc')
      .execute(),
    db.selectFrom('episode').selectAll().where('participant_id', '=', id).orderBy('opened_on', 'desc').execute(),
    findAppointments(db, { participantId: id }),
    examsOf(db, id),
    assessmentOutcomesOf(db, id),
    communicationsOf(db, id),
  ]);
  await recordAudit(db, actor, {
    action: 'participant.view',
    entityType: 'participant',
    entityId: id,
    participantId: id,
  });
  const current = items.filter((i) => !i.superseded_at && !i.removed_at);
  const lastScreenedOn = episodes.map((e) => e.screened_on).find((d): d is string => d !== null) ?? null;
  return {
    participant,
    items,
    current,
    changes,
    episodes,
    appointments,
    lastScreenedOn,
    exams,
    assessmentOutcomes,
    communications,
  };
}

export type ParticipantRecord = Awaited<ReturnType<typeof loadParticipantRecord>>;
