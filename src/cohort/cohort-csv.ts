/**
 * The BS-Select style cohort feed in CSV: reading RFC 4180 records incrementally and checking each row.
 *
 * Pure: no I/O. Text goes in by `push(chunk)` (any chunk size, a record may span chunks) and `end()`; rows come out
 * parsed or rejected with their line number and a reason. A bad row is rejected on its own and never stops or
 * shifts the rows after it. The format is documented in README.md ("Cohort feed (CSV)").
 *
 * Checks that need the database (is the GP practice known?) are made at import (src/store/cohort-import.ts).
 */
import { isIsoDate, type IsoDate } from '../pathway/dates.js';
import { formatNhsNumber, normaliseNhsNumber, nhsNumberProblem } from '../pathway/nhs-number.js';
import { PROBE_NHS_NUMBER } from '../protocol/probe.js';

export const COHORT_COLUMNS = [
  'nhs_number',
  'family_name',
  'given_name',
  'date_of_birth',
  'date_of_death',
  'sex',
  'address_line1',
  'address_line2',
  'town',
  'postcode',
  'gp_practice_code',
  'effective_date',
] as const;
export type CohortColumn = (typeof COHORT_COLUMNS)[number];

export const SEXES = ['female', 'male', 'other', 'unknown'] as const;
export type Sex = (typeof SEXES)[number];

/** One person as BS-Select knows them on `effectiveDate`: the whole state, so an empty optional field means none. */
export interface CohortRow {
  nhsNumber: string;
  familyName: string;
  givenName: string;
  dateOfBirth: IsoDate;
  dateOfDeath: IsoDate | null;
  sex: Sex;
  addressLine1: string;
  addressLine2: string | null;
  town: string | null;
  /** Upper case, one space before the inward code: 'LS6 2AB'. */
  postcode: string;
  gpPracticeCode: string;
  effectiveDate: IsoDate;
}

export interface CohortRejection {
  /** The line in the file where the record starts (the header is line 1; for FHIR, where the resource starts). */
  line: number;
  /** In a FHIR Bundle: the entry's index, counted from 0 as in FHIRPath (Bundle.entry[0]). */
  entry?: number;
  /** The NHS number as written, when the record got that far; '' otherwise. */
  nhsNumber: string;
  reason: string;
}

export type CohortResult =
  { ok: true; line: number; entry?: number; row: CohortRow } | ({ ok: false } & CohortRejection);

/**
 * Reads a cohort feed incrementally, whatever its format: text in by push (any chunk size), then end; rows or
 * rejections out in file order. Throws CohortFormatError when the input as a whole is not a feed of its format.
 */
export interface CohortParser {
  push(text: string): CohortResult[];
  end(): CohortResult[];
}

/** The file as a whole cannot be read as a cohort feed (a wrong or missing header). */
export class CohortFormatError extends Error {}

export const NAME_MAX = 100; // participant.given_name / family_name check (1..100)
export const ADDRESS_MAX = 200;
/** A record longer than this is not a cohort row: most likely a quote that was never closed. */
export const RECORD_MAX = 16_384;
const EARLIEST_BIRTH = '1900-01-01';
const POSTCODE = /^[A-Z]{1,2}[0-9][A-Z0-9]?[0-9][A-Z]{2}$/;
const ODS_CODE = /^[A-Z][0-9A-Z]{4,5}$/;

// ---------------------------------------------------------------------------------------------------------------
// RFC 4180 records.

export interface CsvRecord {
  line: number;
  fields: string[];
  /** Set when the record is not well-formed CSV; fields are then unreliable. */
  error?: string;
}

type Scan = { kind: 'record'; fields: string[]; end: number; newlines: number; error?: string } | { kind: 'more' };

/**
 * Splits text into CSV records (comma separated, fields in double quotes may hold commas, doubled quotes and line
 * breaks; records end with CRLF, LF or CR). A leading UTF-8 byte order mark is dropped. A quoted field that is not
 * closed within RECORD_MAX characters, or by the end of the text, makes its record a rejection and reading goes on
 * from the next line.
 */
export class CsvReader {
  private buffer = '';
  private line = 1;
  private started = false;

  push(text: string): CsvRecord[] {
    if (!this.started) {
      this.started = true;
      if (text.startsWith('\uFEFF')) text = text.slice(1);
    }
    this.buffer += text;
    return this.drain(false);
  }

  end(): CsvRecord[] {
    this.started = true;
    return this.drain(true);
  }

  private drain(final: boolean): CsvRecord[] {
    const records: CsvRecord[] = [];
    let pos = 0;
    const buf = this.buffer;
    while (pos < buf.length) {
      const scan = scanRecord(buf, pos, final);
      if (scan.kind === 'more') {
        if (buf.length - pos <= RECORD_MAX && !final) break;
        // An unclosed quote: reject the record's first line and read on from the line after it.
        const next = nextLineStart(buf, pos);
        records.push({
          line: this.line,
          fields: [],
          error: `a quoted field is not closed (or the record is longer than ${RECORD_MAX} characters)`,
        });
        this.line++;
        pos = next;
        continue;
      }
      const record: CsvRecord = { line: this.line, fields: scan.fields };
      if (scan.error) record.error = scan.error;
      if (!(scan.fields.length === 1 && scan.fields[0] === '' && !scan.error)) records.push(record);
      this.line += 1 + scan.newlines;
      pos = scan.end;
    }
    this.buffer = buf.slice(pos);
    return records;
  }
}

function nextLineStart(buf: string, pos: number): number {
  for (let i = pos; i < buf.length; i++) {
    const c = buf.charCodeAt(i);
    if (c === LF) return i + 1;
    if (c === CR) return buf.charCodeAt(i + 1) === LF ? i + 2 : i + 1;
  }
  return buf.length;
}

const QUOTE = 34;
const COMMA = 44;
const LF = 10;
const CR = 13;

/** One record from `pos`, or 'more' when the text ends inside it and more may come. */
function scanRecord(buf: string, pos: number, final: boolean): Scan {
  const fields: string[] = [];
  let i = pos;
  let newlines = 0;
  let error: string | undefined;
  for (;;) {
    let value: string;
    if (buf.charCodeAt(i) === QUOTE) {
      value = '';
      i++;
      for (;;) {
        const close = buf.indexOf('"', i);
        if (close < 0 || close - pos > RECORD_MAX) return { kind: 'more' };
        const part = buf.slice(i, close);
        value += part;
        for (let k = 0; k < part.length; k++) {
          const c = part.charCodeAt(k);
          if (c === LF || (c === CR && part.charCodeAt(k + 1) !== LF)) newlines++;
        }
        if (close + 1 >= buf.length && !final) return { kind: 'more' };
        if (buf.charCodeAt(close + 1) === QUOTE) {
          value += '"';
          i = close + 2;
          continue;
        }
        i = close + 1;
        break;
      }
      const c = buf.charCodeAt(i);
      if (i < buf.length && c !== COMMA && c !== LF && c !== CR) {
        error ??= 'text after a closing quote mark (quote the whole field and double any quote inside it)';
        while (i < buf.length && buf.charCodeAt(i) !== COMMA && buf.charCodeAt(i) !== LF && buf.charCodeAt(i) !== CR)
          i++;
      }
    } else {
      const start = i;
      while (i < buf.length) {
        const c = buf.charCodeAt(i);
        if (c === COMMA || c === LF || c === CR) break;
        if (c === QUOTE) error ??= 'a quote mark inside a field that does not start with one (quote the whole field)';
        i++;
      }
      if (i >= buf.length && !final) return { kind: 'more' };
      value = buf.slice(start, i);
    }
    fields.push(value);
    if (i >= buf.length) return { kind: 'record', fields, end: i, newlines, ...(error ? { error } : {}) };
    const c = buf.charCodeAt(i);
    if (c === COMMA) {
      i++;
      continue;
    }
    if (c === CR) {
      if (i + 1 >= buf.length && !final) return { kind: 'more' };
      i += buf.charCodeAt(i + 1) === LF ? 2 : 1;
    } else {
      i++;
    }
    return { kind: 'record', fields, end: i, newlines, ...(error ? { error } : {}) };
  }
}

/** One CSV field, quoted when it has to be (comma, quote, line break, or leading/trailing space). */
export function csvField(value: string | number | null | undefined): string {
  const text = value === null || value === undefined ? '' : String(value);
  return /[",\r\n]|^\s|\s$/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

/** One CSV line, CRLF ended as RFC 4180 says. */
export function csvLine(values: readonly (string | number | null | undefined)[]): string {
  return values.map(csvField).join(',') + '\r\n';
}

// ---------------------------------------------------------------------------------------------------------------
// Cohort rows.

/** The header line for a cohort file. */
export const COHORT_HEADER = csvLine(COHORT_COLUMNS);

/** A row as a CSV line in COHORT_COLUMNS order (for tests, the bench and anyone making a file). */
export function cohortCsvLine(row: CohortRow): string {
  return csvLine([
    row.nhsNumber,
    row.familyName,
    row.givenName,
    row.dateOfBirth,
    row.dateOfDeath,
    row.sex,
    row.addressLine1,
    row.addressLine2,
    row.town,
    row.postcode,
    row.gpPracticeCode,
    row.effectiveDate,
  ]);
}

/** Reads a cohort file incrementally: the first record is the header, every later one a row or a rejection. */
export class CohortCsvParser implements CohortParser {
  private readonly reader = new CsvReader();
  private columns: Map<CohortColumn, number> | undefined;
  private width = 0;

  /** `today` bounds every date (nothing may be in the future). */
  constructor(private readonly today: IsoDate) {}

  /** Throws CohortFormatError if the header is wrong. */
  push(text: string): CohortResult[] {
    return this.records(this.reader.push(text));
  }

  end(): CohortResult[] {
    const results = this.records(this.reader.end());
    if (!this.columns) throw new CohortFormatError('The file is empty: a cohort file starts with a header line');
    return results;
  }

  private records(records: CsvRecord[]): CohortResult[] {
    const results: CohortResult[] = [];
    for (const record of records) {
      if (!this.columns) {
        this.columns = readHeader(record);
        this.width = record.fields.length;
        continue;
      }
      const nhsNumber = record.fields[this.columns.get('nhs_number')!]?.trim() ?? '';
      if (record.error) {
        results.push({ ok: false, line: record.line, nhsNumber, reason: record.error });
        continue;
      }
      if (record.fields.length !== this.width) {
        results.push({
          ok: false,
          line: record.line,
          nhsNumber,
          reason: `the row has ${record.fields.length} fields where the header has ${this.width}`,
        });
        continue;
      }
      const columns = this.columns;
      results.push(checkRow(record.line, (c) => (record.fields[columns.get(c)!] ?? '').trim(), this.today));
    }
    return results;
  }
}

function readHeader(record: CsvRecord): Map<CohortColumn, number> {
  if (record.error) throw new CohortFormatError(`The header line cannot be read: ${record.error}`);
  const columns = new Map<CohortColumn, number>();
  record.fields.forEach((name, i) => {
    const column = name.trim().toLowerCase() as CohortColumn;
    if (!COHORT_COLUMNS.includes(column))
      throw new CohortFormatError(
        `The header has an unknown column "${name}": the columns are ${COHORT_COLUMNS.join(', ')}`,
      );
    if (columns.has(column)) throw new CohortFormatError(`The header has the column ${column} twice`);
    columns.set(column, i);
  });
  const missing = COHORT_COLUMNS.filter((c) => !columns.has(c));
  if (missing.length) throw new CohortFormatError(`The header lacks the column(s) ${missing.join(', ')}`);
  return columns;
}

/** What a format calls each field in its reasons: the CSV column names, or FHIR paths (src/cohort/cohort-fhir.ts). */
export type CohortFieldNames = Readonly<Record<CohortColumn, string>>;
export const CSV_FIELD_NAMES: CohortFieldNames = Object.fromEntries(COHORT_COLUMNS.map((c) => [c, c])) as Record<
  CohortColumn,
  string
>;

export type CohortFieldCheck = { ok: true; row: CohortRow } | { ok: false; nhsNumber: string; reason: string };

export interface CohortFieldOptions {
  /** How reasons name the fields (default: the CSV column names). */
  names?: CohortFieldNames;
  /**
   * Problems the format's reader found already (a FHIR element of the wrong type, say): they come first in the
   * reason, and the field's own checks are skipped so the same problem is not named twice.
   */
  problems?: Partial<Record<CohortColumn, string>>;
}

/**
 * The one check of a cohort row, whatever the format: each field as text (already trimmed, '' for none) in, the
 * row or every problem (separated by '; ') out. `today` bounds every date.
 */
export function validateCohortFields(
  raw: Readonly<Record<CohortColumn, string>>,
  today: IsoDate,
  options: CohortFieldOptions = {},
): CohortFieldCheck {
  const names = options.names ?? CSV_FIELD_NAMES;
  const known = options.problems ?? {};
  const problems: string[] = [...new Set(COHORT_COLUMNS.flatMap((c) => (known[c] ? [known[c]] : [])))];
  const problem = (column: CohortColumn, text: string) => {
    if (!known[column]) problems.push(text);
  };
  const field = (column: CohortColumn) => (known[column] ? '' : raw[column]);
  const rawNhs = raw.nhs_number;
  const nhsProblem = nhsNumberProblem(rawNhs);
  if (nhsProblem) problem('nhs_number', `${names.nhs_number}: ${nhsProblem}`);
  else if (normaliseNhsNumber(rawNhs) === PROBE_NHS_NUMBER)
    problem('nhs_number', `${names.nhs_number}: ${formatNhsNumber(PROBE_NHS_NUMBER)} is kept for the hub's test probe`);

  const name = (column: 'family_name' | 'given_name') => {
    const value = field(column);
    if (!value) problem(column, `${names[column]} is missing`);
    else if ([...value].length > NAME_MAX) problem(column, `${names[column]} is longer than ${NAME_MAX} characters`);
    return value;
  };
  const familyName = name('family_name');
  const givenName = name('given_name');

  const date = (column: 'date_of_birth' | 'date_of_death' | 'effective_date', required: boolean) => {
    const value = field(column);
    if (!value) {
      if (required) problem(column, `${names[column]} is missing`);
      return null;
    }
    if (!isIsoDate(value)) {
      problem(column, `${names[column]} "${raw[column]}" is not a real date in the form YYYY-MM-DD`);
      return null;
    }
    if (value > today) {
      problem(column, `${names[column]} ${value} is in the future`);
      return null;
    }
    return value;
  };
  const dateOfBirth = date('date_of_birth', true);
  const dateOfDeath = date('date_of_death', false);
  const effectiveDate = date('effective_date', true);
  if (dateOfBirth && dateOfBirth < EARLIEST_BIRTH)
    problems.push(`${names.date_of_birth} ${dateOfBirth} is before 1900`);
  if (dateOfBirth && dateOfDeath && dateOfDeath < dateOfBirth)
    problems.push(`${names.date_of_death} ${dateOfDeath} is before ${names.date_of_birth} ${dateOfBirth}`);
  if (dateOfBirth && effectiveDate && effectiveDate < dateOfBirth)
    problems.push(`${names.effective_date} ${effectiveDate} is before ${names.date_of_birth} ${dateOfBirth}`);
  if (dateOfDeath && effectiveDate && dateOfDeath > effectiveDate)
    problems.push(`${names.date_of_death} ${dateOfDeath} is after ${names.effective_date} ${effectiveDate}`);

  const sexText = field('sex').toLowerCase();
  if (!SEXES.includes(sexText as Sex))
    problem(
      'sex',
      sexText ? `${names.sex} "${field('sex')}" is not one of ${SEXES.join(', ')}` : `${names.sex} is missing`,
    );

  const address = (column: 'address_line1' | 'address_line2' | 'town', required: boolean) => {
    const value = field(column);
    if (!value && required) problem(column, `${names[column]} is missing`);
    if ([...value].length > ADDRESS_MAX) problem(column, `${names[column]} is longer than ${ADDRESS_MAX} characters`);
    return value || null;
  };
  const addressLine1 = address('address_line1', true);
  const addressLine2 = address('address_line2', false);
  const town = address('town', false);

  const rawPostcode = field('postcode');
  const postcodeKey = rawPostcode.replace(/\s+/g, '').toUpperCase();
  if (!rawPostcode) problem('postcode', `${names.postcode} is missing`);
  else if (!POSTCODE.test(postcodeKey)) problem('postcode', `${names.postcode} "${rawPostcode}" is not a UK postcode`);

  const gpPracticeCode = field('gp_practice_code').toUpperCase();
  if (!gpPracticeCode) problem('gp_practice_code', `${names.gp_practice_code} is missing`);
  else if (!ODS_CODE.test(gpPracticeCode))
    problem(
      'gp_practice_code',
      `${names.gp_practice_code} "${field('gp_practice_code')}" is not a GP practice code (like B86001)`,
    );

  if (problems.length > 0) return { ok: false, nhsNumber: rawNhs, reason: problems.join('; ') };
  return {
    ok: true,
    row: {
      nhsNumber: normaliseNhsNumber(rawNhs),
      familyName,
      givenName,
      dateOfBirth: dateOfBirth!,
      dateOfDeath,
      sex: sexText as Sex,
      addressLine1: addressLine1!,
      addressLine2,
      town,
      postcode: `${postcodeKey.slice(0, -3)} ${postcodeKey.slice(-3)}`,
      gpPracticeCode,
      effectiveDate: effectiveDate!,
    },
  };
}

/** Checks one CSV row's fields (already trimmed) with validateCohortFields. */
export function checkRow(line: number, field: (column: CohortColumn) => string, today: IsoDate): CohortResult {
  const raw = Object.fromEntries(COHORT_COLUMNS.map((c) => [c, field(c)])) as Record<CohortColumn, string>;
  const check = validateCohortFields(raw, today);
  return check.ok
    ? { ok: true, line, row: check.row }
    : { ok: false, line, nhsNumber: check.nhsNumber, reason: check.reason };
}

/** A whole cohort file in one string (tests, small files): the results in file order. */
export function parseCohortCsv(text: string, today: IsoDate): CohortResult[] {
  const parser = new CohortCsvParser(today);
  return [...parser.push(text), ...parser.end()];
}
