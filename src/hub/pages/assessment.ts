import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import {
  BIOPSIES,
  checkOutcome,
  checkProcedure,
  EARLY_RECALL_MONTHS,
  FINAL_ACTION_LABELS,
  type OutcomeInput,
  type ProcedureInput,
} from '../../pathway/assessment.js';
import { formatLongDate } from '../../pathway/dates.js';
import {
  ASSESSMENT_OUTCOME_LABELS,
  ASSESSMENT_OUTCOMES,
  ASSESSMENT_PROCEDURE_LABELS,
  ASSESSMENT_PROCEDURES,
  B_CODES,
  LESION_LABELS,
  OPINION_LABELS,
  SIDE_LABELS,
  TECHNICAL_REASON_LABELS,
} from '../../pathway/screening-outcomes.js';
import {
  assessmentEpisode,
  assessmentWorklist,
  FormProblemsError,
  recordOutcome,
  recordProcedure,
} from '../../store/assessment.js';
import { STATUS_LABELS } from '../../pathway/appointment-status.js';
import { ConflictError } from '../../store/errors.js';
import type { HubOptions } from '../app.js';
import { actorOf, pageNeeds } from '../auth.js';
import { dateFromParts, dateParts, type FieldErrors } from '../forms.js';
import { page, redirectWithMessage } from '../render.js';

type Body = Record<string, string | undefined>;

const labels = {
  procedureLabels: ASSESSMENT_PROCEDURE_LABELS,
  outcomeLabels: ASSESSMENT_OUTCOME_LABELS,
  sideLabels: SIDE_LABELS,
  opinionLabels: OPINION_LABELS,
  lesionLabels: LESION_LABELS,
  technicalLabels: TECHNICAL_REASON_LABELS,
  finalActionLabels: FINAL_ACTION_LABELS,
  statusLabels: STATUS_LABELS,
};

/** The pure rules' field names → the form's (a date's problem goes to its day box, as the error summary links). */
const FIELD_IDS: Record<string, string> = { performedOn: 'performedOn-day', decidedOn: 'decidedOn-day' };
const toFields = (problems: Record<string, string>): FieldErrors =>
  Object.fromEntries(Object.entries(problems).map(([field, text]) => [FIELD_IDS[field] ?? field, text]));

/**
 * Assessment (issue 6, item 3): women recalled to assessment and not yet given an outcome; per episode, the
 * procedures done and the multidisciplinary outcome, recorded or corrected (a correction replaces, never
 * overwrites). Needs assessment.record.
 */
export function registerAssessmentPages(app: FastifyInstance, options: HubOptions): void {
  const { db } = options;
  const canRecord = { preHandler: pageNeeds('assessment.record') };
  const episodeIdOf = (request: FastifyRequest) => {
    const { id } = request.params as { id: string };
    return z.uuid().safeParse(id).success ? id : null;
  };

  app.get('/assessment', canRecord, async (request, reply) => {
    const list = await assessmentWorklist(db, actorOf(request));
    return page(request, reply, 'assessment.njk', { title: 'Assessment', ...list, ...labels, errors: {} });
  });

  app.get('/assessment/:id', canRecord, async (request, reply) => {
    const id = episodeIdOf(request);
    if (!id) return reply.callNotFound();
    const episode = await assessmentEpisode(db, id, actorOf(request));
    return page(request, reply, 'assessment-episode.njk', {
      title: `Assessment: ${episode.participant.given_name} ${episode.participant.family_name.toUpperCase()}`,
      back: { href: '/assessment', text: 'Assessment' },
      ...episode,
      ...labels,
      errors: {},
    });
  });

  // Procedures.

  async function procedurePage(
    request: FastifyRequest,
    reply: FastifyReply,
    id: string,
    values: Body,
    errors: FieldErrors,
  ) {
    const episode = await assessmentEpisode(db, id, actorOf(request));
    return page(request, reply, 'assessment-procedure.njk', {
      title: 'Add a procedure',
      back: { href: `/assessment/${id}`, text: 'Back to her assessment' },
      ...episode,
      ...labels,
      procedures: ASSESSMENT_PROCEDURES,
      biopsies: BIOPSIES,
      bCodes: B_CODES,
      values,
      errors,
    });
  }

  app.get('/assessment/:id/procedure', canRecord, async (request, reply) => {
    const id = episodeIdOf(request);
    if (!id) return reply.callNotFound();
    return procedurePage(request, reply, id, dateParts('performedOn', app.today()), {});
  });

  app.post('/assessment/:id/procedure', canRecord, async (request, reply) => {
    const id = episodeIdOf(request);
    if (!id) return reply.callNotFound();
    const body = (request.body ?? {}) as Body;
    const today = app.today();
    const date = dateFromParts(body, 'performedOn', 'Date of the procedure', { required: true, past: true, today });
    const input: ProcedureInput = {
      procedure: body.procedure ?? '',
      side: body.side || null,
      performedOn: date.value ?? today,
      bCode: body.bCode || null,
      notes: (body.notes ?? '').trim(),
    };
    if (date.error) {
      // The date's own message, with whatever the rules say of the rest of the form.
      const rest = checkProcedure(input, { screenedOn: '0001-01-01', today });
      const errors = { ...(rest.ok ? {} : toFields(rest.problems)), 'performedOn-day': date.error };
      return procedurePage(request, reply.code(400), id, body, errors);
    }
    try {
      await recordProcedure(db, { episodeId: id, procedure: input }, actorOf(request), today);
    } catch (error) {
      if (error instanceof FormProblemsError)
        return procedurePage(request, reply.code(400), id, body, toFields(error.problems));
      throw error;
    }
    return redirectWithMessage(
      reply,
      `/assessment/${id}`,
      `${ASSESSMENT_PROCEDURE_LABELS[input.procedure as keyof typeof ASSESSMENT_PROCEDURE_LABELS]} on ${formatLongDate(input.performedOn)} recorded.`,
    );
  });

  // The outcome.

  async function outcomePage(
    request: FastifyRequest,
    reply: FastifyReply,
    id: string,
    values: Body,
    errors: FieldErrors,
  ) {
    const episode = await assessmentEpisode(db, id, actorOf(request));
    // Someone else recorded one meanwhile: the page shows theirs, and saving again replaces it knowingly.
    if (errors.form) values = { ...values, replacesId: episode.current?.id ?? '' };
    return page(request, reply, 'assessment-outcome.njk', {
      title: episode.current ? 'Correct the outcome' : 'Record the outcome',
      back: { href: `/assessment/${id}`, text: 'Back to her assessment' },
      ...episode,
      ...labels,
      outcomes: ASSESSMENT_OUTCOMES,
      earlyRecallMonths: EARLY_RECALL_MONTHS,
      values,
      errors,
    });
  }

  app.get('/assessment/:id/outcome', canRecord, async (request, reply) => {
    const id = episodeIdOf(request);
    if (!id) return reply.callNotFound();
    const episode = await assessmentEpisode(db, id, actorOf(request));
    const c = episode.current;
    // Correcting: the form starts from the outcome it replaces.
    const values: Body = c
      ? {
          replacesId: c.id,
          outcome: c.outcome,
          side: c.side ?? '',
          sizeMm: c.size_mm === null ? '' : String(Number(c.size_mm)),
          grade: c.grade === null ? '' : String(c.grade),
          earlyRecallMonths: c.early_recall_months === null ? '' : String(c.early_recall_months),
          referredToTreatment: c.referred_to_treatment ? 'yes' : undefined,
          treatmentProvider: c.treatment_provider ?? '',
          ...dateParts('decidedOn', c.decided_on),
        }
      : { replacesId: '', ...dateParts('decidedOn', app.today()) };
    return outcomePage(request, reply, id, values, {});
  });

  app.post('/assessment/:id/outcome', canRecord, async (request, reply) => {
    const id = episodeIdOf(request);
    if (!id) return reply.callNotFound();
    const body = (request.body ?? {}) as Body;
    const today = app.today();
    const date = dateFromParts(body, 'decidedOn', 'Date of the decision', { required: true, past: true, today });
    const input: OutcomeInput = {
      outcome: body.outcome ?? '',
      side: body.side || null,
      sizeMm: body.sizeMm ?? null,
      grade: body.grade || null,
      earlyRecallMonths: body.earlyRecallMonths || null,
      referredToTreatment: body.referredToTreatment === 'yes',
      treatmentProvider: body.treatmentProvider ?? null,
      decidedOn: date.value ?? today,
    };
    if (date.error) {
      const rest = checkOutcome(input, { screenedOn: '0001-01-01', today });
      const errors = { ...(rest.ok ? {} : toFields(rest.problems)), 'decidedOn-day': date.error };
      return outcomePage(request, reply.code(400), id, body, errors);
    }
    const replacesId = body.replacesId && z.uuid().safeParse(body.replacesId).success ? body.replacesId : null;
    try {
      const recorded = await recordOutcome(db, { episodeId: id, outcome: input, replacesId }, actorOf(request), today);
      const next = recorded.end.nextTestDue ? ` Next test due ${formatLongDate(recorded.end.nextTestDue)}.` : '';
      const notes = recorded.notes.length > 0 ? ` ${recorded.notes.join('. ')}.` : '';
      return redirectWithMessage(
        reply,
        `/assessment/${id}`,
        `${recorded.replacedId ? 'Outcome corrected' : 'Outcome recorded'}: ${ASSESSMENT_OUTCOME_LABELS[input.outcome as keyof typeof ASSESSMENT_OUTCOME_LABELS]}. Episode closed: ${FINAL_ACTION_LABELS[recorded.end.finalAction].toLowerCase()}.${next}${notes}`,
      );
    } catch (error) {
      if (error instanceof FormProblemsError)
        return outcomePage(request, reply.code(400), id, body, toFields(error.problems));
      if (error instanceof ConflictError)
        return outcomePage(request, reply.code(409), id, body, { form: error.message });
      throw error;
    }
  });
}
