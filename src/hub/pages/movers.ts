import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { EPISODE_OUTCOME_LABELS, MOVE_SOURCE_LABELS } from '../../pathway/movers.js';
import { can } from '../../pathway/staff-roles.js';
import { recordAudit } from '../../store/audit.js';
import type { Db } from '../../store/database.js';
import { acknowledgeMove, ACKNOWLEDGED_SHOWN, listOfficeMoves } from '../../store/movers.js';
import { actorOf, pageNeeds } from '../auth.js';
import type { FieldErrors } from '../forms.js';
import { page, redirectWithMessage } from '../render.js';

/**
 * Movers: women whose GP practice moved into or out of an office's area, for that office to check and acknowledge
 * (src/pathway/movers.ts says what moved with her and what a person has to decide). Seeing needs participant.view;
 * acknowledging needs participant.edit.
 */
export function registerMoversPages(app: FastifyInstance, db: Db): void {
  app.get('/movers', { preHandler: pageNeeds('participant.view') }, async (request, reply) => {
    const query = (request.query ?? {}) as Record<string, string>;
    const offices = await db.selectFrom('screening_office').select(['code', 'name']).orderBy('name').execute();
    // With one office there is nothing to choose.
    const code = query.office ?? (offices.length === 1 ? offices[0]!.code : '');
    const office = offices.find((o) => o.code === code);
    const view = {
      title: 'Movers',
      offices,
      values: { office: code },
      canAcknowledge: request.user ? can(request.user.role, 'participant.edit') : false,
      sourceLabels: MOVE_SOURCE_LABELS,
      episodeLabels: EPISODE_OUTCOME_LABELS,
      acknowledgedShown: ACKNOWLEDGED_SHOWN,
    };
    if (!office) {
      const errors: FieldErrors = query.office !== undefined ? { office: 'Choose a screening office' } : {};
      return page(request, reply.code(query.office !== undefined ? 400 : 200), 'movers.njk', { ...view, errors });
    }
    const [movedIn, movedOut] = await Promise.all([
      listOfficeMoves(db, office.code, 'in'),
      listOfficeMoves(db, office.code, 'out'),
    ]);
    await recordAudit(db, actorOf(request), {
      action: 'movers.view',
      entityType: 'participant_move',
      detail: { office: office.code, movedInOpen: movedIn.openCount, movedOutOpen: movedOut.openCount },
    });
    return page(request, reply, 'movers.njk', { ...view, errors: {}, office, movedIn, movedOut });
  });

  app.post('/movers/:id/seen', { preHandler: pageNeeds('participant.edit') }, async (request, reply) => {
    const { id } = request.params as { id: string };
    if (!z.uuid().safeParse(id).success) return reply.callNotFound();
    const office = ((request.body ?? {}) as Record<string, string>).office ?? '';
    const back = `/movers?office=${encodeURIComponent(office)}`;
    // Already acknowledged, or not one of the move's offices: the error page says so (409, 422).
    await acknowledgeMove(db, id, office, actorOf(request));
    return redirectWithMessage(reply, back, 'Move acknowledged for your office.');
  });
}
