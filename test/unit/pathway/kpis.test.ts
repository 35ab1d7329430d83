import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  beforeAfter,
  differenceInDifferences,
  expectedInvasive,
  formatValue,
  interventionWindows,
  KPI_DEFINITIONS,
  KPI_IDS,
  kpiFigure,
  NhsbspStandardsError,
  parseStandards,
  ragStatus,
  ratioInterval,
  sdrBandOf,
  thresholdText,
  type Standard,
} from '../../../src/pathway/kpis.js';
import { wilsonInterval } from '../../../src/pathway/uptake.js';
import { SHIPPED_STANDARDS_FILE } from '../../../src/store/kpis.js';

interface StandardsJson {
  standards: Record<string, Record<string, unknown>>;
  sdrExpectedRates: { bands: Record<string, unknown>[] };
}
const shipped = () => JSON.parse(readFileSync(SHIPPED_STANDARDS_FILE, 'utf8')) as StandardsJson;
const higher: Standard = { direction: 'higher', acceptable: 70, achievable: 80, check: false, source: 'test source' };
const lower: Standard = { direction: 'lower', acceptable: 9, achievable: 7, check: false, source: 'test source' };

describe('the standards file', () => {
  it('ships valid, with every KPI, the national averages of 2024-25 and contiguous SDR bands', () => {
    const s = parseStandards(shipped(), 'shipped');
    expect(Object.keys(s.standards).sort()).toEqual([...KPI_IDS].sort());
    expect(s.standards.coverage).toMatchObject({ direction: 'higher', acceptable: 70, achievable: 80 });
    expect(s.standards.referral_first).toMatchObject({ direction: 'lower', acceptable: 9 });
    expect(s.standards.referral_repeat).toMatchObject({ direction: 'lower', acceptable: 4 });
    expect(s.nationalAverages).toMatchObject({
      year: '2024-25',
      values: { uptake: 70.6, coverage: 71.8, cancer_detection: 9 },
    });
    // Table 1 of the GOV.UK age standardised detection ratios page.
    expect(sdrBandOf(66, s.sdrExpectedRates.bands)).toMatchObject({
      band: '65 to 69',
      prevalent: 12.91,
      incident: 5.45,
    });
    expect(sdrBandOf(44, s.sdrExpectedRates.bands)).toMatchObject({ prevalent: 2.12, incident: 2.02 });
    for (const id of KPI_IDS) expect(s.standards[id].source.length).toBeGreaterThan(20);
  });

  it('names every bad key with a clear message', () => {
    const json = shipped();
    delete json.standards.sdr;
    json.standards.uptake!.achievable = 60; // below acceptable (70) while higher is better
    json.standards.referral_first!.achievable = 12; // above acceptable (9) while lower is better
    json.standards.coverage!.direction = 'up';
    json.standards.surprise = { direction: 'higher', check: false, source: 'nowhere at all' };
    json.sdrExpectedRates.bands[3]!.fromAge = 54; // leaves age 53 out
    let error: unknown;
    try {
      parseStandards(json, 'my-file.json');
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(NhsbspStandardsError);
    const problems = (error as NhsbspStandardsError).problems;
    expect(problems).toContain('standards.sdr: missing');
    expect(problems).toContain('standards.uptake.achievable: must be at least "acceptable" (70) when higher is better');
    expect(problems).toContain(
      'standards.referral_first.achievable: must be at most "acceptable" (9) when lower is better',
    );
    expect(problems).toContain('standards.coverage.direction: must be "higher" or "lower"');
    expect(problems.some((p) => p.startsWith('standards.surprise: not a known setting (expected one of uptake'))).toBe(
      true,
    );
    expect(problems).toContain(
      'sdrExpectedRates.bands: bands "50 to 52" and "53 to 54" must meet with no gap or overlap (52 then 54)',
    );
    expect((error as Error).message).toMatch(/^NHSBSP standards in my-file.json are not valid: /);
  });

  it('wants both thresholds or neither', () => {
    const json = shipped();
    delete json.standards.coverage!.achievable;
    expect(() => parseStandards(json, 'f')).toThrow(/standards.coverage: give both "acceptable" and "achievable"/);
  });
});

describe('red, amber, green', () => {
  it('higher is better: red below acceptable, amber from acceptable, green from achievable', () => {
    expect(ragStatus(69.9, higher)).toBe('red');
    expect(ragStatus(70, higher)).toBe('amber');
    expect(ragStatus(79.99, higher)).toBe('amber');
    expect(ragStatus(80, higher)).toBe('green');
    expect(ragStatus(null, higher)).toBe('none');
  });
  it('lower is better: a value must be below the threshold to meet it', () => {
    expect(ragStatus(9, lower)).toBe('red');
    expect(ragStatus(8.99, lower)).toBe('amber');
    expect(ragStatus(7, lower)).toBe('amber');
    expect(ragStatus(6.99, lower)).toBe('green');
  });
  it('no thresholds, no colour', () => {
    expect(ragStatus(12, { direction: 'higher', check: false, source: 'x' })).toBe('none');
  });
  it('shows thresholds and values as people read them', () => {
    expect(thresholdText(70, 'higher', 'percent')).toBe('≥ 70.0 %');
    expect(thresholdText(9, 'lower', 'percent')).toBe('< 9.0 %');
    expect(thresholdText(undefined, 'higher', 'per_1000')).toBe('None set');
    expect(formatValue(8.4567, 'per_1000')).toBe('8.5 per 1,000');
    expect(formatValue(1.234, 'ratio')).toBe('1.23');
    expect(formatValue(null, 'percent')).toBe('No data');
  });
});

describe('confidence intervals', () => {
  it('Wilson interval of 7 out of 10 is 39.7 % to 89.2 %', () => {
    // p = 0.7, z² = 3.8415: centre = (0.7 + 0.19207) / 1.38415 = 0.64449;
    // half = (1.95996 / 1.38415) × √(0.021 + 0.0096036) = 1.41602 × 0.17494 = 0.24772.
    const w = wilsonInterval(7, 10)!;
    expect(w.lower).toBeCloseTo(0.39677, 4);
    expect(w.upper).toBeCloseTo(0.89221, 4);
    expect(wilsonInterval(0, 0)).toBeNull();
    expect(wilsonInterval(0, 5)!.lower).toBeCloseTo(0, 12);
  });
  it("observed ÷ expected (Byar's approximation)", () => {
    // O = 0: lower 0; upper = 1 × (1 − 1/9 + 1.95996/3)³ / 2 = (0.88889 + 0.65332)³ / 2 = 1.54221³ / 2 = 3.66801 / 2
    // = 1.8340.
    expect(ratioInterval(0, 2)).toMatchObject({ lower: 0 });
    expect(ratioInterval(0, 2)!.upper).toBeCloseTo(1.834, 3);
    // O = 10, E = 10: lower = 10 × (1 − 1/90 − 1.95996/(3√10))³ / 10 = (0.98889 − 0.20660)³ = 0.78229³ = 0.47874.
    expect(ratioInterval(10, 10)!.lower).toBeCloseTo(0.4787, 3);
    expect(ratioInterval(3, 0)).toBeNull();
  });
});

describe('the standardised detection ratio', () => {
  it('expects Σ women × rate ÷ 1,000 by age band and first or repeat screen', () => {
    const { sdrExpectedRates } = parseStandards(shipped(), 'shipped');
    // 1,000 women aged 51 at a first screen: 1,000 × 4.37 / 1,000 = 4.37;
    // 500 aged 66 at a repeat screen: 500 × 5.45 / 1,000 = 2.725. Expected 7.095.
    const expected = expectedInvasive(
      [
        { age: 51, first: true, count: 1000 },
        { age: 66, first: false, count: 500 },
      ],
      sdrExpectedRates.bands,
    );
    expect(expected).toBeCloseTo(7.095, 6);
    // 9 invasive cancers observed: SDR 9 / 7.095 = 1.2685, amber (≥ 1.0, < 1.4).
    const f = kpiFigure('sdr', { numerator: 9, denominator: expected }, parseStandards(shipped(), 's').standards.sdr);
    expect(f.value).toBeCloseTo(1.2685, 4);
    expect(f.rag).toBe('amber');
  });
});

describe('KPI figures', () => {
  it('a percentage with its interval and colour', () => {
    const f = kpiFigure('uptake', { numerator: 7, denominator: 10 }, higher);
    expect(f.value).toBeCloseTo(70, 10);
    expect(f.interval!.lower).toBeCloseTo(39.677, 2);
    expect(f.rag).toBe('amber');
  });
  it('a rate per 1,000', () => {
    // 3 cancers in 400 women screened: 7.5 per 1,000.
    const f = kpiFigure(
      'cancer_detection',
      { numerator: 3, denominator: 400 },
      { ...higher, acceptable: undefined, achievable: undefined },
    );
    expect(f.value).toBeCloseTo(7.5, 10);
    expect(f.rag).toBe('none');
  });
  it('no denominator, no value', () => {
    expect(kpiFigure('uptake', { numerator: 0, denominator: 0 }, higher)).toMatchObject({ value: null, rag: 'none' });
  });
  it('every KPI quotes its wording', () => {
    for (const id of KPI_IDS) expect(KPI_DEFINITIONS[id].wording.length).toBeGreaterThan(30);
  });
});

describe('interventions', () => {
  it('compares the 12 months before the start with up to 12 after, only as far as 6 months ago', () => {
    expect(interventionWindows('2025-06-01', null, '2026-11-23')).toEqual({
      before: { from: '2024-06-01', to: '2025-05-31' },
      after: { from: '2025-06-01', to: '2026-05-23' },
    });
    // Ended early: the after window stops at the end.
    expect(interventionWindows('2025-06-01', '2025-09-30', '2026-11-23').after).toEqual({
      from: '2025-06-01',
      to: '2025-09-30',
    });
    // Started less than 6 months ago: nothing after yet.
    expect(interventionWindows('2026-08-01', null, '2026-11-23').after).toBeNull();
  });

  it('before and after, and the difference in differences with its interval', () => {
    // Practice 50/100 → 70/100 (+20 points); comparison 60/200 → 62/200 (+1 point); difference 19 points.
    // SE = 100 × √(0.5·0.5/100 + 0.7·0.3/100 + 0.3·0.7/200 + 0.31·0.69/200)
    //    = 100 × √(0.0025 + 0.0021 + 0.00105 + 0.0010695) = 100 × √0.0067195 = 8.1973; ± 1.96 × SE = ± 16.066.
    const practice = { before: { invited: 100, screened: 50 }, after: { invited: 100, screened: 70 } };
    const comparison = { before: { invited: 200, screened: 60 }, after: { invited: 200, screened: 62 } };
    const did = differenceInDifferences(practice, comparison)!;
    expect(did.difference).toBeCloseTo(19, 10);
    expect(did.interval.lower).toBeCloseTo(2.934, 2);
    expect(did.interval.upper).toBeCloseTo(35.066, 2);
    const ba = beforeAfter(practice.before, practice.after);
    expect(ba).toMatchObject({ beforePct: 50, afterPct: 70 });
    expect(ba.change).toBeCloseTo(20, 10);
    // SE = 100 × √(0.0025 + 0.0021) = 6.7823; ± 13.293.
    expect(ba.changeInterval!.lower).toBeCloseTo(6.707, 2);
    expect(differenceInDifferences(practice, { ...comparison, after: { invited: 0, screened: 0 } })).toBeNull();
    expect(beforeAfter(practice.before, null)).toMatchObject({ beforePct: 50, afterPct: null, change: null });
  });
});
