import { execFile } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WorklistEntry } from '../../src/dicom/worklist-item.js';
import { startGateway } from '../../src/gateway/gateway.js';
import { HubConnection } from '../../src/gateway/hub-connection.js';
import { startGatewayListener } from '../../src/hub/gateway-listener.js';
import { FileArchive, type Pacs } from '../../src/pacs/pacs.js';
import { PROBE_NHS_NUMBER, PROBE_STEP_ORDER } from '../../src/protocol/probe.js';
import { runProbeCommand } from '../../src/cli/probe.js';
import { bookAppointment } from '../../src/store/clinics.js';
import { openDatabase, type Database } from '../../src/store/database.js';
import { migrate } from '../../src/store/migrate.js';
import { isoDateInLondon } from '../../src/pathway/dates.js';
import { packageRoot } from '../../src/paths.js';
import { kc62Report } from '../../src/store/kc62.js';
import { searchParticipants } from '../../src/store/participants.js';
import { createProbe, expireProbes, findProbe, preClinicChecks, type Probe } from '../../src/store/probes.js';
import { readingWorklist } from '../../src/store/reading.js';
import { uptakeCounts } from '../../src/store/uptake.js';
import { unitWorklist } from '../../src/store/worklist.js';
import { freshDatabase } from '../support/database.js';
import { addParticipant, newClinics, smallOffice, TODAY, type Office } from '../support/fixtures.js';
import { enrolledGateway, gatewayListener, until } from '../support/gateway-hub.js';
import { PageClient, testHub } from '../support/hub-client.js';
import { freePort } from '../support/dcmtk.js';

type Listener = Awaited<ReturnType<typeof gatewayListener>>;
type Gateway = ReturnType<typeof startGateway>;

/** A PACS that can be taken down: while down, every store fails as an unreachable PACS does (a plain Error). */
class SwitchablePacs implements Pacs {
  down = false;
  constructor(private readonly archive: FileArchive) {}
  get description() {
    return this.archive.description;
  }
  async store(path: string, instance: Parameters<Pacs['store']>[1]) {
    if (this.down) throw new Error('connect ECONNREFUSED 127.0.0.1:8042 (test PACS is down)');
    return this.archive.store(path, instance);
  }
  studyLink() {
    return this.archive.studyLink();
  }
}

/** Everything a probe must never touch: clinical row counts and the clinical outputs that read them. */
async function clinicalPicture(database: Database, office: Office, readerId: string) {
  const db = database.db;
  const count = async (table: 'participant' | 'episode' | 'appointment' | 'gateway_change' | 'data_conflict') =>
    Number(
      (
        await db
          .selectFrom(table)
          .select((eb) => eb.fn.countAll<string>().as('n'))
          .executeTakeFirstOrThrow()
      ).n,
    );
  const kc62 = await kc62Report(db, 'TST', 2026);
  return {
    participants: await count('participant'),
    episodes: await count('episode'),
    appointments: await count('appointment'),
    gatewayChanges: await count('gateway_change'),
    conflicts: await count('data_conflict'),
    kc62: { episodes: kc62.episodes, counts: JSON.stringify(kc62.counts) },
    uptake: await uptakeCounts(db, { office: 'TST', from: '2025-01-01', to: TODAY }),
    reading: await readingWorklist(db, readerId),
    search: [
      ...(await searchParticipants(db, { by: 'nhsNumber', nhsNumber: PROBE_NHS_NUMBER }, office.actor)).rows,
      ...(
        await searchParticipants(
          db,
          { by: 'nameAndBirthDate', familyName: 'ZZZTEST', dateOfBirth: '1970-01-01' },
          office.actor,
        )
      ).rows,
    ],
  };
}

describe('synthetic test participant probe: hub → gateway worklist → modality emulator → hub → PACS', () => {
  let database: Awaited<ReturnType<typeof freshDatabase>>;
  let office: Office;
  let listener: Listener;
  let pacs: SwitchablePacs;
  let work: string;
  let gateway: Gateway;
  let hubUrl: string;
  let staticConnection: HubConnection;
  let mobileConnection: HubConnection;
  let app: FastifyInstance;
  let mobileDataDir: string;
  const logs: string[] = [];

  /** Waits until the probe is no longer running, and returns it. */
  const settled = async (id: string, ms = 60_000): Promise<Probe> => {
    await until(async () => (await findProbe(database.db, id))?.status !== 'running', ms, 200);
    return (await findProbe(database.db, id))!;
  };
  const worklistOf = (connection: HubConnection) =>
    connection.get<{ entries: WorklistEntry[] }>(`/gateway/v1/worklist?from=${TODAY}&to=${TODAY}`);

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'probe-'));
    database = await freshDatabase('pglite');
    office = await smallOffice(database.db);
    await newClinics(database.db);
    pacs = new SwitchablePacs(new FileArchive(join(work, 'archive')));
    listener = await gatewayListener(database, 0, { dir: join(work, 'hub'), pacs, retryMs: 300 });
    hubUrl = `https://127.0.0.1:${listener.port}`;
    const mobile = await enrolledGateway(database, hubUrl, listener.authorityPem, 'mobile-1', office.actor);
    mobileDataDir = mobile.dataDir;
    // A second unit's gateway, enrolled but not running: its worklist is asked for directly.
    const fixed = await enrolledGateway(database, hubUrl, listener.authorityPem, 'static-1', office.actor);
    staticConnection = new HubConnection(hubUrl, fixed.identity);
    mobileConnection = new HubConnection(hubUrl, mobile.identity);
    gateway = startGateway({
      hubUrl,
      identity: mobile.identity,
      dataDir: mobile.dataDir,
      dicomPort: await freePort(),
      aeTitle: 'SHGATEWAY',
      allowedCallingAeTitles: ['MOBILE1'],
      maxRetryMs: 300,
      resyncMs: 1000,
      probe: { checkEveryMs: 500, confirmTimeoutMs: 60_000, timeOfDay: () => '06:30' },
      today: () => TODAY,
      log: (level, message) => void logs.push(`${new Date().toISOString().slice(11, 23)} ${level}: ${message}`),
    });
    await until(() => gateway.feed.state.online, 10_000);
    app = await testHub(database.db);
  });
  afterAll(async () => {
    await app?.close();
    await gateway?.close();
    staticConnection?.close();
    mobileConnection?.close();
    await listener?.close();
    await database?.drop();
    rmSync(work, { recursive: true, force: true });
  });

  let before: Awaited<ReturnType<typeof clinicalPicture>>;
  const readerId = randomUUID();

  it('sends a probe round the whole pipeline and records every step with its timing', async () => {
    before = await clinicalPicture(database, office, readerId);
    const made = await createProbe(database.db, 'mobile-1', 'manual', TODAY, office.actor);
    expect(made.accessionNumber).toMatch(/^ZZPROBE\d{9}$/);
    const probe = await settled(made.id);
    expect(probe.status, `${JSON.stringify(probe, null, 1)}\n${logs.join('\n')}`).toBe('passed');
    expect(probe.steps.map((s) => s.step).sort()).toEqual([...PROBE_STEP_ORDER].sort());
    for (const step of probe.steps) {
      expect(step.ok, step.step).toBe(true);
      expect(Number.isInteger(step.durationMs) && step.durationMs >= 0, step.step).toBe(true);
    }
    // The pipeline's order holds where one step needs the one before.
    const at = (s: string) => probe.steps.findIndex((x) => x.step === s);
    for (const [earlier, later] of [
      ['created', 'worklist_received'],
      ['worklist_query', 'mpps_in_progress'],
      ['image_stored', 'received_at_hub'],
      ['received_at_hub', 'stored_in_pacs'],
      ['stored_in_pacs', 'pacs_confirmed'],
    ] as const)
      expect(at(earlier), `${earlier} before ${later}`).toBeLessThan(at(later));

    // The image is in the PACS under the probe's identifiers, and recorded against no appointment.
    const image = await database.db
      .selectFrom('transfer_image')
      .selectAll()
      .where('accession_number', '=', made.accessionNumber)
      .executeTakeFirstOrThrow();
    expect(image).toMatchObject({ appointment_id: null, patient_id: PROBE_NHS_NUMBER });
    expect(existsSync(join(work, 'archive', image.study_instance_uid, `${image.sop_instance_uid}.dcm`))).toBe(true);
    // The gateway knows the PACS holds it; the trailer's day list never showed the probe.
    expect(gateway.outbox.stateOf(image.sop_instance_uid)).toBe('in_pacs');
    expect(gateway.desk.entries().some((e) => e.accessionNumber === made.accessionNumber)).toBe(false);
    // A finished probe is off the worklist again.
    expect((await worklistOf(mobileConnection)).entries).toEqual([]);
  });

  it('keeps probe data apart: no clinical rows, not in KC62, uptake, reading, search or another unit’s worklist', async () => {
    const after = await clinicalPicture(database, office, readerId);
    expect(after).toEqual(before);
    expect(after.search).toEqual([]);
    // The clinical worklist function never has probes; only the gateway listener adds them, for their own unit.
    expect(await unitWorklist(database.db, 'mobile-1', TODAY, TODAY)).toEqual([]);

    // A probe for static-1 (whose gateway is not running, so it stays on the worklist): on static-1's worklist only.
    const other = await createProbe(database.db, 'static-1', 'manual', TODAY, office.actor);
    const staticList = (await worklistOf(staticConnection)).entries;
    expect(staticList.map((e) => e.accessionNumber)).toEqual([other.accessionNumber]);
    expect(staticList[0]).toMatchObject({ nhsNumber: PROBE_NHS_NUMBER, familyName: 'ZZZTEST', givenName: 'PROBE' });
    expect((await worklistOf(mobileConnection)).entries).toEqual([]);
    await gateway.feed.pullNow();
    expect(gateway.copy.current()!.entries.some((e) => e.accessionNumber === other.accessionNumber)).toBe(false);
    expect(await clinicalPicture(database, office, readerId)).toEqual(before);

    // Nobody answers for it: it fails at the step it waits for, once its time is up.
    await expireProbes(database.db, new Date(Date.now() + 11 * 60_000));
    const expired = (await findProbe(database.db, other.id))!;
    expect(expired).toMatchObject({ status: 'failed', failedStep: 'worklist_received' });
    expect(expired.message).toMatch(/No answer for this step within 10 minutes/);
    expect((await worklistOf(staticConnection)).entries).toEqual([]);
  });

  it('records a probe as failed at the PACS step when the PACS is down, and the rest of the path as it went', async () => {
    pacs.down = true;
    try {
      const made = await createProbe(database.db, 'mobile-1', 'manual', TODAY, office.actor);
      const probe = await settled(made.id);
      expect(probe.status).toBe('failed');
      expect(probe.failedStep).toBe('stored_in_pacs');
      expect(probe.message).toMatch(/ECONNREFUSED/);
      const steps = Object.fromEntries(probe.steps.map((s) => [s.step, s.ok]));
      expect(steps).toMatchObject({
        worklist_query: true,
        mpps_in_progress: true,
        image_stored: true,
        received_at_hub: true,
        stored_in_pacs: false,
      });
      expect(steps.pacs_confirmed).toBeUndefined();
      pacs.down = false;
      // The image still gets to the PACS once it is back; the probe stays failed (it says what happened then).
      expect(
        await until(
          async () => (await findProbe(database.db, made.id))!.steps.some((s) => s.step === 'pacs_confirmed'),
          30_000,
        ),
      ).toBe(true);
      expect((await findProbe(database.db, made.id))!).toMatchObject({
        status: 'failed',
        failedStep: 'stored_in_pacs',
      });
    } finally {
      pacs.down = false;
    }
  });

  it('runs the pre-clinic check by itself on a clinic day, once, and shows the unit green', async () => {
    // The unit has a clinic today but nobody is booked yet: its gateway's worklist has no clinic today, so no check.
    expect((await preClinicChecks(database.db, TODAY)).find((c) => c.siteId === 'mobile-1')).toMatchObject({
      state: 'red',
      probe: null,
    });
    // The mobile unit's clinic today gets a booking: its gateway's worklist now has a clinic today.
    const clinic = await database.db
      .selectFrom('clinic')
      .select('id')
      .where('site_id', '=', 'mobile-1')
      .where('clinic_date', '=', TODAY)
      .executeTakeFirstOrThrow();
    const woman = await addParticipant(database.db);
    await bookAppointment(database.db, { participantId: woman.id, clinicId: clinic.id }, office.actor, TODAY);
    expect(
      await until(async () => {
        const check = (await preClinicChecks(database.db, TODAY)).find((c) => c.siteId === 'mobile-1');
        return check?.state === 'green';
      }, 60_000),
      logs.join('\n'),
    ).toBe(true);
    const checks = await preClinicChecks(database.db, TODAY);
    expect(checks.find((c) => c.siteId === 'mobile-1')).toMatchObject({
      clinics: 1,
      hasGateway: true,
      state: 'green',
      probe: { status: 'passed' },
    });
    // static-1 has clinics today and its gateway never ran the check: red.
    expect(checks.find((c) => c.siteId === 'static-1')).toMatchObject({ state: 'red', probe: null });
    // The gateway keeps the day it asked, so a restart does not ask again.
    expect(JSON.parse(readFileSync(join(mobileDataDir, 'pre-clinic.json'), 'utf8'))).toMatchObject({
      lastAskedOn: TODAY,
    });
    // Asking again the same day gives the same probe, not another.
    const again = await mobileConnection.post<{ probeId: string; created: boolean }>(
      '/gateway/v1/probes/pre-clinic',
      {},
    );
    expect(again).toEqual({ probeId: checks.find((c) => c.siteId === 'mobile-1')!.probe!.id, created: false });
    const preClinic = await database.db.selectFrom('probe').select('id').where('kind', '=', 'pre_clinic').execute();
    expect(preClinic).toHaveLength(1);
  });

  it('lets support staff send a probe and follow its steps on the Probes page; others may not', async () => {
    const client = new PageClient(app);
    await client.signIn('support');
    const page = await client.get('/support/probes');
    expect(page.statusCode).toBe(200);
    expect(page.body).toContain('data-pre-clinic');
    const sent = await client.post('/support/units/mobile-1/probe', {});
    expect(sent.statusCode).toBe(303);
    const newest = await database.db
      .selectFrom('probe')
      .select(['id', 'requested_by'])
      .orderBy('created_at', 'desc')
      .executeTakeFirstOrThrow();
    expect(newest.requested_by).toBe('support');
    expect((await settled(newest.id)).status).toBe('passed');
    const shown = await client.get('/support/probes');
    const card = shown.body.split(`data-probe="${newest.id}"`)[1]!.split('</section>')[0]!;
    expect(card).toContain('data-status="passed"');
    for (const step of PROBE_STEP_ORDER) expect(card).toContain(`data-step="${step}"`);
    expect(card).toMatch(/\d+(\.\d)? (ms|s)/);
    // The support page shows the unit's pre-clinic check.
    const support = await client.get('/support');
    expect(support.body).toMatch(/Pre-clinic check for 1 clinic today passed/);
    // A unit without a gateway cannot be probed; the page says why.
    const refused = await client.post('/support/units/central-nowhere/probe', {});
    expect(refused.statusCode).toBe(400);
    expect(refused.body).toContain('That unit does not exist');
    const audit = await database.db
      .selectFrom('audit_event')
      .select('action')
      .where('action', '=', 'probe.create')
      .execute();
    expect(audit.length).toBeGreaterThanOrEqual(4);

    const reader = new PageClient(app);
    await reader.signIn('reader');
    expect((await reader.get('/support/probes')).statusCode).toBe(403);
    expect((await reader.post('/support/units/mobile-1/probe', {})).statusCode).toBe(403);
  });

  it('runs from the command line: prints each step with its timing and answers 0', async () => {
    const lines: string[] = [];
    const code = await runProbeCommand(database.db, {
      unit: 'mobile-1',
      today: TODAY,
      waitMs: 60_000,
      everyMs: 200,
      print: (line) => lines.push(line),
    });
    expect(code, lines.join('\n')).toBe(0);
    expect(lines.join('\n')).toMatch(/Modality worklist query \(C-FIND\) found it/);
    expect(lines.filter((l) => /^ {2}ok +\d/.test(l))).toHaveLength(PROBE_STEP_ORDER.length);
    expect(lines.at(-1)).toMatch(/^Round trip confirmed in /);
  });
});

/**
 * The command itself, as support would run it against a running hub on PostgreSQL: the command makes the probe in
 * the hub's database, the hub's listener (here in this process) pushes it to the gateway, and the command prints
 * the steps as they are recorded.
 */
describe.skipIf(!process.env.DATABASE_URL)('screening-hub probe --unit (command line, PostgreSQL)', () => {
  const serverUrl = process.env.DATABASE_URL!;
  const name = `sh_test_${randomBytes(6).toString('hex')}`;
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  let database: Database;
  let listener: Listener;
  let gateway: Gateway;
  let work: string;
  const today = () => isoDateInLondon(new Date());

  const cli = (...args: string[]) =>
    promisify(execFile)('npx', ['tsx', join(packageRoot, 'src/cli/screening-hub.ts'), 'probe', ...args], {
      cwd: packageRoot,
      env: { ...process.env, DATABASE_URL: url.toString() },
      timeout: 120_000,
    }).then(
      (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
      (e: { code?: number; stdout?: string; stderr?: string }) => ({
        code: e.code ?? -1,
        stdout: e.stdout ?? '',
        stderr: e.stderr ?? '',
      }),
    );

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'probe-cli-'));
    const admin = new pg.Client({ connectionString: serverUrl });
    await admin.connect();
    await admin.query(`create database ${name}`);
    await admin.end();
    database = await openDatabase({ kind: 'postgres', url: url.toString() });
    await migrate(database);
    const office = await smallOffice(database.db);
    listener = await startGatewayListener({
      database,
      port: 0,
      host: '127.0.0.1',
      today,
      heartbeatMs: 1000,
      transfers: { dir: join(work, 'hub'), pacs: new FileArchive(join(work, 'archive')), retryMs: 300 },
      log: () => undefined,
    });
    const hubUrl = `https://127.0.0.1:${listener.port}`;
    const mobile = await enrolledGateway(database, hubUrl, listener.authorityPem, 'mobile-1', office.actor);
    gateway = startGateway({
      hubUrl,
      identity: mobile.identity,
      dataDir: mobile.dataDir,
      dicomPort: await freePort(),
      aeTitle: 'SHGATEWAY',
      allowedCallingAeTitles: ['MOBILE1'],
      maxRetryMs: 300,
      resyncMs: 1000,
      today,
      log: () => undefined,
    });
    await until(() => gateway.feed.state.online, 10_000);
  });
  afterAll(async () => {
    await gateway?.close();
    await listener?.close();
    await database?.close();
    const cleanup = new pg.Client({ connectionString: serverUrl });
    await cleanup.connect();
    await cleanup.query(`drop database if exists ${name} with (force)`);
    await cleanup.end();
    rmSync(work, { recursive: true, force: true });
  });

  it('prints each step with its timing and exits 0 when the round trip is confirmed', async () => {
    const { code, stdout, stderr } = await cli('--unit', 'mobile-1', '--wait-seconds', '90');
    expect(code, `${stdout}\n${stderr}`).toBe(0);
    expect(stdout).toMatch(/^Probe ZZPROBE\d{9} \(.+\) sent to mobile-1$/m);
    expect(stdout.split('\n').filter((l) => /^ {2}ok +\d/.test(l))).toHaveLength(PROBE_STEP_ORDER.length);
    expect(stdout).toMatch(/Image stored in the PACS/);
    expect(stdout).toMatch(/^Round trip confirmed in \d/m);
  });

  it('exits non-zero and says why when the probe cannot be sent', async () => {
    const { code, stderr } = await cli('--unit', 'static-1', '--wait-seconds', '5');
    expect(code).toBe(1);
    expect(stderr).toMatch(/Central Breast Unit has no enrolled gateway/);
  });
});
