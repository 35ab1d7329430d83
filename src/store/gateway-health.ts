/**
 * Gateway health as proven by traffic (issue 8): the last answered ping of each gateway and the report that came
 * with it, and each site's image mode (normal or manual images) as an append-only history, with the appointments
 * screened while a site was in manual images mode.
 */
import { sql } from 'kysely';
import type { GatewayReport, ImageMode, ModeNotice } from '../protocol/liveness.js';
import { recordAudit, type Actor } from './audit.js';
import type { Db } from './database.js';
import { NotFoundError, RuleError } from './errors.js';

/** Records a gateway's answer to a ping: the round trip when the hub measured one, and the report either way. */
export async function recordHeartbeat(
  db: Db,
  gatewayId: string,
  answer: { roundTripMs: number | null; stream?: string | null; report: GatewayReport },
  at = new Date(),
): Promise<void> {
  const roundTrip =
    answer.roundTripMs === null
      ? {}
      : {
          last_round_trip_at: at,
          last_round_trip_ms: Math.round(answer.roundTripMs),
          last_ping_stream: answer.stream ?? null,
        };
  await db
    .insertInto('gateway_health')
    .values({ gateway_id: gatewayId, ...roundTrip, report: JSON.stringify(answer.report), reported_at: at })
    .onConflict((c) =>
      c.column('gateway_id').doUpdateSet({ ...roundTrip, report: JSON.stringify(answer.report), reported_at: at }),
    )
    .execute();
}

/** When the gateway last answered a ping, how long it took and on which push stream (null: never). */
export async function lastRoundTrip(
  db: Db,
  gatewayId: string,
): Promise<{ at: Date; ms: number; stream: string | null } | null> {
  const row = await db
    .selectFrom('gateway_health')
    .select(['last_round_trip_at', 'last_round_trip_ms', 'last_ping_stream'])
    .where('gateway_id', '=', gatewayId)
    .executeTakeFirst();
  return row?.last_round_trip_at
    ? { at: new Date(row.last_round_trip_at), ms: row.last_round_trip_ms ?? 0, stream: row.last_ping_stream }
    : null;
}

const NORMAL: ModeNotice = { mode: 'normal', reason: null, since: null, by: null };

/** A site's image mode now: its latest switch, or normal when it was never switched. */
export async function siteImageMode(db: Db, siteId: string): Promise<ModeNotice> {
  const row = await db
    .selectFrom('site_image_mode')
    .select(['mode', 'reason', 'changed_at', 'changed_by_name'])
    .where('site_id', '=', siteId)
    .orderBy('seq', 'desc')
    .limit(1)
    .executeTakeFirst();
  return row
    ? { mode: row.mode, reason: row.reason, since: new Date(row.changed_at).toISOString(), by: row.changed_by_name }
    : NORMAL;
}

/**
 * Switches a site into or out of manual images mode, with a reason, audited. Nothing is deleted either way: the
 * history keeps every switch, and appointments screened meanwhile stay marked as having their images held locally.
 */
export async function setSiteImageMode(db: Db, siteId: string, mode: ImageMode, reason: string, actor: Actor) {
  const why = reason.trim();
  if (!why)
    throw new RuleError(
      'reason',
      mode === 'manual_images'
        ? 'Give a reason for switching to manual images mode'
        : 'Give a reason for switching back',
    );
  if (why.length > 500) throw new RuleError('reason', 'The reason must be 500 characters or fewer');
  return db.transaction().execute(async (tx) => {
    // The site row is the lock: two people switching the same unit at once are taken one after the other.
    const site = await tx
      .selectFrom('site')
      .select(['id', 'name'])
      .where('id', '=', siteId)
      .forUpdate()
      .executeTakeFirst();
    if (!site) throw new NotFoundError('That site or unit does not exist');
    const current = await siteImageMode(tx, siteId);
    if (current.mode === mode)
      throw new RuleError(
        'reason',
        mode === 'manual_images'
          ? `${site.name} is already in manual images mode`
          : `${site.name} is already in normal mode`,
      );
    const { id } = await tx
      .insertInto('site_image_mode')
      .values({ site_id: siteId, mode, reason: why, changed_by: actor.userId, changed_by_name: actor.username })
      .returning('id')
      .executeTakeFirstOrThrow();
    await recordAudit(tx, actor, {
      action: mode === 'manual_images' ? 'site.manual_images.on' : 'site.manual_images.off',
      entityType: 'site',
      entityId: siteId,
      detail: { mode, reason: why, from: current.mode, switchId: id },
    });
    return { id, siteName: site.name };
  });
}

/** The switches of a site, newest first. */
export async function siteImageModeHistory(db: Db, siteId: string, limit = 10) {
  return db
    .selectFrom('site_image_mode')
    .select(['id', 'mode', 'reason', 'changed_at', 'changed_by_name'])
    .where('site_id', '=', siteId)
    .orderBy('seq', 'desc')
    .limit(limit)
    .execute();
}

/** Of these appointments, those screened in manual images mode, with whether their images have arrived since. */
export async function imagesHeldLocally(db: Db, appointmentIds: readonly string[]) {
  if (appointmentIds.length === 0) return new Map<string, { markedAt: Date; arrived: boolean }>();
  const rows = await db
    .selectFrom('appointment_images_held as h')
    .innerJoin('appointment as a', 'a.id', 'h.appointment_id')
    .select(['h.appointment_id', 'h.marked_at', 'a.images_available_at'])
    .where('h.appointment_id', 'in', [...appointmentIds])
    .execute();
  return new Map(
    rows.map((r) => [r.appointment_id, { markedAt: new Date(r.marked_at), arrived: r.images_available_at !== null }]),
  );
}

/**
 * What the support page shows per enrolled gateway: its unit, the last answered ping and the report with it, the
 * unit's mode, and the unit's clinics today.
 */
export async function supportOverview(db: Db, today: string) {
  const gateways = await db
    .selectFrom('gateway as g')
    .innerJoin('site as s', 's.id', 'g.site_id')
    .leftJoin('gateway_health as h', 'h.gateway_id', 'g.id')
    .select([
      'g.id',
      'g.site_id',
      's.name as site_name',
      's.kind as site_kind',
      'g.last_contact_at',
      'h.last_round_trip_at',
      'h.last_round_trip_ms',
      'h.report',
      'h.reported_at',
    ])
    .where('g.status', '=', 'enrolled')
    .orderBy('s.name')
    .orderBy('g.enrolled_at', 'desc')
    .execute();
  const siteIds = [...new Set(gateways.map((g) => g.site_id))];
  if (siteIds.length === 0) return [];
  const [modes, clinics] = await Promise.all([
    sql<{ site_id: string; mode: ImageMode; reason: string; changed_at: Date; changed_by_name: string }>`
      select distinct on (site_id) site_id, mode, reason, changed_at, changed_by_name
      from site_image_mode where site_id in (${sql.join(siteIds)})
      order by site_id, seq desc`.execute(db),
    db
      .selectFrom('clinic as c')
      .innerJoin('location as l', 'l.id', 'c.location_id')
      .select((eb) => [
        'c.id',
        'c.site_id',
        'c.starts_at',
        'c.ends_at',
        'c.status',
        'l.name as location_name',
        eb
          .selectFrom('appointment as a')
          .select(eb.fn.countAll<string>().as('n'))
          .whereRef('a.clinic_id', '=', 'c.id')
          .where('a.status', '<>', 'cancelled')
          .as('booked'),
        eb
          .selectFrom('appointment as a')
          .innerJoin('appointment_images_held as h', 'h.appointment_id', 'a.id')
          .select(eb.fn.countAll<string>().as('n'))
          .whereRef('a.clinic_id', '=', 'c.id')
          .where('a.images_available_at', 'is', null)
          .as('held'),
      ])
      .where('c.clinic_date', '=', today)
      .where('c.site_id', 'in', siteIds)
      .orderBy('c.starts_at')
      .execute(),
  ]);
  const modeOf = new Map(modes.rows.map((m) => [m.site_id, m]));
  return gateways.map((g) => {
    const m = modeOf.get(g.site_id);
    return {
      ...g,
      mode: m
        ? { mode: m.mode, reason: m.reason, since: new Date(m.changed_at), by: m.changed_by_name }
        : { mode: 'normal' as ImageMode, reason: null, since: null, by: null },
      clinics: clinics
        .filter((c) => c.site_id === g.site_id)
        .map((c) => ({ ...c, booked: Number(c.booked ?? 0), held: Number(c.held ?? 0) })),
    };
  });
}
