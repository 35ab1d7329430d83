import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatNhsNumber } from '../../src/pathway/nhs-number.js';
import { freshDatabase } from '../support/database.js';
import {
  addItem,
  addParticipant,
  newClinics,
  smallOffice,
  TODAY,
  type Clinics,
  type Office,
} from '../support/fixtures.js';
import { PageClient, testHub } from '../support/hub-client.js';

describe('hub pages', () => {
  let database: Awaited<ReturnType<typeof freshDatabase>>;
  let app: FastifyInstance;
  let clinics: Clinics;
  let office: Office;
  beforeAll(async () => {
    database = await freshDatabase('pglite');
    office = await smallOffice(database.db);
    clinics = await newClinics(database.db);
    app = await testHub(database.db);
  });
  afterAll(async () => {
    await app.close();
    await database.drop();
  });

  it('shows no personal data without sign-in: every page sends you to sign in', async () => {
    const p = await addParticipant(database.db);
    const client = new PageClient(app);
    for (const url of [
      '/participants',
      `/participants/${p.id}`,
      '/clinics',
      '/today',
      '/admin/audit',
      `/clinics/${clinics.accessibleClinic}`,
    ]) {
      const response = await client.get(url);
      expect(response.statusCode, url).toBe(302);
      expect(response.headers.location).toBe(`/sign-in?next=${encodeURIComponent(url)}`);
    }
  });

  it('signs in with the right password only, with the message next to the field', async () => {
    const client = new PageClient(app);
    const wrong = await client.signIn('admin', 'not the password');
    expect(wrong.statusCode).toBe(401);
    expect(wrong.body).toContain('The username or password is not right');
    expect(wrong.body).toContain('href="#username"');
    const right = await client.signIn('admin');
    expect(right.statusCode).toBe(303);
    const home = await client.get('/');
    expect(home.body).toContain('Alex Admin');
    expect(home.headers['content-security-policy']).toContain("default-src 'self'");
    expect(home.headers['cache-control']).toBe('no-store');
  });

  it('refuses a form post without its CSRF token', async () => {
    const client = new PageClient(app);
    await client.signIn('admin');
    const response = await client.post('/participants', { by: 'nhsNumber', nhsNumber: '9434765919' }, { csrf: false });
    expect(response.statusCode).toBe(403);
    expect(response.body).toContain('This form has expired');
  });

  it('explains a mistyped NHS number next to the field, and finds a valid one', async () => {
    const p = await addParticipant(database.db, { given_name: 'Ada', family_name: 'Searchable' });
    const client = new PageClient(app);
    await client.signIn('admin');
    await client.get('/participants');
    const bad = await client.post('/participants', { by: 'nhsNumber', nhsNumber: '999 123 4568' });
    expect(bad.statusCode).toBe(400);
    expect(bad.body).toMatch(/fails the check digit/);
    expect(bad.body).toContain('nhsuk-error-message');
    const found = await client.post('/participants', { by: 'nhsNumber', nhsNumber: formatNhsNumber(p.nhs_number) });
    expect(found.statusCode).toBe(303);
    expect(found.headers.location).toBe(`/participants/${p.id}`);
    const byName = await client.post('/participants', {
      by: 'nameAndBirthDate',
      familyName: 'search',
      'dateOfBirth[day]': '14',
      'dateOfBirth[month]': '5',
      'dateOfBirth[year]': '1966',
    });
    expect(byName.body).toContain(`/participants/${p.id}`);
    const noMonth = await client.post('/participants', {
      by: 'nameAndBirthDate',
      familyName: 'search',
      'dateOfBirth[day]': '14',
      'dateOfBirth[year]': '1966',
    });
    expect(noMonth.body).toContain('Date of birth must include a month');
  });

  it('shows the whole-person record with provenance and adjustments, and audits the view', async () => {
    const p = await addParticipant(database.db, { given_name: 'Grace', family_name: 'Wholeperson' });
    await addItem(database.db, p.id, 'implants', 'left');
    await addItem(database.db, p.id, 'wheelchair');
    await addItem(database.db, p.id, 'symptomatic_treatment');
    const client = new PageClient(app);
    await client.signIn('reader');
    const page = await client.get(`/participants/${p.id}`);
    expect(page.statusCode).toBe(200);
    expect(page.body).toContain('WHOLEPERSON');
    expect(page.body).toContain('From BS-Select, 2 January 2026');
    expect(page.body).toContain('Breast implants');
    expect(page.body).toContain('wheelchair-accessible locations only');
    expect(page.body).toContain('In symptomatic treatment');
    // A film reader may look but not change.
    expect(page.body).not.toContain('Correct personal details');
    const audit = await database.db
      .selectFrom('audit_event')
      .select(['action', 'username'])
      .where('participant_id', '=', p.id)
      .execute();
    expect(audit).toContainEqual({ action: 'participant.view', username: 'reader' });
  });

  it('adds an implant with its source through the form, with messages for what is missing', async () => {
    const p = await addParticipant(database.db);
    const client = new PageClient(app);
    await client.signIn('mammographer');
    await client.get(`/participants/${p.id}/items/new?category=clinical`);
    const missing = await client.post(`/participants/${p.id}/items`, {
      category: 'clinical',
      kind: 'implants',
      source: 'participant',
    });
    expect(missing.statusCode).toBe(400);
    expect(missing.body).toContain('Select which side: breast implants');
    expect(missing.body).toContain('Enter the date the source gave it');
    const saved = await client.post(`/participants/${p.id}/items`, {
      category: 'clinical',
      kind: 'implants',
      side: 'bilateral',
      details: 'Augmentation 2015',
      source: 'participant',
      'sourceDate[day]': '20',
      'sourceDate[month]': '11',
      'sourceDate[year]': '2026',
    });
    expect(saved.statusCode).toBe(303);
    const record = await client.get(saved.headers.location as string);
    expect(record.body).toContain('Breast implants added');
    expect(record.body).toMatch(/Participant, 20 November 2026/);
  });

  it('tells the second of two editors that the record changed, and keeps the first edit', async () => {
    const p = await addParticipant(database.db);
    const first = new PageClient(app);
    const second = new PageClient(app);
    await first.signIn('admin');
    await second.signIn('mammographer');
    await first.get(`/participants/${p.id}/demographics`);
    await second.get(`/participants/${p.id}/demographics`);
    const form = {
      given_name: 'Jane',
      family_name: 'Testwoman',
      'date_of_birth[day]': '14',
      'date_of_birth[month]': '5',
      'date_of_birth[year]': '1966',
      address_line1: '2 Test Street',
      address_line2: '',
      town: '',
      phone: '',
      email: '',
      gp_practice_code: 'Y00001',
      reason: '',
      version: '1',
      source: 'staff',
      'sourceDate[day]': '23',
      'sourceDate[month]': '11',
      'sourceDate[year]': '2026',
    };
    expect((await first.post(`/participants/${p.id}/demographics`, { ...form, postcode: 'LS1 1AA' })).statusCode).toBe(
      303,
    );
    const late = await second.post(`/participants/${p.id}/demographics`, { ...form, postcode: 'LS2 2BB' });
    expect(late.statusCode).toBe(409);
    expect(late.body).toContain('changed by Alex Admin');
    const bad = await first.post(`/participants/${p.id}/demographics`, {
      ...form,
      version: '2',
      postcode: 'not a postcode',
      email: 'nope',
    });
    expect(bad.statusCode).toBe(400);
    expect(bad.body).toContain('Enter a full UK postcode');
    expect(bad.body).toContain('Enter an email address in the right format');
    const row = await database.db
      .selectFrom('participant')
      .select(['postcode', 'version'])
      .where('id', '=', p.id)
      .executeTakeFirstOrThrow();
    expect(row).toEqual({ postcode: 'LS1 1AA', version: 2 });
  });

  it('books, checks in and cancels through the pages; a special appointment shows on the clinic list', async () => {
    const p = await addParticipant(database.db, { given_name: 'Bookable', family_name: 'Person' });
    await addItem(database.db, p.id, 'implants', 'right');
    const admin = new PageClient(app);
    await admin.signIn('admin');
    const form = await admin.get(`/participants/${p.id}/book`);
    expect(form.body).toContain('Special appointment: Breast implants');
    const booked = await admin.post(`/participants/${p.id}/book`, { slot: `${clinics.accessibleClinic}:2` });
    expect(booked.statusCode).toBe(303);
    const appointmentUrl = booked.headers.location as string;
    const recordAfter = await admin.get(`/participants/${p.id}`);
    expect(recordAfter.body).not.toContain('Book an appointment');
    expect(recordAfter.body).toMatch(/Booked for Monday 23 November 2026 at \d\d:\d\d/);
    const appointmentPage = await admin.get(appointmentUrl);
    expect(appointmentPage.body).toMatch(/Reasonable adjustments[\s\S]*Breast implants\. Special appointment: 2 slots/);
    const clinicPage = await admin.get(`/clinics/${clinics.accessibleClinic}`);
    expect(clinicPage.body).toMatch(/1 special appointment today/);
    expect(clinicPage.body).toContain('20 min');

    // The office cancels (a mammographer cannot: 403); the slot frees and the reason shows on the clinic.
    const mammographer = new PageClient(app);
    await mammographer.signIn('mammographer');
    expect((await mammographer.post(`${appointmentUrl}/cancel`, { reason: 'x', version: '1' })).statusCode).toBe(403);
    await admin.get(appointmentUrl);
    const noReason = await admin.post(`${appointmentUrl}/cancel`, { reason: '', version: '1' });
    expect(noReason.body).toContain('Give a reason for cancelling');
    const cancelled = await admin.post(`${appointmentUrl}/cancel`, { reason: 'Participant asked', version: '1' });
    expect(cancelled.statusCode).toBe(303);
    const after = await admin.get(`/clinics/${clinics.accessibleClinic}`);
    expect(after.body).toContain('Participant asked');
    expect(after.body).not.toMatch(/1 special appointment today/);

    // Rebooked, she arrives: the mammographer checks her in from today's clinic; then she cannot be cancelled.
    const rebooked = await admin.post(`/participants/${p.id}/book`, { slot: `${clinics.accessibleClinic}:0` });
    const rebookedUrl = rebooked.headers.location as string;
    const today = await mammographer.get('/today?site=static-1');
    expect(today.body).toContain('Next: ');
    expect(today.body).toContain('Bookable PERSON');
    const checkedIn = await mammographer.post(`${rebookedUrl}/status`, {
      to: 'checked_in',
      version: '1',
      next: 'today',
    });
    expect(checkedIn.statusCode).toBe(303);
    expect(checkedIn.headers.location).toBe('/today?site=static-1');
    await admin.get(rebookedUrl);
    const late = await admin.post(`${rebookedUrl}/cancel`, { reason: 'Too late', version: '2' });
    expect(late.statusCode).toBe(422);
    expect(late.body).toContain('cannot be marked cancelled');
  });

  it('shows the audit log to admins only', async () => {
    const admin = new PageClient(app);
    await admin.signIn('admin');
    const log = await admin.get('/admin/audit?username=reader');
    expect(log.statusCode).toBe(200);
    expect(log.body).toContain('participant.view');
    const reader = new PageClient(app);
    await reader.signIn('reader');
    expect((await reader.get('/admin/audit')).statusCode).toBe(403);
    const support = new PageClient(app);
    await support.signIn('support');
    expect((await support.get('/participants')).statusCode).toBe(403);
  });

  it('lets support enrol and revoke gateways, shows the code once, and lets admins settle data conflicts', async () => {
    const support = new PageClient(app);
    await support.signIn('support');
    const list = await support.get('/support/gateways');
    expect(list.statusCode).toBe(200);
    expect(list.body).toMatch(/Hub authority fingerprint \(SHA-256\)/);
    expect((await support.post('/support/gateways', { siteId: 'nowhere' })).body).toContain(
      'Choose the mobile unit or site the gateway is for',
    );
    const added = await support.post('/support/gateways', { siteId: 'mobile-1' });
    expect(added.statusCode).toBe(200);
    const code = /<code class="sh-code">([A-Z0-9-]+)<\/code>/.exec(added.body)?.[1];
    expect(code).toMatch(/^[A-Z0-9]{4}-[A-Z0-9]{4}-[A-Z0-9]{4}$/);
    expect(added.body).toContain(`--enrol ${code}`);
    const listed = await support.get('/support/gateways');
    expect(listed.body).toContain('Waiting to enrol');
    expect(listed.body).not.toContain(code);
    const id = /action="\/support\/gateways\/([0-9a-f-]+)\/revoke"/.exec(listed.body)![1]!;
    expect((await support.post(`/support/gateways/${id}/revoke`, { reason: '' })).body).toContain(
      'Give a reason for revoking the gateway',
    );
    const revoked = await support.post(`/support/gateways/${id}/revoke`, { reason: 'Set up by mistake' });
    expect(revoked.statusCode).toBe(303);
    expect((await support.get('/support/gateways')).body).toContain('Set up by mistake');
    expect((await support.get('/conflicts')).statusCode).toBe(403);

    // A trailer's correction that crossed one made at the hub, settled by an admin in the trailer's favour.
    const { createGatewayKey } = await import('../../src/tls/certificates.js');
    const { addGateway, enrolGateway, gatewayByCertificate } = await import('../../src/store/gateways.js');
    const { applyGatewayChange } = await import('../../src/store/gateway-changes.js');
    const { code: enrolCode } = await addGateway(database.db, 'mobile-1', office.actor);
    const enrolled = await enrolGateway(database.db, enrolCode, (await createGatewayKey()).requestPem, null);
    const { X509Certificate } = await import('node:crypto');
    const gateway = (await gatewayByCertificate(
      database.db,
      new X509Certificate(enrolled.certificatePem).serialNumber,
    ))!;
    const p = await addParticipant(database.db, { given_name: 'Connie', family_name: 'Flict' });
    const { bookAppointment } = await import('../../src/store/clinics.js');
    const appointmentId = await bookAppointment(
      database.db,
      { participantId: p.id, clinicId: clinics.inaccessibleClinic },
      office.actor,
      TODAY,
    );
    await database.db
      .updateTable('participant')
      .set({ family_name: 'Flicker', version: 2 })
      .where('id', '=', p.id)
      .execute();
    const outcome = await applyGatewayChange(
      database.db,
      gateway,
      {
        id: '5d0c1f5e-0000-4000-8000-000000000001',
        kind: 'demographics',
        appointmentId,
        participantId: p.id,
        madeAt: new Date().toISOString(),
        madeBy: 'Morgan',
        fields: { family_name: { seen: 'Flict', value: 'Flick' } },
      },
      null,
      TODAY,
    );
    expect(outcome.outcome).toBe('conflict');
    const admin = new PageClient(app);
    await admin.signIn('admin');
    const conflicts = await admin.get('/conflicts');
    expect(conflicts.statusCode).toBe(200);
    expect(conflicts.body).toContain('Connie FLICKER');
    expect(conflicts.body).toContain('Flick');
    const conflictId = /action="\/conflicts\/([0-9a-f-]+)"/.exec(conflicts.body)![1]!;
    const stale = await admin.post(`/conflicts/${conflictId}`, {
      resolution: 'applied_trailer',
      version: '7',
      reason: 'She spelt it for us',
    });
    expect(stale.statusCode).toBe(409);
    const settled = await admin.post(`/conflicts/${conflictId}`, {
      resolution: 'applied_trailer',
      version: '1',
      reason: 'She spelt it for us',
    });
    expect(settled.statusCode).toBe(303);
    const after = await database.db
      .selectFrom('participant')
      .select('family_name')
      .where('id', '=', p.id)
      .executeTakeFirstOrThrow();
    expect(after.family_name).toBe('Flick');
    const page = await admin.get('/conflicts');
    expect(page.body).toContain('There are no open data conflicts');
    expect(page.body).toMatch(/Trailer(&#39;|')s record used by Alex Admin/);
  });
});
