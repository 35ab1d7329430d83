import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { LETTER_FORMAT_LABELS } from '../../pathway/invitation-letters.js';
import { COMMUNICATION_KIND_LABELS, COMMUNICATION_STATUS_LABELS } from '../../pathway/screening-outcomes.js';
import { recordAudit } from '../../store/audit.js';
import {
  LetterIntegrityError,
  letterPdf,
  printRun,
  printRunPdf,
  queuedLetters,
  recentLetters,
  recentRuns,
  sendLetters,
} from '../../store/letters.js';
import type { HubOptions } from '../app.js';
import { actorOf, pageNeeds } from '../auth.js';
import type { FieldErrors } from '../forms.js';
import { page, redirectWithMessage } from '../render.js';

const LABELS = {
  kind: COMMUNICATION_KIND_LABELS,
  format: LETTER_FORMAT_LABELS,
  status: COMMUNICATION_STATUS_LABELS,
};

const LETTER_FILE = /^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\.pdf$/i;
const RUN = /^(\d{1,15})(\.pdf)?$/;

const sendForm = z.object({ office: z.string().trim().min(1, 'Choose a screening office') });

function sendPdf(reply: FastifyReply, pdf: Uint8Array, filename: string) {
  return reply
    .header('content-type', 'application/pdf')
    .header('content-disposition', `attachment; filename="${filename}"`)
    .send(Buffer.from(pdf));
}

/** A stored letter that no longer renders to what was sent: say so plainly, and never show the wrong letter. */
function integrityProblem(request: FastifyRequest, reply: FastifyReply, error: unknown) {
  if (!(error instanceof LetterIntegrityError)) throw error;
  // Her name is never in the log: the letter is named by its communication id.
  request.log.error({ communicationId: error.communicationId }, error.message);
  return reply
    .code(500)
    .view('error.njk', { title: 'This letter cannot be shown', message: error.message, user: request.user });
}

/**
 * Letters to participants: the queue by kind and format, sending a print run (one PDF of every printed letter; braille,
 * audio and translations go to their service), recent runs and letters with their PDFs, and letters not sent with
 * the reason. Sending needs letters.send; anyone who can see her record (participant.view) can download her letters.
 * GP messages are on their own page (/communications/gp-messages).
 */
export function registerCommunicationPages(app: FastifyInstance, options: HubOptions): void {
  const db = options.db;

  app.get('/communications', { preHandler: pageNeeds('letters.send') }, async (request, reply) => {
    const query = (request.query ?? {}) as Record<string, string>;
    const offices = await db.selectFrom('screening_office').select(['code', 'name']).orderBy('name').execute();
    const code = query.office ?? (offices.length === 1 ? offices[0]!.code : '');
    const office = offices.find((o) => o.code === code);
    const view = { title: 'Letters', offices, values: { office: code }, labels: LABELS };
    if (!office) {
      const errors: FieldErrors = query.office !== undefined ? { office: 'Choose a screening office' } : {};
      return page(request, reply.code(query.office !== undefined ? 400 : 200), 'communications.njk', {
        ...view,
        errors,
      });
    }
    const [queue, runs, sent, failed] = await Promise.all([
      queuedLetters(db, { office: office.code, today: app.today() }),
      recentRuns(db, office.code),
      recentLetters(db, office.code, 'sent'),
      recentLetters(db, office.code, 'failed'),
    ]);
    const waiting = queue.letters.filter((l) => l.block);
    await recordAudit(db, actorOf(request), {
      action: 'letters.view',
      entityType: 'communication',
      detail: {
        office: office.code,
        queued: queue.letters.length,
        waiting: waiting.map((l) => l.id),
        sent: sent.map((l) => l.id),
        failed: failed.map((l) => l.id),
      },
    });
    return page(request, reply, 'communications.njk', {
      ...view,
      errors: {},
      office,
      counts: queue.counts,
      ready: queue.letters.length - waiting.length,
      waiting,
      runs,
      sent,
      failed,
    });
  });

  app.post('/communications/send', { preHandler: pageNeeds('letters.send') }, async (request, reply) => {
    const parsed = sendForm.safeParse(request.body ?? {});
    const offices = await db.selectFrom('screening_office').select(['code', 'name']).orderBy('name').execute();
    const office = parsed.success ? offices.find((o) => o.code === parsed.data.office) : undefined;
    if (!office)
      return page(request, reply.code(422), 'communications.njk', {
        title: 'Letters',
        offices,
        values: { office: '' },
        labels: LABELS,
        errors: { office: 'Choose a screening office' },
      });
    const result = await sendLetters(db, { office: office.code }, actorOf(request), app.today());
    const back = `/communications?office=${encodeURIComponent(office.code)}`;
    const sent = result.printed.length + result.services.length;
    const notSent = result.failed.length + result.held.length;
    const tail = notSent > 0 ? ` ${notSent} not sent: see below.` : '';
    if (result.runId === null)
      return redirectWithMessage(
        reply,
        back,
        sent === 0 && notSent === 0 ? 'No letters were waiting to be sent.' : `No letters sent.${tail}`,
      );
    return redirectWithMessage(
      reply,
      `/communications/runs/${result.runId}?office=${encodeURIComponent(office.code)}`,
      `${sent} of ${sent + notSent + result.skipped} letters sent: ${result.printed.length} to print, ${result.services.length} to a transcription or translation service.${notSent > 0 ? ` ${notSent} not sent: see the Letters page.` : ''}`,
    );
  });

  app.get('/communications/runs/:run', { preHandler: pageNeeds('letters.send') }, async (request, reply) => {
    const match = RUN.exec((request.params as { run: string }).run);
    if (!match) return reply.callNotFound();
    const runId = Number(match[1]);
    if (match[2]) {
      try {
        const { pdf, filename } = await printRunPdf(db, runId, actorOf(request));
        return sendPdf(reply, pdf, filename);
      } catch (error) {
        return integrityProblem(request, reply, error);
      }
    }
    const run = await printRun(db, runId);
    await recordAudit(db, actorOf(request), {
      action: 'letters.view_run',
      entityType: 'communication',
      detail: { runId, ids: [...run.printed, ...run.services].map((l) => l.id) },
    });
    const office = ((request.query ?? {}) as Record<string, string>).office ?? '';
    return page(request, reply, 'communications-run.njk', {
      title: 'Print run',
      run,
      labels: LABELS,
      back: { href: `/communications${office ? `?office=${encodeURIComponent(office)}` : ''}`, text: 'Letters' },
    });
  });

  app.get('/communications/letters/:file', { preHandler: pageNeeds('participant.view') }, async (request, reply) => {
    const match = LETTER_FILE.exec((request.params as { file: string }).file);
    if (!match) return reply.callNotFound();
    try {
      const { pdf, filename } = await letterPdf(db, match[1]!.toLowerCase(), actorOf(request));
      return sendPdf(reply, pdf, filename);
    } catch (error) {
      return integrityProblem(request, reply, error);
    }
  });
}
