import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { nhsNumberProblem, normaliseNhsNumber } from '../../pathway/nhs-number.js';
import type { Db } from '../../store/database.js';
import { RuleError } from '../../store/errors.js';
import {
  cancelOrContact,
  changeAppointment,
  invitationView,
  keepAppointment,
  LOCK_MINUTES,
  MAX_FAILED_ATTEMPTS,
  offeredChoices,
  participantActor,
  signInToInvitation,
} from '../../store/self-booking.js';
import { dateFromParts, type FieldErrors } from '../forms.js';
import { page, redirectWithMessage } from '../render.js';

/** The participant-facing pages: no staff sign-in; her letter's code, NHS number and date of birth instead. */
export const SELF_BOOKING_PATH = '/book-your-screening';
const BOOKING_COOKIE = 'sh_booking';
/** How long she stays signed in to her invitation. */
const BOOKING_SESSION_MS = 30 * 60_000;

/** The one answer to wrong details, whichever was wrong (and while locked): it must not say which. */
export const GENERIC_FAILURE =
  'We could not find an invitation with these details. Check your NHS number, date of birth and the code on your ' +
  `letter and try again. After ${MAX_FAILED_ATTEMPTS} tries you will need to wait ${LOCK_MINUTES} minutes, or you ` +
  'can phone the number on your letter.';

const CODE_SHAPE = /^[A-Za-z0-9]{8}$/;

export function registerSelfBookingPages(app: FastifyInstance, db: Db, secureCookies: boolean): void {
  const show = (request: FastifyRequest, reply: FastifyReply, template: string, data: Record<string, unknown>) => {
    // Personal data and no staff session: never kept by a shared computer's browser or a proxy.
    reply.header('cache-control', 'no-store');
    return page(request, reply, template, { ...data, home: SELF_BOOKING_PATH });
  };

  /** The invitation her signed cookie opens, or undefined (missing, tampered with, or expired). */
  const signedInInvitation = (request: FastifyRequest): string | undefined => {
    const raw = request.cookies[BOOKING_COOKIE];
    if (!raw) return undefined;
    const unsigned = request.unsignCookie(raw);
    if (!unsigned.valid || !unsigned.value) return undefined;
    const [id, expires] = unsigned.value.split('|');
    return id && Number(expires) > Date.now() ? id : undefined;
  };

  /** Pages after sign-in: without a live session, back to the start. */
  const withInvitation =
    (handler: (request: FastifyRequest, reply: FastifyReply, invitationId: string) => Promise<unknown>) =>
    async (request: FastifyRequest, reply: FastifyReply) => {
      const invitationId = signedInInvitation(request);
      if (!invitationId) return reply.redirect(SELF_BOOKING_PATH, 303);
      return handler(request, reply, invitationId);
    };

  const actorFor = async (request: FastifyRequest, invitationId: string) => {
    const { invitation } = await invitationView(db, invitationId);
    return participantActor(invitation.nhs_number, request.ip);
  };

  app.get(SELF_BOOKING_PATH, async (request, reply) =>
    show(request, reply, 'self-booking.njk', { title: 'Book your breast screening', values: {}, errors: {} }),
  );

  app.post(SELF_BOOKING_PATH, async (request, reply) => {
    const body = (request.body ?? {}) as Record<string, string>;
    const values = { ...body, nhsNumber: body.nhsNumber ?? '', code: body.code ?? '' };
    const errors: FieldErrors = {};
    const nhsNumber = normaliseNhsNumber(values.nhsNumber);
    if (!nhsNumber) errors.nhsNumber = 'Enter your NHS number';
    else if (nhsNumberProblem(nhsNumber)) errors.nhsNumber = 'Enter your NHS number as it is on your letter: 10 digits';
    const dob = dateFromParts(body, 'dateOfBirth', 'Date of birth', { required: true, past: true, today: app.today() });
    if (dob.error) errors['dateOfBirth-day'] = dob.error;
    const code = values.code.replace(/[\s-]/g, '');
    if (!code) errors.code = 'Enter the code from your letter';
    else if (!CODE_SHAPE.test(code)) errors.code = 'Enter the code from your letter: 8 letters and numbers';
    const title = 'Book your breast screening';
    if (Object.keys(errors).length > 0 || !dob.value)
      return show(request, reply.code(400), 'self-booking.njk', { title, values, errors });
    const result = await signInToInvitation(db, { nhsNumber, dateOfBirth: dob.value, code }, request.ip);
    if (!result.ok)
      return show(request, reply.code(401), 'self-booking.njk', {
        title,
        values: { ...values, code: '' },
        errors: { form: GENERIC_FAILURE },
      });
    reply.setCookie(BOOKING_COOKIE, `${result.invitationId}|${Date.now() + BOOKING_SESSION_MS}`, {
      path: SELF_BOOKING_PATH,
      httpOnly: true,
      sameSite: 'lax',
      secure: secureCookies,
      signed: true,
      maxAge: BOOKING_SESSION_MS / 1000,
    });
    return reply.redirect(`${SELF_BOOKING_PATH}/appointment`, 303);
  });

  app.get(
    `${SELF_BOOKING_PATH}/appointment`,
    withInvitation(async (request, reply, invitationId) => {
      const view = await invitationView(db, invitationId);
      return show(request, reply, 'self-booking-appointment.njk', {
        title: 'Your breast screening appointment',
        ...view,
      });
    }),
  );

  app.post(
    `${SELF_BOOKING_PATH}/keep`,
    withInvitation(async (request, reply, invitationId) => {
      await keepAppointment(db, invitationId, await actorFor(request, invitationId));
      return redirectWithMessage(reply, `${SELF_BOOKING_PATH}/appointment`, 'Thank you: we will see you then');
    }),
  );

  const changePage = async (
    request: FastifyRequest,
    reply: FastifyReply,
    invitationId: string,
    errors: FieldErrors = {},
  ) => {
    const [view, choices] = await Promise.all([
      invitationView(db, invitationId),
      offeredChoices(db, invitationId, app.today()),
    ]);
    return show(request, reply, 'self-booking-change.njk', {
      title: 'Choose another time',
      back: { href: `${SELF_BOOKING_PATH}/appointment` },
      ...view,
      choices: choices.filter(
        (c) =>
          !view.appointment || c.clinicId !== view.appointment.clinic_id || c.slotIndex !== view.appointment.slot_index,
      ),
      errors,
    });
  };

  app.get(`${SELF_BOOKING_PATH}/change`, withInvitation(changePage));

  app.post(
    `${SELF_BOOKING_PATH}/change`,
    withInvitation(async (request, reply, invitationId) => {
      const choice = ((request.body ?? {}) as Record<string, string>).choice ?? '';
      if (!choice) return changePage(request, reply.code(400), invitationId, { choice: 'Choose a time' });
      try {
        await changeAppointment(db, invitationId, choice, await actorFor(request, invitationId), app.today());
      } catch (error) {
        if (error instanceof RuleError)
          return changePage(request, reply.code(409), invitationId, { choice: error.message });
        throw error;
      }
      return redirectWithMessage(reply, `${SELF_BOOKING_PATH}/appointment`, 'Your appointment has been changed');
    }),
  );

  const cancelPage = async (
    request: FastifyRequest,
    reply: FastifyReply,
    invitationId: string,
    values: Record<string, string> = {},
    errors: FieldErrors = {},
  ) =>
    show(request, reply, 'self-booking-cancel.njk', {
      title: 'Cancel or ask us to contact you',
      back: { href: `${SELF_BOOKING_PATH}/appointment` },
      ...(await invitationView(db, invitationId)),
      values,
      errors,
    });

  app.get(
    `${SELF_BOOKING_PATH}/cancel`,
    withInvitation((request, reply, id) => cancelPage(request, reply, id)),
  );

  app.post(
    `${SELF_BOOKING_PATH}/cancel`,
    withInvitation(async (request, reply, invitationId) => {
      const body = (request.body ?? {}) as Record<string, string>;
      const action = body.action;
      const note = (body.note ?? '').trim();
      const errors: FieldErrors = {};
      if (action !== 'cancel' && action !== 'contact') errors.action = 'Choose what you would like to do';
      if (note.length > 1000) errors.note = 'Your message must be 1,000 characters or fewer';
      if (action === 'contact' && !note) errors.note = 'Tell us how and when to contact you, or what you need';
      if (Object.keys(errors).length > 0) return cancelPage(request, reply.code(400), invitationId, body, errors);
      await cancelOrContact(
        db,
        invitationId,
        { action: action as 'cancel' | 'contact', note: note || null },
        await actorFor(request, invitationId),
        app.today(),
      );
      return redirectWithMessage(
        reply,
        `${SELF_BOOKING_PATH}/appointment`,
        action === 'cancel' ? 'Your appointment has been cancelled' : 'Thank you: we will contact you',
      );
    }),
  );

  app.post(`${SELF_BOOKING_PATH}/sign-out`, async (_request, reply) => {
    reply.clearCookie(BOOKING_COOKIE, { path: SELF_BOOKING_PATH });
    return redirectWithMessage(reply, SELF_BOOKING_PATH, 'You have signed out');
  });
}
