/**
 * NHS number helpers: normalising, modulus 11 check digit, validation, display.
 *
 * An NHS number is 10 digits. The 10th digit is a check digit computed from the
 * first 9 with modulus 11: multiply the digits by the weights 10, 9, ..., 2, sum,
 * take the remainder on division by 11 and subtract it from 11. A result of 11
 * means a check digit of 0; a result of 10 means the 9 digits can never form a
 * valid NHS number.
 *
 * Numbers starting 999 are reserved for testing and are never issued to patients.
 */

const FIRST9 = /^\d{9}$/;
const TEN_DIGITS = /^\d{10}$/;

/** Strips whitespace (spaces, tabs, non-breaking spaces) and hyphens: '943-476 5919' → '9434765919'. */
export function normaliseNhsNumber(input: string): string {
  return input.replace(/[\s-]/g, '');
}

/** Modulus 11 check digit for the first 9 digits, or undefined if there is none (remainder 10) or the input is not 9 digits. */
export function nhsNumberCheckDigit(first9: string): number | undefined {
  if (!FIRST9.test(first9)) return undefined;
  let sum = 0;
  for (let i = 0; i < 9; i++) sum += Number(first9[i]) * (10 - i);
  const check = 11 - (sum % 11);
  if (check === 11) return 0;
  if (check === 10) return undefined;
  return check;
}

/** True when the input, after normalising, is exactly 10 digits with a matching check digit. */
export function isValidNhsNumber(input: string): boolean {
  const nhs = normaliseNhsNumber(input);
  return TEN_DIGITS.test(nhs) && nhsNumberCheckDigit(nhs.slice(0, 9)) === Number(nhs[9]);
}

/**
 * A message for the user explaining what is wrong (NHS design system error
 * message style), or undefined when the NHS number is valid.
 */
export function nhsNumberProblem(input: string): string | undefined {
  const nhs = normaliseNhsNumber(input);
  if (nhs === '') return 'Enter the NHS number';
  if (!/^\d+$/.test(nhs)) return 'NHS number must only include numbers 0 to 9, spaces and hyphens';
  if (nhs.length !== 10) return `NHS number must be 10 digits – you entered ${nhs.length}`;
  if (!isValidNhsNumber(nhs)) {
    return `Enter a valid NHS number – ${formatNhsNumber(nhs)} fails the check digit test, so a digit may be mistyped`;
  }
  return undefined;
}

/** Formats as '999 123 4567' (3-3-4). Input that is not 10 digits after normalising is returned unchanged. */
export function formatNhsNumber(nhs: string): string {
  const n = normaliseNhsNumber(nhs);
  if (!TEN_DIGITS.test(n)) return nhs;
  return `${n.slice(0, 3)} ${n.slice(3, 6)} ${n.slice(6)}`;
}

const TEST_RANGE_FIRST_BASE = 999_000_000;
const TEST_RANGE_BASES = 1_000_000;

/**
 * Yields valid NHS numbers in the 999 test range (999 000 0000 to 999 999 9999),
 * in ascending order, skipping the 9-digit bases whose check digit would be 10.
 * About 909,000 numbers in all.
 *
 * `start` is an offset into the 1,000,000 bases: 0 begins at base 999000000,
 * 500000 at base 999500000. Offsets at or past the end yield nothing.
 */
export function* testRangeNhsNumbers(start = 0): Generator<string> {
  if (!Number.isSafeInteger(start) || start < 0) {
    throw new RangeError(`start must be a whole number of 0 or more, got ${start}`);
  }
  for (let offset = start; offset < TEST_RANGE_BASES; offset++) {
    const base = String(TEST_RANGE_FIRST_BASE + offset);
    const check = nhsNumberCheckDigit(base);
    if (check !== undefined) yield base + String(check);
  }
}
