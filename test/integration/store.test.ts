import { sql } from 'kysely';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { authenticate, endSession, purgeExpiredSessions, sessionUser, startSession } from '../../src/store/accounts.js';
import {
  bookAppointment,
  changeAppointmentStatus,
  loadClinic,
  rescheduleAppointment,
  suitableClinics,
} from '../../src/store/clinics.js';
import { ConflictError, RuleError } from '../../src/store/errors.js';
import { loadParticipantRecord } from '../../src/store/participant-record.js';
import { correctDemographics, searchParticipants } from '../../src/store/participants.js';
import { addItem, correctItem, removeItem } from '../../src/store/record-items.js';
import { unitWorklist } from '../../src/store/worklist.js';
import { BACKENDS, freshDatabase } from '../support/database.js';
import {
  addItem as addRawItem,
  addParticipant,
  newClinics,
  PASSWORD,
  smallOffice,
  TODAY,
  type Clinics,
  type Office,
} from '../support/fixtures.js';

describe.each(BACKENDS)('store on %s', (backend) => {
  let database: Awaited<ReturnType<typeof freshDatabase>>;
  let office: Office & Clinics;
  let base: Office;
  beforeAll(async () => {
    database = await freshDatabase(backend);
    base = await smallOffice(database.db);
  });
  beforeEach(async () => {
    office = { ...base, ...(await newClinics(database.db)) };
  });
  afterAll(async () => database.drop());
  const db = () => database.db;

  describe('accounts and sessions', () => {
    it('accepts the right password only, and ends sessions on sign-out', async () => {
      expect(await authenticate(db(), 'admin', 'wrong password')).toBeUndefined();
      expect(await authenticate(db(), 'nobody', PASSWORD)).toBeUndefined();
      const user = await authenticate(db(), ' Admin ', PASSWORD);
      expect(user?.role).toBe('admin');
      const token = await startSession(db(), user!.id, 'web', '127.0.0.1');
      expect((await sessionUser(db(), token, 'web'))?.username).toBe('admin');
      expect(await sessionUser(db(), token, 'api')).toBeUndefined();
      await endSession(db(), token);
      expect(await sessionUser(db(), token, 'web')).toBeUndefined();
    });

    it('purges sessions that have expired, and only those', async () => {
      const live = await startSession(db(), office.users.reader.id, 'web', null);
      const idle = await startSession(db(), office.users.support.id, 'web', null);
      await db()
        .updateTable('user_session')
        .set({ last_seen_at: new Date(Date.now() - 31 * 60_000) })
        .where('user_id', '=', office.users.support.id)
        .execute();
      await purgeExpiredSessions(db());
      const left = await db()
        .selectFrom('user_session')
        .select('user_id')
        .where('user_id', 'in', [office.users.reader.id, office.users.support.id])
        .execute();
      expect(left.map((r) => r.user_id)).toEqual([office.users.reader.id]);
      expect(await sessionUser(db(), live, 'web')).toBeDefined();
      expect(await sessionUser(db(), idle, 'web')).toBeUndefined();
    });

    it('expires a session left idle for 30 minutes', async () => {
      const token = await startSession(db(), office.users.admin.id, 'web', null);
      await db()
        .updateTable('user_session')
        .set({ last_seen_at: new Date(Date.now() - 31 * 60_000) })
        .where('user_id', '=', office.users.admin.id)
        .execute();
      expect(await sessionUser(db(), token, 'web')).toBeUndefined();
    });

    it('stores no password and no session token in clear', async () => {
      const token = await startSession(db(), office.users.admin.id, 'web', null);
      const users = await db().selectFrom('app_user').select('password_hash').execute();
      expect(users.every((u) => u.password_hash.startsWith('scrypt$') && !u.password_hash.includes(PASSWORD))).toBe(
        true,
      );
      const sessions = await db().selectFrom('user_session').select('token_hash').execute();
      expect(sessions.map((s) => s.token_hash)).not.toContain(token);
    });
  });

  describe('participants', () => {
    it('finds by NHS number, by family name prefix and date of birth, and by postcode in any spacing', async () => {
      const p = await addParticipant(db(), {
        family_name: "O'Brien",
        date_of_birth: '1960-02-29',
        postcode: 'LS9 9ZZ',
      });
      await addParticipant(db(), { family_name: 'Obi', date_of_birth: '1961-01-01', postcode: 'LS99ZZ' });
      const byNhs = await searchParticipants(db(), { by: 'nhsNumber', nhsNumber: p.nhs_number }, office.actor);
      expect(byNhs.rows.map((r) => r.id)).toEqual([p.id]);
      const byName = await searchParticipants(
        db(),
        { by: 'nameAndBirthDate', familyName: "o'b", dateOfBirth: '1960-02-29' },
        office.actor,
      );
      expect(byName.rows.map((r) => r.id)).toEqual([p.id]);
      const byPostcode = await searchParticipants(db(), { by: 'postcode', postcode: 'ls9 9zz' }, office.actor);
      expect(byPostcode.rows.length).toBe(2);
      const wildcard = await searchParticipants(
        db(),
        { by: 'nameAndBirthDate', familyName: '%', dateOfBirth: '1960-02-29' },
        office.actor,
      );
      expect(wildcard.rows).toEqual([]);
    });

    it('keeps every demographic change with its source, and tells the second writer', async () => {
      const p = await addParticipant(db());
      const changed = await correctDemographics(
        db(),
        {
          participantId: p.id,
          expectedVersion: 1,
          changes: { postcode: 'LS7 3AA', town: 'Leeds', given_name: 'Jane' },
          source: 'participant',
          sourceDate: TODAY,
          reason: 'Moved house',
        },
        office.actor,
      );
      expect(changed.sort()).toEqual(['postcode', 'town']);
      // The second writer read version 1 too: told, not overwritten.
      await expect(
        correctDemographics(
          db(),
          {
            participantId: p.id,
            expectedVersion: 1,
            changes: { postcode: 'LS8 1AA' },
            source: 'staff',
            sourceDate: TODAY,
            reason: null,
          },
          office.actor,
        ),
      ).rejects.toThrow(ConflictError);
      const record = await loadParticipantRecord(db(), { id: p.id }, office.actor);
      expect(record.participant.postcode).toBe('LS7 3AA');
      expect(record.participant.version).toBe(2);
      expect(record.participant.provenance.postcode).toMatchObject({ source: 'participant', on: TODAY });
      expect(record.changes.map((c) => [c.field, c.old_value, c.new_value, c.source])).toContainEqual([
        'postcode',
        'LS6 2AB',
        'LS7 3AA',
        'participant',
      ]);
    });

    it('corrects and removes record items without losing the old values', async () => {
      const p = await addParticipant(db());
      const input = {
        kind: 'implants',
        side: 'left' as const,
        value: null,
        details: '',
        temporaryUntil: null,
        source: 'gp' as const,
        sourceDate: '2026-10-01',
      };
      const first = await addItem(db(), p.id, input, office.actor);
      const second = await correctItem(
        db(),
        first,
        { ...input, side: 'bilateral', source: 'participant' },
        office.actor,
      );
      // Correcting the old row again is a conflict: someone already replaced it.
      await expect(correctItem(db(), first, input, office.actor)).rejects.toThrow(ConflictError);
      await expect(removeItem(db(), second, '  ', office.actor)).rejects.toThrow(RuleError);
      await removeItem(db(), second, 'Implants removed in 2026', office.actor);
      const record = await loadParticipantRecord(db(), { id: p.id }, office.actor);
      expect(record.current).toEqual([]);
      expect(record.items.map((i) => [i.side, i.superseded_at !== null, i.removed_reason])).toEqual([
        ['left', true, null],
        ['bilateral', false, 'Implants removed in 2026'],
      ]);
    });
  });

  describe('appointments', () => {
    it('books a special appointment (implants) as two slots and refuses an overlapping booking', async () => {
      const withImplants = await addParticipant(db());
      await addRawItem(db(), withImplants.id, 'implants', 'bilateral');
      const other = await addParticipant(db());
      const id = await bookAppointment(
        db(),
        { clinicId: office.accessibleClinic, participantId: withImplants.id, slotIndex: 0 },
        office.actor,
        TODAY,
      );
      const clinic = await loadClinic(db(), office.accessibleClinic, office.actor);
      expect(clinic.slots.filter((s) => s.appointmentId === id).map((s) => s.index)).toEqual([0, 1]);
      expect(clinic.appointments[0]?.adjustments.map((a) => a.kind)).toEqual(['implants']);
      await expect(
        bookAppointment(
          db(),
          { clinicId: office.accessibleClinic, participantId: other.id, slotIndex: 1 },
          office.actor,
          TODAY,
        ),
      ).rejects.toThrow(/That time is taken/);
      const next = await bookAppointment(
        db(),
        { clinicId: office.accessibleClinic, participantId: other.id },
        office.actor,
        TODAY,
      );
      const after = await loadClinic(db(), office.accessibleClinic, office.actor);
      expect(after.appointments.find((a) => a.id === next)?.slot_index).toBe(2);
    });

    it('never books a wheelchair user at an inaccessible location, and offers only accessible clinics', async () => {
      const p = await addParticipant(db());
      await addRawItem(db(), p.id, 'wheelchair');
      await expect(
        bookAppointment(db(), { clinicId: office.inaccessibleClinic, participantId: p.id }, office.actor, TODAY),
      ).rejects.toThrow(/not wheelchair accessible/);
      const offered = await suitableClinics(db(), p.id, TODAY, '2026-12-31');
      expect(offered.needs).toMatchObject({ slots: 2, accessible: true });
      const ids = offered.clinics.map((c) => c.id);
      expect(ids).toEqual(expect.arrayContaining([office.accessibleClinic, office.tomorrowClinic]));
      expect(ids).not.toContain(office.inaccessibleClinic);
      expect(offered.clinics.every((c) => c.wheelchair_accessible)).toBe(true);
    });

    it('refuses past clinics, deceased and ceased people, and a second live appointment', async () => {
      const p = await addParticipant(db());
      await expect(
        bookAppointment(db(), { clinicId: office.pastClinic, participantId: p.id }, office.actor, TODAY),
      ).rejects.toThrow(/in the past/);
      const dead = await addParticipant(db(), { date_of_death: '2026-01-01' });
      await expect(
        bookAppointment(db(), { clinicId: office.accessibleClinic, participantId: dead.id }, office.actor, TODAY),
      ).rejects.toThrow(/died/);
      const ceased = await addParticipant(db(), { ceased_reason: 'Informed choice', ceased_on: '2025-01-01' });
      await expect(
        bookAppointment(db(), { clinicId: office.accessibleClinic, participantId: ceased.id }, office.actor, TODAY),
      ).rejects.toThrow(/ceased/);
      await bookAppointment(db(), { clinicId: office.accessibleClinic, participantId: p.id }, office.actor, TODAY);
      await expect(
        bookAppointment(db(), { clinicId: office.tomorrowClinic, participantId: p.id }, office.actor, TODAY),
      ).rejects.toThrow(/already has an appointment/);
    });

    it('lets only one of two simultaneous bookings have the last slot', async () => {
      const clinic = await db()
        .insertInto('clinic')
        .values({
          site_id: 'mobile-1',
          location_id: 'central',
          clinic_date: '2026-11-30',
          starts_at: '14:00',
          ends_at: '14:10',
          slot_minutes: 10,
        })
        .returning('id')
        .executeTakeFirstOrThrow();
      const a = await addParticipant(db());
      const b = await addParticipant(db());
      const results = await Promise.allSettled([
        bookAppointment(db(), { clinicId: clinic.id, participantId: a.id }, office.actor, TODAY),
        bookAppointment(db(), { clinicId: clinic.id, participantId: b.id }, office.actor, TODAY),
      ]);
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      expect(results.filter((r) => r.status === 'rejected')).toHaveLength(1);
      const slots = await db().selectFrom('appointment_slot').selectAll().where('clinic_id', '=', clinic.id).execute();
      expect(slots).toHaveLength(1);
    });

    it('keeps the status history, frees the slot on cancel, and refuses a stale version', async () => {
      const p = await addParticipant(db());
      const id = await bookAppointment(
        db(),
        { clinicId: office.accessibleClinic, participantId: p.id },
        office.actor,
        TODAY,
      );
      await changeAppointmentStatus(
        db(),
        { appointmentId: id, expectedVersion: 1, to: 'checked_in' },
        office.actor,
        TODAY,
      );
      await expect(
        changeAppointmentStatus(db(), { appointmentId: id, expectedVersion: 1, to: 'cancelled' }, office.actor, TODAY),
      ).rejects.toThrow(ConflictError);
      await expect(
        changeAppointmentStatus(
          db(),
          { appointmentId: id, expectedVersion: 2, to: 'partially_screened' },
          office.actor,
          TODAY,
        ),
      ).rejects.toThrow(/reason/);
      await changeAppointmentStatus(
        db(),
        { appointmentId: id, expectedVersion: 2, to: 'partially_screened', reason: 'Pain or discomfort' },
        office.actor,
        TODAY,
      );
      const events = await db()
        .selectFrom('appointment_status_event')
        .select('status')
        .where('appointment_id', '=', id)
        .orderBy('id')
        .execute();
      expect(events.map((e) => e.status)).toEqual(['scheduled', 'checked_in', 'partially_screened']);
      const episode = await db()
        .selectFrom('episode')
        .select(['screened_on', 'episode_type'])
        .where('participant_id', '=', p.id)
        .executeTakeFirstOrThrow();
      expect(episode).toEqual({ screened_on: TODAY, episode_type: 'C' });

      const q = await addParticipant(db());
      const booked = await bookAppointment(
        db(),
        { clinicId: office.tomorrowClinic, participantId: q.id },
        office.actor,
        TODAY,
      );
      await expect(
        changeAppointmentStatus(
          db(),
          { appointmentId: booked, expectedVersion: 1, to: 'did_not_attend' },
          office.actor,
          TODAY,
        ),
      ).rejects.toThrow(/on or after the clinic day/);
      await changeAppointmentStatus(
        db(),
        { appointmentId: booked, expectedVersion: 1, to: 'cancelled', reason: 'Participant asked' },
        office.actor,
        TODAY,
      );
      expect(
        await db().selectFrom('appointment_slot').selectAll().where('appointment_id', '=', booked).execute(),
      ).toEqual([]);
    });

    it('reschedules: the old appointment is cancelled as rescheduled, the new one points back to it', async () => {
      const p = await addParticipant(db());
      const first = await bookAppointment(
        db(),
        { clinicId: office.accessibleClinic, participantId: p.id },
        office.actor,
        TODAY,
      );
      const second = await rescheduleAppointment(
        db(),
        { appointmentId: first, expectedVersion: 1, clinicId: office.tomorrowClinic, slotIndex: 3 },
        office.actor,
        TODAY,
      );
      const rows = await db()
        .selectFrom('appointment')
        .select(['id', 'status', 'status_reason', 'rescheduled_from', 'slot_index'])
        .where('participant_id', '=', p.id)
        .orderBy('booked_at')
        .execute();
      expect(rows).toEqual([
        { id: first, status: 'cancelled', status_reason: 'Rescheduled', rescheduled_from: null, slot_index: 0 },
        { id: second, status: 'scheduled', status_reason: null, rescheduled_from: first, slot_index: 3 },
      ]);
    });

    it('rolls back a reschedule whose new slot is taken: the old appointment stays as it was', async () => {
      const p = await addParticipant(db());
      const q = await addParticipant(db());
      const first = await bookAppointment(
        db(),
        { clinicId: office.accessibleClinic, participantId: p.id },
        office.actor,
        TODAY,
      );
      await bookAppointment(
        db(),
        { clinicId: office.tomorrowClinic, participantId: q.id, slotIndex: 0 },
        office.actor,
        TODAY,
      );
      await expect(
        rescheduleAppointment(
          db(),
          { appointmentId: first, expectedVersion: 1, clinicId: office.tomorrowClinic, slotIndex: 0 },
          office.actor,
          TODAY,
        ),
      ).rejects.toThrow(RuleError);
      const old = await db()
        .selectFrom('appointment')
        .select(['status', 'version'])
        .where('id', '=', first)
        .executeTakeFirstOrThrow();
      expect(old).toEqual({ status: 'scheduled', version: 1 });
    });
  });

  describe("a unit's worklist", () => {
    it("holds only that unit's live appointments in the range, with adjustments, at the day's location", async () => {
      const onUnit = await addParticipant(db(), { given_name: 'Wanda', family_name: 'Worklist' });
      await addRawItem(db(), onUnit.id, 'implants', 'left');
      const atStatic = await addParticipant(db());
      const cancelled = await addParticipant(db());
      const a = await bookAppointment(
        db(),
        { clinicId: office.inaccessibleClinic, participantId: onUnit.id },
        office.actor,
        TODAY,
      );
      await bookAppointment(
        db(),
        { clinicId: office.accessibleClinic, participantId: atStatic.id },
        office.actor,
        TODAY,
      );
      const c = await bookAppointment(
        db(),
        { clinicId: office.inaccessibleClinic, participantId: cancelled.id },
        office.actor,
        TODAY,
      );
      await changeAppointmentStatus(
        db(),
        { appointmentId: c, expectedVersion: 1, to: 'cancelled', reason: 'Asked' },
        office.actor,
        TODAY,
      );

      const worklist = await unitWorklist(db(), 'mobile-1', TODAY, TODAY);
      const mine = worklist.filter((e) =>
        [onUnit.nhs_number, atStatic.nhs_number, cancelled.nhs_number].includes(e.nhsNumber),
      );
      expect(mine).toEqual([
        expect.objectContaining({
          appointmentId: a,
          nhsNumber: onUnit.nhs_number,
          familyName: 'Worklist',
          stationAeTitle: 'MOBILE1',
          locationName: 'Supermarket car park',
          adjustments: ['Breast implants'],
        }),
      ]);
      expect((await unitWorklist(db(), 'static-1', TODAY, TODAY)).map((e) => e.nhsNumber)).toContain(
        atStatic.nhs_number,
      );
      expect(await unitWorklist(db(), 'mobile-1', '2026-11-24', '2026-11-30')).not.toEqual(
        expect.arrayContaining([expect.objectContaining({ appointmentId: a })]),
      );
    });
  });

  describe('audit log', () => {
    it('records views and changes, and refuses to be edited or emptied', async () => {
      const p = await addParticipant(db());
      await bookAppointment(db(), { clinicId: office.tomorrowClinic, participantId: p.id }, office.actor, TODAY);
      await loadParticipantRecord(db(), { id: p.id }, office.actor);
      const events = await db()
        .selectFrom('audit_event')
        .select(['action', 'username', 'ip', 'participant_id'])
        .execute();
      expect(events).toContainEqual({
        action: 'participant.view',
        username: 'admin',
        ip: '127.0.0.1',
        participant_id: p.id,
      });
      await expect(sql`update audit_event set username = 'someone else'`.execute(db())).rejects.toThrow(/append-only/);
      await expect(sql`delete from audit_event`.execute(db())).rejects.toThrow(/append-only/);
      await expect(sql`truncate audit_event`.execute(db())).rejects.toThrow(/append-only/);
      await expect(sql`delete from appointment_status_event`.execute(db())).rejects.toThrow(/append-only/);
      await expect(sql`update participant_change set new_value = 'x'`.execute(db())).rejects.toThrow(/append-only/);
    });
  });
});
