import type { Db } from '../../src/store/database.js';
import type { BatchToSend } from '../../src/store/invitation-sending.js';

/** A record item with its proper category and value (the fixtures' addItem knows only a few kinds). */
export async function addNeed(db: Db, participantId: string, kind: string, value: string | null = null) {
  const category = ['wheelchair', 'physical_restriction', 'hearing', 'vision', 'learning_disability'].includes(kind)
    ? 'access'
    : 'communication';
  await db
    .insertInto('record_item')
    .values({ participant_id: participantId, category, kind, value, source: 'gp', source_date: '2026-01-01' })
    .execute();
}

/** Clinics for a batch on 12 January 2027: a small wheelchair accessible one, and a car park one that is not. */
export async function batchClinics(db: Db) {
  const clinic = (site_id: string, location_id: string, clinic_date: string, starts_at: string, ends_at: string) =>
    db
      .insertInto('clinic')
      .values({ site_id, location_id, clinic_date, starts_at, ends_at, slot_minutes: 10 })
      .returning('id')
      .executeTakeFirstOrThrow()
      .then((r) => r.id);
  return {
    central: await clinic('static-1', 'central', '2027-01-12', '09:00', '09:30'),
    carPark: await clinic('mobile-1', 'car-park', '2027-01-12', '09:00', '10:00'),
    outside: await clinic('static-1', 'central', '2027-03-30', '09:00', '12:00'),
  };
}

export const BATCH: BatchToSend = {
  bsoCode: 'TST',
  criterion: { kind: 'outcode', outcode: 'LS6' },
  batchDate: '2027-01-12',
  horizonDate: '2027-02-23',
};
