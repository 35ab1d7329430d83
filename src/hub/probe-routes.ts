import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { probeStepReportSchema } from '../protocol/probe.js';
import type { Db } from '../store/database.js';
import { preClinicProbe, recordGatewayProbeStep } from '../store/probes.js';

/**
 * The gateway listener's probe routes (issue 8): a gateway reports each step its modality emulator ran for a probe
 * of its unit, and asks for the day's pre-clinic probe. Both need the gateway's client certificate.
 */
export function registerProbeRoutes(
  app: FastifyInstance,
  options: {
    db: Db;
    today: () => string;
    requireGateway: (request: FastifyRequest, reply: FastifyReply) => Promise<unknown>;
  },
): void {
  const r = app.withTypeProvider<ZodTypeProvider>();
  const { db, requireGateway } = options;

  r.post(
    '/gateway/v1/probes/:id/steps',
    { preHandler: requireGateway, schema: { params: z.object({ id: z.uuid() }), body: probeStepReportSchema } },
    async (request, reply) => {
      const recorded = await recordGatewayProbeStep(db, request.gateway!, request.params.id, request.body);
      if (!recorded)
        return reply.code(404).send({ error: 'not_found', message: 'No probe with that id was sent to this unit' });
      return { recorded: true };
    },
  );

  r.post('/gateway/v1/probes/pre-clinic', { preHandler: requireGateway }, async (request, reply) =>
    reply.code(200).send(await preClinicProbe(db, request.gateway!, options.today())),
  );
}
