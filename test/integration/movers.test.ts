import { faker } from '@faker-js/faker';
import type { FastifyInstance } from 'fastify';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CohortRow } from '../../src/cohort/cohort-csv.js';
import { formatNhsNumber } from '../../src/pathway/nhs-number.js';
import { bookAppointment } from '../../src/store/clinics.js';
import { importCohort } from '../../src/store/cohort-import.js';
import { acknowledgeMove, listOfficeMoves } from '../../src/store/movers.js';
import type { Db } from '../../src/store/database.js';
import { correctDemographics } from '../../src/store/participants.js';
import { cohortCsv as csv, cohortRow } from '../support/cohort-rows.js';
import { BACKENDS, freshDatabase } from '../support/database.js';
import { addParticipant, newClinics, smallOffice, TODAY, type Office } from '../support/fixtures.js';
import { PageClient, testHub } from '../support/hub-client.js';

faker.seed(4242);

/** A second office, NTH, with one GP practice, Y00009, and a clinic site of its own. */
async function northOffice(db: Db) {
  await db.insertInto('screening_office').values({ code: 'NTH', name: 'North Test Office' }).execute();
  await db
    .insertInto('gp_practice')
    .values({ ods_code: 'Y00009', name: 'Moorside Surgery', postcode: 'YO1 7HH', bso_code: 'NTH' })
    .execute();
  await db
    .insertInto('site')
    .values({ id: 'north-static', bso_code: 'NTH', name: 'North Breast Unit', kind: 'static', ae_title: null })
    .execute();
}

const row = (overrides: Partial<CohortRow> = {}): CohortRow =>
  cohortRow({
    familyName: faker.person.lastName(),
    givenName: faker.person.firstName('female'),
    dateOfBirth: '1968-03-04',
    addressLine1: '3 Feed Street',
    effectiveDate: '2026-01-05',
    ...overrides,
  });

describe.each(BACKENDS)('movers on %s', (backend) => {
  let database: Awaited<ReturnType<typeof freshDatabase>>;
  let office: Office;
  let app: FastifyInstance;
  beforeAll(async () => {
    database = await freshDatabase(backend);
    office = await smallOffice(database.db);
    await northOffice(database.db);
    app = await testHub(database.db);
  });
  afterAll(async () => {
    await app.close();
    await database.drop();
  });
  const db = () => database.db;
  const run = (text: string) =>
    importCohort(db(), [text], { actor: office.actor, today: TODAY, sourceName: 'cohort.csv' });
  const person = (nhsNumber: string) =>
    db().selectFrom('participant').selectAll().where('nhs_number', '=', nhsNumber).executeTakeFirstOrThrow();
  const movesOf = (participantId: string) =>
    db()
      .selectFrom('participant_move')
      .selectAll()
      .where('participant_id', '=', participantId)
      .orderBy('seq')
      .execute();
  const count = async (table: 'participant' | 'participant_move') =>
    (
      await db()
        .selectFrom(table)
        .select(sql<number>`count(*)::int`.as('n'))
        .executeTakeFirstOrThrow()
    ).n;
  const signedIn = async (username: string) => {
    const client = new PageClient(app);
    await client.signIn(username);
    return client;
  };
  /** The part of the movers page under one heading (moved in or out), up to the next. */
  const section = (html: string, id: 'moved-in' | 'moved-out') => {
    const start = html.indexOf(`<h2 id="${id}"`);
    const end = id === 'moved-in' ? html.indexOf('<h2 id="moved-out"') : html.length;
    return html.slice(start, end);
  };

  // One woman, imported from the feed at TST, booked for tomorrow (which opens her episode), then the feed says
  // her GP is now Moorside Surgery in NTH's area.
  let ada: CohortRow;
  let adaId: string;
  let appointmentId: string;
  let moveId: string;

  it('a cohort row with a GP in another office moves her, her open episode, and records one move', async () => {
    ada = row();
    expect((await run(csv(ada))).added).toBe(1);
    adaId = (await person(ada.nhsNumber)).id;
    const clinics = await newClinics(db());
    appointmentId = await bookAppointment(
      db(),
      { clinicId: clinics.tomorrowClinic, participantId: adaId },
      office.actor,
      TODAY,
    );
    const participants = await count('participant');

    const moved = { ...ada, gpPracticeCode: 'Y00009', effectiveDate: '2026-11-20' };
    const summary = await run(csv(moved));
    expect(summary).toMatchObject({ amended: 1, moved: 1, fieldsChanged: 2 });
    const p = await person(ada.nhsNumber);
    expect(p).toMatchObject({ bso_code: 'NTH', gp_practice_code: 'Y00009' });
    const episode = await db()
      .selectFrom('episode')
      .selectAll()
      .where('participant_id', '=', adaId)
      .executeTakeFirstOrThrow();
    expect(episode).toMatchObject({ bso_code: 'NTH', closed_on: null });
    const moves = await movesOf(adaId);
    expect(moves).toHaveLength(1);
    expect(moves[0]).toMatchObject({
      from_bso_code: 'TST',
      to_bso_code: 'NTH',
      effective_date: '2026-11-20',
      source: 'bs_select',
      gp_practice_from: 'Y00001',
      gp_practice_to: 'Y00009',
      episode_id: episode.id,
      episode_outcome: 'moved',
      appointments_at_old_office: [appointmentId],
      recorded_by: office.users.admin.id,
    });
    moveId = moves[0]!.id;
    // The booking stays valid: nothing is cancelled for her.
    const appointment = await db()
      .selectFrom('appointment')
      .select('status')
      .where('id', '=', appointmentId)
      .executeTakeFirstOrThrow();
    expect(appointment.status).toBe('scheduled');
    // One national record: nobody added.
    expect(await count('participant')).toBe(participants);
    const audit = await db()
      .selectFrom('audit_event')
      .select('detail')
      .where('action', '=', 'cohort.import')
      .orderBy('id', 'desc')
      .executeTakeFirstOrThrow();
    expect(audit.detail).toMatchObject({ moved: 1, amended: 1 });
    const history = await db()
      .selectFrom('participant_change')
      .select(['field', 'old_value', 'new_value', 'reason'])
      .where('participant_id', '=', adaId)
      .where('field', '=', 'bso_code')
      .execute();
    expect(history).toEqual([
      { field: 'bso_code', old_value: 'TST', new_value: 'NTH', reason: 'Responsibility follows the GP practice' },
    ]);

    // The same file again changes nothing and records no second move.
    const again = await run(csv(moved));
    expect(again).toMatchObject({ unchanged: 1, moved: 0 });
    expect(await movesOf(adaId)).toHaveLength(1);
    expect(await count('participant')).toBe(participants);
  });

  it("lists the move in NTH's moved in and TST's moved out, with what each has to do", async () => {
    const client = await signedIn('reader');
    const north = await client.get('/movers?office=NTH');
    expect(north.statusCode).toBe(200);
    const movedIn = section(north.body, 'moved-in');
    expect(movedIn).toContain(formatNhsNumber(ada.nhsNumber));
    expect(movedIn).toContain(`href="/participants/${adaId}"`);
    expect(movedIn).toContain('Riverside Surgery (Y00001)');
    expect(movedIn).toContain('Moorside Surgery (Y00009)');
    expect(movedIn).toContain('20 November 2026');
    expect(movedIn).toContain('Moved to the new office');
    expect(movedIn).toContain('24 November 2026, Central Breast Unit');
    expect(movedIn).toContain('1 appointment booked with Test Breast Screening Office');
    expect(section(north.body, 'moved-out')).not.toContain(formatNhsNumber(ada.nhsNumber));
    // A film reader sees, but cannot acknowledge.
    expect(north.body).not.toContain('Mark as seen');

    const test = await client.get('/movers?office=TST');
    expect(section(test.body, 'moved-out')).toContain(formatNhsNumber(ada.nhsNumber));
    expect(section(test.body, 'moved-out')).toContain('still has 1 appointment booked at your clinics');
    expect(section(test.body, 'moved-in')).not.toContain(formatNhsNumber(ada.nhsNumber));

    const audit = await db()
      .selectFrom('audit_event')
      .select('detail')
      .where('action', '=', 'movers.view')
      .orderBy('id', 'desc')
      .executeTakeFirstOrThrow();
    expect(audit.detail).toMatchObject({ office: 'TST', movedOutOpen: 1 });

    expect((await client.get('/movers?office=NOPE')).statusCode).toBe(400);
    expect((await client.post(`/movers/${moveId}/seen`, { office: 'NTH' })).statusCode).toBe(403);
  });

  it('each office acknowledges once, audited; her record shows the move and who saw it', async () => {
    const client = await signedIn('admin');
    const page = await client.get('/movers?office=NTH');
    expect(page.body).toContain('Mark as seen');
    const seen = await client.post(`/movers/${moveId}/seen`, { office: 'NTH' });
    expect(seen.statusCode).toBe(303);
    expect(seen.headers.location).toBe('/movers?office=NTH');
    const after = await client.get('/movers?office=NTH');
    expect(after.body).toContain('Move acknowledged for your office.');
    const movedIn = section(after.body, 'moved-in');
    expect(movedIn).toContain('To acknowledge (0)');
    expect(movedIn.slice(movedIn.indexOf('<h3>Acknowledged</h3>'))).toContain(formatNhsNumber(ada.nhsNumber));
    expect(movedIn).toContain('By Alex Admin');
    // TST has still to acknowledge its side.
    expect((await listOfficeMoves(db(), 'TST', 'out')).openCount).toBe(1);

    const audit = await db()
      .selectFrom('audit_event')
      .select(['entity_id', 'participant_id', 'detail', 'username'])
      .where('action', '=', 'participant.move.seen')
      .execute();
    expect(audit).toEqual([
      { entity_id: moveId, participant_id: adaId, detail: { office: 'NTH', direction: 'in' }, username: 'admin' },
    ]);

    await client.get('/movers?office=NTH');
    expect((await client.post(`/movers/${moveId}/seen`, { office: 'NTH' })).statusCode).toBe(409);
    await expect(acknowledgeMove(db(), moveId, 'NTH', office.actor)).rejects.toThrow(/already acknowledged/);
    await expect(acknowledgeMove(db(), moveId, 'ZZZ', office.actor)).rejects.toThrow(/office she left or/);
    // The table refuses an office that is not one of the move's, and any change afterwards.
    await expect(
      db()
        .insertInto('participant_move_seen')
        .values({ move_id: moveId, bso_code: 'ZZZ', seen_by: office.users.admin.id })
        .execute(),
    ).rejects.toThrow();
    await expect(
      db().updateTable('participant_move').set({ to_bso_code: 'TST' }).where('id', '=', moveId).execute(),
    ).rejects.toThrow(/append-only/);

    const record = await client.get(`/participants/${adaId}`);
    expect(record.body).toContain('Moved between screening offices');
    expect(record.body).toContain('Open episode moved with her');
    expect(record.body).toMatch(/NTH: Alex Admin/);
    expect(record.body).toContain('TST: not yet seen');
  });

  it('a staff correction of her GP practice moves her too; an episode she was screened in stays to finish', async () => {
    const bea = await addParticipant(db(), {
      given_name: faker.person.firstName('female'),
      family_name: faker.person.lastName(),
    });
    const episode = await db()
      .insertInto('episode')
      .values({
        participant_id: bea.id,
        bso_code: 'TST',
        episode_type: 'R',
        opened_on: '2026-10-01',
        screened_on: '2026-11-02',
      })
      .returning('id')
      .executeTakeFirstOrThrow();
    // A new practice in the same office's area is not a move.
    await correctDemographics(
      db(),
      {
        participantId: bea.id,
        expectedVersion: bea.version,
        changes: { gp_practice_code: 'Y00002' },
        source: 'participant',
        sourceDate: TODAY,
        reason: 'She registered with another practice',
      },
      office.actor,
    );
    expect(await movesOf(bea.id)).toHaveLength(0);

    const changed = await correctDemographics(
      db(),
      {
        participantId: bea.id,
        expectedVersion: bea.version + 1,
        changes: { gp_practice_code: 'Y00009' },
        source: 'participant',
        sourceDate: TODAY,
        reason: 'She moved house and registered with a new GP',
      },
      office.actor,
    );
    expect(changed.sort()).toEqual(['bso_code', 'gp_practice_code']);
    expect(await person(bea.nhs_number)).toMatchObject({ bso_code: 'NTH', gp_practice_code: 'Y00009', version: 3 });
    const moves = await movesOf(bea.id);
    expect(moves).toHaveLength(1);
    expect(moves[0]).toMatchObject({
      source: 'staff',
      from_bso_code: 'TST',
      to_bso_code: 'NTH',
      gp_practice_from: 'Y00002',
      gp_practice_to: 'Y00009',
      effective_date: TODAY,
      episode_id: episode.id,
      episode_outcome: 'stays_to_finish',
      appointments_at_old_office: [],
    });
    const kept = await db().selectFrom('episode').select('bso_code').where('id', '=', episode.id).executeTakeFirst();
    expect(kept?.bso_code).toBe('TST');
    const audit = await db()
      .selectFrom('audit_event')
      .select(['entity_id', 'detail'])
      .where('action', '=', 'participant.move')
      .where('participant_id', '=', bea.id)
      .execute();
    expect(audit).toHaveLength(1);
    expect(audit[0]).toMatchObject({
      entity_id: moves[0]!.id,
      detail: { from: 'TST', to: 'NTH', episode: { id: episode.id, outcome: 'stays_to_finish' } },
    });
    const out = await listOfficeMoves(db(), 'TST', 'out');
    const beaOut = out.open.find((m) => m.participant_id === bea.id);
    expect(beaOut?.tasks.out[0]).toMatch(/finish it here/);
  });

  it('the same person moving out and back in one file records both moves, her episode ending where she does', async () => {
    const cat = row();
    await run(csv(cat));
    const catId = (await person(cat.nhsNumber)).id;
    await db()
      .insertInto('episode')
      .values({ participant_id: catId, bso_code: 'TST', episode_type: 'C', opened_on: '2026-09-01' })
      .execute();
    const summary = await run(
      csv(
        { ...cat, gpPracticeCode: 'Y00009', effectiveDate: '2026-11-02' },
        { ...cat, gpPracticeCode: 'Y00002', effectiveDate: '2026-11-03' },
      ),
    );
    expect(summary.moved).toBe(2);
    const moves = await movesOf(catId);
    expect(moves.map((m) => [m.from_bso_code, m.to_bso_code, m.episode_outcome])).toEqual([
      ['TST', 'NTH', 'moved'],
      ['NTH', 'TST', 'moved'],
    ]);
    expect(await person(cat.nhsNumber)).toMatchObject({ bso_code: 'TST', gp_practice_code: 'Y00002' });
    const episode = await db()
      .selectFrom('episode')
      .select('bso_code')
      .where('participant_id', '=', catId)
      .executeTakeFirstOrThrow();
    expect(episode.bso_code).toBe('TST');
  });
});
