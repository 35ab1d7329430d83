import { rmSync } from 'node:fs';
import { request } from 'node:https';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway } from '../../src/gateway/gateway.js';
import { enrol } from '../../src/gateway/identity.js';
import { addGateway, revokeGateway } from '../../src/store/gateways.js';
import { freshDatabase } from '../support/database.js';
import { findscuWorklist, freePort, haveDcmtk } from '../support/dcmtk.js';
import { addParticipant, newClinics, smallOffice, TODAY, type Clinics, type Office } from '../support/fixtures.js';
import { enrolledGateway, gatewayListener, until } from '../support/gateway-hub.js';
import { apiToken, testHub } from '../support/hub-client.js';
import { sendMpps } from '../support/mpps-client.js';

/** The person name findscu printed, as FAMILY^Given. */
const nameOf = (r: Record<string, unknown>) => /[A-Z' -]+\^[A-Za-z' -]+/.exec(JSON.stringify(r.PatientName))?.[0];

type Listener = Awaited<ReturnType<typeof gatewayListener>>;

/** A plain HTTPS GET with no client certificate, trusting the hub's authority. */
const getWithoutCertificate = (url: string, ca: string) =>
  new Promise<number>((resolve, reject) => {
    request(url, { ca }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    })
      .on('error', reject)
      .end();
  });

describe.skipIf(!haveDcmtk)('gateway and hub over mutual TLS', () => {
  let database: Awaited<ReturnType<typeof freshDatabase>>;
  let office: Office;
  let clinics: Clinics;
  let hub: FastifyInstance;
  let listener: Listener;
  let hubUrl: string;
  let token: string;
  const dataDirs: string[] = [];
  const logs: string[] = [];
  const log = (level: string, message: string) => void logs.push(`${level}: ${message}`);

  const api = async (method: 'GET' | 'POST', url: string, payload?: object) => {
    const response = await hub.inject({ method, url, headers: { authorization: `Bearer ${token}` }, payload });
    expect(response.statusCode, response.body).toBeLessThan(300);
    return response.json<Record<string, unknown>>();
  };
  const book = async (participantId: string, clinicId: string) =>
    (await api('POST', '/api/v1/appointments', { participantId, clinicId })).id as string;
  const ask = (port: number) =>
    findscuWorklist(port, ['PatientID', 'PatientName', 'ScheduledProcedureStepSequence[0].Modality=MG'], {
      callingAe: 'MOBILE1',
    });
  const gatewayOn = (identity: Parameters<typeof startGateway>[0]['identity'], dataDir: string, dicomPort: number) =>
    startGateway({
      hubUrl,
      identity,
      dataDir,
      dicomPort,
      aeTitle: 'SHGATEWAY',
      allowedCallingAeTitles: ['MOBILE1'],
      maxRetryMs: 300,
      today: () => TODAY,
      log,
    });

  /** A gateway for mobile-1, enrolled now and started on a free DICOM port. */
  const enrolledAndRunning = async () => {
    const { identity, dataDir, gatewayId } = await enrolledGateway(
      database,
      hubUrl,
      listener.authorityPem,
      'mobile-1',
      office.actor,
    );
    dataDirs.push(dataDir);
    const port = await freePort();
    return { gateway: gatewayOn(identity, dataDir, port), port, identity, gatewayId };
  };

  beforeAll(async () => {
    database = await freshDatabase('pglite');
    office = await smallOffice(database.db);
    clinics = await newClinics(database.db);
    hub = await testHub(database.db);
    token = await apiToken(hub, 'admin');
    listener = await gatewayListener(database);
    hubUrl = `https://127.0.0.1:${listener.port}`;
  });
  afterAll(async () => {
    await listener.close().catch(() => undefined);
    await hub.close();
    await database.drop();
    for (const dir of dataDirs) rmSync(dir, { recursive: true, force: true });
  });

  it('enrols only with the right code and fingerprint, once, and refuses requests without its certificate', async () => {
    const { code } = await addGateway(database.db, 'mobile-1', office.actor);
    const wrongPin = await enrol({
      hubUrl,
      code,
      authorityFingerprint: 'AA'.repeat(32),
      dataDir: '/nonexistent/never-written',
    }).catch((e: Error) => e.message);
    expect(wrongPin).toMatch(/has authority fingerprint .* not the one given/);

    const { fingerprint } = await import('../../src/tls/certificates.js');
    const pin = fingerprint(listener.authorityPem).toLowerCase().replaceAll(':', '');
    const wrongCode = await enrol({
      hubUrl,
      code: 'ABCD-EFGH-JKLM',
      authorityFingerprint: pin,
      dataDir: '/nonexistent',
    }).catch((e: Error) => e.message);
    expect(wrongCode).toMatch(/Enrolment refused: That enrolment code is not valid/);

    const dataDir = (await import('node:fs')).mkdtempSync('/tmp/gateway-enrol-');
    dataDirs.push(dataDir);
    const identity = await enrol({ hubUrl, code: code.toLowerCase(), authorityFingerprint: pin, dataDir });
    expect(identity.unitId).toBe('mobile-1');
    expect(identity.certificatePem).toContain('BEGIN CERTIFICATE');
    const again = await enrol({ hubUrl, code, authorityFingerprint: pin, dataDir: '/nonexistent' }).catch(
      (e: Error) => e.message,
    );
    expect(again).toMatch(/not valid: it may be mistyped, used already or expired/);

    expect(
      await getWithoutCertificate(`${hubUrl}/gateway/v1/worklist?from=${TODAY}&to=${TODAY}`, listener.authorityPem),
    ).toBe(401);
    // A certificate from another authority (a box enrolled elsewhere, or forged) is not let in.
    const { offlineGatewayFolder } = await import('../support/gateway-hub.js');
    const foreign = await offlineGatewayFolder(
      (await import('node:fs')).mkdtempSync('/tmp/gateway-foreign-'),
      'mobile-1',
    );
    const { HubConnection } = await import('../../src/gateway/hub-connection.js');
    const impostor = new HubConnection(hubUrl, { ...foreign, authorityPem: listener.authorityPem });
    const refused = await impostor.get(`/gateway/v1/worklist?from=${TODAY}&to=${TODAY}`).catch((e: Error) => e.message);
    impostor.close();
    expect(refused).toMatch(/HTTP 401: A client certificate from this hub is needed/);
    const audit = await database.db
      .selectFrom('audit_event')
      .select('action')
      .where('entity_type', '=', 'gateway')
      .execute();
    expect(audit.map((a) => a.action)).toEqual(expect.arrayContaining(['gateway.add', 'gateway.enrol']));
  });

  it('serves only its unit, follows hub changes by push within 5 s, answers offline, syncs trailer changes once, and raises conflicts', async () => {
    const vanessa = await addParticipant(database.db, { given_name: 'Vanessa', family_name: 'Van' });
    const lena = await addParticipant(database.db, { given_name: 'Lena', family_name: 'Leaving' });
    const dora = await addParticipant(database.db, { given_name: 'Dora', family_name: 'Absent' });
    const cara = await addParticipant(database.db, { given_name: 'Cara', family_name: 'Contested' });
    const stella = await addParticipant(database.db, { given_name: 'Stella', family_name: 'Static' });
    const vanessaAppointment = await book(vanessa.id, clinics.inaccessibleClinic);
    const lenaAppointment = await book(lena.id, clinics.inaccessibleClinic);
    const doraAppointment = await book(dora.id, clinics.inaccessibleClinic);
    await book(cara.id, clinics.inaccessibleClinic);
    await book(stella.id, clinics.accessibleClinic);

    const { gateway, port, identity } = await enrolledAndRunning();
    try {
      expect(await until(() => gateway.feed.state.online, 10_000)).toBe(true);
      const first = await ask(port);
      expect(first.exitCode).toBe(0);
      expect(first.responses.map((r) => r.PatientID).sort()).toEqual(
        [vanessa.nhs_number, lena.nhs_number, dora.nhs_number, cara.nhs_number].sort(),
      );

      // Live: a cancellation and a demographic correction at the hub reach the machine by push within 5 s.
      await api('POST', `/api/v1/appointments/${lenaAppointment}/status`, {
        version: 1,
        status: 'cancelled',
        reason: 'Participant rang',
      });
      expect(
        await until(async () => (await ask(port)).responses.every((r) => r.PatientID !== lena.nhs_number), 5_000),
      ).toBe(true);
      const corrected = await hub.inject({
        method: 'PATCH',
        url: `/api/v1/participants/${vanessa.id}`,
        headers: { authorization: `Bearer ${token}` },
        payload: {
          version: 1,
          changes: { family_name: 'Vance' },
          source: 'participant',
          sourceDate: TODAY,
          reason: 'Married',
        },
      });
      expect(corrected.statusCode, corrected.body).toBe(200);
      expect(
        await until(async () => (await ask(port)).responses.some((r) => nameOf(r) === 'VANCE^Vanessa'), 5_000),
      ).toBe(true);

      // The hub goes away: the worklist still answers and the trailer's changes queue.
      await listener.close();
      expect(await until(() => !gateway.feed.state.online, 5_000)).toBe(true);
      expect((await ask(port)).responses).toHaveLength(3);
      gateway.desk.markAttendance(vanessaAppointment, 'checked_in', 'Morgan');
      gateway.desk.markAttendance(doraAppointment, 'did_not_attend', 'Morgan');
      const caraAppointment = gateway.desk.entries().find((e) => e.nhsNumber === cara.nhs_number)!.appointmentId;
      gateway.desk.correctDetails(caraAppointment, { family_name: 'Contestant' }, 'Morgan');
      expect(gateway.changes.pending()).toHaveLength(3);
      // What the machine sees follows the trailer at once: Dora gone, Cara's new name.
      const offline = await ask(port);
      expect(offline.responses.map(nameOf).sort()).toEqual(['CONTESTANT^Cara', 'VANCE^Vanessa']);
      // Meanwhile the office corrects Cara's family name differently at the hub.
      await database.db
        .updateTable('participant')
        .set({ family_name: 'Contessa', version: 2 })
        .where('id', '=', cara.id)
        .execute();

      // The link comes back: changes go once, the conflicting one is raised on the hub, not applied over it.
      listener = await gatewayListener(database, listener.port);
      expect(await until(() => gateway.changes.pending().length === 0, 10_000)).toBe(true);
      const outcomes = Object.fromEntries(
        gateway.changes
          .all()
          .map((q) => [q.change.kind + (q.change.kind === 'attendance' ? q.change.status : ''), q.outcome?.outcome]),
      );
      expect(outcomes).toEqual({
        attendancechecked_in: 'applied',
        attendancedid_not_attend: 'applied',
        demographics: 'conflict',
      });
      const statuses = await database.db
        .selectFrom('appointment')
        .select(['id', 'status'])
        .where('id', 'in', [vanessaAppointment, doraAppointment])
        .execute();
      expect(Object.fromEntries(statuses.map((s) => [s.id, s.status]))).toEqual({
        [vanessaAppointment]: 'checked_in',
        [doraAppointment]: 'did_not_attend',
      });
      const conflicts = await database.db.selectFrom('data_conflict').selectAll().execute();
      expect(conflicts).toHaveLength(1);
      expect(conflicts[0]!.trailer).toEqual({ family_name: 'Contestant' });
      expect(conflicts[0]!.hub).toEqual({ family_name: 'Contessa' });
      expect(
        (
          await database.db
            .selectFrom('participant')
            .select('family_name')
            .where('id', '=', cara.id)
            .executeTakeFirstOrThrow()
        ).family_name,
      ).toBe('Contessa');

      // Idempotent: the same changes sent again (a reply lost on the link) get the first outcomes back.
      const resent = gateway.changes.all().map((q) => q.change);
      const { HubConnection } = await import('../../src/gateway/hub-connection.js');
      const connection = new HubConnection(hubUrl, identity);
      const replay = await connection.post<{ results: { outcome: string }[] }>('/gateway/v1/changes', {
        changes: resent,
      });
      connection.close();
      expect(replay.results.map((r) => r.outcome)).toEqual(['applied', 'applied', 'conflict']);
      // A change the hub cannot read is refused on its own; the rest of its batch goes through.
      const again = new HubConnection(hubUrl, identity);
      const mixed = await again.post<{ results: { id: string; outcome: string; message: string }[] }>(
        '/gateway/v1/changes',
        {
          changes: [
            {
              ...resent[2],
              id: '6f1c2d3e-0000-4000-8000-00000000b001',
              kind: 'procedure_step',
              step: 'completed',
              imageCount: 5000,
            },
            resent[0],
          ],
        },
      );
      again.close();
      expect(mixed.results.map((r) => r.outcome)).toEqual(['rejected', 'applied']);
      expect(mixed.results[0]!.message).toMatch(/Not a change the hub understands: imageCount/);
      expect(await database.db.selectFrom('data_conflict').select('id').execute()).toHaveLength(1);
      const events = await database.db
        .selectFrom('appointment_status_event')
        .select('status')
        .where('appointment_id', '=', doraAppointment)
        .execute();
      expect(events.filter((e) => e.status === 'did_not_attend')).toHaveLength(1);
    } finally {
      await gateway.close();
    }
  });

  it('is refused at once when revoked: its push stream closes and it says so', async () => {
    const { gateway, gatewayId } = await enrolledAndRunning();
    try {
      expect(await until(() => gateway.feed.state.online, 10_000)).toBe(true);
      await revokeGateway(database.db, gatewayId, 'Box stolen', office.actor);
      expect(await until(() => gateway.feed.state.revoked, 5_000)).toBe(true);
      expect(gateway.feed.state.online).toBe(false);
      expect(gateway.feed.state.lastError).toMatch(/revoked/);
      expect(logs.some((l) => l.startsWith('error: This gateway has been revoked'))).toBe(true);
    } finally {
      await gateway.close();
    }
  });

  it("moves the hub's appointment along as the machine reports MPPS: in progress, then screened", async () => {
    const mia = await addParticipant(database.db, { given_name: 'Mia', family_name: 'Modality' });
    const appointmentId = await book(mia.id, clinics.inaccessibleClinic);
    const { accession_number: accession } = await database.db
      .selectFrom('appointment')
      .select('accession_number')
      .where('id', '=', appointmentId)
      .executeTakeFirstOrThrow();
    const { gateway, port } = await enrolledAndRunning();
    const status = async () =>
      (
        await database.db
          .selectFrom('appointment')
          .select('status')
          .where('id', '=', appointmentId)
          .executeTakeFirstOrThrow()
      ).status;
    try {
      expect(await until(() => gateway.feed.state.online, 10_000)).toBe(true);
      const step = '2.25.990001';
      const [created] = await sendMpps(
        port,
        [
          {
            op: 'create',
            sopInstanceUid: step,
            dataset: {
              ScheduledStepAttributesSequence: [{ AccessionNumber: accession, StudyInstanceUID: '2.25.1' }],
              PatientID: mia.nhs_number,
              PerformedProcedureStepStatus: 'IN PROGRESS',
              PerformedProcedureStepStartDate: TODAY.replaceAll('-', ''),
              PerformedProcedureStepStartTime: '093000',
              Modality: 'MG',
            },
          },
        ],
        'MOBILE1',
      );
      expect(created?.status).toBe(0);
      expect(await until(async () => (await status()) === 'in_progress', 5_000)).toBe(true);
      const [completed] = await sendMpps(
        port,
        [
          {
            op: 'set',
            sopInstanceUid: step,
            dataset: {
              PerformedProcedureStepStatus: 'COMPLETED',
              PerformedProcedureStepEndDate: TODAY.replaceAll('-', ''),
              PerformedProcedureStepEndTime: '094000',
              PerformedSeriesSequence: [
                {
                  SeriesInstanceUID: '2.25.2',
                  ReferencedImageSequence: [1, 2, 3, 4].map((n) => ({
                    ReferencedSOPClassUID: '1.2.840.10008.5.1.4.1.1.1.2',
                    ReferencedSOPInstanceUID: `2.25.3.${n}`,
                  })),
                },
              ],
            },
          },
        ],
        'MOBILE1',
      );
      expect(completed?.status).toBe(0);
      expect(await until(async () => (await status()) === 'screened', 5_000)).toBe(true);
      const history = await database.db
        .selectFrom('appointment_status_event')
        .select(['status', 'via'])
        .where('appointment_id', '=', appointmentId)
        .orderBy('id')
        .execute();
      expect(history.map((h) => `${h.status}/${h.via}`)).toEqual([
        'scheduled/hub',
        'checked_in/gateway',
        'in_progress/gateway',
        'screened/gateway',
      ]);
      // Screened: off the machine's worklist.
      expect((await ask(port)).responses.some((r) => r.PatientID === mia.nhs_number)).toBe(false);
    } finally {
      await gateway.close();
    }
  });
});
