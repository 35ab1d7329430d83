import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { formatLongDate } from '../../pathway/dates.js';
import {
  formatValue,
  KPI_DEFINITIONS,
  KPI_IDS,
  RAG_LABELS,
  thresholdText,
  type InterventionInput,
  type KpiFigure,
  type KpiId,
  type NhsbspStandards,
} from '../../pathway/kpis.js';
import { reportingYear, reportingYearOf } from '../../pathway/reporting-year.js';
import { can } from '../../pathway/staff-roles.js';
import { recordAudit } from '../../store/audit.js';
import {
  createIntervention,
  interventionImpact,
  listInterventions,
  officePractices,
} from '../../store/interventions.js';
import { kpiFigures, loadNhsbspStandards, type YearFigures } from '../../store/kpis.js';
import type { HubOptions } from '../app.js';
import { actorOf, pageNeeds } from '../auth.js';
import { dateFromParts, type FieldErrors } from '../forms.js';
import { page, redirectWithMessage } from '../render.js';
import { lineChart } from '../svg-charts.js';
import { csvDownloadHeaders } from '../../reports/csv.js';
import { kpiCsv, kpiCsvName } from '../../reports/kpi-csv.js';

/** Reporting years shown in each KPI's history (the chosen year and those before it). */
export const HISTORY_YEARS = 5;
/** Reporting years that can be chosen, back from the current one. */
const YEARS_OFFERED = 10;

// --- The history plot: a line chart from svg-charts.ts (its numbers are also in the table after it) -----------

function trendPlot(id: KpiId, history: YearFigures[], standards: NhsbspStandards): string {
  const { unit, title } = KPI_DEFINITIONS[id];
  const standard = standards.standards[id];
  const average = standards.nationalAverages.values[id];
  const values = history.map((h) => h.figures[id].value);
  const references = [
    { label: 'Acceptable', value: standard.acceptable },
    { label: 'Achievable', value: standard.achievable !== standard.acceptable ? standard.achievable : undefined },
    { label: 'National', value: average },
  ].filter((r): r is { label: string; value: number } => r.value !== undefined);
  // Head room above the highest value or line; a percentage axis stops at 100.
  const top = Math.max(...values.filter((v): v is number => v !== null), ...references.map((r) => r.value), 1) * 1.15;
  return lineChart({
    id: `plot-${id}`,
    title: `${title}: the office's history`,
    xLabels: history.map((h) => reportingYear(h.year).label),
    series: [{ name: 'This office', values }],
    min: 0,
    max: unit === 'percent' ? Math.min(100, Math.max(top, 10)) : top,
    format: (v) => formatValue(v, unit),
    axisFormat: (v) => formatValue(v, unit).replace(' per 1,000', ''),
    references,
  });
}

function figureView(f: KpiFigure) {
  const unit = KPI_DEFINITIONS[f.id].unit;
  return {
    ...f,
    text: formatValue(f.value, unit),
    intervalText: f.interval
      ? `${formatValue(f.interval.lower, unit)} to ${formatValue(f.interval.upper, unit)}`
      : 'Not applicable',
    numeratorText: f.id === 'sdr' ? String(f.numerator) : f.numerator.toLocaleString('en-GB'),
    denominatorText: f.id === 'sdr' ? f.denominator.toFixed(2) : f.denominator.toLocaleString('en-GB'),
    ragLabel: RAG_LABELS[f.rag],
  };
}

type Query = Record<string, string | undefined>;

export function registerKpiPages(app: FastifyInstance, options: HubOptions): void {
  const db = options.db;
  // A bad standards file stops the hub starting, with a message naming the file and each bad key.
  const { file: standardsFile, standards } = loadNhsbspStandards();
  const canView = { preHandler: pageNeeds('reports.view') };
  const canManage = { preHandler: pageNeeds('intervention.manage') };

  async function chooseOffice(query: Query) {
    const offices = await db.selectFrom('screening_office').select(['code', 'name']).orderBy('name').execute();
    const code = query.office ?? (offices.length === 1 ? offices[0]!.code : '');
    const office = offices.find((o) => o.code === code);
    const errors: FieldErrors = !office && query.office !== undefined ? { office: 'Choose a screening office' } : {};
    return { offices, office, errors };
  }

  /** The choice in the query (office and year), checked, and the figures for it when it is good. */
  async function dashboard(query: Query, today: string) {
    const currentYear = reportingYearOf(today);
    const years = Array.from({ length: YEARS_OFFERED }, (_, i) => currentYear - i).map((y) => ({
      value: String(y),
      text: reportingYear(y).label,
    }));
    const chosen = await chooseOffice(query);
    const errors: FieldErrors = { ...chosen.errors };
    let year = currentYear;
    if (query.year !== undefined && query.year !== '') {
      const wanted = Number(query.year);
      if (!/^\d{4}$/.test(query.year) || wanted > currentYear || wanted < currentYear - YEARS_OFFERED + 1)
        errors.year = `Choose a reporting year from ${reportingYear(currentYear - YEARS_OFFERED + 1).label} to ${reportingYear(currentYear).label}`;
      else year = wanted;
    }
    const view = {
      title: 'Key performance indicators',
      back: { href: '/reports', text: 'Reports' },
      offices: chosen.offices,
      years,
      values: { office: chosen.office?.code ?? query.office ?? '', year: String(year) },
      errors,
      standardsFile,
      nationalAverages: standards.nationalAverages,
    };
    if (!chosen.office || Object.keys(errors).length > 0) return { view, errors, ready: false as const };
    const historyYears = Array.from({ length: HISTORY_YEARS }, (_, i) => year - HISTORY_YEARS + 1 + i);
    const history = await kpiFigures(db, chosen.office.code, historyYears, today, standards);
    return { view, errors, ready: true as const, office: chosen.office, year, history };
  }

  app.get('/reports/kpis', canView, async (request, reply) => {
    const today = app.today();
    const chosen = await dashboard((request.query ?? {}) as Query, today);
    const { view, errors } = chosen;
    if (!chosen.ready) return page(request, reply.code(Object.keys(errors).length ? 400 : 200), 'kpis.njk', view);
    const { office, year, history } = chosen;
    const current = history.at(-1)!;
    const kpis = KPI_IDS.map((id) => {
      const definition = KPI_DEFINITIONS[id];
      const standard = standards.standards[id];
      const average = standards.nationalAverages.values[id];
      return {
        definition,
        standard,
        acceptableText: thresholdText(standard.acceptable, standard.direction, definition.unit),
        achievableText: thresholdText(standard.achievable, standard.direction, definition.unit),
        directionText: standard.direction === 'higher' ? 'Higher is better' : 'Lower is better',
        averageText: average === undefined ? 'Not given' : formatValue(average, definition.unit),
        figure: figureView(current.figures[id]),
        history: history.map((h) => ({
          label: reportingYear(h.year).label,
          asOf: h.asOf,
          figure: figureView(h.figures[id]),
        })),
        plot: trendPlot(id, history, standards),
      };
    });
    await recordAudit(db, actorOf(request), {
      action: 'kpis.view',
      entityType: 'report',
      entityId: 'kpis',
      detail: { office: office.code, year: reportingYear(year).label },
    });
    return page(request, reply, 'kpis.njk', {
      ...view,
      office,
      yearLabel: reportingYear(year).label,
      asOf: current.asOf,
      underWay: current.asOf === today,
      kpis,
      csvHref: `/reports/kpis.csv?${new URLSearchParams({ office: office.code, year: String(year) })}`,
    });
  });

  // The dashboard as CSV, for the same choice; a bad choice (or none) gets the page with its errors.
  app.get('/reports/kpis.csv', canView, async (request, reply) => {
    const chosen = await dashboard((request.query ?? {}) as Query, app.today());
    if (!chosen.ready) {
      const errors = Object.keys(chosen.errors).length ? chosen.errors : { office: 'Choose a screening office' };
      return page(request, reply.code(400), 'kpis.njk', { ...chosen.view, errors });
    }
    const { office, year, history } = chosen;
    await recordAudit(db, actorOf(request), {
      action: 'kpis.download',
      entityType: 'report',
      entityId: 'kpis',
      detail: { office: office.code, year: reportingYear(year).label },
    });
    return reply
      .headers(csvDownloadHeaders(kpiCsvName(office.code, year)))
      .send(kpiCsv({ office: `${office.name} (${office.code})`, standards, history }));
  });

  // --- Interventions --------------------------------------------------------------------------------------------

  app.get('/reports/kpis/interventions', canView, async (request, reply) => {
    const query = (request.query ?? {}) as Query;
    const chosen = await chooseOffice(query);
    const today = app.today();
    const view = {
      title: 'Interventions',
      back: {
        href: chosen.office ? `/reports/kpis?office=${encodeURIComponent(chosen.office.code)}` : '/reports/kpis',
        text: 'Key performance indicators',
      },
      offices: chosen.offices,
      values: { office: chosen.office?.code ?? query.office ?? '' },
      errors: chosen.errors,
      canManage: request.user ? can(request.user.role, 'intervention.manage') : false,
    };
    if (!chosen.office)
      return page(request, reply.code(Object.keys(chosen.errors).length ? 400 : 200), 'kpi-interventions.njk', view);
    const office = chosen.office;
    const interventions = await listInterventions(db, office.code);
    const items = [];
    for (const i of interventions) {
      const impact = await interventionImpact(db, i, today);
      items.push({ ...i, impact });
    }
    return page(request, reply, 'kpi-interventions.njk', { ...view, office, items, asOf: today });
  });

  async function formPage(
    request: FastifyRequest,
    reply: FastifyReply,
    office: { code: string; name: string },
    values: Record<string, unknown>,
    errors: FieldErrors,
  ) {
    const practices = await officePractices(db, office.code);
    return page(request, reply, 'kpi-intervention-new.njk', {
      title: 'Add an intervention',
      back: { href: `/reports/kpis/interventions?office=${encodeURIComponent(office.code)}`, text: 'Interventions' },
      office,
      practices,
      values,
      errors,
    });
  }

  app.get('/reports/kpis/interventions/new', canManage, async (request, reply) => {
    const chosen = await chooseOffice((request.query ?? {}) as Query);
    if (!chosen.office) return reply.redirect('/reports/kpis/interventions', 303);
    return formPage(request, reply, chosen.office, {}, {});
  });

  app.post('/reports/kpis/interventions/new', canManage, async (request, reply) => {
    const body = (request.body ?? {}) as Record<string, string | undefined>;
    const chosen = await chooseOffice({ office: body.office ?? '' });
    if (!chosen.office) return reply.code(400).redirect('/reports/kpis/interventions', 303);
    const office = chosen.office;
    const today = app.today();
    const practices = await officePractices(db, office.code);
    const errors: FieldErrors = {};
    const label = (body.label ?? '').trim();
    const description = (body.description ?? '').trim();
    const practice = (body.gpPracticeCode ?? '').trim();
    if (!label) errors.label = 'Enter a short name for the intervention';
    else if (label.length > 200) errors.label = 'The name must be 200 characters or fewer';
    if (description.length > 2000) errors.description = 'The description must be 2,000 characters or fewer';
    if (practice && !practices.some((p) => p.code === practice))
      errors.gpPracticeCode = 'Choose one of the office’s GP practices, or the whole office';
    const starts = dateFromParts(body, 'startsOn', 'Start date', { required: true, today });
    const ends = dateFromParts(body, 'endsOn', 'End date', { required: false, today });
    if (starts.error) errors['startsOn-day'] = starts.error;
    if (ends.error) errors['endsOn-day'] = ends.error;
    else if (ends.value && starts.value && ends.value < starts.value)
      errors['endsOn-day'] = `End date must be on or after the start date (${formatLongDate(starts.value)})`;
    if (Object.keys(errors).length > 0) return formPage(request, reply.code(400), office, body, errors);
    const input: InterventionInput = {
      label,
      description,
      gpPracticeCode: practice || null,
      startsOn: starts.value!,
      endsOn: ends.value ?? null,
    };
    await createIntervention(db, office.code, input, actorOf(request));
    return redirectWithMessage(
      reply,
      `/reports/kpis/interventions?office=${encodeURIComponent(office.code)}`,
      `Intervention “${label}” added.`,
    );
  });
}
