/**
 * Very high risk surveillance from the record page (issue 5, item 2): record a referral (risk group, when
 * surveillance began, her radiotherapy for the radiotherapy groups, who referred her), or take her off it when her
 * risk is reassessed. Her own choice to leave is a ceasing (pages/ceasing.ts), not this.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { nthBirthday } from '../../pathway/dates.js';
import { ROUTINE_END_AGE, VHR_PROTOCOLS, VHR_RISK_GROUPS, VHR_TEST_LABELS } from '../../pathway/eligibility.js';
import { RADIOTHERAPY_AGES } from '../../pathway/vhr-referral.js';
import type { Db } from '../../store/database.js';
import { ConflictError, RulesRefusedError } from '../../store/errors.js';
import { endVeryHighRisk, referForVeryHighRisk } from '../../store/very-high-risk.js';
import { actorOf, pageNeeds } from '../auth.js';
import { dateFromParts, dateParts, problemsByField, type FieldErrors } from '../forms.js';
import { page, redirectWithMessage } from '../render.js';
import { participantById, type Participant } from './ceasing.js';

type Body = Record<string, string | undefined>;

const REFERRAL_FIELDS: [RegExp, string][] = [
  [/^Choose her risk group/, 'riskGroup'],
  [/date surveillance began/i, 'since-day'],
  [/radiotherapy/i, 'radiotherapyOn-day'],
  [/^Say who referred/, 'referredBy'],
];
const END_FIELDS: [RegExp, string][] = [[/^Give the reason/, 'endReason']];

/** Each group with when its surveillance starts and which test at which age, for the radios' hints. */
const GROUPS = VHR_RISK_GROUPS.map((g) => {
  const { label, bands, yearsAfterRadiotherapy } = VHR_PROTOCOLS[g];
  const tests = bands.map((b) => `${VHR_TEST_LABELS[b.test]} from ${b.fromAge}`).join('; ');
  const ages = RADIOTHERAPY_AGES[g];
  const after = yearsAfterRadiotherapy ? `, and no sooner than ${yearsAfterRadiotherapy} years after radiotherapy` : '';
  return { value: g, text: label, hint: `${tests}${after}.`, radiotherapy: ages !== undefined };
});

export function registerVeryHighRiskPages(app: FastifyInstance, db: Db): void {
  const canEdit = { preHandler: pageNeeds('participant.edit') };

  const show = (request: FastifyRequest, reply: FastifyReply, p: Participant, values: Body, errors: FieldErrors) =>
    page(request, reply, 'very-high-risk.njk', {
      title: 'Very high risk screening',
      back: { href: `/participants/${p.id}` },
      p,
      values,
      errors,
      groups: GROUPS,
      endsOn: nthBirthday(p.date_of_birth, ROUTINE_END_AGE),
    });

  app.get('/participants/:id/very-high-risk', canEdit, async (request, reply) => {
    const p = await participantById(db, (request.params as { id: string }).id);
    if (!p) return reply.callNotFound();
    return show(
      request,
      reply,
      p,
      {
        version: String(p.version),
        riskGroup: p.vhr_risk_group ?? undefined,
        ...dateParts('since', p.vhr_since ?? app.today()),
        ...dateParts('radiotherapyOn', p.vhr_radiotherapy_on),
      },
      {},
    );
  });

  /** Runs a change, turning refusals into the form's errors (400) and a stale form into 409. */
  async function attempt(
    request: FastifyRequest,
    reply: FastifyReply,
    p: Participant,
    body: Body,
    fields: [RegExp, string][],
    change: () => Promise<string[]>,
    done: string,
  ) {
    try {
      const changed = await change();
      return redirectWithMessage(reply, `/participants/${p.id}`, changed.length > 0 ? done : 'Nothing changed.');
    } catch (error) {
      if (error instanceof RulesRefusedError)
        return show(request, reply.code(400), p, body, problemsByField(error.problems, fields));
      if (error instanceof ConflictError) return show(request, reply.code(409), p, body, { form: error.message });
      throw error;
    }
  }

  app.post('/participants/:id/very-high-risk', canEdit, async (request, reply) => {
    const p = await participantById(db, (request.params as { id: string }).id);
    if (!p) return reply.callNotFound();
    const body = (request.body ?? {}) as Body;
    const today = app.today();
    const since = dateFromParts(body, 'since', 'The date surveillance began', { required: true, past: true, today });
    const radiotherapy = dateFromParts(body, 'radiotherapyOn', 'The date of radiotherapy', {
      required: false,
      past: true,
      today,
    });
    if (since.error || !since.value || radiotherapy.error) {
      const errors: FieldErrors = {};
      if (since.error || !since.value) errors['since-day'] = since.error ?? 'Enter the date surveillance began';
      if (radiotherapy.error) errors['radiotherapyOn-day'] = radiotherapy.error;
      return show(request, reply.code(400), p, body, errors);
    }
    const input = {
      participantId: p.id,
      expectedVersion: Number(body.version),
      riskGroup: body.riskGroup ?? '',
      since: since.value,
      radiotherapyOn: radiotherapy.value,
      referredBy: body.referredBy ?? '',
    };
    return attempt(
      request,
      reply,
      p,
      body,
      REFERRAL_FIELDS,
      () => referForVeryHighRisk(db, input, actorOf(request), today),
      'Very high risk screening recorded: her next test is shown below.',
    );
  });

  app.post('/participants/:id/very-high-risk/end', canEdit, async (request, reply) => {
    const p = await participantById(db, (request.params as { id: string }).id);
    if (!p) return reply.callNotFound();
    const body = (request.body ?? {}) as Body;
    const input = { participantId: p.id, expectedVersion: Number(body.version), reason: body.endReason ?? '' };
    return attempt(
      request,
      reply,
      p,
      { ...body, ...dateParts('since', p.vhr_since ?? app.today()), riskGroup: p.vhr_risk_group ?? undefined },
      END_FIELDS,
      () => endVeryHighRisk(db, input, actorOf(request), app.today()),
      'Taken off very high risk screening: she is screened routinely in the routine ages.',
    );
  });
}
