import type { WorklistEntry } from '../dicom/worklist-item.js';
import { slotTime } from '../pathway/clinic-slots.js';
import { adjustmentsOn } from '../pathway/record-items.js';
import type { Db } from './database.js';

/** Appointments still to be seen: what a modality's worklist offers. */
const WORKLIST_STATUSES = ['scheduled', 'checked_in', 'in_progress', 'paused'] as const;

/**
 * The worklist of one site or mobile unit for a date range: its clinics' live appointments, at whichever location
 * the unit is on each day (the clinic says where). Nobody booked at another unit is ever in it.
 */
export async function unitWorklist(db: Db, siteId: string, from: string, to: string): Promise<WorklistEntry[]> {
  const rows = await db
    .selectFrom('appointment as a')
    .innerJoin('clinic as c', 'c.id', 'a.clinic_id')
    .innerJoin('site as s', 's.id', 'c.site_id')
    .innerJoin('location as l', 'l.id', 'c.location_id')
    .innerJoin('participant as p', 'p.id', 'a.participant_id')
    .select([
      'a.id',
      'a.accession_number',
      'a.slot_index',
      'c.clinic_date',
      'c.starts_at',
      'c.slot_minutes',
      's.ae_title',
      's.name as site_name',
      'l.name as location_name',
      'p.id as participant_id',
      'p.nhs_number',
      'p.given_name',
      'p.family_name',
      'p.date_of_birth',
      'p.sex',
    ])
    .where('c.site_id', '=', siteId)
    .where('c.status', '=', 'open')
    .where('c.clinic_date', '>=', from)
    .where('c.clinic_date', '<=', to)
    .where('a.status', 'in', WORKLIST_STATUSES)
    .where('p.date_of_death', 'is', null)
    .orderBy('c.clinic_date')
    .orderBy('a.slot_index')
    .execute();
  const ids = [...new Set(rows.map((r) => r.participant_id))];
  const items = ids.length
    ? await db
        .selectFrom('record_item')
        .select(['participant_id', 'kind', 'temporary_until'])
        .where('participant_id', 'in', ids)
        .where('superseded_at', 'is', null)
        .where('removed_at', 'is', null)
        .execute()
    : [];
  return rows.map((r) => ({
    appointmentId: r.id,
    accessionNumber: r.accession_number,
    nhsNumber: r.nhs_number,
    givenName: r.given_name,
    familyName: r.family_name,
    dateOfBirth: r.date_of_birth,
    sex: r.sex,
    clinicDate: r.clinic_date,
    startTime: slotTime({ startsAt: r.starts_at, slotMinutes: r.slot_minutes }, r.slot_index),
    stationAeTitle:
      r.ae_title ??
      r.site_name
        .toUpperCase()
        .replace(/[^A-Z0-9]/g, '')
        .slice(0, 16),
    locationName: r.location_name,
    adjustments: adjustmentsOn(
      items
        .filter((i) => i.participant_id === r.participant_id)
        .map((i) => ({ kind: i.kind, temporaryUntil: i.temporary_until })),
      r.clinic_date,
    ).map((k) => k.label),
  }));
}
