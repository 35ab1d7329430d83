import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import {
  addDays,
  addMonths,
  addYears,
  ageOn,
  compareIsoDate,
  daysBetween,
  daysInMonth,
  formatLongDate,
  isIsoDate,
  isLeapYear,
  isoDateInLondon,
  nthBirthday,
} from '../../../src/pathway/dates.js';
import { dobArb, fromUtcDay, isoDateArb, utcDay } from './arbitraries.js';

describe('isLeapYear', () => {
  it.each([
    [2024, true],
    [2023, false],
    [2000, true],
    [1900, false],
    [2100, false],
    [1600, true],
  ])('%i → %s', (y, leap) => expect(isLeapYear(y)).toBe(leap));
});

describe('isIsoDate', () => {
  it.each(['2024-02-29', '2000-02-29', '2023-12-31', '1930-01-01', '2024-04-30'])('%s is a date', (s) =>
    expect(isIsoDate(s)).toBe(true),
  );

  it.each([
    '2023-02-29',
    '1900-02-29',
    '2024-04-31',
    '2024-13-01',
    '2024-00-10',
    '2024-01-00',
    '2024-1-01',
    '24-01-01',
    '2024-01-01T00:00',
    ' 2024-01-01',
    '2024/01/01',
    '',
  ])('%j is not a date', (s) => expect(isIsoDate(s)).toBe(false));

  it('rejects non-strings', () => {
    expect(isIsoDate(20240101)).toBe(false);
    expect(isIsoDate(null)).toBe(false);
    expect(isIsoDate(new Date())).toBe(false);
  });

  it('agrees with a UTC Date round trip', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1000, max: 9999 }),
        fc.integer({ min: 1, max: 12 }),
        fc.integer({ min: 1, max: 31 }),
        (y, m, d) => {
          const s = `${y}-${String(m).padStart(2, '0')}-${String(d).padStart(2, '0')}`;
          const real = new Date(Date.UTC(y, m - 1, d)).getUTCDate() === d;
          expect(isIsoDate(s)).toBe(real);
        },
      ),
      { numRuns: 2000 },
    );
  });
});

describe('daysInMonth', () => {
  it('knows month lengths', () => {
    expect([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12].map((m) => daysInMonth(2023, m))).toEqual([
      31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31,
    ]);
    expect(daysInMonth(2024, 2)).toBe(29);
  });
});

describe('addMonths', () => {
  it.each([
    ['2024-01-31', 1, '2024-02-29'],
    ['2023-01-31', 1, '2023-02-28'],
    ['2024-03-31', -1, '2024-02-29'],
    ['2024-10-31', 1, '2024-11-30'],
    ['2024-08-31', 1, '2024-09-30'],
    ['2024-12-15', 1, '2025-01-15'],
    ['2024-01-15', -1, '2023-12-15'],
    ['2021-05-10', 36, '2024-05-10'],
    ['2021-02-28', 36, '2024-02-28'],
    ['2024-02-29', 36, '2027-02-28'],
    ['2024-02-29', 12, '2025-02-28'],
    ['2024-02-29', 48, '2028-02-29'],
    ['2024-06-15', 0, '2024-06-15'],
    ['2024-06-15', -120, '2014-06-15'],
  ])('%s + %i months = %s', (d, n, expected) => expect(addMonths(d, n)).toBe(expected));

  it('moves by exactly n months and clamps the day to the end of the month', () => {
    fc.assert(
      fc.property(isoDateArb(1900, 2100), fc.integer({ min: -600, max: 600 }), (d, n) => {
        const [y, m, day] = d.split('-').map(Number) as [number, number, number];
        const r = addMonths(d, n);
        expect(isIsoDate(r)).toBe(true);
        const [ry, rm, rday] = r.split('-').map(Number) as [number, number, number];
        expect(ry * 12 + rm - (y * 12 + m)).toBe(n);
        const monthLength = new Date(Date.UTC(ry, rm, 0)).getUTCDate();
        expect(rday).toBe(Math.min(day, monthLength));
      }),
      { numRuns: 1000 },
    );
  });

  it('can be undone when the day exists in every month', () => {
    fc.assert(
      fc.property(
        isoDateArb(1900, 2100).filter((d) => Number(d.slice(8)) <= 28),
        fc.integer({ min: -600, max: 600 }),
        (d, n) => {
          expect(addMonths(addMonths(d, n), -n)).toBe(d);
        },
      ),
    );
  });

  it('throws a RangeError for a bad date or a fractional count', () => {
    expect(() => addMonths('2023-02-29', 1)).toThrow(RangeError);
    expect(() => addMonths('not a date', 1)).toThrow(RangeError);
    expect(() => addMonths('2024-01-01', 1.5)).toThrow(RangeError);
  });
});

describe('addYears', () => {
  it.each([
    ['2024-02-29', 1, '2025-02-28'],
    ['2024-02-29', 4, '2028-02-29'],
    ['2024-02-29', -1, '2023-02-28'],
    ['2023-06-15', -10, '2013-06-15'],
    ['1999-12-31', 1, '2000-12-31'],
  ])('%s + %i years = %s', (d, n, expected) => expect(addYears(d, n)).toBe(expected));
});

describe('addDays and daysBetween', () => {
  it.each([
    ['2024-02-28', 1, '2024-02-29'],
    ['2023-02-28', 1, '2023-03-01'],
    ['2024-12-31', 1, '2025-01-01'],
    ['2024-03-01', -1, '2024-02-29'],
    ['2000-03-01', -1, '2000-02-29'],
    ['1900-03-01', -1, '1900-02-28'],
    ['1970-01-01', -1, '1969-12-31'],
  ])('%s + %i days = %s', (d, n, expected) => expect(addDays(d, n)).toBe(expected));

  it('counts days between dates', () => {
    expect(daysBetween('2024-01-01', '2025-01-01')).toBe(366);
    expect(daysBetween('2023-01-01', '2024-01-01')).toBe(365);
    expect(daysBetween('2024-03-01', '2024-02-28')).toBe(-2);
    expect(daysBetween('2024-06-15', '2024-06-15')).toBe(0);
  });

  it('agrees with UTC Date arithmetic', () => {
    fc.assert(
      fc.property(
        isoDateArb(1800, 2200),
        isoDateArb(1800, 2200),
        fc.integer({ min: -40_000, max: 40_000 }),
        (a, b, n) => {
          expect(daysBetween(a, b)).toBe(utcDay(b) - utcDay(a));
          expect(addDays(a, n)).toBe(fromUtcDay(utcDay(a) + n));
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('daysBetween undoes addDays', () => {
    fc.assert(
      fc.property(isoDateArb(1000, 9000), fc.integer({ min: -300_000, max: 300_000 }), (d, n) => {
        expect(daysBetween(d, addDays(d, n))).toBe(n);
      }),
    );
  });
});

describe('compareIsoDate', () => {
  it('orders dates', () => {
    expect(compareIsoDate('2024-01-01', '2024-01-02')).toBe(-1);
    expect(compareIsoDate('2024-01-02', '2024-01-01')).toBe(1);
    expect(compareIsoDate('2024-01-01', '2024-01-01')).toBe(0);
    expect(compareIsoDate('1999-12-31', '2000-01-01')).toBe(-1);
  });

  it('agrees with the sign of the day difference and with string order', () => {
    fc.assert(
      fc.property(isoDateArb(1000, 9999), isoDateArb(1000, 9999), (a, b) => {
        expect(compareIsoDate(a, b)).toBe(Math.sign(utcDay(a) - utcDay(b)) || 0);
        expect(compareIsoDate(a, b)).toBe(a < b ? -1 : a > b ? 1 : 0);
      }),
    );
  });

  it('throws for a bad date', () => {
    expect(() => compareIsoDate('2024-02-30', '2024-01-01')).toThrow(RangeError);
  });
});

describe('nthBirthday', () => {
  it('is the same day and month for most births', () => {
    expect(nthBirthday('1974-06-15', 50)).toBe('2024-06-15');
    expect(nthBirthday('1974-06-15', 71)).toBe('2045-06-15');
    expect(nthBirthday('1974-06-15', 0)).toBe('1974-06-15');
    expect(nthBirthday('1975-02-28', 49)).toBe('2024-02-28');
  });

  it('puts a 29 February birthday on 1 March in a common year', () => {
    expect(nthBirthday('2000-02-29', 50)).toBe('2050-03-01');
    expect(nthBirthday('2000-02-29', 71)).toBe('2071-03-01');
    expect(nthBirthday('2000-02-29', 1)).toBe('2001-03-01');
    expect(nthBirthday('2000-02-29', 100)).toBe('2100-03-01'); // 2100 is not a leap year
    expect(nthBirthday('1968-02-29', 50)).toBe('2018-03-01');
    expect(nthBirthday('1968-02-29', 71)).toBe('2039-03-01');
  });

  it('keeps 29 February in a leap year', () => {
    expect(nthBirthday('2000-02-29', 4)).toBe('2004-02-29');
    expect(nthBirthday('2000-02-29', 48)).toBe('2048-02-29');
    expect(nthBirthday('1972-02-29', 52)).toBe('2024-02-29');
    expect(nthBirthday('1600-02-29', 400)).toBe('2000-02-29');
  });

  it('rejects a negative or fractional age and a bad date', () => {
    expect(() => nthBirthday('2000-01-01', -1)).toThrow(RangeError);
    expect(() => nthBirthday('2000-01-01', 1.5)).toThrow(RangeError);
    expect(() => nthBirthday('2001-02-29', 50)).toThrow(RangeError);
  });
});

/** Independent age oracle: compare (month, day) against the birthday, with 29 Feb → 1 Mar in a common year. */
function oracleAge(dob: string, on: string): number {
  const [by, bm, bd] = dob.split('-').map(Number) as [number, number, number];
  const [y, m, d] = on.split('-').map(Number) as [number, number, number];
  const leap = new Date(Date.UTC(y, 1, 29)).getUTCMonth() === 1;
  const [tm, td] = bm === 2 && bd === 29 && !leap ? [3, 1] : [bm, bd];
  return y - by - (m < tm || (m === tm && d < td) ? 1 : 0);
}

describe('ageOn', () => {
  it.each([
    ['2001-02-28', 0],
    ['2001-03-01', 1],
    ['2004-02-28', 3],
    ['2004-02-29', 4],
    ['2048-02-28', 47],
    ['2048-02-29', 48],
    ['2050-02-28', 49],
    ['2050-03-01', 50],
    ['2071-02-28', 70],
    ['2071-03-01', 71],
  ])('someone born 2000-02-29 is, on %s, aged %i', (on, age) => expect(ageOn('2000-02-29', on)).toBe(age));

  it('handles ordinary birthdays', () => {
    expect(ageOn('1974-06-15', '1974-06-15')).toBe(0);
    expect(ageOn('1974-06-15', '2024-06-14')).toBe(49);
    expect(ageOn('1974-06-15', '2024-06-15')).toBe(50);
    expect(ageOn('1974-06-15', '2024-12-31')).toBe(50);
    expect(ageOn('1974-03-01', '2024-02-29')).toBe(49);
    expect(ageOn('1974-03-01', '2025-03-01')).toBe(51);
  });

  it('throws a RangeError for a date before birth', () => {
    expect(() => ageOn('1974-06-15', '1974-06-14')).toThrow(RangeError);
  });

  it('agrees with an independent oracle', () => {
    fc.assert(
      fc.property(dobArb, fc.integer({ min: 0, max: 40_000 }), (dob, days) => {
        const on = fromUtcDay(utcDay(dob) + days);
        expect(ageOn(dob, on)).toBe(oracleAge(dob, on));
      }),
      { numRuns: 2000 },
    );
  });

  it('increments exactly on each nthBirthday', () => {
    fc.assert(
      fc.property(dobArb, fc.integer({ min: 1, max: 100 }), (dob, n) => {
        const birthday = nthBirthday(dob, n);
        expect(ageOn(dob, addDays(birthday, -1))).toBe(n - 1);
        expect(ageOn(dob, birthday)).toBe(n);
        expect(ageOn(dob, addDays(birthday, 1))).toBe(n);
      }),
      { numRuns: 1000 },
    );
  });

  it('is one day before, on and after the 50th and 71st birthdays as expected', () => {
    fc.assert(
      fc.property(dobArb, (dob) => {
        for (const n of [50, 71]) {
          const b = nthBirthday(dob, n);
          expect([addDays(b, -1), b, addDays(b, 1)].map((d) => ageOn(dob, d))).toEqual([n - 1, n, n]);
          expect(daysBetween(addYears(dob, n), b)).toBeGreaterThanOrEqual(0);
          expect(daysBetween(addYears(dob, n), b)).toBeLessThanOrEqual(1);
        }
      }),
      { numRuns: 1000 },
    );
  });

  it('never decreases and rises by at most one a year', () => {
    fc.assert(
      fc.property(dobArb, fc.integer({ min: 0, max: 40_000 }), fc.integer({ min: 0, max: 400 }), (dob, a, step) => {
        const d1 = addDays(dob, a);
        const d2 = addDays(d1, step);
        const [age1, age2] = [ageOn(dob, d1), ageOn(dob, d2)];
        expect(age2).toBeGreaterThanOrEqual(age1);
        expect(age2 - age1).toBeLessThanOrEqual(step >= 366 ? 2 : 1);
      }),
      { numRuns: 1000 },
    );
  });
});

describe('isoDateInLondon', () => {
  it.each([
    // British Summer Time (UTC+1)
    ['2024-05-31T23:30:00Z', '2024-06-01'], // 00:30 BST on 1 June
    ['2024-05-31T22:59:59Z', '2024-05-31'],
    ['2024-06-01T22:59:59Z', '2024-06-01'],
    // Greenwich Mean Time (UTC+0)
    ['2024-01-15T23:30:00Z', '2024-01-15'],
    ['2024-01-16T00:00:00Z', '2024-01-16'],
    ['2024-12-31T23:59:59Z', '2024-12-31'],
    // Clocks go forward at 01:00 UTC on 31 March 2024
    ['2024-03-30T23:59:59Z', '2024-03-30'],
    ['2024-03-31T00:30:00Z', '2024-03-31'],
    ['2024-03-31T23:00:00Z', '2024-04-01'],
    // Clocks go back at 01:00 UTC on 27 October 2024
    ['2024-10-26T22:59:59Z', '2024-10-26'],
    ['2024-10-26T23:30:00Z', '2024-10-27'],
    ['2024-10-27T23:30:00Z', '2024-10-27'],
  ])('%s is %s in England', (instant, expected) => expect(isoDateInLondon(new Date(instant))).toBe(expected));

  it('throws for an invalid Date', () => {
    expect(() => isoDateInLondon(new Date('nonsense'))).toThrow(RangeError);
  });

  it('is the UTC date in winter and the UTC+1 date in summer', () => {
    fc.assert(
      fc.property(
        fc.date({ min: new Date('1980-01-01T00:00:00Z'), max: new Date('2060-12-31T23:59:59Z'), noInvalidDate: true }),
        (instant) => {
          const month = instant.getUTCMonth();
          const london = isoDateInLondon(instant);
          if (month === 11 || month <= 1) expect(london).toBe(instant.toISOString().slice(0, 10));
          if (month >= 4 && month <= 8)
            expect(london).toBe(new Date(instant.getTime() + 3_600_000).toISOString().slice(0, 10));
          const offset = utcDay(london) - utcDay(instant.toISOString().slice(0, 10));
          expect([0, 1]).toContain(offset);
        },
      ),
      { numRuns: 2000 },
    );
  });
});

describe('formatLongDate', () => {
  it('formats in NHS style', () => {
    expect(formatLongDate('2050-03-01')).toBe('1 March 2050');
    expect(formatLongDate('2024-12-25')).toBe('25 December 2024');
    expect(() => formatLongDate('2024-02-30')).toThrow(RangeError);
  });
});
