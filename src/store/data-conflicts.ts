/**
 * The queue of data conflicts: two sources that disagree in a way the precedence rules (src/pathway/source-precedence.ts,
 * docs/data-precedence.md) do not settle. Three kinds share one table:
 *
 *  - 'trailer': a change made on a mobile unit that crossed a newer one at the hub (raised by applyGatewayChange);
 *  - 'field': a participant detail (the address, a phone number, a death) where a feed row disagrees with a value
 *    the record holds from another source (raised by the cohort import);
 *  - 'record_item': sources disagreeing about a record item kind such as breast implants (raised by record-items).
 *
 * Each keeps both sides with their source and date, and the record is not changed over it. There is one open conflict
 * per participant and detail: a newer disagreeing value replaces the open conflict's incoming side instead of piling
 * up. Staff resolve it by keeping the record's value or applying the incoming one, with a reason; the change is
 * written as any edit is (participant_change and provenance, or a superseded record item) and audited
 * 'conflict.resolve'. Keeping the record's value over a feed's remembers the declined value in the provenance, so the
 * same value from the same source does not raise the conflict again.
 */
import { sql } from 'kysely';
import { type AppointmentStatus } from '../pathway/appointment-status.js';
import { formatLongDate } from '../pathway/dates.js';
import { itemKind, SOURCE_LABELS, type Side, type Source } from '../pathway/record-items.js';
import { DETAILS, type Detail } from '../pathway/source-precedence.js';
import { recordAudit, type Actor } from './audit.js';
import { changeStatusWithin } from './clinics.js';
import type { Db } from './database.js';
import { ConflictError, NotFoundError, RuleError } from './errors.js';
import { planFieldChanges } from './field-changes.js';
import { correctDemographicsWithin } from './participants.js';
import type { ConflictResolution, DataConflictKind, FieldProvenance } from './tables.js';

/** One side of a conflict: its value (a detail's fields, or an item statement), where it came from and when. */
export interface ConflictSide<V> {
  value: V;
  source: Source | null;
  on: string | null;
}

/** What a record item conflict holds on each side. */
export interface ItemSideValue {
  present: boolean;
  side: Side | null;
  details?: string;
  /** The record item this side is (current side only). */
  itemId?: string | null;
}

export type NewConflict =
  | {
      kind: 'field';
      participantId: string;
      subject: Detail;
      summary: string;
      precedence: string;
      current: ConflictSide<Record<string, string | null>>;
      incoming: ConflictSide<Record<string, string | null>> & { source: Source; on: string };
    }
  | {
      kind: 'record_item';
      participantId: string;
      subject: string;
      summary: string;
      precedence: string;
      current: ConflictSide<ItemSideValue>;
      incoming: ConflictSide<ItemSideValue> & { source: Source; on: string };
    };

/**
 * Raises conflicts (many at once, for the cohort import), inside the caller's transaction. Where the participant
 * already has an open conflict about the same detail, a newer incoming value (and the record's value now) replaces
 * what it held, and its version moves on so a decision made on the old values is refused; the same value again
 * changes nothing.
 */
export async function raiseConflicts(tx: Db, conflicts: readonly NewConflict[]): Promise<void> {
  if (conflicts.length === 0) return;
  const latest = new Map<string, NewConflict>();
  for (const c of conflicts) {
    const key = `${c.participantId} ${c.kind} ${c.subject}`;
    const held = latest.get(key);
    if (!held || held.incoming.on <= c.incoming.on) latest.set(key, c);
  }
  const rows = [...latest.values()].map((c) => ({
    kind: c.kind,
    participant_id: c.participantId,
    subject: c.subject,
    summary: c.summary,
    precedence: c.precedence,
    current_value: c.current.value,
    current_source: c.current.source,
    current_on: c.current.on,
    incoming_value: c.incoming.value,
    incoming_source: c.incoming.source,
    incoming_on: c.incoming.on,
  }));
  await sql`
    insert into data_conflict (kind, participant_id, subject, summary, precedence, current_value, current_source,
      current_on, incoming_value, incoming_source, incoming_on)
    select kind, participant_id, subject, summary, precedence, current_value, current_source, current_on,
      incoming_value, incoming_source, incoming_on
    from jsonb_to_recordset(${JSON.stringify(rows)}::jsonb) as x(kind text, participant_id uuid, subject text,
      summary text, precedence text, current_value jsonb, current_source text, current_on date, incoming_value jsonb,
      incoming_source text, incoming_on date)
    on conflict (participant_id, kind, subject) where status = 'open' and kind <> 'trailer'
    do update set incoming_value = excluded.incoming_value, incoming_source = excluded.incoming_source,
      incoming_on = excluded.incoming_on, current_value = excluded.current_value,
      current_source = excluded.current_source, current_on = excluded.current_on, summary = excluded.summary,
      precedence = excluded.precedence, updated_at = now(), version = data_conflict.version + 1
    where data_conflict.incoming_on <= excluded.incoming_on
      and (data_conflict.incoming_value, data_conflict.incoming_source, data_conflict.current_value)
        is distinct from (excluded.incoming_value, excluded.incoming_source, excluded.current_value)`.execute(tx);
}

/** Open conflicts about one participant (for the record page's warning). */
export async function countOpenConflicts(db: Db, participantId: string): Promise<number> {
  const row = await db
    .selectFrom('data_conflict')
    .select((eb) => eb.fn.countAll<string>().as('n'))
    .where('participant_id', '=', participantId)
    .where('status', '=', 'open')
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

/** Conflicts of every kind, oldest open first or latest resolved first (200 at most). */
export async function listDataConflicts(
  db: Db,
  status: 'open' | 'resolved',
  options: { kind?: DataConflictKind } = {},
) {
  return db
    .selectFrom('data_conflict as d')
    .leftJoin('gateway_change as g', 'g.id', 'd.gateway_change_id')
    .leftJoin('gateway as w', 'w.id', 'g.gateway_id')
    .innerJoin('participant as p', 'p.id', 'd.participant_id')
    .leftJoin('app_user as u', 'u.id', 'd.resolved_by')
    .select([
      'd.id',
      'd.kind',
      'd.subject',
      'd.summary',
      'd.precedence',
      'd.trailer',
      'd.hub',
      'd.current_value',
      'd.current_source',
      'd.current_on',
      'd.incoming_value',
      'd.incoming_source',
      'd.incoming_on',
      'd.raised_at',
      'd.updated_at',
      'd.status',
      'd.resolution',
      'd.resolution_reason',
      'd.resolved_at',
      'd.version',
      'd.appointment_id',
      'g.kind as change_kind',
      'g.made_by',
      'g.made_at',
      'w.site_id as unit_id',
      'p.id as participant_id',
      'p.nhs_number',
      'p.given_name',
      'p.family_name',
      'u.display_name as resolved_by_name',
    ])
    .where('d.status', '=', status)
    .$if(options.kind !== undefined, (q) => q.where('d.kind', '=', options.kind!))
    .orderBy('d.raised_at', status === 'open' ? 'asc' : 'desc')
    .orderBy('d.id')
    .limit(200)
    .execute();
}

export type ListedConflict = Awaited<ReturnType<typeof listDataConflicts>>[number];

export interface ConflictDecision {
  conflictId: string;
  /** The version the person deciding saw: a conflict updated or resolved since is refused. */
  expectedVersion: number;
  resolution: ConflictResolution;
  reason: string;
}

/**
 * Resolves a conflict: keeps the record's value or applies the incoming one, with the reason staff give. Applying a
 * trailer's appointment status the pathway would not allow from the hub's status (screened on the trailer after the
 * office cancelled) is recorded as a status event with the conflict as its reason: the trailer saw her.
 */
export async function resolveDataConflict(
  db: Db,
  decision: ConflictDecision,
  actor: Actor,
  today: string,
): Promise<void> {
  const reason = decision.reason.trim();
  if (!reason) throw new RuleError('reason', 'Give a reason for your decision');
  await db.transaction().execute(async (tx) => {
    const conflict = await tx
      .selectFrom('data_conflict as d')
      .leftJoin('gateway_change as g', 'g.id', 'd.gateway_change_id')
      .selectAll('d')
      .select(['g.kind as change_kind', 'g.made_by'])
      .where('d.id', '=', decision.conflictId)
      .forUpdate('d')
      .executeTakeFirst();
    if (!conflict) throw new NotFoundError('That data conflict does not exist');
    if (conflict.status !== 'open' || conflict.version !== decision.expectedVersion)
      throw new ConflictError(
        'Someone else resolved this conflict, or a newer value arrived, after you opened it. Nothing was saved: check it again.',
      );
    const resolving = { ...conflict, reason };
    if (conflict.kind === 'trailer') await resolveTrailer(tx, resolving, decision.resolution, actor, today);
    else if (conflict.kind === 'field') await resolveField(tx, resolving, decision.resolution, actor);
    else await resolveItem(tx, resolving, decision.resolution, actor);
    await tx
      .updateTable('data_conflict')
      .set({
        status: 'resolved',
        resolution: decision.resolution,
        resolution_reason: reason,
        resolved_by: actor.userId,
        resolved_at: new Date(),
        version: conflict.version + 1,
      })
      .where('id', '=', conflict.id)
      .execute();
    await recordAudit(tx, actor, {
      action: 'conflict.resolve',
      entityType: 'data_conflict',
      entityId: conflict.id,
      participantId: conflict.participant_id,
      detail: { kind: conflict.kind, subject: conflict.subject, resolution: decision.resolution, reason },
    });
  });
}

interface Resolving {
  id: string;
  participant_id: string;
  appointment_id: string | null;
  subject: string | null;
  trailer: Record<string, unknown> | null;
  current_value: unknown;
  incoming_value: unknown;
  incoming_source: Source | null;
  incoming_on: string | null;
  change_kind: string | null;
  made_by: string | null;
  reason: string;
}

async function resolveTrailer(tx: Db, c: Resolving, resolution: ConflictResolution, actor: Actor, today: string) {
  if (resolution !== 'applied_incoming') return;
  const trailer = (c.trailer ?? {}) as Record<string, string | null>;
  if (c.change_kind === 'demographics') {
    const { version } = await tx
      .selectFrom('participant')
      .select('version')
      .where('id', '=', c.participant_id)
      .executeTakeFirstOrThrow();
    await correctDemographicsWithin(
      tx,
      {
        participantId: c.participant_id,
        expectedVersion: version,
        changes: trailer,
        source: 'gateway',
        sourceDate: today,
        reason: `Data conflict resolved: corrected on the trailer by ${c.made_by}. ${c.reason}`,
      },
      actor,
    );
  } else if (c.appointment_id) {
    const { version } = await tx
      .selectFrom('appointment')
      .select('version')
      .where('id', '=', c.appointment_id)
      .executeTakeFirstOrThrow();
    await changeStatusWithin(
      tx,
      {
        appointmentId: c.appointment_id,
        expectedVersion: version,
        to: trailer.status as AppointmentStatus,
        reason: `Data conflict resolved with the trailer's record${trailer.reason ? `: ${trailer.reason}` : ''}`,
        via: 'gateway',
        force: true,
      },
      actor,
      today,
    );
  }
}

/**
 * Applying writes the incoming fields with the incoming source and date (history and provenance, as the feed would
 * have); keeping records the declined value in each field's provenance, so the feed does not raise it again.
 */
async function resolveField(tx: Db, c: Resolving, resolution: ConflictResolution, actor: Actor) {
  const detail = c.subject as Detail;
  const fields = DETAILS[detail].fields as readonly string[];
  const incoming = c.incoming_value as Record<string, string | null>;
  const participant = await tx
    .selectFrom('participant')
    .selectAll()
    .where('id', '=', c.participant_id)
    .forUpdate()
    .executeTakeFirstOrThrow();
  const record = participant as unknown as Record<string, string | null>;
  if (resolution === 'applied_incoming') {
    const plan = planFieldChanges({
      participantId: participant.id,
      current: Object.fromEntries(fields.map((f) => [f, record[f] ?? null])),
      provenance: participant.provenance,
      changes: Object.fromEntries(fields.map((f) => [f, incoming[f] ?? null])),
      source: c.incoming_source!,
      sourceDate: c.incoming_on!,
      reason: () => `Data conflict resolved: ${c.reason}`,
      changedBy: actor.userId,
      at: new Date().toISOString(),
    });
    if (plan.changed.length === 0) return;
    await tx.insertInto('participant_change').values(plan.history).execute();
    await tx
      .updateTable('participant')
      .set({
        ...Object.fromEntries(plan.changed.map((f) => [f, incoming[f] ?? null])),
        provenance: JSON.stringify(plan.provenance),
        version: participant.version + 1,
        updated_at: new Date(),
      })
      .where('id', '=', participant.id)
      .execute();
    return;
  }
  const provenance: Record<string, FieldProvenance> = { ...participant.provenance };
  for (const f of fields) {
    const known = provenance[f];
    const declined = { value: incoming[f] ?? null, source: c.incoming_source!, on: c.incoming_on! };
    if (known && declined.value !== (record[f] ?? null)) provenance[f] = { ...known, declined };
  }
  await tx
    .updateTable('participant')
    .set({ provenance: JSON.stringify(provenance), updated_at: new Date() })
    .where('id', '=', participant.id)
    .execute();
}

/**
 * Applying a statement that she does not have the item removes the current items of that kind; applying one that
 * she has it (or on another side) replaces the current item with one from the incoming source. Keeping changes no
 * item: the decision and its reason stay on the conflict.
 */
async function resolveItem(tx: Db, c: Resolving, resolution: ConflictResolution, actor: Actor) {
  if (resolution !== 'applied_incoming') return;
  const kind = c.subject!;
  const incoming = c.incoming_value as ItemSideValue;
  const label = itemKind(kind)?.label ?? kind;
  const from = SOURCE_LABELS[c.incoming_source!];
  const current = await tx
    .selectFrom('record_item')
    .selectAll()
    .where('participant_id', '=', c.participant_id)
    .where('kind', '=', kind)
    .where('superseded_at', 'is', null)
    .where('removed_at', 'is', null)
    .orderBy('recorded_at', 'desc')
    .forUpdate()
    .execute();
  if (!incoming.present) {
    if (current.length === 0) return;
    const removedReason = `Data conflict resolved: ${from} says she does not have this. ${c.reason}`;
    await tx
      .updateTable('record_item')
      .set({ removed_at: new Date(), removed_reason: removedReason })
      .where(
        'id',
        'in',
        current.map((i) => i.id),
      )
      .execute();
    for (const item of current) {
      await recordAudit(tx, actor, {
        action: 'record_item.remove',
        entityType: 'record_item',
        entityId: item.id,
        participantId: c.participant_id,
        detail: { kind, reason: removedReason, conflict: c.id },
      });
    }
    return;
  }
  const replaces = current[0];
  if (replaces)
    await tx.updateTable('record_item').set({ superseded_at: new Date() }).where('id', '=', replaces.id).execute();
  const { id } = await tx
    .insertInto('record_item')
    .values({
      participant_id: c.participant_id,
      category: itemKind(kind)?.category ?? 'clinical',
      kind,
      side: incoming.side,
      value: replaces?.value ?? null,
      details: incoming.details ?? `${label} as ${from} gave it (data conflict resolved: ${c.reason})`,
      temporary_until: null,
      source: c.incoming_source!,
      source_date: c.incoming_on!,
      recorded_by: actor.userId,
      replaces_id: replaces?.id ?? null,
    })
    .returning('id')
    .executeTakeFirstOrThrow();
  await recordAudit(tx, actor, {
    action: replaces ? 'record_item.correct' : 'record_item.add',
    entityType: 'record_item',
    entityId: id,
    participantId: c.participant_id,
    detail: { kind, source: c.incoming_source, conflict: c.id, ...(replaces ? { replaces: replaces.id } : {}) },
  });
}

/** A conflict about a participant detail, as the cohort import (or any feed) raises it. */
export function detailConflict(
  participantId: string,
  detail: Detail,
  current: { values: Readonly<Record<string, string | null>>; known: { source: Source; on: string } | undefined },
  incoming: { values: Readonly<Record<string, string | null>>; source: Source; on: string },
  precedence: string,
): NewConflict {
  const fields = DETAILS[detail].fields as readonly string[];
  const pick = (values: Readonly<Record<string, string | null>>) =>
    Object.fromEntries(fields.map((f) => [f, values[f] ?? null]));
  const from = current.known
    ? ` from ${SOURCE_LABELS[current.known.source]} (${formatLongDate(current.known.on)})`
    : '';
  return {
    kind: 'field',
    participantId,
    subject: detail,
    summary: `${DETAILS[detail].label} from ${SOURCE_LABELS[incoming.source]} (${formatLongDate(incoming.on)}) differs from the record's${from}`,
    precedence,
    current: { value: pick(current.values), source: current.known?.source ?? null, on: current.known?.on ?? null },
    incoming: { value: pick(incoming.values), source: incoming.source, on: incoming.on },
  };
}
