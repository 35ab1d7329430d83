/**
 * Staff cease a woman from screening, and reinstate her (issue 5, item 2). Each page says what the rule needs (the
 * evidence for a ceasing, who may reinstate her) and shows every problem at once in the NHS error summary; the
 * store checks the rules again, and that nobody changed her record since the page was opened.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import {
  ceasingLabel,
  CEASING_REASONS,
  CEASING_RULES,
  ceasingProblemsOnRecord,
  ceasingReasonFrom,
  reinstatementProblemsOnRecord,
} from '../../pathway/ceasing.js';
import { ceaseParticipant, reinstateParticipant } from '../../store/ceasing.js';
import type { Db } from '../../store/database.js';
import { ConflictError, RulesRefusedError } from '../../store/errors.js';
import { actorOf, pageNeeds } from '../auth.js';
import { dateFromParts, dateParts, problemsByField, type FieldErrors } from '../forms.js';
import { page, redirectWithMessage } from '../render.js';

type Body = Record<string, string | undefined>;

/** What the screening pages (ceasing, reinstatement, very high risk) show and check of her record. */
export async function participantById(db: Db, id: string) {
  if (!z.uuid().safeParse(id).success) return undefined;
  return db
    .selectFrom('participant')
    .select([
      'id',
      'nhs_number',
      'given_name',
      'family_name',
      'date_of_birth',
      'date_of_death',
      'ceased_reason',
      'ceased_on',
      'very_high_risk',
      'vhr_risk_group',
      'vhr_since',
      'vhr_radiotherapy_on',
      'version',
    ])
    .where('id', '=', id)
    .executeTakeFirst();
}
export type Participant = NonNullable<Awaited<ReturnType<typeof participantById>>>;

const CEASING_FIELDS: [RegExp, string][] = [
  [/^Choose a reason|^Only a woman on very high risk/, 'reason'],
  [/date of ceasing/i, 'ceasedOn-day'],
  [/^Record /, 'evidence'],
];
const REINSTATEMENT_FIELDS: [RegExp, string][] = [
  [/date of reinstatement/i, 'reinstatedOn-day'],
  [/^Say who decided/, 'decidedBy'],
  [/^Give the reason/, 'reason'],
];

const ceasedOf = (p: Participant) =>
  p.ceased_reason && p.ceased_on ? { reason: p.ceased_reason, on: p.ceased_on } : null;

export function registerCeasingPages(app: FastifyInstance, db: Db): void {
  const canEdit = { preHandler: pageNeeds('participant.edit') };

  function ceasePage(request: FastifyRequest, reply: FastifyReply, p: Participant, values: Body, errors: FieldErrors) {
    const withdrawn = ceasingReasonFrom(p.ceased_reason ?? '') === 'very_high_risk_withdrawal';
    // A very high risk withdrawal is offered only to a woman on (and not already withdrawn from) surveillance.
    const reasons = CEASING_REASONS.filter(
      (r) => r !== 'very_high_risk_withdrawal' || (p.very_high_risk && !withdrawn),
    );
    return page(request, reply, 'ceasing.njk', {
      title: 'Cease from screening',
      back: { href: `/participants/${p.id}` },
      p,
      values,
      errors,
      // Ceased already (for a reason other than leaving surveillance): she must be reinstated first.
      blockedBy: p.ceased_reason && !withdrawn ? ceasingLabel(p.ceased_reason) : null,
      withdrawn,
      reasons: reasons.map((r) => ({
        value: r,
        text: CEASING_RULES[r].label,
        hint: `Needs ${CEASING_RULES[r].evidence}.${CEASING_RULES[r].routineContinues ? ' She stays in routine screening in the routine ages.' : ''}`,
      })),
    });
  }

  app.get('/participants/:id/cease', canEdit, async (request, reply) => {
    const p = await participantById(db, (request.params as { id: string }).id);
    if (!p) return reply.callNotFound();
    return ceasePage(request, reply, p, { version: String(p.version), ...dateParts('ceasedOn', app.today()) }, {});
  });

  app.post('/participants/:id/cease', canEdit, async (request, reply) => {
    const p = await participantById(db, (request.params as { id: string }).id);
    if (!p) return reply.callNotFound();
    const body = (request.body ?? {}) as Body;
    const today = app.today();
    const reason = body.reason ?? '';
    const evidence = (body.evidence ?? '').trim();
    const on = dateFromParts(body, 'ceasedOn', 'Date of ceasing', { required: true, past: true, today });
    const version = Number(body.version);
    if (on.error || !on.value) {
      // The date's own message, with whatever else the rules would say of the rest of the form.
      const rest = ceasingProblemsOnRecord(
        {
          reason,
          on: today,
          evidence,
          veryHighRisk: p.very_high_risk,
          dateOfBirth: p.date_of_birth,
          dateOfDeath: p.date_of_death,
          ceased: ceasedOf(p),
        },
        today,
      );
      const errors = {
        ...problemsByField(rest, CEASING_FIELDS),
        'ceasedOn-day': on.error ?? 'Enter the date of ceasing',
      };
      return ceasePage(request, reply.code(400), p, body, errors);
    }
    try {
      await ceaseParticipant(
        db,
        { participantId: p.id, expectedVersion: version, reason, on: on.value, evidence },
        actorOf(request),
        today,
      );
    } catch (error) {
      if (error instanceof RulesRefusedError)
        return ceasePage(request, reply.code(400), p, body, problemsByField(error.problems, CEASING_FIELDS));
      if (error instanceof ConflictError) return ceasePage(request, reply.code(409), p, body, { form: error.message });
      throw error;
    }
    const rule = CEASING_RULES[reason as keyof typeof CEASING_RULES];
    return redirectWithMessage(
      reply,
      `/participants/${p.id}`,
      rule.routineContinues
        ? 'Withdrawn from very high risk screening: she stays in routine screening in the routine ages.'
        : `Ceased from screening: ${rule.label}. She will not be invited.`,
    );
  });

  function reinstatePage(
    request: FastifyRequest,
    reply: FastifyReply,
    p: Participant,
    values: Body,
    errors: FieldErrors,
  ) {
    const code = p.ceased_reason ? ceasingReasonFrom(p.ceased_reason) : undefined;
    return page(request, reply, 'reinstate.njk', {
      title: 'Reinstate to screening',
      back: { href: `/participants/${p.id}` },
      p,
      values,
      errors,
      ceasing: p.ceased_reason && p.ceased_on ? { label: ceasingLabel(p.ceased_reason), on: p.ceased_on } : null,
      reinstatedBy: code ? CEASING_RULES[code].reinstatedBy : null,
      withdrawal: code === 'very_high_risk_withdrawal',
    });
  }

  app.get('/participants/:id/reinstate', canEdit, async (request, reply) => {
    const p = await participantById(db, (request.params as { id: string }).id);
    if (!p) return reply.callNotFound();
    return reinstatePage(
      request,
      reply,
      p,
      { version: String(p.version), ...dateParts('reinstatedOn', app.today()) },
      {},
    );
  });

  app.post('/participants/:id/reinstate', canEdit, async (request, reply) => {
    const p = await participantById(db, (request.params as { id: string }).id);
    if (!p) return reply.callNotFound();
    const body = (request.body ?? {}) as Body;
    const today = app.today();
    const decidedBy = (body.decidedBy ?? '').trim();
    const reason = (body.reason ?? '').trim();
    const on = dateFromParts(body, 'reinstatedOn', 'Date of reinstatement', { required: true, past: true, today });
    if (on.error || !on.value) {
      const rest = reinstatementProblemsOnRecord({ ceased: ceasedOf(p), on: today, decidedBy, reason }, today);
      const errors = {
        ...problemsByField(rest, REINSTATEMENT_FIELDS),
        'reinstatedOn-day': on.error ?? 'Enter the date of reinstatement',
      };
      return reinstatePage(request, reply.code(400), p, body, errors);
    }
    try {
      await reinstateParticipant(
        db,
        { participantId: p.id, expectedVersion: Number(body.version), on: on.value, decidedBy, reason },
        actorOf(request),
        today,
      );
    } catch (error) {
      if (error instanceof RulesRefusedError)
        return reinstatePage(request, reply.code(400), p, body, problemsByField(error.problems, REINSTATEMENT_FIELDS));
      if (error instanceof ConflictError)
        return reinstatePage(request, reply.code(409), p, body, { form: error.message });
      throw error;
    }
    return redirectWithMessage(reply, `/participants/${p.id}`, 'Reinstated: her screening status is shown below.');
  });
}
