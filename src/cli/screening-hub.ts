#!/usr/bin/env node
import { hostname } from 'node:os';
import { parseArgs } from 'node:util';
import { join } from 'node:path';
import { isoDateInLondon } from '../pathway/dates.js';
import { ROLES, type Role } from '../pathway/staff-roles.js';
import { packageRoot } from '../paths.js';
import { createUser } from '../store/accounts.js';
import { databaseTargetFromEnv, openDatabase, type Database, type DatabaseTarget } from '../store/database.js';
import { runCohortImport } from './import-cohort.js';
import { migrate } from '../store/migrate.js';
import { loadDemoOffice } from '../demo/synthetic-office.js';
import { startGateway } from '../gateway/gateway.js';
import { enrol, loadIdentity } from '../gateway/identity.js';
import { startGatewayListener } from '../hub/gateway-listener.js';
import { facilitySet, startHl7Listener } from '../hl7/listener.js';
import { buildHub } from '../hub/app.js';
import { progressReporter } from './progress.js';
import { pacsFromUrl } from '../pacs/pacs.js';
import { parseCapSchedule } from '../pathway/bandwidth-cap.js';
import { parseCommitmentPeers } from '../gateway/storage-commitment.js';
import { FAILSAFE_DEFINITIONS } from '../pathway/failsafes.js';
import { runFailsafes } from '../store/failsafes.js';
import { ensureDemoImdLookup, loadImdFiles } from '../store/imd-lookup.js';
import { meshSettingsFromEnv, startDemoMesh } from './mesh-setup.js';
import { runProbeCommand } from './probe.js';
import { parseTimeOfDay } from '../gateway/pre-clinic-schedule.js';

const USAGE = `Screening Hub

Usage:
  screening-hub hub [--port 3000] [--host 127.0.0.1] [--data DIR] [--demo] [--participants 20000] [--seed 2026]
                    [--gateway-port 8443] [--gateway-names hub.example.nhs.uk,…] [--pacs URL]
                    [--transfer-alert-minutes 240]
      Runs the hub. Data lives in an embedded PostgreSQL (PGlite) in DIR (default ./data/hub), or on the
      PostgreSQL server named by DATABASE_URL. --demo loads a synthetic screening office into an empty database
      and creates demo staff accounts. Gateways connect over mutual TLS to --gateway-port (0 turns it off);
      --gateway-names are the names they reach the hub by (default localhost, 127.0.0.1 and this host's name).
      Images from gateways are restored and stored in --pacs: a DICOMweb PACS (http(s)://…/dicom-web, STOW-RS)
      or, by default, the file archive in DIR/archive. The Image transfers page (support staff) raises an alert
      when an image has waited on a gateway longer than --transfer-alert-minutes. /metrics serves Prometheus
      metrics to loopback or to a request bearing METRICS_TOKEN.
      Results go to GP practices as FHIR messages through the MESH mailbox named by MESH_URL, MESH_MAILBOX,
      MESH_PASSWORD and MESH_SHARED_KEY; with --demo and no MESH_URL, through a MESH-style test mailbox in the
      same process, where a simulated system at each demo practice acknowledges them. PACS_VIEWER_URL is the
      readers' link to a study ({studyInstanceUid}, {accessionNumber}; default /dicom-web/studies/{studyInstanceUid}).
      FAILSAFE_THRESHOLDS_FILE replaces config/failsafe-thresholds.json. The failsafe checks run daily at 06:00.
  screening-hub load-imd --postcodes NSPL.csv[.gz] --imd IoD2019.csv [--data DIR]
      Loads the deprivation lookups the uptake report uses, replacing what is there (the demo's synthetic ones
      too): postcode → LSOA from the ONS postcode directory, LSOA → IMD decile from the English Indices of
      Deprivation (docs/imd-lookup.md).
  screening-hub failsafes [--office CODE] [--as-of YYYY-MM-DD] [--data DIR]
      Runs the failsafe checks now (as the hub's daily job does) for one office or all, records the run and prints
      how many are waiting at each step and how many are overdue.
  screening-hub seed [--data DIR] [--participants 20000] [--seed 2026]
      Loads the synthetic screening office into an empty database and exits.
  screening-hub gateway --hub https://HUB:8443 --unit UNIT --allow AE[,AE…] [--enrol CODE --hub-fingerprint FP]
                        [--dicom-port 11112] [--ae-title SHGATEWAY] [--status-port 8080] [--host 127.0.0.1]
                        [--min-free-mb 2048] [--cap 08:00-18:00=4] [--commitment-peer AE@HOST:PORT …] [--pre-clinic-at 07:00] [--data DIR]
      Runs a mobile unit's gateway. The first start needs --enrol and --hub-fingerprint, both from the hub's
      Gateways page; afterwards the gateway talks to the hub over mutual TLS with its own certificate (kept in
      DIR, default ./data/gateway). It keeps the unit's worklist (encrypted copy in DIR) up to date by push,
      answers the mammography machine's Modality Worklist (C-FIND), MPPS (N-CREATE/N-SET) and C-ECHO, also when
      the hub is unreachable, stores its mammography images (C-STORE) in DIR/images, refusing them (Out of
      Resources) when less than --min-free-mb is free, and serves the trailer's page (check-in, did not attend,
      corrections) on --host:--status-port. --allow lists the modalities' calling AE titles. Images are sealed
      (JPEG-LS, AES-256-GCM for the hub's key) and sent to the hub by themselves, urgent exams first, resuming
      after every drop; --cap limits the rate by time of day (Mbit/s; "08:00-18:00=4,18:00-22:00=8").
      Storage Commitment requests are answered once the PACS holds the images: on the modality's association if
      still open, else on one the gateway opens to its --commitment-peer (repeat it or comma-separate:
      MAMMO1@10.0.0.5:104).
      On a clinic day it sends the hub's synthetic test probe through itself before the clinic: at start-up and at
      --pre-clinic-at (UK time, default 07:00); the hub's Probes page shows each unit green or red.
  screening-hub import-cohort FILE.csv|FILE.json|FILE.ndjson [--rejects REJECTS.csv] [--database URL | --pglite DIR]
      Imports a BS-Select style cohort feed: adds, amendments, deaths, GP and address changes, field by field by
      effective date, so importing the same file again changes nothing. The formats are in README.md: CSV (.csv),
      or FHIR R4 Patients (.json or .ndjson: a Bundle of type collection, transaction or batch, or NDJSON with one
      Patient a line, told apart by the content); another name is FHIR if it starts with "{". Shows a progress
      bar, then a summary; rejected rows (line, for a Bundle the entry, NHS number, reason) go to --rejects. The
      database is --database (a PostgreSQL URL), --pglite DIR, or as for seed (DATABASE_URL, else --data DIR).
  screening-hub hl7 --allow FACILITY[,FACILITY…] [--port 2575] [--host 127.0.0.1] [--data DIR]
      Runs the symptomatic link's HL7 v2 listener (MLLP over TCP) for a Trust's EPR interface engine: ORU^R01
      and ADT^A01/A03/A04/A08/A31 with a breast cancer diagnosis (ICD-10 C50, D05) or breast surgery (OPCS-4 B27,
      B28, B30.1) suspend her routine invitations and go on her record; each message is answered with an ACK
      (AA, AE or AR with the reason) and applied once per sending facility and control id. --allow lists the
      sending facilities (MSH-4, e.g. the Trust's ODS code) taken; a message from any other is answered AR and
      logged. The format is in docs/hl7-symptomatic-link.md. The database is as for seed (DATABASE_URL, else
      --data DIR).
  screening-hub probe --unit UNIT [--wait-seconds 600] [--data DIR]
      Sends a synthetic test probe through the unit's real pipeline (its gateway's worklist, the gateway's modality
      emulator: C-FIND, MPPS, C-STORE; the image transfer; the PACS) and prints each step with its timing. Exits 0
      when the round trip is confirmed, 1 when a step failed, 2 when still running after --wait-seconds. Uses the
      hub's database (DATABASE_URL while the hub runs on PostgreSQL), so the running hub pushes the probe.
  screening-hub create-user --username NAME --role ROLE --name "Display Name"
      Creates a staff account; the password is read from SCREENING_HUB_PASSWORD.
      Roles: ${ROLES.join(', ')}.
`;

export const DEMO_PASSWORD = 'screening-demo';
const DEMO_USERS: { username: string; displayName: string; role: Role }[] = [
  { username: 'admin', displayName: 'Alex Admin', role: 'admin' },
  { username: 'mammographer', displayName: 'Morgan Mammographer', role: 'mammographer' },
  { username: 'reader', displayName: 'Riley Reader', role: 'film_reader' },
  { username: 'reader2', displayName: 'Robin Reader', role: 'film_reader' },
  { username: 'reader3', displayName: 'Quinn Reader', role: 'film_reader' },
  { username: 'manager', displayName: 'Pat Manager', role: 'programme_manager' },
  { username: 'support', displayName: 'Sam Support', role: 'support' },
];

async function open(dataDir: string, chosen?: DatabaseTarget): Promise<Database> {
  const target = chosen ?? databaseTargetFromEnv(process.env, dataDir);
  const database = await openDatabase(target);
  const applied = await migrate(database);
  const where =
    target.kind === 'postgres'
      ? `PostgreSQL (${chosen ? '--database' : 'DATABASE_URL'})`
      : `PGlite in ${target.dataDir ?? dataDir}`;
  console.error(`Database: ${where}${applied.length ? `, applied ${applied.join(', ')}` : ''}`);
  return database;
}

async function seedIfEmpty(database: Database, participants: number, seed: number): Promise<void> {
  const existing = await database.db
    .selectFrom('participant')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .executeTakeFirstOrThrow();
  if (existing.n > 0) {
    console.error(`Demo data already loaded (${existing.n} participants): keeping it.`);
    return;
  }
  const started = Date.now();
  // The staff first (a load that stopped part-way left them): the demo's reads are by its film readers.
  const readerIds: string[] = [];
  for (const user of DEMO_USERS) {
    const existing = await database.db
      .selectFrom('app_user')
      .select('id')
      .where('username', '=', user.username)
      .executeTakeFirst();
    const id = existing?.id ?? (await createUser(database.db, { ...user, password: DEMO_PASSWORD })).id;
    if (user.role === 'film_reader') readerIds.push(id);
  }
  const summary = await loadDemoOffice(database.db, {
    seed,
    participants,
    today: isoDateInLondon(new Date()),
    readerIds,
    onProgress: progressReporter(),
  });
  // Deprivation for the reports: the shipped SYNTHETIC lookup of the demo area's postcodes.
  await ensureDemoImdLookup(database.db);
  console.error(
    `Loaded a synthetic screening office in ${((Date.now() - started) / 1000).toFixed(1)} s: ${summary.participants} participants, ${summary.practices} GP practices, ${summary.clinics} clinics, ${summary.appointments} appointments.`,
  );
}

function port(text: string, option: string, zeroAllowed = false): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < (zeroAllowed ? 0 : 1) || n > 65535)
    throw new Error(`${option} must be a port number`);
  return n;
}

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  const { values, positionals } = parseArgs({
    args: rest,
    allowPositionals: command === 'import-cohort',
    options: {
      port: { type: 'string', default: process.env.PORT ?? '3000' },
      host: { type: 'string', default: process.env.HOST ?? '127.0.0.1' },
      data: { type: 'string', default: process.env.SCREENING_HUB_DATA ?? join(packageRoot, 'data', 'hub') },
      demo: { type: 'boolean', default: false },
      participants: { type: 'string', default: '20000' },
      seed: { type: 'string', default: '2026' },
      username: { type: 'string' },
      role: { type: 'string' },
      name: { type: 'string' },
      hub: { type: 'string' },
      unit: { type: 'string' },
      allow: { type: 'string' },
      'dicom-port': { type: 'string', default: '11112' },
      'ae-title': { type: 'string', default: 'SHGATEWAY' },
      'status-port': { type: 'string', default: '8080' },
      'min-free-mb': { type: 'string', default: '2048' },
      enrol: { type: 'string' },
      'hub-fingerprint': { type: 'string' },
      'gateway-port': { type: 'string', default: '8443' },
      'gateway-names': { type: 'string' },
      pacs: { type: 'string' },
      'transfer-alert-minutes': { type: 'string', default: '240' },
      cap: { type: 'string' },
      'commitment-peer': { type: 'string', multiple: true },
      rejects: { type: 'string' },
      database: { type: 'string' },
      pglite: { type: 'string' },
      office: { type: 'string' },
      postcodes: { type: 'string' },
      imd: { type: 'string' },
      'as-of': { type: 'string' },
      'wait-seconds': { type: 'string', default: '600' },
      'pre-clinic-at': { type: 'string', default: '07:00' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (!command || values.help) {
    console.log(USAGE);
    return;
  }
  const participants = Number(values.participants);
  const seed = Number(values.seed);
  if (!Number.isInteger(participants) || participants < 1)
    throw new Error('--participants must be a whole number above 0');
  if (!Number.isInteger(seed)) throw new Error('--seed must be a whole number');

  if (command === 'seed') {
    const database = await open(values.data);
    await seedIfEmpty(database, participants, seed);
    await database.close();
    return;
  }
  if (command === 'import-cohort') {
    const [file, ...extra] = positionals;
    if (!file || extra.length)
      throw new Error('import-cohort needs one file: import-cohort FILE.csv|FILE.json|FILE.ndjson (see --help)');
    if (values.database && values.pglite) throw new Error('Give --database or --pglite, not both');
    await runCohortImport({
      file,
      ...(values.rejects ? { rejectsFile: values.rejects } : {}),
      openDatabase: () =>
        open(
          values.data,
          values.database
            ? { kind: 'postgres', url: values.database }
            : values.pglite
              ? { kind: 'pglite', dataDir: values.pglite }
              : undefined,
        ),
    });
    return;
  }
  if (command === 'hl7') {
    const portGiven = rest.some((a) => a === '--port' || a.startsWith('--port='));
    const hl7Port = port(portGiven ? values.port : (process.env.HL7_PORT ?? '2575'), '--port', true);
    if (!values.allow)
      throw new Error('hl7 needs --allow FACILITY[,FACILITY…]: the sending facilities (MSH-4) the link takes');
    const allowedFacilities = values.allow.split(',').filter((f) => f.trim() !== '');
    facilitySet(allowedFacilities); // Refuses an empty or malformed list before the database is opened.
    const database = await open(values.data);
    const listener = await startHl7Listener({
      database,
      port: hl7Port,
      host: values.host,
      allowedFacilities,
      log: (level, message) => console.error(`${new Date().toISOString()} ${level.toUpperCase()} ${message}`),
    });
    const stop = () => {
      void listener
        .close()
        .then(() => database.close())
        .finally(() => process.exit(0));
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    console.error(
      `HL7 listener (MLLP) on ${values.host}:${listener.port}, taking ${[...facilitySet(allowedFacilities)].join(', ')}`,
    );
    return;
  }
  if (command === 'create-user') {
    const password = process.env.SCREENING_HUB_PASSWORD;
    if (!values.username || !values.name || !values.role || !ROLES.includes(values.role as Role)) {
      throw new Error(`create-user needs --username, --name and --role (one of ${ROLES.join(', ')})`);
    }
    if (!password || password.length < 12)
      throw new Error('Set SCREENING_HUB_PASSWORD to a password of at least 12 characters');
    const database = await open(values.data);
    await createUser(database.db, {
      username: values.username,
      displayName: values.name,
      role: values.role as Role,
      password,
    });
    console.error(`Created ${values.username} (${values.role})`);
    await database.close();
    return;
  }
  if (command === 'gateway') {
    if (!values.hub || !values.unit || !values.allow)
      throw new Error('gateway needs --hub, --unit and --allow (see --help)');
    const dicomPort = port(values['dicom-port'], '--dicom-port');
    const statusPort = port(values['status-port'], '--status-port');
    const dataDir =
      values.data === join(packageRoot, 'data', 'hub') ? join(packageRoot, 'data', 'gateway') : values.data;
    let identity = loadIdentity(dataDir);
    if (!identity) {
      if (!values.enrol || !values['hub-fingerprint'])
        throw new Error(
          'This gateway is not enrolled yet: add --enrol CODE --hub-fingerprint FINGERPRINT from the hub’s Gateways page',
        );
      identity = await enrol({
        hubUrl: values.hub,
        code: values.enrol,
        authorityFingerprint: values['hub-fingerprint'],
        dataDir,
      });
      console.error(`Enrolled with ${values.hub} as gateway ${identity.gatewayId} for ${identity.unitId}`);
    }
    if (identity.unitId !== values.unit)
      throw new Error(
        `This gateway is enrolled for ${identity.unitId}, not ${values.unit}: give --unit ${identity.unitId}, or enrol a new data folder`,
      );
    const gateway = startGateway({
      hubUrl: values.hub,
      identity,
      dataDir,
      dicomPort,
      aeTitle: values['ae-title'],
      allowedCallingAeTitles: values.allow
        .split(',')
        .map((t) => t.trim())
        .filter(Boolean),
      minFreeBytes: Number(values['min-free-mb']) * 1024 * 1024,
      cap: parseCapSchedule(values.cap ?? ''),
      commitmentPeers: parseCommitmentPeers(values['commitment-peer']),
      probe: { preClinicAt: parseTimeOfDay(values['pre-clinic-at']) },
      status: { port: statusPort, host: values.host },
      today: () => isoDateInLondon(new Date()),
      log: (level, message) => console.error(`${new Date().toISOString()} ${level.toUpperCase()} ${message}`),
    });
    const stop = () => {
      void gateway.close().finally(() => process.exit(0));
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    console.error(
      `Gateway for ${identity.unitId}: DICOM ${values['ae-title']} on port ${dicomPort}, trailer page on http://${values.host}:${statusPort}, data in ${dataDir}`,
    );
    return;
  }
  if (command === 'load-imd') {
    if (!values.postcodes || !values.imd)
      throw new Error('load-imd needs --postcodes FILE and --imd FILE (see --help)');
    const database = await open(values.data);
    try {
      const summary = await loadImdFiles(database.db, { postcodeCsv: values.postcodes, imdCsv: values.imd });
      console.log(
        `Loaded ${summary.postcodes} postcodes (${summary.lsoaColumn}) and ${summary.lsoas} LSOAs; skipped ${summary.skippedPostcodes} postcodes and ${summary.skippedLsoas} LSOA rows outside England or without a decile.`,
      );
    } finally {
      await database.close();
    }
    return;
  }
  if (command === 'probe') {
    if (!values.unit) throw new Error('probe needs --unit UNIT (see --help)');
    const waitSeconds = Number(values['wait-seconds']);
    if (!Number.isInteger(waitSeconds) || waitSeconds < 1)
      throw new Error('--wait-seconds must be a whole number above 0');
    const database = await open(values.data);
    try {
      process.exitCode = await runProbeCommand(database.db, {
        unit: values.unit,
        today: isoDateInLondon(new Date()),
        waitMs: waitSeconds * 1000,
        print: (line) => console.log(line),
      });
    } finally {
      await database.close();
    }
    return;
  }
  if (command === 'failsafes') {
    const database = await open(values.data);
    try {
      const asOf = values['as-of'] ?? isoDateInLondon(new Date());
      const offices = values.office
        ? [values.office]
        : (await database.db.selectFrom('screening_office').select('code').orderBy('code').execute()).map(
            (o) => o.code,
          );
      for (const office of offices) {
        const run = await runFailsafes(database.db, office, asOf);
        console.log(`${office} as of ${asOf}:`);
        for (const [id, c] of Object.entries(run.counts)) {
          const title = FAILSAFE_DEFINITIONS[id as keyof typeof FAILSAFE_DEFINITIONS].title;
          console.log(
            `  ${String(c?.count ?? 0).padStart(6)} waiting, ${String(c?.overdue ?? 0).padStart(5)} overdue  ${title}`,
          );
        }
      }
    } finally {
      await database.close();
    }
    return;
  }
  if (command === 'hub') {
    const database = await open(values.data);
    if (values.demo) await seedIfEmpty(database, participants, seed);
    const demoMesh = !process.env.MESH_URL && values.demo ? await startDemoMesh(database.db) : undefined;
    const mesh = demoMesh?.settings ?? meshSettingsFromEnv(process.env);
    const gatewayPort = port(values['gateway-port'], '--gateway-port', true);
    const gatewayNames = (values['gateway-names'] ?? '')
      .split(',')
      .map((n) => n.trim())
      .filter(Boolean);
    const alertMinutes = Number(values['transfer-alert-minutes']);
    if (!Number.isInteger(alertMinutes) || alertMinutes < 1)
      throw new Error('--transfer-alert-minutes must be a whole number of minutes, at least 1');
    const app = await buildHub({
      db: database.db,
      transferWaitLimitMinutes: alertMinutes,
      ...(mesh ? { mesh } : {}),
      ...(gatewayPort
        ? {
            gatewayAddress: `https://${gatewayNames[0] ?? (values.host === '127.0.0.1' ? 'localhost' : hostname())}:${gatewayPort}`,
          }
        : {}),
      secureCookies: process.env.SECURE_COOKIES ? process.env.SECURE_COOKIES === 'true' : !values.demo,
      logger: { level: process.env.LOG_LEVEL ?? 'warn' },
      ...(process.env.COOKIE_SECRET ? { cookieSecret: process.env.COOKIE_SECRET } : {}),
      ...(process.env.TRUST_PROXY ? { trustProxy: process.env.TRUST_PROXY } : {}),
    });
    const shutdown = async () => {
      await gateways?.close();
      await app.close();
      await demoMesh?.close();
      await database.close();
      process.exit(0);
    };
    process.once('SIGINT', () => void shutdown());
    process.once('SIGTERM', () => void shutdown());
    const address = await app.listen({ port: Number(values.port), host: values.host });
    const gateways = gatewayPort
      ? await startGatewayListener({
          database,
          port: gatewayPort,
          host: values.host,
          today: () => isoDateInLondon(new Date()),
          ...(gatewayNames.length ? { hostnames: gatewayNames } : {}),
          transfers: {
            dir: join(values.data, 'transfers'),
            pacs: pacsFromUrl(values.pacs ?? process.env.PACS_URL ?? '', join(values.data, 'archive')),
          },
        })
      : undefined;
    console.error(`Screening Hub is running at ${address.replace('127.0.0.1', 'localhost')}`);
    if (demoMesh)
      console.error(
        `GP results go by MESH to a test mailbox at ${demoMesh.mailbox.url}, where ${demoMesh.practices.length} simulated GP practices acknowledge them`,
      );
    else if (!mesh) console.error('No MESH mailbox (MESH_URL): GP results wait in the queue');
    if (gateways)
      console.error(
        `Gateways connect to https://${values.host}:${gateways.port} (mutual TLS; enrol them on the Gateways page)`,
      );
    if (values.demo) {
      console.error(
        `Sign in as ${DEMO_USERS.map((u) => u.username).join(', ')} with the password "${DEMO_PASSWORD}" (synthetic demo data only).`,
      );
    }
    return;
  }
  throw new Error(`Unknown command "${command}"\n\n${USAGE}`);
}

main(process.argv.slice(2)).catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
