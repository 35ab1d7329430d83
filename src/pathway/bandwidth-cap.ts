/**
 * A gateway's bandwidth cap: the most it may send to the hub at each time of day, so a unit on a shared or
 * metered link leaves room in the day and sends at full speed overnight. Written as "HH:MM-HH:MM=MBIT" periods,
 * comma-separated (e.g. "08:00-18:00=4"); a period may cross midnight ("22:00-06:00=20"); outside every period
 * there is no cap.
 */
export interface CapPeriod {
  /** Minutes after midnight, local time. */
  from: number;
  to: number;
  bitsPerSecond: number;
}

const PERIOD = /^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)=(\d+(?:\.\d+)?)$/;

export class CapScheduleError extends Error {}

export function parseCapSchedule(text: string): CapPeriod[] {
  if (!text.trim()) return [];
  return text.split(',').map((part) => {
    const m = PERIOD.exec(part.trim());
    if (!m)
      throw new CapScheduleError(
        `"${part.trim()}" is not a cap period: write HH:MM-HH:MM=MBIT, for example 08:00-18:00=4 (4 Mbit/s in the day)`,
      );
    const from = Number(m[1]) * 60 + Number(m[2]);
    const to = Number(m[3]) * 60 + Number(m[4]);
    const mbit = Number(m[5]);
    if (from === to) throw new CapScheduleError(`"${part.trim()}" starts and ends at the same time`);
    if (to > 24 * 60) throw new CapScheduleError(`"${part.trim()}" ends after 24:00`);
    if (mbit <= 0) throw new CapScheduleError(`"${part.trim()}" would stop sending altogether: give a rate above 0`);
    return { from, to, bitsPerSecond: mbit * 1_000_000 };
  });
}

/** The cap in force at a local time of day (minutes after midnight), or null for none; the lowest if periods overlap. */
export function capAt(schedule: readonly CapPeriod[], minuteOfDay: number): number | null {
  let cap: number | null = null;
  for (const p of schedule) {
    const inside =
      p.from < p.to ? minuteOfDay >= p.from && minuteOfDay < p.to : minuteOfDay >= p.from || minuteOfDay < p.to;
    if (inside) cap = cap === null ? p.bitsPerSecond : Math.min(cap, p.bitsPerSecond);
  }
  return cap;
}
