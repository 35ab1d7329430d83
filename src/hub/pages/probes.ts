/**
 * Synthetic test participant probes (issue 8): support staff send one through a unit's real pipeline and see each
 * step's timing; the day's pre-clinic checks are shown green or red per unit.
 */
import type { FastifyInstance } from 'fastify';
import { PROBE_STEPS, type ProbeStep } from '../../protocol/probe.js';
import type { Db } from '../../store/database.js';
import { NotFoundError, RuleError } from '../../store/errors.js';
import { createProbe, listProbes, preClinicChecks, type Probe } from '../../store/probes.js';
import { actorOf, pageNeeds } from '../auth.js';
import { page, redirectWithMessage } from '../render.js';

/** '40 ms', '1.2 s', '3 min 5 s'. */
export function formatMs(ms: number): string {
  if (ms < 1000) return `${ms} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;
}

export const stepLabel = (step: string): string => PROBE_STEPS[step as ProbeStep]?.label ?? step;

/** A probe as the pages show it: steps with their labels and timings. */
function shown(probe: Probe) {
  return {
    ...probe,
    total: formatMs(probe.totalMs),
    failedStepLabel: probe.failedStep ? stepLabel(probe.failedStep) : null,
    steps: probe.steps.map((s) => ({ ...s, label: stepLabel(s.step), took: formatMs(s.durationMs) })),
  };
}

/** One line for a probe: "Passed in 4.1 s" or "Failed at Image stored in the PACS: …". */
function oneLine(probe: Probe): string {
  if (probe.status === 'passed') return `passed in ${formatMs(probe.totalMs)}`;
  if (probe.status === 'running') return `running for ${formatMs(probe.totalMs)}`;
  return `failed at “${stepLabel(probe.failedStep ?? '')}”: ${probe.message}`;
}

/** A unit's latest probe result, for the support page. */
export interface ProbeSummary {
  siteId: string;
  outcome: 'passed' | 'failed' | 'running';
  at: Date | string;
  /** One line: the step timings, or the failed step. */
  summary: string;
  href?: string;
}

/**
 * For the support page: per unit, the day's pre-clinic check when it has clinics that
 * day (red when it has not run), otherwise its latest probe.
 */
export async function probeSummaries(db: Db, siteIds: string[], today: string): Promise<ProbeSummary[]> {
  if (siteIds.length === 0) return [];
  const [checks, recent] = await Promise.all([preClinicChecks(db, today), listProbes(db, { limit: 200 })]);
  return siteIds.flatMap((siteId): ProbeSummary[] => {
    const check = checks.find((c) => c.siteId === siteId);
    const latest = recent.find((p) => p.siteId === siteId);
    if (check) {
      const probe = check.probe && recent.find((p) => p.id === check.probe!.id);
      return [
        {
          siteId,
          outcome: check.state === 'green' ? 'passed' : check.state === 'waiting' ? 'running' : 'failed',
          at: check.probe?.at ?? new Date(),
          summary: probe
            ? `Pre-clinic check for ${check.clinics} clinic${check.clinics === 1 ? '' : 's'} today ${oneLine(probe)}`
            : `Pre-clinic check has not run today (${check.clinics} clinic${check.clinics === 1 ? '' : 's'})`,
          href: '/support/probes',
        },
      ];
    }
    return latest
      ? [
          {
            siteId,
            outcome: latest.status,
            at: latest.finishedAt ?? latest.createdAt,
            summary: `Latest probe ${oneLine(latest)}`,
            href: '/support/probes',
          },
        ]
      : [];
  });
}

export function registerProbePages(app: FastifyInstance, db: Db): void {
  const canManage = { preHandler: pageNeeds('gateway.manage') };

  const show = async (
    request: Parameters<typeof page>[0],
    reply: Parameters<typeof page>[1],
    extra: Record<string, unknown> = {},
  ) => {
    const today = request.server.today();
    const [probes, checks, units] = await Promise.all([
      listProbes(db, { limit: 30 }),
      preClinicChecks(db, today),
      db
        .selectFrom('gateway as g')
        .innerJoin('site as s', 's.id', 'g.site_id')
        .select(['s.id', 's.name'])
        .distinct()
        .where('g.status', '=', 'enrolled')
        .orderBy('s.name')
        .execute(),
    ]);
    return page(request, reply, 'probes.njk', {
      title: 'Probes',
      probes: probes.map(shown),
      checks,
      units,
      stepCount: Object.keys(PROBE_STEPS).length,
      ...extra,
    });
  };

  app.get('/support/probes', canManage, (request, reply) => show(request, reply));

  // Sends a probe through one unit's pipeline: audited (store/probes.ts), and shown on the list as it runs.
  app.post('/support/units/:siteId/probe', canManage, async (request, reply) => {
    const { siteId } = request.params as { siteId: string };
    try {
      const probe = await createProbe(db, siteId, 'manual', request.server.today(), actorOf(request));
      return redirectWithMessage(
        reply,
        '/support/probes',
        `Probe ${probe.accessionNumber} sent: refresh this page to follow its steps.`,
      );
    } catch (error) {
      if (error instanceof RuleError || error instanceof NotFoundError)
        return show(request, reply.code(400), { errors: { [`probe-${siteId}`]: error.message } });
      throw error;
    }
  });
}
