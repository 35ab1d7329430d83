/**
 * The age bands of the KC62 return, written once: KC62 Part 1, uptake and coverage by age band, and anything else
 * that shows women by age band uses these. Pure: no I/O.
 *
 * Issue 7, KC62 Part 1: "invited, screened, uptake by age band ≤44, 45–49, 50–52, 53–54, 55–59, 60–64, 65–69, 70,
 * 71–74, ≥75". The age is in whole years at the date the report counts her on (for KC62 the relevant date, see
 * relevantDateRule in kc62.ts; for uptake the invitation; for coverage the day coverage is taken).
 */

/** The return's age bands, by age in whole years; min and max are both included. */
export const AGE_BANDS = [
  { id: 'le44', label: '44 and under', min: 0, max: 44 },
  { id: '45-49', label: '45 to 49', min: 45, max: 49 },
  { id: '50-52', label: '50 to 52', min: 50, max: 52 },
  { id: '53-54', label: '53 to 54', min: 53, max: 54 },
  { id: '55-59', label: '55 to 59', min: 55, max: 59 },
  { id: '60-64', label: '60 to 64', min: 60, max: 64 },
  { id: '65-69', label: '65 to 69', min: 65, max: 69 },
  { id: '70', label: '70', min: 70, max: 70 },
  { id: '71-74', label: '71 to 74', min: 71, max: 74 },
  { id: 'ge75', label: '75 and over', min: 75, max: Number.POSITIVE_INFINITY },
] as const;
export type AgeBand = (typeof AGE_BANDS)[number];
export type AgeBandId = AgeBand['id'];
/** A band, or every age ("all"). */
export type BandKey = AgeBandId | 'all';
export const BAND_KEYS: readonly BandKey[] = [...AGE_BANDS.map((b) => b.id), 'all'];

/** Each band's label by its id, and `allLabel` for the bands together ("all"). */
export function bandLabels<B extends { id: string; label: string }>(
  bands: readonly B[],
  allLabel: string,
): Record<B['id'] | 'all', string> {
  return { ...Object.fromEntries(bands.map((b) => [b.id, b.label])), all: allLabel } as Record<B['id'] | 'all', string>;
}

export const BAND_LABELS: Record<BandKey, string> = bandLabels(AGE_BANDS, 'All ages');

export function ageBand(age: number): AgeBandId {
  if (!Number.isInteger(age) || age < 0) throw new RangeError(`Not an age: ${age}`);
  return AGE_BANDS.find((b) => age >= b.min && age <= b.max)!.id;
}
