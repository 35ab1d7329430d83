import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { formatLongDate } from '../../pathway/dates.js';
import { assessmentDeadline, ASSESSMENT_WITHIN_DAYS, TECHNICAL_RECALL_WITHIN_DAYS } from '../../pathway/results.js';
import { can } from '../../pathway/staff-roles.js';
import { EXAM_RESULT_LABELS, OPINION_LABELS } from '../../pathway/screening-outcomes.js';
import { RuleError } from '../../store/errors.js';
import { issueResult, issueResults, resultsToIssue, RESULTS_SHOWN, type IssuedResult } from '../../store/results.js';
import type { HubOptions } from '../app.js';
import { actorOf, pageNeeds } from '../auth.js';
import type { FieldErrors } from '../forms.js';
import { page, redirectWithMessage } from '../render.js';
import { dateTime } from '../templates.js';

/**
 * Results (issue 6, item 2): the exams whose reading is decided, oldest first, to issue one at a time or all at
 * once; how many still wait for reads; and the latest issued, with what was booked or why nothing could be. The
 * store refuses a result whose reading is not decided, whatever the page showed. Needs result.issue.
 */
export function registerResultPages(app: FastifyInstance, options: HubOptions): void {
  const { db } = options;
  const policy = options.arbitration ?? 'discordant';
  const canIssue = { preHandler: pageNeeds('result.issue') };

  async function resultsPage(request: FastifyRequest, reply: FastifyReply, errors: FieldErrors) {
    // What is shown is what resultsToIssue audited, recent results included.
    const toIssue = await resultsToIssue(db, policy, actorOf(request));
    return page(request, reply, 'results.njk', {
      title: 'Results',
      ...toIssue,
      decided: toIssue.decided.map((d) => ({ ...d, deadline: assessmentDeadline(d.screenedOn) })),
      canAssess: request.user ? can(request.user.role, 'assessment.record') : false,
      errors,
      shownLimit: RESULTS_SHOWN,
      opinionLabels: OPINION_LABELS,
      resultLabels: EXAM_RESULT_LABELS,
      assessmentDays: ASSESSMENT_WITHIN_DAYS,
      technicalDays: TECHNICAL_RECALL_WITHIN_DAYS,
    });
  }

  app.get('/results', canIssue, async (request, reply) => resultsPage(request, reply, {}));

  app.post('/results/:id/issue', canIssue, async (request, reply) => {
    const { id } = request.params as { id: string };
    if (!z.uuid().safeParse(id).success) return reply.callNotFound();
    try {
      const issued = await issueResult(db, { appointmentId: id, policy }, actorOf(request), app.today());
      return redirectWithMessage(reply, '/results', issuedMessage(issued));
    } catch (error) {
      // Not decided (reads disagree without arbitration, fewer than two reads): nothing was issued.
      if (error instanceof RuleError)
        return resultsPage(request, reply.code(422), { decided: `Not issued: ${error.message}.` });
      throw error;
    }
  });

  app.post('/results/issue', canIssue, async (request, reply) => {
    const body = (request.body ?? {}) as Record<string, unknown>;
    const raw = body.appointmentId;
    const ids = (Array.isArray(raw) ? raw : raw === undefined ? [] : [raw]).filter(
      (v): v is string => typeof v === 'string' && z.uuid().safeParse(v).success,
    );
    if (ids.length === 0) return resultsPage(request, reply.code(400), { decided: 'There are no results to issue' });
    const outcome = await issueResults(db, { appointmentIds: ids, policy }, actorOf(request), app.today());
    const parts = [
      `${outcome.issued.length} result${outcome.issued.length === 1 ? '' : 's'} issued.`,
      outcome.already.length > 0
        ? `${outcome.already.length} had been issued already: nothing was changed for ${outcome.already.length === 1 ? 'it' : 'them'}.`
        : '',
      ...followUpWarnings(outcome.issued),
      outcome.refused.length > 0
        ? `${outcome.refused.length} not issued: ${[...new Set(outcome.refused.map((r) => r.message))].slice(0, 3).join('; ')}.`
        : '',
    ];
    return redirectWithMessage(reply, '/results', parts.filter(Boolean).join(' '));
  });
}

function followUpWarnings(issued: IssuedResult[]): string[] {
  const problems = issued.filter((i) => i.followUpProblem);
  const notes = issued.filter((i) => i.notes.length > 0);
  return [
    problems.length > 0
      ? `No appointment could be booked for ${problems.map((p) => p.name).join(', ')}: see "Issued recently" below.`
      : '',
    ...notes.map((n) => `${n.name}: ${n.notes.join('; ')}.`),
  ];
}

/** What the one-off message after issuing says: the result, what was booked (or why not), what was queued. */
function issuedMessage(issued: IssuedResult): string {
  if (issued.alreadyIssued)
    return `The result for ${issued.name} was already issued on ${dateTime(issued.issuedAt)}: nothing was changed.`;
  const label = EXAM_RESULT_LABELS[issued.result];
  const next = issued.nextTestDue
    ? ` Next test due ${formatLongDate(issued.nextTestDue)}.`
    : issued.followUp
      ? ` Booked: ${formatLongDate(issued.followUp.clinicDate)} at ${issued.followUp.time}, ${issued.followUp.siteName} (${issued.followUp.locationName}).`
      : issued.followUpProblem
        ? ` No appointment booked: ${issued.followUpProblem}.`
        : '';
  const queued =
    issued.notes.length > 0 ? ` ${issued.notes.join('. ')}.` : ' Her letter and the message to her GP are queued.';
  return `${label} issued for ${issued.name}.${next}${queued}`;
}
