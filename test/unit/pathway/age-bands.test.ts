import { describe, expect, it } from 'vitest';
import { AGE_BANDS, ageBand, BAND_KEYS, BAND_LABELS } from '../../../src/pathway/age-bands.js';

describe('age bands', () => {
  it('puts each age in the return’s band', () => {
    const cases: [number, string][] = [
      [30, 'le44'],
      [44, 'le44'],
      [45, '45-49'],
      [49, '45-49'],
      [50, '50-52'],
      [52, '50-52'],
      [53, '53-54'],
      [54, '53-54'],
      [55, '55-59'],
      [60, '60-64'],
      [65, '65-69'],
      [69, '65-69'],
      [70, '70'],
      [71, '71-74'],
      [74, '71-74'],
      [75, 'ge75'],
      [99, 'ge75'],
    ];
    for (const [age, band] of cases) expect(ageBand(age), `age ${age}`).toBe(band);
  });
  it('covers every age once, in order, with "All ages" last', () => {
    AGE_BANDS.forEach((b, i) => i > 0 && expect(b.min).toBe(AGE_BANDS[i - 1]!.max + 1));
    expect(BAND_KEYS.at(-1)).toBe('all');
    expect(BAND_LABELS.all).toBe('All ages');
    expect(BAND_LABELS.le44).toBe('44 and under');
    expect(() => ageBand(-1)).toThrow(RangeError);
    expect(() => ageBand(50.5)).toThrow(RangeError);
  });
});
