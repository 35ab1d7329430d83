import { hostname } from 'node:os';
import type { TLSSocket } from 'node:tls';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { serializerCompiler, validatorCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { changeBatchSchema, gatewayChangeSchema } from '../protocol/gateway-changes.js';
import { recordAudit } from '../store/audit.js';
import type { Database } from '../store/database.js';
import { applyGatewayChange } from '../store/gateway-changes.js';
import {
  EnrolmentRefused,
  enrolGateway,
  gatewayActor,
  gatewayAuthority,
  gatewayByCertificate,
  recordGatewayContact,
  type EnrolledGateway,
} from '../store/gateways.js';
import { transferKey } from '../store/transfers.js';
import { rawPrivateKey } from '../transfer/sealed-package.js';
import { unitWorklist } from '../store/worklist.js';
import { probeWorklistEntries } from '../store/probes.js';
import { registerProbeRoutes } from './probe-routes.js';
import type { Pacs } from '../pacs/pacs.js';
import { issueServerCertificate } from '../tls/certificates.js';
import { isoDateField } from './forms.js';
import { GatewayPush } from './gateway-push.js';
import { PingSigner, registerHeartbeatRoute, watchPushStream } from './gateway-liveness.js';
import { TransferIntake } from './transfer-intake.js';
import { registerTransferRoutes } from './transfer-uploads.js';

export interface GatewayListenerOptions {
  database: Database;
  port: number;
  host: string;
  /** Names gateways reach the hub by: they go in the listener's certificate (default localhost and this host). */
  hostnames?: string[];
  today: () => string;
  /** Heartbeat on push streams, so a dead link is noticed at both ends (default 15 s). */
  heartbeatMs?: number;
  /** A push stream none of whose pings is answered for this long is closed (default 60 s; gateway-liveness.ts). */
  pongTimeoutMs?: number;
  /** Image transfer: where packages are received and restored, and the PACS that takes the images. */
  transfers: {
    dir: string;
    pacs: Pacs;
    /** Wait before trying an unreachable PACS again (default 30 s). */
    retryMs?: number;
    /** Bytes between fsyncs of an upload in progress (default 8 MiB). */
    checkpointBytes?: number;
  };
  log?: (level: 'info' | 'warn' | 'error', message: string) => void;
}

declare module 'fastify' {
  interface FastifyRequest {
    gateway?: EnrolledGateway;
  }
}

const CONTACT_EVERY_MS = 30_000;

/**
 * The hub's listener for gateways (ADR 0006): HTTPS on its own port, where every route but enrolment needs a
 * client certificate issued by the hub's gateway authority and not revoked. The worklist, its push stream and
 * the changes from the trailer are here; staff pages and the staff API are not.
 */
export async function startGatewayListener(options: GatewayListenerOptions) {
  const db = options.database.db;
  const authority = await gatewayAuthority(db);
  const hostnames = options.hostnames ?? ['localhost', '127.0.0.1', hostname()];
  const server = await issueServerCertificate(authority, hostnames);
  const pings = new PingSigner(authority.privateKeyPem);
  const push = new GatewayPush(options.database, options.today);
  await push.start();
  const log = options.log ?? ((level: 'info' | 'warn' | 'error', message: string) => console[level](message));
  const key = await transferKey(db);
  const intake = new TransferIntake({
    database: options.database,
    pacs: options.transfers.pacs,
    dir: options.transfers.dir,
    privateKey: rawPrivateKey(key.privateKey),
    log,
    ...(options.transfers.retryMs ? { retryMs: options.transfers.retryMs } : {}),
  });
  const app = Fastify({
    https: {
      key: server.privateKeyPem,
      cert: server.certificatePem,
      ca: [authority.certificatePem],
      requestCert: true,
      // Enrolment comes without a certificate; every other route checks the socket's verdict (requireGateway).
      rejectUnauthorized: false,
      minVersion: 'TLSv1.2',
    },
    logger: false,
    // Push streams are held open by design: closing the listener ends them rather than waiting for gateways.
    forceCloseConnections: true,
    bodyLimit: 5 * 1024 * 1024,
  });
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  const r = app.withTypeProvider<ZodTypeProvider>();
  const lastContact = new Map<string, { at: number; ip: string }>();

  const refuse = (reply: FastifyReply, status: number, message: string) =>
    reply.code(status).send({ error: status === 401 ? 'unauthorised' : 'forbidden', message });

  async function requireGateway(request: FastifyRequest, reply: FastifyReply) {
    const socket = request.raw.socket as TLSSocket;
    const serial = socket.authorized ? socket.getPeerCertificate().serialNumber : undefined;
    if (!serial) return refuse(reply, 401, 'A client certificate from this hub is needed: enrol the gateway first');
    const gateway = await gatewayByCertificate(db, serial);
    if (!gateway) return refuse(reply, 403, 'This certificate does not belong to a gateway of this hub');
    if (gateway.status !== 'enrolled')
      return refuse(reply, 403, 'This gateway has been revoked by the support team: enrol it again to reconnect');
    request.gateway = gateway;
    const now = Date.now();
    const last = lastContact.get(gateway.id);
    // Recorded every 30 s, and at once when the gateway comes from a new address (the trailer moved).
    if (!last || now - last.at > CONTACT_EVERY_MS || last.ip !== request.ip) {
      lastContact.set(gateway.id, { at: now, ip: request.ip });
      await recordGatewayContact(db, gateway.id, request.ip);
    }
  }

  app.setErrorHandler(async (error, _request, reply) => {
    const status = (error as { statusCode?: number }).statusCode ?? 500;
    return reply.code(status).send({
      error: status === 400 ? 'invalid' : 'error',
      message: status >= 500 ? 'The hub could not do that just now: try again' : (error as Error).message,
    });
  });

  app.get('/gateway/v1/authority', async (_request, reply) =>
    reply.type('application/x-pem-file').send(authority.certificatePem),
  );

  r.post(
    '/gateway/v1/enrol',
    {
      schema: {
        body: z.object({ code: z.string().trim().min(12).max(20), certificateRequest: z.string().max(10_000) }),
      },
    },
    async (request, reply) => {
      try {
        const enrolled = await enrolGateway(db, request.body.code, request.body.certificateRequest, request.ip);
        return reply.code(201).send(enrolled);
      } catch (error) {
        if (error instanceof EnrolmentRefused) return refuse(reply, 403, error.message);
        throw error;
      }
    },
  );

  r.get(
    '/gateway/v1/worklist',
    {
      preHandler: requireGateway,
      schema: { querystring: z.object({ from: isoDateField('from'), to: isoDateField('to') }) },
    },
    async (request) => {
      const gateway = request.gateway!;
      const { from, to } = request.query;
      // Issue 8: the unit's running synthetic test probes are added here, and only here (never in unitWorklist).
      const entries = [
        ...(await unitWorklist(db, gateway.unitId, from, to)),
        ...(await probeWorklistEntries(db, gateway.unitId, from, to)),
      ];
      await recordAudit(db, gatewayActor(gateway.unitId, request.ip), {
        action: 'worklist.export',
        entityType: 'site',
        entityId: gateway.unitId,
        detail: { from, to, entries: entries.length, gatewayId: gateway.id },
      });
      return { unitId: gateway.unitId, fetchedAt: new Date().toISOString(), entries };
    },
  );

  // Server-sent events: "worklist" when the unit's worklist may have changed; the gateway then asks for it.
  app.get('/gateway/v1/events', { preHandler: requireGateway }, (request, reply) => {
    const gateway = request.gateway!;
    reply.hijack();
    const out = reply.raw;
    out.writeHead(200, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-store',
      connection: 'keep-alive',
    });
    out.write(`event: hello\ndata: ${JSON.stringify({ unitId: gateway.unitId })}\n\n`);
    // Pings the gateway answers (liveness by round trip); the stream is closed when they stop being answered.
    const heartbeat = watchPushStream({
      db,
      out,
      gatewayId: gateway.id,
      unitId: gateway.unitId,
      signer: pings,
      heartbeatMs: options.heartbeatMs ?? 15_000,
      pongTimeoutMs: options.pongTimeoutMs ?? 60_000,
      log,
    });
    const unsubscribe = push.subscribe(gateway.unitId, gateway.id, {
      onWorklistChange: () => out.write(`event: worklist\ndata: {}\n\n`),
      onRevoked: () => {
        out.write(`event: revoked\ndata: {}\n\n`);
        out.end();
      },
    });
    const close = () => {
      heartbeat.stop();
      unsubscribe();
    };
    out.on('close', close);
    out.on('error', close);
  });

  r.post(
    '/gateway/v1/changes',
    { preHandler: requireGateway, schema: { body: changeBatchSchema } },
    async (request) => {
      const results = [];
      // In the order made on the trailer: a check-in before the correction that followed it. Each change is
      // checked on its own, so one the hub cannot take is answered "rejected" and does not hold up the rest.
      for (const raw of request.body.changes) {
        const parsed = gatewayChangeSchema.safeParse(raw);
        const id = (raw as { id?: unknown } | null)?.id;
        if (!parsed.success) {
          results.push({
            id: typeof id === 'string' ? id : '',
            outcome: 'rejected' as const,
            message: `Not a change the hub understands: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
          });
          continue;
        }
        results.push(await applyGatewayChange(db, request.gateway!, parsed.data, request.ip, options.today()));
      }
      return { results };
    },
  );

  registerHeartbeatRoute(app, { db, signer: pings, requireGateway });

  registerProbeRoutes(app, { db, today: options.today, requireGateway });

  registerTransferRoutes(app, {
    db,
    intake,
    publicKey: key.publicKey,
    requireGateway,
    log,
    ...(options.transfers.checkpointBytes ? { checkpointBytes: options.transfers.checkpointBytes } : {}),
  });

  await app.listen({ port: options.port, host: options.host });
  await intake.start();
  const address = app.server.address();
  return {
    app: app as unknown as FastifyInstance,
    port: typeof address === 'object' && address ? address.port : options.port,
    authorityPem: authority.certificatePem,
    push,
    intake,
    async close() {
      await push.stop();
      await app.close();
      await intake.stop();
    },
  };
}
