/**
 * The support page (issue 8): per enrolled gateway, the last successful round trip (an answered ping, not a
 * socket's state), its latest phase-named failure with what to do, its outbox, today's clinics at its unit, and
 * the unit's image mode with the audited switch into and out of manual images mode.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { duration } from '../../pathway/dates.js';
import { PHASE_DESCRIPTIONS } from '../../protocol/failure-phase.js';
import { IMAGE_MODE_LABELS, IMAGE_MODES, MANUAL_IMAGES_ADVICE } from '../../protocol/liveness.js';
import type { Db } from '../../store/database.js';
import { RuleError } from '../../store/errors.js';
import { setSiteImageMode, supportOverview } from '../../store/gateway-health.js';
import { actorOf, pageNeeds } from '../auth.js';
import { currentPacsFailure } from '../transfer-intake.js';
import { page, redirectWithMessage } from '../render.js';
import { probeSummaries } from './probes.js';

/** Pings go every 15 s and the hub gives up on a stream after 60 s without an answer … */
export const ROUND_TRIP_LIMIT_MS = 60_000;
/** … so a last round trip older than this (the limit plus a margin for one reconnection) is shown red. */
export const ROUND_TRIP_STALE_MS = ROUND_TRIP_LIMIT_MS + 30_000;

const modeForm = z.object({
  mode: z.enum(IMAGE_MODES, { error: 'Choose a mode' }),
  reason: z.string().default(''),
});

export function registerSupportPages(app: FastifyInstance, db: Db): void {
  const canManage = { preHandler: pageNeeds('gateway.manage') };

  const show = async (request: FastifyRequest, reply: FastifyReply, extra: Record<string, unknown> = {}) => {
    const now = Date.now();
    const overview = await supportOverview(db, request.server.today());
    const siteIds = [...new Set(overview.map((g) => g.site_id))];
    const [probes, pacsFailure] = [await probeSummaries(db, siteIds, request.server.today()), currentPacsFailure()];
    const perSite = new Map<string, number>();
    for (const g of overview) perSite.set(g.site_id, (perSite.get(g.site_id) ?? 0) + 1);
    const switchShown = new Set<string>();
    const units = overview.map((g) => {
      const at = g.last_round_trip_at ? new Date(g.last_round_trip_at).getTime() : null;
      const ageMs = at === null ? null : Math.max(0, now - at);
      const failure = g.report?.lastFailure ?? null;
      return {
        id: g.id,
        siteId: g.site_id,
        name: g.site_name,
        // A unit whose box is being replaced has two gateways enrolled for a while: say which is which.
        label: (perSite.get(g.site_id) ?? 0) > 1 ? `${g.site_name}, gateway ${g.id.slice(0, 8)}` : g.site_name,
        roundTrip:
          at === null
            ? null
            : { at: new Date(at), ago: `${duration(ageMs! / 1000)} ago`, ms: g.last_round_trip_ms ?? 0 },
        stale: ageMs === null || ageMs > ROUND_TRIP_STALE_MS,
        report: g.report && {
          ...g.report,
          reportedAt: g.reported_at,
          gatewayModeDiffers: g.report.mode !== g.mode.mode,
        },
        failure: failure && { ...failure, ...PHASE_DESCRIPTIONS[failure.phase] },
        outage: g.report?.lastOutage && {
          ...g.report.lastOutage,
          ...PHASE_DESCRIPTIONS[g.report.lastOutage.failure.phase],
        },
        mode: { ...g.mode, label: IMAGE_MODE_LABELS[g.mode.mode] },
        // The switch is the site's: shown with its first gateway only (ids on the page stay unique).
        showSwitch: !switchShown.has(g.site_id) && Boolean(switchShown.add(g.site_id)),
        clinics: g.clinics,
        probe: probes.find((p) => p.siteId === g.site_id) ?? null,
      };
    });
    return page(request, reply, 'support.njk', {
      title: 'Support',
      units,
      pacsFailure: pacsFailure && { ...pacsFailure, ...PHASE_DESCRIPTIONS[pacsFailure.phase] },
      staleSeconds: ROUND_TRIP_STALE_MS / 1000,
      limitSeconds: ROUND_TRIP_LIMIT_MS / 1000,
      manualAdvice: MANUAL_IMAGES_ADVICE,
      shownAt: new Date(now),
      ...extra,
    });
  };

  app.get('/support', canManage, (request, reply) => show(request, reply));

  // Switches one unit into manual images mode or back, with a reason; audited, and nothing is deleted.
  app.post('/support/units/:siteId/mode', canManage, async (request, reply) => {
    const { siteId } = request.params as { siteId: string };
    const parsed = modeForm.safeParse(request.body ?? {});
    const field = `reason-${siteId}`;
    if (!parsed.success) return show(request, reply.code(400), { errors: { [field]: 'Choose a mode' } });
    try {
      const { siteName } = await setSiteImageMode(db, siteId, parsed.data.mode, parsed.data.reason, actorOf(request));
      return redirectWithMessage(
        reply,
        '/support',
        parsed.data.mode === 'manual_images'
          ? `${siteName} is in manual images mode: the gateway shows it within a minute.`
          : `${siteName} is back in normal mode: images go through the gateway again.`,
      );
    } catch (error) {
      if (error instanceof RuleError)
        return show(request, reply.code(400), { errors: { [field]: error.message }, form: { siteId, ...parsed.data } });
      throw error;
    }
  });
}
