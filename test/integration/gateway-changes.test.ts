import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nameBasedUuid } from '../../src/gateway/trailer-changes.js';
import type { GatewayChange } from '../../src/protocol/gateway-changes.js';
import { bookAppointment, changeAppointmentStatus } from '../../src/store/clinics.js';
import { applyGatewayChange, listConflicts, resolveConflict } from '../../src/store/gateway-changes.js';
import type { EnrolledGateway } from '../../src/store/gateways.js';
import { createGatewayKey } from '../../src/tls/certificates.js';
import { addGateway, enrolGateway, gatewayByCertificate } from '../../src/store/gateways.js';
import { BACKENDS, freshDatabase } from '../support/database.js';
import { addParticipant, newClinics, smallOffice, TODAY, type Clinics, type Office } from '../support/fixtures.js';
import { X509Certificate } from 'node:crypto';

describe.each(BACKENDS)('changes sent by a gateway (%s)', (backend) => {
  let database: Awaited<ReturnType<typeof freshDatabase>>;
  let office: Office;
  let clinics: Clinics;
  let gateway: EnrolledGateway;
  let n = 0;

  beforeAll(async () => {
    database = await freshDatabase(backend);
    office = await smallOffice(database.db);
    clinics = await newClinics(database.db);
    const { code } = await addGateway(database.db, 'mobile-1', office.actor);
    const enrolled = await enrolGateway(database.db, code, (await createGatewayKey()).requestPem, '10.0.0.9');
    gateway = (await gatewayByCertificate(database.db, new X509Certificate(enrolled.certificatePem).serialNumber))!;
  });
  afterAll(() => database.drop());

  const booked = async (clinicId = clinics.inaccessibleClinic) => {
    const p = await addParticipant(database.db);
    return {
      participant: p,
      appointmentId: await bookAppointment(database.db, { participantId: p.id, clinicId }, office.actor, TODAY),
    };
  };
  const base = (appointmentId: string) => ({
    id: nameBasedUuid(`${backend} change ${++n}`),
    madeAt: `${TODAY}T09:30:00Z`,
    madeBy: 'Morgan',
    appointmentId,
  });
  const send = (change: GatewayChange) => applyGatewayChange(database.db, gateway, change, '10.0.0.9', TODAY);
  const statusOf = async (id: string) =>
    (await database.db.selectFrom('appointment').select('status').where('id', '=', id).executeTakeFirstOrThrow())
      .status;

  it('applies a check-in once, however often and however concurrently it is sent', async () => {
    const { appointmentId } = await booked();
    const change: GatewayChange = {
      ...base(appointmentId),
      kind: 'attendance',
      seenStatus: 'scheduled',
      status: 'checked_in',
    };
    const outcomes = await Promise.all([send(change), send(change), send(change)]);
    expect(outcomes.map((o) => o.outcome)).toEqual(['applied', 'applied', 'applied']);
    expect((await send(change)).outcome).toBe('applied');
    expect(await statusOf(appointmentId)).toBe('checked_in');
    const events = await database.db
      .selectFrom('appointment_status_event')
      .select('status')
      .where('appointment_id', '=', appointmentId)
      .execute();
    expect(events.map((e) => e.status)).toEqual(['scheduled', 'checked_in']);
    expect(
      await database.db.selectFrom('gateway_change').select('id').where('id', '=', change.id).execute(),
    ).toHaveLength(1);
  });

  it('refuses a change for an appointment at another unit', async () => {
    const { appointmentId } = await booked(clinics.accessibleClinic);
    const outcome = await send({
      ...base(appointmentId),
      kind: 'attendance',
      seenStatus: 'scheduled',
      status: 'checked_in',
    });
    expect(outcome).toMatchObject({ outcome: 'rejected', message: 'That appointment is not booked at this unit' });
    expect(await statusOf(appointmentId)).toBe('scheduled');
  });

  it("raises a conflict when the machine screened someone the office had cancelled, and can settle it the trailer's way", async () => {
    const { appointmentId } = await booked();
    await changeAppointmentStatus(
      database.db,
      { appointmentId, expectedVersion: 1, to: 'cancelled', reason: 'Rang to cancel' },
      office.actor,
      TODAY,
    );
    const outcome = await send({ ...base(appointmentId), kind: 'procedure_step', step: 'completed', imageCount: 4 });
    expect(outcome.outcome).toBe('conflict');
    expect(outcome.message).toMatch(/reported screened .* but the hub has it as cancelled/);
    expect(await statusOf(appointmentId)).toBe('cancelled');
    const [conflict] = (await listConflicts(database.db, 'open')).filter((c) => c.appointment_id === appointmentId);
    expect(conflict).toMatchObject({
      trailer: { status: 'screened' },
      hub: { status: 'cancelled' },
      unit_id: 'mobile-1',
    });
    await resolveConflict(database.db, conflict!.id, conflict!.version, 'applied_trailer', office.actor, TODAY);
    expect(await statusOf(appointmentId)).toBe('screened');
    await expect(
      resolveConflict(database.db, conflict!.id, conflict!.version, 'kept_hub', office.actor, TODAY),
    ).rejects.toThrow(/Someone else resolved this conflict/);
  });

  it('keeps the hub’s check-in when the trailer marked did not attend after the office had checked her in', async () => {
    const { appointmentId } = await booked();
    await changeAppointmentStatus(
      database.db,
      { appointmentId, expectedVersion: 1, to: 'checked_in' },
      office.actor,
      TODAY,
    );
    const outcome = await send({
      ...base(appointmentId),
      kind: 'attendance',
      seenStatus: 'scheduled',
      status: 'did_not_attend',
    });
    expect(outcome.outcome).toBe('conflict');
    const [conflict] = (await listConflicts(database.db, 'open')).filter((c) => c.appointment_id === appointmentId);
    await resolveConflict(database.db, conflict!.id, conflict!.version, 'kept_hub', office.actor, TODAY);
    expect(await statusOf(appointmentId)).toBe('checked_in');
    expect((await listConflicts(database.db, 'resolved')).some((c) => c.id === conflict!.id)).toBe(true);
  });

  it('applies a correction when the hub still has what the trailer saw, and records where it came from', async () => {
    const { appointmentId, participant } = await booked();
    const outcome = await send({
      ...base(appointmentId),
      kind: 'demographics',
      participantId: participant.id,
      fields: {
        given_name: { seen: 'Jane', value: 'Janet' },
        date_of_birth: { seen: '1966-05-14', value: '1966-05-15' },
      },
    });
    expect(outcome).toMatchObject({ outcome: 'applied', message: 'Corrected given name, date of birth' });
    const row = await database.db
      .selectFrom('participant')
      .select(['given_name', 'date_of_birth', 'provenance'])
      .where('id', '=', participant.id)
      .executeTakeFirstOrThrow();
    expect([row.given_name, row.date_of_birth, row.provenance.given_name?.source]).toEqual([
      'Janet',
      '1966-05-15',
      'gateway',
    ]);
    const history = await database.db
      .selectFrom('participant_change')
      .select(['field', 'source', 'reason'])
      .where('participant_id', '=', participant.id)
      .execute();
    expect(history.map((h) => [h.field, h.source, h.reason]).sort()).toEqual([
      ['date_of_birth', 'gateway', 'Corrected on the trailer by Morgan'],
      ['given_name', 'gateway', 'Corrected on the trailer by Morgan'],
    ]);
  });

  it('never lets the machine end an exam without images, or pass over a final status, without a person deciding', async () => {
    const stopped = await booked();
    const noImages = await send({
      ...base(stopped.appointmentId),
      kind: 'procedure_step',
      step: 'discontinued',
      imageCount: 0,
      reason: 'Incorrect worklist entry selected',
    });
    expect(noImages.outcome).toBe('conflict');
    expect(noImages.message).toMatch(/stopped an exam with no images .*Incorrect worklist entry selected/);
    expect(await statusOf(stopped.appointmentId)).toBe('scheduled');

    const dna = await booked();
    await changeAppointmentStatus(
      database.db,
      { appointmentId: dna.appointmentId, expectedVersion: 1, to: 'did_not_attend' },
      office.actor,
      TODAY,
    );
    const screened = await send({
      ...base(dna.appointmentId),
      kind: 'procedure_step',
      step: 'completed',
      imageCount: 4,
    });
    expect(screened.outcome).toBe('conflict');
    expect(await statusOf(dna.appointmentId)).toBe('did_not_attend');
  });

  it('refuses changes outside the clinic days a unit holds, and keeps every refusal for resends', async () => {
    const clinicOn = async (date: string) =>
      (
        await database.db
          .insertInto('clinic')
          .values({
            site_id: 'mobile-1',
            location_id: 'car-park',
            clinic_date: date,
            starts_at: '07:00',
            ends_at: '08:00',
            slot_minutes: 10,
          })
          .returning('id')
          .executeTakeFirstOrThrow()
      ).id;
    // Booked back then, when that clinic was still to come.
    const oldParticipant = await addParticipant(database.db);
    const old = {
      appointmentId: await bookAppointment(
        database.db,
        { participantId: oldParticipant.id, clinicId: await clinicOn('2026-10-01') },
        office.actor,
        '2026-09-30',
      ),
    };
    const tooOld = {
      ...base(old.appointmentId),
      kind: 'attendance' as const,
      seenStatus: 'scheduled' as const,
      status: 'checked_in' as const,
    };
    expect(await send(tooOld)).toMatchObject({
      outcome: 'rejected',
      message: 'That appointment is not on a clinic day this unit can change',
    });
    expect(await statusOf(old.appointmentId)).toBe('scheduled');

    const tomorrow = await booked(await clinicOn('2026-11-24'));
    const early = {
      ...base(tomorrow.appointmentId),
      kind: 'attendance' as const,
      seenStatus: 'scheduled' as const,
      status: 'did_not_attend' as const,
    };
    const first = await send(early);
    expect(first).toMatchObject({
      outcome: 'rejected',
      message: 'Did not attend can only be recorded on or after the clinic day',
    });
    // The next day the same change would pass the rule: a resend still gets the first answer.
    expect(await applyGatewayChange(database.db, gateway, early, null, '2026-11-24')).toEqual(first);
    expect(await statusOf(tomorrow.appointmentId)).toBe('scheduled');
  });
});
