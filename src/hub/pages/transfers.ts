import type { FastifyInstance } from 'fastify';
import type { OutboxReport } from '../../protocol/transfer.js';
import type { Db } from '../../store/database.js';
import { transferOverview } from '../../store/transfers.js';
import { duration } from '../../pathway/dates.js';
import { pageNeeds } from '../auth.js';
import { page } from '../render.js';

/** Alert when a unit's oldest image has waited longer than this, unless the hub is told otherwise: 4 hours. */
export const DEFAULT_TRANSFER_WAIT_LIMIT_MINUTES = 4 * 60;
/** A gateway reports its outbox every 30 s: in touch within 2 minutes counts as connected. */
const CONNECTED_WITHIN_MS = 2 * 60_000;
/** Silent for longer than this is an alert. */
const SILENT_ALERT_MS = 15 * 60_000;
const HOUR_MS = 60 * 60_000;

export interface TransferPagesOptions {
  /** Alert when a unit's oldest image has waited longer than this (minutes; default 240). */
  waitLimitMinutes?: number | undefined;
}

const megabytes = (bytes: number) => bytes / 1e6;
const formatMegabytes = (bytes: number) => {
  const mb = megabytes(bytes);
  return `${mb > 0 && mb < 10 ? mb.toFixed(1) : Math.round(mb).toLocaleString('en-GB')} MB`;
};
const formatMegabits = (bitsPerSecond: number) => `${(bitsPerSecond / 1e6).toFixed(1)} Mbit/s`;

export type GatewayOverview = Awaited<ReturnType<typeof transferOverview>>[number];

/** One unit's transfer state as of `now`: what the dashboard and /metrics both show. */
export function unitTransferState(g: GatewayOverview, now: number) {
  const lastContactMs = g.last_contact_at ? new Date(g.last_contact_at).getTime() : null;
  const silentMs = lastContactMs === null ? null : Math.max(0, now - lastContactMs);
  const report: OutboxReport | null = g.outbox;
  const reportedAgeSeconds = g.outbox_reported_at
    ? Math.max(0, (now - new Date(g.outbox_reported_at).getTime()) / 1000)
    : 0;
  // The report is as of when it came: the oldest image has waited that much longer since (if still waiting).
  const oldestWaitingSeconds = report && report.images > 0 ? report.oldestWaitingSeconds + reportedAgeSeconds : 0;
  return {
    lastContactMs,
    silentMs,
    connected: silentMs !== null && silentMs <= CONNECTED_WITHIN_MS,
    report,
    reportedAgeSeconds,
    oldestWaitingSeconds,
    /** Seconds to send what was waiting at the last report, at the rate it reported; null when it sends nothing. */
    clearSeconds:
      report && report.bytes > 0 && report.sendBytesPerSecond > 0 ? report.bytes / report.sendBytesPerSecond : null,
  };
}

/** Chart geometry (SVG user units). */
const CHART = { width: 640, labelWidth: 190, valueWidth: 90, rowHeight: 32, barHeight: 20, top: 8 };

/**
 * The support dashboard of image transfer from the mobile units: per gateway, its link, its backlog, how fast it
 * is going and what needs attention, with alerts at the top and a bar chart of backlog for a glance.
 */
export function registerTransferPages(app: FastifyInstance, db: Db, options: TransferPagesOptions = {}): void {
  const waitLimitMinutes = options.waitLimitMinutes ?? DEFAULT_TRANSFER_WAIT_LIMIT_MINUTES;
  const canManage = { preHandler: pageNeeds('gateway.manage') };

  app.get('/support/transfers', canManage, async (request, reply) => {
    const now = Date.now();
    const overview = await transferOverview(db, new Date(now - HOUR_MS));
    const alerts: { unit: string; text: string }[] = [];
    const perSite = new Map<string, number>();
    for (const g of overview) perSite.set(g.site_id, (perSite.get(g.site_id) ?? 0) + 1);
    const units = overview.map((g) => {
      const state = unitTransferState(g, now);
      const { report } = state;
      const unitAlerts: string[] = [];
      if (state.oldestWaitingSeconds > waitLimitMinutes * 60)
        unitAlerts.push(`Oldest image has waited ${duration(state.oldestWaitingSeconds)}`);
      if (state.silentMs === null) unitAlerts.push('Never in touch');
      else if (state.silentMs > SILENT_ALERT_MS) unitAlerts.push(`Silent for ${duration(state.silentMs / 1000)}`);
      if (report && report.damaged > 0)
        unitAlerts.push(
          `${report.damaged} damaged image${report.damaged === 1 ? '' : 's'}: send again from the machine`,
        );
      for (const text of unitAlerts) alerts.push({ unit: g.site_name, text });
      return {
        id: g.id,
        // A unit whose box is being replaced has two gateways enrolled for a while: say which is which.
        siteId: (perSite.get(g.site_id) ?? 0) > 1 ? `${g.site_id}, gateway ${g.id.slice(0, 8)}` : g.site_id,
        name: g.site_name,
        lastContactAt: g.last_contact_at,
        lastContactIp: g.last_contact_ip,
        lastContactAge: state.silentMs === null ? null : duration(state.silentMs / 1000),
        connected: state.connected,
        report: report && {
          images: report.images,
          megabytes: formatMegabytes(report.bytes),
          oldestWaiting: report.images > 0 ? duration(state.oldestWaitingSeconds) : null,
          rate: formatMegabits(report.sendBytesPerSecond * 8),
          cap: report.capBitsPerSecond === null ? null : formatMegabits(report.capBitsPerSecond),
          damaged: report.damaged,
          reportedAge: duration(state.reportedAgeSeconds),
          clear:
            report.bytes === 0
              ? 'Nothing waiting'
              : state.clearSeconds === null
                ? null
                : `About ${duration(state.clearSeconds)}`,
        },
        backlogBytes: report?.bytes ?? 0,
        storedImages: g.storedImages,
        rejectedUploads: g.rejectedUploads,
        alerts: unitAlerts,
      };
    });
    const most = Math.max(1, ...units.map((u) => megabytes(u.backlogBytes)));
    const barRoom = CHART.width - CHART.labelWidth - CHART.valueWidth;
    const chart = units.length
      ? {
          width: CHART.width,
          height: CHART.top * 2 + units.length * CHART.rowHeight,
          labelWidth: CHART.labelWidth,
          barHeight: CHART.barHeight,
          description: `Megabytes waiting to be sent, by unit: ${units
            .map((u) => `${u.name}, ${u.report ? formatMegabytes(u.backlogBytes) : 'no report yet'}`)
            .join('; ')}. The table below has these figures and more.`,
          bars: units.map((u, i) => {
            const width = u.backlogBytes > 0 ? Math.max(2, (megabytes(u.backlogBytes) / most) * barRoom) : 0;
            const y = CHART.top + i * CHART.rowHeight;
            return {
              // The chart has room for about 24 characters of name; the table has the whole of it.
              label: u.name.length > 24 ? `${u.name.slice(0, 23)}…` : u.name,
              y,
              textY: y + CHART.barHeight / 2,
              width: Math.round(width * 10) / 10,
              valueX: Math.round((CHART.labelWidth + width + 6) * 10) / 10,
              value: u.report ? formatMegabytes(u.backlogBytes) : 'no report',
              alert: u.alerts.length > 0,
            };
          }),
        }
      : null;
    return page(request, reply, 'transfers.njk', {
      title: 'Image transfers',
      units,
      alerts,
      chart,
      waitLimit: duration(waitLimitMinutes * 60),
      connectedWithin: duration(CONNECTED_WITHIN_MS / 1000),
      silentAlert: duration(SILENT_ALERT_MS / 1000),
      shownAt: new Date(now),
    });
  });
}
