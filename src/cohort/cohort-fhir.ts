/**
 * The BS-Select style cohort feed in FHIR R4: Patient resources (UK Core conventions) read incrementally, each
 * mapped to a CohortRow and checked by the same rules as a CSV row (validateCohortFields in cohort-csv.ts).
 *
 * Two layouts, told apart by the file's first resource:
 * - a **Bundle** (type collection, transaction or batch), one JSON document. It is streamed: each element of
 *   `entry` is cut out and parsed on its own as it arrives, so a Bundle of a million Patients is never held whole.
 *   `resourceType` and `type` must come before `entry` (as FHIR serialisers write them, in element order). Entries
 *   holding another resource type (the Organizations the Patients point at, say) are skipped.
 * - **NDJSON** (FHIR Bulk Data): one Patient a line. A line that is not a Patient is rejected; the lines after it
 *   are read on.
 *
 * Pure: no I/O. The format and the mapping are documented in README.md ("Cohort feed (FHIR R4)").
 */
import { isIsoDate, isoDateInLondon, type IsoDate } from '../pathway/dates.js';
import { normaliseNhsNumber } from '../pathway/nhs-number.js';
import {
  COHORT_COLUMNS,
  CohortFormatError,
  validateCohortFields,
  type CohortColumn,
  type CohortFieldCheck,
  type CohortFieldNames,
  type CohortParser,
  type CohortResult,
  type CohortRow,
} from './cohort-csv.js';

export const NHS_NUMBER_SYSTEM = 'https://fhir.nhs.uk/Id/nhs-number';
export const ODS_CODE_SYSTEM = 'https://fhir.nhs.uk/Id/ods-organization-code';
export const BUNDLE_TYPES = ['collection', 'transaction', 'batch'] as const;
/** An NDJSON line or a Bundle entry longer than this is not a Patient of a cohort feed. */
export const RESOURCE_MAX = 1_000_000;

/** How rejection reasons name each field: the FHIR element it comes from. */
export const FHIR_FIELD_NAMES: CohortFieldNames = {
  nhs_number: 'identifier (NHS number)',
  family_name: 'name.family',
  given_name: 'name.given[0]',
  date_of_birth: 'birthDate',
  date_of_death: 'deceasedDateTime',
  sex: 'gender',
  address_line1: 'address.line[0]',
  address_line2: 'address.line[1]',
  town: 'address.city',
  postcode: 'address.postalCode',
  gp_practice_code: 'generalPractitioner (ODS code)',
  effective_date: 'meta.lastUpdated',
};

type Json = Record<string, unknown>;
const isObject = (value: unknown): value is Json =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** A FHIR instant or dateTime with a time: 2026-01-05T09:30:00Z, 2026-01-05T09:30:00.123+01:00. */
const INSTANT = /^(\d{4}-\d{2}-\d{2})T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/;

/**
 * The date a FHIR date or dateTime stands for: a date as it is, a date and time as the date in London then (the
 * hub's dates are London dates). Undefined when it is neither (partial dates like 2026-06 included).
 */
export function fhirDate(value: string): IsoDate | undefined {
  if (isIsoDate(value)) return value;
  const match = INSTANT.exec(value);
  if (!match || !isIsoDate(match[1])) return undefined;
  const instant = new Date(value);
  if (Number.isNaN(instant.getTime())) return undefined;
  // London's offset only changes on the hour, so the UTC hour decides the date: worked out once per hour seen.
  const hour = instant.toISOString().slice(0, 13);
  let date = LONDON_DATE_BY_UTC_HOUR.get(hour);
  if (date === undefined) {
    if (LONDON_DATE_BY_UTC_HOUR.size >= 10_000) LONDON_DATE_BY_UTC_HOUR.clear();
    date = isoDateInLondon(instant);
    LONDON_DATE_BY_UTC_HOUR.set(hour, date);
  }
  return date;
}
const LONDON_DATE_BY_UTC_HOUR = new Map<string, IsoDate>();

/** The NHS number of a resource as written, for a rejection ('' when there is none to read). */
function nhsNumberOf(resource: Json): string {
  if (!Array.isArray(resource.identifier)) return '';
  const found = resource.identifier.find((i) => isObject(i) && i.system === NHS_NUMBER_SYSTEM) as Json | undefined;
  return typeof found?.value === 'string' ? found.value.trim() : '';
}

/**
 * Maps one Patient resource (already parsed JSON) to a cohort row and checks it: the row, or every problem. The
 * mapping (UK Core):
 * - NHS number: the `identifier` with system https://fhir.nhs.uk/Id/nhs-number (two different ones: rejected);
 * - names: the `name` with use official, else usual, else the first; `family` and `given[0]` (middle names are
 *   not kept: the record has one given name);
 * - `birthDate`; date of death: `deceasedDateTime` (its date in London when it has a time); `deceasedBoolean`
 *   true without a date is rejected (the hub will not invent a date of death), false or absent is alive;
 * - `gender` (female, male, other, unknown);
 * - address: the `address` with use home, else the first: `line[0]`, the other lines joined by ', ', `city`,
 *   `postalCode`;
 * - GP practice: the `generalPractitioner` whose identifier has system https://fhir.nhs.uk/Id/ods-organization-code;
 * - effective date: `meta.lastUpdated`, its date in London (a plain date is taken as it is).
 */
export function checkPatient(resource: unknown, today: IsoDate): CohortFieldCheck {
  if (!isObject(resource)) return { ok: false, nhsNumber: '', reason: 'the resource is not a JSON object' };
  const nhsNumber = nhsNumberOf(resource);
  if (resource.resourceType !== 'Patient') {
    const type = resource.resourceType;
    return {
      ok: false,
      nhsNumber,
      reason:
        typeof type === 'string'
          ? `resourceType is ${type}: a cohort feed holds Patient resources`
          : 'resourceType is missing: a cohort feed holds Patient resources',
    };
  }
  const raw = Object.fromEntries(COHORT_COLUMNS.map((c) => [c, ''])) as Record<CohortColumn, string>;
  const problems: Partial<Record<CohortColumn, string>> = {};
  const list = (path: string, value: unknown, columns: CohortColumn[]): unknown[] => {
    if (value === undefined) return [];
    if (Array.isArray(value)) return value;
    for (const c of columns) problems[c] ??= `${path} is not a list`;
    return [];
  };
  /** A string element into a field ('' when absent), or a problem when it is something else. */
  const text = (column: CohortColumn, path: string, value: unknown) => {
    if (value === undefined || value === null) return;
    if (typeof value === 'string') raw[column] = value.trim();
    else problems[column] ??= `${path} is not a string`;
  };

  // NHS number.
  const nhsIds = list('identifier', resource.identifier, ['nhs_number']).filter(
    (i): i is Json => isObject(i) && i.system === NHS_NUMBER_SYSTEM,
  );
  if (nhsIds.length === 0) problems.nhs_number ??= `identifier: there is no NHS number (system ${NHS_NUMBER_SYSTEM})`;
  else {
    text('nhs_number', 'identifier (NHS number) value', nhsIds[0]!.value);
    const distinct = [
      ...new Set(nhsIds.map((i) => (typeof i.value === 'string' ? normaliseNhsNumber(i.value) : String(i.value)))),
    ];
    if (distinct.length > 1)
      problems.nhs_number ??= `identifier has ${distinct.length} NHS numbers: ${distinct.join(', ')}`;
  }

  // Name.
  const names = list('name', resource.name, ['family_name', 'given_name']).filter(isObject);
  const name = names.find((n) => n.use === 'official') ?? names.find((n) => n.use === 'usual') ?? names[0];
  if (!name) problems.family_name = problems.given_name = 'name is missing';
  else {
    text('family_name', 'name.family', name.family);
    text('given_name', 'name.given[0]', list('name.given', name.given, ['given_name'])[0]);
  }

  // Dates.
  text('date_of_birth', 'birthDate', resource.birthDate);
  if (resource.deceasedDateTime !== undefined) {
    if (typeof resource.deceasedDateTime !== 'string') problems.date_of_death = 'deceasedDateTime is not a string';
    else {
      const written = resource.deceasedDateTime.trim();
      const date = fhirDate(written);
      if (date) raw.date_of_death = date;
      else
        problems.date_of_death = `deceasedDateTime "${written}" is not a full date (YYYY-MM-DD) or a date and time with its time zone`;
    }
  } else if (resource.deceasedBoolean === true) {
    problems.date_of_death =
      'deceasedBoolean is true but there is no deceasedDateTime: a death needs its date (the hub does not guess one)';
  } else if (resource.deceasedBoolean !== undefined && typeof resource.deceasedBoolean !== 'boolean') {
    problems.date_of_death = 'deceasedBoolean is not true or false';
  }
  const meta = resource.meta;
  if (meta !== undefined && !isObject(meta)) problems.effective_date = 'meta is not an object';
  else if (meta?.lastUpdated !== undefined) {
    if (typeof meta.lastUpdated !== 'string') problems.effective_date = 'meta.lastUpdated is not a string';
    else {
      const written = meta.lastUpdated.trim();
      const date = fhirDate(written);
      if (date) raw.effective_date = date;
      else problems.effective_date = `meta.lastUpdated "${written}" is not an instant (like 2026-01-05T09:30:00Z)`;
    }
  }

  text('sex', 'gender', resource.gender);

  // Address.
  const addresses = list('address', resource.address, ['address_line1', 'postcode']).filter(isObject);
  const address = addresses.find((a) => a.use === 'home') ?? addresses[0];
  if (!address) problems.address_line1 = problems.postcode = 'address is missing';
  else {
    const lines = list('address.line', address.line, ['address_line1']);
    if (lines.some((l) => typeof l !== 'string'))
      problems.address_line1 ??= 'address.line holds something not a string';
    else {
      const [first = '', ...rest] = (lines as string[]).map((l) => l.trim());
      raw.address_line1 = first;
      raw.address_line2 = rest.filter(Boolean).join(', ');
    }
    text('town', 'address.city', address.city);
    text('postcode', 'address.postalCode', address.postalCode);
  }

  // GP practice.
  const practices = list('generalPractitioner', resource.generalPractitioner, ['gp_practice_code'])
    .map((g) => (isObject(g) ? g.identifier : undefined))
    .filter((i): i is Json => isObject(i) && i.system === ODS_CODE_SYSTEM);
  if (practices.length === 0)
    problems.gp_practice_code ??= `generalPractitioner: there is no GP practice (an identifier with system ${ODS_CODE_SYSTEM})`;
  else {
    text('gp_practice_code', 'generalPractitioner identifier value', practices[0]!.value);
    const distinct = [...new Set(practices.map((i) => String(i.value).trim().toUpperCase()))];
    if (distinct.length > 1)
      problems.gp_practice_code ??= `generalPractitioner has ${distinct.length} GP practices: ${distinct.join(', ')}`;
  }

  const check = validateCohortFields(raw, today, { names: FHIR_FIELD_NAMES, problems });
  return check.ok ? check : { ...check, nhsNumber };
}

// ---------------------------------------------------------------------------------------------------------------
// Reading the file.

const WHITESPACE = new Set([32, 9, 10, 13]);
const NHS_NUMBER_IN_TEXT =
  /"system"\s*:\s*"https:\/\/fhir\.nhs\.uk\/Id\/nhs-number"\s*,\s*"value"\s*:\s*"([^"]{1,40})"/;
/** The NHS number in text that is not valid JSON, when it can be seen. */
const nhsNumberInText = (text: string) => NHS_NUMBER_IN_TEXT.exec(text)?.[1]?.trim() ?? '';

/**
 * The end of the JSON value starting at `start` (after its last character), or -1 when the text ends first. Only
 * finds the extent (strings, nesting); JSON.parse checks the rest.
 */
function valueEnd(buf: string, start: number): number {
  const first = buf.charCodeAt(start);
  if (first === 34) return stringEnd(buf, start);
  if (first !== 123 && first !== 91) {
    for (let i = start; i < buf.length; i++) {
      const c = buf.charCodeAt(i);
      if (c === 44 || c === 125 || c === 93 || WHITESPACE.has(c)) return i;
    }
    return -1;
  }
  let depth = 0;
  for (let i = start; i < buf.length; i++) {
    const c = buf.charCodeAt(i);
    if (c === 34) {
      const end = stringEnd(buf, i);
      if (end < 0) return -1;
      i = end - 1;
    } else if (c === 123 || c === 91) depth++;
    else if (c === 125 || c === 93) {
      depth--;
      if (depth === 0) return i + 1;
    }
  }
  return -1;
}

function stringEnd(buf: string, start: number): number {
  let from = start + 1;
  for (;;) {
    const quote = buf.indexOf('"', from);
    if (quote < 0) return -1;
    let backslashes = 0;
    for (let k = quote - 1; buf.charCodeAt(k) === 92; k--) backslashes++;
    if (backslashes % 2 === 0) return quote + 1;
    from = quote + 1;
  }
}

class BundleSyntaxError extends CohortFormatError {}
const isBundleType = (type: unknown): boolean => BUNDLE_TYPES.includes(type as (typeof BUNDLE_TYPES)[number]);

type State = 'start' | 'key' | 'colon' | 'value' | 'afterValue' | 'entries' | 'afterEntry' | 'done';

/**
 * Reads a FHIR cohort feed incrementally (see the top of this file): a Bundle or NDJSON, whichever the first
 * resource says. Rejections carry the line where the resource (or Bundle entry) starts, and in a Bundle the entry's
 * index. Throws CohortFormatError when the file is not JSON, or is a Bundle of another type or broken between its
 * entries (nothing after that point can be found reliably).
 */
export class CohortFhirParser implements CohortParser {
  private buf = '';
  private pos = 0;
  private line = 1;
  private started = false;
  private layout: 'undecided' | 'bundle' | 'ndjson' = 'undecided';
  // The Bundle scanner.
  private state: State = 'start';
  private key = '';
  private firstMember = true;
  private bundleType: unknown;
  private entryIndex = 0;
  // NDJSON: skipping the rest of a line that was too long.
  private skipping = false;

  /** `today` bounds every date (nothing may be in the future). */
  constructor(private readonly today: IsoDate) {}

  push(text: string): CohortResult[] {
    if (!this.started && text.length > 0) {
      this.started = true;
      if (text.startsWith('\uFEFF')) text = text.slice(1);
    }
    this.buf += text;
    return this.drain(false);
  }

  end(): CohortResult[] {
    const results = this.drain(true);
    if (this.layout === 'undecided' && this.state === 'start')
      throw new CohortFormatError('The file is empty: a FHIR cohort feed is a Bundle, or NDJSON (one Patient a line)');
    if (this.layout !== 'ndjson' && this.state !== 'done')
      throw new CohortFormatError(`The Bundle ends early, at line ${this.line}: the file is cut short`);
    return results;
  }

  private drain(final: boolean): CohortResult[] {
    const results: CohortResult[] = [];
    if (this.layout !== 'ndjson') {
      try {
        this.scanBundle(final, results);
      } catch (error) {
        if (!(error instanceof BundleSyntaxError) || this.layout !== 'undecided') throw error;
        // Not the start of a Bundle. A first line that is a whole resource, if broken, is a line of NDJSON to reject.
        const first = this.buf.search(/\S/);
        const newline = this.buf.indexOf('\n', first);
        const firstLine = this.buf.slice(first, newline < 0 ? undefined : newline).trim();
        if (!firstLine.startsWith('{') || firstLine === '{' || firstLine.length > RESOURCE_MAX) throw error;
        this.pos = 0;
        this.line = 1;
        if (newline < 0 && !final) {
          this.state = 'start'; // wait for the end of the line, then read it again
          this.bundleType = undefined;
          return results;
        }
        this.layout = 'ndjson';
      }
    }
    if (this.layout === 'ndjson') this.readLines(final, results);
    // Keep only what is not read yet (never while undecided: NDJSON would start again from the top).
    if (this.layout !== 'undecided' && this.pos > 0) {
      this.buf = this.buf.slice(this.pos);
      this.pos = 0;
    }
    return results;
  }

  /** Moves on to `to`, counting the lines passed. */
  private advance(to: number): void {
    for (let i = this.pos; i < to; i++) if (this.buf.charCodeAt(i) === 10) this.line++;
    this.pos = to;
  }

  private skipWhitespace(): boolean {
    let i = this.pos;
    while (i < this.buf.length && WHITESPACE.has(this.buf.charCodeAt(i))) i++;
    this.advance(i);
    return i < this.buf.length;
  }

  /** The text is not JSON as a Bundle's start or its structure needs (a broken first NDJSON line may be too). */
  private fail(message: string): never {
    throw new BundleSyntaxError(`${message} (line ${this.line})`);
  }

  /** The text is JSON but not a Bundle a cohort feed can be. */
  private refuse(message: string): never {
    throw new CohortFormatError(`${message} (line ${this.line})`);
  }

  /** One complete value at pos, or undefined when more text is needed. */
  private takeValue(final: boolean, what: string): { text: string; line: number; start: number } | undefined {
    const start = this.pos;
    let end = valueEnd(this.buf, start);
    if (end < 0 && final && !'{["'.includes(this.buf.charAt(start))) end = this.buf.length;
    if (end < 0) {
      if (final) this.fail(`${what} is not closed: the file is cut short`);
      if (this.buf.length - start > RESOURCE_MAX)
        this.fail(`${what} is longer than ${RESOURCE_MAX} characters: is the JSON well-formed?`);
      return undefined;
    }
    const line = this.line;
    const text = this.buf.slice(start, end);
    this.advance(end);
    return { text, line, start };
  }

  private parseMember(text: string, what: string): unknown {
    try {
      return JSON.parse(text);
    } catch (error) {
      return this.fail(`${what} is not valid JSON: ${(error as Error).message}`);
    }
  }

  private scanBundle(final: boolean, results: CohortResult[]): void {
    for (;;) {
      if (this.state !== 'done' && !this.skipWhitespace()) return;
      const c = this.buf[this.pos];
      switch (this.state) {
        case 'start':
          if (c !== '{')
            this.fail(
              'A FHIR cohort feed is JSON (a Bundle, or NDJSON with one Patient a line): the file does not start with "{"',
            );
          this.advance(this.pos + 1);
          this.state = 'key';
          this.firstMember = true;
          break;
        case 'key': {
          if (c === '}' && this.firstMember) {
            this.advance(this.pos + 1);
            if (this.layout === 'undecided') return this.startLines();
            this.state = 'done';
            break;
          }
          if (c !== '"') this.fail('The Bundle has something other than a property name where one should be');
          const key = this.takeValue(final, 'A property name');
          if (!key) return;
          this.key = this.parseMember(key.text, 'A property name') as string;
          this.state = 'colon';
          break;
        }
        case 'colon':
          if (c !== ':') this.fail(`The Bundle's property ${this.key} has no ":"`);
          this.advance(this.pos + 1);
          this.state = 'value';
          break;
        case 'value':
          if (this.key === 'entry') {
            if (this.layout === 'undecided')
              this.refuse('The Bundle has entry before resourceType: resourceType and type must come first');
            if (this.bundleType === undefined)
              this.refuse('The Bundle has entry before type: resourceType and type must come before entry');
            if (c !== '[') this.refuse('Bundle.entry is not a list');
            this.advance(this.pos + 1);
            this.state = 'entries';
            this.firstMember = true;
            break;
          }
          {
            const value = this.takeValue(final, `The Bundle's ${this.key}`);
            if (!value) return;
            if (this.key === 'resourceType' || this.key === 'type') {
              const parsed = this.parseMember(value.text, `The Bundle's ${this.key}`);
              if (this.key === 'resourceType') {
                if (parsed !== 'Bundle') return this.startLines();
                this.layout = 'bundle';
              } else this.bundleType = parsed;
              if (this.layout === 'bundle' && this.bundleType !== undefined && !isBundleType(this.bundleType))
                this.refuse(
                  `Bundle.type is ${JSON.stringify(this.bundleType)}: a cohort feed is a Bundle of type ${BUNDLE_TYPES.join(', ')}`,
                );
            }
            this.state = 'afterValue';
          }
          break;
        case 'afterValue':
          if (c === ',') {
            this.advance(this.pos + 1);
            this.state = 'key';
            this.firstMember = false;
          } else if (c === '}') {
            this.advance(this.pos + 1);
            if (this.layout === 'undecided') return this.startLines();
            if (this.bundleType === undefined) this.refuse('The Bundle has no type');
            this.state = 'done';
          } else this.fail('The Bundle has something other than "," or "}" after a property');
          break;
        case 'entries': {
          if (c === ']' && this.firstMember) {
            this.advance(this.pos + 1);
            this.state = 'afterValue';
            break;
          }
          const entry = this.takeValue(final, `Bundle.entry[${this.entryIndex}]`);
          if (!entry) return;
          const result = this.entryResult(entry.text, entry.line, this.entryIndex++);
          if (result) results.push(result);
          this.state = 'afterEntry';
          break;
        }
        case 'afterEntry':
          if (c === ',') {
            this.advance(this.pos + 1);
            this.state = 'entries';
            this.firstMember = false;
          } else if (c === ']') {
            this.advance(this.pos + 1);
            this.state = 'afterValue';
          } else this.fail(`The Bundle has something other than "," or "]" after entry[${this.entryIndex - 1}]`);
          break;
        case 'done':
          if (!this.skipWhitespace()) return;
          this.fail('There is more after the end of the Bundle');
      }
    }
  }

  /** One Bundle entry: a row, a rejection, or nothing for a resource of another type. */
  private entryResult(text: string, line: number, entry: number): CohortResult | undefined {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (error) {
      return {
        ok: false,
        line,
        entry,
        nhsNumber: nhsNumberInText(text),
        reason: `the entry is not valid JSON: ${(error as Error).message}`,
      };
    }
    if (!isObject(parsed)) return { ok: false, line, entry, nhsNumber: '', reason: 'the entry is not a JSON object' };
    const resource = parsed.resource;
    if (resource === undefined) {
      const method = isObject(parsed.request) ? parsed.request.method : undefined;
      return {
        ok: false,
        line,
        entry,
        nhsNumber: '',
        reason:
          method === 'DELETE'
            ? 'the entry is a DELETE: the cohort feed does not remove people (a death is a deceasedDateTime)'
            : 'the entry has no resource',
      };
    }
    if (isObject(resource) && resource.resourceType !== 'Patient' && typeof resource.resourceType === 'string')
      return undefined;
    const check = checkPatient(resource, this.today);
    return check.ok ? { ok: true, line, entry, row: check.row } : { ok: false, line, entry, ...omitOk(check) };
  }

  /** The first resource is not a Bundle: read the file from the top as NDJSON. */
  private startLines(): void {
    const firstLine = this.buf.slice(0, this.pos).trimStart();
    if (firstLine.includes('\n'))
      throw new CohortFormatError(
        'The file starts with a resource spread over several lines: a FHIR cohort feed is a Bundle, or NDJSON with one Patient a line',
      );
    this.layout = 'ndjson';
    this.pos = 0;
    this.line = 1;
  }

  private readLines(final: boolean, results: CohortResult[]): void {
    const buf = this.buf;
    while (this.pos < buf.length) {
      let end = buf.indexOf('\n', this.pos);
      if (end < 0) {
        if (!final) {
          if (buf.length - this.pos > RESOURCE_MAX && !this.skipping) {
            results.push({
              ok: false,
              line: this.line,
              nhsNumber: '',
              reason: `the line is longer than ${RESOURCE_MAX} characters`,
            });
            this.skipping = true;
          }
          if (this.skipping) this.pos = buf.length;
          return;
        }
        end = buf.length;
      }
      const text = buf.slice(this.pos, end).trim();
      const line = this.line;
      this.pos = Math.min(end + 1, buf.length);
      this.line++;
      if (this.skipping) {
        this.skipping = false;
        continue;
      }
      if (text === '') continue;
      const result = this.lineResult(text, line);
      results.push(result);
    }
  }

  private lineResult(text: string, line: number): CohortResult {
    if (text.length > RESOURCE_MAX)
      return { ok: false, line, nhsNumber: '', reason: `the line is longer than ${RESOURCE_MAX} characters` };
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (error) {
      return {
        ok: false,
        line,
        nhsNumber: nhsNumberInText(text),
        reason: `the line is not valid JSON: ${(error as Error).message}`,
      };
    }
    const check = checkPatient(parsed, this.today);
    return check.ok ? { ok: true, line, row: check.row } : { ok: false, line, ...omitOk(check) };
  }
}

const omitOk = (check: { nhsNumber: string; reason: string }) => ({ nhsNumber: check.nhsNumber, reason: check.reason });

/** A whole FHIR cohort file in one string (tests, small files): the results in file order. */
export function parseCohortFhir(text: string, today: IsoDate): CohortResult[] {
  const parser = new CohortFhirParser(today);
  return [...parser.push(text), ...parser.end()];
}

// ---------------------------------------------------------------------------------------------------------------
// Writing (tests, the bench, anyone making a file).

/** A row as a UK Core Patient; meta.lastUpdated is noon UTC on the effective date (the same date in London). */
export function cohortPatient(row: CohortRow): Json {
  return {
    resourceType: 'Patient',
    meta: { lastUpdated: `${row.effectiveDate}T12:00:00Z` },
    identifier: [{ system: NHS_NUMBER_SYSTEM, value: row.nhsNumber }],
    name: [{ use: 'official', family: row.familyName, given: [row.givenName] }],
    gender: row.sex,
    birthDate: row.dateOfBirth,
    ...(row.dateOfDeath ? { deceasedDateTime: row.dateOfDeath } : {}),
    address: [
      {
        use: 'home',
        line: row.addressLine2 ? [row.addressLine1, row.addressLine2] : [row.addressLine1],
        ...(row.town ? { city: row.town } : {}),
        postalCode: row.postcode,
      },
    ],
    generalPractitioner: [{ type: 'Organization', identifier: { system: ODS_CODE_SYSTEM, value: row.gpPracticeCode } }],
  };
}

/** A row as one NDJSON line. */
export function cohortNdjsonLine(row: CohortRow): string {
  return JSON.stringify(cohortPatient(row)) + '\n';
}

/** Rows as a Bundle of the given type (pretty-printed, as a person would look at it). */
export function cohortBundle(rows: readonly CohortRow[], type: (typeof BUNDLE_TYPES)[number] = 'collection'): string {
  return JSON.stringify(
    {
      resourceType: 'Bundle',
      type,
      entry: rows.map((row) => ({
        resource: cohortPatient(row),
        ...(type === 'collection'
          ? {}
          : { request: { method: 'PUT', url: `Patient?identifier=${NHS_NUMBER_SYSTEM}|${row.nhsNumber}` } }),
      })),
    },
    null,
    2,
  );
}
