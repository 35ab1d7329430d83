import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { COHORT_TODAY, GOOD_COHORT_ROW } from '../../support/cohort-rows.js';
import { CohortFormatError, type CohortResult, type CohortRow } from '../../../src/cohort/cohort-csv.js';
import {
  CohortFhirParser,
  NHS_NUMBER_SYSTEM,
  ODS_CODE_SYSTEM,
  RESOURCE_MAX,
  checkPatient,
  cohortBundle,
  cohortNdjsonLine,
  cohortPatient,
  fhirDate,
  parseCohortFhir,
} from '../../../src/cohort/cohort-fhir.js';

const TODAY = COHORT_TODAY;
const GOOD = GOOD_COHORT_ROW;
const OTHER: CohortRow = { ...GOOD, nhsNumber: '9990010013', familyName: 'Otherwoman' };

type Patient = Record<string, unknown>;
/** GOOD as a Patient, changed by `change`. */
const patient = (change: (p: Patient) => void = () => {}): Patient => {
  const p = structuredClone(cohortPatient(GOOD));
  change(p);
  return p;
};
const reasonOf = (change: (p: Patient) => void) => {
  const check = checkPatient(patient(change), TODAY);
  if (check.ok) throw new Error('expected a rejection');
  return check.reason;
};
const outline = (results: CohortResult[]) =>
  results.map((r) => (r.ok ? `ok ${r.line}${r.entry !== undefined ? ` [${r.entry}]` : ''}` : `${r.line}: ${r.reason}`));

describe('FHIR Patient to cohort row', () => {
  it('maps a UK Core Patient', () => {
    expect(checkPatient(patient(), TODAY)).toEqual({ ok: true, row: GOOD });
  });

  it('takes the official name, given[0], the home address with its lines, and normalises like CSV', () => {
    const check = checkPatient(
      patient((p) => {
        p.identifier = [
          { system: 'https://example.org/mrn', value: 'X1' },
          { system: NHS_NUMBER_SYSTEM, value: ' 999 001 0005 ' },
        ];
        p.name = [
          { use: 'usual', family: 'Usualname', given: ['Janey'] },
          { use: 'official', family: 'Testwoman', given: ['Jane', 'Mary'], prefix: ['Mrs'] },
        ];
        p.address = [
          { use: 'temp', line: ['1 Holiday Road'], postalCode: 'YO1 7HH' },
          { use: 'home', line: ['Flat 2', '12 Long Lane', 'Headingley'], city: 'Leeds', postalCode: 'ls62ab' },
        ];
        p.generalPractitioner = [
          { reference: 'Practitioner/123' },
          { identifier: { system: ODS_CODE_SYSTEM, value: 'y00001' } },
        ];
        p.gender = 'Female';
      }),
      TODAY,
    );
    expect(check).toEqual({
      ok: true,
      row: { ...GOOD, addressLine1: 'Flat 2', addressLine2: '12 Long Lane, Headingley' },
    });
  });

  it('takes the usual name, else the first; the first address when none is home', () => {
    const usual = checkPatient(
      patient((p) => {
        p.name = [
          { use: 'maiden', family: 'Maidenname', given: ['Jane'] },
          { use: 'usual', family: 'Usualname', given: ['Jane'] },
        ];
        p.address = [{ line: ['5 Work Road'], postalCode: 'LS1 4AP' }];
      }),
      TODAY,
    );
    expect(usual).toMatchObject({
      ok: true,
      row: { familyName: 'Usualname', addressLine1: '5 Work Road', town: null, postcode: 'LS1 4AP' },
    });
    const first = checkPatient(
      patient(
        (p) =>
          (p.name = [
            { family: 'Firstname', given: ['Jane'] },
            { use: 'old', family: 'X', given: ['Y'] },
          ]),
      ),
      TODAY,
    );
    expect(first).toMatchObject({ ok: true, row: { familyName: 'Firstname' } });
  });

  it('reads a death and the effective date as London dates', () => {
    const check = checkPatient(
      patient((p) => {
        p.deceasedDateTime = '2026-06-10T23:30:00Z'; // 00:30 BST on 11 June
        p.meta = { lastUpdated: '2026-06-12T23:15:00.123+00:00' };
      }),
      TODAY,
    );
    expect(check).toMatchObject({ ok: true, row: { dateOfDeath: '2026-06-11', effectiveDate: '2026-06-13' } });
    expect(
      checkPatient(
        patient((p) => {
          p.deceasedDateTime = '2026-01-01';
          p.deceasedBoolean = undefined;
        }),
        TODAY,
      ),
    ).toMatchObject({ ok: true, row: { dateOfDeath: '2026-01-01' } });
    expect(
      checkPatient(
        patient((p) => (p.deceasedBoolean = false)),
        TODAY,
      ),
    ).toMatchObject({
      ok: true,
      row: { dateOfDeath: null },
    });
    expect(fhirDate('2026-01-05T09:30:00Z')).toBe('2026-01-05');
    expect(fhirDate('2026-01-05T00:30:00+02:00')).toBe('2026-01-04');
    expect(fhirDate('2026-02-30T09:30:00Z')).toBeUndefined();
    expect(fhirDate('2026-01-05T09:30:00')).toBeUndefined();
    expect(fhirDate('2026-01')).toBeUndefined();
  });

  it.each<[string, (p: Patient) => void, string]>([
    ['no resourceType', (p) => delete p.resourceType, 'resourceType is missing: a cohort feed holds Patient'],
    ['another resource', (p) => (p.resourceType = 'Practitioner'), 'resourceType is Practitioner'],
    ['no NHS number', (p) => (p.identifier = []), `identifier: there is no NHS number (system ${NHS_NUMBER_SYSTEM})`],
    ['identifier not a list', (p) => (p.identifier = {}), 'identifier is not a list'],
    [
      'a bad check digit',
      (p) => (p.identifier = [{ system: NHS_NUMBER_SYSTEM, value: '9990010006' }]),
      'identifier (NHS number): Enter a valid NHS number – 999 001 0006 fails the check digit test',
    ],
    [
      'two NHS numbers',
      (p) =>
        (p.identifier = [
          { system: NHS_NUMBER_SYSTEM, value: '9990010005' },
          { system: NHS_NUMBER_SYSTEM, value: '9990010013' },
        ]),
      'identifier has 2 NHS numbers: 9990010005, 9990010013',
    ],
    [
      'an NHS number that is a number',
      (p) => (p.identifier = [{ system: NHS_NUMBER_SYSTEM, value: 9990010005 }]),
      'identifier (NHS number) value is not a string',
    ],
    ['no name', (p) => delete p.name, 'name is missing'],
    ['no family name', (p) => (p.name = [{ use: 'official', given: ['Jane'] }]), 'name.family is missing'],
    ['no given name', (p) => (p.name = [{ use: 'official', family: 'Testwoman' }]), 'name.given[0] is missing'],
    [
      'given not a list',
      (p) => (p.name = [{ use: 'official', family: 'Testwoman', given: 'Jane' }]),
      'name.given is not a list',
    ],
    ['a long family name', (p) => (p.name = [{ family: 'x'.repeat(101), given: ['J'] }]), 'name.family is longer'],
    ['no birth date', (p) => delete p.birthDate, 'birthDate is missing'],
    ['a partial birth date', (p) => (p.birthDate = '1966'), 'birthDate "1966" is not a real date'],
    ['a birth date not a string', (p) => (p.birthDate = 19660514), 'birthDate is not a string'],
    [
      'deceasedBoolean true',
      (p) => (p.deceasedBoolean = true),
      'deceasedBoolean is true but there is no deceasedDateTime: a death needs its date',
    ],
    ['deceasedBoolean not a boolean', (p) => (p.deceasedBoolean = 'yes'), 'deceasedBoolean is not true or false'],
    ['a partial date of death', (p) => (p.deceasedDateTime = '2026-06'), 'deceasedDateTime "2026-06" is not a full'],
    [
      'a death before birth',
      (p) => (p.deceasedDateTime = '1960-01-01'),
      'deceasedDateTime 1960-01-01 is before birthDate 1966-05-14',
    ],
    [
      'a death after lastUpdated',
      (p) => (p.deceasedDateTime = '2026-03-01'),
      'deceasedDateTime 2026-03-01 is after meta.lastUpdated 2026-01-02',
    ],
    ['no gender', (p) => delete p.gender, 'gender is missing'],
    ['a gender not FHIR', (p) => (p.gender = 'F'), 'gender "F" is not one of female, male, other, unknown'],
    ['no address', (p) => (p.address = []), 'address is missing'],
    ['no address line', (p) => (p.address = [{ use: 'home', postalCode: 'LS6 2AB' }]), 'address.line[0] is missing'],
    [
      'an address line not a string',
      (p) => (p.address = [{ line: [2, 'Test Street'], postalCode: 'LS6 2AB' }]),
      'address.line holds something not a string',
    ],
    ['no postcode', (p) => (p.address = [{ line: ['2 Test Street'] }]), 'address.postalCode is missing'],
    [
      'a bad postcode',
      (p) => (p.address = [{ line: ['2 Test Street'], postalCode: 'LS6 2A' }]),
      'address.postalCode "LS6 2A" is not a UK postcode',
    ],
    [
      'no GP practice',
      (p) => (p.generalPractitioner = [{ reference: 'Organization/1' }]),
      `generalPractitioner: there is no GP practice (an identifier with system ${ODS_CODE_SYSTEM})`,
    ],
    [
      'a GP practice code that is not one',
      (p) => (p.generalPractitioner = [{ identifier: { system: ODS_CODE_SYSTEM, value: '123' } }]),
      'generalPractitioner (ODS code) "123" is not a GP practice code',
    ],
    [
      'two GP practices',
      (p) =>
        (p.generalPractitioner = [
          { identifier: { system: ODS_CODE_SYSTEM, value: 'Y00001' } },
          { identifier: { system: ODS_CODE_SYSTEM, value: 'Y00002' } },
        ]),
      'generalPractitioner has 2 GP practices: Y00001, Y00002',
    ],
    ['no meta', (p) => delete p.meta, 'meta.lastUpdated is missing'],
    [
      'a lastUpdated that is not an instant',
      (p) => (p.meta = { lastUpdated: '05/01/2026' }),
      'meta.lastUpdated "05/01/2026" is not an instant',
    ],
    [
      'a lastUpdated in the future',
      (p) => (p.meta = { lastUpdated: '2027-01-01T10:00:00Z' }),
      'meta.lastUpdated 2027-01-01 is in the future',
    ],
  ])('rejects %s', (_, change, reason) => {
    expect(reasonOf(change)).toContain(reason);
  });

  it('names every problem once, and the NHS number as written', () => {
    const check = checkPatient(
      patient((p) => {
        p.identifier = [{ system: NHS_NUMBER_SYSTEM, value: '999 001 0006' }];
        p.address = [];
        delete p.gender;
      }),
      TODAY,
    );
    expect(check).toMatchObject({ ok: false, nhsNumber: '999 001 0006' });
    expect(!check.ok && check.reason.split('; ')).toEqual([
      'address is missing',
      expect.stringMatching(/^identifier \(NHS number\): .*check digit/),
      'gender is missing',
    ]);
  });
});

describe('FHIR NDJSON', () => {
  it('reads one Patient a line, rejects a bad line on its own and reads on', () => {
    const text =
      cohortNdjsonLine(GOOD) +
      '\r\n' +
      `{"resourceType":"Patient","identifier":[{"system":"${NHS_NUMBER_SYSTEM}","value":"9990010013"}],"gender":female}\n` +
      JSON.stringify({ resourceType: 'Organization', name: 'Surgery' }) +
      '\r\n' +
      '[1, 2]\n' +
      cohortNdjsonLine(OTHER).trimEnd();
    const results = parseCohortFhir(text, TODAY);
    expect(outline(results)).toEqual([
      'ok 1',
      expect.stringMatching(/^3: the line is not valid JSON: /),
      '4: resourceType is Organization: a cohort feed holds Patient resources',
      '5: the resource is not a JSON object',
      'ok 6',
    ]);
    expect(results[1]).toMatchObject({ nhsNumber: '9990010013' });
    expect(results[5 - 1]).toMatchObject({ ok: true, row: OTHER });
  });

  it('rejects a broken first line on its own too', () => {
    const results = parseCohortFhir('{"resourceType": "Patient", oops}\n' + cohortNdjsonLine(GOOD), TODAY);
    expect(outline(results)).toEqual([expect.stringMatching(/^1: the line is not valid JSON/), 'ok 2']);
  });

  it('rejects a line longer than RESOURCE_MAX and reads on from the next', () => {
    const parser = new CohortFhirParser(TODAY);
    const long = JSON.stringify({ ...cohortPatient(GOOD), text: 'x'.repeat(RESOURCE_MAX) });
    const results = [
      ...parser.push(cohortNdjsonLine(OTHER)),
      ...parser.push(long.slice(0, RESOURCE_MAX / 2)),
      ...parser.push(long.slice(RESOURCE_MAX / 2)),
      ...parser.push('\n' + cohortNdjsonLine(GOOD)),
      ...parser.end(),
    ];
    expect(outline(results)).toEqual(['ok 1', `2: the line is longer than ${RESOURCE_MAX} characters`, 'ok 3']);
  });
});

describe('FHIR Bundle', () => {
  it.each(['collection', 'transaction', 'batch'] as const)('reads a %s Bundle, entry by entry', (type) => {
    const results = parseCohortFhir('\uFEFF' + cohortBundle([GOOD, OTHER], type), TODAY);
    expect(results).toEqual([
      { ok: true, line: 5, entry: 0, row: GOOD },
      { ok: true, line: expect.any(Number), entry: 1, row: OTHER },
    ]);
  });

  it('skips other resources, rejects a bad entry with its index and line, and reads on', () => {
    const entries = [
      { resource: cohortPatient(GOOD) },
      { resource: { resourceType: 'Organization', identifier: [{ system: ODS_CODE_SYSTEM, value: 'Y00001' }] } },
      { resource: { ...cohortPatient(OTHER), gender: 'F' } },
      { request: { method: 'DELETE', url: 'Patient/1' } },
    ].map((e) => JSON.stringify(e));
    const broken = `{"resource": {"resourceType": "Patient", "identifier": [{"system": "${NHS_NUMBER_SYSTEM}", "value": "9990010013"}], "gender": female}}`;
    const text = [
      '{',
      '  "resourceType": "Bundle",',
      '  "meta": {"lastUpdated": "2026-01-02T10:00:00Z"},',
      '  "type": "collection",',
      '  "entry": [',
      `    ${entries[0]},`,
      `    ${entries[1]},`,
      `    ${entries[2]},`,
      `    ${broken},`,
      `    ${entries[3]},`,
      `    ${entries[0]}`,
      '  ],',
      '  "link": []',
      '}',
      '',
    ].join('\n');
    const results = parseCohortFhir(text, TODAY);
    expect(results).toEqual([
      { ok: true, line: 6, entry: 0, row: GOOD },
      {
        ok: false,
        line: 8,
        entry: 2,
        nhsNumber: OTHER.nhsNumber,
        reason: 'gender "F" is not one of female, male, other, unknown',
      },
      {
        ok: false,
        line: 9,
        entry: 3,
        nhsNumber: '9990010013',
        reason: expect.stringMatching(/^the entry is not valid JSON/),
      },
      {
        ok: false,
        line: 10,
        entry: 4,
        nhsNumber: '',
        reason: 'the entry is a DELETE: the cohort feed does not remove people (a death is a deceasedDateTime)',
      },
      { ok: true, line: 11, entry: 5, row: GOOD },
    ]);
  });

  it('reads a Bundle on one line and an empty Bundle', () => {
    const one = JSON.stringify(JSON.parse(cohortBundle([GOOD, OTHER])));
    expect(outline(parseCohortFhir(one, TODAY))).toEqual(['ok 1 [0]', 'ok 1 [1]']);
    expect(parseCohortFhir('{"resourceType":"Bundle","type":"collection","entry":[]}', TODAY)).toEqual([]);
    expect(parseCohortFhir('{"resourceType":"Bundle","type":"collection"}', TODAY)).toEqual([]);
  });

  it.each<[string, string, RegExp]>([
    ['an empty file', '  \n', /The file is empty/],
    ['a CSV file', 'nhs_number,family_name\n', /does not start with "\{"/],
    ['a searchset', '{"resourceType":"Bundle","type":"searchset","entry":[]}', /Bundle.type is "searchset"/],
    ['entry before type', '{"resourceType":"Bundle","entry":[],"type":"collection"}', /entry before type/],
    [
      'entry before resourceType',
      '{"type":"collection","entry":[],"resourceType":"Bundle"}',
      /entry before resourceType/,
    ],
    ['no type', '{"resourceType":"Bundle"}', /has no type/],
    ['a cut Bundle', cohortBundle([GOOD, OTHER]).slice(0, 900), /cut short|ends early/],
    ['more after the Bundle', cohortBundle([GOOD]) + '\n{}', /more after the end of the Bundle/],
    ['a missing comma between entries', cohortBundle([GOOD, OTHER]).replace(/\},\n {4}\{/, '}\n    {'), /"," or "]"/],
    [
      'a pretty-printed Patient',
      JSON.stringify(cohortPatient(GOOD), null, 2),
      /a resource spread over several lines: a FHIR cohort feed is a Bundle, or NDJSON/,
    ],
  ])('refuses %s as a whole', (_, text, message) => {
    expect(() => parseCohortFhir(text, TODAY)).toThrow(CohortFormatError);
    expect(() => parseCohortFhir(text, TODAY)).toThrow(message);
  });

  it('gives the same results whatever the chunk sizes (Bundle and NDJSON)', () => {
    const bad = { ...GOOD, postcode: 'nowhere' };
    const texts = [
      '\uFEFF' + cohortBundle([GOOD, bad, OTHER], 'transaction'),
      JSON.stringify(JSON.parse(cohortBundle([GOOD, bad, OTHER]))),
      '\uFEFF' + [GOOD, bad, OTHER].map(cohortNdjsonLine).join('') + '{"broken": \n\n' + cohortNdjsonLine(GOOD),
    ];
    for (const text of texts) {
      const whole = parseCohortFhir(text, TODAY);
      expect(whole.filter((r) => !r.ok).length).toBeGreaterThan(0);
      expect(whole.filter((r) => r.ok).length).toBeGreaterThanOrEqual(2);
      fc.assert(
        fc.property(fc.array(fc.integer({ min: 1, max: 300 }), { minLength: 1, maxLength: 30 }), (sizes) => {
          const parser = new CohortFhirParser(TODAY);
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
        { numRuns: 50 },
      );
    }
  });
});
