import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import {
  FAILSAFE_CHECKS,
  FAILSAFE_DEFINITIONS,
  FAILSAFE_STATUS_LABELS,
  nextDailyRun,
  tallyMismatches,
  TALLY_STEPS,
  type FailsafeCheckId,
  type TallyCounts,
  type Thresholds,
} from '../../pathway/failsafes.js';
import type { ArbitrationPolicy } from '../../pathway/reading.js';
import { can } from '../../pathway/staff-roles.js';
import { addDays, daysBetween } from '../../pathway/dates.js';
import { recordAudit } from '../../store/audit.js';
import type { Db } from '../../store/database.js';
import {
  failsafeReport,
  failsafeTally,
  lastFailsafeRun,
  loadFailsafeThresholds,
  recentFailsafeRuns,
  runDailyFailsafes,
  TALLY_DAYS,
  type CheckReport,
} from '../../store/failsafes.js';
import type { HubOptions } from '../app.js';
import { actorOf, pageNeeds } from '../auth.js';
import type { FieldErrors } from '../forms.js';
import { page } from '../render.js';

/** The daily job runs at this hour, London time (and once at start when today's run is missing). */
export const DAILY_RUN_HOUR = 6;
/** People shown on one check's list at most, oldest first (the counts cover everyone). */
export const LIST_SHOWN = 500;
/** Daily runs shown in the trend. */
const TREND_RUNS = 7;

const TALLY_LABELS: Record<(typeof TALLY_STEPS)[number], string> = {
  imagesReceived: 'images received',
  readTwice: 'read twice',
  resulted: 'resulted',
  lettersSent: 'letters sent',
};

/** A tally row's step counts, each marked when it does not match the number screened, and the steps that do not. */
function tallyView(row: TallyCounts) {
  const mismatches = tallyMismatches(row);
  return {
    cells: TALLY_STEPS.map((step) => ({ value: row[step], mismatch: mismatches.includes(step) })),
    missing: mismatches.map((step) => TALLY_LABELS[step]),
  };
}

/** Chart geometry (SVG user units). */
const CHART = { width: 640, labelWidth: 220, valueWidth: 50, rowHeight: 30, barHeight: 18 };

function overdueChart(report: CheckReport[]) {
  const max = Math.max(1, ...report.map((r) => r.summary.overdue));
  const room = CHART.width - CHART.labelWidth - CHART.valueWidth;
  const bars = report.map((r, i) => {
    const width = Math.round((room * r.summary.overdue) / max);
    const y = i * CHART.rowHeight + (CHART.rowHeight - CHART.barHeight) / 2;
    return {
      label: r.check.short,
      value: r.summary.overdue,
      y,
      width,
      textY: y + CHART.barHeight / 2,
      valueX: CHART.labelWidth + width + 6,
    };
  });
  const total = report.reduce((n, r) => n + r.summary.overdue, 0);
  return {
    ...CHART,
    height: report.length * CHART.rowHeight,
    bars,
    description:
      total === 0
        ? 'Nobody is overdue on any check.'
        : report
            .filter((r) => r.summary.overdue > 0)
            .map((r) => `${r.check.short}: ${r.summary.overdue}`)
            .join('; '),
  };
}

/** Runs the checks every day at DAILY_RUN_HOUR (London), and at start when today's run is missing; never throws. */
function scheduleDailyRuns(
  app: FastifyInstance,
  db: Db,
  settings: { policy: ArbitrationPolicy; thresholds: Thresholds },
) {
  let timer: NodeJS.Timeout | undefined;
  let closed = false;
  let running: Promise<void> = Promise.resolve();
  const run = (onlyIfMissing: boolean) => {
    running = running.then(async () => {
      if (closed) return;
      try {
        const outcomes = await runDailyFailsafes(db, app.today(), { ...settings, onlyIfMissing });
        for (const o of outcomes)
          if (o.outcome === 'failed') app.log.error(`Daily failsafe check for ${o.office} failed: ${o.error}`);
      } catch (error) {
        app.log.error(`Daily failsafe check failed: ${(error as Error).message}`);
      }
    });
    return running;
  };
  const scheduleNext = () => {
    if (closed) return;
    const wait = nextDailyRun(new Date(), DAILY_RUN_HOUR).getTime() - Date.now();
    // setTimeout takes at most 2^31-1 ms; a day is far less.
    timer = setTimeout(() => void run(false).then(scheduleNext), Math.min(Math.max(wait, 1000), 2 ** 31 - 1));
    timer.unref();
  };
  app.addHook('onReady', async () => {
    void run(true);
    scheduleNext();
  });
  app.addHook('onClose', async () => {
    closed = true;
    clearTimeout(timer);
    await running;
  });
}

const checkParams = z.object({ check: z.enum(FAILSAFE_CHECKS) });

/**
 * Failsafes: for one screening office, everyone waiting at each step between screening and her result (and her
 * assessment outcome), with age, owner and where to act; the tally staff used to keep by hand; the trend of the
 * daily run; and the thresholds with their sources. Needs failsafe.view. Every list view is audited.
 */
export function registerFailsafePages(app: FastifyInstance, options: HubOptions): void {
  const db = options.db;
  // A bad thresholds file stops the hub starting, with a message naming the file and the bad keys.
  const { file: thresholdsFile, thresholds } = loadFailsafeThresholds();
  const settings = { policy: options.arbitration ?? 'discordant', thresholds };
  const canView = { preHandler: pageNeeds('failsafe.view') };

  /** The office asked for (or the only one), or the office chooser's error. */
  async function chooseOffice(request: FastifyRequest) {
    const query = (request.query ?? {}) as Record<string, string>;
    const offices = await db.selectFrom('screening_office').select(['code', 'name']).orderBy('name').execute();
    const code = query.office ?? (offices.length === 1 ? offices[0]!.code : '');
    const office = offices.find((o) => o.code === code);
    const errors: FieldErrors = !office && query.office !== undefined ? { office: 'Choose a screening office' } : {};
    return { offices, office, values: { office: code }, errors };
  }

  function common(request: FastifyRequest) {
    return {
      statusLabels: FAILSAFE_STATUS_LABELS,
      canViewRecord: request.user ? can(request.user.role, 'participant.view') : false,
      meshMissing: !options.mesh,
      thresholdsFile,
    };
  }

  const noOffice = (reply: FastifyReply, chosen: { errors: FieldErrors }) =>
    reply.code(Object.keys(chosen.errors).length ? 400 : 200);

  app.get('/failsafes', canView, async (request, reply) => {
    const chosen = await chooseOffice(request);
    const view = { title: 'Failsafes', ...common(request), ...chosen };
    if (!chosen.office) return page(request, noOffice(reply, chosen), 'failsafes.njk', view);
    const office = chosen.office;
    const asOf = app.today();
    const [report, tally, runs, lastRun] = [
      await failsafeReport(db, office.code, asOf, settings),
      await failsafeTally(db, office.code, asOf, settings),
      await recentFailsafeRuns(db, office.code, TREND_RUNS),
      await lastFailsafeRun(db, office.code),
    ];
    const totals = tally.reduce(
      (t, r) => ({
        screened: t.screened + r.screened,
        imagesReceived: t.imagesReceived + r.imagesReceived,
        readTwice: t.readTwice + r.readTwice,
        resulted: t.resulted + r.resulted,
        lettersSent: t.lettersSent + r.lettersSent,
      }),
      { screened: 0, imagesReceived: 0, readTwice: 0, resulted: 0, lettersSent: 0 },
    );
    const trendRuns = [...runs].reverse();
    await recordAudit(db, actorOf(request), {
      action: 'failsafes.view',
      entityType: 'failsafe',
      detail: {
        office: office.code,
        asOf,
        overdue: Object.fromEntries(report.map((r) => [r.check.id, r.summary.overdue])),
      },
    });
    return page(request, reply, 'failsafes.njk', {
      ...view,
      office,
      asOf,
      pathway: report.filter((r) => r.check.group === 'pathway'),
      queues: report.filter((r) => r.check.group === 'queue'),
      chart: overdueChart(report),
      tally: tally.map((row) => ({ ...row, ...tallyView(row) })),
      tallyTotals: { ...totals, ...tallyView(totals) },
      tallyFrom: addDays(asOf, -(TALLY_DAYS - 1)),
      tallyDays: TALLY_DAYS,
      lastRun,
      lastRunDaysAgo: lastRun ? daysBetween(lastRun.asOf, asOf) : null,
      trend: {
        runs: trendRuns,
        rows: FAILSAFE_CHECKS.map((id) => ({
          check: FAILSAFE_DEFINITIONS[id],
          overdue: trendRuns.map((run) => run.counts[id]?.overdue ?? null),
        })),
      },
      thresholdRows: FAILSAFE_CHECKS.map((id) => ({ check: FAILSAFE_DEFINITIONS[id], threshold: thresholds[id] })),
      dailyRunHour: String(DAILY_RUN_HOUR).padStart(2, '0') + ':00',
      jobOn: options.failsafeJob !== false,
    });
  });

  app.get('/failsafes/:check', canView, async (request, reply) => {
    const params = checkParams.safeParse(request.params);
    if (!params.success) return reply.callNotFound();
    const id: FailsafeCheckId = params.data.check;
    const chosen = await chooseOffice(request);
    const check = FAILSAFE_DEFINITIONS[id];
    const view = {
      title: check.title,
      ...common(request),
      ...chosen,
      check,
      threshold: thresholds[id],
      back: { href: chosen.office ? `/failsafes?office=${encodeURIComponent(chosen.office.code)}` : '/failsafes' },
    };
    if (!chosen.office) return page(request, noOffice(reply, chosen), 'failsafes-check.njk', view);
    const office = chosen.office;
    const asOf = app.today();
    const [report] = await failsafeReport(db, office.code, asOf, { ...settings, checks: [id] });
    const shown = report!.items.slice(0, LIST_SHOWN);
    await recordAudit(db, actorOf(request), {
      action: 'failsafes.list',
      entityType: 'failsafe',
      entityId: id,
      detail: {
        office: office.code,
        check: id,
        asOf,
        count: report!.summary.count,
        shown: shown.length,
        participants: shown.map((i) => i.participantId),
      },
    });
    return page(request, reply, 'failsafes-check.njk', {
      ...view,
      office,
      asOf,
      summary: report!.summary,
      items: shown,
      listShown: LIST_SHOWN,
    });
  });

  if (options.failsafeJob !== false) scheduleDailyRuns(app, db, settings);
}
