import { describe, expect, it } from 'vitest';
import {
  byAgeBand,
  byPractice,
  byQuintile,
  coveredOn,
  formatPercent,
  inCoveragePopulation,
  overall,
  periodProblems,
  quintileOfDecile,
  rate,
  takenUp,
  uptakeFinalBefore,
  wilsonInterval,
  type GroupCount,
} from '../../../src/pathway/uptake.js';

describe('Wilson score interval (95%)', () => {
  // By hand, z = 1.959964, z² = 3.841459:
  // 7 of 10: p = 0.7, z²/n = 0.3841459, centre = (0.7 + 0.1920730) / 1.3841459 = 0.644487,
  //   half = (1.959964 / 1.3841459) × √(0.21/10 + 3.841459/400) = 1.416011 × √0.0306036 = 1.416011 × 0.174939
  //   = 0.247716 → 0.39677 to 0.89220.
  it('7 of 10 is 39.7% to 89.2%', () => {
    const ci = wilsonInterval(7, 10)!;
    expect(ci.lower).toBeCloseTo(0.39677, 4);
    expect(ci.upper).toBeCloseTo(0.8922, 4);
  });
  // 50 of 100: centre 0.5, half = (1.959964 / 1.03841459) × √(0.0025 + 0.0000960) = 1.887458 × 0.0509513 = 0.096168.
  it('50 of 100 is 40.38% to 59.62%', () => {
    const ci = wilsonInterval(50, 100)!;
    expect(ci.lower).toBeCloseTo(0.40383, 4);
    expect(ci.upper).toBeCloseTo(0.59617, 4);
  });
  // 0 of 10: centre = 0.1920730 / 1.3841459 = 0.138766 = half (1.416011 × √(3.841459/400) = 1.416011 × 0.0979978),
  // so 0 to 0.27753; 10 of 10 is its mirror, 0.72247 to 1.
  it('0 of 10 and 10 of 10 stay inside 0..1', () => {
    expect(wilsonInterval(0, 10)!.lower).toBe(0);
    expect(wilsonInterval(0, 10)!.upper).toBeCloseTo(0.27753, 4);
    expect(wilsonInterval(10, 10)!.lower).toBeCloseTo(0.72247, 4);
    expect(wilsonInterval(10, 10)!.upper).toBe(1);
  });
  it('has no interval for nobody, and refuses impossible counts', () => {
    expect(wilsonInterval(0, 0)).toBeNull();
    expect(rate(0, 0)).toEqual({ numerator: 0, denominator: 0, rate: null, lower: null, upper: null });
    expect(() => wilsonInterval(3, 2)).toThrow(RangeError);
    expect(() => wilsonInterval(-1, 2)).toThrow(RangeError);
    expect(() => wilsonInterval(0.5, 2)).toThrow(RangeError);
  });
  it('formats as a percentage with one decimal place', () => {
    expect(formatPercent(12 / 17)).toBe('70.6%');
    expect(formatPercent(null)).toBe('No women');
  });
});

describe('uptake: screened within 6 months of the invitation', () => {
  it('counts screening from the invitation day to the same day six months on', () => {
    expect(takenUp('2025-04-10', '2025-04-10')).toBe(true);
    expect(takenUp('2025-04-10', '2025-10-10')).toBe(true);
    expect(takenUp('2025-04-10', '2025-10-11')).toBe(false);
    expect(takenUp('2025-04-10', '2025-04-09')).toBe(false);
    expect(takenUp('2025-04-10', null)).toBe(false);
    // Month ends clamp: 31 August + 6 months is 28 February.
    expect(takenUp('2025-08-31', '2026-02-28')).toBe(true);
    expect(takenUp('2025-08-31', '2026-03-01')).toBe(false);
  });
  it('is final for invitations before six months ago', () => {
    expect(uptakeFinalBefore('2026-11-23')).toBe('2026-05-23');
  });
});

describe('coverage: women 53 to 70 screened in the last 36 months', () => {
  const woman = {
    dateOfBirth: '1960-06-15',
    dateOfDeath: null,
    ceasedReason: null,
    ceasedOn: null,
    screenedOn: [] as string[],
  };
  it('takes women from their 53rd birthday to the day before their 71st', () => {
    expect(inCoveragePopulation({ ...woman, dateOfBirth: '1973-03-31' }, '2026-03-31')).toBe(true); // 53 today
    expect(inCoveragePopulation({ ...woman, dateOfBirth: '1973-04-01' }, '2026-03-31')).toBe(false); // 52
    expect(inCoveragePopulation({ ...woman, dateOfBirth: '1955-04-01' }, '2026-03-31')).toBe(true); // 70
    expect(inCoveragePopulation({ ...woman, dateOfBirth: '1955-03-31' }, '2026-03-31')).toBe(false); // 71 today
  });
  it('leaves out the dead and women ceased for bilateral mastectomy, but not other ceasing', () => {
    expect(inCoveragePopulation({ ...woman, dateOfDeath: '2026-01-01' }, '2026-03-31')).toBe(false);
    expect(inCoveragePopulation({ ...woman, dateOfDeath: '2026-04-01' }, '2026-03-31')).toBe(true);
    const mastectomy = { ...woman, ceasedReason: 'bilateral_mastectomy', ceasedOn: '2024-02-01' };
    expect(inCoveragePopulation(mastectomy, '2026-03-31')).toBe(false);
    expect(inCoveragePopulation(mastectomy, '2024-01-31')).toBe(true);
    const choice = { ...woman, ceasedReason: 'informed_choice', ceasedOn: '2024-02-01' };
    expect(inCoveragePopulation(choice, '2026-03-31')).toBe(true);
  });
  it('counts a screen after the same day 36 months before, up to the day itself', () => {
    expect(coveredOn(['2023-04-01'], '2026-03-31')).toBe(true);
    expect(coveredOn(['2023-03-31'], '2026-03-31')).toBe(false);
    expect(coveredOn(['2026-03-31'], '2026-03-31')).toBe(true);
    expect(coveredOn(['2026-04-01'], '2026-03-31')).toBe(false);
    expect(coveredOn(['2019-01-01', '2025-01-01'], '2026-03-31')).toBe(true);
  });
});

describe('groups', () => {
  it('makes quintiles of deciles: 1 most deprived', () => {
    expect([1, 2, 3, 4, 5, 6, 7, 8, 9, 10].map(quintileOfDecile)).toEqual([1, 1, 2, 2, 3, 3, 4, 4, 5, 5]);
    expect(() => quintileOfDecile(0)).toThrow(RangeError);
    expect(() => quintileOfDecile(11)).toThrow(RangeError);
  });

  // Five groups of women. By age band: 50–52 has 3 of 4 (ages 50 and 52), 60–64 has 1 of 3 and 2 of 2 = 3 of 5,
  // 70 has 0 of 1. By quintile: 1 has 3 of 4, 3 has 1 of 3, unknown has 2 of 3; 2, 4 and 5 have nobody.
  // By practice: A00001 3 of 4 (75%), A00002 1 of 3 (33.3%), none 2 of 3 (66.7%). All: 6 of 10.
  const counts: GroupCount[] = [
    { age: 50, quintile: 1, practice: 'A00001', numerator: 2, denominator: 2 },
    { age: 52, quintile: 1, practice: 'A00001', numerator: 1, denominator: 2 },
    { age: 61, quintile: 3, practice: 'A00002', numerator: 1, denominator: 3 },
    { age: 64, quintile: null, practice: null, numerator: 2, denominator: 2 },
    { age: 70, quintile: null, practice: null, numerator: 0, denominator: 1 },
  ];
  it('adds up by age band, in band order, leaving out empty bands', () => {
    expect(byAgeBand(counts).map((r) => [r.key, r.numerator, r.denominator])).toEqual([
      ['50-52', 3, 4],
      ['60-64', 3, 5],
      ['70', 0, 1],
    ]);
  });
  it('adds up by quintile, showing every quintile and unknown', () => {
    expect(byQuintile(counts).map((r) => [r.label, r.numerator, r.denominator])).toEqual([
      ['1 (most deprived)', 3, 4],
      ['2', 0, 0],
      ['3', 1, 3],
      ['4', 0, 0],
      ['5 (least deprived)', 0, 0],
      ['Unknown (postcode not in the lookup)', 2, 3],
    ]);
  });
  it('ranks practices by rate, highest first, naming each', () => {
    const names = new Map([
      ['A00001', 'Riverside Surgery'],
      ['A00002', 'Hillside Medical Centre'],
    ]);
    expect(byPractice(counts, names).map((r) => [r.label, r.numerator, r.denominator])).toEqual([
      ['Riverside Surgery (A00001)', 3, 4],
      ['No practice recorded', 2, 3],
      ['Hillside Medical Centre (A00002)', 1, 3],
    ]);
  });
  it('adds up everyone', () => {
    const all = overall(counts);
    expect([all.numerator, all.denominator, all.rate]).toEqual([6, 10, 0.6]);
  });
});

describe('periods', () => {
  it('checks a period', () => {
    expect(periodProblems('2025-04-01', '2026-03-31', '2026-11-23')).toEqual({});
    expect(periodProblems('2026-04-01', '2026-03-31', '2026-11-23')).toEqual({
      from: 'Start date must be the same as or before the end date',
    });
    expect(periodProblems('2025-04-01', '2026-11-24', '2026-11-23').to).toBe('End date must be today or in the past');
    expect(periodProblems('2010-04-01', '2026-03-31', '2026-11-23').from).toBe(
      'The period must be 10 years or shorter',
    );
  });
});
