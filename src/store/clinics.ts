import { sql } from 'kysely';
import type { AppointmentStatus } from '../pathway/appointment-status.js';
import { holdsSlot, moveProblem, STATUS_LABELS } from '../pathway/appointment-status.js';
import { freeSlotStarts, slotCount, slotTime } from '../pathway/clinic-slots.js';
import { adjustmentsOn, needsAccessibleLocation, slotsNeeded } from '../pathway/record-items.js';
import { recordAudit, type Actor } from './audit.js';
import type { Db } from './database.js';
import { ConflictError, isUniqueViolation, NotFoundError, RuleError } from './errors.js';
import { ceasingLabel, stillInRoutineScreening } from '../pathway/ceasing.js';
import type { ClinicPurpose } from '../pathway/screening-outcomes.js';

/**
 * Clinics are for screening or for assessment (clinic.purpose): screening bookings (staff, invitation batches,
 * self-booking) never land in an assessment clinic, and assessment bookings (results.ts) only in one. Every
 * function here that lists or books clinics takes the purpose, 'screening' unless said.
 */
export const CLINIC_PURPOSE_LABELS: Record<ClinicPurpose, string> = {
  screening: 'Screening',
  assessment: 'Assessment',
};

export interface ClinicFilter {
  from: string;
  to: string;
  siteId?: string;
  locationId?: string;
  /** 'screening' when absent; 'all' lists both (a list to look at, not to book from). */
  purpose?: ClinicPurpose | 'all';
}

export async function listClinics(db: Db, filter: ClinicFilter) {
  let q = db
    .selectFrom('clinic as c')
    .innerJoin('site as s', 's.id', 'c.site_id')
    .innerJoin('location as l', 'l.id', 'c.location_id')
    .select([
      'c.id',
      'c.clinic_date',
      'c.starts_at',
      'c.ends_at',
      'c.slot_minutes',
      'c.status',
      'c.purpose',
      's.id as site_id',
      's.name as site_name',
      's.kind as site_kind',
      'l.id as location_id',
      'l.name as location_name',
      'l.wheelchair_accessible',
      sql<number>`(select count(*) from appointment a where a.clinic_id = c.id and a.status <> 'cancelled')`.as(
        'booked',
      ),
      sql<number>`(select count(*) from appointment_slot x where x.clinic_id = c.id)`.as('slots_taken'),
      sql<number>`(select count(*) from appointment a where a.clinic_id = c.id
        and a.status in ('screened', 'partially_screened', 'attended_not_screened'))`.as('attended'),
    ])
    .where('c.clinic_date', '>=', filter.from)
    .where('c.clinic_date', '<=', filter.to)
    .orderBy('c.clinic_date')
    .orderBy('s.name')
    .orderBy('c.starts_at');
  if (filter.siteId) q = q.where('c.site_id', '=', filter.siteId);
  if (filter.locationId) q = q.where('c.location_id', '=', filter.locationId);
  const purpose = filter.purpose ?? 'screening';
  if (purpose !== 'all') q = q.where('c.purpose', '=', purpose);
  const rows = await q.execute();
  return rows.map((r) => ({
    ...r,
    slots: slotCount({ startsAt: r.starts_at, endsAt: r.ends_at, slotMinutes: r.slot_minutes }),
  }));
}

export async function listSitesAndLocations(db: Db) {
  const [sites, locations] = await Promise.all([
    db.selectFrom('site').selectAll().orderBy('name').execute(),
    db.selectFrom('location').selectAll().orderBy('name').execute(),
  ]);
  return { sites, locations };
}

async function clinicHeader(db: Db, clinicId: string) {
  const clinic = await db
    .selectFrom('clinic as c')
    .innerJoin('site as s', 's.id', 'c.site_id')
    .innerJoin('location as l', 'l.id', 'c.location_id')
    .selectAll('c')
    .select([
      's.name as site_name',
      's.kind as site_kind',
      'l.name as location_name',
      'l.address as location_address',
      'l.postcode as location_postcode',
      'l.wheelchair_accessible',
    ])
    .where('c.id', '=', clinicId)
    .executeTakeFirst();
  if (!clinic) throw new NotFoundError('That clinic does not exist');
  return clinic;
}

/** Current record items of these participants, for their reasonable adjustments. */
export async function currentItemsOf(db: Db, participantIds: string[]) {
  if (participantIds.length === 0)
    return new Map<string, { kind: string; temporary_until: string | null; value: string | null; details: string }[]>();
  const rows = await db
    .selectFrom('record_item')
    .select(['participant_id', 'kind', 'temporary_until', 'value', 'details'])
    .where('participant_id', 'in', participantIds)
    .where('superseded_at', 'is', null)
    .where('removed_at', 'is', null)
    .execute();
  const byParticipant = new Map<string, typeof rows>();
  for (const row of rows)
    byParticipant.set(row.participant_id, [...(byParticipant.get(row.participant_id) ?? []), row]);
  return byParticipant;
}

/** A clinic with every slot, who holds it, and each person's reasonable adjustments on the day. */
export async function loadClinic(db: Db, clinicId: string, actor: Actor) {
  const clinic = await clinicHeader(db, clinicId);
  const appointments = await db
    .selectFrom('appointment as a')
    .innerJoin('participant as p', 'p.id', 'a.participant_id')
    .select([
      'a.id',
      'a.status',
      'a.status_reason',
      'a.slot_index',
      'a.slot_count',
      'a.accession_number',
      'a.version',
      'p.id as participant_id',
      'p.nhs_number',
      'p.given_name',
      'p.family_name',
      'p.date_of_birth',
    ])
    .where('a.clinic_id', '=', clinicId)
    .orderBy('a.slot_index')
    .orderBy('a.booked_at')
    .execute();
  const items = await currentItemsOf(
    db,
    appointments.map((a) => a.participant_id),
  );
  const withAdjustments = appointments.map((a) => {
    const own = items.get(a.participant_id) ?? [];
    const kinds = adjustmentsOn(
      own.map((i) => ({ kind: i.kind, temporaryUntil: i.temporary_until })),
      clinic.clinic_date,
    );
    return {
      ...a,
      time: slotTime({ startsAt: clinic.starts_at, slotMinutes: clinic.slot_minutes }, a.slot_index),
      minutes: a.slot_count * clinic.slot_minutes,
      adjustments: kinds.map((k) => {
        const item = own.find((i) => i.kind === k.kind);
        return { kind: k.kind, label: k.label, detail: [item?.value, item?.details].filter(Boolean).join(': ') };
      }),
    };
  });
  const total = slotCount({ startsAt: clinic.starts_at, endsAt: clinic.ends_at, slotMinutes: clinic.slot_minutes });
  const holder = new Map<number, string>();
  for (const a of withAdjustments) {
    if (holdsSlot(a.status)) for (let i = 0; i < a.slot_count; i++) holder.set(a.slot_index + i, a.id);
  }
  const slots = Array.from({ length: total }, (_, index) => ({
    index,
    time: slotTime({ startsAt: clinic.starts_at, slotMinutes: clinic.slot_minutes }, index),
    appointmentId: holder.get(index) ?? null,
  }));
  await recordAudit(db, actor, {
    action: 'clinic.view',
    entityType: 'clinic',
    entityId: clinicId,
    detail: { appointments: appointments.length },
  });
  return { clinic, appointments: withAdjustments, slots };
}

/** Taken slot indexes of a clinic. */
async function takenSlots(db: Db, clinicId: string): Promise<Set<number>> {
  const rows = await db.selectFrom('appointment_slot').select('slot_index').where('clinic_id', '=', clinicId).execute();
  return new Set(rows.map((r) => r.slot_index));
}

/** What booking this participant needs: how many slots, and whether the location must be wheelchair accessible. */
export async function bookingNeeds(db: Db, participantId: string, on: string) {
  const items = (await currentItemsOf(db, [participantId])).get(participantId) ?? [];
  const facts = items.map((i) => ({ kind: i.kind, temporaryUntil: i.temporary_until }));
  return {
    slots: slotsNeeded(facts, on),
    accessible: needsAccessibleLocation(facts, on),
    adjustments: adjustmentsOn(facts, on).map((k) => k.label),
  };
}

/**
 * Open clinics from `from` to `to` where this participant can be booked, with the first free start times: screening
 * clinics unless `purpose` says otherwise, at any site unless `siteIds` lists some.
 */
export async function suitableClinics(
  db: Db,
  participantId: string,
  from: string,
  to: string,
  options: { purpose?: ClinicPurpose; siteIds?: readonly string[] } = {},
) {
  const needs = await bookingNeeds(db, participantId, from);
  const sites = options.siteIds ? new Set(options.siteIds) : null;
  const clinics = (await listClinics(db, { from, to, purpose: options.purpose ?? 'screening' })).filter(
    (c) =>
      c.status === 'open' && (!needs.accessible || c.wheelchair_accessible) && (sites === null || sites.has(c.site_id)),
  );
  const result = [];
  for (const c of clinics) {
    if (c.slots - c.slots_taken < needs.slots) continue;
    const starts = freeSlotStarts(c.slots, await takenSlots(db, c.id), needs.slots);
    if (starts.length > 0) {
      result.push({
        ...c,
        freeStarts: starts.map((index) => ({
          index,
          time: slotTime({ startsAt: c.starts_at, slotMinutes: c.slot_minutes }, index),
        })),
      });
    }
  }
  return { needs, clinics: result };
}

export interface BookingRequest {
  clinicId: string;
  participantId: string;
  /** The first slot; when absent, the first free run of the slots needed. */
  slotIndex?: number;
  rescheduledFrom?: string;
  /** The kind of clinic this booking is for: 'screening' when absent. A clinic of the other kind is refused. */
  purpose?: ClinicPurpose;
}

async function nextAccessionNumber(db: Db): Promise<string> {
  const { rows } = await sql<{ n: number }>`select nextval('accession_number_seq')::int8 as n`.execute(db);
  return 'SH' + String(rows[0]?.n ?? 0).padStart(8, '0');
}

/**
 * Books inside the caller's transaction (the clinic row is locked, the slots checked): the one booking path, for
 * staff, invitation batches and self-booking alike. A RuleError is raised before anything is written.
 */
export async function bookWithin(tx: Db, request: BookingRequest, actor: Actor, today: string): Promise<string> {
  // Lock the clinic: bookings into one clinic take turns, so the free-slot check and the insert agree.
  const clinic = await tx
    .selectFrom('clinic as c')
    .innerJoin('location as l', 'l.id', 'c.location_id')
    .select([
      'c.id',
      'c.clinic_date',
      'c.starts_at',
      'c.ends_at',
      'c.slot_minutes',
      'c.status',
      'c.purpose',
      'l.wheelchair_accessible',
      'l.name as location_name',
    ])
    .where('c.id', '=', request.clinicId)
    .forUpdate()
    .executeTakeFirst();
  if (!clinic) throw new NotFoundError('That clinic does not exist');
  const purpose = request.purpose ?? 'screening';
  if (clinic.purpose !== purpose) {
    throw new RuleError(
      'clinicId',
      clinic.purpose === 'assessment'
        ? 'That is an assessment clinic: choose a screening clinic'
        : 'That is a screening clinic: choose an assessment clinic',
    );
  }
  if (clinic.status !== 'open') throw new RuleError('clinicId', 'That clinic is not open for booking');
  if (clinic.clinic_date < today)
    throw new RuleError('clinicId', 'That clinic is in the past: choose a clinic from today on');
  const participant = await tx
    .selectFrom('participant')
    .select(['id', 'date_of_death', 'ceased_reason', 'bso_code'])
    .where('id', '=', request.participantId)
    .executeTakeFirst();
  if (!participant) throw new NotFoundError('That participant does not exist');
  if (participant.date_of_death) throw new RuleError('participantId', 'This participant has died and cannot be booked');
  if (participant.ceased_reason && !stillInRoutineScreening(participant.ceased_reason)) {
    throw new RuleError(
      'participantId',
      `This participant is ceased from screening (${ceasingLabel(participant.ceased_reason)}) and cannot be booked`,
    );
  }
  const live = await tx
    .selectFrom('appointment as a')
    .innerJoin('clinic as c', 'c.id', 'a.clinic_id')
    .select(['a.id', 'c.clinic_date'])
    .where('a.participant_id', '=', request.participantId)
    .where('a.status', 'in', ['scheduled', 'checked_in', 'in_progress', 'paused'])
    .where('c.clinic_date', '>=', today)
    .$if(request.rescheduledFrom !== undefined, (q) => q.where('a.id', '<>', request.rescheduledFrom!))
    .executeTakeFirst();
  if (live) {
    throw new RuleError(
      'participantId',
      `This participant already has an appointment on ${live.clinic_date}: reschedule or cancel it instead`,
    );
  }
  const needs = await bookingNeeds(tx, request.participantId, clinic.clinic_date);
  if (needs.accessible && !clinic.wheelchair_accessible) {
    throw new RuleError(
      'clinicId',
      `${clinic.location_name} is not wheelchair accessible: choose an accessible location`,
    );
  }
  const total = slotCount({ startsAt: clinic.starts_at, endsAt: clinic.ends_at, slotMinutes: clinic.slot_minutes });
  const starts = freeSlotStarts(total, await takenSlots(tx, clinic.id), needs.slots);
  const slotIndex = request.slotIndex ?? starts[0];
  if (slotIndex === undefined) throw new RuleError('clinicId', 'That clinic is full: choose another clinic');
  if (!starts.includes(slotIndex)) {
    const what = needs.slots > 1 ? `${needs.slots} free slots in a row (a special appointment)` : 'a free slot';
    throw new RuleError('slotIndex', `That time is taken: this appointment needs ${what}. Choose another time`);
  }
  const episodeId = await openEpisodeFor(tx, participant.id, participant.bso_code, today);
  const { id } = await tx
    .insertInto('appointment')
    .values({
      clinic_id: clinic.id,
      participant_id: participant.id,
      episode_id: episodeId,
      slot_index: slotIndex,
      slot_count: needs.slots,
      status: 'scheduled',
      accession_number: await nextAccessionNumber(tx),
      booked_by: actor.userId,
      rescheduled_from: request.rescheduledFrom ?? null,
    })
    .returning('id')
    .executeTakeFirstOrThrow();
  await tx
    .insertInto('appointment_slot')
    .values(
      Array.from({ length: needs.slots }, (_, i) => ({
        clinic_id: clinic.id,
        slot_index: slotIndex + i,
        appointment_id: id,
      })),
    )
    .execute();
  await tx
    .insertInto('appointment_status_event')
    .values({ appointment_id: id, status: 'scheduled', by_user: actor.userId })
    .execute();
  await recordAudit(tx, actor, {
    action: request.rescheduledFrom ? 'appointment.reschedule' : 'appointment.book',
    entityType: 'appointment',
    entityId: id,
    participantId: participant.id,
    detail: { clinicId: clinic.id, slotIndex, slots: needs.slots, rescheduledFrom: request.rescheduledFrom ?? null },
  });
  return id;
}

/** The participant's open episode, or a new one: first call (C) if never screened, else routine recall (R). */
async function openEpisodeFor(tx: Db, participantId: string, bsoCode: string, today: string): Promise<string> {
  const open = await tx
    .selectFrom('episode')
    .select('id')
    .where('participant_id', '=', participantId)
    .where('closed_on', 'is', null)
    .orderBy('opened_on', 'desc')
    .executeTakeFirst();
  if (open) return open.id;
  const screened = await tx
    .selectFrom('episode')
    .select('id')
    .where('participant_id', '=', participantId)
    .where('screened_on', 'is not', null)
    .executeTakeFirst();
  const { id } = await tx
    .insertInto('episode')
    .values({ participant_id: participantId, bso_code: bsoCode, episode_type: screened ? 'R' : 'C', opened_on: today })
    .returning('id')
    .executeTakeFirstOrThrow();
  return id;
}

/** Books an appointment; two people can never hold one slot (the slot table's primary key says so too). */
export async function bookAppointment(db: Db, request: BookingRequest, actor: Actor, today: string): Promise<string> {
  try {
    return await db.transaction().execute((tx) => bookWithin(tx, request, actor, today));
  } catch (error) {
    if (isUniqueViolation(error)) throw new ConflictError('Someone else has just booked that time: choose another');
    throw error;
  }
}

async function lockAppointment(tx: Db, appointmentId: string, expectedVersion: number) {
  const appointment = await tx
    .selectFrom('appointment as a')
    .innerJoin('clinic as c', 'c.id', 'a.clinic_id')
    .select([
      'a.id',
      'a.status',
      'a.version',
      'a.participant_id',
      'a.episode_id',
      'a.clinic_id',
      'c.clinic_date',
      'c.purpose',
    ])
    .where('a.id', '=', appointmentId)
    .forUpdate()
    .executeTakeFirst();
  if (!appointment) throw new NotFoundError('That appointment does not exist');
  if (appointment.version !== expectedVersion) {
    throw new ConflictError(
      `This appointment was changed by someone else after you opened it: it is now ${STATUS_LABELS[appointment.status].toLowerCase()}. Nothing was saved.`,
    );
  }
  return appointment;
}

export interface StatusChange {
  appointmentId: string;
  expectedVersion: number;
  to: AppointmentStatus;
  reason?: string | null;
  reInvite?: boolean | null;
  via?: 'hub' | 'api' | 'gateway';
  /** Skips the pathway's move rules: only for settling a data conflict in favour of what the trailer saw. */
  force?: boolean;
}

/** A status change inside the caller's transaction (the appointment row is locked and its version checked). */
export async function changeStatusWithin(tx: Db, change: StatusChange, actor: Actor, today: string) {
  const appointment = await lockAppointment(tx, change.appointmentId, change.expectedVersion);
  const problem = moveProblem(
    { from: appointment.status, to: change.to, reason: change.reason ?? null, clinicDate: appointment.clinic_date },
    today,
  );
  if (problem && !change.force) throw new RuleError(problem.field, problem.message);
  await tx
    .updateTable('appointment')
    .set({ status: change.to, status_reason: change.reason ?? null, version: appointment.version + 1 })
    .where('id', '=', appointment.id)
    .execute();
  if (!holdsSlot(change.to))
    await tx.deleteFrom('appointment_slot').where('appointment_id', '=', appointment.id).execute();
  await tx
    .insertInto('appointment_status_event')
    .values({
      appointment_id: appointment.id,
      status: change.to,
      reason: change.reason ?? null,
      re_invite: change.reInvite ?? null,
      by_user: actor.userId,
      via: change.via ?? 'hub',
    })
    .execute();
  if ((change.to === 'screened' || change.to === 'partially_screened') && appointment.episode_id) {
    await tx
      .updateTable('episode')
      .set({ screened_on: appointment.clinic_date })
      .where('id', '=', appointment.episode_id)
      .execute();
  }
  await recordAudit(tx, actor, {
    action: 'appointment.status',
    entityType: 'appointment',
    entityId: appointment.id,
    participantId: appointment.participant_id,
    detail: { from: appointment.status, to: change.to, reason: change.reason ?? null },
  });
  return appointment;
}

export async function changeAppointmentStatus(
  db: Db,
  change: StatusChange,
  actor: Actor,
  today: string,
): Promise<void> {
  await db.transaction().execute((tx) => changeStatusWithin(tx, change, actor, today));
}

/**
 * Moves an appointment to another clinic or time: the old one is cancelled (reason "rescheduled"), a new one booked
 * in a clinic of the same purpose (an assessment appointment moves to another assessment clinic).
 */
export async function rescheduleAppointment(
  db: Db,
  move: { appointmentId: string; expectedVersion: number; clinicId: string; slotIndex?: number },
  actor: Actor,
  today: string,
): Promise<string> {
  try {
    return await db.transaction().execute(async (tx) => {
      const old = await changeStatusWithin(
        tx,
        {
          appointmentId: move.appointmentId,
          expectedVersion: move.expectedVersion,
          to: 'cancelled',
          reason: 'Rescheduled',
        },
        actor,
        today,
      );
      return bookWithin(
        tx,
        {
          clinicId: move.clinicId,
          participantId: old.participant_id,
          rescheduledFrom: old.id,
          purpose: old.purpose,
          ...(move.slotIndex === undefined ? {} : { slotIndex: move.slotIndex }),
        },
        actor,
        today,
      );
    });
  } catch (error) {
    if (isUniqueViolation(error)) throw new ConflictError('Someone else has just booked that time: choose another');
    throw error;
  }
}

/**
 * Appointments with their clinic, site, location and participant, each with its start time and length: the one
 * query behind the appointment page, the participant's record, the FHIR Appointment reads and a unit's worklist
 * (a site's appointments in some statuses between two dates, at open clinics, of living people). Newest first.
 */
export type AppointmentFilter =
  | { id: string }
  | { participantId: string }
  | { siteId: string; from: string; to: string; statuses: readonly AppointmentStatus[] };

export async function findAppointments(db: Db, where: AppointmentFilter) {
  const rows = await db
    .selectFrom('appointment as a')
    .innerJoin('participant as p', 'p.id', 'a.participant_id')
    .innerJoin('clinic as c', 'c.id', 'a.clinic_id')
    .innerJoin('site as s', 's.id', 'c.site_id')
    .innerJoin('location as l', 'l.id', 'c.location_id')
    .select([
      'a.id',
      'a.status',
      'a.status_reason',
      'a.version',
      'a.slot_index',
      'a.slot_count',
      'a.accession_number',
      'a.episode_id',
      'a.rescheduled_from',
      'p.id as participant_id',
      'p.nhs_number',
      'p.given_name',
      'p.family_name',
      'p.date_of_birth',
      'p.sex',
      'c.id as clinic_id',
      'c.clinic_date',
      'c.starts_at',
      'c.slot_minutes',
      's.name as site_name',
      's.ae_title',
      'l.name as location_name',
    ])
    .$if('id' in where, (q) => q.where('a.id', '=', (where as { id: string }).id))
    .$if('participantId' in where, (q) =>
      q.where('a.participant_id', '=', (where as { participantId: string }).participantId),
    )
    .$if('siteId' in where, (q) => {
      const site = where as Extract<AppointmentFilter, { siteId: string }>;
      return q
        .where('c.site_id', '=', site.siteId)
        .where('c.clinic_date', '>=', site.from)
        .where('c.clinic_date', '<=', site.to)
        .where('c.status', '=', 'open')
        .where('a.status', 'in', site.statuses)
        .where('p.date_of_death', 'is', null);
    })
    .orderBy('c.clinic_date', 'desc')
    .orderBy('a.booked_at', 'desc')
    .execute();
  return rows.map((a) => ({
    ...a,
    start: slotTime({ startsAt: a.starts_at, slotMinutes: a.slot_minutes }, a.slot_index),
    minutes: a.slot_count * a.slot_minutes,
  }));
}

export async function appointmentHistory(db: Db, appointmentId: string) {
  return db
    .selectFrom('appointment_status_event as e')
    .leftJoin('app_user as u', 'u.id', 'e.by_user')
    .select(['e.status', 'e.reason', 'e.re_invite', 'e.at', 'e.via', 'u.display_name'])
    .where('e.appointment_id', '=', appointmentId)
    .orderBy('e.id')
    .execute();
}
