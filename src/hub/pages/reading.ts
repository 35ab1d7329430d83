/**
 * Reading (issue 6, item 1): a film reader's worklist of exams (oldest screened first, in sessions of 25, 50, 100 or
 * all), the reading page of one exam with its link to the PACS viewer, deferral, and the reader's own figures.
 * Blind double reading is the store's (src/store/reading.ts): the page shows only what readingSummary returns for
 * the signed-in reader, and the store numbers the read. Every page showing an exam is audited. Needs reading.read.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import {
  DEFAULT_PACS_VIEWER_URL,
  describeOpinion,
  EPISODE_TYPE_LABELS,
  opinionFromForm,
  pacsViewerUrl,
  priorImagesStatus,
  READER_QA_ANNUAL_READS,
} from '../../pathway/reading.js';
import { itemKind } from '../../pathway/record-items.js';
import {
  LESION_LABELS,
  LESIONS,
  OPINION_LABELS,
  OPINIONS,
  PRIOR_IMAGES_LABELS,
  TECHNICAL_REASON_LABELS,
  TECHNICAL_REASONS,
  VIEWS,
} from '../../pathway/screening-outcomes.js';
import { recordAudit } from '../../store/audit.js';
import { RuleError } from '../../store/errors.js';
import {
  deferExam,
  nextExamFor,
  readerStatistics,
  readingSummary,
  readingWorklist,
  recordOpinion,
  resumeExam,
  type ReadingSummary,
  type WorklistExam,
} from '../../store/reading.js';
import type { HubOptions } from '../app.js';
import { actorOf, pageNeeds } from '../auth.js';
import type { FieldErrors } from '../forms.js';
import { page, redirectWithMessage } from '../render.js';

type Body = Record<string, string | string[] | undefined>;

/** The batch sizes a reader picks for a session; 'all' lists every exam waiting for them. */
export const BATCH_SIZES = ['25', '50', '100', 'all'] as const;
type Batch = (typeof BATCH_SIZES)[number];
const batchOf = (value: unknown): Batch =>
  (BATCH_SIZES as readonly unknown[]).includes(value) ? (value as Batch) : '25';

const STAGE_LABELS = { first_read: 'First read', second_read: 'Second read', arbitration: 'Arbitration' } as const;
const READ_LABELS = { 1: 'First read', 2: 'Second read', 3: 'Arbitration' } as const;

/** A reading session in progress: its batch and how many exams have been read in it. */
interface Session {
  batch: Batch;
  done: number;
}
function sessionOf(source: Body): Session | null {
  const batch = typeof source.session === 'string' ? source.session : '';
  if (!(BATCH_SIZES as readonly string[]).includes(batch)) return null;
  const done = Number(source.done);
  return { batch: batch as Batch, done: Number.isInteger(done) && done >= 0 ? done : 0 };
}
const sessionQuery = (s: Session | null) => (s ? `session=${s.batch}&done=${s.done}` : '');

const percent = (value: number | null) => (value === null ? 'None read' : `${(value * 100).toFixed(1)}%`);

export function registerReadingPages(app: FastifyInstance, options: HubOptions): void {
  const db = options.db;
  const policy = options.arbitration ?? 'discordant';
  const viewerTemplate = process.env.PACS_VIEWER_URL || DEFAULT_PACS_VIEWER_URL;
  const canRead = { preHandler: pageNeeds('reading.read') };
  const viewerUrl = (e: { studyInstanceUid: string | null; accessionNumber: string }) =>
    pacsViewerUrl(viewerTemplate, e);
  const priorLabel = (e: Pick<WorklistExam, 'priorImages' | 'episodeType'>) =>
    PRIOR_IMAGES_LABELS[priorImagesStatus(e.priorImages, e.episodeType)];

  app.get('/reading', canRead, async (request, reply) => {
    const query = (request.query ?? {}) as Body;
    const batch = batchOf(query.batch);
    const readerId = request.user!.id;
    const [worklist, statistics] = await Promise.all([
      readingWorklist(db, readerId, { policy, limit: batch === 'all' ? null : Number(batch) }),
      readerStatistics(db, readerId, app.today()),
    ]);
    await recordAudit(db, actorOf(request), {
      action: 'reading.worklist',
      entityType: 'appointment',
      // The exams on the page, by id (compact: no names or NHS numbers in the audit).
      detail: {
        batch,
        waiting: worklist.waiting,
        appointmentIds: worklist.exams.map((e) => e.appointmentId),
        deferredAppointmentIds: worklist.deferred.map((d) => d.appointmentId),
      },
    });
    return page(request, reply, 'reading.njk', {
      title: 'Reading',
      batch,
      batches: BATCH_SIZES,
      worklist,
      exams: worklist.exams.map((e) => ({
        ...e,
        episodeTypeLabel: EPISODE_TYPE_LABELS[e.episodeType],
        priorImagesLabel: priorLabel(e),
        stageLabel: STAGE_LABELS[e.stage],
        viewerUrl: viewerUrl(e),
      })),
      readThisYear: statistics.thisYear.reads,
      qa: READER_QA_ANNUAL_READS,
    });
  });

  // The next exam of a session (or of the reader's list), or back to the worklist when none is left.
  app.get('/reading/next', canRead, async (request, reply) => {
    const session = sessionOf((request.query ?? {}) as Body);
    if (session && session.batch !== 'all' && session.done >= Number(session.batch))
      return redirectWithMessage(reply, '/reading', `Session finished: you read ${session.done} exams.`);
    const next = await nextExamFor(db, request.user!.id, policy);
    if (!next)
      return redirectWithMessage(
        reply,
        '/reading',
        session?.done
          ? `No more exams are waiting for you. You read ${session.done} in this session.`
          : 'No exams are waiting for you.',
      );
    return reply.redirect(`/reading/${next}${session ? `?${sessionQuery(session)}` : ''}`, 303);
  });

  app.get('/reading/me', canRead, async (request, reply) => {
    const statistics = await readerStatistics(db, request.user!.id, app.today());
    const period = (p: typeof statistics.thisYear) => ({
      ...p,
      recallRateText: percent(p.recallRate),
      technicalRecallRateText: percent(p.technicalRecallRate),
    });
    return page(request, reply, 'reading-me.njk', {
      title: 'Your reading figures',
      back: { href: '/reading', text: 'Reading worklist' },
      thisYear: period(statistics.thisYear),
      last12Months: period(statistics.last12Months),
      arbitration: { ...statistics.arbitration, agreementRateText: percent(statistics.arbitration.agreementRate) },
      qa: statistics.qaAnnualReads,
      qaShortfall: Math.max(0, statistics.qaAnnualReads - statistics.last12Months.reads),
    });
  });

  async function examPage(
    request: FastifyRequest,
    reply: FastifyReply,
    appointmentId: string,
    values: Body,
    errors: FieldErrors,
  ) {
    const readerId = request.user!.id;
    const summary = await readingSummary(db, appointmentId, readerId, policy);
    if (!summary) return reply.callNotFound();
    await recordAudit(db, actorOf(request), {
      action: 'reading.view',
      entityType: 'appointment',
      entityId: summary.appointmentId,
      participantId: summary.participant.id,
      detail: {
        stage: summary.stage,
        readNumber: 'readNumber' in summary.next ? summary.next.readNumber : null,
        readsShown: summary.reads.map((r) => r.readNumber),
      },
    });
    return page(request, reply, 'reading-exam.njk', {
      title: `Read the exam of ${summary.participant.givenName} ${summary.participant.familyName}`,
      back: { href: '/reading', text: 'Reading worklist' },
      ...examView(summary, readerId),
      session: sessionOf(values),
      values,
      chosenViews: Array.isArray(values.views) ? values.views : values.views ? [values.views] : [],
      errors,
    });
  }

  function examView(summary: ReadingSummary, readerId: string) {
    const readNumber = 'readNumber' in summary.next ? summary.next.readNumber : null;
    const reads = summary.reads.map((r) => ({
      ...r,
      label: READ_LABELS[r.readNumber],
      lines: describeOpinion(r.opinion, r.details),
    }));
    return {
      exam: summary,
      readNumber,
      readLabel: readNumber ? READ_LABELS[readNumber] : null,
      refused: 'refused' in summary.next ? summary.next.refused : null,
      episodeTypeLabel: EPISODE_TYPE_LABELS[summary.episodeType],
      priorImagesLabel: priorLabel(summary),
      viewerUrl: viewerUrl(summary),
      clinicalHistory: summary.clinicalHistory.map((i) => ({ ...i, label: itemKind(i.kind)?.label ?? i.kind })),
      // Their own read, and (only for the arbiter: the store returns no others) the blind reads to arbitrate.
      ownRead: reads.find((r) => r.readerId === readerId) ?? null,
      otherReads: reads.filter((r) => r.readerId !== readerId),
      opinionItems: OPINIONS.map((o) => ({ value: o, text: OPINION_LABELS[o] })),
      views: VIEWS,
      reasonItems: TECHNICAL_REASONS.map((r) => ({ value: r, text: TECHNICAL_REASON_LABELS[r] })),
      lesionItems: LESIONS.map((l) => ({ value: l, text: LESION_LABELS[l] })),
    };
  }

  const idOf = (request: FastifyRequest) => {
    const { appointmentId } = request.params as { appointmentId: string };
    return z.uuid().safeParse(appointmentId).success ? appointmentId : null;
  };

  app.get('/reading/:appointmentId', canRead, async (request, reply) => {
    const id = idOf(request);
    if (!id) return reply.callNotFound();
    return examPage(request, reply, id, (request.query ?? {}) as Body, {});
  });

  app.post('/reading/:appointmentId', canRead, async (request, reply) => {
    const id = idOf(request);
    if (!id) return reply.callNotFound();
    const body = (request.body ?? {}) as Body;
    const { input, problems } = opinionFromForm(body);
    if (!input) {
      const errors: FieldErrors = {};
      for (const p of problems) errors[p.field] ??= p.message;
      return examPage(request, reply.code(400), id, body, errors);
    }
    let readNumber: number;
    try {
      const expected = Number(body.readNumber);
      readNumber = await recordOpinion(
        db,
        {
          appointmentId: id,
          ...input,
          ...(expected === 1 || expected === 2 || expected === 3 ? { expectedReadNumber: expected } : {}),
        },
        actorOf(request),
        policy,
      );
    } catch (error) {
      if (error instanceof RuleError) return examPage(request, reply.code(422), id, body, { form: error.message });
      throw error;
    }
    const session = sessionOf(body);
    const message = `${READ_LABELS[readNumber as 1 | 2 | 3]} saved: ${OPINION_LABELS[input.opinion].toLowerCase()}.`;
    if (!session) return redirectWithMessage(reply, '/reading', message);
    return redirectWithMessage(reply, `/reading/next?${sessionQuery({ ...session, done: session.done + 1 })}`, message);
  });

  app.post('/reading/:appointmentId/defer', canRead, async (request, reply) => {
    const id = idOf(request);
    if (!id) return reply.callNotFound();
    const body = (request.body ?? {}) as Body;
    const reason = typeof body.deferReason === 'string' ? body.deferReason : '';
    try {
      await deferExam(db, { appointmentId: id, reason }, actorOf(request), policy);
    } catch (error) {
      if (error instanceof RuleError)
        return examPage(request, reply.code(error.field === 'form' ? 422 : 400), id, body, {
          [error.field]: error.message,
        });
      throw error;
    }
    const session = sessionOf(body);
    const message = 'Exam deferred: it is off your list until you put it back. Other readers still see it.';
    return redirectWithMessage(reply, session ? `/reading/next?${sessionQuery(session)}` : '/reading', message);
  });

  app.post('/reading/:appointmentId/resume', canRead, async (request, reply) => {
    const id = idOf(request);
    if (!id) return reply.callNotFound();
    const resumed = await resumeExam(db, id, actorOf(request));
    return redirectWithMessage(
      reply,
      '/reading',
      resumed ? 'Exam put back on your list.' : 'That exam was not deferred by you.',
    );
  });
}
