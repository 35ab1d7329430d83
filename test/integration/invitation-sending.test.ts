import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SYSTEM_ACTOR } from '../../src/store/audit.js';
import type { Db } from '../../src/store/database.js';
import { createBatch, issueLetters, sendBatch } from '../../src/store/invitation-sending.js';
import { signInToInvitation } from '../../src/store/self-booking.js';
import { BACKENDS, freshDatabase } from '../support/database.js';
import { addParticipant, smallOffice, TODAY, type Office } from '../support/fixtures.js';
import { PageClient, testHub } from '../support/hub-client.js';
import { addNeed, BATCH, batchClinics } from '../support/invitation-batch.js';

describe.each(BACKENDS)('sending invitation batches (%s)', (backend) => {
  let database: Awaited<ReturnType<typeof freshDatabase>>;
  let db: Db;
  let office: Office;
  let app: FastifyInstance;
  let clinics: Awaited<ReturnType<typeof batchClinics>>;
  const who: Record<string, string> = {};

  beforeAll(async () => {
    database = await freshDatabase(backend);
    db = database.db;
    office = await smallOffice(db);
    clinics = await batchClinics(db);
    const add = async (name: string, dob: string, ...needs: [string, string?][]) => {
      const p = await addParticipant(db, { family_name: name, date_of_birth: dob, postcode: 'LS6 2AB' });
      for (const [kind, value] of needs) await addNeed(db, p.id, kind, value ?? null);
      who[name] = p.id;
    };
    await add('Standard', '1960-03-01');
    await add('Wheeler', '1960-03-02', ['wheelchair']);
    await add('Rollins', '1960-03-03', ['wheelchair']);
    await add('Bigprint', '1960-03-04', ['large_print']);
    await add('Dots', '1960-03-05', ['braille']);
    await add('Kowalska', '1960-03-06', ['interpreter', 'Polish']);
    await add('Ceased', '1960-03-07');
    await db
      .updateTable('participant')
      .set({ ceased_reason: 'Mental capacity', ceased_on: '2024-01-01' })
      .where('id', '=', who.Ceased!)
      .execute();
    app = await testHub(db);
  });
  afterAll(async () => {
    await app.close();
    await database.drop();
  });

  const invitations = () =>
    db
      .selectFrom('invitation as i')
      .innerJoin('participant as p', 'p.id', 'i.participant_id')
      .leftJoin('appointment as a', 'a.id', 'i.appointment_id')
      .select([
        'p.family_name',
        'i.status',
        'i.letter_format',
        'i.letter_language',
        'i.no_clinic_reason',
        'i.episode_type',
        'i.episode_id',
        'i.code_hash',
        'a.clinic_id',
        'a.slot_count',
      ])
      .execute()
      .then((rows) => new Map(rows.map((r) => [r.family_name, r])));

  it('books each woman at a suitable clinic, lists who has none and why, and is idempotent', async () => {
    const actor = office.actor;
    const batchId = await createBatch(db, BATCH, 'a'.repeat(32), actor);
    expect(await createBatch(db, BATCH, 'a'.repeat(32), actor)).toBe(batchId);
    const counts = await sendBatch(db, batchId, actor, TODAY, { chunkSize: 2 });
    expect(counts).toEqual({ offered: 5, noClinic: 1, excluded: 1, alreadySent: 0 });

    const rows = await invitations();
    expect(rows.size).toBe(6);
    // Both wheelchair users need the accessible clinic (3 slots) and 2 slots each: one fits, one is listed.
    const wheelchair = [rows.get('Wheeler')!, rows.get('Rollins')!];
    const booked = wheelchair.find((r) => r.status === 'offered')!;
    const notBooked = wheelchair.find((r) => r.status === 'no_suitable_clinic')!;
    expect(booked).toMatchObject({ clinic_id: clinics.central, slot_count: 2 });
    expect(notBooked.clinic_id).toBeNull();
    expect(notBooked.no_clinic_reason).toBe(
      'She uses a wheelchair and no wheelchair accessible clinic has 2 free slots in a row between 12 January 2027 and 23 February 2027',
    );
    for (const r of rows.values()) expect(r.clinic_id).not.toBe(clinics.outside);
    expect(rows.get('Kowalska')).toMatchObject({
      letter_format: 'translated',
      letter_language: 'Polish',
      slot_count: 2,
    });
    expect(rows.get('Bigprint')!.letter_format).toBe('large_print');
    expect(rows.get('Dots')!.letter_format).toBe('braille');
    expect(rows.get('Standard')).toMatchObject({ letter_format: 'standard', episode_type: 'C', slot_count: 1 });
    expect(rows.get('Standard')!.episode_id).not.toBeNull();
    expect(rows.has('Ceased')).toBe(false);

    // Sending again invites nobody twice.
    const appointmentsBefore = await db.selectFrom('appointment').select('id').execute();
    expect(await sendBatch(db, batchId, actor, TODAY)).toEqual({
      offered: 5,
      noClinic: 1,
      excluded: 1,
      alreadySent: 6,
    });
    expect(await db.selectFrom('appointment').select('id').execute()).toHaveLength(appointmentsBefore.length);
    expect((await invitations()).size).toBe(6);
    // A second batch over the same women: they already have appointments, so none is booked twice.
    const again = await createBatch(db, BATCH, 'b'.repeat(32), actor);
    expect(await sendBatch(db, again, actor, TODAY)).toMatchObject({ offered: 0, noClinic: 6 });
    const reasons = await db
      .selectFrom('invitation')
      .select('no_clinic_reason')
      .where('batch_id', '=', again)
      .where('participant_id', '=', who.Standard!)
      .executeTakeFirstOrThrow();
    expect(reasons.no_clinic_reason).toMatch(/^She already has an appointment on 12 January 2027$/);
    expect(await db.selectFrom('appointment').select('id').execute()).toHaveLength(appointmentsBefore.length);

    const audit = await db
      .selectFrom('audit_event')
      .select(['action', 'username', 'entity_id'])
      .where('action', '=', 'invitations.send')
      .where('entity_id', '=', batchId)
      .execute();
    expect(audit.length).toBeGreaterThanOrEqual(3); // one per chunk of 2, and the resend
    expect(audit.every((a) => a.username === 'admin')).toBe(true);
  });

  it('produces letters in each format with codes kept only as hashes; the codes open the invitation', async () => {
    const batch = await db
      .selectFrom('invitation_batch')
      .select('id')
      .where('request_key', '=', 'a'.repeat(32))
      .executeTakeFirstOrThrow();
    const { letters } = await issueLetters(db, batch.id, SYSTEM_ACTOR, 'https://hub.example/book-your-screening');
    expect(letters).toHaveLength(5);
    const formats = letters.map((l) => l.format).sort();
    expect(formats).toEqual(['braille', 'large_print', 'standard', 'standard', 'translated']);
    const rows = await invitations();
    for (const letter of letters) {
      expect(letter.booking.code).toMatch(/^[A-HJKMNP-Z2-9]{4}-[A-HJKMNP-Z2-9]{4}$/);
      const all = [...rows.values()].map((r) => r.code_hash ?? '').join(' ');
      expect(all).not.toContain(letter.booking.code.replace('-', ''));
    }
    const standard = letters.find((l) => l.salutation.includes('Standard'))!;
    const participant = await db
      .selectFrom('participant')
      .select(['nhs_number', 'date_of_birth'])
      .where('id', '=', who.Standard!)
      .executeTakeFirstOrThrow();
    const opened = await signInToInvitation(
      db,
      {
        nhsNumber: participant.nhs_number,
        dateOfBirth: participant.date_of_birth,
        code: standard.booking.code.toLowerCase(),
      },
      '127.0.0.1',
    );
    expect(opened.ok).toBe(true);
  });

  it('walks a planner from the preview to the confirm page, sends once, shows the result and the letters', async () => {
    const client = new PageClient(app);
    await client.signIn('admin');
    // A fresh set of women in another outcode, with one clinic.
    for (const name of ['Alpha', 'Beta', 'Gamma'])
      await addParticipant(db, { family_name: name, date_of_birth: '1961-01-01', postcode: 'LS7 1AA' });
    await addNeed(
      db,
      (await addParticipant(db, { family_name: 'Delta', date_of_birth: '1961-01-02', postcode: 'LS7 1AA' })).id,
      'wheelchair',
    );
    await db
      .insertInto('clinic')
      .values({
        site_id: 'mobile-1',
        location_id: 'car-park',
        clinic_date: '2027-01-14',
        starts_at: '13:00',
        ends_at: '14:00',
        slot_minutes: 10,
      })
      .execute();
    const query = new URLSearchParams({
      bsoCode: 'TST',
      by: 'outcode',
      outcode: 'LS7',
      'batchDate[day]': '13',
      'batchDate[month]': '1',
      'batchDate[year]': '2027',
    }).toString();
    const preview = await client.get(`/invitations/batch?${query}`);
    expect(preview.body).toContain(`href="/invitations/batch/send?${query.replaceAll('&', '&amp;')}"`);
    const confirm = await client.get(`/invitations/batch/send?${query}`);
    expect(confirm.statusCode).toBe(200);
    expect(confirm.body).toContain('Will be offered an appointment');
    expect(confirm.body).toContain('1 will not be offered an appointment');
    expect(confirm.body).toContain('No wheelchair accessible clinic');
    expect(confirm.body).toContain('Send 3 invitations');
    const form = Object.fromEntries(
      [...confirm.body.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)].map((m) => [m[1]!, m[2]!]),
    );
    const sent = await client.post('/invitations/batch/send', form);
    expect(sent.statusCode).toBe(303);
    const location = sent.headers.location as string;
    expect(location).toMatch(/^\/invitations\/batches\/[0-9a-f-]{36}$/);
    // The same form again (a double click): the same batch, nobody invited twice.
    const twice = await client.post('/invitations/batch/send', form);
    expect(twice.headers.location).toBe(location);
    const result = await client.get(location);
    expect(result.body).toContain('Invitations sent: 3 offered an appointment, 1 with no suitable clinic');
    expect(result.body).toContain('No suitable clinic: arrange these appointments another way');
    expect(result.body).toContain('DELTA, Jane');
    const letters = await client.post(`${location}/letters`, {});
    expect(letters.statusCode).toBe(200);
    expect(letters.headers['cache-control']).toBe('no-store');
    expect(letters.body).toContain('Shown once');
    expect([...letters.body.matchAll(/<code class="sh-code">([A-Z2-9]{4}-[A-Z2-9]{4})<\/code>/g)]).toHaveLength(3);
    expect(letters.body).toContain('http://localhost:80/book-your-screening');
  });
});
