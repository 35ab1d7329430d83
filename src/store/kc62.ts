/**
 * KC62 and KC63 from the live data: one SQL loads the per-episode facts of a reporting year (for one office or all),
 * grouped so that identical facts come back as one row with a count; src/pathway/kc62.ts says which cells each
 * counts in. The drill-down runs the same SQL ungrouped (narrowed to the table's episode types and the band's
 * ages) and keeps the episodes whose cells include the one asked for.
 *
 * Facts, per episode (the rules are in src/pathway/kc62.ts):
 * - relevant date: referrals (S, G) the screening date; others the first screening appointment's clinic date,
 *   else the day the episode opened. Only episodes opened by the end of the year and no more than
 *   OPENED_BEFORE_YEARS before its start are looked at (an invitation is not left open for longer).
 * - age at the relevant date (PostgreSQL age(): a 29 February birthday is reached on 1 March, as ageOn does);
 * - her latest screen before the relevant date in any other episode, within PREVIOUS_SCREEN_YEARS or not;
 * - screened (screened_on set), referred (an exam result of recall to assessment), needle/open biopsy, the B5
 *   needle biopsy's date against the first open biopsy, and the current assessment outcome (size, early recall).
 * The office of an episode is episode.bso_code; KC63's is her current office (participant.bso_code).
 */
import { sql, type RawBuilder } from 'kysely';
import { AGE_BANDS, type BandKey } from '../pathway/age-bands.js';
import {
  COVERAGE_END_AGE,
  COVERAGE_MIN_AGE,
  coverageCells,
  coverageDate,
  coverageWindowStart,
  episodeCells,
  KC63_BANDS,
  PREVIOUS_SCREEN_YEARS,
  tallyKc62,
  tallyKc63,
  type CellKey,
  type EpisodeFacts,
  type EpisodeType,
  type Kc62Counts,
  type Kc62Table,
  type Kc63BandKey,
  type Kc63CellKey,
  type Kc63Measure,
  type Measure,
  type Outcome,
  type PreviousScreen,
} from '../pathway/kc62.js';
import { reportingYear } from '../pathway/reporting-year.js';
import { addYears, type IsoDate } from '../pathway/dates.js';
import type { Db } from './database.js';

/** Episodes opened more than this long before the year starts are not looked at (see the header). */
export const OPENED_BEFORE_YEARS = 1;

/**
 * Runs report queries with PostgreSQL's JIT off: the planner's row estimates for these joins are far too high, so
 * it would JIT-compile them, which costs over a second every time and saves nothing (bench/reports.ts).
 */
async function withoutJit<T>(db: Db, work: (trx: Db) => Promise<T>): Promise<T> {
  return db.transaction().execute(async (trx) => {
    await sql`set local jit = off`.execute(trx);
    return work(trx);
  });
}

/** One office's code, or null for every office. */
export type OfficeScope = string | null;

interface FactRow {
  episode_type: EpisodeType;
  age: number;
  previous: PreviousScreen;
  screened: boolean;
  referred: boolean;
  needle: boolean;
  open: boolean;
  outcome: Outcome | null;
  size_mm: number | null;
  early_recall: boolean;
  b5_first: boolean;
}

const toFacts = (r: FactRow): EpisodeFacts => ({
  episodeType: r.episode_type,
  age: r.age,
  previous: r.previous,
  screened: r.screened,
  referred: r.referred,
  needleBiopsy: r.needle,
  openBiopsy: r.open,
  outcome: r.outcome,
  sizeMm: r.size_mm === null ? null : Number(r.size_mm),
  earlyRecall: r.early_recall,
  b5NeedleFirst: r.b5_first,
});

const TABLE_TYPES: Record<Kc62Table, EpisodeType[]> = {
  A: ['C'],
  B: ['R'],
  C1: ['R'],
  C2: ['R'],
  D: ['E'],
  E: ['H', 'T'],
  F1: ['S'],
  F2: ['G'],
  T: ['C', 'R', 'E', 'H', 'T', 'G', 'S'],
};

interface Narrowing {
  types?: EpisodeType[];
  minAge?: number;
  maxAge?: number;
}

/**
 * The facts of every episode in the year's cohort. `select` is what comes back: the grouped fact columns with a
 * count, or each episode with who she is.
 */
export function factsQuery(
  office: OfficeScope,
  year: number,
  mode: 'grouped' | 'episodes',
  narrow: Narrowing = {},
): RawBuilder<unknown> {
  const { from, to } = reportingYear(year);
  const openedFrom = addYears(from, -OPENED_BEFORE_YEARS);
  const officeFilter = office === null ? sql`true` : sql`f.bso_code = ${office}`;
  const typeFilter = narrow.types ? sql`f.episode_type in (${sql.join(narrow.types)})` : sql`true`;
  const ageFilter =
    narrow.minAge !== undefined && narrow.maxAge !== undefined
      ? sql`f.age between ${narrow.minAge} and ${Math.min(narrow.maxAge, 200)}`
      : sql`true`;
  // The facts are kept per episode in episode_fact (migration 0015); only the previous-screen split is worked out
  // here, against the relevant date.
  const facts: RawBuilder<unknown> = sql`
    with f as (
      select f.*,
        case when f.prev_screened_on is null then 'none'
          when f.prev_screened_on >= (f.rel - make_interval(years => ${PREVIOUS_SCREEN_YEARS}))::date then 'within5'
          else 'over5' end as previous
      from episode_fact f
      where ${officeFilter} and ${typeFilter} and f.opened_on between ${openedFrom}::date and ${to}::date
        and f.rel between ${from}::date and ${to}::date
    )`;
  const columns = sql`f.episode_type, f.age, f.previous, f.screened, f.referred, f.needle, f.open, f.outcome,
    f.size_mm, f.early_recall, f.b5_first`;
  if (mode === 'grouped') return sql`${facts} select ${columns}, count(*)::int as n from f group by ${columns}`;
  return sql`${facts}
    select ${columns}, f.episode_id, f.participant_id, p.nhs_number, p.given_name, p.family_name, p.date_of_birth,
      f.rel, e.screened_on
    from f join participant p on p.id = f.participant_id join episode e on e.id = f.episode_id
    where ${ageFilter}
    order by f.rel, p.family_name, f.episode_id`;
}

interface EpisodeListRow {
  episode_id: string;
  participant_id: string;
  nhs_number: string;
  given_name: string;
  family_name: string;
  date_of_birth: string;
  rel: string;
  screened_on: string | null;
}

export interface Kc62Report {
  office: OfficeScope;
  year: number;
  counts: Kc62Counts;
  /** Episodes in the year's cohort (rows of the return, not cells). */
  episodes: number;
  coverage: Map<Kc63CellKey, number>;
  coverageAt: IsoDate;
}

/** The whole KC62 return (every table and part) and KC63 coverage at the year's 31 March. */
export async function kc62Report(db: Db, office: OfficeScope, year: number): Promise<Kc62Report> {
  const query = factsQuery(office, year, 'grouped') as RawBuilder<FactRow & { n: number }>;
  const coverageAt = coverageDate(year);
  // The two are independent: on PostgreSQL they run at once, on two connections.
  const [{ rows }, coverage] = await Promise.all([
    withoutJit(db, (trx) => query.execute(trx)),
    kc63Coverage(db, office, coverageAt),
  ]);
  return {
    office,
    year,
    counts: tallyKc62(rows.map((r) => ({ facts: toFacts(r), count: r.n }))),
    episodes: rows.reduce((n, r) => n + r.n, 0),
    coverage,
    coverageAt,
  };
}

interface CoverageRow {
  id: string;
  nhs_number: string;
  given_name: string;
  family_name: string;
  date_of_birth: string;
  age: number;
  covered: boolean;
  last_screened_on: string | null;
}

export function coverageQuery(
  office: OfficeScope,
  at: IsoDate,
  mode: 'grouped' | 'women',
  minAge = COVERAGE_MIN_AGE,
): RawBuilder<unknown> {
  // Aged 53 (or minAge) to under 71 at `at`: born on or before `at` less minAge years, after `at` less 71 years
  // (at is 31 March, so no 29 February clamp can move a bound).
  const bornBy = addYears(at, -minAge);
  const bornAfter = addYears(at, -COVERAGE_END_AGE);
  const windowStart = coverageWindowStart(at);
  const officeFilter = office === null ? sql`true` : sql`p.bso_code = ${office}`;
  const base = sql`
    with w as (
      select p.id, p.nhs_number, p.given_name, p.family_name, p.date_of_birth,
        date_part('year', age(${at}::date, p.date_of_birth))::int as age,
        (select max(e.screened_on) from episode e
          where e.participant_id = p.id and e.screened_on <= ${at}::date) as last_screened_on
      from participant p
      where ${officeFilter} and p.date_of_birth <= ${bornBy}::date and p.date_of_birth > ${bornAfter}::date
        and (p.date_of_death is null or p.date_of_death > ${at}::date)
        and (p.ceased_on is null or p.ceased_on > ${at}::date)
    )`;
  const covered = sql`coalesce(w.last_screened_on > ${windowStart}::date, false)`;
  if (mode === 'grouped')
    return sql`${base} select w.age, ${covered} as covered, count(*)::int as n from w group by 1, 2`;
  return sql`${base}
    select w.*, ${covered} as covered from w order by w.family_name, w.given_name, w.id`;
}

/** KC63: women eligible and women screened in the last 36 months, at `at` (31 March), by band. */
export async function kc63Coverage(db: Db, office: OfficeScope, at: IsoDate): Promise<Map<Kc63CellKey, number>> {
  const query = coverageQuery(office, at, 'grouped') as RawBuilder<{ age: number; covered: boolean; n: number }>;
  const { rows } = await withoutJit(db, (trx) => query.execute(trx));
  return tallyKc63(rows.map((r) => ({ facts: { age: r.age, screenedInWindow: r.covered }, count: r.n })));
}

export interface CellEpisode {
  episodeId: string;
  participantId: string;
  nhsNumber: string;
  givenName: string;
  familyName: string;
  dateOfBirth: string;
  episodeType: EpisodeType;
  /** The relevant date (first test date offered, or the screening date of a referral). */
  relevantDate: string;
  screenedOn: string | null;
  age: number;
  outcome: Outcome | null;
  sizeMm: number | null;
}

/** The episodes behind one KC62 cell, in relevant-date order. */
export async function kc62CellEpisodes(
  db: Db,
  office: OfficeScope,
  year: number,
  cell: { table: Kc62Table; measure: Measure; band: BandKey },
): Promise<CellEpisode[]> {
  const band = cell.band === 'all' ? undefined : AGE_BANDS.find((b) => b.id === cell.band);
  const narrow: Narrowing = { types: TABLE_TYPES[cell.table] };
  if (band) Object.assign(narrow, { minAge: band.min, maxAge: band.max });
  const query = factsQuery(office, year, 'episodes', narrow) as RawBuilder<FactRow & EpisodeListRow>;
  const { rows } = await withoutJit(db, (trx) => query.execute(trx));
  const key: CellKey = `${cell.table}.${cell.measure}.${cell.band}`;
  return rows
    .filter((r) => episodeCells(toFacts(r)).includes(key))
    .map((r) => ({
      episodeId: r.episode_id,
      participantId: r.participant_id,
      nhsNumber: r.nhs_number,
      givenName: r.given_name,
      familyName: r.family_name,
      dateOfBirth: r.date_of_birth,
      episodeType: r.episode_type,
      relevantDate: r.rel,
      screenedOn: r.screened_on,
      age: r.age,
      outcome: r.outcome,
      sizeMm: r.size_mm === null ? null : Number(r.size_mm),
    }));
}

export interface CoverageWoman {
  participantId: string;
  nhsNumber: string;
  givenName: string;
  familyName: string;
  dateOfBirth: string;
  age: number;
  lastScreenedOn: string | null;
}

/** The women behind one KC63 cell. */
export async function kc63CellWomen(
  db: Db,
  office: OfficeScope,
  year: number,
  cell: { measure: Kc63Measure; band: Kc63BandKey },
): Promise<CoverageWoman[]> {
  const at = coverageDate(year);
  const band = KC63_BANDS.find((b) => b.id === cell.band);
  const query = coverageQuery(office, at, 'women', band?.min) as RawBuilder<CoverageRow>;
  const { rows } = await withoutJit(db, (trx) => query.execute(trx));
  const key: Kc63CellKey = `KC63.${cell.measure}.${cell.band}`;
  return rows
    .filter((r) => coverageCells({ age: r.age, screenedInWindow: r.covered }).includes(key))
    .map((r) => ({
      participantId: r.id,
      nhsNumber: r.nhs_number,
      givenName: r.given_name,
      familyName: r.family_name,
      dateOfBirth: r.date_of_birth,
      age: r.age,
      lastScreenedOn: r.last_screened_on,
    }));
}
