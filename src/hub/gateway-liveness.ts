/**
 * The hub's half of liveness by round trip (issue 8, ADR 0011). On each push stream the hub sends a `ping` every
 * heartbeat (15 s); the gateway answers with POST /gateway/v1/heartbeat over the same mutual-TLS channel the work
 * uses. The answered ping is the proof the link works: its time and duration are recorded (gateway_health), and a
 * stream whose pings stop being answered for 60 s is closed by the hub, so the gateway connects again.
 *
 * A ping's id carries its send time, its stream and a MAC, so any hub process can check an answer and measure the
 * round trip (the answer may reach another process than the one holding the stream), and a gateway cannot claim a
 * ping it was never sent. The stream's watchdog reads the last round trip from the database for the same reason,
 * and counts only answers to its own pings: a stream left behind by a reconnection is closed too.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { heartbeatSchema, type HeartbeatAnswer, type Ping } from '../protocol/liveness.js';
import type { Db } from '../store/database.js';
import { lastRoundTrip, recordHeartbeat, siteImageMode } from '../store/gateway-health.js';
import type { EnrolledGateway } from '../store/gateways.js';

/** A ping answered later than this is recorded as a report, not as a round trip (it proves nothing about now). */
const PING_VALID_MS = 5 * 60_000;

export class PingSigner {
  private readonly key: Buffer;

  /** `secret`: the same in every hub process (derived from the gateway authority's key, which all of them read). */
  constructor(secret: string) {
    this.key = createHash('sha256').update('screening-hub gateway ping\n').update(secret).digest();
  }

  private mac(gatewayId: string, sentAtMs: number, stream: string): Buffer {
    return createHmac('sha256', this.key).update(`${gatewayId}.${sentAtMs}.${stream}`).digest().subarray(0, 16);
  }

  /** A new push stream's id: random, in every ping id of that stream. */
  static streamId(): string {
    return randomBytes(9).toString('base64url');
  }

  make(gatewayId: string, stream: string, now = Date.now()): Ping {
    return {
      id: `${now}.${stream}.${this.mac(gatewayId, now, stream).toString('base64url')}`,
      sentAt: new Date(now).toISOString(),
    };
  }

  /** When and on which stream this hub sent a ping to this gateway, if recent enough to count; null otherwise. */
  verify(gatewayId: string, pingId: string, now = Date.now()): { sentAtMs: number; stream: string } | null {
    const [time, stream, mac, extra] = pingId.split('.');
    if (!time || !stream || !mac || extra !== undefined || !/^\d{1,15}$/.test(time)) return null;
    const sentAtMs = Number(time);
    const given = Buffer.from(mac, 'base64url');
    const expected = this.mac(gatewayId, sentAtMs, stream);
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return null;
    // A little clock skew between hub processes is allowed; an answer from the future or long after is not.
    if (sentAtMs > now + 5_000 || now - sentAtMs > PING_VALID_MS) return null;
    return { sentAtMs, stream };
  }
}

export interface PushStreamWatch {
  stop(): void;
}

/**
 * Pings one push stream now and every `heartbeatMs`, and closes it when no ping has been answered for
 * `pongTimeoutMs` since it opened: an open socket that carries nothing is a dead link, whatever it looks like.
 */
export function watchPushStream(options: {
  db: Db;
  out: ServerResponse;
  gatewayId: string;
  signer: PingSigner;
  heartbeatMs: number;
  pongTimeoutMs: number;
  log: (level: 'info' | 'warn' | 'error', message: string) => void;
  unitId: string;
}): PushStreamWatch {
  const { out } = options;
  const stream = PingSigner.streamId();
  /** When one of this stream's pings was last answered (its opening until then). */
  let answeredAt = Date.now();
  let checking = false;
  const ping = () => {
    const p = options.signer.make(options.gatewayId, stream);
    out.write(`event: ping\ndata: ${JSON.stringify(p)}\n\n`);
  };
  const check = async () => {
    if (checking) return;
    checking = true;
    try {
      const last = await lastRoundTrip(options.db, options.gatewayId);
      if (last && last.stream === stream) answeredAt = Math.max(answeredAt, last.at.getTime());
      const silent = Date.now() - answeredAt;
      if (silent > options.pongTimeoutMs && !out.destroyed) {
        options.log(
          'warn',
          `Gateway of ${options.unitId}: no ping answered for ${Math.round(silent / 1000)} s; closing its push stream so it connects again`,
        );
        out.destroy();
      }
    } catch (error) {
      options.log('warn', `Could not check the round trips of ${options.unitId}: ${(error as Error).message}`);
    } finally {
      checking = false;
    }
  };
  ping();
  const timer = setInterval(() => {
    ping();
    void check();
  }, options.heartbeatMs);
  return { stop: () => clearInterval(timer) };
}

/** POST /gateway/v1/heartbeat: a gateway's answer to a ping, with its report; the answer carries the site's mode. */
export function registerHeartbeatRoute(
  app: FastifyInstance,
  options: {
    db: Db;
    signer: PingSigner;
    requireGateway: (request: FastifyRequest, reply: FastifyReply) => Promise<unknown>;
  },
): void {
  app
    .withTypeProvider<ZodTypeProvider>()
    .post(
      '/gateway/v1/heartbeat',
      { preHandler: options.requireGateway, schema: { body: heartbeatSchema } },
      async (request): Promise<HeartbeatAnswer> => {
        const gateway = request.gateway as EnrolledGateway;
        const now = Date.now();
        const ping = options.signer.verify(gateway.id, request.body.pingId, now);
        const roundTripMs = ping === null ? null : Math.max(0, now - ping.sentAtMs);
        await recordHeartbeat(
          options.db,
          gateway.id,
          { roundTripMs, stream: ping?.stream ?? null, report: request.body.report },
          new Date(now),
        );
        return { roundTripMs, mode: await siteImageMode(options.db, gateway.unitId) };
      },
    );
}
