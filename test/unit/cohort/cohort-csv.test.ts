import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { COHORT_TODAY, GOOD_COHORT_ROW } from '../../support/cohort-rows.js';
import {
  COHORT_HEADER,
  CohortCsvParser,
  CohortFormatError,
  CsvReader,
  RECORD_MAX,
  SEXES,
  cohortCsvLine,
  parseCohortCsv,
  type CohortResult,
  type CohortRow,
} from '../../../src/cohort/cohort-csv.js';

const TODAY = COHORT_TODAY;
const GOOD = GOOD_COHORT_ROW;

const file = (...rows: string[]) => COHORT_HEADER + rows.join('');
/** GOOD as a line with some columns replaced by raw CSV text (quote it yourself). */
const lineWith = (changes: Partial<Record<string, string>>) => {
  const fields: Record<string, string> = {
    nhs_number: GOOD.nhsNumber,
    family_name: GOOD.familyName,
    given_name: GOOD.givenName,
    date_of_birth: GOOD.dateOfBirth,
    date_of_death: '',
    sex: GOOD.sex,
    address_line1: GOOD.addressLine1,
    address_line2: '',
    town: GOOD.town!,
    postcode: GOOD.postcode,
    gp_practice_code: GOOD.gpPracticeCode,
    effective_date: GOOD.effectiveDate,
    ...changes,
  };
  return Object.values(fields).join(',') + '\r\n';
};
const only = (results: CohortResult[]) => {
  expect(results).toHaveLength(1);
  return results[0]!;
};
const reasonFor = (changes: Partial<Record<string, string>>) => {
  const result = only(parseCohortCsv(file(lineWith(changes)), TODAY));
  if (result.ok) throw new Error('expected a rejection');
  return result.reason;
};

describe('cohort CSV rows', () => {
  it('reads a good row, normalising the NHS number, postcode, GP code and sex', () => {
    const result = only(
      parseCohortCsv(
        file(lineWith({ nhs_number: '999 001 0005', postcode: 'ls62ab', gp_practice_code: 'y00001', sex: 'Female' })),
        TODAY,
      ),
    );
    expect(result).toEqual({ ok: true, line: 2, row: GOOD });
  });

  it.each([
    [{ nhs_number: '' }, 'nhs_number: Enter the NHS number'],
    [{ nhs_number: '9990010006' }, 'nhs_number: Enter a valid NHS number – 999 001 0006 fails the check digit test'],
    [{ nhs_number: '99900100' }, 'nhs_number: NHS number must be 10 digits'],
    [{ nhs_number: '9999999999' }, "nhs_number: 999 999 9999 is kept for the hub's test probe"],
    [{ family_name: '' }, 'family_name is missing'],
    [{ given_name: 'x'.repeat(101) }, 'given_name is longer than 100 characters'],
    [{ date_of_birth: '' }, 'date_of_birth is missing'],
    [{ date_of_birth: '1966-02-30' }, 'date_of_birth "1966-02-30" is not a real date in the form YYYY-MM-DD'],
    [{ date_of_birth: '14/05/1966' }, 'date_of_birth "14/05/1966" is not a real date'],
    [{ date_of_birth: '1899-12-31' }, 'date_of_birth 1899-12-31 is before 1900'],
    [{ date_of_death: '2026-11-24' }, 'date_of_death 2026-11-24 is in the future'],
    [{ date_of_death: '1960-01-01' }, 'date_of_death 1960-01-01 is before date_of_birth 1966-05-14'],
    [{ date_of_death: '2026-03-01' }, 'date_of_death 2026-03-01 is after effective_date 2026-01-02'],
    [{ effective_date: '' }, 'effective_date is missing'],
    [{ effective_date: '2027-01-01' }, 'effective_date 2027-01-01 is in the future'],
    [{ sex: 'F' }, 'sex "F" is not one of female, male, other, unknown'],
    [{ sex: '' }, 'sex is missing'],
    [{ address_line1: '' }, 'address_line1 is missing'],
    [{ town: 'y'.repeat(201) }, 'town is longer than 200 characters'],
    [{ postcode: '' }, 'postcode is missing'],
    [{ postcode: 'LS6 2A' }, 'postcode "LS6 2A" is not a UK postcode'],
    [{ postcode: '12345' }, 'postcode "12345" is not a UK postcode'],
    [{ gp_practice_code: '' }, 'gp_practice_code is missing'],
    [{ gp_practice_code: '123' }, 'gp_practice_code "123" is not a GP practice code'],
  ])('rejects %j: %s', (changes, reason) => {
    expect(reasonFor(changes)).toContain(reason);
  });

  it('names every problem of a row, and the NHS number as written', () => {
    const result = only(parseCohortCsv(file(lineWith({ postcode: 'nowhere', family_name: '', sex: 'x' })), TODAY));
    expect(result).toMatchObject({ ok: false, line: 2, nhsNumber: GOOD.nhsNumber });
    expect(!result.ok && result.reason.split('; ')).toHaveLength(3);
  });

  it('accepts a death on the effective date and a birth on the effective date', () => {
    expect(only(parseCohortCsv(file(lineWith({ date_of_death: '2026-01-02' })), TODAY)).ok).toBe(true);
    expect(only(parseCohortCsv(file(lineWith({ date_of_birth: '2026-01-02' })), TODAY)).ok).toBe(true);
  });

  it('rejects a row with too few or too many fields, and goes on with the next', () => {
    const results = parseCohortCsv(
      file('9990010005,Short,Row\r\n', lineWith({}), lineWith({}).replace('\r\n', ',extra\r\n')),
      TODAY,
    );
    expect(results.map((r) => (r.ok ? 'ok' : r.reason))).toEqual([
      'the row has 3 fields where the header has 12',
      'ok',
      'the row has 13 fields where the header has 12',
    ]);
    expect(results[0]).toMatchObject({ line: 2, nhsNumber: '9990010005' });
  });
});

describe('cohort CSV files', () => {
  it('takes the columns in any order, in any case, and skips blank lines', () => {
    const header =
      'EFFECTIVE_DATE,nhs_number,family_name,given_name,date_of_birth,date_of_death,sex,address_line1,address_line2,town,postcode,gp_practice_code\n';
    const row = '2026-01-02,9990010005,Testwoman,Jane,1966-05-14,,female,2 Test Street,,Leeds,LS6 2AB,Y00001\n';
    const results = parseCohortCsv(header + '\n' + row + '\n\n', TODAY);
    expect(results).toEqual([{ ok: true, line: 3, row: GOOD }]);
  });

  it('drops a UTF-8 byte order mark and keeps non-ASCII names', () => {
    const results = parseCohortCsv(
      '\uFEFF' + file(lineWith({ family_name: 'Ó Súilleabháin', given_name: 'Siân' })),
      TODAY,
    );
    expect(only(results)).toMatchObject({ ok: true, row: { familyName: 'Ó Súilleabháin', givenName: 'Siân' } });
  });

  it('refuses a file whose header is wrong or missing', () => {
    expect(() => parseCohortCsv('', TODAY)).toThrow(CohortFormatError);
    expect(() => parseCohortCsv('nhs_number,name\n', TODAY)).toThrow(/unknown column "name"/);
    expect(() => parseCohortCsv('nhs_number,family_name\n', TODAY)).toThrow(/lacks the column\(s\) given_name/);
    expect(() => parseCohortCsv(COHORT_HEADER.trim() + ',sex\n', TODAY)).toThrow(/sex twice/);
  });

  it('reads RFC 4180 quoting: commas, doubled quotes, line breaks and CRLF', () => {
    const text = file(
      lineWith({ address_line1: '"Flat 2, ""The Willows"""', address_line2: '"12 Long Lane\r\nUpper End"' }),
      lineWith({}),
    );
    const results = parseCohortCsv(text, TODAY);
    expect(results[0]).toMatchObject({
      ok: true,
      line: 2,
      row: { addressLine1: 'Flat 2, "The Willows"', addressLine2: '12 Long Lane\r\nUpper End' },
    });
    // The quoted line break is counted: the next row starts on line 4.
    expect(results[1]).toMatchObject({ ok: true, line: 4 });
  });

  it('rejects a stray quote mark or text after a closing quote, and goes on', () => {
    const results = parseCohortCsv(
      file(
        lineWith({ address_line1: '2 "Test" Street' }),
        lineWith({ address_line1: '"2 Test" Street' }),
        lineWith({}),
      ),
      TODAY,
    );
    expect(results.map((r) => (r.ok ? 'ok' : r.reason))).toEqual([
      expect.stringContaining('a quote mark inside a field'),
      expect.stringContaining('text after a closing quote mark'),
      'ok',
    ]);
  });

  it('rejects an unclosed quote on its own line and reads on from the next line', () => {
    const results = parseCohortCsv(file(lineWith({ town: '"Leeds' }), lineWith({}), lineWith({})), TODAY);
    // The open quote swallows the rest of the file, so the record is given up at the end and the reader goes back
    // to the line after it: only line 2 is lost.
    expect(results.map((r) => (r.ok ? `ok ${r.line}` : `${r.line}: ${r.reason}`))).toEqual([
      '2: a quoted field is not closed (or the record is longer than 16384 characters)',
      'ok 3',
      'ok 4',
    ]);
  });

  it('gives up on an unclosed quote after RECORD_MAX characters even while more is coming', () => {
    const parser = new CohortCsvParser(TODAY);
    const out: CohortResult[] = [];
    out.push(...parser.push(COHORT_HEADER + lineWith({ town: '"Leeds' })));
    for (let pushed = 0; pushed < RECORD_MAX + 1000; pushed += lineWith({}).length)
      out.push(...parser.push(lineWith({})));
    expect(out[0]).toMatchObject({ ok: false, line: 2 });
    expect(out.filter((r) => r.ok).length).toBeGreaterThan(100);
    out.push(...parser.end());
    expect(out.every((r, i) => i === 0 || r.ok)).toBe(true);
  });

  it('gives the same results whatever the chunk sizes', () => {
    const text =
      '\uFEFF' +
      file(
        lineWith({ address_line1: '"Flat 2, ""The Willows"""' }),
        lineWith({ postcode: 'bad' }),
        lineWith({ address_line2: '"a\r\nb"' }),
        lineWith({}).replace(/\r\n$/, ''),
      );
    const whole = parseCohortCsv(text, TODAY);
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 40 }), { minLength: 1, maxLength: 60 }), (sizes) => {
        const parser = new CohortCsvParser(TODAY);
        const results: CohortResult[] = [];
        let pos = 0;
        for (let i = 0; pos < text.length; i++) {
          const size = sizes[i % sizes.length]!;
          results.push(...parser.push(text.slice(pos, pos + size)));
          pos += size;
        }
        results.push(...parser.end());
        expect(results).toEqual(whole);
      }),
    );
  });

  it('reads back any row it writes (round trip)', () => {
    const text = (max: number) =>
      fc
        .string({ unit: fc.constantFrom(...'ab ,"\r\nÉé\'-'), minLength: 1, maxLength: max })
        .filter((s) => s.trim() !== '' && s.trim() === s);
    const date = fc
      .date({ min: new Date('1900-01-01T00:00:00Z'), max: new Date('2026-11-23T00:00:00Z'), noInvalidDate: true })
      .map((d) => d.toISOString().slice(0, 10));
    const row = fc.record({
      familyName: text(100),
      givenName: text(100),
      dates: fc.tuple(date, date, date).map((ds) => ds.sort()),
      dead: fc.boolean(),
      sex: fc.constantFrom(...SEXES),
      addressLine1: text(200),
      addressLine2: fc.option(text(200), { nil: null }),
      town: fc.option(text(50), { nil: null }),
    });
    fc.assert(
      fc.property(fc.array(row, { minLength: 1, maxLength: 5 }), (rows) => {
        const written: CohortRow[] = rows.map((r) => ({
          ...GOOD,
          familyName: r.familyName,
          givenName: r.givenName,
          dateOfBirth: r.dates[0],
          dateOfDeath: r.dead ? r.dates[1] : null,
          effectiveDate: r.dates[2],
          sex: r.sex,
          addressLine1: r.addressLine1,
          addressLine2: r.addressLine2,
          town: r.town,
        }));
        const results = parseCohortCsv(COHORT_HEADER + written.map(cohortCsvLine).join(''), TODAY);
        expect(results.map((r) => (r.ok ? r.row : r.reason))).toEqual(written);
      }),
    );
  });
});

describe('CsvReader', () => {
  it('ends records at CRLF, LF or CR, and at the end of the text', () => {
    const reader = new CsvReader();
    const records = [...reader.push('a,b\r\nc,d\ne,f\rg,"h"'), ...reader.end()];
    expect(records.map((r) => [r.line, ...r.fields])).toEqual([
      [1, 'a', 'b'],
      [2, 'c', 'd'],
      [3, 'e', 'f'],
      [4, 'g', 'h'],
    ]);
  });
});
