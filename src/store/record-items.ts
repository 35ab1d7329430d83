import { sql } from 'kysely';
import type { ItemCategory, Side, Source } from '../pathway/record-items.js';
import { formatLongDate } from '../pathway/dates.js';
import { itemKind, SIDE_LABELS, SOURCE_LABELS } from '../pathway/record-items.js';
import { decideItem, DISPUTED_ITEM_KINDS, type ItemStatement } from '../pathway/source-precedence.js';
import { recordAudit, type Actor } from './audit.js';
import { raiseConflicts } from './data-conflicts.js';
import type { Db } from './database.js';
import { ConflictError, NotFoundError, RuleError } from './errors.js';

export interface ItemInput {
  kind: string;
  side: Side | null;
  value: string | null;
  details: string;
  temporaryUntil: string | null;
  source: Source;
  sourceDate: string;
}

function rowFor(participantId: string, category: ItemCategory, input: ItemInput, actor: Actor) {
  return {
    participant_id: participantId,
    category,
    kind: input.kind,
    side: input.side,
    value: input.value,
    details: input.details,
    temporary_until: input.temporaryUntil,
    source: input.source,
    source_date: input.sourceDate,
    recorded_by: actor.userId,
  };
}

function categoryOf(kind: string): ItemCategory {
  const k = itemKind(kind);
  if (!k) throw new RuleError('kind', 'Select what kind of information this is');
  return k.category;
}

/** Sources whose accounts of a disputed kind (breast implants) are weighed against each other. */
const WEIGHED_SOURCES: ReadonlySet<Source> = new Set<Source>(['gp', 'participant']);

/** The current items of a kind, latest first, locked. */
async function currentOfKind(tx: Db, participantId: string, kind: string) {
  return tx
    .selectFrom('record_item')
    .selectAll()
    .where('participant_id', '=', participantId)
    .where('kind', '=', kind)
    .where('superseded_at', 'is', null)
    .where('removed_at', 'is', null)
    .orderBy('source_date', 'desc')
    .orderBy('recorded_at', 'desc')
    .forUpdate()
    .execute();
}

const statementOf = (item: { side: Side | null; source: Source; source_date: string }): ItemStatement => ({
  present: true,
  side: item.side,
  source: item.source,
  on: item.source_date,
});

/**
 * For a disputed kind (breast implants) from the GP or the participant: whether the statement disagrees with the
 * current item from another source (src/pathway/source-precedence.ts decideItem). If it does, the conflict is raised
 * (or the open one brought up to date) and the record keeps its item until staff decide; returns that item's id
 * and whether a conflict was raised (not when staff already kept this item over the same statement from the source).
 */
async function heldInConflict(
  tx: Db,
  participantId: string,
  statement: ItemStatement & { details: string },
  current: { id: string; side: Side | null; source: Source; source_date: string } | undefined,
  kind: string,
  actor: Actor,
): Promise<{ itemId: string; raised: boolean } | undefined> {
  if (!DISPUTED_ITEM_KINDS.has(kind) || !WEIGHED_SOURCES.has(statement.source) || !current) return undefined;
  const decision = decideItem(kind, statementOf(current), statement);
  if (decision.action !== 'conflict') return undefined;
  // Staff already kept this item over the same statement from the same source: not raised again.
  const declined = await tx
    .selectFrom('data_conflict')
    .select('id')
    .where('participant_id', '=', participantId)
    .where('kind', '=', 'record_item')
    .where('subject', '=', kind)
    .where('resolution', '=', 'kept_current')
    .where('incoming_source', '=', statement.source)
    .where(sql<boolean>`current_value ->> 'itemId' = ${current.id}`)
    .where(sql<boolean>`(incoming_value ->> 'present')::boolean = ${statement.present}`)
    .where(sql<boolean>`coalesce(incoming_value ->> 'side', '') = ${statement.side ?? ''}`)
    .executeTakeFirst();
  if (declined) return { itemId: current.id, raised: false };
  const label = itemKind(kind)?.label ?? kind;
  const says = (s: ItemStatement) =>
    s.present
      ? `${label.toLowerCase()}${s.side ? ` (${SIDE_LABELS[s.side].toLowerCase()})` : ''}`
      : `no ${label.toLowerCase()}`;
  await recordAudit(tx, actor, {
    action: 'conflict.raise',
    entityType: 'data_conflict',
    participantId,
    detail: { kind: 'record_item', subject: kind, source: statement.source, present: statement.present },
  });
  await raiseConflicts(tx, [
    {
      kind: 'record_item',
      participantId,
      subject: kind,
      summary: `${SOURCE_LABELS[statement.source]} says ${says(statement)} (${formatLongDate(statement.on)}); the record has ${says(statementOf(current))} from ${SOURCE_LABELS[current.source]} (${formatLongDate(current.source_date)})`,
      precedence: decision.why,
      current: {
        value: { present: true, side: current.side, itemId: current.id },
        source: current.source,
        on: current.source_date,
      },
      incoming: {
        value: { present: statement.present, side: statement.side, details: statement.details },
        source: statement.source,
        on: statement.on,
      },
    },
  ]);
  return { itemId: current.id, raised: true };
}

/**
 * Adds an item. Breast implants from the GP or the participant that disagree with the record's implants from the
 * other (another side) are not added over them: the disagreement goes to the data conflict queue, and the id
 * returned is the item the record keeps.
 */
export async function addItem(db: Db, participantId: string, input: ItemInput, actor: Actor): Promise<string> {
  return db.transaction().execute(async (tx) => {
    const exists = await tx.selectFrom('participant').select('id').where('id', '=', participantId).executeTakeFirst();
    if (!exists) throw new NotFoundError('That participant no longer exists');
    if (DISPUTED_ITEM_KINDS.has(input.kind)) {
      const [current] = await currentOfKind(tx, participantId, input.kind);
      const statement = { present: true, side: input.side, source: input.source, on: input.sourceDate };
      const held = await heldInConflict(
        tx,
        participantId,
        { ...statement, details: input.details },
        current,
        input.kind,
        actor,
      );
      if (held) return held.itemId;
    }
    const { id } = await tx
      .insertInto('record_item')
      .values(rowFor(participantId, categoryOf(input.kind), input, actor))
      .returning('id')
      .executeTakeFirstOrThrow();
    await recordAudit(tx, actor, {
      action: 'record_item.add',
      entityType: 'record_item',
      entityId: id,
      participantId,
      detail: { kind: input.kind, source: input.source },
    });
    return id;
  });
}

/** Locks the item and checks it is still the current one: a correction of a corrected item is a conflict. */
async function lockCurrent(db: Db, itemId: string) {
  const item = await db.selectFrom('record_item').selectAll().where('id', '=', itemId).forUpdate().executeTakeFirst();
  if (!item) throw new NotFoundError('That item does not exist');
  if (item.superseded_at || item.removed_at) {
    throw new ConflictError(
      'Someone else corrected or removed this item after you opened it. Your change has not been saved: check the record and make it again.',
    );
  }
  return item;
}

/**
 * A correction: a new row replaces the old one, which keeps its values as history. A correction names the item it
 * replaces, so whoever makes it has seen what the other source said and decided: it is not weighed as a conflict
 * (only the record page corrects items; additions, which may come from a feed, are weighed).
 */
export async function correctItem(db: Db, itemId: string, input: ItemInput, actor: Actor): Promise<string> {
  return db.transaction().execute(async (tx) => {
    const old = await lockCurrent(tx, itemId);
    if (categoryOf(input.kind) !== old.category) {
      throw new RuleError(
        'kind',
        'A correction keeps the same kind of information: remove this item and add a new one',
      );
    }
    await tx.updateTable('record_item').set({ superseded_at: new Date() }).where('id', '=', itemId).execute();
    const { id } = await tx
      .insertInto('record_item')
      .values({ ...rowFor(old.participant_id, old.category, input, actor), replaces_id: itemId })
      .returning('id')
      .executeTakeFirstOrThrow();
    await recordAudit(tx, actor, {
      action: 'record_item.correct',
      entityType: 'record_item',
      entityId: id,
      participantId: old.participant_id,
      detail: { kind: input.kind, replaces: itemId, source: input.source },
    });
    return id;
  });
}

export async function removeItem(db: Db, itemId: string, reason: string, actor: Actor): Promise<void> {
  if (!reason.trim()) throw new RuleError('reason', 'Give a reason for removing this item');
  await db.transaction().execute(async (tx) => {
    const item = await lockCurrent(tx, itemId);
    await tx
      .updateTable('record_item')
      .set({ removed_at: new Date(), removed_reason: reason.trim() })
      .where('id', '=', itemId)
      .execute();
    await recordAudit(tx, actor, {
      action: 'record_item.remove',
      entityType: 'record_item',
      entityId: itemId,
      participantId: item.participant_id,
      detail: { kind: item.kind, reason: reason.trim() },
    });
  });
}

export interface AbsenceInput {
  kind: string;
  source: Source;
  sourceDate: string;
  details: string;
}

export type AbsenceOutcome = 'agrees' | 'removed' | 'older' | 'declined' | 'conflict';

/**
 * A source says she does not have something (the GP's record has no breast implants; she says she has none). With
 * nothing of that kind on record it agrees with the record and is only audited. An item from the same source dated
 * on or before it is removed; one from another source is never removed by it: for a disputed kind the disagreement
 * goes to the data conflict queue, and the record keeps the item until staff decide.
 */
export async function recordItemAbsent(
  db: Db,
  participantId: string,
  input: AbsenceInput,
  actor: Actor,
): Promise<AbsenceOutcome> {
  const kind = itemKind(input.kind);
  if (!kind) throw new RuleError('kind', 'Select what kind of information this is');
  return db.transaction().execute(async (tx) => {
    const exists = await tx.selectFrom('participant').select('id').where('id', '=', participantId).executeTakeFirst();
    if (!exists) throw new NotFoundError('That participant no longer exists');
    const items = await currentOfKind(tx, participantId, input.kind);
    const statement: ItemStatement = { present: false, side: null, source: input.source, on: input.sourceDate };
    const current = items[0];
    const decision = decideItem(input.kind, current ? statementOf(current) : null, statement);
    let outcome: AbsenceOutcome;
    if (decision.action === 'conflict') {
      const held = await heldInConflict(
        tx,
        participantId,
        { ...statement, details: input.details },
        current,
        input.kind,
        actor,
      );
      outcome = held?.raised === false ? 'declined' : 'conflict';
    } else if (decision.action === 'apply') {
      const removing = items.filter((i) => i.source === input.source && i.source_date <= input.sourceDate);
      const reason = `${SOURCE_LABELS[input.source]} says she does not have this (${input.sourceDate})${input.details ? `: ${input.details}` : ''}`;
      for (const item of removing) {
        await tx
          .updateTable('record_item')
          .set({ removed_at: new Date(), removed_reason: reason })
          .where('id', '=', item.id)
          .execute();
        await recordAudit(tx, actor, {
          action: 'record_item.remove',
          entityType: 'record_item',
          entityId: item.id,
          participantId,
          detail: { kind: input.kind, reason, source: input.source },
        });
      }
      outcome = 'removed';
      // An item of the kind from another source is not removed by this: weighed against it as above.
      const other = items.find((i) => !removing.includes(i));
      const held = await heldInConflict(
        tx,
        participantId,
        { ...statement, details: input.details },
        other,
        input.kind,
        actor,
      );
      if (held) outcome = held.raised ? 'conflict' : 'declined';
    } else outcome = decision.because === 'nothing_to_remove' ? 'agrees' : 'older';
    await recordAudit(tx, actor, {
      action: 'record_item.absent',
      entityType: 'participant',
      entityId: participantId,
      participantId,
      detail: { kind: input.kind, source: input.source, sourceDate: input.sourceDate, outcome, why: decision.why },
    });
    return outcome;
  });
}
