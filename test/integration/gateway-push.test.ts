import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GatewayPush } from '../../src/hub/gateway-push.js';
import { bookAppointment, changeAppointmentStatus } from '../../src/store/clinics.js';
import { correctDemographics } from '../../src/store/participants.js';
import { addItem } from '../../src/store/record-items.js';
import { BACKENDS, freshDatabase } from '../support/database.js';
import { addParticipant, newClinics, smallOffice, TODAY, type Clinics, type Office } from '../support/fixtures.js';
import { until } from '../support/gateway-hub.js';

describe.each(BACKENDS)('push to gateways from database changes (%s)', (backend) => {
  let database: Awaited<ReturnType<typeof freshDatabase>>;
  let office: Office;
  let clinics: Clinics;
  let push: GatewayPush;
  const told: string[] = [];
  const revoked: string[] = [];

  beforeAll(async () => {
    database = await freshDatabase(backend);
    office = await smallOffice(database.db);
    clinics = await newClinics(database.db);
    push = new GatewayPush(database, () => TODAY, 20);
    await push.start();
    for (const unit of ['mobile-1', 'static-1'])
      push.subscribe(unit, `gateway-${unit}`, {
        onWorklistChange: () => told.push(unit),
        onRevoked: () => revoked.push(unit),
      });
  });
  afterAll(async () => {
    await push.stop();
    await database.drop();
  });

  const settle = async (expected: string[]) => {
    await until(() => told.length >= expected.length, 3_000, 20);
    await new Promise((r) => setTimeout(r, 100)); // anything more would arrive by now
    const got = told.splice(0);
    return got.sort();
  };

  it('tells only the unit whose appointment changed, and units where a corrected participant is booked', async () => {
    const onUnit = await addParticipant(database.db);
    const atStatic = await addParticipant(database.db);
    const appointment = await bookAppointment(
      database.db,
      { participantId: onUnit.id, clinicId: clinics.inaccessibleClinic },
      office.actor,
      TODAY,
    );
    expect(await settle(['mobile-1'])).toEqual(['mobile-1']);
    await bookAppointment(
      database.db,
      { participantId: atStatic.id, clinicId: clinics.accessibleClinic },
      office.actor,
      TODAY,
    );
    expect(await settle(['static-1'])).toEqual(['static-1']);

    await correctDemographics(
      database.db,
      {
        participantId: onUnit.id,
        expectedVersion: 1,
        changes: { family_name: 'Renamed' },
        source: 'participant',
        sourceDate: TODAY,
        reason: null,
      },
      office.actor,
    );
    expect(await settle(['mobile-1'])).toEqual(['mobile-1']);
    await addItem(
      database.db,
      atStatic.id,
      {
        kind: 'wheelchair',
        side: null,
        value: null,
        details: '',
        temporaryUntil: null,
        source: 'participant',
        sourceDate: TODAY,
      },
      office.actor,
    );
    expect(await settle(['static-1'])).toEqual(['static-1']);
    await changeAppointmentStatus(
      database.db,
      { appointmentId: appointment, expectedVersion: 1, to: 'cancelled', reason: 'Rang' },
      office.actor,
      TODAY,
    );
    expect(await settle(['mobile-1'])).toEqual(['mobile-1']);

    // Someone booked nowhere: nobody is told.
    const unbooked = await addParticipant(database.db);
    await correctDemographics(
      database.db,
      {
        participantId: unbooked.id,
        expectedVersion: 1,
        changes: { family_name: 'Nobody' },
        source: 'participant',
        sourceDate: TODAY,
        reason: null,
      },
      office.actor,
    );
    expect(await settle([])).toEqual([]);
  });

  it('closes the stream of a gateway revoked by any process, through the database', async () => {
    await database.exec(`select pg_notify('gateway_revoked', 'gateway-mobile-1')`);
    expect(await until(() => revoked.length === 1, 3_000, 20)).toBe(true);
    expect(revoked).toEqual(['mobile-1']);
  });
});
