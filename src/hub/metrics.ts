import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { can } from '../pathway/staff-roles.js';
import { UPLOAD_STATES } from '../protocol/transfer.js';
import type { Db } from '../store/database.js';
import { transferOverview, transferTotals } from '../store/transfers.js';
import { metric } from '../prometheus.js';
import { unitTransferState } from './pages/transfers.js';

export interface MetricsOptions {
  /** A bearer token that lets a scraper elsewhere read /metrics (METRICS_TOKEN); none: loopback and staff only. */
  token?: string | undefined;
}

/** The hub's transfer metrics as of `now`: totals since the database began, and each enrolled unit's gateway. */
export async function hubMetrics(db: Db, now = Date.now()): Promise<string> {
  const [totals, overview] = await Promise.all([transferTotals(db), transferOverview(db, new Date(now - 60 * 60_000))]);
  const units = overview.map((g) => ({ unit: g.site_id, gateway: g.id, ...unitTransferState(g, now) }));
  const reported = units.filter((u) => u.report !== null);
  const perUnit = (list: typeof units, value: (u: (typeof units)[number]) => number) =>
    // The gateway's id too: a unit whose box is being replaced has two enrolled for a while, and each series must
    // be unique.
    list.map((u) => ({ labels: { unit: u.unit, gateway: u.gateway }, value: value(u) }));
  return [
    metric('hub_transfer_images_stored_total', 'counter', 'Images the hub has stored in the PACS.', [
      { value: totals.images },
    ]),
    metric('hub_transfer_original_bytes_total', 'counter', 'Bytes of the images stored, as the modality sent them.', [
      { value: totals.originalBytes },
    ]),
    metric('hub_transfer_packed_bytes_total', 'counter', 'Bytes of the sealed packages those images came in.', [
      { value: totals.packedBytes },
    ]),
    metric(
      'hub_transfer_uploads',
      'gauge',
      'Uploads of sealed packages by state (receiving, received: whole and waiting to be stored, stored, rejected, superseded: left unfinished when its sealing stopped).',
      UPLOAD_STATES.map((state) => ({ labels: { state }, value: totals.uploads[state] ?? 0 })),
    ),
    metric(
      'hub_gateway_outbox_images',
      'gauge',
      "Images waiting in the unit's gateway, as it last reported.",
      perUnit(reported, (u) => u.report!.images),
    ),
    metric(
      'hub_gateway_outbox_bytes',
      'gauge',
      "Bytes the unit's gateway still had to send, as it last reported.",
      perUnit(reported, (u) => u.report!.bytes),
    ),
    metric(
      'hub_gateway_oldest_waiting_seconds',
      'gauge',
      "Seconds the unit's oldest waiting image has waited (as reported, plus the time since the report).",
      perUnit(reported, (u) => Math.round(u.oldestWaitingSeconds)),
    ),
    metric(
      'hub_gateway_send_bytes_per_second',
      'gauge',
      "The unit's send rate over its last ten minutes of sending, as it last reported.",
      perUnit(reported, (u) => u.report!.sendBytesPerSecond),
    ),
    metric(
      'hub_gateway_damaged_images',
      'gauge',
      "Images the unit's gateway cannot send: they must be sent again from the machine.",
      perUnit(reported, (u) => u.report!.damaged),
    ),
    metric(
      'hub_gateway_last_contact_age_seconds',
      'gauge',
      "Seconds since the unit's gateway was last in touch (absent: never).",
      perUnit(
        units.filter((u) => u.silentMs !== null),
        (u) => Math.round(u.silentMs! / 1000),
      ),
    ),
  ].join('');
}

const sha256 = (text: string) => createHash('sha256').update(text).digest();

/** The request's own machine, not forwarded from elsewhere by a proxy on it. */
function fromLoopback(request: FastifyRequest): boolean {
  if (request.headers['x-forwarded-for'] !== undefined || request.headers.forwarded !== undefined) return false;
  const ip = request.ip;
  return ip === '::1' || ip.startsWith('127.') || ip.startsWith('::ffff:127.');
}

/**
 * GET /metrics (Prometheus text format 0.0.4), without signing in: to a scraper on the hub's own machine (loopback),
 * or one sending `Authorization: Bearer <METRICS_TOKEN>`; support staff signed in may look too. Anyone else: 403.
 * No personal data: counts, bytes and ages, by unit.
 */
export function registerMetrics(app: FastifyInstance, db: Db, options: MetricsOptions = {}): void {
  const expected = options.token ? sha256(options.token) : undefined;
  app.get('/metrics', async (request, reply) => {
    const header = request.headers.authorization;
    const bearer = header?.startsWith('Bearer ') ? header.slice('Bearer '.length).trim() : undefined;
    const tokenOk = bearer !== undefined && expected !== undefined && timingSafeEqual(sha256(bearer), expected);
    const staff = request.user !== null && can(request.user.role, 'gateway.manage');
    if (!tokenOk && !staff && !fromLoopback(request)) {
      const why =
        bearer === undefined
          ? 'Metrics are served only to this machine (loopback), or with the header "Authorization: Bearer <METRICS_TOKEN>".'
          : expected === undefined
            ? 'This hub has no METRICS_TOKEN set, so no bearer token is accepted: scrape from the hub machine itself, or set METRICS_TOKEN.'
            : 'That bearer token is not the METRICS_TOKEN set on this hub.';
      return reply.code(403).header('cache-control', 'no-store').type('text/plain; charset=utf-8').send(`${why}\n`);
    }
    return reply
      .header('cache-control', 'no-store')
      .type('text/plain; version=0.0.4; charset=utf-8')
      .send(await hubMetrics(db));
  });
}
