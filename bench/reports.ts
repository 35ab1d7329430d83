/**
 * KC62 (with KC63 coverage) time: one office of ≈ 250,000 participants with 3 years of episodes, on PostgreSQL and
 * PGlite, and national scale (≈ 10 million participants in 40 offices) on PostgreSQL, for the whole country and
 * for one office in it. Goals: < 2 s for one office, < 60 s nationally. Figures, never assertions.
 *
 *   npx tsx bench/reports.ts [--participants 250000] [--national 10000000] [--offices 40]
 *                            [--backends pglite,postgres] [--runs 3]     (--national 0 skips national scale,
 *                            --participants 0 one office)     [--keep]   (keeps the PostgreSQL databases made)
 *   npx tsx bench/reports.ts --reuse postgres://…/sh_test_…   (measures a kept national database again)
 *
 * The data is made in SQL (generate_series, insert ... select), not with the demo loader, which is far too slow for
 * millions: participants aged 45 to 80, one episode each in the 3 reporting years to 31 March 2026 (and, for half of
 * them, one 3 years before, so routine recalls split into B, C1 and C2), a clinic a day, an appointment for each
 * episode, results, and assessment (biopsies, outcomes with sizes) for the ones recalled.
 * PostgreSQL: a fresh database on the server in DATABASE_URL (default postgres://postgres@127.0.0.1:5432/postgres).
 */
import { parseArgs } from 'node:util';
import { sql } from 'kysely';
import { openDatabase, type Db } from '../src/store/database.js';
import { migrate } from '../src/store/migrate.js';
import { kc62CellEpisodes, kc62Report } from '../src/store/kc62.js';
import { freshDatabase } from '../test/support/database.js';

const { values } = parseArgs({
  options: {
    participants: { type: 'string', default: '250000' },
    national: { type: 'string', default: '10000000' },
    offices: { type: 'string', default: '40' },
    backends: { type: 'string', default: 'pglite,postgres' },
    runs: { type: 'string', default: '3' },
    keep: { type: 'boolean', default: false },
    reuse: { type: 'string' },
  },
});
const PARTICIPANTS = Number(values.participants);
const NATIONAL = Number(values.national);
const OFFICES = Number(values.offices);
const RUNS = Number(values.runs);
const YEAR = 2025;
process.env.DATABASE_URL ??= 'postgres://postgres@127.0.0.1:5432/postgres';

const seconds = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

async function timed<T>(label: string, work: () => Promise<T>): Promise<T> {
  const start = performance.now();
  const result = await work();
  console.log(`  ${label}: ${seconds(performance.now() - start)}`);
  return result;
}

/** Runs one generating statement, printing its time. */
async function step(db: Db, query: { execute(db: Db): Promise<unknown>; compile(db: Db): { sql: string } }) {
  const start = performance.now();
  await query.execute(db);
  const what = query.compile(db).sql.trim().split(/\s+/).slice(0, 3).join(' ');
  console.log(`    ${what}: ${seconds(performance.now() - start)}`);
}

/** Offices B000..B0nn, each with a static site and its location. */
async function offices(db: Db, count: number) {
  await step(
    db,
    sql`insert into screening_office (code, name)
    select 'B' || lpad(o::text, 3, '0'), 'Bench office ' || o from generate_series(0, ${count - 1}::int) o`,
  );
  await step(
    db,
    sql`insert into site (id, bso_code, name, kind)
    select 'site-B' || lpad(o::text, 3, '0'), 'B' || lpad(o::text, 3, '0'), 'Bench site ' || o, 'static'
    from generate_series(0, ${count - 1}::int) o`,
  );
  await step(
    db,
    sql`insert into location (id, bso_code, name, address, postcode, wheelchair_accessible, static_site_id)
    select 'loc-B' || lpad(o::text, 3, '0'), 'B' || lpad(o::text, 3, '0'), 'Bench unit ' || o, '1 Bench Road', 'LS1 1AA',
      true, 'site-B' || lpad(o::text, 3, '0')
    from generate_series(0, ${count - 1}::int) o`,
  );
  // A clinic a day at each site from April 2020 to March 2026 (screening), and one for assessment.
  await step(
    db,
    sql`insert into clinic (site_id, location_id, clinic_date, starts_at, ends_at, slot_minutes, status, purpose)
    select 'site-B' || lpad(o::text, 3, '0'), 'loc-B' || lpad(o::text, 3, '0'), d::date, t.starts, t.ends, 10, 'closed',
      t.purpose
    from generate_series(0, ${count - 1}::int) o, generate_series('2020-01-01'::date, '2026-06-30'::date, '1 day') d,
      (values ('09:00'::time, '17:00'::time, 'screening'), ('17:00'::time, '19:00'::time, 'assessment')) t(starts, ends, purpose)`,
  );
}

/**
 * `count` participants spread over `officeCount` offices (participant i in office i % officeCount), in batches,
 * with their episodes, appointments, results and assessment.
 */
async function people(db: Db, count: number, officeCount: number) {
  const BATCH = 500_000;
  for (let from = 0; from < count; from += BATCH) {
    const to = Math.min(count, from + BATCH) - 1;
    await step(
      db,
      sql`insert into participant (id, nhs_number, given_name, family_name, date_of_birth, address_line1, postcode,
        bso_code)
      select ('00000000-0000-4000-8000-' || lpad(to_hex(i), 12, '0'))::uuid, lpad((9000000000 + i)::text, 10, '0'),
        'Bench', 'Woman' || i, '1946-04-01'::date + ((i::bigint * 7919) % 12775)::int, '1 Bench Street', 'LS1 1AA',
        'B' || lpad((i % ${officeCount}::int)::text, 3, '0')
      from generate_series(${from}::int, ${to}::int) i`,
    );
    // One episode in the 3 reporting years to 31 March 2026 each, and one 3 years earlier for even i. Types: 10 % first
    // call, 2 % early recall, 1 % self-referral, 1 % GP referral, 1 % higher risk, the rest routine recall; 70 %
    // screened.
    await step(
      db,
      sql`insert into episode (id, participant_id, bso_code, episode_type, opened_on, screened_on)
      select ('00000000-0000-4000-9' || r || '00-' || lpad(to_hex(i), 12, '0'))::uuid,
        ('00000000-0000-4000-8000-' || lpad(to_hex(i), 12, '0'))::uuid, 'B' || lpad((i % ${officeCount}::int)::text, 3, '0'),
        case when i % 100 < 10 then 'C' when i % 100 < 12 then 'E' when i % 100 = 12 then 'S' when i % 100 = 13 then 'G'
          when i % 100 = 14 then 'H' else 'R' end,
        d - 30, case when i % 10 < 7 then d end
      from generate_series(${from}::int, ${to}::int) i, lateral (select r, '2023-04-01'::date + ((i::bigint * 37) % 1095)::int - r * 1095 as d
        from generate_series(0, case when i % 2 = 0 then 1 else 0 end) r) x`,
    );
    await step(db, sql`analyze participant, episode, clinic`);
    await step(
      db,
      sql`insert into appointment (clinic_id, participant_id, episode_id, slot_index, slot_count, status, accession_number)
      select c.id, e.participant_id, e.id, 0, 1, case when e.screened_on is null then 'did_not_attend' else 'screened' end,
        'BN' || replace(e.id::text, '-', '')
      from episode e join participant p on p.id = e.participant_id
      join clinic c on c.site_id = 'site-' || p.bso_code and c.clinic_date = e.opened_on + 30 and c.purpose = 'screening'
      where p.nhs_number between lpad((9000000000 + ${from}::int)::text, 10, '0') and lpad((9000000000 + ${to}::int)::text, 10, '0')`,
    );
    console.log(`  ${to + 1} participants`);
  }
  // Results: 4 % of screens recalled to assessment.
  await step(
    db,
    sql`insert into exam_result (appointment_id, episode_id, result, next_test_due)
    select a.id, a.episode_id, case when hashtext(a.id::text) % 25 = 0 then 'recall_assessment' else 'routine_recall' end,
      case when hashtext(a.id::text) % 25 = 0 then null else '2029-01-01'::date end
    from appointment a where a.status = 'screened'`,
  );
  // Assessment: half have a core biopsy (B5b for a third of those), 1 in 10 an open biopsy; a fifth have cancer.
  await step(
    db,
    sql`insert into assessment_procedure (episode_id, procedure, performed_on, b_code)
    select x.episode_id, 'core_biopsy', e.screened_on + 14, case when abs(hashtext(x.episode_id::text)) % 3 = 0 then 'B5b' else 'B2' end
    from exam_result x join episode e on e.id = x.episode_id
    where x.result = 'recall_assessment' and abs(hashtext(x.episode_id::text)) % 2 = 0`,
  );
  await step(
    db,
    sql`insert into assessment_procedure (episode_id, procedure, performed_on)
    select x.episode_id, 'open_biopsy', e.screened_on + 30
    from exam_result x join episode e on e.id = x.episode_id
    where x.result = 'recall_assessment' and abs(hashtext(x.episode_id::text)) % 10 = 1`,
  );
  await step(
    db,
    sql`insert into assessment_outcome (episode_id, outcome, size_mm, early_recall_months, decided_on)
    select x.episode_id, o.outcome, case when o.outcome = 'malignant_invasive' then 3 + abs(hashtext(x.episode_id::text)) % 60 end,
      case when o.outcome = 'benign' and abs(hashtext(x.episode_id::text)) % 7 = 0 then 12 end, e.screened_on + 35
    from exam_result x join episode e on e.id = x.episode_id,
      lateral (select case abs(hashtext(x.episode_id::text)) % 10 when 0 then 'malignant_invasive'
        when 1 then 'malignant_non_invasive' when 2 then 'benign' when 3 then 'benign' else 'normal' end as outcome) o
    where x.result = 'recall_assessment'`,
  );
}

/**
 * Everything in one transaction as the replication role: the data is made consistent by construction, so foreign
 * key checks and triggers (a pg_notify a row for gateways) are skipped, as a bulk load would; the tables are
 * analysed at the end.
 */
async function generate(db: Db, participants: number, officeCount: number) {
  await db.transaction().execute(async (trx) => {
    await sql`set local session_replication_role = replica`.execute(trx);
    await offices(trx, officeCount);
    await people(trx, participants, officeCount);
    // The replication role skipped the triggers that keep each episode's facts (migration 0015): made here at once.
    await step(trx, sql`insert into episode_fact select * from episode_fact_source`);
  });
  await step(db, sql`analyze`);
}

async function counts(db: Db) {
  const { rows } = await sql<{ p: number; e: number; a: number }>`select (select count(*) from participant)::int as p,
    (select count(*) from episode)::int as e, (select count(*) from appointment)::int as a`.execute(db);
  const r = rows[0]!;
  console.log(`  ${r.p} participants, ${r.e} episodes, ${r.a} appointments`);
}

async function measure(db: Db, office: string | null, label: string) {
  for (let run = 1; run <= RUNS; run++) {
    const start = performance.now();
    const report = await kc62Report(db, office, YEAR);
    const ms = performance.now() - start;
    console.log(
      `  KC62+KC63 ${label}, run ${run}: ${seconds(ms)} (${report.episodes} episodes in ${YEAR}-26, ` +
        `${report.coverage.get('KC63.eligible.all') ?? 0} eligible for KC63)`,
    );
  }
  const start = performance.now();
  const list = await kc62CellEpisodes(db, office, YEAR, { table: 'C1', measure: 'screened', band: '60-64' });
  console.log(
    `  drill-down C1 screened 60-64 ${label}: ${seconds(performance.now() - start)} (${list.length} episodes)`,
  );
}

const backends = values.backends.split(',') as ('pglite' | 'postgres')[];

/** Drops the database unless --keep, in which case it says where it is (for --reuse). */
async function finish(database: Awaited<ReturnType<typeof freshDatabase>>) {
  if (values.keep && database.target.kind === 'postgres') {
    console.log(`  kept ${database.target.url}`);
    await database.close();
  } else await database.drop();
}

if (values.reuse) {
  console.log(`postgres: ${values.reuse}`);
  const database = await openDatabase({ kind: 'postgres', url: values.reuse });
  try {
    await timed('migrate', () => migrate(database));
    await counts(database.db);
    await measure(database.db, null, 'all offices');
    await measure(database.db, 'B000', 'one office');
  } finally {
    await database.close();
  }
  process.exit(0);
}

for (const backend of PARTICIPANTS > 0 ? backends : []) {
  console.log(`${backend}: one office of ${PARTICIPANTS} participants`);
  const database = await freshDatabase(backend);
  try {
    await timed('generate', async () => {
      await generate(database.db, PARTICIPANTS, 1);
    });
    await counts(database.db);
    await measure(database.db, 'B000', 'one office');
  } finally {
    await finish(database);
  }
}

if (NATIONAL > 0 && backends.includes('postgres')) {
  console.log(`postgres: national, ${NATIONAL} participants in ${OFFICES} offices`);
  const database = await freshDatabase('postgres');
  try {
    await timed('generate', async () => {
      await generate(database.db, NATIONAL, OFFICES);
    });
    await counts(database.db);
    await measure(database.db, null, 'all offices');
    await measure(database.db, 'B000', 'one office of the national data');
  } finally {
    await finish(database);
  }
}
