import { describe, expect, it } from 'vitest';
import {
  parseTimeOfDay,
  preClinicProbeDue,
  timeOfDayInLondon,
  type PreClinicFacts,
} from '../../../src/gateway/pre-clinic-schedule.js';

const day = (overrides: Partial<PreClinicFacts> = {}): PreClinicFacts => ({
  today: '2026-11-23',
  timeOfDay: '07:05',
  clinicDates: ['2026-11-23', '2026-11-24'],
  lastAskedOn: null,
  at: '07:00',
  sinceStartUp: false,
  ...overrides,
});

describe('pre-clinic probe schedule', () => {
  it('is due on a clinic day from the set time, when not yet asked that day', () => {
    expect(preClinicProbeDue(day())).toBe(true);
    expect(preClinicProbeDue(day({ timeOfDay: '07:00' }))).toBe(true);
    expect(preClinicProbeDue(day({ timeOfDay: '18:30' }))).toBe(true);
  });

  it('waits for the set time, unless the gateway has just started', () => {
    expect(preClinicProbeDue(day({ timeOfDay: '06:59' }))).toBe(false);
    expect(preClinicProbeDue(day({ timeOfDay: '03:10', sinceStartUp: true }))).toBe(true);
    expect(preClinicProbeDue(day({ timeOfDay: '06:00', at: '05:30' }))).toBe(true);
  });

  it('runs once a day: not again once asked today, but again the next clinic day', () => {
    expect(preClinicProbeDue(day({ lastAskedOn: '2026-11-23' }))).toBe(false);
    expect(preClinicProbeDue(day({ lastAskedOn: '2026-11-23', sinceStartUp: true }))).toBe(false);
    expect(preClinicProbeDue(day({ lastAskedOn: '2026-11-22' }))).toBe(true);
    expect(preClinicProbeDue(day({ today: '2026-11-24', lastAskedOn: '2026-11-23' }))).toBe(true);
  });

  it('is never due on a day without clinics on the worklist', () => {
    expect(preClinicProbeDue(day({ clinicDates: ['2026-11-24'] }))).toBe(false);
    expect(preClinicProbeDue(day({ clinicDates: [], sinceStartUp: true }))).toBe(false);
  });

  it('takes a 24-hour time of day and refuses anything else', () => {
    expect(parseTimeOfDay(' 07:00 ')).toBe('07:00');
    expect(parseTimeOfDay('23:59')).toBe('23:59');
    for (const bad of ['7:00', '24:00', '07:60', '0700', 'seven'])
      expect(() => parseTimeOfDay(bad), bad).toThrow(/not a time of day/);
  });

  it('reads the time of day in UK time, summer time included', () => {
    expect(timeOfDayInLondon(new Date('2026-01-15T06:45:00Z'))).toBe('06:45');
    expect(timeOfDayInLondon(new Date('2026-07-15T06:45:00Z'))).toBe('07:45');
  });
});
