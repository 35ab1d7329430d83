import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { imagesHeldLocally } from '../../store/gateway-health.js';
import { z } from 'zod';
import {
  APPOINTMENT_STATUSES,
  canMove,
  NOT_SCREENED_REASONS,
  STATUS_LABELS,
  type AppointmentStatus,
} from '../../pathway/appointment-status.js';
import { addDays, isIsoDate } from '../../pathway/dates.js';
import { can } from '../../pathway/staff-roles.js';
import type { Db } from '../../store/database.js';
import { ConflictError, RuleError } from '../../store/errors.js';
import {
  appointmentHistory,
  bookAppointment,
  bookingNeeds,
  changeAppointmentStatus,
  CLINIC_PURPOSE_LABELS,
  findAppointments,
  listClinics,
  listSitesAndLocations,
  loadClinic,
  rescheduleAppointment,
  suitableClinics,
} from '../../store/clinics.js';
import { actorOf, pageNeeds } from '../auth.js';
import { page, redirectWithMessage } from '../render.js';

const uuid = z.uuid();
const BOOKING_WINDOW_DAYS = 42;
const PURPOSES = ['all', 'screening', 'assessment'] as const;
type PurposeFilter = (typeof PURPOSES)[number];
const purposeItems = (chosen: PurposeFilter) =>
  PURPOSES.map((value) => ({
    value,
    text: value === 'all' ? 'Screening and assessment' : CLINIC_PURPOSE_LABELS[value],
    selected: value === chosen,
  }));

async function appointmentById(db: Db, id: string) {
  if (!uuid.safeParse(id).success) return undefined;
  return (await findAppointments(db, { id }))[0];
}

export function registerClinicPages(app: FastifyInstance, db: Db): void {
  const canView = { preHandler: pageNeeds('clinic.view') };
  const canBook = { preHandler: pageNeeds('appointment.book') };
  const canAttend = { preHandler: pageNeeds('appointment.attendance') };

  app.get('/clinics', canView, async (request, reply) => {
    const q = request.query as { from?: string; to?: string; site?: string; location?: string; purpose?: string };
    const today = app.today();
    const from = q.from && isIsoDate(q.from) ? q.from : today;
    const to = q.to && isIsoDate(q.to) && q.to >= from ? q.to : addDays(from, 13);
    const errors: Record<string, string> = {};
    if (q.from && !isIsoDate(q.from)) errors.from = 'The from date must be a real date, like 2026-11-23';
    if (q.to && (!isIsoDate(q.to) || q.to < from))
      errors.to = 'The to date must be a real date on or after the from date';
    // All clinics unless one purpose is chosen: this list is to look at, booking offers only the right kind.
    const purpose = PURPOSES.find((p) => p === (q.purpose || 'all'));
    if (!purpose) errors.purpose = 'Choose screening, assessment, or both';
    const { sites, locations } = await listSitesAndLocations(db);
    const clinics = await listClinics(db, {
      from,
      to,
      purpose: purpose ?? 'all',
      ...(q.site ? { siteId: q.site } : {}),
      ...(q.location ? { locationId: q.location } : {}),
    });
    return page(request, reply, 'clinics.njk', {
      title: 'Clinics',
      clinics: clinics.map((c) => ({ ...c, purposeLabel: CLINIC_PURPOSE_LABELS[c.purpose] })),
      sites,
      locations,
      purposes: purposeItems(purpose ?? 'all'),
      filter: { from, to, site: q.site, location: q.location, purpose: purpose ?? 'all' },
      errors,
    });
  });

  app.get('/clinics/:id', canView, async (request, reply) => {
    const { id } = request.params as { id: string };
    if (!uuid.safeParse(id).success) return reply.callNotFound();
    const data = await loadClinic(db, id, actorOf(request));
    // Screened while the unit was in manual images mode (issue 8): images kept on the machine, to be sent.
    const held = await imagesHeldLocally(
      db,
      data.appointments.map((a) => a.id),
    );
    return page(request, reply, 'clinic.njk', {
      heldLocally: Object.fromEntries(held),
      title: `Clinic: ${data.clinic.site_name}, ${data.clinic.location_name}`,
      back: { href: `/clinics?from=${data.clinic.clinic_date}`, text: 'All clinics' },
      ...data,
      purposeLabel: CLINIC_PURPOSE_LABELS[data.clinic.purpose],
      canAttend: request.user && can(request.user.role, 'appointment.attendance'),
    });
  });

  // Booking from the record: offers suitable clinics (accessible ones for wheelchair users) and their free times.
  async function bookingPage(
    request: FastifyRequest,
    reply: FastifyReply,
    participantId: string,
    errors: Record<string, string>,
    rescheduling?: Awaited<ReturnType<typeof appointmentById>>,
  ) {
    const participant = await db
      .selectFrom('participant')
      .select(['id', 'given_name', 'family_name', 'nhs_number'])
      .where('id', '=', participantId)
      .executeTakeFirst();
    if (!participant) return reply.callNotFound();
    const from = app.today();
    // A new booking here is for screening; an appointment is rescheduled to a clinic of its own kind (an assessment
    // appointment to another assessment clinic): the store refuses any other.
    const purpose = rescheduling
      ? (
          await db
            .selectFrom('clinic')
            .select('purpose')
            .where('id', '=', rescheduling.clinic_id)
            .executeTakeFirstOrThrow()
        ).purpose
      : 'screening';
    const { needs, clinics } = await suitableClinics(db, participantId, from, addDays(from, BOOKING_WINDOW_DAYS), {
      purpose,
    });
    return page(request, reply, 'book.njk', {
      title: rescheduling ? 'Reschedule the appointment' : 'Book an appointment',
      back: { href: rescheduling ? `/appointments/${rescheduling.id}` : `/participants/${participantId}` },
      participant,
      needs,
      clinics,
      errors,
      rescheduling,
    });
  }

  app.get('/participants/:id/book', canBook, async (request, reply) => {
    const { id } = request.params as { id: string };
    if (!uuid.safeParse(id).success) return reply.callNotFound();
    return bookingPage(request, reply, id, {});
  });

  const slotChoice = z.string().regex(/^[0-9a-f-]{36}:\d{1,3}$/, 'Select a clinic and time');

  app.post('/participants/:id/book', canBook, async (request, reply) => {
    const { id } = request.params as { id: string };
    if (!uuid.safeParse(id).success) return reply.callNotFound();
    const choice = slotChoice.safeParse((request.body as { slot?: string } | undefined)?.slot ?? '');
    if (!choice.success) return bookingPage(request, reply.code(400), id, { slot: 'Select a clinic and time' });
    const [clinicId, slot] = choice.data.split(':') as [string, string];
    try {
      const appointmentId = await bookAppointment(
        db,
        { clinicId, participantId: id, slotIndex: Number(slot) },
        actorOf(request),
        app.today(),
      );
      return redirectWithMessage(reply, `/appointments/${appointmentId}`, 'Appointment booked');
    } catch (error) {
      if (error instanceof RuleError || error instanceof ConflictError)
        return bookingPage(request, reply.code(error instanceof RuleError ? 422 : 409), id, { slot: error.message });
      throw error;
    }
  });

  app.get('/appointments/:id', canView, async (request, reply) => {
    const { id } = request.params as { id: string };
    const appointment = await appointmentById(db, id);
    if (!appointment) return reply.callNotFound();
    return appointmentPage(request, reply, appointment, {});
  });

  async function appointmentPage(
    request: FastifyRequest,
    reply: FastifyReply,
    appointment: NonNullable<Awaited<ReturnType<typeof appointmentById>>>,
    errors: Record<string, string>,
  ) {
    const [history, needs] = await Promise.all([
      appointmentHistory(db, appointment.id),
      bookingNeeds(db, appointment.participant_id, appointment.clinic_date),
    ]);
    const moves = APPOINTMENT_STATUSES.filter((to) => canMove(appointment.status, to) && to !== 'cancelled');
    return page(request, reply, 'appointment.njk', {
      title: 'Appointment',
      back: { href: `/clinics/${appointment.clinic_id}`, text: 'Back to the clinic' },
      a: appointment,
      adjustments: needs.adjustments,
      history,
      moves: moves.map((to) => ({ value: to, text: STATUS_LABELS[to] })),
      canCancel: canMove(appointment.status, 'cancelled') && request.user && can(request.user.role, 'appointment.book'),
      canAttend: request.user && can(request.user.role, 'appointment.attendance'),
      reasons: Object.entries(NOT_SCREENED_REASONS).map(([value, text]) => ({ value: text, text, id: value })),
      errors,
    });
  }

  app.post('/appointments/:id/status', canAttend, async (request, reply) => {
    const { id } = request.params as { id: string };
    const appointment = await appointmentById(db, id);
    if (!appointment) return reply.callNotFound();
    const body = (request.body ?? {}) as {
      to?: string;
      reason?: string;
      version?: string;
      reInvite?: string;
      next?: string;
    };
    const to = body.to as AppointmentStatus;
    if (!APPOINTMENT_STATUSES.includes(to) || to === 'cancelled')
      return appointmentPage(request, reply.code(400), appointment, { to: 'Select what happened' });
    try {
      await changeAppointmentStatus(
        db,
        {
          appointmentId: id,
          expectedVersion: Number(body.version),
          to,
          reason: body.reason?.trim() || null,
          reInvite: body.reInvite === 'yes' ? true : body.reInvite === 'no' ? false : null,
        },
        actorOf(request),
        app.today(),
      );
    } catch (error) {
      if (error instanceof RuleError)
        return appointmentPage(request, reply.code(422), appointment, {
          [error.field === 'status' ? 'to' : error.field]: error.message,
        });
      if (error instanceof ConflictError)
        return appointmentPage(request, reply.code(409), (await appointmentById(db, id)) ?? appointment, {
          to: error.message,
        });
      throw error;
    }
    const next =
      body.next === 'today'
        ? `/today?site=${encodeURIComponent((await db.selectFrom('clinic').select('site_id').where('id', '=', appointment.clinic_id).executeTakeFirstOrThrow()).site_id)}`
        : `/appointments/${id}`;
    return redirectWithMessage(
      reply,
      next,
      `${appointment.given_name} ${appointment.family_name}: ${STATUS_LABELS[to].toLowerCase()}`,
    );
  });

  app.post('/appointments/:id/cancel', canBook, async (request, reply) => {
    const { id } = request.params as { id: string };
    const appointment = await appointmentById(db, id);
    if (!appointment) return reply.callNotFound();
    const body = (request.body ?? {}) as { reason?: string; version?: string };
    if (!body.reason?.trim())
      return appointmentPage(request, reply.code(400), appointment, { cancelReason: 'Give a reason for cancelling' });
    try {
      await changeAppointmentStatus(
        db,
        { appointmentId: id, expectedVersion: Number(body.version), to: 'cancelled', reason: body.reason.trim() },
        actorOf(request),
        app.today(),
      );
    } catch (error) {
      if (error instanceof RuleError || error instanceof ConflictError) {
        return appointmentPage(
          request,
          reply.code(error instanceof RuleError ? 422 : 409),
          (await appointmentById(db, id)) ?? appointment,
          { cancelReason: error.message },
        );
      }
      throw error;
    }
    return redirectWithMessage(reply, `/appointments/${id}`, 'Appointment cancelled: the slot is free again');
  });

  app.get('/appointments/:id/reschedule', canBook, async (request, reply) => {
    const { id } = request.params as { id: string };
    const appointment = await appointmentById(db, id);
    if (!appointment) return reply.callNotFound();
    return bookingPage(request, reply, appointment.participant_id, {}, appointment);
  });

  app.post('/appointments/:id/reschedule', canBook, async (request, reply) => {
    const { id } = request.params as { id: string };
    const appointment = await appointmentById(db, id);
    if (!appointment) return reply.callNotFound();
    const body = (request.body ?? {}) as { slot?: string; version?: string };
    const choice = slotChoice.safeParse(body.slot ?? '');
    if (!choice.success)
      return bookingPage(
        request,
        reply.code(400),
        appointment.participant_id,
        { slot: 'Select a clinic and time' },
        appointment,
      );
    const [clinicId, slot] = choice.data.split(':') as [string, string];
    try {
      const newId = await rescheduleAppointment(
        db,
        { appointmentId: id, expectedVersion: Number(body.version), clinicId, slotIndex: Number(slot) },
        actorOf(request),
        app.today(),
      );
      return redirectWithMessage(reply, `/appointments/${newId}`, 'Appointment rescheduled');
    } catch (error) {
      if (error instanceof RuleError || error instanceof ConflictError) {
        return bookingPage(
          request,
          reply.code(error instanceof RuleError ? 422 : 409),
          appointment.participant_id,
          { slot: error.message },
          appointment,
        );
      }
      throw error;
    }
  });

  // Today's clinic for a mammographer: one site's clinic today, who is next, check-in, adjustments first.
  app.get('/today', canAttend, async (request, reply) => {
    const today = app.today();
    const { sites } = await listSitesAndLocations(db);
    const todays = await listClinics(db, { from: today, to: today });
    const site = (request.query as { site?: string }).site ?? todays[0]?.site_id;
    const clinicRow = todays.find((c) => c.site_id === site);
    const clinic = clinicRow ? await loadClinic(db, clinicRow.id, actorOf(request)) : undefined;
    const waiting = clinic?.appointments.filter((a) => a.status === 'scheduled' || a.status === 'checked_in') ?? [];
    const next = waiting.find((a) => a.status === 'checked_in') ?? waiting[0];
    return page(request, reply, 'today.njk', {
      title: "Today's clinic",
      sites: sites.filter((s) => todays.some((c) => c.site_id === s.id)),
      site,
      clinic,
      next,
      done:
        clinic?.appointments.filter(
          (a) => a.status !== 'scheduled' && a.status !== 'checked_in' && a.status !== 'cancelled',
        ).length ?? 0,
    });
  });
}
