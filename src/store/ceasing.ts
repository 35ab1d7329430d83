/**
 * Ceasing a woman from screening and reinstating her, in the store (issue 5, item 2). The rules are in
 * pathway/ceasing.ts; this keeps the history (ceasing_event, append-only) and her record's ceasing in force
 * (participant.ceased_reason / ceased_on, which invitation batches and booking read) in step, in one transaction,
 * audited, with the same optimistic version check as other edits to her record.
 *
 * The ceasing in force is the newest ceasing not yet reinstated. Only a withdrawal from very high risk screening can
 * be open under another ceasing (she may be ceased while withdrawn from surveillance); reinstating that other ceasing
 * leaves the withdrawal in force. A ceasing from an older system (through the cohort feed) has no row in the
 * history: its reinstatement is recorded with that system's reason text.
 */
import { ceasingProblemsOnRecord, reinstatementProblemsOnRecord, ceasingReasonFrom } from '../pathway/ceasing.js';
import type { IsoDate } from '../pathway/dates.js';
import { recordAudit, type Actor } from './audit.js';
import type { Db } from './database.js';
import { ConflictError, NotFoundError, RulesRefusedError } from './errors.js';

export interface CeasingInput {
  participantId: string;
  /** The record's version the member of staff saw. */
  expectedVersion: number;
  /** A reason code (CEASING_REASONS). */
  reason: string;
  on: IsoDate;
  evidence: string;
}

export interface ReinstatementInput {
  participantId: string;
  expectedVersion: number;
  on: IsoDate;
  decidedBy: string;
  reason: string;
}

/** Her record locked for a change to her screening, after checking nobody changed it since it was read. */
export async function lockedParticipant(tx: Db, participantId: string, expectedVersion: number) {
  const current = await tx
    .selectFrom('participant')
    .select([
      'id',
      'version',
      'date_of_birth',
      'date_of_death',
      'ceased_reason',
      'ceased_on',
      'very_high_risk',
      'vhr_risk_group',
      'vhr_since',
      'vhr_radiotherapy_on',
      'provenance',
    ])
    .where('id', '=', participantId)
    .forUpdate()
    .executeTakeFirst();
  if (!current) throw new NotFoundError('That participant no longer exists');
  if (current.version !== expectedVersion)
    throw new ConflictError(
      'Her record was changed by someone else after you opened it. Nothing has been saved: check her record and try again.',
    );
  return current;
}

/** Her ceasings not yet reinstated, newest first. */
async function openCeasings(tx: Db, participantId: string) {
  return tx
    .selectFrom('ceasing_event as c')
    .leftJoin('ceasing_event as r', 'r.reinstates_id', 'c.id')
    .select(['c.id', 'c.ceasing_reason', 'c.ceased_on'])
    .where('c.participant_id', '=', participantId)
    .where('c.kind', '=', 'cease')
    .where('r.id', 'is', null)
    .orderBy('c.recorded_at', 'desc')
    .orderBy('c.ceased_on', 'desc')
    .execute();
}

/** Ceases her from screening (or from very high risk surveillance) from `input.on`. Returns the history row's id. */
export async function ceaseParticipant(db: Db, input: CeasingInput, actor: Actor, today: IsoDate): Promise<string> {
  return db.transaction().execute(async (tx) => {
    const p = await lockedParticipant(tx, input.participantId, input.expectedVersion);
    const problems = ceasingProblemsOnRecord(
      {
        reason: input.reason,
        on: input.on,
        evidence: input.evidence,
        veryHighRisk: p.very_high_risk,
        dateOfBirth: p.date_of_birth,
        dateOfDeath: p.date_of_death,
        ceased: p.ceased_reason && p.ceased_on ? { reason: p.ceased_reason, on: p.ceased_on } : null,
      },
      today,
    );
    if (problems.length > 0) throw new RulesRefusedError(problems);
    const evidence = input.evidence.trim();
    const { id } = await tx
      .insertInto('ceasing_event')
      .values({
        participant_id: p.id,
        kind: 'cease',
        ceasing_reason: input.reason,
        ceased_on: input.on,
        evidence,
        recorded_by: actor.userId,
        recorded_by_name: actor.username,
      })
      .returning('id')
      .executeTakeFirstOrThrow();
    await tx
      .updateTable('participant')
      .set({ ceased_reason: input.reason, ceased_on: input.on, version: p.version + 1, updated_at: new Date() })
      .where('id', '=', p.id)
      .execute();
    await recordAudit(tx, actor, {
      action: 'participant.cease',
      entityType: 'participant',
      entityId: p.id,
      participantId: p.id,
      detail: { reason: input.reason, on: input.on, evidence, ceasingEventId: id, replaces: p.ceased_reason },
    });
    return id;
  });
}

/**
 * Reinstates her from the ceasing in force. Her record then holds the next ceasing still open (a withdrawal from
 * very high risk screening), or none. Returns the history row's id.
 */
export async function reinstateParticipant(
  db: Db,
  input: ReinstatementInput,
  actor: Actor,
  today: IsoDate,
): Promise<string> {
  return db.transaction().execute(async (tx) => {
    const p = await lockedParticipant(tx, input.participantId, input.expectedVersion);
    const ceased = p.ceased_reason && p.ceased_on ? { reason: p.ceased_reason, on: p.ceased_on } : null;
    const problems = reinstatementProblemsOnRecord(
      { ceased, on: input.on, decidedBy: input.decidedBy, reason: input.reason },
      today,
    );
    if (problems.length > 0 || !ceased) throw new RulesRefusedError(problems);

    // The history row of the ceasing in force, if the hub recorded it (one from the cohort feed has none).
    const open = await openCeasings(tx, p.id);
    const code = ceasingReasonFrom(ceased.reason);
    const ended = open.find((c) => c.ceasing_reason === code && c.ceased_on === ceased.on);
    const { id } = await tx
      .insertInto('ceasing_event')
      .values({
        participant_id: p.id,
        kind: 'reinstate',
        ceasing_reason: ended?.ceasing_reason ?? ceased.reason,
        ceased_on: ceased.on,
        reinstates_id: ended?.id ?? null,
        reinstated_on: input.on,
        decided_by: input.decidedBy.trim(),
        reinstatement_reason: input.reason.trim(),
        recorded_by: actor.userId,
        recorded_by_name: actor.username,
      })
      .returning('id')
      .executeTakeFirstOrThrow();
    const next = open.find((c) => c.id !== ended?.id);
    await tx
      .updateTable('participant')
      .set({
        ceased_reason: next?.ceasing_reason ?? null,
        ceased_on: next?.ceased_on ?? null,
        version: p.version + 1,
        updated_at: new Date(),
      })
      .where('id', '=', p.id)
      .execute();
    await recordAudit(tx, actor, {
      action: 'participant.reinstate',
      entityType: 'participant',
      entityId: p.id,
      participantId: p.id,
      detail: {
        ceasedFor: ceased.reason,
        ceasedOn: ceased.on,
        on: input.on,
        decidedBy: input.decidedBy.trim(),
        reason: input.reason.trim(),
        ceasingEventId: id,
        stillInForce: next?.ceasing_reason ?? null,
      },
    });
    return id;
  });
}

/** Her ceasings and reinstatements, newest first, with who recorded each (for her record). */
export async function ceasingHistory(db: Db, participantId: string) {
  return db
    .selectFrom('ceasing_event as e')
    .leftJoin('app_user as u', 'u.id', 'e.recorded_by')
    .selectAll('e')
    .select('u.display_name as recorded_by_display_name')
    .where('e.participant_id', '=', participantId)
    .orderBy('e.recorded_at', 'desc')
    .orderBy('e.kind', 'desc')
    .execute();
}

export type CeasingHistory = Awaited<ReturnType<typeof ceasingHistory>>;

/** Her latest reinstatement, for the screening status (which shows it unless she is ceased again). */
export function latestReinstatement(history: CeasingHistory) {
  const r = history.find((e) => e.kind === 'reinstate');
  return r && r.reinstated_on
    ? {
        on: r.reinstated_on,
        ceasedFor: r.ceasing_reason,
        decidedBy: r.decided_by ?? '',
        reason: r.reinstatement_reason ?? '',
      }
    : null;
}
