/**
 * Self-booking: a woman invited by a batch signs in with her NHS number, date of birth and the code on her letter
 * (no staff account), and keeps her offered appointment, moves it to another time the batch offers, cancels it or
 * asks the office to contact her. Wrong details get one answer whatever was wrong; 5 wrong codes lock her
 * invitation for 30 minutes; every attempt is audited. Changes go through the staff booking path (bookWithin and
 * changeStatusWithin), so a slot is never double booked, and are audited with her as the actor.
 */
import { addDays, type IsoDate } from '../pathway/dates.js';
import { freeSlotStarts, slotTime } from '../pathway/clinic-slots.js';
import { normaliseNhsNumber } from '../pathway/nhs-number.js';
import { verifyPassword } from './accounts.js';
import { recordAudit, type Actor } from './audit.js';
import { bookingNeeds, bookWithin, changeStatusWithin, findAppointments } from './clinics.js';
import type { Db } from './database.js';
import { ConflictError, isUniqueViolation, NotFoundError, RuleError } from './errors.js';
import { hashBookingCode, normaliseBookingCode, officeClinics } from './invitation-sending.js';

export const MAX_FAILED_ATTEMPTS = 5;
export const LOCK_MINUTES = 30;
/** Choices offered when she asks to change: at most this many, two times a clinic. */
const CHOICES = 8;
const PER_CLINIC = 2;

/** She is the actor for what she does here: no staff user, her NHS number for the audit log's name. */
export function participantActor(nhsNumber: string, ip: string | null): Actor {
  return { userId: null, username: `participant:${nhsNumber}`, ip };
}

// A hash of a code nobody has, checked when there is no invitation, so a wrong NHS number takes as long.
let decoyHash: Promise<string> | undefined;

export type SignInResult = { ok: true; invitationId: string } | { ok: false };

/** Checks the three details; on success, the invitation they open. */
export async function signInToInvitation(
  db: Db,
  details: { nhsNumber: string; dateOfBirth: IsoDate; code: string },
  ip: string | null,
  now: Date = new Date(),
): Promise<SignInResult> {
  const nhsNumber = normaliseNhsNumber(details.nhsNumber);
  const code = normaliseBookingCode(details.code);
  const invitation = await db
    .selectFrom('invitation as i')
    .innerJoin('participant as p', 'p.id', 'i.participant_id')
    .select(['i.id', 'i.participant_id', 'i.code_hash', 'i.locked_until', 'i.failed_attempts'])
    .where('p.nhs_number', '=', nhsNumber)
    .where('p.date_of_birth', '=', details.dateOfBirth)
    .where('i.code_hash', 'is not', null)
    .orderBy('i.created_at', 'desc')
    .executeTakeFirst();
  const actor = participantActor(nhsNumber, ip);
  if (!invitation) {
    decoyHash ??= hashBookingCode('DECOYCODE');
    await verifyPassword(code, await decoyHash);
    await recordAudit(
      db,
      { ...actor, username: 'anonymous' },
      {
        action: 'self_booking.sign_in_failed',
        entityType: 'invitation',
        detail: { why: 'no invitation for these details' },
      },
    );
    return { ok: false };
  }
  const audit = (action: string, detail: Record<string, unknown>) =>
    recordAudit(db, actor, {
      action,
      entityType: 'invitation',
      entityId: invitation.id,
      participantId: invitation.participant_id,
      detail,
    });
  if (invitation.locked_until && new Date(invitation.locked_until) > now) {
    await audit('self_booking.sign_in_locked', { lockedUntil: new Date(invitation.locked_until).toISOString() });
    return { ok: false };
  }
  if (!(await verifyPassword(code, invitation.code_hash!))) {
    // One statement, so two wrong tries at once both count.
    const row = await db
      .updateTable('invitation')
      .set((eb) => ({ failed_attempts: eb('failed_attempts', '+', 1), updated_at: now }))
      .where('id', '=', invitation.id)
      .returning('failed_attempts')
      .executeTakeFirstOrThrow();
    let locked = false;
    if (row.failed_attempts >= MAX_FAILED_ATTEMPTS) {
      locked = true;
      await db
        .updateTable('invitation')
        .set({ failed_attempts: 0, locked_until: new Date(now.getTime() + LOCK_MINUTES * 60_000), updated_at: now })
        .where('id', '=', invitation.id)
        .execute();
    }
    await audit('self_booking.sign_in_failed', { why: 'wrong code', attempts: row.failed_attempts, locked });
    return { ok: false };
  }
  await db
    .updateTable('invitation')
    .set({ failed_attempts: 0, locked_until: null, updated_at: now })
    .where('id', '=', invitation.id)
    .execute();
  await audit('self_booking.sign_in', {});
  return { ok: true, invitationId: invitation.id };
}

async function loadInvitation(db: Db, invitationId: string) {
  const invitation = await db
    .selectFrom('invitation as i')
    .innerJoin('invitation_batch as b', 'b.id', 'i.batch_id')
    .innerJoin('participant as p', 'p.id', 'i.participant_id')
    .innerJoin('screening_office as o', 'o.code', 'b.bso_code')
    .select([
      'i.id',
      'i.status',
      'i.appointment_id',
      'i.participant_id',
      'i.contact_note',
      'b.bso_code',
      'b.batch_date',
      'b.horizon_date',
      'o.name as office_name',
      'p.nhs_number',
      'p.given_name',
      'p.family_name',
    ])
    .where('i.id', '=', invitationId)
    .executeTakeFirst();
  if (!invitation) throw new NotFoundError('That invitation does not exist');
  return invitation;
}

/** What she sees once in: her name, her offered (or chosen) appointment and what she may still do. */
export async function invitationView(db: Db, invitationId: string) {
  const invitation = await loadInvitation(db, invitationId);
  const [appointment] = invitation.appointment_id ? await findAppointments(db, { id: invitation.appointment_id }) : [];
  const live = appointment !== undefined && appointment.status === 'scheduled';
  return {
    invitation,
    appointment: live ? appointment : undefined,
    canChange: invitation.status !== 'no_suitable_clinic',
  };
}

export interface Choice {
  key: string;
  clinicId: string;
  slotIndex: number;
  date: IsoDate;
  time: string;
  location: string;
}

/** Other times she may choose: the batch's office, from tomorrow (or the batch date) to its horizon, suitable for her. */
export async function offeredChoices(db: Db, invitationId: string, today: IsoDate): Promise<Choice[]> {
  const invitation = await loadInvitation(db, invitationId);
  const tomorrow = addDays(today, 1);
  const from = invitation.batch_date > tomorrow ? invitation.batch_date : tomorrow;
  if (from > invitation.horizon_date) return [];
  const needs = await bookingNeeds(db, invitation.participant_id, from);
  const clinics = await officeClinics(db, invitation.bso_code, from, invitation.horizon_date);
  const details = new Map(
    (
      await db
        .selectFrom('clinic as c')
        .innerJoin('location as l', 'l.id', 'c.location_id')
        .select(['c.id', 'c.starts_at', 'c.slot_minutes', 'l.name', 'l.address', 'l.postcode'])
        .where('c.id', 'in', clinics.length > 0 ? clinics.map((c) => c.id) : ['00000000-0000-0000-0000-000000000000'])
        .execute()
    ).map((c) => [c.id, c]),
  );
  const choices: Choice[] = [];
  for (const clinic of clinics) {
    if (needs.accessible && !clinic.wheelchairAccessible) continue;
    const d = details.get(clinic.id)!;
    for (const slotIndex of freeSlotStarts(clinic.slotCount, clinic.taken, needs.slots).slice(0, PER_CLINIC)) {
      choices.push({
        key: `${clinic.id}:${slotIndex}`,
        clinicId: clinic.id,
        slotIndex,
        date: clinic.date,
        time: slotTime({ startsAt: d.starts_at, slotMinutes: d.slot_minutes }, slotIndex),
        location: `${d.name}, ${d.address}, ${d.postcode}`,
      });
    }
    if (choices.length >= CHOICES) break;
  }
  return choices.slice(0, CHOICES);
}

async function lockInvitation(tx: Db, invitationId: string) {
  const row = await tx
    .selectFrom('invitation')
    .select(['id', 'status', 'appointment_id', 'participant_id'])
    .where('id', '=', invitationId)
    .forUpdate()
    .executeTakeFirst();
  if (!row) throw new NotFoundError('That invitation does not exist');
  if (row.status === 'no_suitable_clinic')
    throw new RuleError('choice', 'This invitation has no appointment to change');
  return row;
}

/** The live appointment an invitation holds, locked with its version, or undefined. */
async function liveAppointment(tx: Db, appointmentId: string | null) {
  if (!appointmentId) return undefined;
  const row = await tx
    .selectFrom('appointment')
    .select(['id', 'status', 'version'])
    .where('id', '=', appointmentId)
    .executeTakeFirst();
  return row && row.status === 'scheduled' ? row : undefined;
}

/** She keeps the appointment she was offered. */
export async function keepAppointment(db: Db, invitationId: string, actor: Actor): Promise<void> {
  await db.transaction().execute(async (tx) => {
    const invitation = await lockInvitation(tx, invitationId);
    if (!(await liveAppointment(tx, invitation.appointment_id)))
      throw new RuleError('choice', 'You have no appointment booked: choose a time');
    await tx
      .updateTable('invitation')
      .set({ status: 'confirmed', updated_at: new Date() })
      .where('id', '=', invitationId)
      .execute();
    await recordAudit(tx, actor, {
      action: 'self_booking.keep',
      entityType: 'invitation',
      entityId: invitationId,
      participantId: invitation.participant_id,
      detail: { appointmentId: invitation.appointment_id },
    });
  });
}

/**
 * She moves to another offered time: the old appointment is cancelled (its slots freed) and the new one booked in
 * one transaction, through the staff booking path. The choice must be one the batch offers her now.
 */
export async function changeAppointment(
  db: Db,
  invitationId: string,
  choiceKey: string,
  actor: Actor,
  today: IsoDate,
): Promise<string> {
  const choice = (await offeredChoices(db, invitationId, today)).find((c) => c.key === choiceKey);
  if (!choice) throw new RuleError('choice', 'That time is no longer free: choose another');
  try {
    return await db.transaction().execute(async (tx) => {
      const invitation = await lockInvitation(tx, invitationId);
      const old = await liveAppointment(tx, invitation.appointment_id);
      if (old) {
        await changeStatusWithin(
          tx,
          {
            appointmentId: old.id,
            expectedVersion: old.version,
            to: 'cancelled',
            reason: 'Rescheduled by the participant online',
          },
          actor,
          today,
        );
      }
      const id = await bookWithin(
        tx,
        {
          clinicId: choice.clinicId,
          participantId: invitation.participant_id,
          slotIndex: choice.slotIndex,
          ...(old ? { rescheduledFrom: old.id } : {}),
        },
        actor,
        today,
      );
      await tx
        .updateTable('invitation')
        .set({ status: 'confirmed', appointment_id: id, updated_at: new Date() })
        .where('id', '=', invitationId)
        .execute();
      await recordAudit(tx, actor, {
        action: 'self_booking.change',
        entityType: 'invitation',
        entityId: invitationId,
        participantId: invitation.participant_id,
        detail: { from: old?.id ?? null, to: id, clinicId: choice.clinicId, slotIndex: choice.slotIndex },
      });
      return id;
    });
  } catch (error) {
    if (isUniqueViolation(error)) throw new ConflictError('Someone else has just booked that time: choose another');
    if (error instanceof RuleError && error.field !== 'choice')
      throw new RuleError('choice', 'That time is no longer free: choose another');
    throw error;
  }
}

/** She cancels (the slot is freed) or asks the office to contact her (her appointment stands until they do). */
export async function cancelOrContact(
  db: Db,
  invitationId: string,
  request: { action: 'cancel' | 'contact'; note: string | null },
  actor: Actor,
  today: IsoDate,
): Promise<void> {
  await db.transaction().execute(async (tx) => {
    const invitation = await lockInvitation(tx, invitationId);
    const appointment = await liveAppointment(tx, invitation.appointment_id);
    if (request.action === 'cancel' && appointment) {
      await changeStatusWithin(
        tx,
        {
          appointmentId: appointment.id,
          expectedVersion: appointment.version,
          to: 'cancelled',
          reason: 'Cancelled by the participant online',
        },
        actor,
        today,
      );
    }
    await tx
      .updateTable('invitation')
      .set({
        status: request.action === 'cancel' ? 'cancelled' : 'contact_requested',
        contact_note: request.note,
        updated_at: new Date(),
      })
      .where('id', '=', invitationId)
      .execute();
    await recordAudit(tx, actor, {
      action: request.action === 'cancel' ? 'self_booking.cancel' : 'self_booking.contact',
      entityType: 'invitation',
      entityId: invitationId,
      participantId: invitation.participant_id,
      detail: { appointmentId: appointment?.id ?? null, note: request.note !== null },
    });
  });
}
