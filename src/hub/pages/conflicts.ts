import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { DEMOGRAPHIC_FIELDS } from '../../store/participants.js';
import { STATUS_LABELS, type AppointmentStatus } from '../../pathway/appointment-status.js';
import { recordAudit } from '../../store/audit.js';
import type { Db } from '../../store/database.js';
import { listConflicts, resolveConflict } from '../../store/gateway-changes.js';
import { actorOf, pageNeeds } from '../auth.js';
import { page, redirectWithMessage } from '../render.js';

/** One row per value in dispute: what the trailer recorded beside what the hub has. */
function differences(trailer: Record<string, unknown>, hub: Record<string, unknown>) {
  return Object.keys(trailer)
    .filter((key) => key !== 'reason')
    .map((key) => {
      const show = (v: unknown) =>
        key === 'status'
          ? (STATUS_LABELS[v as AppointmentStatus] ?? JSON.stringify(v))
          : typeof v === 'string'
            ? v
            : '(none)';
      return {
        label:
          key === 'status' ? 'Appointment status' : (DEMOGRAPHIC_FIELDS[key as keyof typeof DEMOGRAPHIC_FIELDS] ?? key),
        trailer: show(trailer[key]),
        hub: show(hub[key]),
      };
    });
}

export function registerConflictPages(app: FastifyInstance, db: Db): void {
  const canResolve = { preHandler: pageNeeds('conflict.resolve') };

  app.get('/conflicts', canResolve, async (request, reply) => {
    const [open, resolved] = await Promise.all([listConflicts(db, 'open'), listConflicts(db, 'resolved')]);
    await recordAudit(db, actorOf(request), {
      action: 'conflicts.view',
      entityType: 'data_conflict',
      detail: { open: open.length },
    });
    const withDifferences = (rows: typeof open) =>
      rows.map((c) => ({ ...c, differences: differences(c.trailer, c.hub) }));
    return page(request, reply, 'conflicts.njk', {
      title: 'Data conflicts',
      open: withDifferences(open),
      resolved: withDifferences(resolved.slice(0, 20)),
    });
  });

  app.post('/conflicts/:id', canResolve, async (request, reply) => {
    const { id } = request.params as { id: string };
    const body = request.body as { resolution?: string; version?: string };
    if (!z.uuid().safeParse(id).success) return reply.callNotFound();
    const resolution =
      body.resolution === 'applied_trailer' ? 'applied_trailer' : body.resolution === 'kept_hub' ? 'kept_hub' : null;
    if (!resolution) return redirectWithMessage(reply, '/conflicts', 'Choose which record stands.');
    await resolveConflict(db, id, Number(body.version), resolution, actorOf(request), app.today());
    return redirectWithMessage(
      reply,
      '/conflicts',
      resolution === 'applied_trailer'
        ? "Conflict resolved: the trailer's record now stands."
        : "Conflict resolved: the hub's record stands.",
    );
  });
}
