import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Db } from '../../src/store/database.js';
import { createBatch, issueLetters, sendBatch } from '../../src/store/invitation-sending.js';
import { BACKENDS, freshDatabase } from '../support/database.js';
import { addParticipant, smallOffice, TODAY, type Office } from '../support/fixtures.js';
import { PageClient, testHub } from '../support/hub-client.js';
import { addNeed, BATCH, batchClinics } from '../support/invitation-batch.js';

const GENERIC = 'We could not find an invitation with these details.';

describe.each(BACKENDS)('self-booking without a staff sign-in (%s)', (backend) => {
  let database: Awaited<ReturnType<typeof freshDatabase>>;
  let db: Db;
  let office: Office;
  let app: FastifyInstance;
  let clinics: Awaited<ReturnType<typeof batchClinics>>;
  const women: Record<string, { id: string; nhs: string; dob: string; code: string }> = {};

  beforeAll(async () => {
    database = await freshDatabase(backend);
    db = database.db;
    office = await smallOffice(db);
    clinics = await batchClinics(db);
    // A second accessible clinic in the batch's weeks, so there are other times to choose.
    await db
      .insertInto('clinic')
      .values({
        site_id: 'static-1',
        location_id: 'central',
        clinic_date: '2027-01-19',
        starts_at: '10:00',
        ends_at: '11:00',
        slot_minutes: 10,
      })
      .execute();
    for (const [name, dob] of [
      ['Chooser', '1960-04-01'],
      ['Locked', '1960-04-02'],
      ['Canceller', '1960-04-03'],
      ['Wheeler', '1960-04-04'],
    ] as const) {
      const p = await addParticipant(db, { family_name: name, date_of_birth: dob, postcode: 'LS6 2AB' });
      women[name] = { id: p.id, nhs: p.nhs_number, dob, code: '' };
    }
    await addNeed(db, women.Wheeler!.id, 'wheelchair');
    const batchId = await createBatch(db, BATCH, 'c'.repeat(32), office.actor);
    await sendBatch(db, batchId, office.actor, TODAY);
    const { letters } = await issueLetters(db, batchId, office.actor, 'http://localhost/book-your-screening');
    for (const letter of letters) {
      const name = Object.keys(women).find((n) => letter.salutation.endsWith(n))!;
      women[name]!.code = letter.booking.code;
    }
    app = await testHub(db);
  });
  afterAll(async () => {
    await app.close();
    await database.drop();
  });

  const details = (name: string, more: Record<string, string> = {}) => {
    const w = women[name]!;
    const [year, month, day] = w.dob.split('-');
    return {
      nhsNumber: w.nhs,
      'dateOfBirth[day]': String(Number(day)),
      'dateOfBirth[month]': String(Number(month)),
      'dateOfBirth[year]': year!,
      code: w.code,
      ...more,
    };
  };
  const signIn = async (name: string, more: Record<string, string> = {}) => {
    const client = new PageClient(app);
    const start = await client.get('/book-your-screening');
    expect(start.statusCode).toBe(200);
    const response = await client.post('/book-your-screening', details(name, more));
    return { client, response };
  };
  const appointmentOf = async (name: string) =>
    db
      .selectFrom('invitation as i')
      .innerJoin('appointment as a', 'a.id', 'i.appointment_id')
      .select(['i.status as invitation_status', 'a.id', 'a.status', 'a.clinic_id', 'a.slot_index', 'a.booked_by'])
      .where('i.participant_id', '=', women[name]!.id)
      .executeTakeFirstOrThrow();

  it('shows the start page with no staff header, and asks for what is missing', async () => {
    const client = new PageClient(app);
    const start = await client.get('/book-your-screening');
    expect(start.body).toContain('NHS Breast Screening');
    expect(start.body).not.toContain('Sign out');
    expect(start.body).not.toContain('Invitation batches');
    expect(start.headers['cache-control']).toBe('no-store');
    const empty = await client.post('/book-your-screening', {});
    expect(empty.statusCode).toBe(400);
    expect(empty.body).toContain('Enter your NHS number');
    expect(empty.body).toContain('Enter date of birth');
    expect(empty.body).toContain('Enter the code from your letter');
    // Without the form's CSRF token: refused.
    const forged = await client.post('/book-your-screening', details('Chooser'), { csrf: false });
    expect(forged.statusCode).toBe(403);
    // The pages after sign-in send her back to the start without a session.
    const direct = await client.get('/book-your-screening/appointment');
    expect(direct.statusCode).toBe(303);
    expect(direct.headers.location).toBe('/book-your-screening');
  });

  it('gives one message whatever is wrong, and audits every attempt', async () => {
    const wrongCode = (await signIn('Canceller', { code: 'ABCD-2345' })).response;
    const wrongDob = (await signIn('Canceller', { 'dateOfBirth[day]': '4' })).response;
    const wrongNhs = (await signIn('Canceller', { nhsNumber: women.Chooser!.nhs })).response;
    for (const r of [wrongCode, wrongDob, wrongNhs]) {
      expect(r.statusCode).toBe(401);
      expect(r.body).toContain(GENERIC);
      expect(r.body).not.toContain('is not right');
    }
    const message = (body: string) => /<li>\s*<a href="#form">([^<]+)<\/a>/.exec(body)?.[1];
    expect(message(wrongCode.body)).toBe(message(wrongDob.body));
    expect(message(wrongDob.body)).toBe(message(wrongNhs.body));
    const audit = await db
      .selectFrom('audit_event')
      .select(['action', 'participant_id', 'ip'])
      .where('action', 'like', 'self_booking.%')
      .execute();
    expect(audit.filter((a) => a.action === 'self_booking.sign_in_failed')).toHaveLength(3);
    expect(audit.filter((a) => a.participant_id === women.Canceller!.id)).toHaveLength(1);
  });

  it('locks the invitation for 30 minutes after 5 wrong codes, even for the right one', async () => {
    for (let i = 0; i < 5; i++)
      expect((await signIn('Locked', { code: `WRNG-CDE${i + 2}` })).response.statusCode).toBe(401);
    const right = await signIn('Locked');
    expect(right.response.statusCode).toBe(401);
    expect(right.response.body).toContain(GENERIC);
    const invitation = await db
      .selectFrom('invitation')
      .select(['locked_until', 'failed_attempts'])
      .where('participant_id', '=', women.Locked!.id)
      .executeTakeFirstOrThrow();
    const minutes = (new Date(invitation.locked_until!).getTime() - Date.now()) / 60_000;
    expect(minutes).toBeGreaterThan(29);
    expect(minutes).toBeLessThanOrEqual(30);
    const audit = await db
      .selectFrom('audit_event')
      .select(['action', 'username', 'detail'])
      .where('participant_id', '=', women.Locked!.id)
      .where('action', 'like', 'self_booking.%')
      .orderBy('id')
      .execute();
    expect(audit.map((a) => a.action)).toEqual([
      ...Array(5).fill('self_booking.sign_in_failed'),
      'self_booking.sign_in_locked',
    ]);
    expect(audit[4]!.detail).toMatchObject({ attempts: 5, locked: true });
    expect(audit[0]!.username).toBe(`participant:${women.Locked!.nhs}`);
    // Half an hour later the right code works.
    await db
      .updateTable('invitation')
      .set({ locked_until: new Date(Date.now() - 1000) })
      .where('participant_id', '=', women.Locked!.id)
      .execute();
    expect((await signIn('Locked')).response.statusCode).toBe(303);
  });

  it('lets her change to another offered time through the booking path: old slot freed, audited as her', async () => {
    const { client, response } = await signIn('Chooser', { code: women.Chooser!.code.toLowerCase().replace('-', ' ') });
    expect(response.statusCode).toBe(303);
    expect(response.headers.location).toBe('/book-your-screening/appointment');
    const before = await appointmentOf('Chooser');
    const shown = await client.get('/book-your-screening/appointment');
    expect(shown.statusCode).toBe(200);
    expect(shown.body).toContain('Your breast screening appointment');
    expect(shown.body).toMatch(/Tuesday 1[29] January 2027/);
    expect(shown.headers['cache-control']).toBe('no-store');

    const change = await client.get('/book-your-screening/change');
    const choices = [...change.body.matchAll(/name="choice" type="radio" value="([^"]+)"/g)].map((m) => m[1]!);
    expect(choices.length).toBeGreaterThan(1);
    expect(choices).not.toContain(`${before.clinic_id}:${before.slot_index}`);
    expect(choices.every((c) => !c.startsWith(clinics.outside))).toBe(true);

    // Someone else takes the first choice first: she is told, and nothing changes.
    const [takenClinic, takenSlot] = choices[0]!.split(':');
    const other = await addParticipant(db, { family_name: 'Other', date_of_birth: '1958-01-01' });
    const { bookAppointment } = await import('../../src/store/clinics.js');
    await bookAppointment(
      db,
      { clinicId: takenClinic!, participantId: other.id, slotIndex: Number(takenSlot) },
      office.actor,
      TODAY,
    );
    const refused = await client.post('/book-your-screening/change', { choice: choices[0]! });
    expect(refused.statusCode).toBe(409);
    expect(refused.body).toContain('That time is no longer free: choose another');
    expect((await appointmentOf('Chooser')).id).toBe(before.id);

    const target = choices[choices.length - 1]!;
    const moved = await client.post('/book-your-screening/change', { choice: target });
    expect(moved.statusCode).toBe(303);
    const after = await appointmentOf('Chooser');
    expect(`${after.clinic_id}:${after.slot_index}`).toBe(target);
    expect(after).toMatchObject({ status: 'scheduled', invitation_status: 'confirmed', booked_by: null });
    const old = await db
      .selectFrom('appointment')
      .select(['status', 'status_reason'])
      .where('id', '=', before.id)
      .executeTakeFirstOrThrow();
    expect(old).toEqual({ status: 'cancelled', status_reason: 'Rescheduled by the participant online' });
    expect(
      await db.selectFrom('appointment_slot').selectAll().where('appointment_id', '=', before.id).execute(),
    ).toEqual([]);
    const audit = await db
      .selectFrom('audit_event')
      .select(['action', 'username', 'user_id'])
      .where('participant_id', '=', women.Chooser!.id)
      .where('username', '=', `participant:${women.Chooser!.nhs}`)
      .orderBy('id')
      .execute();
    expect(audit.map((a) => a.action)).toEqual([
      'self_booking.sign_in',
      'appointment.status',
      'appointment.reschedule',
      'self_booking.change',
    ]);
    expect(audit.every((a) => a.user_id === null)).toBe(true);
    expect((await client.get('/book-your-screening/appointment')).body).toContain('Your appointment has been changed');

    const kept = await client.post('/book-your-screening/keep', {});
    expect(kept.statusCode).toBe(303);
    expect((await appointmentOf('Chooser')).invitation_status).toBe('confirmed');
    await client.post('/book-your-screening/sign-out', {});
    expect((await client.get('/book-your-screening/appointment')).statusCode).toBe(303);
  });

  it('offers a wheelchair user only accessible times', async () => {
    const { client } = await signIn('Wheeler');
    const change = await client.get('/book-your-screening/change');
    const choices = [...change.body.matchAll(/name="choice" type="radio" value="([^"]+)"/g)].map((m) => m[1]!);
    expect(choices.length).toBeGreaterThan(0);
    expect(choices.some((c) => c.startsWith(clinics.carPark))).toBe(false);
    const forged = await client.post('/book-your-screening/change', { choice: `${clinics.carPark}:5` });
    expect(forged.statusCode).toBe(409);
  });

  it('lets her cancel (freeing the slot) or ask to be contacted', async () => {
    const { client } = await signIn('Canceller');
    const before = await appointmentOf('Canceller');
    const noChoice = await client.post('/book-your-screening/cancel', {});
    expect(noChoice.statusCode).toBe(400);
    expect(noChoice.body).toContain('Choose what you would like to do');
    const noNote = await client.post('/book-your-screening/cancel', { action: 'contact' });
    expect(noNote.body).toContain('Tell us how and when to contact you, or what you need');
    expect(
      (await client.post('/book-your-screening/cancel', { action: 'contact', note: 'Mornings please' })).statusCode,
    ).toBe(303);
    expect((await appointmentOf('Canceller')).invitation_status).toBe('contact_requested');
    expect((await appointmentOf('Canceller')).status).toBe('scheduled');
    // The office sees who asked, from the list of batches sent to the batch's own page.
    const staff = new PageClient(app);
    await staff.signIn('admin');
    const list = await staff.get('/invitations/batch');
    const batchLink = /href="(\/invitations\/batches\/[0-9a-f-]{36})"/.exec(list.body)?.[1];
    expect(batchLink).toBeDefined();
    expect(list.body).toMatch(/<td class="nhsuk-table__cell"><strong>1<\/strong><\/td>/);
    const batchPage = await staff.get(batchLink!);
    expect(batchPage.body).toContain('Asked to be contacted: call or write to these women');
    expect(batchPage.body).toContain('Mornings please');
    expect((await client.post('/book-your-screening/cancel', { action: 'cancel' })).statusCode).toBe(303);
    const after = await appointmentOf('Canceller');
    expect(after).toMatchObject({ id: before.id, status: 'cancelled', invitation_status: 'cancelled' });
    expect(
      await db.selectFrom('appointment_slot').selectAll().where('appointment_id', '=', before.id).execute(),
    ).toEqual([]);
    expect((await client.get('/book-your-screening/appointment')).body).toContain('Your appointment is cancelled');
  });
});
