/**
 * The symptomatic link in the store (issue 5, item 5): a Trust EPR's diagnosis or surgery recorded on the
 * whole-person record and routine invitations suspended, each message applied once and wholly or not at all;
 * staff lift a suspension with a reason. The rules are in pathway/symptomatic.ts.
 */
import { isoDateInLondon, type IsoDate } from '../pathway/dates.js';
import type { Side } from '../pathway/record-items.js';
import { suspensionDecision, type Procedure, type SymptomaticEvent } from '../pathway/symptomatic.js';
import { recordAudit, type Actor } from './audit.js';
import type { Db } from './database.js';
import { NotFoundError, RuleError, isUniqueViolation } from './errors.js';

/** The NHS number is not one the hub holds: the message is answered AE and may be sent again later. */
export class UnknownParticipantError extends Error {
  override readonly name = 'UnknownParticipantError';
}

/** Who applies an EPR message, for the audit log. */
export function hl7Actor(sendingFacility: string, peer: string | null): Actor {
  return { userId: null, username: `hl7 ${sendingFacility}`, ip: peer };
}

export interface Suspension {
  id: string;
  reason: string;
  /** The date of the event that suspended her (what invitation selection calls `since`). */
  since: IsoDate;
  source: 'hl7' | 'fhir';
  sourceReference: string;
  startedAt: Date;
  /** The EPR has since withdrawn what suspended her (entered in error, refuted): for staff to check and decide. */
  reviews: { at: Date; text: string }[];
}

/** The suspension of routine invitations in force for her, if any. */
export async function activeSuspension(db: Db, participantId: string): Promise<Suspension | undefined> {
  const row = await db
    .selectFrom('invitation_suspension')
    .select(['id', 'reason', 'source_event_date', 'source', 'source_reference', 'started_at'])
    .where('participant_id', '=', participantId)
    .where('lifted_at', 'is', null)
    .executeTakeFirst();
  return row
    ? {
        id: row.id,
        reason: row.reason,
        since: row.source_event_date,
        source: row.source,
        sourceReference: row.source_reference,
        startedAt: new Date(row.started_at),
        reviews: row.source === 'fhir' ? await suspensionReviews(db, row.id) : [],
      }
    : undefined;
}

/** Every suspension she has had, newest first (for her record). */
export async function suspensionHistory(db: Db, participantId: string) {
  return db
    .selectFrom('invitation_suspension')
    .selectAll()
    .where('participant_id', '=', participantId)
    .orderBy('started_at', 'desc')
    .execute();
}

/**
 * Lifts her suspension (staff, with a reason): routine invitations resume; the "in symptomatic treatment" item
 * the suspension put on her record is removed with the same reason. Events dated on or before today do not
 * suspend her again.
 */
export async function liftSuspension(
  db: Db,
  participantId: string,
  reason: string,
  actor: Actor,
  now = new Date(),
): Promise<void> {
  const why = reason.trim();
  if (!why) throw new RuleError('reason', 'Give a reason for lifting the suspension');
  await db.transaction().execute(async (tx) => {
    const active = await tx
      .selectFrom('invitation_suspension')
      .select(['id', 'record_item_id', 'reason'])
      .where('participant_id', '=', participantId)
      .where('lifted_at', 'is', null)
      .forUpdate()
      .executeTakeFirst();
    if (!active) throw new NotFoundError('Her invitations are not suspended (someone may have lifted it already)');
    await tx
      .updateTable('invitation_suspension')
      .set({
        lifted_at: now,
        lifted_on: isoDateInLondon(now),
        lifted_by: actor.userId,
        lifted_by_name: actor.username,
        lift_reason: why,
      })
      .where('id', '=', active.id)
      .execute();
    if (active.record_item_id)
      await tx
        .updateTable('record_item')
        .set({ removed_at: now, removed_reason: `Invitations suspension lifted: ${why}` })
        .where('id', '=', active.record_item_id)
        .where('superseded_at', 'is', null)
        .where('removed_at', 'is', null)
        .execute();
    await recordAudit(tx, actor, {
      action: 'invitations.suspension_lift',
      entityType: 'invitation_suspension',
      entityId: active.id,
      participantId,
      detail: { reason: why, suspendedFor: active.reason },
    });
  });
}

export interface EventSource {
  kind: 'hl7' | 'fhir';
  /** For HL7 "FACILITY/CONTROL-ID". */
  reference: string;
  actor: Actor;
}

export interface AppliedEvent {
  participantId: string;
  suspensionId: string | null;
  /** What happened, for the message log and the ACK. */
  summary: string;
}

const itemKindFor = (kind: 'mastectomy' | 'excision' | 'implant', side: Side | null) =>
  kind === 'mastectomy' ? 'mastectomy' : kind === 'implant' ? 'implants' : side ? 'lumpectomy' : 'breast_surgery';

/** Surgery goes on her record as an item; chemotherapy and radiotherapy only through the suspension's item. */
const isSurgery = (p: Procedure): p is Procedure & { kind: 'mastectomy' | 'excision' | 'implant' } =>
  p.kind === 'mastectomy' || p.kind === 'excision' || p.kind === 'implant';

/**
 * Applies an event inside the caller's transaction: her record items (each once: a fact already on her record from
 * the EPR is not added again) and, by the rules, a suspension. Throws UnknownParticipantError.
 */
export async function applySymptomaticEvent(
  tx: Db,
  event: SymptomaticEvent,
  source: EventSource,
  now = new Date(),
): Promise<AppliedEvent> {
  const participant = await tx
    .selectFrom('participant')
    .select('id')
    .where('nhs_number', '=', event.nhsNumber)
    .forUpdate()
    .executeTakeFirst();
  if (!participant) throw new UnknownParticipantError(`NHS number ${event.nhsNumber} is not known to the hub`);
  const participantId = participant.id;

  const facts = [
    ...event.diagnoses.map((d) => ({
      kind: 'previous_breast_cancer',
      side: null,
      value: d.code,
      details: `${d.codeSystem ?? 'ICD-10'} ${d.code}${d.text ? ` ${d.text}` : ''}${d.historical ? ', past history' : ''} (${source.reference})`,
      date: d.date,
    })),
    ...event.procedures.filter(isSurgery).map((p) => ({
      kind: itemKindFor(p.kind, p.side),
      side: p.side,
      value: p.code,
      details: `${p.codeSystem ?? 'OPCS-4'} ${p.code}${p.text ? ` ${p.text}` : ''}${p.side ? '' : ', side not given'} (${source.reference})`,
      date: p.date,
    })),
  ];
  let recorded = 0;
  const seen = new Set<string>();
  for (const fact of facts) {
    const key = `${fact.kind}|${fact.side}|${fact.value}|${fact.date}`;
    if (seen.has(key)) continue;
    seen.add(key);
    let existing = tx
      .selectFrom('record_item')
      .select('id')
      .where('participant_id', '=', participantId)
      .where('kind', '=', fact.kind)
      .where('value', '=', fact.value)
      .where('source', '=', 'epr')
      .where('source_date', '=', fact.date)
      .where('superseded_at', 'is', null)
      .where('removed_at', 'is', null);
    existing = fact.side ? existing.where('side', '=', fact.side) : existing.where('side', 'is', null);
    if (await existing.executeTakeFirst()) continue;
    const { id } = await tx
      .insertInto('record_item')
      .values({
        participant_id: participantId,
        category: 'clinical',
        kind: fact.kind,
        side: fact.side,
        value: fact.value,
        details: fact.details,
        temporary_until: null,
        source: 'epr',
        source_date: fact.date,
      })
      .returning('id')
      .executeTakeFirstOrThrow();
    await recordAudit(tx, source.actor, {
      action: 'record_item.add',
      entityType: 'record_item',
      entityId: id,
      participantId,
      detail: { kind: fact.kind, source: 'epr', code: fact.value, message: source.reference },
    });
    recorded++;
  }

  const active = await activeSuspension(tx, participantId);
  const lastLift = await tx
    .selectFrom('invitation_suspension')
    .select((eb) => eb.fn.max('lifted_on').as('on'))
    .where('participant_id', '=', participantId)
    .executeTakeFirst();
  const decision = suspensionDecision(event, { active: active !== undefined, lastLiftedOn: lastLift?.on ?? null });
  const items = recorded === 0 ? 'nothing new for her record' : `${recorded} item(s) added to her record`;
  if (decision.suspend === 'already')
    return { participantId, suspensionId: active?.id ?? null, summary: `${items}; invitations already suspended` };
  if (decision.suspend === 'no')
    return { participantId, suspensionId: null, summary: `${items}; invitations not suspended: ${decision.why}` };

  const { id: itemId } = await tx
    .insertInto('record_item')
    .values({
      participant_id: participantId,
      category: 'clinical',
      kind: 'symptomatic_treatment',
      side: null,
      value: null,
      details: decision.reason,
      temporary_until: null,
      source: 'epr',
      source_date: decision.since,
    })
    .returning('id')
    .executeTakeFirstOrThrow();
  const { id: suspensionId } = await tx
    .insertInto('invitation_suspension')
    .values({
      participant_id: participantId,
      reason: decision.reason,
      source: source.kind,
      source_reference: source.reference,
      source_event_date: decision.since,
      started_at: now,
      record_item_id: itemId,
    })
    .returning('id')
    .executeTakeFirstOrThrow();
  await recordAudit(tx, source.actor, {
    action: 'invitations.suspend',
    entityType: 'invitation_suspension',
    entityId: suspensionId,
    participantId,
    detail: { reason: decision.reason, since: decision.since, message: source.reference },
  });
  return { participantId, suspensionId, summary: `${items}; invitations suspended from ${decision.since}` };
}

/** What the hub knows of an HL7 message before applying it (for the message log). */
export interface Hl7Receipt {
  peer: string | null;
  sendingApplication: string;
  sendingFacility: string;
  controlId: string;
  messageType: string;
  eventDate: IsoDate | null;
  sha256: string;
  sizeBytes: number;
}

export type Hl7Result =
  | { ack: 'AA'; outcome: 'applied' | 'no_action' | 'duplicate'; text: string }
  | { ack: 'AE'; outcome: 'error'; text: string; unknownPatient: true };

function logRow(receipt: Partial<Hl7Receipt> & Pick<Hl7Receipt, 'sha256' | 'sizeBytes'>) {
  return {
    peer: receipt.peer ?? null,
    sending_application: receipt.sendingApplication || null,
    sending_facility: receipt.sendingFacility || null,
    control_id: receipt.controlId || null,
    message_type: receipt.messageType || null,
    event_date: receipt.eventDate ?? null,
    sha256: receipt.sha256,
    size_bytes: receipt.sizeBytes,
  };
}

/**
 * Applies an HL7 message's event once under its sending facility and control id, in one transaction with its
 * log entry: a copy of a message already accepted is answered AA and changes nothing; an unknown NHS number is
 * answered AE and only the log entry is kept.
 */
export async function receiveHl7Event(
  db: Db,
  receipt: Hl7Receipt,
  event: SymptomaticEvent,
  now = new Date(),
): Promise<Hl7Result> {
  const reference = `${receipt.sendingFacility}/${receipt.controlId}`;
  const attempt = () =>
    db.transaction().execute(async (tx): Promise<Hl7Result> => {
      const prior = await tx
        .selectFrom('hl7_message')
        .select(['received_at', 'outcome'])
        .where('sending_facility', '=', receipt.sendingFacility)
        .where('control_id', '=', receipt.controlId)
        .where('outcome', 'in', ['applied', 'no_action'])
        .executeTakeFirst();
      if (prior) {
        const text = `Message ${reference} was accepted on ${new Date(prior.received_at).toISOString()} (${prior.outcome}); this copy changes nothing`;
        await tx
          .insertInto('hl7_message')
          .values({ ...logRow(receipt), received_at: now, ack_code: 'AA', outcome: 'duplicate', reason: text })
          .execute();
        return { ack: 'AA', outcome: 'duplicate', text };
      }
      if (event.diagnoses.length === 0 && event.procedures.length === 0) {
        const text = 'Nothing in the message for breast screening (no breast cancer diagnosis or breast procedure)';
        await tx
          .insertInto('hl7_message')
          .values({ ...logRow(receipt), received_at: now, ack_code: 'AA', outcome: 'no_action', reason: text })
          .execute();
        return { ack: 'AA', outcome: 'no_action', text };
      }
      const applied = await applySymptomaticEvent(
        tx,
        event,
        { kind: 'hl7', reference, actor: hl7Actor(receipt.sendingFacility, receipt.peer) },
        now,
      );
      await tx
        .insertInto('hl7_message')
        .values({
          ...logRow(receipt),
          received_at: now,
          ack_code: 'AA',
          outcome: 'applied',
          reason: applied.summary,
          participant_id: applied.participantId,
          suspension_id: applied.suspensionId,
        })
        .execute();
      return { ack: 'AA', outcome: 'applied', text: `Applied: ${applied.summary}` };
    });
  for (let tries = 1; ; tries++) {
    try {
      return await attempt();
    } catch (error) {
      // A copy of this message, or another message about her, committed first: try again and see it.
      if (isUniqueViolation(error) && tries < 3) continue;
      if (error instanceof UnknownParticipantError) {
        const text = `${error.message}: nothing applied. Send the message again once she is on the screening register`;
        await logRejectedHl7Message(db, receipt, 'AE', text, now);
        return { ack: 'AE', outcome: 'error', text, unknownPatient: true };
      }
      throw error;
    }
  }
}

/** Logs a message answered AE or AR without applying anything. */
export async function logRejectedHl7Message(
  db: Db,
  receipt: Partial<Hl7Receipt> & Pick<Hl7Receipt, 'sha256' | 'sizeBytes'>,
  ack: 'AE' | 'AR',
  reason: string,
  now = new Date(),
): Promise<void> {
  await db
    .insertInto('hl7_message')
    .values({
      ...logRow(receipt),
      received_at: now,
      ack_code: ack,
      outcome: ack === 'AE' ? 'error' : 'rejected',
      reason: reason.slice(0, 2000),
    })
    .execute();
}

/** How one FHIR resource (posted alone or in a Bundle) is known to the hub before it is applied. */
export interface FhirReceipt {
  entryIndex: number | null;
  resourceType: string;
  /** What it is applied once under: "Condition/<id>", a Bundle entry's fullUrl, or "Idempotency-Key:<key>". */
  resourceKey: string;
  /** meta.versionId, '' when none. */
  versionId: string;
  /** meta.lastUpdated (ISO instant): versions are put in order by it. */
  lastUpdated: string | null;
  sha256: string;
  sizeBytes: number;
}

/** A resource the FHIR endpoint read (src/fhir/symptomatic-resources.ts), to be applied. */
export type FhirReading =
  | { kind: 'event'; event: SymptomaticEvent }
  | { kind: 'ignored'; why: string }
  | { kind: 'withdrawn'; status: 'refuted' | 'entered-in-error' };

export interface FhirRequest {
  requestId: string;
  peer: string | null;
  actor: Actor;
}

export interface FhirEntryResult {
  entryIndex: number | null;
  resourceKey: string;
  outcome: 'applied' | 'no_action' | 'review' | 'duplicate' | 'superseded';
  text: string;
}

export type FhirResult =
  { status: 200 | 201; entries: FhirEntryResult[] } | { status: 422; entryIndex: number | null; text: string };

/** Who posted: the feed account's own name, marked as the FHIR feed in the audit log. */
export function fhirActor(actor: Actor): Actor {
  return { ...actor, username: `fhir ${actor.username}` };
}

const fhirReference = (receipt: FhirReceipt) =>
  receipt.versionId ? `${receipt.resourceKey}/_history/${receipt.versionId}` : receipt.resourceKey;

function fhirLogRow(request: FhirRequest, receipt: Partial<FhirReceipt> & Pick<FhirReceipt, 'sha256' | 'sizeBytes'>) {
  return {
    request_id: request.requestId,
    entry_index: receipt.entryIndex ?? null,
    peer: request.peer,
    username: request.actor.username,
    resource_type: receipt.resourceType ?? null,
    resource_key: receipt.resourceKey ?? null,
    version_id: receipt.resourceKey ? (receipt.versionId ?? '') : null,
    last_updated: receipt.lastUpdated ?? null,
    sha256: receipt.sha256,
    size_bytes: receipt.sizeBytes,
  };
}

const ACCEPTED = ['applied', 'no_action', 'review'] as const;

/** Whether version `a` is older than `b`: by meta.lastUpdated, else by whole-number versionIds. */
function isOlder(
  a: { lastUpdated: string | null; versionId: string },
  b: { lastUpdated: string | null; versionId: string },
) {
  if (a.lastUpdated && b.lastUpdated) return a.lastUpdated < b.lastUpdated;
  if (/^\d+$/.test(a.versionId) && /^\d+$/.test(b.versionId)) return Number(a.versionId) < Number(b.versionId);
  return false;
}

/**
 * Applies the resources of one FHIR request (one resource, or a Bundle's entries) in one transaction with their
 * log entries: all or nothing. Per resource:
 * - a version already accepted (same key and versionId) is a duplicate: answered as before, nothing applied;
 * - a version older than one already accepted (meta.lastUpdated, else whole-number versionId) is superseded:
 *   nothing applied;
 * - refuted or entered-in-error: never suspends; if an earlier version of the same resource suspended her and the
 *   suspension is still in force, it is reported for staff (audited, shown with her suspension): it is not lifted;
 * - otherwise the event is applied by applySymptomaticEvent.
 * An NHS number the hub does not know makes the whole request 422: nothing applied, every resource logged.
 */
export async function receiveFhirResources(
  db: Db,
  request: FhirRequest,
  items: { receipt: FhirReceipt; reading: FhirReading }[],
  now = new Date(),
): Promise<FhirResult> {
  const actor = fhirActor(request.actor);
  const attempt = () =>
    db.transaction().execute(async (tx): Promise<FhirResult> => {
      const entries: FhirEntryResult[] = [];
      for (const { receipt, reading } of items) {
        const log = async (
          outcome: FhirEntryResult['outcome'],
          text: string,
          links: { participant_id?: string | null; suspension_id?: string | null } = {},
        ) => {
          await tx
            .insertInto('fhir_symptomatic_message')
            .values({
              ...fhirLogRow(request, receipt),
              received_at: now,
              http_status: outcome === 'applied' ? 201 : 200,
              outcome,
              reason: text.slice(0, 2000),
              ...links,
            })
            .execute();
          entries.push({ entryIndex: receipt.entryIndex, resourceKey: receipt.resourceKey, outcome, text });
        };
        const accepted = await tx
          .selectFrom('fhir_symptomatic_message')
          .select(['version_id', 'last_updated', 'received_at', 'outcome', 'reason', 'suspension_id', 'participant_id'])
          .where('resource_key', '=', receipt.resourceKey)
          .where('outcome', 'in', ACCEPTED)
          .orderBy('id')
          .execute();
        const same = accepted.find((row) => row.version_id === receipt.versionId);
        if (same) {
          await log(
            'duplicate',
            `${fhirReference(receipt)} was accepted on ${new Date(same.received_at).toISOString()} (${same.outcome}: ${same.reason}); this copy changes nothing`,
          );
          continue;
        }
        const newer = accepted.find((row) =>
          isOlder(receipt, {
            lastUpdated: row.last_updated ? new Date(row.last_updated).toISOString() : null,
            versionId: row.version_id ?? '',
          }),
        );
        if (newer) {
          await log(
            'superseded',
            `${fhirReference(receipt)} is older than version ${newer.version_id || '(none)'} of ${receipt.resourceKey}, already accepted: nothing applied`,
          );
          continue;
        }
        if (reading.kind === 'ignored') {
          await log('no_action', reading.why);
          continue;
        }
        if (reading.kind === 'withdrawn') {
          const suspended = accepted.filter((row) => row.suspension_id !== null).map((row) => row.suspension_id!);
          // Only a suspension this resource started (not one already in force when it came).
          const inForce = suspended.length
            ? await tx
                .selectFrom('invitation_suspension')
                .select(['id', 'participant_id', 'started_at', 'source', 'source_reference'])
                .where('id', 'in', suspended)
                .where('lifted_at', 'is', null)
                .execute()
            : [];
          const active = inForce.find(
            (row) =>
              row.source === 'fhir' &&
              (row.source_reference === receipt.resourceKey ||
                row.source_reference.startsWith(`${receipt.resourceKey}/_history/`)),
          );
          if (!active) {
            await log(
              'no_action',
              `${receipt.resourceType} is ${reading.status}: it suspended nothing in force, so there is nothing to undo`,
            );
            continue;
          }
          const text = `${receipt.resourceKey} is now ${reading.status}; it suspended her invitations on ${new Date(active.started_at).toISOString().slice(0, 10)}. The suspension stays until staff lift it: reported to the screening office to check with the Trust`;
          await recordAudit(tx, actor, {
            action: 'invitations.suspension_review',
            entityType: 'invitation_suspension',
            entityId: active.id,
            participantId: active.participant_id,
            detail: { status: reading.status, resource: fhirReference(receipt) },
          });
          await log('review', text, { participant_id: active.participant_id, suspension_id: active.id });
          continue;
        }
        const applied = await applySymptomaticEvent(
          tx,
          reading.event,
          { kind: 'fhir', reference: fhirReference(receipt), actor },
          now,
        );
        await log('applied', `Applied: ${applied.summary}`, {
          participant_id: applied.participantId,
          suspension_id: applied.suspensionId,
        });
      }
      return { status: entries.some((e) => e.outcome === 'applied') ? 201 : 200, entries };
    });
  for (let tries = 1; ; tries++) {
    try {
      return await attempt();
    } catch (error) {
      // A copy of this resource, or another message about her, committed first: try again and see it.
      if (isUniqueViolation(error) && tries < 3) continue;
      if (error instanceof UnknownParticipantError) {
        const unknown = items.find(
          (item) => item.reading.kind === 'event' && error.message.includes(item.reading.event.nhsNumber),
        );
        const text = `${error.message}: the hub cannot match her to the screening register, so nothing in this request was applied. Send it again once she is on the register`;
        await logRefusedFhirRequest(
          db,
          request,
          items.map(({ receipt }) => receipt),
          422,
          'unprocessable',
          text,
          now,
        );
        return { status: 422, entryIndex: unknown?.receipt.entryIndex ?? null, text };
      }
      throw error;
    }
  }
}

/** Logs a FHIR request (or each of its resources) answered without applying anything. */
export async function logRefusedFhirRequest(
  db: Db,
  request: FhirRequest,
  receipts: (Partial<FhirReceipt> & Pick<FhirReceipt, 'sha256' | 'sizeBytes'>)[],
  status: number,
  outcome: 'rejected' | 'unprocessable' | 'error',
  reason: string,
  now = new Date(),
): Promise<void> {
  if (receipts.length === 0) return;
  await db
    .insertInto('fhir_symptomatic_message')
    .values(
      receipts.map((receipt) => ({
        ...fhirLogRow(request, receipt),
        received_at: now,
        http_status: status,
        outcome,
        reason: reason.slice(0, 2000),
      })),
    )
    .execute();
}

/** Withdrawals (entered in error, refuted) reported against a suspension, for staff to see with it. */
export async function suspensionReviews(db: Db, suspensionId: string): Promise<{ at: Date; text: string }[]> {
  const rows = await db
    .selectFrom('fhir_symptomatic_message')
    .select(['received_at', 'reason'])
    .where('suspension_id', '=', suspensionId)
    .where('outcome', '=', 'review')
    .orderBy('id')
    .execute();
  return rows.map((row) => ({ at: new Date(row.received_at), text: row.reason }));
}
