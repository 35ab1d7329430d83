/**
 * When the gateway asks the hub for its pre-clinic probe (issue 8): on a day its worklist has clinics, once a day,
 * as soon as it knows of the day's clinics after starting up, and otherwise at the set time of day (default 07:00,
 * before the first clinic). Pure: the probe runner supplies the facts and does the asking.
 */
export interface PreClinicFacts {
  /** 'YYYY-MM-DD' and 'HH:MM', the unit's local time. */
  today: string;
  timeOfDay: string;
  /** Clinic dates of the clinical appointments on the gateway's worklist copy (probes not counted). */
  clinicDates: readonly string[];
  /** The day the gateway last got its pre-clinic probe from the hub, if ever. */
  lastAskedOn: string | null;
  /** Set time of day ('HH:MM'). */
  at: string;
  /** True until the gateway has asked once since it started. */
  sinceStartUp: boolean;
}

export function preClinicProbeDue(facts: PreClinicFacts): boolean {
  if (!facts.clinicDates.includes(facts.today)) return false;
  if (facts.lastAskedOn === facts.today) return false;
  return facts.sinceStartUp || facts.timeOfDay >= facts.at;
}

const TIME_OF_DAY = /^([01]\d|2[0-3]):[0-5]\d$/;

/** Checks an 'HH:MM' setting (24-hour clock). */
export function parseTimeOfDay(value: string): string {
  const trimmed = value.trim();
  if (!TIME_OF_DAY.test(trimmed)) throw new Error(`"${value}" is not a time of day like 07:00`);
  return trimmed;
}

const LONDON_TIME = new Intl.DateTimeFormat('en-GB', {
  timeZone: 'Europe/London',
  hour: '2-digit',
  minute: '2-digit',
  hourCycle: 'h23',
});

/** 'HH:MM' in the UK's local time. */
export function timeOfDayInLondon(instant: Date): string {
  return LONDON_TIME.format(instant);
}
