import { inflateRawSync } from 'node:zlib';
import type { FastifyInstance } from 'fastify';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { countOf, nonOperativeRate, uptake, type Kc62Table, type Measure } from '../../src/pathway/kc62.js';
import type { Db } from '../../src/store/database.js';
import { kc62CellEpisodes, kc62Report, kc63CellWomen, type Kc62Report } from '../../src/store/kc62.js';
import { crc32 } from '../../src/reports/kc62-export.js';
import { BACKENDS, freshDatabase } from '../support/database.js';
import { addParticipant, smallOffice } from '../support/fixtures.js';
import { PageClient, testHub } from '../support/hub-client.js';

type EpisodeType = 'C' | 'R' | 'E' | 'H' | 'T' | 'G' | 'S';

/** Reads a zip's entries (stored or deflated), checking each CRC: enough to open our own XLSX. */
function unzip(buffer: Buffer): Map<string, string> {
  const files = new Map<string, string>();
  const end = buffer.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
  const count = buffer.readUInt16LE(end + 10);
  let p = buffer.readUInt32LE(end + 16);
  for (let i = 0; i < count; i++) {
    const method = buffer.readUInt16LE(p + 10);
    const crc = buffer.readUInt32LE(p + 16);
    const size = buffer.readUInt32LE(p + 20);
    const nameLength = buffer.readUInt16LE(p + 28);
    const extra = buffer.readUInt16LE(p + 30);
    const comment = buffer.readUInt16LE(p + 32);
    const local = buffer.readUInt32LE(p + 42);
    const name = buffer.subarray(p + 46, p + 46 + nameLength).toString('utf8');
    const dataStart = local + 30 + buffer.readUInt16LE(local + 26) + buffer.readUInt16LE(local + 28);
    const raw = buffer.subarray(dataStart, dataStart + size);
    const data = method === 8 ? inflateRawSync(raw) : raw;
    expect(crc32(data)).toBe(crc);
    files.set(name, data.toString('utf8'));
    p += 46 + nameLength + extra + comment;
  }
  return files;
}

describe.each(BACKENDS)('KC62 and KC63 on %s', (backend) => {
  let database: Awaited<ReturnType<typeof freshDatabase>>;
  const db = (): Db => database.db;
  const clinics = new Map<string, string>();
  let accession = 0;
  const ids: Record<string, { participant: string; episode: string }> = {};
  let tst: Kc62Report;
  let all: Kc62Report;
  let app: FastifyInstance;

  async function clinicOn(date: string) {
    const known = clinics.get(date);
    if (known) return known;
    const clinic = await db()
      .insertInto('clinic')
      .values({
        site_id: 'static-1',
        location_id: 'central',
        clinic_date: date,
        starts_at: '09:00',
        ends_at: '17:00',
        slot_minutes: 10,
      })
      .returning('id')
      .executeTakeFirstOrThrow();
    clinics.set(date, clinic.id);
    return clinic.id;
  }

  /** One woman's episode: appointments (date and status), and what happened at assessment. */
  async function episode(
    name: string,
    options: {
      dob: string;
      type: EpisodeType;
      opened: string;
      appointments?: [string, 'screened' | 'did_not_attend'][];
      screened?: string;
      office?: string;
      participantId?: string;
      result?: 'routine_recall' | 'recall_assessment';
      procedures?: ['core_biopsy' | 'vacuum_biopsy' | 'open_biopsy', string, string | null][];
      outcome?: { outcome: string; size?: number; earlyRecall?: number };
      ceased?: string;
      died?: string;
    },
  ) {
    const participantId =
      options.participantId ??
      (
        await addParticipant(db(), {
          family_name: name,
          date_of_birth: options.dob,
          ...(options.ceased ? { ceased_reason: 'informed_choice', ceased_on: options.ceased } : {}),
          ...(options.died ? { date_of_death: options.died } : {}),
        })
      ).id;
    if (options.office)
      await db().updateTable('participant').set({ bso_code: options.office }).where('id', '=', participantId).execute();
    const ep = await db()
      .insertInto('episode')
      .values({
        participant_id: participantId,
        bso_code: options.office ?? 'TST',
        episode_type: options.type,
        opened_on: options.opened,
        screened_on: options.screened ?? null,
      })
      .returning('id')
      .executeTakeFirstOrThrow();
    let lastAppointment: string | undefined;
    for (const [date, status] of options.appointments ?? []) {
      const a = await db()
        .insertInto('appointment')
        .values({
          clinic_id: await clinicOn(date),
          participant_id: participantId,
          episode_id: ep.id,
          slot_index: accession,
          slot_count: 1,
          status,
          accession_number: `KC${String(accession++).padStart(6, '0')}`,
        })
        .returning('id')
        .executeTakeFirstOrThrow();
      lastAppointment = a.id;
    }
    if (options.result)
      await db()
        .insertInto('exam_result')
        .values({
          appointment_id: lastAppointment!,
          episode_id: ep.id,
          result: options.result,
          next_test_due: options.result === 'routine_recall' ? '2028-06-01' : null,
        })
        .execute();
    for (const [procedure, on, b] of options.procedures ?? [])
      await db()
        .insertInto('assessment_procedure')
        .values({ episode_id: ep.id, procedure, performed_on: on, b_code: b as never })
        .execute();
    if (options.outcome)
      await db()
        .insertInto('assessment_outcome')
        .values({
          episode_id: ep.id,
          outcome: options.outcome.outcome as never,
          size_mm: options.outcome.size ?? null,
          early_recall_months: options.outcome.earlyRecall ?? null,
          decided_on: '2026-01-01',
        })
        .execute();
    ids[name] = { participant: participantId, episode: ep.id };
    return participantId;
  }

  beforeAll(async () => {
    database = await freshDatabase(backend);
    await smallOffice(db());
    await db().insertInto('screening_office').values({ code: 'NTH', name: 'North Test Office' }).execute();

    // Reporting year 2025-26: 1 April 2025 to 31 March 2026. Ages are at the relevant date (first appointment
    // offered, or the screening date of a referral).
    // P1: first call, offered and screened 10 June 2025, aged 51 → A, 50-52: invited, screened.
    await episode('P1', {
      dob: '1974-06-01',
      type: 'C',
      opened: '2025-05-01',
      appointments: [['2025-06-10', 'screened']],
      screened: '2025-06-10',
      result: 'routine_recall',
    });
    // P2: routine recall, never screened, did not attend 5 May 2025 nor 1 June; aged 53 on 5 May → B, 53-54:
    // invited only.
    await episode('P2', {
      dob: '1972-01-15',
      type: 'R',
      opened: '2025-04-20',
      appointments: [
        ['2025-05-05', 'did_not_attend'],
        ['2025-06-01', 'did_not_attend'],
      ],
    });
    // P3: last screened 1 September 2022 (within 5 years of 1 September 2025), screened 1 September 2025, her
    // 65th birthday → C1, 65-69. Recalled, core biopsy B5b, invasive 12 mm: needle, invasive 10-<15, non-operative diagnosis.
    const p3 = await episode('P3-before', {
      dob: '1960-09-01',
      type: 'R',
      opened: '2022-08-01',
      appointments: [['2022-09-01', 'screened']],
      screened: '2022-09-01',
    });
    await episode('P3', {
      dob: '1960-09-01',
      participantId: p3,
      type: 'R',
      opened: '2025-08-01',
      appointments: [['2025-09-01', 'screened']],
      screened: '2025-09-01',
      result: 'recall_assessment',
      procedures: [['core_biopsy', '2025-09-20', 'B5b']],
      outcome: { outcome: 'malignant_invasive', size: 12 },
    });
    // P4: last screened 1 March 2018 (over 5 years before 1 October 2025), aged 69 → C2, 65-69. Recalled, open
    // biopsy, benign, early recall at 12 months: open, benign open biopsy, short-term recall.
    const p4 = await episode('P4-before', {
      dob: '1956-03-10',
      type: 'R',
      opened: '2018-02-01',
      screened: '2018-03-01',
    });
    await episode('P4', {
      dob: '1956-03-10',
      participantId: p4,
      type: 'R',
      opened: '2025-09-01',
      appointments: [['2025-10-01', 'screened']],
      screened: '2025-10-01',
      result: 'recall_assessment',
      procedures: [['open_biopsy', '2025-10-20', null]],
      outcome: { outcome: 'benign', earlyRecall: 12 },
    });
    // P5: self-referral screened 15 November 2025 aged 75 → F1, 75+. Open biopsy 30 November before a B5a
    // vacuum biopsy on 1 December: non-invasive cancer, needle and open, NOT non-operative.
    await episode('P5', {
      dob: '1950-07-01',
      type: 'S',
      opened: '2025-11-01',
      appointments: [['2025-11-15', 'screened']],
      screened: '2025-11-15',
      result: 'recall_assessment',
      procedures: [
        ['open_biopsy', '2025-11-30', null],
        ['vacuum_biopsy', '2025-12-01', 'B5a'],
      ],
      outcome: { outcome: 'malignant_non_invasive' },
    });
    // P6: higher risk, offered and screened 20 March 2026 aged 46 → E, 45-49: invited, screened.
    await episode('P6', {
      dob: '1980-02-01',
      type: 'H',
      opened: '2026-03-01',
      appointments: [['2026-03-20', 'screened']],
      screened: '2026-03-20',
    });
    // P7: early recall first offered 2 April 2026: next year, not counted. Born 1 January 1966: 60 at 31 March
    // 2026, never screened → KC63 eligible 60-64, not covered.
    await episode('P7', {
      dob: '1966-01-01',
      type: 'E',
      opened: '2026-03-01',
      appointments: [['2026-04-02', 'did_not_attend']],
    });
    // P8: routine recall offered and screened 31 March 2025: last year, not counted. Born 1 March 1963: 63 →
    // KC63 eligible 60-64, covered.
    await episode('P8', {
      dob: '1963-03-01',
      type: 'R',
      opened: '2025-03-01',
      appointments: [['2025-03-31', 'screened']],
      screened: '2025-03-31',
    });
    // P9: GP referral never screened: not counted (referrals count by screening date). Born 1 April 1958: 67
    // at 31 March 2026 → KC63 eligible 65-69, not covered.
    await episode('P9', { dob: '1958-04-01', type: 'G', opened: '2025-06-01' });
    // P10: the other office's first call, screened 1 June 2025 aged 50 → A, 50-52, only in "all offices".
    await episode('P10', {
      dob: '1975-01-01',
      type: 'C',
      opened: '2025-05-01',
      appointments: [['2025-06-01', 'screened']],
      screened: '2025-06-01',
      office: 'NTH',
    });
    // P11: early recall offered and screened 1 July 2025 aged 60 → D, 60-64. Recalled, core B5b: micro-invasive,
    // needle, non-operative. KC63: 60 at 31 March 2026, covered.
    await episode('P11', {
      dob: '1965-05-05',
      type: 'E',
      opened: '2025-06-01',
      appointments: [['2025-07-01', 'screened']],
      screened: '2025-07-01',
      result: 'recall_assessment',
      procedures: [['core_biopsy', '2025-07-10', 'B5b']],
      outcome: { outcome: 'malignant_micro_invasive' },
    });
    // P12: GP referral screened 1 December 2025 aged 76 → F2, 75+. Recalled, open biopsy, invasive of unknown
    // size: open, invasive size unknown, not non-operative.
    await episode('P12', {
      dob: '1949-01-01',
      type: 'G',
      opened: '2025-11-20',
      appointments: [['2025-12-01', 'screened']],
      screened: '2025-12-01',
      result: 'recall_assessment',
      procedures: [['open_biopsy', '2025-12-10', null]],
      outcome: { outcome: 'malignant_invasive' },
    });
    // KC63 only: P13 ceased before 31 March 2026 and P14 died before it (both excluded); P15 is 70 on 31 March
    // 2026 (71 the next day) and was last screened on 31 March 2023, exactly 36 months before: eligible, not
    // covered; P16 is 71 on 31 March 2026: not eligible.
    await episode('P13', {
      dob: '1960-01-01',
      type: 'R',
      opened: '2024-01-01',
      screened: '2024-02-01',
      ceased: '2025-01-01',
    });
    await episode('P14', {
      dob: '1961-01-01',
      type: 'R',
      opened: '2024-01-01',
      screened: '2024-02-01',
      died: '2026-01-01',
    });
    await episode('P15', { dob: '1955-04-01', type: 'R', opened: '2023-03-01', screened: '2023-03-31' });
    await episode('P16', { dob: '1955-03-31', type: 'R', opened: '2024-03-01', screened: '2024-03-31' });

    tst = await kc62Report(db(), 'TST', 2025);
    all = await kc62Report(db(), null, 2025);
    app = await testHub(db());
  });
  afterAll(async () => {
    await app?.close();
    await database.drop();
  });

  const n = (table: Kc62Table, measure: Measure, band: Parameters<typeof countOf>[3] = 'all') =>
    countOf(tst.counts, table, measure, band);

  it('Part 1: invited and screened in each table', () => {
    expect(tst.episodes).toBe(8); // P1, P2, P3, P4, P5, P6, P11, P12
    expect([n('A', 'invited', '50-52'), n('A', 'screened', '50-52')]).toEqual([1, 1]);
    expect([n('B', 'invited', '53-54'), n('B', 'screened', '53-54')]).toEqual([1, 0]);
    expect([n('C1', 'invited', '65-69'), n('C1', 'screened', '65-69')]).toEqual([1, 1]);
    expect([n('C2', 'invited', '65-69'), n('C2', 'screened', '65-69')]).toEqual([1, 1]);
    expect([n('D', 'invited', '60-64'), n('D', 'screened', '60-64')]).toEqual([1, 1]);
    expect([n('E', 'invited', '45-49'), n('E', 'screened', '45-49')]).toEqual([1, 1]);
    expect([n('F1', 'invited'), n('F1', 'screened', 'ge75')]).toEqual([0, 1]);
    expect([n('F2', 'invited'), n('F2', 'screened', 'ge75')]).toEqual([0, 1]);
    // T: invited A-E = 6; screened = 5 invited + 2 referrals = 7; uptake (7 - 2) / 6 = 83.3 %.
    expect([n('T', 'invited'), n('T', 'screened')]).toEqual([6, 7]);
    expect(uptake(tst.counts, 'T', 'all')).toBe(83.3);
    expect(uptake(tst.counts, 'B', 'all')).toBe(0);
    expect([n('T', 'invited', '65-69'), n('T', 'screened', 'ge75')]).toEqual([2, 2]);
  });

  it('Part 2: referrals, biopsies, benign open biopsies and short-term recall', () => {
    // Referred: P3 (C1), P4 (C2), P5 (F1), P11 (D), P12 (F2).
    expect(n('T', 'referred')).toBe(5);
    expect([n('C1', 'referred'), n('C2', 'referred'), n('D', 'referred'), n('A', 'referred')]).toEqual([1, 1, 1, 0]);
    // Needle: P3, P5, P11; open: P4, P5, P12; benign open: P4; early recall: P4.
    expect([n('T', 'needle'), n('T', 'open'), n('T', 'benignOpen'), n('T', 'earlyRecall')]).toEqual([3, 3, 1, 1]);
    expect([n('C2', 'benignOpen', '65-69'), n('C2', 'earlyRecall', '65-69')]).toEqual([1, 1]);
  });

  it('Part 3: cancers by type and size, needle and open', () => {
    expect(n('C1', 'inv-10-15', '65-69')).toBe(1); // P3, 12 mm
    expect(n('F2', 'inv-unknown', 'ge75')).toBe(1); // P12
    expect(n('F1', 'nonInvasive', 'ge75')).toBe(1); // P5
    expect(n('D', 'microInvasive', '60-64')).toBe(1); // P11
    expect([n('T', 'invasive'), n('T', 'cancers'), n('T', 'cancerNeedle'), n('T', 'cancerOpen')]).toEqual([2, 4, 3, 2]);
    expect(n('T', 'inv-lt10')).toBe(0);
  });

  it('Part 4: non-operative diagnosis (P3 and P11 of 4 cancers)', () => {
    expect([n('T', 'cancers4'), n('T', 'nonOperative')]).toEqual([4, 2]);
    expect(nonOperativeRate(tst.counts, 'T', 'all')).toBe(50);
    expect(nonOperativeRate(tst.counts, 'F1', 'all')).toBe(0);
  });

  it('all offices adds the other office’s first call', () => {
    expect(countOf(all.counts, 'A', 'invited', '50-52')).toBe(2);
    expect(countOf(all.counts, 'T', 'invited', 'all')).toBe(7);
  });

  it('KC63 coverage at 31 March 2026', () => {
    expect(tst.coverageAt).toBe('2026-03-31');
    const c = (k: string) => tst.coverage.get(k as never) ?? 0;
    // Eligible: 53-54 P2; 60-64 P7, P8, P11; 65-69 P3, P9; 70 P4, P15. Covered: P8, P11, P3, P4.
    expect([c('KC63.eligible.53-54'), c('KC63.eligible.55-59'), c('KC63.eligible.60-64')]).toEqual([1, 0, 3]);
    expect([c('KC63.eligible.65-69'), c('KC63.eligible.70'), c('KC63.eligible.all')]).toEqual([2, 2, 8]);
    expect([c('KC63.covered.60-64'), c('KC63.covered.65-69'), c('KC63.covered.70'), c('KC63.covered.all')]).toEqual([
      2, 1, 1, 4,
    ]);
  });

  it('drill-down: the episodes and women behind a cell', async () => {
    const cancers = await kc62CellEpisodes(db(), 'TST', 2025, { table: 'C1', measure: 'cancers', band: '65-69' });
    expect(cancers.map((e) => e.episodeId)).toEqual([ids.P3!.episode]);
    expect(cancers[0]).toMatchObject({
      age: 65,
      relevantDate: '2025-09-01',
      outcome: 'malignant_invasive',
      sizeMm: 12,
    });
    const old = await kc62CellEpisodes(db(), 'TST', 2025, { table: 'T', measure: 'screened', band: 'ge75' });
    expect(old.map((e) => e.episodeId).sort()).toEqual([ids.P5!.episode, ids.P12!.episode].sort());
    const invited = await kc62CellEpisodes(db(), null, 2025, { table: 'T', measure: 'invited', band: 'all' });
    expect(invited).toHaveLength(7);
    const covered = await kc63CellWomen(db(), 'TST', 2025, { measure: 'covered', band: '60-64' });
    expect(covered.map((w) => w.participantId).sort()).toEqual([ids.P8!.participant, ids.P11!.participant].sort());
    const eligible70 = await kc63CellWomen(db(), 'TST', 2025, { measure: 'eligible', band: '70' });
    expect(eligible70.map((w) => w.familyName).sort()).toEqual(['P15', 'P4-before']);
  });

  it('the page: the return with links, a cell’s list (audited), CSV and XLSX', async () => {
    const client = new PageClient(app);
    await client.signIn('admin');
    const pageResponse = await client.get('/reports/kc62?office=TST&year=2025');
    expect(pageResponse.statusCode).toBe(200);
    expect(pageResponse.body).toContain('Table C1: routine invitation');
    expect(pageResponse.body).toContain('83.3%');
    const href = '/reports/kc62/cell?office=TST&amp;year=2025&amp;cell=C1.cancers.65-69';
    expect(pageResponse.body).toContain(href);

    const list = await client.get(href.replaceAll('&amp;', '&'));
    expect(list.statusCode).toBe(200);
    expect(list.body).toContain(ids.P3!.episode);
    expect(list.body).toContain('1 episode');
    const audit = await db()
      .selectFrom('audit_event')
      .select(['detail'])
      .where('action', '=', 'reports.kc62.list')
      .executeTakeFirstOrThrow();
    expect(audit.detail).toMatchObject({ cell: 'C1.cancers.65-69', episodes: [ids.P3!.episode], count: 1 });

    const women = await client.get('/reports/kc62/cell?office=TST&year=2025&cell=KC63.eligible.70');
    expect(women.body).toContain('2 women');

    const csv = await client.get('/reports/kc62.csv?office=TST&year=2025-26');
    expect(csv.statusCode).toBe(200);
    expect(csv.headers['content-type']).toContain('text/csv');
    expect(csv.body).toContain('KC62 Table T: all women (total of A to F2)');
    // Table T, Part 1, all ages: invited 6, screened 7, uptake 83.3.
    expect(csv.body).toContain('All ages,6,7,83.3');
    expect(csv.body).toContain('53 to 70,8,4,50');

    const xlsx = await client.get('/reports/kc62.xlsx?office=TST&year=2025');
    expect(xlsx.statusCode).toBe(200);
    const files = unzip(xlsx.rawPayload);
    expect([...files.keys()]).toContain('xl/workbook.xml');
    expect(files.get('xl/workbook.xml')).toContain('name="Table C1"');
    expect(files.get('xl/worksheets/sheet10.xml')).toContain('KC63 coverage');
  });

  it('bad input: an error summary; no permission: 403; unknown cell: 404', async () => {
    const client = new PageClient(app);
    await client.signIn('admin');
    const bad = await client.get('/reports/kc62?office=ZZZ&year=2099');
    expect(bad.statusCode).toBe(400);
    expect(bad.body).toContain('Choose a screening office');
    expect(bad.body).toContain('Enter a reporting year');
    expect((await client.get('/reports/kc62/cell?office=TST&year=2025&cell=F1.invited.all')).statusCode).toBe(404);
    const reader = new PageClient(app);
    await reader.signIn('reader');
    expect((await reader.get('/reports/kc62?office=TST&year=2025')).statusCode).toBe(403);
  });

  // Last: it changes the records. The facts are kept per episode (migration 0015) as every table they come from
  // changes; after each change they must be what the source view says, row for row.
  it('keeps the per-episode facts in step with every change they come from', async () => {
    const stale = async () => {
      const { rows } = await sql<{ n: number }>`select count(*)::int as n from (
        (select * from episode_fact except select * from episode_fact_source)
        union all (select * from episode_fact_source except select * from episode_fact)) d`.execute(db());
      return rows[0]!.n;
    };
    expect(await stale()).toBe(0);
    const p3 = ids.P3!;
    // Her age (date of birth corrected), her previous screen (an older episode screened), her result, biopsy and
    // outcome, the clinic's date, and an episode deleted.
    await sql`update participant set date_of_birth = date_of_birth - 400 where id = ${p3.participant}`.execute(db());
    expect(await stale()).toBe(0);
    await sql`update episode set screened_on = '2024-05-01' where participant_id = ${p3.participant}
      and id <> ${p3.episode}`.execute(db());
    await sql`update exam_result set result = 'technical_recall' where episode_id = ${p3.episode}`.execute(db());
    await sql`delete from assessment_procedure where episode_id = ${p3.episode}`.execute(db());
    await sql`update assessment_outcome set superseded_at = now() where episode_id = ${p3.episode}`.execute(db());
    await sql`update clinic set clinic_date = clinic_date + 1 where id in
      (select clinic_id from appointment where episode_id = ${ids.P8!.episode})`.execute(db());
    expect(await stale()).toBe(0);
    const facts = await sql<{ referred: boolean; needle: boolean; outcome: string | null }>`
      select referred, needle, outcome from episode_fact where episode_id = ${p3.episode}`.execute(db());
    expect(facts.rows).toEqual([{ referred: false, needle: false, outcome: null }]);
    await sql`delete from appointment where episode_id = ${ids.P8!.episode}`.execute(db());
    expect(await stale()).toBe(0);
  });
});
