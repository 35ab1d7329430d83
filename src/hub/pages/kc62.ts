import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { BAND_KEYS, BAND_LABELS } from '../../pathway/age-bands.js';
import {
  countOf,
  KC62_TABLES,
  KC63_BAND_KEYS,
  KC63_BAND_LABELS,
  MEASURE_LABELS,
  nonOperativeRate,
  PART_NUMBERS,
  PARTS,
  parseCellKey,
  parseKc63CellKey,
  percent,
  relevantDateRule,
  TABLE_TITLES,
  uptake,
  type Kc62Table,
} from '../../pathway/kc62.js';
import {
  lastCompleteReportingYear,
  parseReportingYear,
  reportingYear,
  reportingYearOf,
} from '../../pathway/reporting-year.js';
import { can } from '../../pathway/staff-roles.js';
import { kc62Csv, kc62Xlsx, partMeasures, partRate } from '../../reports/kc62-export.js';
import { recordAudit } from '../../store/audit.js';
import { kc62CellEpisodes, kc62Report, kc63CellWomen, type OfficeScope } from '../../store/kc62.js';
import type { HubOptions } from '../app.js';
import { actorOf, pageNeeds } from '../auth.js';
import type { FieldErrors } from '../forms.js';
import { page } from '../render.js';

/** Episodes or women shown on one cell's list at most (the count covers everyone). */
export const CELL_LIST_SHOWN = 1000;
/** Reporting years offered in the chooser, back from the current one. */
const YEARS_OFFERED = 8;
const ALL_OFFICES = 'all';

const EPISODE_TYPE_LABELS: Record<string, string> = {
  C: 'First call',
  R: 'Routine recall',
  E: 'Early recall',
  H: 'Higher risk',
  T: 'Very high risk',
  G: 'GP referral',
  S: 'Self-referral',
};

const OUTCOME_LABELS: Record<string, string> = {
  normal: 'Normal',
  benign: 'Benign',
  malignant_invasive: 'Invasive cancer',
  malignant_micro_invasive: 'Micro-invasive cancer',
  malignant_non_invasive: 'Non-invasive cancer',
};

/**
 * KC62 and KC63 for a reporting year and one office (or all): every table and part in the return's layout, each
 * number a link to the episodes (or women) behind it, and CSV and XLSX downloads. Needs reports.view; each list
 * and each download is audited.
 */
export function registerKc62Pages(app: FastifyInstance, options: HubOptions): void {
  const db = options.db;
  const canView = { preHandler: pageNeeds('reports.view') };

  /** The office and year asked for, with the choosers' errors. */
  async function choose(request: FastifyRequest) {
    const query = (request.query ?? {}) as Record<string, string | undefined>;
    const offices = await db.selectFrom('screening_office').select(['code', 'name']).orderBy('name').execute();
    const current = reportingYearOf(app.today());
    const defaultYear = lastCompleteReportingYear(app.today());
    const errors: FieldErrors = {};
    const officeCode = query.office ?? (offices.length === 1 ? offices[0]!.code : '');
    const office = offices.find((o) => o.code === officeCode);
    if (query.office !== undefined && !office && officeCode !== ALL_OFFICES)
      errors.office = 'Choose a screening office';
    const year = query.year === undefined ? defaultYear : parseReportingYear(query.year);
    if (year === undefined || year > current)
      errors.year = `Enter a reporting year up to ${reportingYear(current).label}, like ${reportingYear(defaultYear).label}`;
    const chosen = officeCode === ALL_OFFICES || office !== undefined;
    const scope: OfficeScope = officeCode === ALL_OFFICES ? null : (office?.code ?? null);
    const years = Array.from({ length: YEARS_OFFERED }, (_, i) => reportingYear(current - i));
    return {
      offices,
      office,
      officeLabel: office ? `${office.name} (${office.code})` : 'All screening offices',
      scope,
      ready: chosen && Object.keys(errors).length === 0,
      year: year ?? defaultYear,
      years,
      values: { office: officeCode, year: query.year ?? String(defaultYear) },
      errors,
      query: new URLSearchParams({ office: officeCode, year: String(year ?? defaultYear) }).toString(),
    };
  }
  type Chosen = Awaited<ReturnType<typeof choose>>;

  const status = (reply: FastifyReply, chosen: Chosen) => reply.code(Object.keys(chosen.errors).length ? 400 : 200);

  app.get('/reports/kc62', canView, async (request, reply) => {
    const chosen = await choose(request);
    const view = { title: 'KC62 and KC63', ...chosen, relevantDateRule };
    if (!chosen.ready) return page(request, status(reply, chosen), 'kc62.njk', view);
    const report = await kc62Report(db, chosen.scope, chosen.year);
    const link = (cell: string, value: number) =>
      value > 0 ? `/reports/kc62/cell?${chosen.query}&cell=${encodeURIComponent(cell)}` : null;
    const tables = KC62_TABLES.map((table: Kc62Table) => ({
      id: table,
      title: TABLE_TITLES[table],
      parts: PART_NUMBERS.map((part) => {
        const measures = partMeasures(table, part);
        const rate = partRate(table, part);
        return {
          title: PARTS[part].title,
          headers: measures.map((m) => MEASURE_LABELS[m]),
          rate,
          rows: BAND_KEYS.map((band) => ({
            band: BAND_LABELS[band],
            total: band === 'all',
            cells: measures.map((m) => {
              const value = countOf(report.counts, table, m, band);
              return { value, href: link(`${table}.${m}.${band}`, value), label: MEASURE_LABELS[m] };
            }),
            rate: rate
              ? part === 1
                ? uptake(report.counts, table, band)
                : nonOperativeRate(report.counts, table, band)
              : undefined,
          })),
        };
      }),
    }));
    const coverage = KC63_BAND_KEYS.map((band) => {
      const eligible = report.coverage.get(`KC63.eligible.${band}`) ?? 0;
      const covered = report.coverage.get(`KC63.covered.${band}`) ?? 0;
      return {
        band: KC63_BAND_LABELS[band],
        total: band === 'all',
        eligible: { value: eligible, href: link(`KC63.eligible.${band}`, eligible) },
        covered: { value: covered, href: link(`KC63.covered.${band}`, covered) },
        rate: percent(covered, eligible),
      };
    });
    return page(request, reply, 'kc62.njk', {
      ...view,
      reportingYear: reportingYear(chosen.year),
      episodes: report.episodes,
      tables,
      coverage,
      coverageAt: report.coverageAt,
    });
  });

  app.get('/reports/kc62/cell', canView, async (request, reply) => {
    const chosen = await choose(request);
    const cellText = ((request.query ?? {}) as Record<string, string | undefined>).cell ?? '';
    const kc62Cell = parseCellKey(cellText);
    const kc63Cell = parseKc63CellKey(cellText);
    if (!kc62Cell && !kc63Cell) return reply.callNotFound();
    const back = { href: `/reports/kc62?${chosen.query}`, text: 'Back to KC62 and KC63' };
    const view = { title: 'KC62: who is counted', ...chosen, back };
    if (!chosen.ready) return page(request, status(reply, chosen), 'kc62-cell.njk', view);
    const canViewRecord = request.user ? can(request.user.role, 'participant.view') : false;
    const yearLabel = reportingYear(chosen.year).label;
    if (kc62Cell) {
      const episodes = await kc62CellEpisodes(db, chosen.scope, chosen.year, kc62Cell);
      const shown = episodes.slice(0, CELL_LIST_SHOWN);
      await recordAudit(db, actorOf(request), {
        action: 'reports.kc62.list',
        entityType: 'report',
        entityId: cellText,
        detail: {
          office: chosen.scope ?? 'all',
          year: yearLabel,
          cell: cellText,
          count: episodes.length,
          shown: shown.length,
          episodes: shown.map((e) => e.episodeId),
          participants: shown.map((e) => e.participantId),
        },
      });
      return page(request, reply, 'kc62-cell.njk', {
        ...view,
        heading: `${TABLE_TITLES[kc62Cell.table]}: ${MEASURE_LABELS[kc62Cell.measure]}, ${BAND_LABELS[kc62Cell.band].toLowerCase()}`,
        yearLabel,
        count: episodes.length,
        countText: `${episodes.length} episode${episodes.length === 1 ? '' : 's'}`,
        episodes: shown.map((e) => ({
          ...e,
          typeLabel: EPISODE_TYPE_LABELS[e.episodeType] ?? e.episodeType,
          outcomeLabel: e.outcome ? OUTCOME_LABELS[e.outcome] : '',
        })),
        canViewRecord,
        listShown: CELL_LIST_SHOWN,
      });
    }
    const cell = kc63Cell!;
    const women = await kc63CellWomen(db, chosen.scope, chosen.year, cell);
    const shown = women.slice(0, CELL_LIST_SHOWN);
    await recordAudit(db, actorOf(request), {
      action: 'reports.kc63.list',
      entityType: 'report',
      entityId: cellText,
      detail: {
        office: chosen.scope ?? 'all',
        year: yearLabel,
        cell: cellText,
        count: women.length,
        shown: shown.length,
        participants: shown.map((w) => w.participantId),
      },
    });
    return page(request, reply, 'kc62-cell.njk', {
      ...view,
      heading: `KC63: ${cell.measure === 'eligible' ? 'eligible women' : 'women screened in the last 36 months'}, aged ${KC63_BAND_LABELS[cell.band].toLowerCase()} at 31 March ${chosen.year + 1}`,
      yearLabel,
      count: women.length,
      countText: `${women.length} ${women.length === 1 ? 'woman' : 'women'}`,
      women: shown,
      canViewRecord,
      listShown: CELL_LIST_SHOWN,
    });
  });

  for (const format of ['csv', 'xlsx'] as const) {
    app.get(`/reports/kc62.${format}`, canView, async (request, reply) => {
      const chosen = await choose(request);
      if (!chosen.ready) {
        const view = { title: 'KC62 and KC63', ...chosen, relevantDateRule };
        return page(request, reply.code(400), 'kc62.njk', view);
      }
      const report = await kc62Report(db, chosen.scope, chosen.year);
      const input = {
        officeLabel: chosen.officeLabel,
        year: chosen.year,
        counts: report.counts,
        coverage: report.coverage,
        coverageAt: report.coverageAt,
      };
      await recordAudit(db, actorOf(request), {
        action: 'reports.kc62.download',
        entityType: 'report',
        entityId: 'kc62',
        detail: { office: chosen.scope ?? 'all', year: reportingYear(chosen.year).label, format },
      });
      const name = `KC62-${chosen.scope ?? 'all'}-${reportingYear(chosen.year).label}.${format}`;
      reply.header('content-disposition', `attachment; filename="${name}"`);
      if (format === 'csv') return reply.type('text/csv; charset=utf-8').send(kc62Csv(input));
      return reply.type('application/vnd.openxmlformats-officedocument.spreadsheetml.sheet').send(kc62Xlsx(input));
    });
  }
}
