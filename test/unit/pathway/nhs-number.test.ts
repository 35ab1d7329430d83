import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import {
  formatNhsNumber,
  isValidNhsNumber,
  nhsNumberCheckDigit,
  nhsNumberProblem,
  normaliseNhsNumber,
  testRangeNhsNumbers,
} from '../../../src/pathway/nhs-number.js';

/** Independent oracle: a valid number has Σ dᵢ·(10−i) for the first 9 digits, plus the 10th digit, ≡ 0 (mod 11). */
function oracleValid(s: string): boolean {
  if (!/^\d{10}$/.test(s)) return false;
  let sum = 0;
  for (let i = 0; i < 9; i++) sum += Number(s[i]) * (10 - i);
  return (sum + Number(s[9])) % 11 === 0;
}

const tenDigits = fc.string({ unit: fc.constantFrom(...'0123456789'), minLength: 10, maxLength: 10 });
const nineDigits = fc.string({ unit: fc.constantFrom(...'0123456789'), minLength: 9, maxLength: 9 });
const validNhs = nineDigits
  .filter((b) => nhsNumberCheckDigit(b) !== undefined)
  .map((b) => b + String(nhsNumberCheckDigit(b)));

describe('nhsNumberCheckDigit', () => {
  it('computes known check digits', () => {
    expect(nhsNumberCheckDigit('943476591')).toBe(9); // 9434765919
    expect(nhsNumberCheckDigit('401023213')).toBe(7); // 4010232137: sum 92, 92 mod 11 = 4, 11 − 4 = 7
    expect(nhsNumberCheckDigit('999000001')).toBe(8); // sum 245, mod 11 = 3
  });

  it('maps 11 to 0', () => {
    // 9·10 + 9·9 + 9·8 + 5·2 = 253 = 11·23 → 11 − 0 = 11 → 0
    expect(nhsNumberCheckDigit('999000005')).toBe(0);
  });

  it('returns undefined when the check digit would be 10', () => {
    // 999123456: sum 320, 320 mod 11 = 1 → 10, so no 999 123 456x is valid
    expect(nhsNumberCheckDigit('999123456')).toBeUndefined();
    expect(nhsNumberCheckDigit('999000000')).toBeUndefined(); // sum 243, mod 11 = 1
  });

  it('returns undefined for input that is not 9 digits', () => {
    expect(nhsNumberCheckDigit('94347659')).toBeUndefined();
    expect(nhsNumberCheckDigit('9434765919')).toBeUndefined();
    expect(nhsNumberCheckDigit('94347659x')).toBeUndefined();
    expect(nhsNumberCheckDigit('')).toBeUndefined();
  });

  it('agrees with the oracle for every base', () => {
    fc.assert(
      fc.property(nineDigits, (base) => {
        const check = nhsNumberCheckDigit(base);
        const valid = [...'0123456789'].filter((d) => oracleValid(base + d));
        expect(valid).toEqual(check === undefined ? [] : [String(check)]);
      }),
    );
  });
});

describe('isValidNhsNumber', () => {
  it.each(['9434765919', '4010232137', '9990000018', '9990000050', '943 476 5919', '943-476-5919', ' 9434765919 '])(
    '%s is valid',
    (n) => expect(isValidNhsNumber(n)).toBe(true),
  );

  it.each([
    '9434765918',
    '4010232138',
    '9991234567',
    '9991234568',
    '943476591',
    '94347659190',
    '943476591X',
    '',
    'abc',
  ])('%s is not valid', (n) => expect(isValidNhsNumber(n)).toBe(false));

  it('agrees with the independent oracle on random 10-digit strings', () => {
    fc.assert(
      fc.property(tenDigits, (s) => {
        expect(isValidNhsNumber(s)).toBe(oracleValid(s));
      }),
      { numRuns: 2000 },
    );
  });

  it('detects every single-digit change to a valid number', () => {
    fc.assert(
      fc.property(validNhs, fc.integer({ min: 0, max: 9 }), fc.integer({ min: 1, max: 9 }), (nhs, pos, delta) => {
        const digit = (Number(nhs[pos]) + delta) % 10;
        const changed = nhs.slice(0, pos) + String(digit) + nhs.slice(pos + 1);
        expect(changed).not.toBe(nhs);
        expect(isValidNhsNumber(changed)).toBe(false);
      }),
      { numRuns: 2000 },
    );
  });

  it('detects swapping two different adjacent digits', () => {
    fc.assert(
      fc.property(validNhs, fc.integer({ min: 0, max: 8 }), (nhs, pos) => {
        fc.pre(nhs[pos] !== nhs[pos + 1]);
        const swapped = nhs.slice(0, pos) + nhs[pos + 1] + nhs[pos] + nhs.slice(pos + 2);
        expect(isValidNhsNumber(swapped)).toBe(false);
      }),
    );
  });
});

describe('normaliseNhsNumber', () => {
  it('strips spaces and hyphens only', () => {
    expect(normaliseNhsNumber('943 476 5919')).toBe('9434765919');
    expect(normaliseNhsNumber('943-476-5919')).toBe('9434765919');
    expect(normaliseNhsNumber(' 943\t476 - 5919 ')).toBe('9434765919');
    expect(normaliseNhsNumber('943.476.5919')).toBe('943.476.5919');
  });
});

describe('formatNhsNumber', () => {
  it('groups 3-3-4', () => {
    expect(formatNhsNumber('9434765919')).toBe('943 476 5919');
    expect(formatNhsNumber('943-476-5919')).toBe('943 476 5919');
    expect(formatNhsNumber('94 34 76 59 19')).toBe('943 476 5919');
  });

  it('returns input that is not 10 digits unchanged', () => {
    expect(formatNhsNumber('943476591')).toBe('943476591');
    expect(formatNhsNumber('not a number')).toBe('not a number');
  });

  it('round-trips through normaliseNhsNumber and is idempotent', () => {
    fc.assert(
      fc.property(tenDigits, (s) => {
        const formatted = formatNhsNumber(s);
        expect(formatted).toMatch(/^\d{3} \d{3} \d{4}$/);
        expect(normaliseNhsNumber(formatted)).toBe(s);
        expect(formatNhsNumber(formatted)).toBe(formatted);
        expect(isValidNhsNumber(formatted)).toBe(isValidNhsNumber(s));
      }),
    );
  });
});

describe('nhsNumberProblem', () => {
  it('asks for an NHS number when empty', () => {
    expect(nhsNumberProblem('')).toBe('Enter the NHS number');
    expect(nhsNumberProblem('  - ')).toBe('Enter the NHS number');
  });

  it('rejects letters and other characters', () => {
    expect(nhsNumberProblem('943476591X')).toBe('NHS number must only include numbers 0 to 9, spaces and hyphens');
  });

  it('says how many digits were entered when the length is wrong', () => {
    expect(nhsNumberProblem('943 476 591')).toBe('NHS number must be 10 digits – you entered 9');
    expect(nhsNumberProblem('94347659190')).toBe('NHS number must be 10 digits – you entered 11');
  });

  it('names the formatted number when the check digit fails', () => {
    expect(nhsNumberProblem('9991234568')).toBe(
      'Enter a valid NHS number – 999 123 4568 fails the check digit test, so a digit may be mistyped',
    );
    expect(nhsNumberProblem('943-476-5918')).toContain('943 476 5918');
  });

  it('is undefined for valid numbers in any accepted layout', () => {
    expect(nhsNumberProblem('9434765919')).toBeUndefined();
    expect(nhsNumberProblem('943 476 5919')).toBeUndefined();
    expect(nhsNumberProblem('943-476-5919')).toBeUndefined();
  });

  it('is undefined exactly when the number is valid', () => {
    const input = fc.oneof(tenDigits, validNhs, fc.string({ maxLength: 14 }));
    fc.assert(
      fc.property(input, (s) => {
        const problem = nhsNumberProblem(s);
        expect(problem === undefined).toBe(isValidNhsNumber(s));
        if (problem !== undefined) expect(problem.length).toBeGreaterThan(0);
      }),
      { numRuns: 1000 },
    );
  });
});

describe('testRangeNhsNumbers', () => {
  it('starts with the first valid 999 numbers', () => {
    const gen = testRangeNhsNumbers();
    const first = Array.from({ length: 3 }, () => {
      const r = gen.next();
      return r.done ? undefined : r.value;
    });
    // base 999000000 has check digit 10, so it is skipped
    expect(first).toEqual(['9990000018', '9990000026', '9990000034']);
  });

  it('yields at least 500,000 distinct, ascending, valid numbers in the 999 range', () => {
    const seen: string[] = [];
    for (const n of testRangeNhsNumbers()) {
      seen.push(n);
      if (seen.length === 500_000) break;
    }
    expect(seen).toHaveLength(500_000);
    for (let i = 0; i < seen.length; i++) {
      const n = seen[i]!;
      if (!/^999\d{7}$/.test(n) || !oracleValid(n)) throw new Error(`not a valid test-range number: ${n}`);
      if (i > 0 && !(n > seen[i - 1]!)) throw new Error(`not ascending at ${i}: ${seen[i - 1]} then ${n}`);
    }
  });

  it('yields exactly the valid numbers of the whole range, skipping only bases with check digit 10', () => {
    let count = 0;
    let last = '';
    for (const n of testRangeNhsNumbers()) {
      count++;
      last = n;
    }
    let expected = 0;
    for (let base = 999_000_000; base <= 999_999_999; base++) {
      let sum = 0;
      const s = String(base);
      for (let i = 0; i < 9; i++) sum += Number(s[i]) * (10 - i);
      if (sum % 11 !== 1) expected++;
    }
    expect(count).toBe(expected);
    expect(count).toBeGreaterThan(900_000);
    expect(last.startsWith('999999')).toBe(true);
  });

  it('is deterministic and honours start as an offset into the bases', () => {
    const take = (gen: Generator<string>, k: number): string[] => {
      const out: string[] = [];
      for (const n of gen) {
        out.push(n);
        if (out.length === k) break;
      }
      return out;
    };
    expect(take(testRangeNhsNumbers(), 50)).toEqual(take(testRangeNhsNumbers(0), 50));
    const from = take(testRangeNhsNumbers(500_000), 20);
    expect(from[0]! >= '9995000000').toBe(true);
    expect(from[0]!.slice(0, 9) <= '999500001').toBe(true);
    expect(from.every(isValidNhsNumber)).toBe(true);
    expect(take(testRangeNhsNumbers(1_000_000), 1)).toEqual([]);
    // 999999999: 9 × (10 + 9 + … + 2) = 486, 486 mod 11 = 2 → check digit 9; the last number in the range
    expect(take(testRangeNhsNumbers(999_999), 5)).toEqual(['9999999999']);
  });

  it('rejects a negative or fractional start', () => {
    expect(() => testRangeNhsNumbers(-1).next()).toThrow(RangeError);
    expect(() => testRangeNhsNumbers(1.5).next()).toThrow(RangeError);
  });
});
