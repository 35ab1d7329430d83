import {
  isFinal,
  movePath,
  procedureStepStatus,
  STATUS_LABELS,
  type AppointmentStatus,
} from '../pathway/appointment-status.js';
import { addDays } from '../pathway/dates.js';
import { DEMOGRAPHIC_FIELDS } from './participants.js';
import type { ChangeOutcome, GatewayChange, TrailerField } from '../protocol/gateway-changes.js';
import { recordAudit, type Actor } from './audit.js';
import { changeStatusWithin } from './clinics.js';
import type { Db } from './database.js';
import { ConflictError, NotFoundError, RuleError, isUniqueViolation } from './errors.js';
import { listDataConflicts, resolveDataConflict } from './data-conflicts.js';
import { gatewayActor, type EnrolledGateway } from './gateways.js';
import { correctDemographicsWithin } from './participants.js';
import { recordProbeChange } from './probes.js';

/**
 * Clinic days a gateway may change, around today: the days it holds (a week ahead) and a fortnight back for changes
 * that waited for a signal. A stolen certificate cannot rewrite a unit's whole history.
 */
export const CHANGE_WINDOW_DAYS = { past: 14, ahead: 8 } as const;

type Outcome = Omit<ChangeOutcome, 'id'> & { conflict?: { summary: string; trailer: object; hub: object } };

const time = (iso: string) =>
  new Intl.DateTimeFormat('en-GB', { timeZone: 'Europe/London', timeStyle: 'short' }).format(new Date(iso));
const label = (status: AppointmentStatus) => STATUS_LABELS[status].toLowerCase();

/** Moves an appointment along the allowed path to a status, one recorded move at a time. */
async function moveTo(
  tx: Db,
  appointment: { id: string; status: AppointmentStatus; version: number },
  path: AppointmentStatus[],
  reason: string | null,
  actor: Actor,
  today: string,
): Promise<void> {
  let version = appointment.version;
  for (const to of path) {
    await changeStatusWithin(
      tx,
      {
        appointmentId: appointment.id,
        expectedVersion: version,
        to,
        reason: to === path.at(-1) ? reason : null,
        via: 'gateway',
      },
      actor,
      today,
    );
    version += 1;
  }
}

async function applyStatus(
  tx: Db,
  change: Extract<GatewayChange, { kind: 'attendance' | 'procedure_step' }>,
  appointment: { id: string; status: AppointmentStatus; version: number },
  actor: Actor,
  today: string,
): Promise<Outcome> {
  const wanted =
    change.kind === 'attendance'
      ? { to: change.status as AppointmentStatus, reason: null }
      : procedureStepStatus(change.step, change.imageCount, change.reason);
  const what =
    change.kind === 'attendance'
      ? `Marked ${label(wanted.to)} on the trailer by ${change.madeBy} at ${time(change.madeAt)}`
      : `The mammography machine reported ${label(wanted.to)} at ${time(change.madeAt)}`;
  if (appointment.status === wanted.to) return { outcome: 'applied', message: 'Already recorded at the hub' };
  if (change.kind === 'procedure_step' && change.step === 'discontinued' && change.imageCount === 0) {
    // No images: the wrong worklist entry picked, or she never came in. Nobody is marked attended by the machine.
    const summary = `The mammography machine stopped an exam with no images at ${time(change.madeAt)} (${change.reason ?? 'no reason given'}): check whether she was seen`;
    return {
      outcome: 'conflict',
      message: summary,
      conflict: { summary, trailer: { status: wanted.to, reason: wanted.reason }, hub: { status: appointment.status } },
    };
  }
  // A check-in or DNA made on the trailer stands only if the hub still has what the trailer saw; the machine's
  // report stands whenever the hub's status can lead to it (the machine saw her; the hub may lag behind).
  const unchanged =
    change.kind === 'attendance' ? appointment.status === change.seenStatus : !isFinal(appointment.status);
  const path = movePath(appointment.status, wanted.to);
  if (unchanged && path) {
    await moveTo(tx, appointment, path, wanted.reason, actor, today);
    return { outcome: 'applied', message: what };
  }
  return {
    outcome: 'conflict',
    message: `${what}, but the hub has it as ${label(appointment.status)}`,
    conflict: {
      summary: `${what}, but the hub has it as ${label(appointment.status)}`,
      trailer: { status: wanted.to, reason: wanted.reason },
      hub: { status: appointment.status },
    },
  };
}

async function applyDemographics(
  tx: Db,
  change: Extract<GatewayChange, { kind: 'demographics' }>,
  actor: Actor,
  today: string,
): Promise<Outcome> {
  const participant = await tx
    .selectFrom('participant')
    .select(['id', 'version', 'given_name', 'family_name', 'date_of_birth'])
    .where('id', '=', change.participantId)
    .forUpdate()
    .executeTakeFirst();
  if (!participant) throw new NotFoundError('That participant does not exist');
  const fields = Object.entries(change.fields) as [TrailerField, { seen: string; value: string }][];
  const changedSince = fields.filter(([f, v]) => participant[f] !== v.seen && participant[f] !== v.value);
  const names = fields.map(([f]) => DEMOGRAPHIC_FIELDS[f].toLowerCase()).join(', ');
  if (changedSince.length > 0) {
    const summary = `Corrected ${names} on the trailer by ${change.madeBy} at ${time(change.madeAt)}, but the hub changed ${changedSince.map(([f]) => DEMOGRAPHIC_FIELDS[f].toLowerCase()).join(', ')} since the trailer's copy`;
    return {
      outcome: 'conflict',
      message: summary,
      conflict: {
        summary,
        trailer: Object.fromEntries(fields.map(([f, v]) => [f, v.value])),
        hub: Object.fromEntries(fields.map(([f]) => [f, participant[f]])),
      },
    };
  }
  await correctDemographicsWithin(
    tx,
    {
      participantId: participant.id,
      expectedVersion: participant.version,
      changes: Object.fromEntries(fields.map(([f, v]) => [f, v.value])),
      source: 'gateway',
      sourceDate: today,
      reason: `Corrected on the trailer by ${change.madeBy}`,
    },
    actor,
  );
  return { outcome: 'applied', message: `Corrected ${names}` };
}

/** The outcome the hub gave a change with this id before, if it has seen it. */
async function earlierOutcome(db: Db, gateway: EnrolledGateway, id: string): Promise<ChangeOutcome | undefined> {
  const earlier = await db
    .selectFrom('gateway_change')
    .select(['gateway_id', 'outcome', 'message'])
    .where('id', '=', id)
    .executeTakeFirst();
  if (!earlier) return undefined;
  if (earlier.gateway_id !== gateway.id)
    return { id, outcome: 'rejected', message: 'That change id was used by another gateway' };
  return { id, outcome: earlier.outcome, message: earlier.message };
}

/**
 * Applies one change from a gateway, once: the change id is the key, and a resend gets the first outcome back.
 * A change that disagrees with a newer one made at the hub is not applied over it: it raises a data conflict.
 */
export async function applyGatewayChange(
  db: Db,
  gateway: EnrolledGateway,
  change: GatewayChange,
  ip: string | null,
  today: string,
): Promise<ChangeOutcome> {
  const earlier = await earlierOutcome(db, gateway, change.id);
  if (earlier) return earlier;
  // Issue 8: a synthetic test probe's MPPS is recorded against the probe (store/probes.ts), never an appointment.
  const probe = await recordProbeChange(db, gateway, change);
  if (probe) return probe;
  const actor = gatewayActor(gateway.unitId, ip, change.madeBy);
  try {
    return await db.transaction().execute(async (tx) => {
      const appointment = await tx
        .selectFrom('appointment as a')
        .innerJoin('clinic as c', 'c.id', 'a.clinic_id')
        .select(['a.id', 'a.status', 'a.version', 'a.participant_id', 'c.site_id', 'c.clinic_date'])
        .where('a.id', '=', change.appointmentId)
        .forUpdate()
        .executeTakeFirst();
      let result: Outcome;
      if (!appointment || appointment.site_id !== gateway.unitId)
        result = { outcome: 'rejected', message: 'That appointment is not booked at this unit' };
      else if (
        appointment.clinic_date < addDays(today, -CHANGE_WINDOW_DAYS.past) ||
        appointment.clinic_date > addDays(today, CHANGE_WINDOW_DAYS.ahead)
      )
        result = { outcome: 'rejected', message: 'That appointment is not on a clinic day this unit can change' };
      else if (change.kind === 'demographics' && change.participantId !== appointment.participant_id)
        result = { outcome: 'rejected', message: 'That participant is not the one booked for the appointment' };
      else if (change.kind === 'demographics') result = await applyDemographics(tx, change, actor, today);
      else result = await applyStatus(tx, change, appointment, actor, today);
      await tx
        .insertInto('gateway_change')
        .values({
          id: change.id,
          gateway_id: gateway.id,
          kind: change.kind,
          appointment_id: appointment ? appointment.id : null,
          participant_id: appointment?.participant_id ?? null,
          made_at: change.madeAt,
          made_by: change.madeBy,
          payload: JSON.stringify(change),
          outcome: result.outcome,
          message: result.message,
        })
        .execute();
      if (result.conflict && appointment) {
        await tx
          .insertInto('data_conflict')
          .values({
            gateway_change_id: change.id,
            participant_id: appointment.participant_id,
            appointment_id: appointment.id,
            summary: result.conflict.summary,
            trailer: JSON.stringify(result.conflict.trailer),
            hub: JSON.stringify(result.conflict.hub),
            // The general pair every kind of conflict has (src/store/data-conflicts.ts).
            current_value: JSON.stringify(result.conflict.hub),
            incoming_value: JSON.stringify(result.conflict.trailer),
            incoming_source: 'gateway',
            incoming_on: today,
          })
          .execute();
      }
      await recordAudit(tx, actor, {
        action: `gateway.change.${result.outcome}`,
        entityType: 'appointment',
        entityId: change.appointmentId,
        participantId: appointment?.participant_id ?? null,
        detail: { changeId: change.id, kind: change.kind, message: result.message },
      });
      return { id: change.id, outcome: result.outcome, message: result.message };
    });
  } catch (error) {
    // The same change arriving twice at once: the second finds the first's row and gets its outcome.
    if (isUniqueViolation(error)) return (await earlierOutcome(db, gateway, change.id))!;
    const integrity = /^23/.test((error as { code?: string }).code ?? '');
    if (error instanceof RuleError || error instanceof NotFoundError || error instanceof ConflictError || integrity) {
      const message = integrity
        ? `The hub's records do not allow that change (${(error as Error).message})`
        : (error as Error).message;
      return recordRefusal(db, gateway, change, message);
    }
    throw error;
  }
}

/** Keeps a refusal under the change's id too, so that a resend gets the same answer. */
async function recordRefusal(
  db: Db,
  gateway: EnrolledGateway,
  change: GatewayChange,
  message: string,
): Promise<ChangeOutcome> {
  try {
    await db
      .insertInto('gateway_change')
      .values({
        id: change.id,
        gateway_id: gateway.id,
        kind: change.kind,
        made_at: change.madeAt,
        made_by: change.madeBy,
        payload: JSON.stringify(change),
        outcome: 'rejected',
        message,
      })
      .execute();
  } catch (error) {
    if (!isUniqueViolation(error)) throw error;
    return (await earlierOutcome(db, gateway, change.id))!;
  }
  return { id: change.id, outcome: 'rejected', message };
}

/** Trailer conflicts (the queue of every kind is listDataConflicts in ./data-conflicts.ts). */
export async function listConflicts(db: Db, status: 'open' | 'resolved') {
  return listDataConflicts(db, status, { kind: 'trailer' });
}

/**
 * Settles a trailer conflict: keep what the hub has, or apply what the trailer recorded (resolveDataConflict does
 * it, for every kind of conflict). Without a reason, the choice itself is given as the reason.
 */
export async function resolveConflict(
  db: Db,
  conflictId: string,
  expectedVersion: number,
  resolution: 'kept_hub' | 'applied_trailer',
  actor: Actor,
  today: string,
  reason?: string,
): Promise<void> {
  await resolveDataConflict(
    db,
    {
      conflictId,
      expectedVersion,
      resolution: resolution === 'applied_trailer' ? 'applied_incoming' : 'kept_current',
      reason: reason ?? (resolution === 'applied_trailer' ? "The trailer's record stands" : "The hub's record stands"),
    },
    actor,
    today,
  );
}
