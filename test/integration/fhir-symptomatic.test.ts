import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createUser } from '../../src/store/accounts.js';
import { activeSuspension, suspensionHistory } from '../../src/store/symptomatic.js';
import { BACKENDS, freshDatabase } from '../support/database.js';
import { addParticipant, nextNhsNumber, PASSWORD, smallOffice } from '../support/fixtures.js';
import { apiToken, PageClient, testHub } from '../support/hub-client.js';

const NHS = 'https://fhir.nhs.uk/Id/nhs-number';
const SCT = 'http://snomed.info/sct';

interface Outcome {
  resourceType: string;
  issue: { severity: string; code: string; diagnostics: string; expression?: string[] }[];
}

let ids = 0;
function condition(nhsNumber: string, overrides: Record<string, unknown> = {}) {
  return {
    resourceType: 'Condition',
    id: `epr-cond-${++ids}`,
    meta: { versionId: '1', lastUpdated: '2026-11-03T10:15:00Z' },
    clinicalStatus: {
      coding: [{ system: 'http://terminology.hl7.org/CodeSystem/condition-clinical', code: 'active' }],
    },
    verificationStatus: {
      coding: [{ system: 'http://terminology.hl7.org/CodeSystem/condition-ver-status', code: 'confirmed' }],
    },
    code: { coding: [{ system: SCT, code: '254837009', display: 'Malignant neoplasm of breast' }] },
    subject: { identifier: { system: NHS, value: nhsNumber } },
    onsetDateTime: '2026-11-01',
    ...overrides,
  };
}

describe.each(BACKENDS)('FHIR symptomatic link on %s', (backend) => {
  let database: Awaited<ReturnType<typeof freshDatabase>>;
  let app: FastifyInstance;
  let feed: string;
  let admin: string;
  beforeAll(async () => {
    database = await freshDatabase(backend);
    await smallOffice(database.db);
    await createUser(database.db, {
      username: 'epr-rx1',
      displayName: 'RX1 EPR interface engine',
      role: 'epr_feed',
      password: PASSWORD,
    });
    app = await testHub(database.db);
    feed = await apiToken(app, 'epr-rx1');
    admin = await apiToken(app, 'admin');
  });
  afterAll(async () => {
    await app?.close();
    await database?.drop();
  });
  const db = () => database.db;

  const post = async (url: string, body: unknown, headers: Record<string, string> = {}, token = feed) => {
    const response = await app.inject({
      method: 'POST',
      url,
      payload: typeof body === 'string' ? body : JSON.stringify(body),
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/fhir+json', ...headers },
    });
    return { status: response.statusCode, type: response.headers['content-type'], body: response.json<Outcome>() };
  };
  const count = async (table: 'record_item' | 'invitation_suspension' | 'audit_event' | 'fhir_symptomatic_message') =>
    Number(
      (
        await db()
          .selectFrom(table)
          .select((eb) => eb.fn.countAll<number>().as('n'))
          .executeTakeFirstOrThrow()
      ).n,
    );
  const changes = () => Promise.all([count('record_item'), count('invitation_suspension'), count('audit_event')]);
  const logOf = (key: string) =>
    db()
      .selectFrom('fhir_symptomatic_message')
      .select(['outcome', 'http_status', 'version_id', 'username', 'participant_id', 'reason', 'sha256', 'size_bytes'])
      .where('resource_key', '=', key)
      .orderBy('id')
      .execute();

  it('suspends invitations on a confirmed breast cancer Condition; the record page says why', async () => {
    const person = await addParticipant(db());
    const resource = condition(person.nhs_number);
    const response = await post('/fhir/Condition', resource);
    expect(response.status).toBe(201);
    expect(response.type).toMatch(/^application\/fhir\+json/);
    expect(response.body).toMatchObject({
      resourceType: 'OperationOutcome',
      issue: [{ severity: 'information', code: 'informational' }],
    });
    expect(response.body.issue[0]!.diagnostics).toMatch(/invitations suspended from 2026-11-01/);

    const suspension = await activeSuspension(db(), person.id);
    expect(suspension).toMatchObject({
      since: '2026-11-01',
      source: 'fhir',
      sourceReference: `Condition/${resource.id}/_history/1`,
      reviews: [],
    });
    expect(suspension?.reason).toBe('Trust EPR: breast cancer diagnosed (SNOMED CT 254837009) on 1 November 2026');
    const audit = await db()
      .selectFrom('audit_event')
      .select(['action', 'username'])
      .where('participant_id', '=', person.id)
      .execute();
    expect(audit).toEqual(
      expect.arrayContaining([
        { action: 'invitations.suspend', username: 'fhir epr-rx1' },
        { action: 'record_item.add', username: 'fhir epr-rx1' },
      ]),
    );
    const [logged] = await logOf(`Condition/${resource.id}`);
    expect(logged).toMatchObject({
      outcome: 'applied',
      http_status: 201,
      version_id: '1',
      username: 'epr-rx1',
      participant_id: person.id,
      size_bytes: Buffer.byteLength(JSON.stringify(resource)),
    });
    expect(logged?.sha256).toMatch(/^[0-9a-f]{64}$/);

    const page = new PageClient(app);
    await page.signIn('admin');
    const record = await page.get(`/participants/${person.id}`);
    expect(record.statusCode).toBe(200);
    expect(record.body).toContain('Routine invitations suspended');
    expect(record.body).toContain('breast cancer diagnosed (SNOMED CT 254837009) on 1 November 2026');
    expect(record.body).toContain(`Condition/${resource.id}/_history/1`);
  });

  it('answers a repeat as before and applies nothing; an older version changes nothing', async () => {
    const person = await addParticipant(db());
    const v2 = condition(person.nhs_number, {
      meta: { versionId: '2', lastUpdated: '2026-11-05T09:00:00Z' },
      onsetDateTime: '2026-11-02',
    });
    expect((await post('/fhir/Condition', v2)).status).toBe(201);
    const before = await changes();
    const again = await post('/fhir/Condition', v2);
    expect(again.status).toBe(200);
    expect(again.body.issue[0]).toMatchObject({ code: 'duplicate', severity: 'information' });
    expect(again.body.issue[0]!.diagnostics).toMatch(
      /was accepted on .* \(applied: Applied: .*\); this copy changes nothing/,
    );
    // Version 1 arrives late (out of order by meta.lastUpdated), with another date: nothing applied.
    const v1 = { ...v2, meta: { versionId: '1', lastUpdated: '2026-11-03T09:00:00Z' }, onsetDateTime: '2026-10-20' };
    const late = await post('/fhir/Condition', v1);
    expect(late.status).toBe(200);
    expect(late.body.issue[0]!.diagnostics).toMatch(/is older than version 2 .* nothing applied/);
    expect(await changes()).toEqual(before);
    expect((await logOf(`Condition/${v2.id}`)).map((r) => r.outcome)).toEqual(['applied', 'duplicate', 'superseded']);
  });

  it('applies one of two copies posted at once', async () => {
    const person = await addParticipant(db());
    const resource = condition(person.nhs_number);
    const answers = await Promise.all([post('/fhir/Condition', resource), post('/fhir/Condition', resource)]);
    expect(answers.map((a) => a.status).sort()).toEqual([200, 201]);
    expect(await suspensionHistory(db(), person.id)).toHaveLength(1);
  });

  it('does not suspend on a refuted or unconfirmed Condition', async () => {
    const person = await addParticipant(db());
    const refuted = condition(person.nhs_number, {
      verificationStatus: {
        coding: [{ system: 'http://terminology.hl7.org/CodeSystem/condition-ver-status', code: 'refuted' }],
      },
    });
    const provisional = condition(person.nhs_number, {
      verificationStatus: {
        coding: [{ system: 'http://terminology.hl7.org/CodeSystem/condition-ver-status', code: 'provisional' }],
      },
    });
    const before = await changes();
    const first = await post('/fhir/Condition', refuted);
    expect(first.status).toBe(200);
    expect(first.body.issue[0]!.diagnostics).toMatch(/refuted: it suspended nothing in force/);
    const second = await post('/fhir/Condition', provisional);
    expect(second.body.issue[0]!.diagnostics).toMatch(/provisional, not confirmed: nothing applied/);
    expect(await activeSuspension(db(), person.id)).toBeUndefined();
    expect(await changes()).toEqual(before);
  });

  it('reports an entered-in-error Condition that suspended her for staff, without lifting the suspension', async () => {
    const person = await addParticipant(db());
    const resource = condition(person.nhs_number);
    await post('/fhir/Condition', resource);
    const withdrawn = {
      ...resource,
      meta: { versionId: '2', lastUpdated: '2026-11-04T08:00:00Z' },
      verificationStatus: {
        coding: [{ system: 'http://terminology.hl7.org/CodeSystem/condition-ver-status', code: 'entered-in-error' }],
      },
    };
    delete (withdrawn as Partial<typeof withdrawn>).clinicalStatus;
    const response = await post('/fhir/Condition', withdrawn);
    expect(response.status).toBe(200);
    expect(response.body.issue[0]).toMatchObject({ severity: 'warning', code: 'business-rule' });
    expect(response.body.issue[0]!.diagnostics).toMatch(
      /now entered-in-error; .*The suspension stays until staff lift it/,
    );
    const suspension = await activeSuspension(db(), person.id);
    expect(suspension).toBeDefined();
    expect(suspension?.reviews).toEqual([
      { at: expect.any(Date) as Date, text: expect.stringMatching(/entered-in-error/) as string },
    ]);
    const audit = await db()
      .selectFrom('audit_event')
      .select(['action', 'username'])
      .where('participant_id', '=', person.id)
      .where('action', '=', 'invitations.suspension_review')
      .execute();
    expect(audit).toEqual([{ action: 'invitations.suspension_review', username: 'fhir epr-rx1' }]);
    // Her record tells staff to check with the Trust.
    const staff = new PageClient(app);
    await staff.signIn('admin');
    const record = (await staff.get(`/participants/${person.id}`)).body;
    expect(record).toMatch(/<strong>Check with the Trust:<\/strong> [^<]*entered-in-error/);

    // A second Condition came while she was already suspended: withdrawing it reports nothing (it started nothing).
    const second = condition(person.nhs_number, { onsetDateTime: '2026-11-02' });
    expect((await post('/fhir/Condition', second)).body.issue[0]!.diagnostics).toMatch(/already suspended/);
    const secondWithdrawn = await post('/fhir/Condition', {
      ...second,
      meta: { versionId: '2', lastUpdated: '2026-11-04T09:00:00Z' },
      verificationStatus: withdrawn.verificationStatus,
    });
    expect(secondWithdrawn.body.issue[0]).toMatchObject({ severity: 'information' });
    expect(secondWithdrawn.body.issue[0]!.diagnostics).toMatch(
      /suspended nothing in force, so there is nothing to undo/,
    );
    expect((await activeSuspension(db(), person.id))?.reviews).toHaveLength(1);
  });

  it('answers 400 with an OperationOutcome naming the field for malformed resources, applying nothing', async () => {
    const person = await addParticipant(db());
    const before = await changes();
    const logsBefore = await count('fhir_symptomatic_message');
    const badNhs = condition(person.nhs_number, { subject: { identifier: { system: NHS, value: '9990000010' } } });
    const noSubject = condition(person.nhs_number, { subject: undefined });
    const badDate = condition(person.nhs_number, { onsetDateTime: '1st November' });
    const wrongType = condition(person.nhs_number, { resourceType: 'Observation' });
    const badStatus = condition(person.nhs_number, {
      clinicalStatus: {
        coding: [{ system: 'http://terminology.hl7.org/CodeSystem/condition-clinical', code: 'cured' }],
      },
    });
    const answers = await Promise.all([
      post('/fhir/Condition', badNhs),
      post('/fhir/Condition', noSubject),
      post('/fhir/Condition', badDate),
      post('/fhir/Condition', wrongType),
      post('/fhir/Condition', badStatus),
      post('/fhir/Condition', '{"resourceType": "Condition",'),
    ]);
    expect(answers.map((a) => a.status)).toEqual([400, 400, 400, 400, 400, 400]);
    expect(answers.map((a) => a.body.issue[0]!.expression)).toEqual([
      ['Condition.subject.identifier.value'],
      ['Condition.subject'],
      ['Condition.onsetDateTime'],
      ['resourceType'],
      ['Condition.clinicalStatus.coding'],
      ['$'],
    ]);
    expect(answers[0].body.issue[0]!.diagnostics).toBe(
      'Condition.subject.identifier.value "9990000010" is not a valid NHS number (10 digits, check digit)',
    );
    expect(answers[5].body.issue[0]!.diagnostics).toMatch(/^The body is not JSON/);
    expect(await changes()).toEqual(before);
    expect(await count('fhir_symptomatic_message')).toBe(logsBefore + 6);
    expect(await activeSuspension(db(), person.id)).toBeUndefined();
  });

  it('answers 422 for an NHS number the hub does not know, and for a Condition without a date', async () => {
    const before = await changes();
    const stranger = nextNhsNumber();
    const unknown = await post('/fhir/Condition', condition(stranger));
    expect(unknown.status).toBe(422);
    expect(unknown.body.issue[0]).toMatchObject({
      severity: 'error',
      code: 'not-found',
      expression: ['Condition.subject.identifier'],
    });
    expect(unknown.body.issue[0]!.diagnostics).toMatch(
      new RegExp(`NHS number ${stranger} is not known to the hub: the hub cannot match her`),
    );
    const person = await addParticipant(db());
    const undated = await post(
      '/fhir/Condition',
      condition(person.nhs_number, { onsetDateTime: undefined, recordedDate: undefined }),
    );
    expect(undated.status).toBe(422);
    expect(undated.body.issue[0]!.diagnostics).toMatch(/no date/);
    expect(await changes()).toEqual(before);
  });

  it('refuses a token without the permission (403) and no token (401)', async () => {
    const person = await addParticipant(db());
    const forbidden = await post('/fhir/Condition', condition(person.nhs_number), {}, admin);
    expect(forbidden.status).toBe(403);
    expect(forbidden.body).toMatchObject({ resourceType: 'OperationOutcome', issue: [{ code: 'forbidden' }] });
    const anonymous = await app.inject({
      method: 'POST',
      url: '/fhir/Condition',
      payload: JSON.stringify(condition(person.nhs_number)),
      headers: { 'content-type': 'application/fhir+json' },
    });
    expect(anonymous.statusCode).toBe(401);
    // And the feed account cannot read records back.
    const read = await app.inject({
      method: 'GET',
      url: `/fhir/Patient/${person.id}`,
      headers: { authorization: `Bearer ${feed}` },
    });
    expect(read.statusCode).toBe(403);
    expect(await activeSuspension(db(), person.id)).toBeUndefined();
  });

  it('takes a transaction Bundle (Procedure and Encounter) whole, at POST /fhir', async () => {
    const person = await addParticipant(db());
    const bundle = {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        {
          fullUrl: 'urn:uuid:6a1c1e8e-3f0e-4d55-9c1e-2f3b0d4f9a01',
          resource: {
            resourceType: 'Patient',
            identifier: [{ system: NHS, value: person.nhs_number }],
          },
          request: { method: 'PUT', url: `Patient?identifier=${NHS}|${person.nhs_number}` },
        },
        {
          fullUrl: 'urn:uuid:6a1c1e8e-3f0e-4d55-9c1e-2f3b0d4f9a02',
          resource: {
            resourceType: 'Procedure',
            id: `epr-proc-${++ids}`,
            meta: { versionId: '1' },
            status: 'completed',
            code: { coding: [{ system: SCT, code: '741009001', display: 'Simple mastectomy of left breast' }] },
            subject: { reference: 'urn:uuid:6a1c1e8e-3f0e-4d55-9c1e-2f3b0d4f9a01' },
            performedDateTime: '2026-11-09T11:30:00+00:00',
          },
          request: { method: 'POST', url: 'Procedure' },
        },
        {
          fullUrl: 'urn:uuid:6a1c1e8e-3f0e-4d55-9c1e-2f3b0d4f9a03',
          resource: {
            resourceType: 'Encounter',
            status: 'in-progress',
            class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'AMB' },
            type: [{ coding: [{ system: SCT, code: '367336001', display: 'Chemotherapy' }] }],
            subject: { identifier: { system: NHS, value: person.nhs_number } },
            period: { start: '2026-11-16T09:00:00Z' },
          },
          request: { method: 'POST', url: 'Encounter' },
        },
      ],
    };
    const response = await post('/fhir', bundle);
    expect(response.status).toBe(201);
    expect(response.body.issue.map((i) => i.expression)).toEqual([['Bundle.entry[1]'], ['Bundle.entry[2]']]);
    expect(response.body.issue[1]!.diagnostics).toMatch(/invitations already suspended/);
    const suspension = await activeSuspension(db(), person.id);
    expect(suspension?.reason).toBe('Trust EPR: left mastectomy (SNOMED CT 741009001) on 9 November 2026');
    const items = await db()
      .selectFrom('record_item')
      .select(['kind', 'side', 'value'])
      .where('participant_id', '=', person.id)
      .orderBy('kind')
      .execute();
    expect(items).toEqual([
      { kind: 'mastectomy', side: 'left', value: '741009001' },
      { kind: 'symptomatic_treatment', side: null, value: null },
    ]);
    // The same Bundle again: every entry a duplicate.
    const again = await post('/fhir/', bundle);
    expect(again.status).toBe(200);
    expect(again.body.issue.every((i) => i.code === 'duplicate')).toBe(true);
  });

  it('applies nothing of a Bundle one of whose entries cannot be matched (422) or is malformed (400)', async () => {
    const person = await addParticipant(db());
    const good = condition(person.nhs_number);
    const before = await changes();
    const unknown = await post('/fhir', {
      resourceType: 'Bundle',
      type: 'collection',
      entry: [{ resource: good }, { resource: condition(nextNhsNumber()) }],
    });
    expect(unknown.status).toBe(422);
    expect(unknown.body.issue[0]!.expression).toEqual(['Bundle.entry[1]']);
    const malformed = await post('/fhir', {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [{ resource: good }, { resource: { ...condition(person.nhs_number), onsetDateTime: '2026-13-01' } }],
    });
    expect(malformed.status).toBe(400);
    expect(malformed.body.issue[0]!.expression).toEqual(['Bundle.entry[1].resource.onsetDateTime']);
    expect(await changes()).toEqual(before);
    expect(await activeSuspension(db(), person.id)).toBeUndefined();
    expect((await logOf(`Condition/${good.id}`)).map((r) => [r.outcome, r.http_status])).toEqual([
      ['unprocessable', 422],
    ]);
  });

  it('answers other media types 415 and keeps an Idempotency-Key for a resource without an id', async () => {
    const person = await addParticipant(db());
    const text = await app.inject({
      method: 'POST',
      url: '/fhir/Condition',
      payload: 'hello',
      headers: { authorization: `Bearer ${feed}`, 'content-type': 'text/plain' },
    });
    expect(text.statusCode).toBe(415);
    expect(text.json<Outcome>().resourceType).toBe('OperationOutcome');
    const huge = await post(
      '/fhir/Condition',
      condition(person.nhs_number, { note: [{ text: 'x'.repeat(1100 * 1024) }] }),
    );
    expect(huge.status).toBe(413);
    expect(huge.body.issue[0]).toMatchObject({ code: 'too-costly' });
    expect(
      await db()
        .selectFrom('fhir_symptomatic_message')
        .select(['http_status', 'outcome'])
        .where('http_status', 'in', [413, 415])
        .orderBy('id')
        .execute(),
    ).toEqual([
      { http_status: 415, outcome: 'rejected' },
      { http_status: 413, outcome: 'rejected' },
    ]);
    const anonymous = condition(person.nhs_number, { id: undefined, meta: undefined });
    const missing = await post('/fhir/Condition', anonymous);
    expect(missing.status).toBe(400);
    expect(missing.body.issue[0]!.expression).toEqual(['Condition.id']);
    const keyed = await post('/fhir/Condition', anonymous, { 'idempotency-key': 'rx1-7731' });
    expect(keyed.status).toBe(201);
    const repeat = await post('/fhir/Condition', anonymous, { 'idempotency-key': 'rx1-7731' });
    expect(repeat.status).toBe(200);
    expect(await suspensionHistory(db(), person.id)).toHaveLength(1);
  });

  it('lists the endpoints in the OpenAPI document', async () => {
    const spec = await app.inject({ method: 'GET', url: '/docs/json' });
    const document = spec.json<{
      paths: Record<string, { post?: { requestBody?: { content: Record<string, unknown> }; tags?: string[] } }>;
    }>();
    const paths = Object.keys(document.paths);
    expect(document.paths['/fhir/Condition']?.post?.tags).toEqual(['fhir']);
    expect(Object.keys(document.paths['/fhir/Condition']?.post?.requestBody?.content ?? {})).toEqual([
      'application/fhir+json',
    ]);
    expect(paths).toEqual(expect.arrayContaining(['/fhir/Condition', '/fhir/Procedure', '/fhir/Encounter', '/fhir/']));
  });

  it('keeps the FHIR message log append-only', async () => {
    await expect(db().deleteFrom('fhir_symptomatic_message').execute()).rejects.toThrow(/append-only/);
  });
});
