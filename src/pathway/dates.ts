/**
 * Calendar dates as ISO 'YYYY-MM-DD' strings. All arithmetic is on the proleptic
 * Gregorian calendar with plain integers, so no time zone or JS Date can shift a
 * day. Functions taking an IsoDate throw a RangeError if it is not a real date.
 */

export type IsoDate = string;

interface Ymd {
  y: number;
  m: number; // 1..12
  d: number; // 1..31
}

const ISO_DATE = /^(\d{4})-(\d{2})-(\d{2})$/;

export function isLeapYear(y: number): boolean {
  return (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
}

export function daysInMonth(y: number, m: number): number {
  if (m === 2) return isLeapYear(y) ? 29 : 28;
  return [4, 6, 9, 11].includes(m) ? 30 : 31;
}

function tryParse(s: string): Ymd | undefined {
  const match = ISO_DATE.exec(s);
  if (!match) return undefined;
  const [y, m, d] = [Number(match[1]), Number(match[2]), Number(match[3])];
  if (m < 1 || m > 12 || d < 1 || d > daysInMonth(y, m)) return undefined;
  return { y, m, d };
}

/** True for a real calendar date in 'YYYY-MM-DD' form: '2024-02-29' is, '2023-02-29' is not. */
export function isIsoDate(s: unknown): s is IsoDate {
  return typeof s === 'string' && tryParse(s) !== undefined;
}

function parse(s: IsoDate): Ymd {
  const ymd = tryParse(s);
  if (!ymd) throw new RangeError(`Not a calendar date in YYYY-MM-DD form: ${JSON.stringify(s)}`);
  return ymd;
}

function format({ y, m, d }: Ymd): IsoDate {
  if (y < 0 || y > 9999) throw new RangeError(`Year ${y} is outside 0000 to 9999`);
  return `${String(y).padStart(4, '0')}-${String(m).padStart(2, '0')}-${String(d).padStart(2, '0')}`;
}

function wholeNumber(n: number, name: string): number {
  if (!Number.isSafeInteger(n)) throw new RangeError(`${name} must be a whole number, got ${n}`);
  return n;
}

/** Days since 1970-01-01 (Howard Hinnant's days_from_civil). */
function toDayNumber({ y, m, d }: Ymd): number {
  const yy = m <= 2 ? y - 1 : y;
  const era = Math.floor(yy / 400);
  const yoe = yy - era * 400;
  const doy = Math.floor((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5) + d - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}

/** Inverse of toDayNumber (Howard Hinnant's civil_from_days). */
function fromDayNumber(z: number): Ymd {
  const zz = z + 719468;
  const era = Math.floor(zz / 146097);
  const doe = zz - era * 146097;
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36524) - Math.floor(doe / 146096)) / 365);
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const d = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const m = mp < 10 ? mp + 3 : mp - 9;
  return { y: yoe + era * 400 + (m <= 2 ? 1 : 0), m, d };
}

/** Adds n calendar months, clamping to the end of a shorter month: 2024-01-31 + 1 → 2024-02-29. */
export function addMonths(date: IsoDate, n: number): IsoDate {
  const { y, m, d } = parse(date);
  const months = y * 12 + (m - 1) + wholeNumber(n, 'Months');
  const ny = Math.floor(months / 12);
  const nm = months - ny * 12 + 1;
  return format({ y: ny, m: nm, d: Math.min(d, daysInMonth(ny, nm)) });
}

/** Adds n years with the same clamp as addMonths: 2024-02-29 + 1 → 2025-02-28 (unlike nthBirthday). */
export function addYears(date: IsoDate, n: number): IsoDate {
  return addMonths(date, wholeNumber(n, 'Years') * 12);
}

export function addDays(date: IsoDate, n: number): IsoDate {
  return format(fromDayNumber(toDayNumber(parse(date)) + wholeNumber(n, 'Days')));
}

/** b − a in days: daysBetween('2024-02-28', '2024-03-01') === 2. */
export function daysBetween(a: IsoDate, b: IsoDate): number {
  return toDayNumber(parse(b)) - toDayNumber(parse(a));
}

/** −1, 0 or 1, for sorting. */
export function compareIsoDate(a: IsoDate, b: IsoDate): -1 | 0 | 1 {
  const diff = daysBetween(b, a);
  return diff < 0 ? -1 : diff > 0 ? 1 : 0;
}

/**
 * The date a person born on dob attains age n.
 *
 * Someone born on 29 February attains an age on 1 March in a common year. This is
 * the legal convention in England and Wales (a person attains an age at the start
 * of the anniversary of their birth; with no 29 February that is 1 March), and
 * NBSS / BS-Select derive age the same way. So 2000-02-29 → 50th birthday 2050-03-01.
 */
export function nthBirthday(dob: IsoDate, n: number): IsoDate {
  const { y, m, d } = parse(dob);
  if (wholeNumber(n, 'Age') < 0) throw new RangeError(`Age must not be negative, got ${n}`);
  const year = y + n;
  if (m === 2 && d === 29 && !isLeapYear(year)) return format({ y: year, m: 3, d: 1 });
  return format({ y: year, m, d });
}

/** Age in whole years on a date; it goes up by one exactly on each nthBirthday. Throws a RangeError if on is before dob. */
export function ageOn(dob: IsoDate, on: IsoDate): number {
  const birth = parse(dob);
  const day = parse(on);
  if (compareIsoDate(on, dob) < 0) throw new RangeError(`${on} is before the date of birth ${dob}`);
  const years = day.y - birth.y;
  return compareIsoDate(on, nthBirthday(dob, years)) < 0 ? years - 1 : years;
}

const LONDON = new Intl.DateTimeFormat('en-GB', {
  timeZone: 'Europe/London',
  year: 'numeric',
  month: '2-digit',
  day: '2-digit',
});

/** The calendar date in England at an instant: 2024-05-31T23:30Z (00:30 BST) → '2024-06-01'. */
export function isoDateInLondon(instant: Date): IsoDate {
  if (Number.isNaN(instant.getTime())) throw new RangeError('Invalid Date');
  const parts = LONDON.formatToParts(instant);
  const part = (type: Intl.DateTimeFormatPartTypes): number => Number(parts.find((p) => p.type === type)?.value);
  return format({ y: part('year'), m: part('month'), d: part('day') });
}

export const MONTH_NAMES = [
  'January',
  'February',
  'March',
  'April',
  'May',
  'June',
  'July',
  'August',
  'September',
  'October',
  'November',
  'December',
];

/** NHS style date for display: '2050-03-01' → '1 March 2050'. */
export function formatLongDate(date: IsoDate): string {
  const { y, m, d } = parse(date);
  return `${d} ${MONTH_NAMES[m - 1]} ${y}`;
}

/** A length of time as people say it: "45 seconds", "12 minutes", "3 hours 20 minutes", "2 days 4 hours". */
export function duration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  const plural = (n: number, unit: string) => `${n} ${unit}${n === 1 ? '' : 's'}`;
  if (s < 60) return plural(s, 'second');
  const minutes = Math.round(s / 60);
  if (minutes < 60) return plural(minutes, 'minute');
  const hours = Math.floor(minutes / 60);
  if (hours < 24) return `${plural(hours, 'hour')}${minutes % 60 ? ` ${plural(minutes % 60, 'minute')}` : ''}`;
  const days = Math.floor(hours / 24);
  return `${plural(days, 'day')}${hours % 24 ? ` ${plural(hours % 24, 'hour')}` : ''}`;
}
