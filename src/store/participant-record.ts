import { recordAudit, type Actor } from './audit.js';
import { findAppointments } from './clinics.js';
import type { Db } from './database.js';
import { NotFoundError } from './errors.js';

/** Everything known about one person, read in one go for the record page and the API. Audited as a view. */
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
  const [items, changes, episodes, appointments] = await Promise.all([
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
  ]);
  await recordAudit(db, actor, {
    action: 'participant.view',
    entityType: 'participant',
    entityId: id,
    participantId: id,
  });
  const current = items.filter((i) => !i.superseded_at && !i.removed_at);
  const lastScreenedOn = episodes.map((e) => e.screened_on).find((d): d is string => d !== null) ?? null;
  return { participant, items, current, changes, episodes, appointments, lastScreenedOn };
}

export type ParticipantRecord = Awaited<ReturnType<typeof loadParticipantRecord>>;
