import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { APPOINTMENT_STATUSES, isFinal } from '../../../src/pathway/appointment-status.js';
import {
  isMove,
  moveTasks,
  planMove,
  type AppointmentFacts,
  type MoveFacts,
  type MoveSeen,
} from '../../../src/pathway/movers.js';
import { isoDateArb } from './arbitraries.js';

const facts = (more: Partial<MoveFacts> = {}): MoveFacts => ({
  fromOffice: 'OLD',
  toOffice: 'NEW',
  effectiveDate: '2026-11-23',
  openEpisode: null,
  appointments: [],
  ...more,
});
const appointment = (more: Partial<AppointmentFacts> = {}): AppointmentFacts => ({
  id: 'a1',
  bsoCode: 'OLD',
  clinicDate: '2026-12-01',
  status: 'scheduled',
  ...more,
});

describe('isMove', () => {
  it('is a move only to a different office, and never to no office (no GP practice to follow)', () => {
    expect(isMove('OLD', 'NEW')).toBe(true);
    expect(isMove('OLD', 'OLD')).toBe(false);
    expect(isMove('OLD', null)).toBe(false);
  });
});

describe('planMove: her open episode', () => {
  it('moves an open episode the old office holds when she has not been screened in it yet', () => {
    const plan = planMove(
      facts({ openEpisode: { id: 'e1', bsoCode: 'OLD', openedOn: '2026-10-01', screenedOn: null } }),
    );
    expect(plan.episode).toEqual({ id: 'e1', outcome: 'moved' });
  });

  it('leaves an episode she has been screened in with the old office to finish (results, assessment)', () => {
    const plan = planMove(
      facts({ openEpisode: { id: 'e1', bsoCode: 'OLD', openedOn: '2026-10-01', screenedOn: '2026-11-02' } }),
    );
    expect(plan.episode).toEqual({ id: 'e1', outcome: 'stays_to_finish' });
  });

  it('touches no episode when there is none open, or a third office holds it', () => {
    expect(planMove(facts()).episode).toBeNull();
    const elsewhere = { id: 'e1', bsoCode: 'OUT', openedOn: '2026-10-01', screenedOn: null };
    expect(planMove(facts({ openEpisode: elsewhere })).episode).toBeNull();
  });

  it('refuses a "move" to the same office', () => {
    expect(() => planMove(facts({ toOffice: 'OLD' }))).toThrow(/two different offices/);
  });
});

describe('planMove: appointments', () => {
  it('keeps the still-booked appointments at the old office on or after the move, earliest first', () => {
    const plan = planMove(
      facts({
        appointments: [
          appointment({ id: 'later', clinicDate: '2027-01-10' }),
          appointment({ id: 'on-the-day', clinicDate: '2026-11-23', status: 'checked_in' }),
          appointment({ id: 'before', clinicDate: '2026-11-22' }),
          appointment({ id: 'cancelled', status: 'cancelled' }),
          appointment({ id: 'screened', status: 'screened' }),
          appointment({ id: 'at-new-office', bsoCode: 'NEW' }),
        ],
      }),
    );
    expect(plan.appointmentsAtOldOffice).toEqual(['on-the-day', 'later']);
  });

  it('property: only live appointments at the old office, on or after the effective date, and each once', () => {
    const appointmentArb = fc.record({
      id: fc.uuid(),
      bsoCode: fc.constantFrom('OLD', 'NEW', 'OUT'),
      clinicDate: isoDateArb(2026, 2027),
      status: fc.constantFrom(...APPOINTMENT_STATUSES),
    });
    fc.assert(
      fc.property(
        fc.uniqueArray(appointmentArb, { selector: (a) => a.id }),
        isoDateArb(2026, 2027),
        (appointments, on) => {
          const kept = planMove(facts({ effectiveDate: on, appointments })).appointmentsAtOldOffice;
          const expected = appointments.filter((a) => a.bsoCode === 'OLD' && !isFinal(a.status) && a.clinicDate >= on);
          expect(new Set(kept)).toEqual(new Set(expected.map((a) => a.id)));
          expect(kept).toHaveLength(expected.length);
          const dates = kept.map((id) => appointments.find((a) => a.id === id)!.clinicDate);
          expect(dates).toEqual([...dates].sort());
        },
      ),
    );
  });
});

describe('moveTasks', () => {
  const seen = (more: Partial<MoveSeen> = {}): MoveSeen => ({
    fromOfficeName: 'Old Office',
    toOfficeName: 'New Office',
    episodeOutcome: null,
    appointmentsStillBooked: 0,
    ...more,
  });

  it('tells both offices about an appointment left at the old office, so one of them asks her', () => {
    const move = seen({ appointmentsStillBooked: 1 });
    expect(moveTasks(move, 'out').join(' ')).toMatch(/still has 1 appointment booked at your clinics\. It stays valid/);
    expect(moveTasks(move, 'in').join(' ')).toMatch(/1 appointment booked with Old Office\. She may keep it/);
    expect(moveTasks(seen({ appointmentsStillBooked: 2 }), 'in').join(' ')).toMatch(/2 appointments/);
  });

  it('says whose episode it is', () => {
    expect(moveTasks(seen({ episodeOutcome: 'moved' }), 'in')[0]).toMatch(/now yours/);
    expect(moveTasks(seen({ episodeOutcome: 'moved' }), 'out')[0]).toMatch(/moved to New Office/);
    expect(moveTasks(seen({ episodeOutcome: 'stays_to_finish' }), 'out')[0]).toMatch(/finish it here/);
    expect(moveTasks(seen({ episodeOutcome: 'stays_to_finish' }), 'in')[0]).toMatch(/Old Office finishes/);
  });

  it('is never empty', () => {
    expect(moveTasks(seen(), 'in')).toEqual(['Nothing open: she joins your call and recall from her next due date.']);
    expect(moveTasks(seen(), 'out')).toEqual(['Nothing open: New Office is responsible for her from now on.']);
  });
});
