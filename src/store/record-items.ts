import type { ItemCategory, Side, Source } from '../pathway/record-items.js';
import { itemKind } from '../pathway/record-items.js';
import { recordAudit, type Actor } from './audit.js';
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

export async function addItem(db: Db, participantId: string, input: ItemInput, actor: Actor): Promise<string> {
  return db.transaction().execute(async (tx) => {
    const exists = await tx.selectFrom('participant').select('id').where('id', '=', participantId).executeTakeFirst();
    if (!exists) throw new NotFoundError('That participant no longer exists');
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

/** A correction: a new row replaces the old one, which keeps its values as history. */
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
