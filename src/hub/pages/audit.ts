import type { FastifyInstance } from 'fastify';
import { isValidNhsNumber, normaliseNhsNumber } from '../../pathway/nhs-number.js';
import { listAudit } from '../../store/audit.js';
import type { Db } from '../../store/database.js';
import { pageNeeds } from '../auth.js';
import { page } from '../render.js';

const PAGE_SIZE = 100;

export function registerAuditPages(app: FastifyInstance, db: Db): void {
  // Filters go in a GET form, so the NHS number filter is in the URL: admins only, and the audit page itself is not
  // a view of anyone's record.
  app.get('/admin/audit', { preHandler: pageNeeds('audit.view') }, async (request, reply) => {
    const q = request.query as { nhsNumber?: string; username?: string; before?: string };
    const errors: Record<string, string> = {};
    const nhsNumber = q.nhsNumber ? normaliseNhsNumber(q.nhsNumber) : undefined;
    if (nhsNumber && !isValidNhsNumber(nhsNumber)) errors.nhsNumber = 'Enter a valid 10-digit NHS number';
    const before = q.before && /^\d+$/.test(q.before) ? Number(q.before) : undefined;
    const events = errors.nhsNumber
      ? []
      : await listAudit(db, {
          limit: PAGE_SIZE,
          ...(nhsNumber ? { nhsNumber } : {}),
          ...(q.username ? { username: q.username.trim().toLowerCase() } : {}),
          ...(before !== undefined ? { beforeId: before } : {}),
        });
    const last = events.at(-1);
    const params = new URLSearchParams({
      ...(q.nhsNumber ? { nhsNumber: q.nhsNumber } : {}),
      ...(q.username ? { username: q.username } : {}),
    });
    return page(request, reply, 'audit.njk', {
      title: 'Audit log',
      events,
      filter: q,
      errors,
      older: events.length === PAGE_SIZE && last ? `/admin/audit?${params.toString()}&before=${last.id}` : null,
    });
  });
}
