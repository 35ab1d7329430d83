import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { sql } from 'kysely';
import { z } from 'zod';
import { isFinal } from '../../pathway/appointment-status.js';
import { ceasingLabel } from '../../pathway/ceasing.js';
import { screeningStatus, type ScreeningFacts, type ScreeningStatus } from '../../pathway/eligibility.js';
import { adjustmentsOn, ITEM_KINDS, type ItemCategory } from '../../pathway/record-items.js';
import { countOpenConflicts } from '../../store/data-conflicts.js';
import type { Db } from '../../store/database.js';
import { loadParticipantRecord } from '../../store/participant-record.js';
import { searchParticipants, type SearchQuery } from '../../store/participants.js';
import { activeSuspension, liftSuspension } from '../../store/symptomatic.js';
import { ceasingHistory, latestReinstatement } from '../../store/ceasing.js';
import { listParticipantMoves } from '../../store/movers.js';
import { can } from '../../pathway/staff-roles.js';
import { LETTER_FORMAT_LABELS } from '../../pathway/invitation-letters.js';
import {
  ASSESSMENT_OUTCOME_LABELS,
  COMMUNICATION_KIND_LABELS,
  COMMUNICATION_STATUS_LABELS,
  EXAM_RESULT_LABELS,
  SIDE_LABELS,
} from '../../pathway/screening-outcomes.js';
import { STATUS_LABELS } from '../../pathway/appointment-status.js';
import type { ParticipantRecord } from '../../store/participant-record.js';
import { actorOf, pageNeeds } from '../auth.js';
import { dateFromParts, fieldErrors, nhsNumberField, type FieldErrors } from '../forms.js';
import { page, redirectWithMessage } from '../render.js';

const UK_POSTCODE = /^[A-Z]{1,2}[0-9][A-Z0-9]? ?[0-9][A-Z]{2}$/i;

/** Reads one of the three searches from the form; errors are keyed by field for the page. */
function searchFrom(body: Record<string, string>, today: string): { query?: SearchQuery; errors: FieldErrors } {
  if (body.by === 'nhsNumber') {
    const parsed = z.object({ nhsNumber: nhsNumberField }).safeParse(body);
    return parsed.success
      ? { query: { by: 'nhsNumber', ...parsed.data }, errors: {} }
      : { errors: fieldErrors(parsed.error) };
  }
  if (body.by === 'postcode') {
    const postcode = (body.postcode ?? '').trim();
    if (!postcode) return { errors: { postcode: 'Enter a postcode' } };
    if (!UK_POSTCODE.test(postcode)) return { errors: { postcode: 'Enter a full UK postcode, like LS1 4AP' } };
    return { query: { by: 'postcode', postcode }, errors: {} };
  }
  const errors: FieldErrors = {};
  const familyName = (body.familyName ?? '').trim();
  if (!familyName) errors.familyName = 'Enter the family name (or its first letters)';
  const dob = dateFromParts(body, 'dateOfBirth', 'Date of birth', { required: true, past: true, today });
  if (dob.error) errors['dateOfBirth-day'] = dob.error;
  if (Object.keys(errors).length > 0 || !dob.value) return { errors };
  const givenName = (body.givenName ?? '').trim();
  return {
    query: { by: 'nameAndBirthDate', familyName, dateOfBirth: dob.value, ...(givenName ? { givenName } : {}) },
    errors,
  };
}

/** Early recall from her latest assessment outcome, when it set one. */
function earlyRecallOf(outcome: { decided_on: string; early_recall_months: number | null } | undefined) {
  return outcome?.early_recall_months ? { decidedOn: outcome.decided_on, months: outcome.early_recall_months } : null;
}

export function registerParticipantPages(app: FastifyInstance, db: Db): void {
  const canView = { preHandler: pageNeeds('participant.view') };

  app.get('/participants', canView, async (request, reply) =>
    page(request, reply, 'participant-search.njk', {
      title: 'Find a participant',
      values: { by: 'nhsNumber' },
      errors: {},
    }),
  );

  // A POST so that NHS numbers, names and dates of birth never appear in URLs, browser history or access logs.
  app.post('/participants', canView, async (request, reply) => {
    const body = (request.body ?? {}) as Record<string, string>;
    const { query, errors } = searchFrom(body, app.today());
    if (!query) {
      return page(request, reply.code(400), 'participant-search.njk', {
        title: 'Find a participant',
        values: body,
        errors,
      });
    }
    const { rows, more } = await searchParticipants(db, query, actorOf(request));
    if (query.by === 'nhsNumber' && rows.length === 1 && rows[0])
      return reply.redirect(`/participants/${rows[0].id}`, 303);
    return page(request, reply, 'participant-search.njk', {
      title: 'Find a participant',
      values: body,
      errors,
      results: rows,
      more,
      searched: true,
    });
  });

  app.get('/participants/:id', canView, async (request, reply) => showRecord(request, reply, db));

  // Staff lift a suspension of routine invitations (the symptomatic link set it) with a reason; audited.
  app.post(
    '/participants/:id/suspension/lift',
    { preHandler: pageNeeds('participant.edit') },
    async (request, reply) => {
      const { id } = request.params as { id: string };
      if (!z.uuid().safeParse(id).success) return reply.callNotFound();
      const body = (request.body ?? {}) as Record<string, string>;
      const reason = (body.liftReason ?? '').trim();
      if (!reason)
        return showRecord(request, reply.code(400), db, {
          values: body,
          errors: { liftReason: 'Give the reason for lifting the suspension' },
        });
      if (!(await activeSuspension(db, id)))
        return redirectWithMessage(reply, `/participants/${id}`, 'Invitations were not suspended: nothing to lift.');
      await liftSuspension(db, id, reason, actorOf(request));
      return redirectWithMessage(
        reply,
        `/participants/${id}`,
        'Suspension lifted: she can be invited routinely again.',
      );
    },
  );
}

/** A record with inconsistent dates still opens: the status says what to check instead of failing the page. */
function statusOrProblem(
  facts: ScreeningFacts,
  today: string,
): ScreeningStatus | { code: 'unknown'; label: string; explanation: string; dueDate: null } {
  try {
    return screeningStatus(facts, today);
  } catch (error) {
    return {
      code: 'unknown',
      label: 'Check dates',
      explanation: `The status cannot be worked out: ${(error as Error).message}`,
      dueDate: null,
    };
  }
}

/**
 * The images the PACS holds for each of a participant's appointments that has any (one query for the whole page):
 * how many, and when the first arrived. Keyed by appointment id.
 */
async function imagesInPacs(db: Db, participantId: string) {
  const rows = await db
    .selectFrom('appointment as a')
    .leftJoin('transfer_image as t', 't.appointment_id', 'a.id')
    .select([
      'a.id',
      'a.images_available_at',
      'a.study_instance_uid',
      sql<number>`count(t.sop_instance_uid)::int`.as('images'),
    ])
    .where('a.participant_id', '=', participantId)
    .where('a.images_available_at', 'is not', null)
    .groupBy(['a.id', 'a.images_available_at', 'a.study_instance_uid'])
    .execute();
  return Object.fromEntries(rows.map((r) => [r.id, r]));
}

/**
 * Where an exam without a result stands, in words anyone who may open her record may see: from the number of reads
 * alone, never their opinions (read 1 and 2 are blind to each other, and film readers open this page). Two reads may
 * agree (the result is next) or not (arbitration is next): which, this page does not say.
 */
export function readingStatus(exam: { images_available_at: Date | null; reads: number }): {
  text: string;
  hint: string;
} {
  if (!exam.images_available_at)
    return { text: 'Waiting for the images', hint: 'The images have not reached the PACS yet' };
  if (exam.reads === 0) return { text: 'Waiting for reading', hint: 'Not read yet' };
  if (exam.reads === 1) return { text: 'Waiting for reading', hint: 'Read once: the second read is to do' };
  if (exam.reads === 2)
    return {
      text: 'Read, waiting for the result',
      hint: 'Read twice: if the readers disagree, it is arbitrated before the result',
    };
  return { text: 'Read, waiting for the result', hint: 'Read twice and arbitrated' };
}

const SENT = new Set(['sent', 'delivered', 'acknowledged']);

/** Her results, assessment outcomes and communications, with the words staff see. */
function resultsAndLetters(record: ParticipantRecord, canAssess: boolean) {
  return {
    exams: record.exams.map((e) => ({
      ...e,
      resultLabel: e.result ? EXAM_RESULT_LABELS[e.result] : null,
      waiting: e.result ? null : readingStatus(e),
      followUpStatusLabel:
        e.follow_up_status && e.follow_up_status !== 'scheduled' ? STATUS_LABELS[e.follow_up_status] : null,
    })),
    outcomes: record.assessmentOutcomes.map((o) => ({
      ...o,
      outcomeLabel: ASSESSMENT_OUTCOME_LABELS[o.outcome],
      sideLabel: o.side ? SIDE_LABELS[o.side] : null,
      href: canAssess ? `/assessment/${o.episode_id}` : null,
    })),
    communications: record.communications.map((m) => ({
      ...m,
      kindLabel: COMMUNICATION_KIND_LABELS[m.kind],
      statusLabel: COMMUNICATION_STATUS_LABELS[m.status],
      formatLabel:
        m.channel === 'mesh'
          ? 'Electronic message (MESH)'
          : m.format
            ? LETTER_FORMAT_LABELS[m.format] + (m.format === 'translated' && m.language ? ` (${m.language})` : '')
            : 'Chosen when it is sent',
      pdf: m.channel === 'letter' && SENT.has(m.status) && m.words_kept ? `/communications/letters/${m.id}.pdf` : null,
      wordsNotKept: m.channel === 'letter' && SENT.has(m.status) && !m.words_kept,
    })),
  };
}

/** Her record; with `form`, what was sent back to it with what is wrong (the page is then answered 400). */
export async function showRecord(
  request: FastifyRequest,
  reply: FastifyReply,
  db: Db,
  form?: { values: Record<string, string>; errors: FieldErrors },
) {
  const { id } = request.params as { id: string };
  if (!z.uuid().safeParse(id).success)
    return reply.code(404).view('error.njk', { title: 'Page not found', message: 'Check the address.' });
  const [record, images, suspension, moves] = await Promise.all([
    loadParticipantRecord(db, { id }, actorOf(request)),
    imagesInPacs(db, id),
    activeSuspension(db, id),
    listParticipantMoves(db, id),
  ]);
  const today = request.server.today();
  const p = record.participant;
  const openConflicts = await countOpenConflicts(db, id);
  const ceasings = await ceasingHistory(db, id);
  const status = statusOrProblem(
    {
      dateOfBirth: p.date_of_birth,
      dateOfDeath: p.date_of_death,
      ceased: p.ceased_reason && p.ceased_on ? { reason: p.ceased_reason, on: p.ceased_on } : null,
      veryHighRisk: p.very_high_risk,
      lastScreenedOn: record.lastScreenedOn,
      earlyRecall: earlyRecallOf(record.assessmentOutcomes[0]),
      reinstated: latestReinstatement(ceasings),
      surveillance: { riskGroup: p.vhr_risk_group, since: p.vhr_since, radiotherapyOn: p.vhr_radiotherapy_on },
    },
    today,
  );
  const adjustments = adjustmentsOn(
    record.current.map((i) => ({ kind: i.kind, temporaryUntil: i.temporary_until })),
    today,
  );
  const byCategory = (category: ItemCategory) => record.current.filter((i) => i.category === category);
  const history = record.items.filter((i) => i.superseded_at || i.removed_at);
  return page(request, reply, 'participant.njk', {
    title: `${p.given_name} ${p.family_name}`,
    back: { href: '/participants', text: 'Find another participant' },
    record,
    p,
    status,
    adjustments,
    inTreatment: record.current.some((i) => i.kind === 'symptomatic_treatment'),
    categories: (['clinical', 'access', 'communication'] as const).map((category) => ({
      category,
      items: byCategory(category),
      kinds: ITEM_KINDS.filter((k) => k.category === category),
    })),
    history,
    images,
    liveAppointment: record.appointments.find((a) => !isFinal(a.status) && a.clinic_date >= today),
    suspension,
    moves,
    canLift: request.user ? can(request.user.role, 'participant.edit') : false,
    ceasings: ceasings.map((e) => ({ ...e, reasonLabel: ceasingLabel(e.ceasing_reason) })),
    openConflicts,
    canResolveConflicts: request.user ? can(request.user.role, 'conflict.resolve') : false,
    results: resultsAndLetters(record, request.user ? can(request.user.role, 'assessment.record') : false),
    values: form?.values ?? {},
    errors: form?.errors ?? {},
  });
}
