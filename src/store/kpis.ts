/**
 * KPIs in the store: for one screening office and a run of reporting years, the numerators and denominators of each
 * indicator (src/pathway/kpis.ts defines them and says red, amber or green) counted from the live tables: episode,
 * appointment and clinic, exam_result, assessment_outcome, communication and participant. One query an indicator for
 * all the years at once, except coverage (a snapshot at each year's end: one query a year).
 *
 * The office of an episode is episode.bso_code; coverage counts the women the office holds today (participant.bso_code),
 * so an earlier year's coverage is over today's population (women who have since moved away are not in it).
 */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { sql } from 'kysely';
import { compareIsoDate, type IsoDate } from '../pathway/dates.js';
import {
  expectedInvasive,
  KPI_IDS,
  kpiFigure,
  NhsbspStandardsError,
  parseStandards,
  type KpiCount,
  type KpiFigure,
  type KpiId,
  type NhsbspStandards,
  type ScreenedGroup,
} from '../pathway/kpis.js';
import { reportingYear } from '../pathway/reporting-year.js';
import { packageRoot } from '../paths.js';
import type { Db } from './database.js';
import { reportingYearOfSql } from './reporting-year-sql.js';

// --- The standards file ----------------------------------------------------------------------------------------

export const SHIPPED_STANDARDS_FILE = join(packageRoot, 'config', 'nhsbsp-standards.json');

/** The standards file in use: $NHSBSP_STANDARDS_FILE when set (relative to the working folder), else the shipped one. */
export function standardsFile(env: NodeJS.ProcessEnv = process.env): string {
  const chosen = env.NHSBSP_STANDARDS_FILE?.trim();
  return chosen ? resolve(chosen) : SHIPPED_STANDARDS_FILE;
}

/** Reads and checks the standards file; a bad one throws NhsbspStandardsError naming the file and each bad key. */
export function loadNhsbspStandards(env: NodeJS.ProcessEnv = process.env): {
  file: string;
  standards: NhsbspStandards;
} {
  const file = standardsFile(env);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new NhsbspStandardsError(file, [`the file cannot be read (${(error as Error).message})`]);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new NhsbspStandardsError(file, [`the file is not valid JSON (${(error as Error).message})`]);
  }
  return { file, standards: parseStandards(json, file) };
}

// --- Counting ----------------------------------------------------------------------------------------------------

const num = (v: unknown) => Number(v ?? 0);

export interface YearCounts {
  year: number;
  /** The date the counts run to: the year's 31 March, or asOf for the year under way. */
  asOf: IsoDate;
  counts: Record<KpiId, KpiCount>;
  /** The SDR's expected number, with the women screened by age and first or repeat screen behind it. */
  screenedGroups: ScreenedGroup[];
}

const empty = (): Record<KpiId, KpiCount> =>
  Object.fromEntries(KPI_IDS.map((id) => [id, { numerator: 0, denominator: 0 }])) as Record<KpiId, KpiCount>;

/**
 * Each KPI's numerator and denominator for the office in each of `years` (reporting years, by the year they start),
 * counting only what had happened by `asOf`. The SDR's denominator is the expected number of invasive cancers.
 */
export async function kpiCounts(
  db: Db,
  office: string,
  years: readonly number[],
  asOf: IsoDate,
  standards: NhsbspStandards,
): Promise<YearCounts[]> {
  const sorted = [...new Set(years)].sort((a, b) => a - b);
  if (sorted.length === 0) return [];
  const from = reportingYear(sorted[0]!).from;
  const lastEnd = reportingYear(sorted.at(-1)!).to;
  const to = compareIsoDate(lastEnd, asOf) < 0 ? lastEnd : asOf;
  const out = new Map<number, YearCounts>(
    sorted.map((year) => {
      const end = reportingYear(year).to;
      return [year, { year, asOf: compareIsoDate(end, asOf) < 0 ? end : asOf, counts: empty(), screenedGroups: [] }];
    }),
  );
  const add = (year: number, id: KpiId, numerator: number, denominator: number) => {
    const row = out.get(year);
    if (!row) return;
    row.counts[id].numerator += numerator;
    row.counts[id].denominator += denominator;
  };

  // Uptake: invitations (C and R episodes opened in the year, she 50 to under 71 that day); screened within 6 months.
  // An invitation whose 6 months are not over counts only once she is screened.
  const uptake = await sql<{ year: number; invited: string; screened: string }>`
    select ${reportingYearOfSql(sql`x.opened_on`)} as year,
      count(*) filter (where x.screened_in_time or x.time_up) as invited,
      count(*) filter (where x.screened_in_time) as screened
    from (
      select e.opened_on,
        (e.screened_on is not null and e.screened_on <= ${asOf}::date
          and e.screened_on <= (e.opened_on + interval '6 months')::date) as screened_in_time,
        ((e.opened_on + interval '6 months')::date <= ${asOf}::date) as time_up
      from episode e join participant p on p.id = e.participant_id
      where e.bso_code = ${office} and e.episode_type in ('C', 'R')
        and e.opened_on between ${from}::date and ${to}::date
        and p.date_of_birth <= (e.opened_on - interval '50 years')::date
        and p.date_of_birth > (e.opened_on - interval '71 years')::date
    ) x
    group by 1`.execute(db);
  for (const r of uptake.rows) add(num(r.year), 'uptake', num(r.screened), num(r.invited));

  // Coverage: a snapshot at each year's end (or asOf).
  for (const row of out.values()) {
    const d = row.asOf;
    const coverage = await sql<{ eligible: string; covered: string }>`
      select count(*) as eligible,
        count(*) filter (where exists (
          select 1 from episode e where e.participant_id = p.id
            and e.screened_on > (${d}::date - interval '36 months')::date and e.screened_on <= ${d}::date
        )) as covered
      from participant p
      where p.bso_code = ${office} and p.gp_practice_code is not null
        and p.date_of_birth <= (${d}::date - interval '53 years')::date
        and p.date_of_birth > (${d}::date - interval '71 years')::date
        and (p.date_of_death is null or p.date_of_death > ${d}::date)
        and not (p.ceased_reason is not distinct from 'bilateral_mastectomy' and p.ceased_on <= ${d}::date)`.execute(
      db,
    );
    const c = coverage.rows[0];
    add(row.year, 'coverage', num(c?.covered), num(c?.eligible));
  }

  // Round length: routine recall episodes, by the year of the first offered appointment; within 36 months of her
  // previous screen.
  const round = await sql<{ year: number; offered: string; within: string }>`
    with first_offer as (
      select a.episode_id, min(c.clinic_date) as first_offered
      from appointment a
        join clinic c on c.id = a.clinic_id
        join episode e on e.id = a.episode_id
      where c.purpose = 'screening' and e.bso_code = ${office} and e.episode_type = 'R'
      group by a.episode_id
    )
    select ${reportingYearOfSql(sql`f.first_offered`)} as year, count(*) as offered,
      count(*) filter (where f.first_offered <= (prev.screened_on + interval '36 months')::date) as within
    from first_offer f
      join episode e on e.id = f.episode_id
      cross join lateral (
        select max(e2.screened_on) as screened_on from episode e2
        where e2.participant_id = e.participant_id and e2.id <> e.id and e2.screened_on < f.first_offered
      ) prev
    where prev.screened_on is not null and f.first_offered between ${from}::date and ${to}::date
    group by 1`.execute(db);
  for (const r of round.rows) add(num(r.year), 'round_length', num(r.within), num(r.offered));

  // Normal results: the participant's result letter sent within 14 days of the day she was screened.
  const normal = await sql<{ year: number; counted: string; within: string }>`
    select ${reportingYearOfSql(sql`x.screened`)} as year,
      count(*) filter (where x.within or x.sent_day is not null or x.screened + 14 < ${asOf}::date) as counted,
      count(*) filter (where x.within) as within
    from (
      select c.clinic_date as screened, l.sent_day,
        (l.sent_day is not null and l.sent_day <= c.clinic_date + 14) as within
      from exam_result r
        join episode e on e.id = r.episode_id
        join appointment a on a.id = r.appointment_id
        join clinic c on c.id = a.clinic_id
        left join lateral (
          select min((m.sent_at at time zone 'Europe/London')::date) as sent_day from communication m
          where m.appointment_id = a.id and m.recipient = 'participant' and m.kind = 'result_normal'
            and m.sent_at is not null and (m.sent_at at time zone 'Europe/London')::date <= ${asOf}::date
        ) l on true
      where r.result = 'routine_recall' and e.bso_code = ${office} and e.episode_type not in ('H', 'T')
        and c.clinic_date between ${from}::date and ${to}::date
    ) x
    group by 1`.execute(db);
  for (const r of normal.rows) add(num(r.year), 'normal_results_14_days', num(r.within), num(r.counted));

  // Assessment: the first assessment appointment within 21 days of the day she was screened.
  const assessment = await sql<{ year: number; counted: string; within: string }>`
    select ${reportingYearOfSql(sql`x.screened`)} as year,
      count(*) filter (where x.first_offered is not null or x.screened + 21 < ${asOf}::date) as counted,
      count(*) filter (where x.first_offered <= x.screened + 21) as within
    from (
      select c.clinic_date as screened,
        (select min(c2.clinic_date) from appointment a2 join clinic c2 on c2.id = a2.clinic_id
          where a2.episode_id = r.episode_id and c2.purpose = 'assessment' and c2.clinic_date >= c.clinic_date) as first_offered
      from exam_result r
        join episode e on e.id = r.episode_id
        join appointment a on a.id = r.appointment_id
        join clinic c on c.id = a.clinic_id
      where r.result = 'recall_assessment' and e.bso_code = ${office} and e.episode_type not in ('H', 'T')
        and c.clinic_date between ${from}::date and ${to}::date
    ) x
    group by 1`.execute(db);
  for (const r of assessment.rows) add(num(r.year), 'assessment_21_days', num(r.within), num(r.counted));

  // Women screened: referral to assessment (first or repeat screen), cancers and invasive cancers, by age.
  const screened = await sql<{
    year: number;
    age: number;
    first: boolean;
    women: string;
    referred: string;
    cancers: string;
    invasive: string;
  }>`
    select ${reportingYearOfSql(sql`x.screened_on`)} as year, x.age, x.first,
      count(*) as women,
      count(*) filter (where x.referred) as referred,
      count(*) filter (where x.cancer) as cancers,
      count(*) filter (where x.invasive) as invasive
    from (
      select e.screened_on,
        date_part('year', age(e.screened_on, p.date_of_birth))::int as age,
        not exists (select 1 from episode e2 where e2.participant_id = e.participant_id
          and e2.screened_on < e.screened_on) as first,
        exists (select 1 from exam_result r where r.episode_id = e.id and r.result = 'recall_assessment') as referred,
        exists (select 1 from assessment_outcome o where o.episode_id = e.id and o.superseded_at is null
          and o.outcome like 'malignant%' and o.decided_on <= ${asOf}::date) as cancer,
        exists (select 1 from assessment_outcome o where o.episode_id = e.id and o.superseded_at is null
          and o.outcome = 'malignant_invasive' and o.decided_on <= ${asOf}::date) as invasive
      from episode e join participant p on p.id = e.participant_id
      where e.bso_code = ${office} and e.episode_type not in ('H', 'T')
        and e.screened_on between ${from}::date and ${to}::date
    ) x
    group by 1, 2, 3`.execute(db);
  for (const r of screened.rows) {
    const year = num(r.year);
    const women = num(r.women);
    add(year, r.first ? 'referral_first' : 'referral_repeat', num(r.referred), women);
    add(year, 'cancer_detection', num(r.cancers), women);
    add(year, 'sdr', num(r.invasive), 0);
    out.get(year)?.screenedGroups.push({ age: num(r.age), first: Boolean(r.first), count: women });
  }
  for (const row of out.values())
    row.counts.sdr.denominator = expectedInvasive(row.screenedGroups, standards.sdrExpectedRates.bands);

  return [...out.values()];
}

export interface YearFigures {
  year: number;
  asOf: IsoDate;
  figures: Record<KpiId, KpiFigure>;
}

/** kpiCounts turned into figures with red, amber or green against the standards. */
export async function kpiFigures(
  db: Db,
  office: string,
  years: readonly number[],
  asOf: IsoDate,
  standards: NhsbspStandards,
): Promise<YearFigures[]> {
  const counts = await kpiCounts(db, office, years, asOf, standards);
  return counts.map((c) => ({
    year: c.year,
    asOf: c.asOf,
    figures: Object.fromEntries(
      KPI_IDS.map((id) => [id, kpiFigure(id, c.counts[id], standards.standards[id])]),
    ) as Record<KpiId, KpiFigure>,
  }));
}
