import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshDatabase } from '../support/database.js';
import { addItem, addParticipant, newClinics, PASSWORD, smallOffice, type Clinics } from '../support/fixtures.js';
import { apiToken, testHub } from '../support/hub-client.js';

describe('hub JSON and FHIR API', () => {
  let database: Awaited<ReturnType<typeof freshDatabase>>;
  let app: FastifyInstance;
  let clinics: Clinics;
  let admin: string;
  const auth = (token: string) => ({ authorization: `Bearer ${token}` });
  beforeAll(async () => {
    database = await freshDatabase('pglite');
    await smallOffice(database.db);
    clinics = await newClinics(database.db);
    app = await testHub(database.db);
    admin = await apiToken(app, 'admin');
  });
  afterAll(async () => {
    await app.close();
    await database.drop();
  });

  it('needs a bearer token; a web session cookie is not one', async () => {
    const none = await app.inject({ method: 'GET', url: '/api/v1/participants?postcode=LS6%202AB' });
    expect(none.statusCode).toBe(401);
    expect(none.headers['www-authenticate']).toContain('Bearer');
    const wrong = await app.inject({
      method: 'POST',
      url: '/api/v1/tokens',
      payload: { username: 'admin', password: 'nope' },
    });
    expect(wrong.statusCode).toBe(401);
    const support = await apiToken(app, 'support');
    expect(
      (await app.inject({ method: 'GET', url: '/api/v1/participants?postcode=LS6%202AB', headers: auth(support) }))
        .statusCode,
    ).toBe(403);
  });

  it('audits the connecting address: a client cannot forge it with X-Forwarded-For', async () => {
    const response = await app.inject({
      method: 'POST',
      url: '/api/v1/tokens',
      payload: { username: 'reader', password: PASSWORD },
      headers: { 'x-forwarded-for': '203.0.113.66' },
    });
    expect(response.statusCode).toBe(201);
    const entry = await database.db
      .selectFrom('audit_event')
      .select(['ip', 'username'])
      .where('action', '=', 'api_token')
      .orderBy('id', 'desc')
      .executeTakeFirstOrThrow();
    expect(entry).toEqual({ ip: '127.0.0.1', username: 'reader' });
  });

  it('validates search input with a message that says what to send', async () => {
    const bad = await app.inject({
      method: 'GET',
      url: '/api/v1/participants?nhsNumber=9991234568',
      headers: auth(admin),
    });
    expect(bad.statusCode).toBe(400);
    expect(bad.json()).toMatchObject({ error: 'validation' });
    expect(bad.json().message).toMatch(/check digit/);
    const empty = await app.inject({ method: 'GET', url: '/api/v1/participants', headers: auth(admin) });
    expect(empty.statusCode).toBe(400);
    expect(empty.json().message).toMatch(/Search by nhsNumber, by postcode, or by familyName and dateOfBirth/);
  });

  it('reads and corrects a record, with 409 for a stale version and 422 for a broken rule', async () => {
    const p = await addParticipant(database.db, { family_name: 'Apiwoman' });
    const found = await app.inject({
      method: 'GET',
      url: `/api/v1/participants?nhsNumber=${p.nhs_number}`,
      headers: auth(admin),
    });
    expect(found.json().participants.map((r: { id: string }) => r.id)).toEqual([p.id]);
    const patch = (version: number, changes: object) =>
      app.inject({
        method: 'PATCH',
        url: `/api/v1/participants/${p.id}`,
        headers: auth(admin),
        payload: { version, source: 'gp', sourceDate: '2026-11-20', changes },
      });
    const first = await patch(1, { postcode: 'LS3 3CC' });
    expect(first.statusCode).toBe(200);
    expect(first.json()).toEqual({ changed: ['postcode'] });
    const stale = await patch(1, { postcode: 'LS4 4DD' });
    expect(stale.statusCode).toBe(409);
    expect(stale.json().error).toBe('conflict');
    const unknownField = await patch(2, { nhs_number: '9434765919' });
    expect(unknownField.statusCode).toBe(400);
    const item = await app.inject({
      method: 'POST',
      url: `/api/v1/participants/${p.id}/items`,
      headers: auth(admin),
      payload: { kind: 'mastectomy', source: 'epr', sourceDate: '2026-06-01' },
    });
    expect(item.statusCode).toBe(422);
    expect(item.json()).toMatchObject({ error: 'rule', field: 'side' });
    const record = await app.inject({ method: 'GET', url: `/api/v1/participants/${p.id}`, headers: auth(admin) });
    expect(record.json().participant.postcode).toBe('LS3 3CC');
    expect(record.json().participant.provenance.postcode.source).toBe('gp');
  });

  it('books, records attendance and reschedules through the API', async () => {
    const p = await addParticipant(database.db);
    await addItem(database.db, p.id, 'wheelchair');
    const refused = await app.inject({
      method: 'POST',
      url: '/api/v1/appointments',
      headers: auth(admin),
      payload: { participantId: p.id, clinicId: clinics.inaccessibleClinic },
    });
    expect(refused.statusCode).toBe(422);
    expect(refused.json().message).toMatch(/not wheelchair accessible/);
    const booked = await app.inject({
      method: 'POST',
      url: '/api/v1/appointments',
      headers: auth(admin),
      payload: { participantId: p.id, clinicId: clinics.accessibleClinic },
    });
    expect(booked.statusCode).toBe(201);
    const { id } = booked.json<{ id: string }>();
    const moved = await app.inject({
      method: 'POST',
      url: `/api/v1/appointments/${id}/reschedule`,
      headers: auth(admin),
      payload: { version: 1, clinicId: clinics.tomorrowClinic },
    });
    expect(moved.statusCode).toBe(201);
    const clinic = await app.inject({
      method: 'GET',
      url: `/api/v1/clinics/${clinics.tomorrowClinic}`,
      headers: auth(admin),
    });
    const held = clinic
      .json()
      .slots.filter((s: { appointmentId: string | null }) => s.appointmentId === moved.json().id);
    expect(held).toHaveLength(2);
    const list = await app.inject({
      method: 'GET',
      url: '/api/v1/clinics?from=2026-11-23&to=2026-11-24',
      headers: auth(admin),
    });
    expect(list.json().clinics.length).toBeGreaterThanOrEqual(3);
  });

  it('serves FHIR R4 Patient and Appointment shapes', async () => {
    const p = await addParticipant(database.db, {
      given_name: 'Fhir',
      family_name: 'Shape',
      date_of_birth: '1960-02-29',
    });
    const booked = await app.inject({
      method: 'POST',
      url: '/api/v1/appointments',
      headers: auth(admin),
      payload: { participantId: p.id, clinicId: clinics.accessibleClinic, slotIndex: 5 },
    });
    expect(booked.statusCode).toBe(201);
    const patient = await app.inject({ method: 'GET', url: `/fhir/Patient/${p.id}`, headers: auth(admin) });
    expect(patient.headers['content-type']).toContain('application/fhir+json');
    expect(patient.json()).toMatchObject({
      resourceType: 'Patient',
      id: p.id,
      identifier: [{ system: 'https://fhir.nhs.uk/Id/nhs-number', value: p.nhs_number }],
      name: [{ family: 'Shape', given: ['Fhir'] }],
      birthDate: '1960-02-29',
      gender: 'female',
      generalPractitioner: [
        { identifier: { system: 'https://fhir.nhs.uk/Id/ods-organization-code', value: 'Y00001' } },
      ],
    });
    const search = await app.inject({
      method: 'GET',
      url: `/fhir/Patient?identifier=https://fhir.nhs.uk/Id/nhs-number|${p.nhs_number}`,
      headers: auth(admin),
    });
    expect(search.json()).toMatchObject({ resourceType: 'Bundle', type: 'searchset', total: 1 });
    const appointment = await app.inject({
      method: 'GET',
      url: `/fhir/Appointment/${booked.json().id}`,
      headers: auth(admin),
    });
    // Slot 5 starts 50 minutes into the clinic; 23 November is GMT, so the instant is the same clock time in UTC.
    const clinic = await database.db
      .selectFrom('clinic')
      .select('starts_at')
      .where('id', '=', clinics.accessibleClinic)
      .executeTakeFirstOrThrow();
    const [h, m] = clinic.starts_at.split(':').map(Number) as [number, number];
    const expectedStart = new Date(Date.UTC(2026, 10, 23, h, m + 50)).toISOString();
    expect(appointment.json()).toMatchObject({
      resourceType: 'Appointment',
      status: 'booked',
      start: expectedStart,
      minutesDuration: 10,
    });
    expect(appointment.json().participant[0]).toEqual({ actor: { reference: `Patient/${p.id}` }, status: 'accepted' });
    const missing = await app.inject({
      method: 'GET',
      url: '/fhir/Patient/00000000-0000-4000-8000-000000000000',
      headers: auth(admin),
    });
    expect(missing.statusCode).toBe(404);
    expect(missing.json().resourceType).toBe('OperationOutcome');
  });

  it('publishes OpenAPI documentation at /docs', async () => {
    const spec = await app.inject({ method: 'GET', url: '/docs/json' });
    expect(spec.statusCode).toBe(200);
    const paths = Object.keys(spec.json().paths);
    expect(paths).toEqual(
      expect.arrayContaining(['/api/v1/participants', '/api/v1/appointments', '/fhir/Patient/{id}']),
    );
    expect((await app.inject({ method: 'GET', url: '/docs' })).statusCode).toBeLessThan(400);
  });
});
