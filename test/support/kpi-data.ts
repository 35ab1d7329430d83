import { randomUUID } from 'node:crypto';
import type { Db } from '../../src/store/database.js';
import { addParticipant } from './fixtures.js';

/** Small builders for the KPI and intervention tests: rows straight into the pathway tables. */

export async function addOffice(db: Db, code: string) {
  await db
    .insertInto('screening_office')
    .values({ code, name: `Office ${code}` })
    .execute();
}

export async function woman(
  db: Db,
  office: string,
  dob: string,
  extra: Partial<{ gp: string | null; date_of_death: string; ceased_reason: string; ceased_on: string }> = {},
) {
  const p = await addParticipant(db, {
    date_of_birth: dob,
    ...(extra.date_of_death ? { date_of_death: extra.date_of_death } : {}),
    ...(extra.ceased_reason ? { ceased_reason: extra.ceased_reason, ceased_on: extra.ceased_on! } : {}),
  });
  await db
    .updateTable('participant')
    .set({ bso_code: office, gp_practice_code: extra.gp === undefined ? 'Y00001' : extra.gp })
    .where('id', '=', p.id)
    .execute();
  return p.id;
}

export async function episode(
  db: Db,
  office: string,
  participantId: string,
  type: 'C' | 'R' | 'E' | 'H' | 'G' | 'S',
  openedOn: string,
  screenedOn: string | null = null,
) {
  const row = await db
    .insertInto('episode')
    .values({
      participant_id: participantId,
      bso_code: office,
      episode_type: type,
      opened_on: openedOn,
      screened_on: screenedOn,
    })
    .returning('id')
    .executeTakeFirstOrThrow();
  return row.id;
}

let clinicCount = 0;

/** An appointment in a clinic of its own on `date` (screening or assessment), at smallOffice's static site. */
export async function appointment(
  db: Db,
  participantId: string,
  episodeId: string,
  date: string,
  options: { purpose?: 'screening' | 'assessment'; status?: 'screened' | 'cancelled' | 'scheduled' } = {},
) {
  const n = clinicCount++;
  const minutes = n % (24 * 60 - 1);
  const clinic = await db
    .insertInto('clinic')
    .values({
      site_id: 'static-1',
      location_id: 'central',
      clinic_date: date,
      starts_at: `${String(Math.floor(minutes / 60)).padStart(2, '0')}:${String(minutes % 60).padStart(2, '0')}`,
      ends_at: '23:59:59',
      slot_minutes: 10,
      purpose: options.purpose ?? 'screening',
    })
    .returning('id')
    .executeTakeFirstOrThrow();
  const row = await db
    .insertInto('appointment')
    .values({
      clinic_id: clinic.id,
      participant_id: participantId,
      episode_id: episodeId,
      slot_index: 0,
      slot_count: 1,
      status: options.status ?? 'screened',
      accession_number: `KPI${randomUUID().slice(0, 12).toUpperCase()}`,
    })
    .returning('id')
    .executeTakeFirstOrThrow();
  return row.id;
}

export async function examResult(
  db: Db,
  appointmentId: string,
  episodeId: string,
  result: 'routine_recall' | 'technical_recall' | 'recall_assessment',
) {
  await db
    .insertInto('exam_result')
    .values({
      appointment_id: appointmentId,
      episode_id: episodeId,
      result,
      next_test_due: result === 'routine_recall' ? '2029-01-01' : null,
    })
    .execute();
}

export async function normalLetter(db: Db, participantId: string, appointmentId: string, sentAt: string) {
  await db
    .insertInto('communication')
    .values({
      participant_id: participantId,
      appointment_id: appointmentId,
      recipient: 'participant',
      kind: 'result_normal',
      channel: 'letter',
      status: 'sent',
      sent_at: sentAt,
    })
    .execute();
}

export async function outcome(
  db: Db,
  episodeId: string,
  result: 'normal' | 'benign' | 'malignant_invasive' | 'malignant_micro_invasive' | 'malignant_non_invasive',
  decidedOn: string,
  options: { superseded?: boolean; replaces?: string } = {},
) {
  const row = await db
    .insertInto('assessment_outcome')
    .values({
      episode_id: episodeId,
      outcome: result,
      decided_on: decidedOn,
      superseded_at: options.superseded ? new Date().toISOString() : null,
      replaces_id: options.replaces ?? null,
    })
    .returning('id')
    .executeTakeFirstOrThrow();
  return row.id;
}
