/**
 * Uptake and coverage counts for one screening office (issue 7, item 2), grouped by age in years, IMD quintile and
 * GP practice; the rules are src/pathway/uptake.ts's (its constants are bound into the SQL here).
 *
 * Grouping is by the woman's current GP practice and postcode (the record keeps no history of them by date), and
 * for uptake by her age on the invitation date; a site or location filter takes the invitation's first screening
 * appointment (the earliest booked in the episode) and its clinic's site and location.
 */
import { sql } from 'kysely';
import {
  byAgeBand,
  byPractice,
  byQuintile,
  COVERAGE_EXCLUDED_CEASING,
  overall,
  rate,
  ROUTINE_INVITATION_TYPES,
  UPTAKE_WINDOW_MONTHS,
  type GroupCount,
  type Period,
  type Rate,
  type RateRow,
} from '../pathway/uptake.js';
import type { IsoDate } from '../pathway/dates.js';
import { COVERAGE_END_AGE, COVERAGE_MIN_AGE, COVERAGE_MONTHS } from '../pathway/kc62.js';
import { reportingYear, reportingYearOf } from '../pathway/reporting-year.js';
import type { Db } from './database.js';
import { reportingYearOfSql } from './reporting-year-sql.js';

export interface UptakeFilter {
  office: string;
  from: IsoDate;
  to: IsoDate;
  /** The invitation's first screening appointment's clinic site. */
  site?: string | null;
  /** The invitation's first screening appointment's clinic location. */
  location?: string | null;
}

const months = (n: number) => sql.lit(`${n} months`);
const years = (n: number) => sql.lit(`${n} years`);
const ROUTINE = sql.join(ROUTINE_INVITATION_TYPES.map((t) => sql`${t}`));

/** The joins that give each participant row `p` her IMD quintile (null when her postcode is not in the lookup). */
const QUINTILE_JOIN = sql`left join postcode_lsoa pl on pl.postcode_key = p.postcode_key
  left join lsoa_imd li on li.lsoa_code = pl.lsoa_code`;

/**
 * The site/location condition on an episode `e` opened from `from` to `to`, through its first screening appointment
 * (the earliest booked; nothing when unfiltered). Appointments are looked for at clinics from `from` to a year after
 * `to` (an invitation's appointment is never before it), so the clinic date index narrows the search.
 */
function placeFilter(filter: Pick<UptakeFilter, 'site' | 'location' | 'from' | 'to'>) {
  if (!filter.site && !filter.location) return sql``;
  return sql`and e.id in (
    select f.episode_id from (
      select distinct on (a.episode_id) a.episode_id, c.site_id, c.location_id
      from clinic c join appointment a on a.clinic_id = c.id
      where c.purpose = 'screening' and a.episode_id is not null
        and c.clinic_date >= ${filter.from}::date and c.clinic_date <= ${filter.to}::date + interval '1 year'
      order by a.episode_id, a.booked_at, a.id
    ) f
    where true ${filter.site ? sql`and f.site_id = ${filter.site}` : sql``}
      ${filter.location ? sql`and f.location_id = ${filter.location}` : sql``})`;
}

interface CountRow {
  age: number;
  quintile: number | null;
  practice: string | null;
  numerator: number;
  denominator: number;
}

/** Routine invitations in the period (denominator) and those screened within the window (numerator), grouped. */
export async function uptakeCounts(db: Db, filter: UptakeFilter): Promise<GroupCount[]> {
  const { rows } = await sql<CountRow>`
    select extract(year from age(e.opened_on, p.date_of_birth))::int as age,
      li.imd_quintile::int as quintile,
      p.gp_practice_code as practice,
      count(*) filter (where e.screened_on >= e.opened_on
        and e.screened_on <= e.opened_on + interval ${months(UPTAKE_WINDOW_MONTHS)})::int as numerator,
      count(*)::int as denominator
    from episode e
    join participant p on p.id = e.participant_id
    ${QUINTILE_JOIN}
    where e.bso_code = ${filter.office}
      and e.episode_type in (${ROUTINE})
      and e.opened_on >= ${filter.from}::date and e.opened_on <= ${filter.to}::date
      ${placeFilter(filter)}
    group by 1, 2, 3`.execute(db);
  return rows;
}

/**
 * The office's coverage population on each date (participant `p`, date `d.on_date`), and `c`, set when she was
 * screened in the 36 months to that date: one pass over the screening episodes in the whole window, joined to the
 * dates, rather than a look-up per woman and date.
 */
function coveragePopulation(office: string, dates: readonly IsoDate[]) {
  return sql`
    with dates(on_date) as (select unnest(${[...dates]}::date[])),
    covered as (
      select distinct e.participant_id, d.on_date from episode e
      join dates d on e.screened_on > d.on_date - interval ${months(COVERAGE_MONTHS)} and e.screened_on <= d.on_date
      where e.screened_on is not null
    )
    select p.*, d.on_date, c.participant_id as covered_id
    from dates d
    join participant p on p.bso_code = ${office}
      and p.date_of_birth <= d.on_date - interval ${years(COVERAGE_MIN_AGE)}
      and p.date_of_birth > d.on_date - interval ${years(COVERAGE_END_AGE)}
      and (p.date_of_death is null or p.date_of_death > d.on_date)
      and not (coalesce(p.ceased_reason, '') = ${COVERAGE_EXCLUDED_CEASING} and p.ceased_on <= d.on_date)
    left join covered c on c.participant_id = p.id and c.on_date = d.on_date`;
}

/** The office's coverage population on `asOf` (denominator) and those screened in the last 36 months, grouped. */
export async function coverageCounts(db: Db, office: string, asOf: IsoDate): Promise<GroupCount[]> {
  const { rows } = await sql<CountRow>`
    select extract(year from age(w.on_date, w.date_of_birth))::int as age,
      li.imd_quintile::int as quintile,
      w.gp_practice_code as practice,
      count(w.covered_id)::int as numerator,
      count(*)::int as denominator
    from (${coveragePopulation(office, [asOf])}) w
    left join postcode_lsoa pl on pl.postcode_key = w.postcode_key
    left join lsoa_imd li on li.lsoa_code = pl.lsoa_code
    group by 1, 2, 3`.execute(db);
  return rows;
}

/** Coverage on each date, for the office as a whole. */
export async function coverageOnDates(db: Db, office: string, dates: readonly IsoDate[]): Promise<Map<IsoDate, Rate>> {
  const { rows } = await sql<{ on: IsoDate; numerator: number; denominator: number }>`
    select w.on_date::text as on, count(w.covered_id)::int as numerator, count(*)::int as denominator
    from (${coveragePopulation(office, dates)}) w
    group by w.on_date`.execute(db);
  return new Map(rows.map((r) => [r.on, rate(r.numerator, r.denominator)]));
}

export interface TrendPoint {
  period: Period;
  uptake: Rate;
  /** Coverage on the period's last day (or today, for the year not yet ended). */
  coverage: Rate;
  coverageOn: IsoDate;
  /** The year has not ended, or its last six months of invitations may still be taken up. */
  provisional: boolean;
}

/** Uptake per reporting year (1 April – 31 March), and coverage at each year end, for `count` years up to `lastYear`. */
export async function uptakeTrend(
  db: Db,
  filter: Omit<UptakeFilter, 'from' | 'to'> & { lastYear: number; count: number; today: IsoDate; finalBefore: IsoDate },
): Promise<TrendPoint[]> {
  const periods = Array.from({ length: filter.count }, (_, i) => reportingYear(filter.lastYear - filter.count + 1 + i));
  const { rows } = await sql<{ year: number; numerator: number; denominator: number }>`
    select ${reportingYearOfSql(sql`e.opened_on`)} as year,
      count(*) filter (where e.screened_on >= e.opened_on
        and e.screened_on <= e.opened_on + interval ${months(UPTAKE_WINDOW_MONTHS)})::int as numerator,
      count(*)::int as denominator
    from episode e
    where e.bso_code = ${filter.office}
      and e.episode_type in (${ROUTINE})
      and e.opened_on >= ${periods[0]!.from}::date and e.opened_on <= ${periods.at(-1)!.to}::date
      ${placeFilter({ ...filter, from: periods[0]!.from, to: periods.at(-1)!.to })}
    group by 1`.execute(db);
  const byYear = new Map(rows.map((r) => [r.year, r]));
  const coverageDates = periods.map((p) => (p.to < filter.today ? p.to : filter.today));
  const coverage = await coverageOnDates(db, filter.office, coverageDates);
  return periods.map((period, i) => {
    const row = byYear.get(reportingYearOf(period.from));
    const coverageOn = coverageDates[i]!;
    return {
      period,
      uptake: rate(row?.numerator ?? 0, row?.denominator ?? 0),
      coverage: coverage.get(coverageOn) ?? rate(0, 0),
      coverageOn,
      provisional: period.to >= filter.finalBefore,
    };
  });
}

/** Practice names (ODS code → name) of the office's practices and any practice named in the counts. */
export async function practiceNames(db: Db): Promise<Map<string, string>> {
  const rows = await db.selectFrom('gp_practice').select(['ods_code', 'name']).execute();
  return new Map(rows.map((r) => [r.ods_code, r.name]));
}

export interface Breakdown {
  overall: Rate;
  byAge: RateRow[];
  byQuintile: RateRow[];
  byPractice: RateRow[];
}

export function breakdown(counts: readonly GroupCount[], names: ReadonlyMap<string, string>): Breakdown {
  return {
    overall: overall(counts),
    byAge: byAgeBand(counts),
    byQuintile: byQuintile(counts),
    byPractice: byPractice(counts, names),
  };
}

/** The office's sites and locations, for the filters. */
export async function officePlaces(db: Db, office: string) {
  const [sites, locations] = await Promise.all([
    db.selectFrom('site').select(['id', 'name']).where('bso_code', '=', office).orderBy('name').execute(),
    db.selectFrom('location').select(['id', 'name']).where('bso_code', '=', office).orderBy('name').execute(),
  ]);
  return { sites, locations };
}
