import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { STATUS_LABELS, type AppointmentStatus } from '../../pathway/appointment-status.js';
import { itemKind, SIDE_LABELS, SOURCE_LABELS, type Source } from '../../pathway/record-items.js';
import { DETAILS, type Detail } from '../../pathway/source-precedence.js';
import { recordAudit } from '../../store/audit.js';
import {
  listDataConflicts,
  resolveDataConflict,
  type ItemSideValue,
  type ListedConflict,
} from '../../store/data-conflicts.js';
import type { Db } from '../../store/database.js';
import { DEMOGRAPHIC_FIELDS } from '../../store/participants.js';
import type { ConflictResolution } from '../../store/tables.js';
import { actorOf, pageNeeds } from '../auth.js';
import type { FieldErrors } from '../forms.js';
import { page, redirectWithMessage } from '../render.js';

const FIELD_LABELS: Record<string, string> = { ...DEMOGRAPHIC_FIELDS, sex: 'Sex', status: 'Appointment status' };

const KIND_HEADINGS = {
  trailer: 'Change from a mobile unit',
  field: 'Personal details',
  record_item: 'Clinical history',
} as const;

const REASON_HINTS = {
  trailer: 'For example, she spelt her name for the mammographer',
  field: 'For example, she confirmed her new address by phone',
  record_item: 'For example, her GP confirmed the implants were removed in 2025',
} as const;

const shown = (key: string, v: unknown) =>
  key === 'status'
    ? (STATUS_LABELS[v as AppointmentStatus] ?? String(v))
    : typeof v === 'string' && v !== ''
      ? v
      : '(none)';

const itemSays = (kind: string, v: ItemSideValue) => {
  const label = itemKind(kind)?.label ?? kind;
  if (!v.present) return `No ${label.toLowerCase()}`;
  return v.side ? `${label} (${SIDE_LABELS[v.side].toLowerCase()})` : label;
};

/** One row per value in dispute: the incoming side beside the record's. */
function differences(c: ListedConflict) {
  if (c.kind === 'record_item') {
    return [
      {
        label: itemKind(c.subject ?? '')?.label ?? c.subject,
        incoming: itemSays(c.subject ?? '', c.incoming_value as ItemSideValue),
        current: itemSays(c.subject ?? '', c.current_value as ItemSideValue),
      },
    ];
  }
  const incoming = (c.kind === 'trailer' ? c.trailer : c.incoming_value) as Record<string, unknown>;
  const current = (c.kind === 'trailer' ? c.hub : c.current_value) as Record<string, unknown>;
  // In the detail's own order (jsonb keeps its keys in an order of its own).
  const order: readonly string[] = c.kind === 'field' ? (DETAILS[c.subject as Detail]?.fields ?? []) : [];
  return Object.keys(incoming ?? {})
    .filter((key) => key !== 'reason')
    .sort((a, b) => order.indexOf(a) - order.indexOf(b))
    .map((key) => ({
      label: FIELD_LABELS[key] ?? key,
      incoming: shown(key, incoming[key]),
      current: shown(key, current?.[key]),
    }));
}

const sourceLabel = (source: Source | null) => (source ? SOURCE_LABELS[source] : 'Unknown source');

/** The words for each side and each choice, by the kind of conflict. */
function describe(c: ListedConflict) {
  const trailer = c.kind === 'trailer';
  const subject =
    c.kind === 'field'
      ? (DETAILS[c.subject as Detail]?.label ?? c.subject)
      : c.kind === 'record_item'
        ? (itemKind(c.subject ?? '')?.label ?? c.subject)
        : c.change_kind === 'demographics'
          ? 'Personal details'
          : 'Appointment status';
  return {
    ...c,
    heading: KIND_HEADINGS[c.kind],
    subjectLabel: subject,
    differences: differences(c),
    incomingHeading: trailer ? 'On the trailer' : sourceLabel(c.incoming_source),
    incomingOn: trailer ? null : c.incoming_on,
    currentHeading: trailer ? 'At the hub' : `On record (${sourceLabel(c.current_source)})`,
    currentOn: trailer ? null : c.current_on,
    precedence:
      c.precedence ||
      (trailer ? 'A change made on a mobile unit that crossed a newer one at the hub: staff decide which stands' : ''),
    applyLabel: trailer ? "Use the trailer's record" : `Use the value from ${sourceLabel(c.incoming_source)}`,
    keepLabel: trailer ? "Keep the hub's record" : "Keep the record's value",
    reasonHint: REASON_HINTS[c.kind],
    decisionLabel:
      c.resolution === 'applied_incoming'
        ? trailer
          ? "Trailer's record used"
          : `Value from ${sourceLabel(c.incoming_source)} used`
        : trailer
          ? "Hub's record kept"
          : "Record's value kept",
  };
}

const RESOLUTIONS: Record<string, ConflictResolution> = {
  applied_incoming: 'applied_incoming',
  kept_current: 'kept_current',
  // The values the page used before every kind of conflict shared one queue.
  applied_trailer: 'applied_incoming',
  kept_hub: 'kept_current',
};

export function registerConflictPages(app: FastifyInstance, db: Db): void {
  const canResolve = { preHandler: pageNeeds('conflict.resolve') };

  async function queue(
    request: FastifyRequest,
    reply: FastifyReply,
    form?: { id: string; values: Record<string, string>; errors: FieldErrors },
  ) {
    const [open, resolved] = await Promise.all([listDataConflicts(db, 'open'), listDataConflicts(db, 'resolved')]);
    await recordAudit(db, actorOf(request), {
      action: 'conflicts.view',
      entityType: 'data_conflict',
      detail: { open: open.length },
    });
    return page(request, reply, 'conflicts.njk', {
      title: 'Data conflicts',
      open: open.map(describe),
      resolved: resolved.slice(0, 20).map(describe),
      form: form ?? null,
      errors: form?.errors ?? {},
    });
  }

  app.get('/conflicts', canResolve, (request, reply) => queue(request, reply));

  app.post('/conflicts/:id', canResolve, async (request, reply) => {
    const { id } = request.params as { id: string };
    const body = (request.body ?? {}) as { resolution?: string; reason?: string; version?: string };
    if (!z.uuid().safeParse(id).success) return reply.callNotFound();
    const resolution = RESOLUTIONS[body.resolution ?? ''];
    const reason = (body.reason ?? '').trim();
    const errors: FieldErrors = {};
    if (!resolution) errors[`resolution-${id}`] = 'Choose which value stands';
    if (!reason) errors[`reason-${id}`] = 'Give a reason for your decision';
    if (!resolution || !reason) {
      const values = { resolution: resolution ?? '', reason: body.reason ?? '' };
      return queue(request, reply.code(400), { id, values, errors });
    }
    await resolveDataConflict(
      db,
      { conflictId: id, expectedVersion: Number(body.version), resolution, reason },
      actorOf(request),
      app.today(),
    );
    return redirectWithMessage(
      reply,
      '/conflicts',
      resolution === 'applied_incoming'
        ? 'Conflict resolved: the incoming value now stands.'
        : "Conflict resolved: the record's value stands.",
    );
  });
}
