import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadDemoOffice, type DemoSummary } from '../../src/demo/synthetic-office.js';
import { attended, type AppointmentStatus } from '../../src/pathway/appointment-status.js';
import { isValidNhsNumber } from '../../src/pathway/nhs-number.js';
import { slotsNeeded } from '../../src/pathway/record-items.js';
import { daysBetween } from '../../src/pathway/dates.js';
import { readingOutcome } from '../../src/pathway/reading.js';
import { createUser } from '../../src/store/accounts.js';
import { openDatabase, type Database } from '../../src/store/database.js';
import { migrate } from '../../src/store/migrate.js';

const TODAY = '2026-11-23';
const SEED = 4242;
const PARTICIPANTS = 2000;

async function loadInto(seed: number, onProgress?: (done: number, total: number, stage: string) => void) {
  const database = await openDatabase({ kind: 'pglite' });
  await migrate(database);
  const readerIds = [];
  for (const n of [1, 2, 3])
    readerIds.push(
      (
        await createUser(database.db, {
          username: `reader${n}`,
          displayName: `Reader ${n}`,
          role: 'film_reader',
          password: 'demo readers only',
        })
      ).id,
    );
  const summary = await loadDemoOffice(database.db, {
    seed,
    participants: PARTICIPANTS,
    today: TODAY,
    readerIds,
    ...(onProgress ? { onProgress } : {}),
  });
  return { database, summary };
}

async function people(database: Database) {
  return database.db
    .selectFrom('participant')
    .select(['nhs_number', 'given_name', 'family_name', 'date_of_birth'])
    .orderBy('nhs_number')
    .execute();
}

describe('the synthetic screening office', () => {
  let database: Database;
  let summary: DemoSummary;
  const progress: { done: number; total: number; stage: string }[] = [];

  beforeAll(async () => {
    ({ database, summary } = await loadInto(SEED, (done, total, stage) => progress.push({ done, total, stage })));
  });
  afterAll(async () => {
    await database?.close();
  });

  const count = async (table: string) =>
    Number(
      (await sql<{ n: number }>`select count(*)::int as n from ${sql.table(table)}`.execute(database.db)).rows[0]?.n,
    );

  it('returns counts that match the rows written', async () => {
    expect(summary).toMatchObject({ participants: PARTICIPANTS, practices: 30, sites: 4, locations: 8, clinics: 176 });
    expect(summary.appointments).toBeGreaterThan(300);
    expect(summary.episodes).toBeGreaterThan(PARTICIPANTS / 2);
    expect(summary.items).toBeGreaterThan(50);
    expect(await count('participant')).toBe(summary.participants);
    expect(await count('gp_practice')).toBe(summary.practices);
    expect(await count('site')).toBe(summary.sites);
    expect(await count('location')).toBe(summary.locations);
    expect(await count('clinic')).toBe(summary.clinics);
    expect(await count('appointment')).toBe(summary.appointments);
    expect(await count('episode')).toBe(summary.episodes);
    expect(await count('record_item')).toBe(summary.items);
    expect(await count('screening_office')).toBe(1);
  });

  it('reports progress by stage, each stage finishing', () => {
    const finished = new Set(progress.filter((p) => p.done === p.total).map((p) => p.stage));
    expect(finished).toContain('participants');
    expect(finished).toContain('clinics');
    expect(finished).toContain('appointments');
  });

  it('has two static sites with their own accessible buildings, two mobile units, and inaccessible stops', async () => {
    const sites = await database.db.selectFrom('site').selectAll().orderBy('id').execute();
    expect(sites.filter((s) => s.kind === 'static')).toHaveLength(2);
    expect(sites.filter((s) => s.kind === 'mobile').map((s) => s.ae_title)).toEqual(['MOBILE1', 'MOBILE2']);
    const locations = await database.db.selectFrom('location').selectAll().execute();
    for (const site of sites.filter((s) => s.kind === 'static')) {
      const own = locations.filter((l) => l.static_site_id === site.id);
      expect(own).toHaveLength(1);
      expect(own[0]!.wheelchair_accessible).toBe(true);
    }
    expect(locations.filter((l) => !l.wheelchair_accessible).length).toBeGreaterThanOrEqual(2);
    const practices = await database.db.selectFrom('gp_practice').select('ods_code').execute();
    for (const p of practices) expect(p.ods_code).toMatch(/^[A-Z][0-9A-Z]{4,5}$/);
  });

  it('runs one clinic a weekday at each site for four weeks either side of today', async () => {
    const clinics = await database.db.selectFrom('clinic').selectAll().where('purpose', '=', 'screening').execute();
    const perSiteDay = new Set(clinics.map((c) => `${c.site_id} ${c.clinic_date}`));
    expect(perSiteDay.size).toBe(clinics.length);
    for (const c of clinics) {
      const day = new Date(`${c.clinic_date}T12:00:00Z`).getUTCDay();
      expect(day).toBeGreaterThanOrEqual(1);
      expect(day).toBeLessThanOrEqual(5);
      expect(c.clinic_date >= '2026-10-26' && c.clinic_date < '2026-12-21').toBe(true);
      expect([c.starts_at.slice(0, 5), c.ends_at.slice(0, 5), c.slot_minutes]).toEqual(['08:30', '16:30', 10]);
    }
  });

  it('uses only valid NHS numbers from the 999 test range', async () => {
    const rows = await people(database);
    expect(new Set(rows.map((r) => r.nhs_number)).size).toBe(PARTICIPANTS);
    for (const r of rows) {
      expect(r.nhs_number.startsWith('999')).toBe(true);
      expect(isValidNhsNumber(r.nhs_number)).toBe(true);
    }
    expect(rows.some((r) => r.date_of_birth.endsWith('-02-29'))).toBe(true);
  });

  it('gives every live appointment exactly its slot_count slots, matching the adjustments, and cancelled ones none', async () => {
    const appointments = await database.db
      .selectFrom('appointment as a')
      .innerJoin('clinic as c', 'c.id', 'a.clinic_id')
      .select(['a.id', 'a.participant_id', 'a.status', 'a.slot_index', 'a.slot_count', 'c.clinic_date'])
      .execute();
    const slots = await database.db.selectFrom('appointment_slot').selectAll().execute();
    const held = new Map<string, number[]>();
    for (const s of slots) held.set(s.appointment_id, [...(held.get(s.appointment_id) ?? []), s.slot_index]);
    const items = await database.db
      .selectFrom('record_item')
      .select(['participant_id', 'kind', 'temporary_until'])
      .execute();
    const itemsOf = new Map<string, { kind: string; temporaryUntil: string | null }[]>();
    for (const i of items)
      itemsOf.set(i.participant_id, [
        ...(itemsOf.get(i.participant_id) ?? []),
        { kind: i.kind, temporaryUntil: i.temporary_until },
      ]);
    let special = 0;
    for (const a of appointments) {
      const mine = (held.get(a.id) ?? []).sort((x, y) => x - y);
      if (a.status === 'cancelled') expect(mine).toEqual([]);
      else expect(mine).toEqual(Array.from({ length: a.slot_count }, (_, k) => a.slot_index + k));
      expect(a.slot_count).toBe(slotsNeeded(itemsOf.get(a.participant_id) ?? [], a.clinic_date));
      if (a.slot_count === 2) special++;
    }
    expect(special).toBeGreaterThan(0);
    expect(special / appointments.length).toBeLessThan(0.08);
    expect(slots.length).toBe(new Set(slots.map((s) => `${s.clinic_id} ${s.slot_index}`)).size);
  });

  it('books wheelchair users only at accessible locations', async () => {
    const wrong = await database.db
      .selectFrom('appointment as a')
      .innerJoin('clinic as c', 'c.id', 'a.clinic_id')
      .innerJoin('location as l', 'l.id', 'c.location_id')
      .innerJoin('record_item as i', 'i.participant_id', 'a.participant_id')
      .select('a.id')
      .where('i.kind', '=', 'wheelchair')
      .where('l.wheelchair_accessible', '=', false)
      .execute();
    expect(wrong).toEqual([]);
    const wheelchairUsersBooked = await database.db
      .selectFrom('appointment as a')
      .innerJoin('record_item as i', 'i.participant_id', 'a.participant_id')
      .select('a.id')
      .where('i.kind', '=', 'wheelchair')
      .execute();
    expect(wheelchairUsersBooked.length).toBeGreaterThan(0);
  });

  it('never books someone who has died or is ceased, and books each woman at most once', async () => {
    const wrong = await database.db
      .selectFrom('appointment as a')
      .innerJoin('participant as p', 'p.id', 'a.participant_id')
      .select('a.id')
      .where((eb) => eb.or([eb('p.date_of_death', 'is not', null), eb('p.ceased_reason', 'is not', null)]))
      .execute();
    expect(wrong).toEqual([]);
    const { rows } = await sql<{ n: number }>`select count(*)::int as n from (
      select participant_id from appointment
      where id not in (select follow_up_appointment_id from exam_result where follow_up_appointment_id is not null)
      group by participant_id having count(*) > 1) x`.execute(database.db);
    expect(rows[0]?.n).toBe(0);
    const flags = await database.db
      .selectFrom('participant')
      .select([
        sql<number>`count(*) filter (where date_of_death is not null)::int`.as('dead'),
        sql<number>`count(*) filter (where ceased_reason is not null)::int`.as('ceased'),
        sql<number>`count(*) filter (where very_high_risk)::int`.as('vhr'),
      ])
      .executeTakeFirstOrThrow();
    expect(flags.dead).toBeGreaterThan(0);
    expect(flags.ceased).toBeGreaterThan(0);
    expect(flags.vhr).toBeGreaterThan(0);
  });

  it('has about 70% attendance at past clinics, only scheduled or checked in today, and no outcomes in the future', async () => {
    const rows = await database.db
      .selectFrom('appointment as a')
      .innerJoin('clinic as c', 'c.id', 'a.clinic_id')
      .select(['a.status', 'c.clinic_date'])
      .execute();
    const past = rows.filter((r) => r.clinic_date < TODAY);
    const rate = past.filter((r) => attended(r.status)).length / past.length;
    expect(rate).toBeGreaterThan(0.6);
    expect(rate).toBeLessThan(0.8);
    const statusesOf = (rs: { status: AppointmentStatus }[]) => new Set(rs.map((r) => r.status));
    expect(statusesOf(past)).toEqual(
      new Set(['screened', 'partially_screened', 'attended_not_screened', 'did_not_attend', 'cancelled']),
    );
    for (const s of statusesOf(rows.filter((r) => r.clinic_date === TODAY)))
      expect(['scheduled', 'checked_in']).toContain(s);
    for (const s of statusesOf(rows.filter((r) => r.clinic_date > TODAY)))
      expect(['scheduled', 'cancelled']).toContain(s);
  });

  it('tells each appointment history in seeded status events ending in its status', async () => {
    const events = await database.db
      .selectFrom('appointment_status_event')
      .select(['appointment_id', 'status', 'via', 'at'])
      .orderBy('appointment_id')
      .orderBy('at')
      .orderBy('id')
      .execute();
    const byAppointment = new Map<string, typeof events>();
    for (const e of events) byAppointment.set(e.appointment_id, [...(byAppointment.get(e.appointment_id) ?? []), e]);
    const appointments = await database.db
      .selectFrom('appointment')
      .select(['id', 'status', 'version', 'booked_at'])
      .execute();
    for (const a of appointments) {
      const history = byAppointment.get(a.id) ?? [];
      expect(history[0]?.status).toBe('scheduled');
      expect(history[0]?.at.getTime()).toBe(a.booked_at.getTime());
      expect(history.at(-1)?.status).toBe(a.status);
      expect(a.version).toBe(history.length);
      for (const e of history) expect(e.via).toBe('seed');
    }
  });

  it('links appointments to episodes closed for past outcomes and open for the future', async () => {
    const rows = await database.db
      .selectFrom('appointment as a')
      .innerJoin('clinic as c', 'c.id', 'a.clinic_id')
      .innerJoin('episode as e', 'e.id', 'a.episode_id')
      .where('c.purpose', '=', 'screening')
      .where('a.id', 'not in', (eb) =>
        eb
          .selectFrom('exam_result')
          .select('follow_up_appointment_id')
          .where('follow_up_appointment_id', 'is not', null),
      )
      .select([
        'a.status',
        'a.participant_id',
        'c.clinic_date',
        'e.participant_id as episode_participant',
        'e.screened_on',
        'e.closed_on',
        'e.end_code',
      ])
      .execute();
    expect(rows.length).toBeGreaterThan(summary.appointments * 0.95);
    for (const r of rows) {
      expect(r.episode_participant).toBe(r.participant_id);
      if (r.status === 'screened' || r.status === 'partially_screened') {
        // Closed once resulted (normal) or assessed; open while waiting to be read, resulted or assessed.
        expect(r.screened_on).toBe(r.clinic_date);
        expect(r.end_code).toBe(r.closed_on ? 'SC' : null);
      } else if (r.status === 'did_not_attend') {
        expect([r.screened_on, r.end_code]).toEqual([null, 'DNA']);
      } else {
        expect(r.closed_on).toBeNull();
      }
    }
  });

  it('reads each exam twice by two readers after its images arrived, arbitrates disagreement, and results what was decided', async () => {
    const exams = await database.db
      .selectFrom('appointment as a')
      .innerJoin('clinic as c', 'c.id', 'a.clinic_id')
      .leftJoin('exam_result as r', 'r.appointment_id', 'a.id')
      .innerJoin('episode as e', 'e.id', 'a.episode_id')
      .where('c.purpose', '=', 'screening')
      .where('a.status', 'in', ['screened', 'partially_screened'])
      .where('c.clinic_date', '<', TODAY)
      .select([
        'a.id',
        'c.clinic_date',
        'a.images_available_at',
        'r.result',
        'r.follow_up_appointment_id',
        'e.closed_on',
        'e.final_action',
      ])
      .execute();
    const reads = await database.db.selectFrom('reading_opinion').selectAll().execute();
    const readsOf = new Map<string, typeof reads>();
    for (const r of reads) readsOf.set(r.appointment_id, [...(readsOf.get(r.appointment_id) ?? []), r]);
    const results = { routine_recall: 0, technical_recall: 0, recall_assessment: 0 };
    for (const exam of exams) {
      const mine = readsOf.get(exam.id) ?? [];
      if (!exam.images_available_at) expect(mine).toEqual([]);
      for (const r of mine) expect(r.read_at.getTime()).toBeGreaterThan(exam.images_available_at!.getTime());
      expect(new Set(mine.map((r) => r.reader_id)).size).toBe(mine.length);
      const outcome = readingOutcome(
        mine.map((r) => ({ readNumber: r.read_number, readerId: r.reader_id, opinion: r.opinion })),
        'discordant',
      );
      if (!exam.result) continue;
      results[exam.result]++;
      expect(outcome.stage).toBe('decided');
      expect(exam.result).toBe(
        (
          {
            normal: 'routine_recall',
            technical_recall: 'technical_recall',
            recall_assessment: 'recall_assessment',
          } as const
        )[outcome.opinion!],
      );
      if (exam.result === 'routine_recall') expect(exam.final_action).toBe('RR');
    }
    const resulted = results.routine_recall + results.technical_recall + results.recall_assessment;
    expect(resulted).toBeGreaterThan(exams.length / 2);
    expect(results.recall_assessment / resulted).toBeGreaterThan(0.02);
    expect(results.recall_assessment / resulted).toBeLessThan(0.09);
    // Assessment appointments: at an assessment clinic, within 21 days of screening.
    const assessments = await database.db
      .selectFrom('exam_result as r')
      .innerJoin('appointment as a', 'a.id', 'r.appointment_id')
      .innerJoin('clinic as c', 'c.id', 'a.clinic_id')
      .innerJoin('appointment as f', 'f.id', 'r.follow_up_appointment_id')
      .innerJoin('clinic as fc', 'fc.id', 'f.clinic_id')
      .where('r.result', '=', 'recall_assessment')
      .select([
        'c.clinic_date as screened',
        'fc.clinic_date as assessed',
        'fc.purpose',
        'f.episode_id',
        'a.episode_id as exam_episode',
      ])
      .execute();
    expect(assessments.length).toBeGreaterThan(0);
    for (const a of assessments) {
      expect(a.purpose).toBe('assessment');
      expect(a.episode_id).toBe(a.exam_episode);
      expect(daysBetween(a.screened, a.assessed)).toBeLessThanOrEqual(21);
    }
  });

  it('continues the accession number sequence after the numbers it used', async () => {
    const numbers = (await database.db.selectFrom('appointment').select('accession_number').execute()).map(
      (r) => r.accession_number,
    );
    for (const n of numbers) expect(n).toMatch(/^SH\d{8}$/);
    expect(new Set(numbers).size).toBe(numbers.length);
    const max = Math.max(...numbers.map((n) => Number(n.slice(2))));
    const { rows } = await sql<{ n: number }>`select nextval('accession_number_seq')::int8 as n`.execute(database.db);
    expect(rows[0]?.n).toBe(max + 1);
  });

  it('loads the same data from the same seed and different data from another seed', async () => {
    const again = await loadInto(SEED);
    const other = await loadInto(SEED + 1);
    try {
      expect(again.summary).toEqual(summary);
      expect(await people(again.database)).toEqual(await people(database));
      const accessions = async (d: Database) =>
        d.db
          .selectFrom('appointment')
          .select(['id', 'participant_id', 'accession_number', 'status'])
          .orderBy('accession_number')
          .execute();
      expect(await accessions(again.database)).toEqual(await accessions(database));
      const theirs = await people(other.database);
      const ours = await people(database);
      expect(theirs).not.toEqual(ours);
      expect(theirs.map((p) => p.family_name)).not.toEqual(ours.map((p) => p.family_name));
    } finally {
      await again.database.close();
      await other.database.close();
    }
  });
});
