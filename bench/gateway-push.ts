/**
 * Push latency: from a change committed at the hub (a demographic correction of someone booked on the unit) to the
 * gateway's worklist copy holding it, over the real path: database trigger → NOTIFY → hub's gateway listener →
 * server-sent event over mutual TLS → the gateway asks for its worklist → encrypted copy written (fsync).
 * The issue asks for < 5 s; prints p50/p99/max.
 *
 *   npx tsx bench/gateway-push.ts [--changes 50] [--appointments 40]
 */
import { rmSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { startGateway } from '../src/gateway/gateway.js';
import { bookAppointment } from '../src/store/clinics.js';
import { correctDemographics } from '../src/store/participants.js';
import { freshDatabase } from '../test/support/database.js';
import { freePort } from '../test/support/dcmtk.js';
import { addParticipant, newClinics, smallOffice, TODAY } from '../test/support/fixtures.js';
import { enrolledGateway, gatewayListener, until } from '../test/support/gateway-hub.js';

const { values } = parseArgs({
  options: { changes: { type: 'string', default: '50' }, appointments: { type: 'string', default: '40' } },
});
const CHANGES = Number(values.changes);
const APPOINTMENTS = Number(values.appointments);

const database = await freshDatabase(process.env.DATABASE_URL ? 'postgres' : 'pglite');
const office = await smallOffice(database.db);
// Each test clinic on the unit has six 10-minute slots: make as many as the appointments need.
const unitClinics: string[] = [];
for (let i = 0; i < Math.ceil(APPOINTMENTS / 6); i++)
  unitClinics.push((await newClinics(database.db)).inaccessibleClinic);
const people = [];
for (let i = 0; i < APPOINTMENTS; i++) {
  const p = await addParticipant(database.db);
  await bookAppointment(
    database.db,
    { participantId: p.id, clinicId: unitClinics[Math.floor(i / 6)]! },
    office.actor,
    TODAY,
  );
  people.push(p);
}
const listener = await gatewayListener(database);
const hubUrl = `https://127.0.0.1:${listener.port}`;
const { identity, dataDir } = await enrolledGateway(database, hubUrl, listener.authorityPem, 'mobile-1', office.actor);
const gateway = startGateway({
  hubUrl,
  identity,
  dataDir,
  dicomPort: await freePort(),
  aeTitle: 'SHGATEWAY',
  allowedCallingAeTitles: ['MOBILE1'],
  today: () => TODAY,
  log: () => undefined,
});
await until(() => gateway.feed.state.online, 10_000);

const latencies: number[] = [];
const versions = new Map<string, number>();
for (let i = 0; i < CHANGES; i++) {
  const p = people[i % people.length]!;
  const name = `Pushed${i}`;
  const version = versions.get(p.id) ?? 1;
  const started = performance.now();
  await correctDemographics(
    database.db,
    {
      participantId: p.id,
      expectedVersion: version,
      changes: { family_name: name },
      source: 'participant',
      sourceDate: TODAY,
      reason: null,
    },
    office.actor,
  );
  versions.set(p.id, version + 1);
  const arrived = await until(
    () => gateway.copy.current()?.entries.some((e) => e.participantId === p.id && e.familyName === name) ?? false,
    10_000,
    1,
  );
  if (!arrived) throw new Error(`change ${i} did not reach the gateway in 10 s`);
  latencies.push(performance.now() - started);
}
await gateway.close();
await listener.close();
await database.drop();
rmSync(dataDir, { recursive: true, force: true });

latencies.sort((a, b) => a - b);
const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))]!.toFixed(1);
console.log(
  `Push to gateway (${database.target.kind}, ${people.length} appointments on the unit, ${CHANGES} corrections): p50 ${at(0.5)} ms, p99 ${at(0.99)} ms, max ${latencies.at(-1)!.toFixed(1)} ms`,
);
