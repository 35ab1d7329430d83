import { describe, expect, it } from 'vitest';
import {
  cellKey,
  countOf,
  coverageCells,
  episodeCells,
  episodeMeasures,
  nonOperativeRate,
  parseCellKey,
  parseKc63CellKey,
  previousScreen,
  sizeBand,
  tableOf,
  tallyKc62,
  tallyKc63,
  uptake,
  type EpisodeFacts,
} from '../../../src/pathway/kc62.js';

const base: EpisodeFacts = {
  episodeType: 'R',
  age: 55,
  previous: 'within5',
  screened: false,
  referred: false,
  needleBiopsy: false,
  openBiopsy: false,
  outcome: null,
  sizeMm: null,
  earlyRecall: false,
  b5NeedleFirst: false,
};

describe('bands', () => {
  it('sizes: under 10, 10 to under 15, 15 to under 20, 20 to under 50, 50 and over, unknown', () => {
    expect(sizeBand(9.9)).toBe('lt10');
    expect(sizeBand(10)).toBe('10-15');
    expect(sizeBand(14.9)).toBe('10-15');
    expect(sizeBand(15)).toBe('15-20');
    expect(sizeBand(20)).toBe('20-50');
    expect(sizeBand(49.9)).toBe('20-50');
    expect(sizeBand(50)).toBe('ge50');
    expect(sizeBand(null)).toBe('unknown');
  });
});

describe('tables', () => {
  it('splits routine recall by her last screen: none B, within 5 years C1, over C2', () => {
    expect(previousScreen(null, '2025-09-01')).toBe('none');
    // 2025-09-01 less 5 years is 2020-09-01: that day is within, the day before is over.
    expect(previousScreen('2020-09-01', '2025-09-01')).toBe('within5');
    expect(previousScreen('2020-08-31', '2025-09-01')).toBe('over5');
    expect(tableOf('R', 'none')).toBe('B');
    expect(tableOf('R', 'within5')).toBe('C1');
    expect(tableOf('R', 'over5')).toBe('C2');
  });
  it('maps the other episode types', () => {
    expect(tableOf('C', 'within5')).toBe('A');
    expect(tableOf('E', 'within5')).toBe('D');
    expect(tableOf('H', 'within5')).toBe('E');
    expect(tableOf('T', 'none')).toBe('E');
    expect(tableOf('S', 'none')).toBe('F1');
    expect(tableOf('G', 'none')).toBe('F2');
  });
});

describe('episode cells', () => {
  it('an invited woman not screened counts as invited only, in her table and T, her band and all ages', () => {
    expect(episodeCells({ ...base, previous: 'none', age: 53 })).toEqual([
      'B.invited.53-54',
      'B.invited.all',
      'T.invited.53-54',
      'T.invited.all',
    ]);
  });
  it('a referral is never invited', () => {
    expect(episodeMeasures({ ...base, episodeType: 'S', previous: 'none' })).toEqual([]);
    expect(episodeMeasures({ ...base, episodeType: 'G', previous: 'none', screened: true })).toEqual(['screened']);
  });
  it('invasive cancer with a B5 needle biopsy first: size band, needle, non-operative', () => {
    const m = episodeMeasures({
      ...base,
      screened: true,
      referred: true,
      needleBiopsy: true,
      outcome: 'malignant_invasive',
      sizeMm: 12,
      b5NeedleFirst: true,
    });
    expect(m).toEqual([
      'invited',
      'screened',
      'referred',
      'needle',
      'inv-10-15',
      'invasive',
      'cancers',
      'cancers4',
      'cancerNeedle',
      'nonOperative',
    ]);
  });
  it('a benign open biopsy and early recall; a normal outcome after open biopsy is benign too', () => {
    const facts = { ...base, screened: true, referred: true, openBiopsy: true, earlyRecall: true };
    expect(episodeMeasures({ ...facts, outcome: 'benign' })).toEqual([
      'invited',
      'screened',
      'referred',
      'open',
      'benignOpen',
      'earlyRecall',
    ]);
    expect(episodeMeasures({ ...facts, outcome: 'normal', earlyRecall: false })).toContain('benignOpen');
    // No outcome yet: not (yet) a benign biopsy.
    expect(episodeMeasures({ ...facts, outcome: null })).not.toContain('benignOpen');
  });
  it('non-invasive and micro-invasive are not invasive; open and needle both count', () => {
    const facts = { ...base, screened: true, needleBiopsy: true, openBiopsy: true };
    expect(episodeMeasures({ ...facts, outcome: 'malignant_non_invasive' })).toEqual([
      'invited',
      'screened',
      'needle',
      'open',
      'nonInvasive',
      'cancers',
      'cancers4',
      'cancerNeedle',
      'cancerOpen',
    ]);
    expect(episodeMeasures({ ...facts, outcome: 'malignant_micro_invasive' })).toContain('microInvasive');
    expect(episodeMeasures({ ...facts, outcome: 'malignant_invasive' })).toContain('inv-unknown');
  });
});

describe('tally, uptake and rates', () => {
  // Five invited women 50-52 in A (3 screened), two self-referrals 71-74 screened; cancers: one of the A women
  // (non-operative), one self-referral (open biopsy only).
  const counts = tallyKc62([
    { facts: { ...base, episodeType: 'C', age: 51 }, count: 2 },
    { facts: { ...base, episodeType: 'C', age: 51, screened: true }, count: 2 },
    {
      facts: {
        ...base,
        episodeType: 'C',
        age: 51,
        screened: true,
        needleBiopsy: true,
        outcome: 'malignant_invasive',
        sizeMm: 8,
        b5NeedleFirst: true,
      },
      count: 1,
    },
    { facts: { ...base, episodeType: 'S', age: 72, screened: true }, count: 1 },
    {
      facts: { ...base, episodeType: 'S', age: 72, screened: true, openBiopsy: true, outcome: 'malignant_invasive' },
      count: 1,
    },
  ]);
  it('counts each cell', () => {
    expect(countOf(counts, 'A', 'invited', '50-52')).toBe(5);
    expect(countOf(counts, 'A', 'screened', 'all')).toBe(3);
    expect(countOf(counts, 'F1', 'screened', '71-74')).toBe(2);
    expect(countOf(counts, 'F1', 'invited', 'all')).toBe(0);
    expect(countOf(counts, 'T', 'invited', 'all')).toBe(5);
    expect(countOf(counts, 'T', 'screened', 'all')).toBe(5);
    expect(countOf(counts, 'T', 'inv-lt10', 'all')).toBe(1);
    expect(countOf(counts, 'T', 'inv-unknown', '71-74')).toBe(1);
    expect(countOf(counts, 'T', 'cancers', 'all')).toBe(2);
  });
  it('uptake: screened ÷ invited; T leaves referrals out; none for referral tables', () => {
    expect(uptake(counts, 'A', '50-52')).toBe(60); // 3 / 5
    expect(uptake(counts, 'T', 'all')).toBe(60); // (5 - 2 self-referrals) / 5
    expect(uptake(counts, 'F1', 'all')).toBeNull();
    expect(uptake(counts, 'B', 'all')).toBeNull(); // nobody invited
  });
  it('non-operative rate: 1 of 2 cancers', () => {
    expect(nonOperativeRate(counts, 'T', 'all')).toBe(50);
    expect(nonOperativeRate(counts, 'A', 'all')).toBe(100);
  });
});

describe('cell keys', () => {
  it('round-trip and refuse nonsense', () => {
    expect(parseCellKey(cellKey('C1', 'inv-10-15', '65-69'))).toEqual({
      table: 'C1',
      measure: 'inv-10-15',
      band: '65-69',
    });
    expect(parseCellKey('F1.invited.all')).toBeUndefined();
    expect(parseCellKey('X.invited.all')).toBeUndefined();
    expect(parseCellKey('A.invited.all.x')).toBeUndefined();
    expect(parseKc63CellKey('KC63.covered.70')).toEqual({ measure: 'covered', band: '70' });
    expect(parseKc63CellKey('KC63.covered.50-52')).toBeUndefined();
  });
});

describe('KC63 coverage', () => {
  it('counts women 53 to 70 at 31 March, covered when screened in the last 36 months', () => {
    expect(coverageCells({ age: 52, screenedInWindow: true })).toEqual([]);
    expect(coverageCells({ age: 71, screenedInWindow: true })).toEqual([]);
    expect(coverageCells({ age: 70, screenedInWindow: false })).toEqual(['KC63.eligible.70', 'KC63.eligible.all']);
    const counts = tallyKc63([
      { facts: { age: 53, screenedInWindow: true }, count: 3 },
      { facts: { age: 54, screenedInWindow: false }, count: 1 },
      { facts: { age: 60, screenedInWindow: true }, count: 2 },
    ]);
    expect(counts.get('KC63.eligible.53-54')).toBe(4);
    expect(counts.get('KC63.covered.53-54')).toBe(3);
    expect(counts.get('KC63.eligible.all')).toBe(6);
    expect(counts.get('KC63.covered.all')).toBe(5);
  });
});
