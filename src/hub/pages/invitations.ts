import type { FastifyInstance } from 'fastify';
import { MONTH_NAMES } from '../../pathway/dates.js';
import { EXCLUSION_LABELS, type ExclusionCode } from '../../pathway/invitation-selection.js';
import { recordAudit } from '../../store/audit.js';
import type { Db } from '../../store/database.js';
import { previewBatch, type BatchCriterion } from '../../store/invitation-batches.js';
import { actorOf, pageNeeds } from '../auth.js';
import { dateFromParts, type FieldErrors } from '../forms.js';
import { page } from '../render.js';

const OUTCODE = /^[A-Z]{1,2}[0-9][A-Z0-9]?$/;
/** Rows shown in each table; the counts cover everyone. */
const SHOWN = 500;

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

export function registerInvitationPages(app: FastifyInstance, db: Db): void {
  const canPlan = { preHandler: pageNeeds('invitation.plan') };

  app.get('/invitations/batch', canPlan, async (request, reply) => {
    const query = (request.query ?? {}) as Record<string, string>;
    const [offices, practices] = await Promise.all([
      db.selectFrom('screening_office').select(['code', 'name']).orderBy('name').execute(),
      db.selectFrom('gp_practice').select(['ods_code', 'name', 'bso_code']).orderBy('name').execute(),
    ]);
    const view = { title: 'Invitation batch', offices, practices, months: MONTH_NAMES, values: query };
    if (query.by === undefined) return page(request, reply, 'invitation-batch.njk', { ...view, errors: {} });
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
    });
  });
}
