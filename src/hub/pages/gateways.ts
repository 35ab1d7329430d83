import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { Db } from '../../store/database.js';
import { RuleError } from '../../store/errors.js';
import {
  addGateway,
  ENROLMENT_CODE_HOURS,
  gatewayAuthority,
  listGateways,
  revokeGateway,
} from '../../store/gateways.js';
import { fingerprint } from '../../tls/certificates.js';
import { actorOf, pageNeeds } from '../auth.js';
import { page, redirectWithMessage } from '../render.js';

/** Gateways are silent for longer than this only when something is wrong (they hear a heartbeat every 15 s). */
const SILENT_MINUTES = 10;

export function registerGatewayPages(app: FastifyInstance, db: Db, gatewayAddress: string | undefined): void {
  const canManage = { preHandler: pageNeeds('gateway.manage') };

  const show = async (
    request: Parameters<typeof page>[0],
    reply: Parameters<typeof page>[1],
    extra: Record<string, unknown> = {},
  ) => {
    const [gateways, sites, authority] = await Promise.all([
      listGateways(db),
      db.selectFrom('site').select(['id', 'name', 'kind']).orderBy('kind', 'desc').orderBy('name').execute(),
      gatewayAuthority(db),
    ]);
    const now = Date.now();
    return page(request, reply, 'gateways.njk', {
      title: 'Gateways',
      gateways: gateways.map((g) => ({
        ...g,
        silent:
          g.status === 'enrolled' &&
          (!g.last_contact_at || now - new Date(g.last_contact_at).getTime() > SILENT_MINUTES * 60_000),
      })),
      sites,
      fingerprint: fingerprint(authority.certificatePem),
      gatewayAddress: gatewayAddress ?? 'https://HUB:8443',
      codeHours: ENROLMENT_CODE_HOURS,
      silentMinutes: SILENT_MINUTES,
      ...extra,
    });
  };

  app.get('/support/gateways', canManage, (request, reply) => show(request, reply));

  // The code is shown on this response only (it is stored hashed): no redirect, nothing in a cookie or URL.
  app.post('/support/gateways', canManage, async (request, reply) => {
    const siteId = (request.body as { siteId?: string }).siteId ?? '';
    try {
      const added = await addGateway(db, siteId, actorOf(request));
      const authority = await gatewayAuthority(db);
      return page(request, reply, 'gateway-added.njk', {
        title: `Enrolment code for ${added.siteName}`,
        added,
        fingerprint: fingerprint(authority.certificatePem),
        gatewayAddress: gatewayAddress ?? 'https://HUB:8443',
        back: { href: '/support/gateways', text: 'Back to gateways' },
      });
    } catch (error) {
      if (error instanceof RuleError) return show(request, reply.code(400), { errors: { siteId: error.message } });
      throw error;
    }
  });

  app.post('/support/gateways/:id/revoke', canManage, async (request, reply) => {
    const { id } = request.params as { id: string };
    const reason = ((request.body as { reason?: string }).reason ?? '').trim();
    if (!z.uuid().safeParse(id).success) return reply.callNotFound();
    if (!reason)
      return show(request, reply.code(400), { errors: { [`reason-${id}`]: 'Give a reason for revoking the gateway' } });
    await revokeGateway(db, id, reason, actorOf(request));
    return redirectWithMessage(reply, '/support/gateways', 'Gateway revoked: it can no longer reach the hub.');
  });
}
