import { randomBytes } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { NO_OFFER_LABELS } from '../../pathway/appointment-offers.js';
import { MONTH_NAMES } from '../../pathway/dates.js';
import { LETTER_FORMAT_LABELS, type LetterFormat } from '../../pathway/invitation-letters.js';
import { EXCLUSION_LABELS, type ExclusionCode } from '../../pathway/invitation-selection.js';
import { recordAudit } from '../../store/audit.js';
import type { Db } from '../../store/database.js';
import { previewBatch, type BatchCriterion } from '../../store/invitation-batches.js';
import {
  batchResult,
  createBatch,
  horizonFor,
  issueLetters,
  planBatch,
  recentBatches,
  sendBatch,
} from '../../store/invitation-sending.js';
import { actorOf, pageNeeds } from '../auth.js';
import { dateFromParts, type FieldErrors } from '../forms.js';
import { page, redirectWithMessage } from '../render.js';
import { SELF_BOOKING_PATH } from './self-booking.js';

function describeCriterion(c: BatchCriterion): string {
  if (c.kind === 'gp_practice') return `GP practice ${c.odsCode}`;
  if (c.kind === 'outcode') return `Outcode ${c.outcode}`;
  return `Born in ${MONTH_NAMES[c.month - 1] ?? c.month}`;
}

const OUTCODE = /^[A-Z]{1,2}[0-9][A-Z0-9]?$/;
/** Rows shown in each table; the counts cover everyone. */
const SHOWN = 500;
/** Batches listed on the batch page, newest first. */
const RECENT_BATCHES = 20;

/** Reads the batch form: the office, how the batch is drawn, and its date; errors keyed by field. */
function batchFrom(query: Record<string, string>, offices: Set<string>, practices: Map<string, string>, today: string) {
  const errors: FieldErrors = {};
  const bsoCode = query.bsoCode ?? '';
  if (!offices.has(bsoCode)) errors.bsoCode = 'Choose the screening office';
  let criterion: BatchCriterion | undefined;
  if (query.by === 'gp_practice') {
    const office = practices.get(query.odsCode ?? '');
    if (!office) errors.odsCode = 'Choose a GP practice';
    else if (office !== bsoCode && !errors.bsoCode)
      errors.odsCode = "That GP practice is in another office's area: choose one of this office's";
    else criterion = { kind: 'gp_practice', odsCode: query.odsCode! };
  } else if (query.by === 'outcode') {
    const outcode = (query.outcode ?? '').replace(/\s/g, '').toUpperCase();
    if (!OUTCODE.test(outcode)) errors.outcode = 'Enter the first half of a postcode, like LS1 or SW1A';
    else criterion = { kind: 'outcode', outcode };
  } else if (query.by === 'birth_month') {
    const month = Number(query.month);
    if (!Number.isInteger(month) || month < 1 || month > 12) errors.month = 'Choose a month of birth';
    else criterion = { kind: 'birth_month', month };
  } else errors.by = 'Choose how to draw the batch';
  const batchDate = dateFromParts(query, 'batchDate', 'The first appointment date', { required: true, today });
  if (batchDate.error) errors['batchDate-day'] = batchDate.error;
  else if (batchDate.value && batchDate.value < today)
    errors['batchDate-day'] = 'The first appointment date must be today or later';
  return Object.keys(errors).length === 0 && criterion && batchDate.value
    ? { request: { bsoCode, criterion, batchDate: batchDate.value }, errors }
    : { errors };
}

/** The batch form's fields, to carry from the preview to the confirm page and into the send form. */
const FORM_FIELDS = [
  'bsoCode',
  'by',
  'odsCode',
  'outcode',
  'month',
  'batchDate[day]',
  'batchDate[month]',
  'batchDate[year]',
];
const formFields = (values: Record<string, string>) =>
  FORM_FIELDS.filter((name) => values[name] !== undefined && values[name] !== '').map((name) => ({
    name,
    value: values[name],
  }));

/** Where a woman books online, as printed on her letter. */
const bookingAddress = (request: FastifyRequest) => `${request.protocol}://${request.host}${SELF_BOOKING_PATH}`;

async function batchChoices(db: Db) {
  const [offices, practices] = await Promise.all([
    db.selectFrom('screening_office').select(['code', 'name']).orderBy('name').execute(),
    db.selectFrom('gp_practice').select(['ods_code', 'name', 'bso_code']).orderBy('name').execute(),
  ]);
  return { offices, practices };
}

function letterCounts(formats: Iterable<LetterFormat>) {
  const counts = new Map<LetterFormat, number>();
  for (const f of formats) counts.set(f, (counts.get(f) ?? 0) + 1);
  return [...counts].map(([format, n]) => ({ label: LETTER_FORMAT_LABELS[format], n }));
}

export function registerInvitationPages(app: FastifyInstance, db: Db): void {
  const canPlan = { preHandler: pageNeeds('invitation.plan') };

  /** Reads and checks the batch form (from a query or a posted form): the request, or the form with its errors. */
  async function readBatch(values: Record<string, string>) {
    const { offices, practices } = await batchChoices(db);
    const { request: batch, errors } = batchFrom(
      values,
      new Set(offices.map((o) => o.code)),
      new Map(practices.map((p) => [p.ods_code, p.bso_code])),
      app.today(),
    );
    return { batch, errors, offices, practices };
  }

  app.get('/invitations/batch/send', canPlan, async (request, reply) => {
    const query = (request.query ?? {}) as Record<string, string>;
    const { batch, errors, offices, practices } = await readBatch(query);
    if (!batch)
      return page(request, reply.code(400), 'invitation-batch.njk', {
        title: 'Invitation batch',
        offices,
        practices,
        months: MONTH_NAMES,
        values: query,
        errors,
      });
    const toSend = { ...batch, horizonDate: horizonFor(batch.batchDate) };
    const planned = await planBatch(db, toSend, app.today());
    const names = new Map(planned.selected.map((c) => [c.id, c]));
    const notOffered = [...planned.plan.noOffer, ...planned.alreadyBooked].map((n) => ({
      ...n,
      label: planned.alreadyBooked.includes(n) ? 'Already booked' : NO_OFFER_LABELS[n.code],
      candidate: names.get(n.participantId),
    }));
    await recordAudit(db, actorOf(request), {
      action: 'invitations.preview',
      entityType: 'invitation_batch',
      detail: { ...toSend, stage: 'confirm', offers: planned.plan.offers.length, notOffered: notOffered.length },
    });
    return page(request, reply, 'invitation-batch-send.njk', {
      title: 'Send invitations',
      back: { href: `/invitations/batch?${new URLSearchParams(query).toString()}#results` },
      batch: toSend,
      office: offices.find((o) => o.code === batch.bsoCode),
      counts: {
        selected: planned.selected.length,
        offers: planned.plan.offers.length,
        notOffered: notOffered.length,
        excluded: planned.excluded.length,
      },
      notOffered,
      letters: letterCounts(planned.plan.offers.map((o) => planned.letters.get(o.participantId)!.format)),
      fields: formFields(query),
      requestKey: randomBytes(16).toString('hex'),
    });
  });

  app.post('/invitations/batch/send', canPlan, async (request, reply) => {
    const body = (request.body ?? {}) as Record<string, string>;
    const { batch } = await readBatch(body);
    const requestKey = body.requestKey ?? '';
    if (!batch || !/^[0-9a-f]{32}$/.test(requestKey))
      return reply.code(400).view('error.njk', {
        title: 'There is a problem',
        message: 'This form is not complete. Go back to the invitation batch and try again.',
        user: request.user,
      });
    const actor = actorOf(request);
    const batchId = await createBatch(db, { ...batch, horizonDate: horizonFor(batch.batchDate) }, requestKey, actor);
    const counts = await sendBatch(db, batchId, actor, app.today());
    return redirectWithMessage(
      reply,
      `/invitations/batches/${batchId}`,
      `Invitations sent: ${counts.offered} offered an appointment, ${counts.noClinic} with no suitable clinic`,
    );
  });

  app.get('/invitations/batches/:id', canPlan, async (request, reply) => {
    const { id } = request.params as { id: string };
    if (!/^[0-9a-f-]{36}$/.test(id)) return reply.callNotFound();
    const result = await batchResult(db, id);
    await recordAudit(db, actorOf(request), {
      action: 'invitations.view',
      entityType: 'invitation_batch',
      entityId: id,
      detail: { offered: result.offered.length, noClinic: result.noClinic.length },
    });
    return page(request, reply, 'invitation-batch-result.njk', {
      title: 'Invitations sent',
      ...result,
      criterion: describeCriterion(result.batch.criterion),
      letters: letterCounts(result.offered.map((i) => i.letter_format)),
      formatLabels: LETTER_FORMAT_LABELS,
    });
  });

  app.post('/invitations/batches/:id/letters', canPlan, async (request, reply) => {
    const { id } = request.params as { id: string };
    if (!/^[0-9a-f-]{36}$/.test(id)) return reply.callNotFound();
    const { batch, letters } = await issueLetters(db, id, actorOf(request), bookingAddress(request));
    reply.header('cache-control', 'no-store');
    return page(request, reply, 'letters.njk', {
      title: 'Invitation letters',
      back: { href: `/invitations/batches/${id}`, text: 'Back to the batch' },
      batch,
      letters,
    });
  });

  app.get('/invitations/batch', canPlan, async (request, reply) => {
    const query = (request.query ?? {}) as Record<string, string>;
    const [offices, practices] = await Promise.all([
      db.selectFrom('screening_office').select(['code', 'name']).orderBy('name').execute(),
      db.selectFrom('gp_practice').select(['ods_code', 'name', 'bso_code']).orderBy('name').execute(),
    ]);
    const view = { title: 'Invitation batch', offices, practices, months: MONTH_NAMES, values: query };
    if (query.by === undefined) {
      const sent = (await recentBatches(db, RECENT_BATCHES)).map((b) => ({
        ...b,
        criterion: describeCriterion(b.criterion),
      }));
      return page(request, reply, 'invitation-batch.njk', { ...view, errors: {}, sent });
    }
    const { request: batch, errors } = batchFrom(
      query,
      new Set(offices.map((o) => o.code)),
      new Map(practices.map((p) => [p.ods_code, p.bso_code])),
      app.today(),
    );
    if (!batch) return page(request, reply.code(400), 'invitation-batch.njk', { ...view, errors });
    const preview = await previewBatch(db, batch);
    await recordAudit(db, actorOf(request), {
      action: 'invitations.preview',
      entityType: 'invitation_batch',
      detail: { ...batch, selected: preview.selected.length, excluded: preview.excluded.length },
    });
    const firstCalls = preview.selected.filter((c) => c.selection.selected && c.selection.basis === 'first_call');
    return page(request, reply, 'invitation-batch.njk', {
      ...view,
      errors,
      batch,
      selected: preview.selected.slice(0, SHOWN),
      excluded: preview.excluded.slice(0, SHOWN),
      counts: {
        selected: preview.selected.length,
        firstCalls: firstCalls.length,
        recalls: preview.selected.length - firstCalls.length,
        excluded: preview.excluded.length,
      },
      excludedBy: (Object.entries(preview.excludedBy) as [ExclusionCode, number][]).map(([code, n]) => ({
        label: EXCLUSION_LABELS[code],
        n,
      })),
      labels: EXCLUSION_LABELS,
      shown: SHOWN,
      sendQuery: new URLSearchParams(
        formFields(query).map((f): [string, string] => [f.name, f.value ?? '']),
      ).toString(),
    });
  });
}
