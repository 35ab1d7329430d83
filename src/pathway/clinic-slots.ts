/** A clinic's day cut into equal slots: how many there are, when each starts, and which runs are free. */

const minutesOf = (time: string): number => {
  const [h, m] = time.split(':').map(Number);
  return (h ?? 0) * 60 + (m ?? 0);
};
const timeOf = (minutes: number): string =>
  `${String(Math.floor(minutes / 60)).padStart(2, '0')}:${String(minutes % 60).padStart(2, '0')}`;

export interface ClinicTimes {
  startsAt: string;
  endsAt: string;
  slotMinutes: number;
}

export function slotCount(clinic: ClinicTimes): number {
  return Math.max(0, Math.floor((minutesOf(clinic.endsAt) - minutesOf(clinic.startsAt)) / clinic.slotMinutes));
}

/** 'HH:MM' at which slot `index` starts. */
export function slotTime(clinic: Pick<ClinicTimes, 'startsAt' | 'slotMinutes'>, index: number): string {
  return timeOf(minutesOf(clinic.startsAt) + index * clinic.slotMinutes);
}

/** Slot indexes where `needed` consecutive free slots begin. */
export function freeSlotStarts(total: number, taken: ReadonlySet<number>, needed: number): number[] {
  const starts: number[] = [];
  for (let i = 0; i + needed <= total; i++) {
    let free = true;
    for (let j = i; j < i + needed && free; j++) free = !taken.has(j);
    if (free) starts.push(i);
  }
  return starts;
}
