import type { FastifyInstance, FastifyRequest } from 'fastify';
import { isIsoDate } from '../../pathway/dates.js';
import { COVERAGE_END_AGE, COVERAGE_MIN_AGE, COVERAGE_MONTHS } from '../../pathway/kc62.js';
import {
  formatPercent,
  periodProblems,
  sideBySide,
  UPTAKE_WINDOW_MONTHS,
  uptakeFinalBefore,
  type Rate,
  type RateRow,
} from '../../pathway/uptake.js';
import { lastCompleteReportingYear, reportingYear, reportingYearOf } from '../../pathway/reporting-year.js';
import { recordAudit } from '../../store/audit.js';
import { imdLookupStatus, DEMO_IMD_SOURCE } from '../../store/imd-lookup.js';
import {
  breakdown,
  coverageCounts,
  officePlaces,
  practiceNames,
  uptakeCounts,
  uptakeTrend,
  type Breakdown,
} from '../../store/uptake.js';
import type { HubOptions } from '../app.js';
import { actorOf, pageNeeds } from '../auth.js';
import type { FieldErrors } from '../forms.js';
import { page } from '../render.js';
import { csvDownloadHeaders } from '../../reports/csv.js';
import { UPTAKE_CSV_TABLE_IDS, uptakeCsv, uptakeCsvName, type UptakeCsvTable } from '../../reports/uptake-csv.js';
import { lineChart, rankedBarChart } from '../svg-charts.js';

/** Reporting years in the trend. */
export const TREND_YEARS = 6;

/** A rate for the page: the counts, the percentage and its interval as text. */
function shown(r: Rate | undefined) {
  if (!r || r.denominator === 0) return null;
  return {
    numerator: r.numerator,
    denominator: r.denominator,
    rate: formatPercent(r.rate),
    ci: `${formatPercent(r.lower)} to ${formatPercent(r.upper)}`,
  };
}

/** One table row per group: uptake and coverage side by side (either may be missing for a group). */
function rows(uptake: readonly RateRow[], coverage: readonly RateRow[]) {
  return sideBySide(uptake, coverage).map((r) => ({ ...r, uptake: shown(r.uptake), coverage: shown(r.coverage) }));
}

const bars = (list: readonly RateRow[]) =>
  list.filter((r) => r.denominator > 0).map((r) => ({ label: r.label, value: r.rate, lower: r.lower, upper: r.upper }));

function charts(uptake: Breakdown, coverage: Breakdown) {
  const chart = (id: string, title: string, list: readonly RateRow[]) =>
    bars(list).length ? rankedBarChart({ id, title, bars: bars(list), max: 1 }) : null;
  return {
    ageUptake: chart('age-uptake', 'Uptake by age band, with 95% confidence intervals', uptake.byAge),
    quintileUptake: chart(
      'quintile-uptake',
      'Uptake by deprivation quintile, with 95% confidence intervals',
      uptake.byQuintile,
    ),
    quintileCoverage: chart(
      'quintile-coverage',
      'Coverage by deprivation quintile, with 95% confidence intervals',
      coverage.byQuintile,
    ),
    practiceUptake: chart(
      'practice-uptake',
      'Uptake by GP practice, highest first, with 95% confidence intervals',
      uptake.byPractice,
    ),
    practiceCoverage: chart(
      'practice-coverage',
      'Coverage by GP practice, highest first, with 95% confidence intervals',
      coverage.byPractice,
    ),
  };
}

interface Query {
  office?: string;
  from?: string;
  to?: string;
  site?: string;
  location?: string;
}

/**
 * Uptake and coverage (issue 7, item 2) for one office and period: by age band, IMD quintile and GP practice, with
 * 95% confidence intervals, ranked charts and a trend over reporting years; filterable by the invitation's site
 * and location. Needs reports.view.
 */
export function registerUptakePages(app: FastifyInstance, options: HubOptions): void {
  const db = options.db;

  async function choose(request: FastifyRequest) {
    const query = (request.query ?? {}) as Query;
    const today = app.today();
    const offices = await db.selectFrom('screening_office').select(['code', 'name']).orderBy('name').execute();
    const code = query.office ?? (offices.length === 1 ? offices[0]!.code : '');
    const office = offices.find((o) => o.code === code);
    const errors: FieldErrors = {};
    if (!office && query.office !== undefined) errors.office = 'Choose a screening office';
    const fallback = reportingYear(lastCompleteReportingYear(today));
    const from = query.from?.trim() || (query.to ? '' : fallback.from);
    const to = query.to?.trim() || (query.from ? '' : fallback.to);
    if (!from) errors.from = 'Enter the start date';
    else if (!isIsoDate(from)) errors.from = 'Start date must be a real date, like 2025-04-01';
    if (!to) errors.to = 'Enter the end date';
    else if (!isIsoDate(to)) errors.to = 'End date must be a real date, like 2026-03-31';
    if (!errors.from && !errors.to) Object.assign(errors, periodProblems(from, to, today));
    const places = office ? await officePlaces(db, office.code) : { sites: [], locations: [] };
    const site = query.site?.trim() || null;
    const location = query.location?.trim() || null;
    if (office && site && !places.sites.some((s) => s.id === site)) errors.site = 'Choose a site from the list';
    if (office && location && !places.locations.some((l) => l.id === location))
      errors.location = 'Choose a location from the list';
    return {
      offices,
      office,
      places,
      today,
      filter: { from, to, site, location },
      values: { office: code, from, to, site: site ?? '', location: location ?? '' },
      errors,
    };
  }

  /** The page without figures: the form, with the choice made and any problems with it. */
  function baseView(chosen: Awaited<ReturnType<typeof choose>>, errors: FieldErrors) {
    return {
      title: 'Uptake and coverage',
      offices: chosen.offices,
      office: chosen.office,
      sites: chosen.places.sites,
      locations: chosen.places.locations,
      values: chosen.values,
      errors,
      windowMonths: UPTAKE_WINDOW_MONTHS,
      coverageAges: `${COVERAGE_MIN_AGE} to ${COVERAGE_END_AGE - 1}`,
      coverageMonths: COVERAGE_MONTHS,
    };
  }

  /** The counts behind the page and its downloads, for a valid choice. */
  async function figures(
    office: { code: string },
    filter: { from: string; to: string; site: string | null; location: string | null },
  ) {
    const names = await practiceNames(db);
    const uptake = breakdown(await uptakeCounts(db, { office: office.code, ...filter }), names);
    const coverage = breakdown(await coverageCounts(db, office.code, filter.to), names);
    return {
      uptake,
      coverage,
      tables: {
        age: sideBySide(uptake.byAge, coverage.byAge),
        deprivation: sideBySide(uptake.byQuintile, coverage.byQuintile),
        practice: sideBySide(uptake.byPractice, coverage.byPractice),
      } satisfies Record<UptakeCsvTable, unknown>,
    };
  }

  app.get('/reports/uptake', { preHandler: pageNeeds('reports.view') }, async (request, reply) => {
    const chosen = await choose(request);
    const base = baseView(chosen, chosen.errors);
    const invalid = Object.keys(chosen.errors).length > 0;
    if (!chosen.office || invalid) return page(request, reply.code(invalid ? 400 : 200), 'uptake.njk', base);
    const office = chosen.office;
    const { from, to, site, location } = chosen.filter;
    const today = chosen.today;
    const finalBefore = uptakeFinalBefore(today);
    const { uptake, coverage } = await figures(office, chosen.filter);
    const trend = await uptakeTrend(db, {
      office: office.code,
      site,
      location,
      lastYear: reportingYearOf(to),
      count: TREND_YEARS,
      today,
      finalBefore,
    });
    const lookup = await imdLookupStatus(db);
    await recordAudit(db, actorOf(request), {
      action: 'reports.uptake.view',
      entityType: 'report',
      entityId: 'uptake',
      detail: { office: office.code, from, to, site, location },
    });
    const trendRows = trend.map((t) => ({
      label: t.period.label,
      coverageOn: t.coverageOn,
      provisional: t.provisional,
      uptake: shown(t.uptake),
      coverage: shown(t.coverage),
    }));
    // The downloads take the same choice as the page.
    const csvQuery = new URLSearchParams({ office: office.code, from, to });
    if (site) csvQuery.set('site', site);
    if (location) csvQuery.set('location', location);
    return page(request, reply, 'uptake.njk', {
      ...base,
      from,
      to,
      site: chosen.places.sites.find((s) => s.id === site),
      location: chosen.places.locations.find((l) => l.id === location),
      provisional: to >= finalBefore,
      finalBefore,
      overall: { uptake: shown(uptake.overall), coverage: shown(coverage.overall) },
      byAge: rows(uptake.byAge, coverage.byAge),
      byQuintile: rows(uptake.byQuintile, coverage.byQuintile),
      byPractice: rows(uptake.byPractice, coverage.byPractice),
      csv: Object.fromEntries(UPTAKE_CSV_TABLE_IDS.map((t) => [t, `/reports/uptake/${t}.csv?${csvQuery}`])),
      charts: {
        ...charts(uptake, coverage),
        trend: lineChart({
          id: 'trend',
          title: 'Uptake and coverage by reporting year',
          xLabels: trend.map((t) => t.period.label),
          series: [
            { name: 'Uptake', values: trend.map((t) => t.uptake.rate) },
            { name: 'Coverage at the year end', values: trend.map((t) => t.coverage.rate) },
          ],
          min: 0,
          max: 1,
        }),
      },
      trend: trendRows,
      lookup: { ...lookup, synthetic: lookup.sources.includes(DEMO_IMD_SOURCE) },
    });
  });

  // Each table as CSV, for the same choice (the page's query string); a bad choice gets the page with its errors.
  for (const table of UPTAKE_CSV_TABLE_IDS) {
    app.get(`/reports/uptake/${table}.csv`, { preHandler: pageNeeds('reports.view') }, async (request, reply) => {
      const chosen = await choose(request);
      const office = chosen.office;
      if (!office || Object.keys(chosen.errors).length > 0) {
        const errors = office ? chosen.errors : { ...chosen.errors, office: 'Choose a screening office' };
        return page(request, reply.code(400), 'uptake.njk', baseView(chosen, errors));
      }
      const { from, to, site, location } = chosen.filter;
      const { tables } = await figures(office, chosen.filter);
      await recordAudit(db, actorOf(request), {
        action: 'reports.uptake.download',
        entityType: 'report',
        entityId: 'uptake',
        detail: { office: office.code, from, to, site, location, table },
      });
      const input = {
        table,
        office: `${office.name} (${office.code})`,
        from,
        to,
        site: chosen.places.sites.find((s) => s.id === site)?.name ?? null,
        location: chosen.places.locations.find((l) => l.id === location)?.name ?? null,
        rows: tables[table],
      };
      return reply
        .headers(csvDownloadHeaders(uptakeCsvName({ table, office: office.code, from, to })))
        .send(uptakeCsv(input));
    });
  }
}
