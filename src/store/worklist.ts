import type { WorklistEntry } from '../dicom/worklist-item.js';
import { adjustmentsOn } from '../pathway/record-items.js';
import { currentItemsOf, findAppointments } from './clinics.js';
import type { Db } from './database.js';
import { transferPriority, type TransferPriority } from '../pathway/transfer-priority.js';

/** Appointments still to be seen: what a modality's worklist offers. */
const WORKLIST_STATUSES = ['scheduled', 'checked_in', 'in_progress', 'paused'] as const;

/**
 * The worklist of one site or mobile unit for a date range: its clinics' live appointments, at whichever location
 * the unit is on each day (the clinic says where), in time order. Nobody booked at another unit is ever in it.
 */
export async function unitWorklist(db: Db, siteId: string, from: string, to: string): Promise<WorklistEntry[]> {
  const rows = await findAppointments(db, { siteId, from, to, statuses: WORKLIST_STATUSES });
  const items = await currentItemsOf(db, [...new Set(rows.map((r) => r.participant_id))]);
  const priorities = await transferPriorities(db, rows);
  return rows
    .map((r) => ({
      appointmentId: r.id,
      participantId: r.participant_id,
      status: r.status,
      accessionNumber: r.accession_number,
      nhsNumber: r.nhs_number,
      givenName: r.given_name,
      familyName: r.family_name,
      dateOfBirth: r.date_of_birth,
      sex: r.sex,
      clinicDate: r.clinic_date,
      startTime: r.start,
      stationAeTitle:
        r.ae_title ??
        r.site_name
          .toUpperCase()
          .replace(/[^A-Z0-9]/g, '')
          .slice(0, 16),
      locationName: r.location_name,
      adjustments: adjustmentsOn(
        (items.get(r.participant_id) ?? []).map((i) => ({ kind: i.kind, temporaryUntil: i.temporary_until })),
        r.clinic_date,
      ).map((k) => k.label),
      priority: priorities.get(r.id) ?? 'routine',
    }))
    .sort((a, b) => a.clinicDate.localeCompare(b.clinicDate) || a.startTime.localeCompare(b.startTime));
}

/** Each appointment's transfer priority, from its episode type and the attempt it was booked again from. */
async function transferPriorities(
  db: Db,
  rows: readonly { id: string; episode_id: string | null; rescheduled_from: string | null }[],
): Promise<Map<string, TransferPriority>> {
  const episodeIds = [...new Set(rows.flatMap((r) => (r.episode_id ? [r.episode_id] : [])))];
  const earlierIds = [...new Set(rows.flatMap((r) => (r.rescheduled_from ? [r.rescheduled_from] : [])))];
  const episodes = episodeIds.length
    ? await db.selectFrom('episode').select(['id', 'episode_type']).where('id', 'in', episodeIds).execute()
    : [];
  const earlier = earlierIds.length
    ? await db.selectFrom('appointment').select(['id', 'status']).where('id', 'in', earlierIds).execute()
    : [];
  const typeOf = new Map(episodes.map((e) => [e.id, e.episode_type]));
  const statusOf = new Map(earlier.map((a) => [a.id, a.status]));
  return new Map(
    rows.map((r) => [
      r.id,
      transferPriority({
        episodeType: r.episode_id ? (typeOf.get(r.episode_id) ?? null) : null,
        earlierAttempt: r.rescheduled_from ? (statusOf.get(r.rescheduled_from) ?? null) : null,
      }),
    ]),
  );
}
