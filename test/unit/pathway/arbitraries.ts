import fc from 'fast-check';

/** An ISO date built with JS Date in UTC (independent of the code under test). */
export function isoDateArb(fromYear: number, toYear: number): fc.Arbitrary<string> {
  return fc
    .date({ min: new Date(Date.UTC(fromYear, 0, 1)), max: new Date(Date.UTC(toYear, 11, 31)), noInvalidDate: true })
    .map((d) => d.toISOString().slice(0, 10));
}

/** Dates of birth 1930–2010, with 29 February births well represented. */
export const dobArb: fc.Arbitrary<string> = fc.oneof(
  { arbitrary: isoDateArb(1930, 2010), weight: 4 },
  { arbitrary: fc.integer({ min: 1932, max: 2008 }).map((y) => `${y - (y % 4)}-02-29`), weight: 1 },
);

/** Day-number oracle using UTC milliseconds. */
export function utcDay(iso: string): number {
  const [y, m, d] = iso.split('-').map(Number) as [number, number, number];
  return Date.UTC(y, m - 1, d) / 86_400_000;
}

export function fromUtcDay(day: number): string {
  return new Date(day * 86_400_000).toISOString().slice(0, 10);
}
