import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import {
  itemKind,
  itemProblems,
  ITEM_KINDS,
  SOURCE_LABELS,
  type ItemCategory,
  type Side,
  type Source,
} from '../../pathway/record-items.js';
import type { Db } from '../../store/database.js';
import { ConflictError, RuleError } from '../../store/errors.js';
import { correctDemographics, DEMOGRAPHIC_FIELDS, type Demographics } from '../../store/participants.js';
import { addItem, correctItem, removeItem, type ItemInput } from '../../store/record-items.js';
import { actorOf, pageNeeds } from '../auth.js';
import { dateFromParts, dateParts, type FieldErrors } from '../forms.js';
import { page, redirectWithMessage } from '../render.js';

const SOURCES = Object.keys(SOURCE_LABELS).filter((s) => s !== 'gateway') as Source[];
const UK_POSTCODE = /^[A-Z]{1,2}[0-9][A-Z0-9]? ?[0-9][A-Z]{2}$/i;
type Body = Record<string, string | undefined>;

function sourceFrom(
  body: Body,
  errors: FieldErrors,
  today: string,
): { source: Source; sourceDate: string } | undefined {
  const source = body.source as Source | undefined;
  if (!source || !SOURCES.includes(source)) errors.source = 'Select where this information came from';
  const date = dateFromParts(body, 'sourceDate', 'The date the source gave it', { required: true, past: true, today });
  if (date.error) errors['sourceDate-day'] = date.error;
  return source && date.value ? { source, sourceDate: date.value } : undefined;
}

async function participantById(db: Db, id: string) {
  if (!z.uuid().safeParse(id).success) return undefined;
  return db.selectFrom('participant').selectAll().where('id', '=', id).executeTakeFirst();
}

const demographicsSchema = z.object({
  given_name: z.string().trim().min(1, 'Enter the given name').max(100, 'Given name must be 100 characters or fewer'),
  family_name: z
    .string()
    .trim()
    .min(1, 'Enter the family name')
    .max(100, 'Family name must be 100 characters or fewer'),
  address_line1: z.string().trim().min(1, 'Enter the first line of the address').max(200),
  address_line2: z
    .string()
    .trim()
    .max(200)
    .transform((v) => v || null),
  town: z
    .string()
    .trim()
    .max(100)
    .transform((v) => v || null),
  postcode: z
    .string()
    .trim()
    .toUpperCase()
    .refine((v) => UK_POSTCODE.test(v), 'Enter a full UK postcode, like LS1 4AP'),
  phone: z
    .string()
    .trim()
    .refine((v) => v === '' || /^[0-9 +()-]{7,20}$/.test(v), 'Enter a phone number, like 0113 496 0000')
    .transform((v) => v || null),
  email: z
    .string()
    .trim()
    .refine(
      (v) => v === '' || z.email().safeParse(v).success,
      'Enter an email address in the right format, like name@example.com',
    )
    .transform((v) => v || null),
  gp_practice_code: z
    .string()
    .trim()
    .transform((v) => v || null),
  reason: z
    .string()
    .trim()
    .max(500)
    .transform((v) => v || null),
  version: z.coerce.number().int().positive(),
});

export function registerRecordPages(app: FastifyInstance, db: Db): void {
  const canEdit = { preHandler: pageNeeds('participant.edit') };

  async function demographicsPage(
    request: FastifyRequest,
    reply: FastifyReply,
    values: Body,
    errors: FieldErrors,
    id: string,
  ) {
    const practices = await db.selectFrom('gp_practice').select(['ods_code', 'name']).orderBy('name').execute();
    return page(request, reply, 'demographics.njk', {
      title: 'Correct personal details',
      back: { href: `/participants/${id}` },
      id,
      values,
      errors,
      practices,
      sources: SOURCES.map((s) => ({ value: s, text: SOURCE_LABELS[s] })),
    });
  }

  app.get('/participants/:id/demographics', canEdit, async (request, reply) => {
    const { id } = request.params as { id: string };
    const p = await participantById(db, id);
    if (!p) return reply.callNotFound();
    const values: Body = {
      ...Object.fromEntries(
        Object.keys(DEMOGRAPHIC_FIELDS).map((f) => [f, (p as Record<string, unknown>)[f] as string | undefined]),
      ),
      ...dateParts('date_of_birth', p.date_of_birth),
      version: String(p.version),
      source: 'staff',
      ...dateParts('sourceDate', app.today()),
    };
    return demographicsPage(request, reply, values, {}, id);
  });

  app.post('/participants/:id/demographics', canEdit, async (request, reply) => {
    const { id } = request.params as { id: string };
    const body = (request.body ?? {}) as Body;
    const p = await participantById(db, id);
    if (!p) return reply.callNotFound();
    const errors: FieldErrors = {};
    const parsed = demographicsSchema.safeParse(body);
    if (!parsed.success) for (const issue of parsed.error.issues) errors[String(issue.path[0])] ??= issue.message;
    const dob = dateFromParts(body, 'date_of_birth', 'Date of birth', {
      required: true,
      past: true,
      today: app.today(),
    });
    if (dob.error) errors['date_of_birth-day'] = dob.error;
    const source = sourceFrom(body, errors, app.today());
    if (parsed.success && parsed.data.gp_practice_code) {
      const known = await db
        .selectFrom('gp_practice')
        .select('ods_code')
        .where('ods_code', '=', parsed.data.gp_practice_code)
        .executeTakeFirst();
      if (!known) errors.gp_practice_code = 'Select a GP practice from the list';
    }
    if (Object.keys(errors).length > 0 || !parsed.success || !source || !dob.value) {
      return demographicsPage(request, reply.code(400), body, errors, id);
    }
    const { reason, version, ...fields } = parsed.data;
    const changes: Partial<Demographics> = { ...fields, date_of_birth: dob.value };
    try {
      const changed = await correctDemographics(
        db,
        { participantId: id, expectedVersion: version, changes, ...source, reason },
        actorOf(request),
      );
      return redirectWithMessage(
        reply,
        `/participants/${id}`,
        changed.length
          ? `Personal details saved: ${changed.length} field${changed.length === 1 ? '' : 's'} changed`
          : 'Nothing was changed',
      );
    } catch (error) {
      if (error instanceof ConflictError)
        return demographicsPage(request, reply.code(409), body, { form: error.message }, id);
      throw error;
    }
  });

  async function itemPage(
    request: FastifyRequest,
    reply: FastifyReply,
    data: { id: string; category: ItemCategory; values: Body; errors: FieldErrors; itemId?: string; item?: unknown },
  ) {
    return page(request, reply, 'record-item.njk', {
      title: data.itemId ? 'Correct or remove an item' : 'Add to the record',
      back: { href: `/participants/${data.id}#${data.category}` },
      ...data,
      kinds: ITEM_KINDS.filter((k) => k.category === data.category).map((k) => ({ value: k.kind, text: k.label })),
      kindRules: Object.fromEntries(ITEM_KINDS.map((k) => [k.kind, { side: k.side, value: k.value?.label }])),
      sources: SOURCES.map((s) => ({ value: s, text: SOURCE_LABELS[s] })),
    });
  }

  function itemFrom(body: Body, errors: FieldErrors, today: string): ItemInput | undefined {
    const kind = body.kind ?? '';
    const side = (body.side || null) as Side | null;
    if (side && !['left', 'right', 'bilateral'].includes(side)) errors.side = 'Select left, right or both sides';
    const value = body.value?.trim() || null;
    const details = (body.details ?? '').trim();
    if (details.length > 2000) errors.details = 'Details must be 2000 characters or fewer';
    const until = dateFromParts(body, 'temporaryUntil', 'The end date', { required: false, today });
    if (until.error) errors['temporaryUntil-day'] = until.error;
    else if (until.value && until.value < today)
      errors['temporaryUntil-day'] = 'The end date must be today or in the future';
    const source = sourceFrom(body, errors, today);
    for (const problem of itemProblems({ kind, side, value, sourceDate: source?.sourceDate ?? today }, today)) {
      errors[problem.field === 'sourceDate' ? 'sourceDate-day' : problem.field] ??= problem.message;
    }
    if (Object.keys(errors).length > 0 || !source) return undefined;
    return { kind, side, value, details, temporaryUntil: until.value, ...source };
  }

  app.get('/participants/:id/items/new', canEdit, async (request, reply) => {
    const { id } = request.params as { id: string };
    const category = (request.query as { category?: ItemCategory }).category ?? 'clinical';
    if (!(await participantById(db, id)) || !['clinical', 'access', 'communication'].includes(category))
      return reply.callNotFound();
    return itemPage(request, reply, {
      id,
      category,
      values: { source: 'staff', ...dateParts('sourceDate', app.today()) },
      errors: {},
    });
  });

  app.post('/participants/:id/items', canEdit, async (request, reply) => {
    const { id } = request.params as { id: string };
    const body = (request.body ?? {}) as Body;
    const category = itemKind(body.kind ?? '')?.category ?? ((body.category ?? 'clinical') as ItemCategory);
    if (!(await participantById(db, id))) return reply.callNotFound();
    const errors: FieldErrors = {};
    const input = itemFrom(body, errors, app.today());
    if (!input) return itemPage(request, reply.code(400), { id, category, values: body, errors });
    await addItem(db, id, input, actorOf(request));
    return redirectWithMessage(
      reply,
      `/participants/${id}#${category}`,
      `${itemKind(input.kind)?.label ?? 'Item'} added`,
    );
  });

  async function currentItem(id: string, itemId: string) {
    if (!z.uuid().safeParse(itemId).success) return undefined;
    return db
      .selectFrom('record_item')
      .selectAll()
      .where('id', '=', itemId)
      .where('participant_id', '=', id)
      .executeTakeFirst();
  }

  app.get('/participants/:id/items/:itemId', canEdit, async (request, reply) => {
    const { id, itemId } = request.params as { id: string; itemId: string };
    const item = await currentItem(id, itemId);
    if (!item) return reply.callNotFound();
    const values: Body = {
      kind: item.kind,
      side: item.side ?? '',
      value: item.value ?? '',
      details: item.details,
      source: item.source,
      ...dateParts('temporaryUntil', item.temporary_until),
      ...dateParts('sourceDate', item.source_date),
    };
    return itemPage(request, reply, { id, category: item.category, values, errors: {}, itemId, item });
  });

  app.post('/participants/:id/items/:itemId', canEdit, async (request, reply) => {
    const { id, itemId } = request.params as { id: string; itemId: string };
    const item = await currentItem(id, itemId);
    if (!item) return reply.callNotFound();
    const body = (request.body ?? {}) as Body;
    const errors: FieldErrors = {};
    try {
      if (body.action === 'remove') {
        if (!body.removeReason?.trim()) {
          return itemPage(request, reply.code(400), {
            id,
            category: item.category,
            values: body,
            errors: { removeReason: 'Give a reason for removing this item' },
            itemId,
            item,
          });
        }
        await removeItem(db, itemId, body.removeReason, actorOf(request));
        return redirectWithMessage(
          reply,
          `/participants/${id}#${item.category}`,
          `${itemKind(item.kind)?.label ?? 'Item'} removed`,
        );
      }
      const input = itemFrom(body, errors, app.today());
      if (!input)
        return itemPage(request, reply.code(400), { id, category: item.category, values: body, errors, itemId, item });
      await correctItem(db, itemId, input, actorOf(request));
      return redirectWithMessage(
        reply,
        `/participants/${id}#${item.category}`,
        `${itemKind(input.kind)?.label ?? 'Item'} corrected`,
      );
    } catch (error) {
      if (error instanceof ConflictError) {
        return itemPage(request, reply.code(409), {
          id,
          category: item.category,
          values: body,
          errors: { form: error.message },
          itemId,
          item,
        });
      }
      if (error instanceof RuleError) {
        return itemPage(request, reply.code(422), {
          id,
          category: item.category,
          values: body,
          errors: { [error.field]: error.message },
          itemId,
          item,
        });
      }
      throw error;
    }
  });
}
