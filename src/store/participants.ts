import { sql } from 'kysely';
import { isMove } from '../pathway/movers.js';
import type { Source } from '../pathway/record-items.js';
import { recordAudit, type Actor } from './audit.js';
import type { Db } from './database.js';
import { ConflictError, NotFoundError } from './errors.js';
import { planFieldChanges } from './field-changes.js';
import { officeOfPractice, recordStaffMove } from './movers.js';

export type SearchQuery =
  | { by: 'nhsNumber'; nhsNumber: string }
  | { by: 'nameAndBirthDate'; familyName: string; givenName?: string; dateOfBirth: string }
  | { by: 'postcode'; postcode: string };

export const SEARCH_LIMIT = 50;

/** Participants matching a search, closest first; the search itself is audited (it reveals who is on record). */
export async function searchParticipants(db: Db, query: SearchQuery, actor: Actor) {
  let q = db
    .selectFrom('participant as p')
    .leftJoin('gp_practice as g', 'g.ods_code', 'p.gp_practice_code')
    .select([
      'p.id',
      'p.nhs_number',
      'p.given_name',
      'p.family_name',
      'p.date_of_birth',
      'p.date_of_death',
      'p.postcode',
      'g.name as gp_practice_name',
    ])
    .orderBy('p.family_name')
    .orderBy('p.given_name')
    .limit(SEARCH_LIMIT + 1);
  if (query.by === 'nhsNumber') q = q.where('p.nhs_number', '=', query.nhsNumber);
  if (query.by === 'postcode') q = q.where('p.postcode_key', '=', query.postcode.replaceAll(' ', '').toUpperCase());
  if (query.by === 'nameAndBirthDate') {
    q = q
      .where('p.date_of_birth', '=', query.dateOfBirth)
      .where(sql`lower(p.family_name)`, 'like', likePrefix(query.familyName));
    if (query.givenName) q = q.where(sql`lower(p.given_name)`, 'like', likePrefix(query.givenName));
  }
  const rows = await q.execute();
  await recordAudit(db, actor, {
    action: 'participant.search',
    entityType: 'participant',
    detail: { by: query.by, results: Math.min(rows.length, SEARCH_LIMIT) },
  });
  return { rows: rows.slice(0, SEARCH_LIMIT), more: rows.length > SEARCH_LIMIT };
}

const likePrefix = (text: string) =>
  text
    .trim()
    .toLowerCase()
    .replace(/[\\%_]/g, (c) => '\\' + c) + '%';

/** The demographic fields staff and feeds can correct, with their labels. */
export const DEMOGRAPHIC_FIELDS = {
  given_name: 'Given name',
  family_name: 'Family name',
  date_of_birth: 'Date of birth',
  date_of_death: 'Date of death',
  address_line1: 'Address line 1',
  address_line2: 'Address line 2',
  town: 'Town or city',
  postcode: 'Postcode',
  phone: 'Phone',
  email: 'Email',
  gp_practice_code: 'GP practice',
} as const;
export type DemographicField = keyof typeof DEMOGRAPHIC_FIELDS;
export type Demographics = { [F in DemographicField]: string | null };

export interface DemographicCorrection {
  participantId: string;
  /** The version the editor saw; a different current version means someone else changed it first. */
  expectedVersion: number;
  changes: Partial<Demographics>;
  source: Source;
  sourceDate: string;
  reason: string | null;
}

/**
 * Corrects demographic fields in one transaction: each changed field gets a history row with its source, the
 * record's provenance names the new source, and the version moves on. Returns the fields that changed.
 */
export async function correctDemographics(db: Db, correction: DemographicCorrection, actor: Actor): Promise<string[]> {
  return db.transaction().execute((tx) => correctDemographicsWithin(tx, correction, actor));
}

/** The same, inside the caller's transaction. */
export async function correctDemographicsWithin(
  tx: Db,
  correction: DemographicCorrection,
  actor: Actor,
): Promise<string[]> {
  const current = await tx
    .selectFrom('participant')
    .selectAll()
    .where('id', '=', correction.participantId)
    .forUpdate()
    .executeTakeFirst();
  if (!current) throw new NotFoundError('That participant no longer exists');
  if (current.version !== correction.expectedVersion) {
    const last = await tx
      .selectFrom('participant_change as c')
      .leftJoin('app_user as u', 'u.id', 'c.changed_by')
      .select(['u.display_name', 'c.changed_at'])
      .where('c.participant_id', '=', current.id)
      .orderBy('c.id', 'desc')
      .executeTakeFirst();
    const who = last ? ` by ${last.display_name ?? 'an automatic feed'} at ${last.changed_at.toISOString()}` : '';
    throw new ConflictError(
      `This record was changed${who} after you opened it. Your changes have not been saved: check the record and make them again.`,
    );
  }
  // Responsibility follows the GP practice (src/pathway/movers.ts): a practice in another office's area moves her there.
  const newPractice = correction.changes.gp_practice_code;
  const toOffice =
    newPractice && newPractice !== current.gp_practice_code ? await officeOfPractice(tx, newPractice) : null;
  const moves = isMove(current.bso_code, toOffice);
  const changes: Record<string, string | null | undefined> = moves
    ? { ...correction.changes, bso_code: toOffice }
    : correction.changes;
  const { changed, provenance, history } = planFieldChanges({
    participantId: current.id,
    current: {
      ...Object.fromEntries(
        (Object.keys(DEMOGRAPHIC_FIELDS) as DemographicField[]).map((field) => [field, current[field]]),
      ),
      bso_code: current.bso_code,
    },
    provenance: current.provenance,
    changes: changes as Record<string, string | null>,
    source: correction.source,
    sourceDate: correction.sourceDate,
    reason: (field) => (field === 'bso_code' ? 'Responsibility follows the GP practice' : correction.reason),
    changedBy: actor.userId,
    at: new Date().toISOString(),
  });
  if (changed.length === 0) return [];
  await tx.insertInto('participant_change').values(history).execute();
  await tx
    .updateTable('participant')
    .set({
      ...Object.fromEntries(changed.map((field) => [field, changes[field] ?? null])),
      provenance: JSON.stringify(provenance),
      version: current.version + 1,
      updated_at: new Date(),
    })
    .where('id', '=', current.id)
    .execute();
  await recordAudit(tx, actor, {
    action: 'participant.correct',
    entityType: 'participant',
    entityId: current.id,
    participantId: current.id,
    detail: { fields: changed, source: correction.source },
  });
  if (moves && changed.includes('bso_code'))
    await recordStaffMove(
      tx,
      {
        participantId: current.id,
        fromOffice: current.bso_code,
        toOffice,
        gpPracticeFrom: current.gp_practice_code,
        gpPracticeTo: newPractice!,
        effectiveDate: correction.sourceDate,
      },
      actor,
    );
  return changed;
}
