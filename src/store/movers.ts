/**
 * Movers in the store: records each change of responsible screening office (participant.bso_code, which follows
 * the GP practice), applies what src/pathway/movers.ts plans for her open episode, and lists the moves in and out of
 * an office for its staff to acknowledge. The participant row itself is changed by the caller (the cohort import, or
 * a staff correction of her GP practice) in the same transaction; nothing here copies her record: there is one.
 */
import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import { APPOINTMENT_STATUSES, isFinal, type AppointmentStatus } from '../pathway/appointment-status.js';
import type { IsoDate } from '../pathway/dates.js';
import { moveTasks, planMove, type MovePlan, type MoveSource } from '../pathway/movers.js';
import { recordAudit, type Actor } from './audit.js';
import type { Db } from './database.js';
import { ConflictError, isUniqueViolation, NotFoundError, RuleError } from './errors.js';

/** A change of responsible office already made on her participant row. */
export interface MoveRequest {
  participantId: string;
  fromOffice: string;
  toOffice: string;
  gpPracticeFrom: string | null;
  gpPracticeTo: string;
  effectiveDate: IsoDate;
  source: MoveSource;
}

export interface RecordedMove extends MoveRequest {
  id: string;
  plan: MovePlan;
}

/** Statuses of an appointment still booked (not attended, cancelled or otherwise ended). */
const LIVE_STATUSES = APPOINTMENT_STATUSES.filter((s) => !isFinal(s));

/**
 * Records moves (in order; the same person may move twice in one batch) inside the caller's transaction: moves each
 * open episode the plan moves, and appends one participant_move row a move. Bulk: four statements whatever the
 * number of moves, none when there are none, so the cohort import calls it once a batch.
 */
export async function recordMoves(
  tx: Db,
  moves: readonly MoveRequest[],
  recordedBy: string | null,
): Promise<RecordedMove[]> {
  if (moves.length === 0) return [];
  const ids = [...new Set(moves.map((m) => m.participantId))];
  const [episodes, appointments] = await Promise.all([
    tx
      .selectFrom('episode')
      .select(['id', 'participant_id', 'bso_code', 'opened_on', 'screened_on'])
      .where('participant_id', '=', sql<string>`any(${ids}::uuid[])`)
      .where('closed_on', 'is', null)
      .orderBy('participant_id')
      .orderBy('opened_on', 'desc')
      .forUpdate()
      .execute(),
    tx
      .selectFrom('appointment as a')
      .innerJoin('clinic as c', 'c.id', 'a.clinic_id')
      .innerJoin('site as s', 's.id', 'c.site_id')
      .select(['a.id', 'a.participant_id', 's.bso_code', 'c.clinic_date', 'a.status'])
      .where('a.participant_id', '=', sql<string>`any(${ids}::uuid[])`)
      .where('a.status', 'in', LIVE_STATUSES)
      .execute(),
  ]);
  // Her most recent open episode, as it stands after each move so far.
  const openEpisode = new Map<string, { id: string; bsoCode: string; openedOn: string; screenedOn: string | null }>();
  for (const e of episodes) {
    if (!openEpisode.has(e.participant_id))
      openEpisode.set(e.participant_id, {
        id: e.id,
        bsoCode: e.bso_code,
        openedOn: e.opened_on,
        screenedOn: e.screened_on,
      });
  }
  const appointmentsOf = new Map<string, typeof appointments>();
  for (const a of appointments) {
    const list = appointmentsOf.get(a.participant_id);
    if (list) list.push(a);
    else appointmentsOf.set(a.participant_id, [a]);
  }

  const recorded: RecordedMove[] = [];
  const episodeOffice = new Map<string, string>();
  for (const move of moves) {
    const episode = openEpisode.get(move.participantId) ?? null;
    const plan = planMove({
      fromOffice: move.fromOffice,
      toOffice: move.toOffice,
      effectiveDate: move.effectiveDate,
      openEpisode: episode,
      appointments: (appointmentsOf.get(move.participantId) ?? []).map((a) => ({
        id: a.id,
        bsoCode: a.bso_code,
        clinicDate: a.clinic_date,
        status: a.status,
      })),
    });
    if (episode && plan.episode?.outcome === 'moved') {
      episode.bsoCode = move.toOffice;
      episodeOffice.set(episode.id, move.toOffice);
    }
    recorded.push({ ...move, id: randomUUID(), plan });
  }

  if (episodeOffice.size > 0) {
    const rows = [...episodeOffice].map(([id, bso_code]) => ({ id, bso_code }));
    await sql`
      update episode e set bso_code = x.bso_code
      from jsonb_to_recordset(${JSON.stringify(rows)}::jsonb) as x(id uuid, bso_code text)
      where e.id = x.id`.execute(tx);
  }
  const rows = recorded.map((m) => ({
    id: m.id,
    participant_id: m.participantId,
    from_bso_code: m.fromOffice,
    to_bso_code: m.toOffice,
    effective_date: m.effectiveDate,
    source: m.source,
    gp_practice_from: m.gpPracticeFrom,
    gp_practice_to: m.gpPracticeTo,
    episode_id: m.plan.episode?.id ?? null,
    episode_outcome: m.plan.episode?.outcome ?? null,
    appointments_at_old_office: m.plan.appointmentsAtOldOffice,
    recorded_by: recordedBy,
  }));
  // In the order given, so seq keeps the order of moves made in one batch.
  await sql`
    insert into participant_move (id, participant_id, from_bso_code, to_bso_code, effective_date, source,
      gp_practice_from, gp_practice_to, episode_id, episode_outcome, appointments_at_old_office, recorded_by)
    select id, participant_id, from_bso_code, to_bso_code, effective_date, source, gp_practice_from, gp_practice_to,
      episode_id, episode_outcome, appointments_at_old_office, recorded_by
    from rows from (jsonb_to_recordset(${JSON.stringify(rows)}::jsonb) as (id uuid, participant_id uuid,
      from_bso_code text, to_bso_code text, effective_date date, source text, gp_practice_from text,
      gp_practice_to text, episode_id uuid, episode_outcome text, appointments_at_old_office jsonb, recorded_by uuid))
      with ordinality as x(id, participant_id, from_bso_code, to_bso_code, effective_date, source, gp_practice_from,
        gp_practice_to, episode_id, episode_outcome, appointments_at_old_office, recorded_by, n)
    order by n`.execute(tx);
  return recorded;
}

/** A staff correction of her GP practice moved her: records the move and audits it ('participant.move'). */
export async function recordStaffMove(tx: Db, move: Omit<MoveRequest, 'source'>, actor: Actor): Promise<RecordedMove> {
  const [recorded] = await recordMoves(tx, [{ ...move, source: 'staff' }], actor.userId);
  await recordAudit(tx, actor, {
    action: 'participant.move',
    entityType: 'participant_move',
    entityId: recorded!.id,
    participantId: move.participantId,
    detail: {
      from: move.fromOffice,
      to: move.toOffice,
      gpPracticeFrom: move.gpPracticeFrom,
      gpPracticeTo: move.gpPracticeTo,
      episode: recorded!.plan.episode,
      appointmentsAtOldOffice: recorded!.plan.appointmentsAtOldOffice.length,
    },
  });
  return recorded!;
}

/** The screening office whose area a GP practice is in (null for an unknown practice, or none). */
export async function officeOfPractice(db: Db, odsCode: string | null): Promise<string | null> {
  if (!odsCode) return null;
  const practice = await db
    .selectFrom('gp_practice')
    .select('bso_code')
    .where('ods_code', '=', odsCode)
    .executeTakeFirst();
  return practice?.bso_code ?? null;
}

/** Acknowledged moves shown on the movers page, most recent first. */
export const ACKNOWLEDGED_SHOWN = 50;
/** Moves still to acknowledge shown at most (the count covers all). */
export const OPEN_SHOWN = 500;

function movesQuery(db: Db) {
  return db
    .selectFrom('participant_move as m')
    .innerJoin('participant as p', 'p.id', 'm.participant_id')
    .innerJoin('screening_office as fo', 'fo.code', 'm.from_bso_code')
    .innerJoin('screening_office as tov', 'tov.code', 'm.to_bso_code')
    .leftJoin('gp_practice as gf', 'gf.ods_code', 'm.gp_practice_from')
    .leftJoin('gp_practice as gt', 'gt.ods_code', 'm.gp_practice_to')
    .leftJoin('episode as e', 'e.id', 'm.episode_id')
    .leftJoin('app_user as rb', 'rb.id', 'm.recorded_by')
    .select([
      'm.id',
      'm.participant_id',
      'p.nhs_number',
      'p.given_name',
      'p.family_name',
      'm.from_bso_code',
      'fo.name as from_office_name',
      'm.to_bso_code',
      'tov.name as to_office_name',
      'm.gp_practice_from',
      'gf.name as gp_practice_from_name',
      'm.gp_practice_to',
      'gt.name as gp_practice_to_name',
      'm.effective_date',
      'm.source',
      'm.episode_id',
      'm.episode_outcome',
      'e.opened_on as episode_opened_on',
      'm.appointments_at_old_office',
      'm.recorded_at',
      'rb.display_name as recorded_by_name',
    ]);
}

type MoveRow = Awaited<ReturnType<ReturnType<typeof movesQuery>['execute']>>[number];

export interface BookedAtOldOffice {
  id: string;
  clinicDate: string;
  siteName: string;
  status: AppointmentStatus;
}

/** The appointments each move left at the old office that are still booked now, by appointment id. */
async function stillBooked(db: Db, moves: readonly MoveRow[]): Promise<Map<string, BookedAtOldOffice>> {
  const ids = [...new Set(moves.flatMap((m) => m.appointments_at_old_office))];
  if (ids.length === 0) return new Map();
  const rows = await db
    .selectFrom('appointment as a')
    .innerJoin('clinic as c', 'c.id', 'a.clinic_id')
    .innerJoin('site as s', 's.id', 'c.site_id')
    .select(['a.id', 'c.clinic_date', 's.name as site_name', 'a.status'])
    .where('a.id', '=', sql<string>`any(${ids}::uuid[])`)
    .where('a.status', 'in', LIVE_STATUSES)
    .execute();
  return new Map(
    rows.map((r) => [r.id, { id: r.id, clinicDate: r.clinic_date, siteName: r.site_name, status: r.status }]),
  );
}

export interface MoveDetails {
  /** Appointments the move left at the old office that are still booked now. */
  appointments: BookedAtOldOffice[];
  /** What each office has to do or know (src/pathway/movers.ts moveTasks). */
  tasks: { in: string[]; out: string[] };
}

/** Adds what is still booked at the old office, and each side's tasks, to moves read from the table. */
async function withDetails<T extends MoveRow>(db: Db, moves: T[]): Promise<(T & MoveDetails)[]> {
  const booked = await stillBooked(db, moves);
  return moves.map((m) => {
    const appointments = m.appointments_at_old_office
      .map((id) => booked.get(id))
      .filter((a): a is BookedAtOldOffice => a !== undefined);
    const seen = {
      fromOfficeName: m.from_office_name,
      toOfficeName: m.to_office_name,
      episodeOutcome: m.episode_outcome,
      appointmentsStillBooked: appointments.length,
    };
    return { ...m, appointments, tasks: { in: moveTasks(seen, 'in'), out: moveTasks(seen, 'out') } };
  });
}

export type OfficeMove = MoveRow & MoveDetails & { seen_at: Date | null; seen_by_name: string | null };

export interface OfficeMoves {
  open: OfficeMove[];
  openCount: number;
  acknowledged: OfficeMove[];
}

/** Moves into ('in') or out of ('out') an office: those it has still to acknowledge (oldest first), and the latest it has. */
export async function listOfficeMoves(db: Db, office: string, direction: 'in' | 'out'): Promise<OfficeMoves> {
  const column = direction === 'in' ? 'm.to_bso_code' : 'm.from_bso_code';
  const base = movesQuery(db)
    .leftJoin('participant_move_seen as s', (join) =>
      join.onRef('s.move_id', '=', 'm.id').on('s.bso_code', '=', office),
    )
    .leftJoin('app_user as su', 'su.id', 's.seen_by')
    .select(['s.seen_at', 'su.display_name as seen_by_name'])
    .where(column, '=', office);
  const [open, openCount, acknowledged] = await Promise.all([
    base.where('s.move_id', 'is', null).orderBy('m.seq').limit(OPEN_SHOWN).execute(),
    base
      .clearSelect()
      .select(sql<number>`count(*)::int`.as('n'))
      .where('s.move_id', 'is', null)
      .executeTakeFirstOrThrow()
      .then((r) => r.n),
    base.where('s.move_id', 'is not', null).orderBy('s.seen_at', 'desc').limit(ACKNOWLEDGED_SHOWN).execute(),
  ]);
  return {
    open: await withDetails(db, open),
    openCount,
    acknowledged: await withDetails(db, acknowledged),
  };
}

/** Her moves between offices, most recent first, with who has acknowledged each. */
export async function listParticipantMoves(db: Db, participantId: string) {
  const moves = await movesQuery(db).where('m.participant_id', '=', participantId).orderBy('m.seq', 'desc').execute();
  const seen = moves.length
    ? await db
        .selectFrom('participant_move_seen as s')
        .innerJoin('app_user as u', 'u.id', 's.seen_by')
        .select(['s.move_id', 's.bso_code', 's.seen_at', 'u.display_name'])
        .where('s.move_id', '=', sql<string>`any(${moves.map((m) => m.id)}::uuid[])`)
        .execute()
    : [];
  return (await withDetails(db, moves)).map((m) => ({
    ...m,
    seenByFrom: seen.find((s) => s.move_id === m.id && s.bso_code === m.from_bso_code) ?? null,
    seenByTo: seen.find((s) => s.move_id === m.id && s.bso_code === m.to_bso_code) ?? null,
  }));
}

/**
 * The office `office` marks a move seen (once: a second time is refused with who did it first). Audited
 * ('participant.move.seen').
 */
export async function acknowledgeMove(db: Db, moveId: string, office: string, actor: Actor): Promise<void> {
  if (!actor.userId) throw new RuleError('office', 'Only a signed-in member of staff can acknowledge a move');
  const userId = actor.userId;
  await db.transaction().execute(async (tx) => {
    const move = await tx
      .selectFrom('participant_move')
      .select(['id', 'participant_id', 'from_bso_code', 'to_bso_code'])
      .where('id', '=', moveId)
      .executeTakeFirst();
    if (!move) throw new NotFoundError('That move does not exist');
    if (office !== move.from_bso_code && office !== move.to_bso_code)
      throw new RuleError('office', 'Only the office she left or the office she joined can acknowledge this move');
    const already = await tx
      .selectFrom('participant_move_seen as s')
      .innerJoin('app_user as u', 'u.id', 's.seen_by')
      .select(['u.display_name', 's.seen_at'])
      .where('s.move_id', '=', moveId)
      .where('s.bso_code', '=', office)
      .executeTakeFirst();
    if (already)
      throw new ConflictError(
        `${already.display_name} already acknowledged this move for ${office} at ${already.seen_at.toISOString()}.`,
      );
    try {
      await tx
        .insertInto('participant_move_seen')
        .values({ move_id: moveId, bso_code: office, seen_by: userId })
        .execute();
    } catch (error) {
      if (isUniqueViolation(error))
        throw new ConflictError(`Someone else acknowledged this move for ${office} just now.`);
      throw error;
    }
    await recordAudit(tx, actor, {
      action: 'participant.move.seen',
      entityType: 'participant_move',
      entityId: moveId,
      participantId: move.participant_id,
      detail: { office, direction: office === move.to_bso_code ? 'in' : 'out' },
    });
  });
}
