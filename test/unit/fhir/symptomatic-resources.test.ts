import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  classifyCoding,
  readSymptomaticBundle,
  readSymptomaticResource,
  statusFor,
  SYMPTOMATIC_CODES,
  type SymptomaticReading,
} from '../../../src/fhir/symptomatic-resources.js';
import { parseMessage } from '../../../src/hl7/message.js';
import { interpretMessage } from '../../../src/hl7/symptomatic-messages.js';
import { testRangeNhsNumbers } from '../../../src/pathway/nhs-number.js';
import { suspends, suspensionReason } from '../../../src/pathway/symptomatic.js';

const TODAY = '2026-11-23';
const NHS = 'https://fhir.nhs.uk/Id/nhs-number';
const SCT = 'http://snomed.info/sct';
const nhsNumber = testRangeNhsNumbers(4242).next().value as string;
const subject = { identifier: { system: NHS, value: nhsNumber } };
const status = (system: string, code: string) => ({
  coding: [{ system: `http://terminology.hl7.org/CodeSystem/${system}`, code }],
});

const condition = (extra: Record<string, unknown> = {}) => ({
  resourceType: 'Condition',
  id: 'c1',
  meta: { versionId: '3', lastUpdated: '2026-11-03T10:15:00+00:00' },
  clinicalStatus: status('condition-clinical', 'active'),
  verificationStatus: status('condition-ver-status', 'confirmed'),
  code: { coding: [{ system: SCT, code: '254837009', display: 'Malignant neoplasm of breast' }] },
  subject,
  onsetDateTime: '2026-11-01',
  ...extra,
});

const procedure = (extra: Record<string, unknown> = {}) => ({
  resourceType: 'Procedure',
  id: 'p1',
  status: 'completed',
  code: { coding: [{ system: SCT, code: '172043006', display: 'Simple mastectomy' }] },
  subject,
  performedDateTime: '2026-11-09',
  ...extra,
});

const read = (resource: unknown) => readSymptomaticResource(resource, TODAY);
const event = (reading: SymptomaticReading) => {
  if (reading.kind !== 'event') throw new Error(`not an event: ${JSON.stringify(reading)}`);
  return reading.event;
};
const issues = (reading: SymptomaticReading) => (reading.kind === 'invalid' ? reading.issues : []);

describe('FHIR Condition to a symptomatic event', () => {
  it('reads a confirmed breast cancer diagnosis in SNOMED CT, with its id and version', () => {
    const reading = read(condition());
    expect(reading).toEqual({
      kind: 'event',
      ref: { resourceType: 'Condition', id: 'c1', versionId: '3', lastUpdated: '2026-11-03T10:15:00.000Z' },
      event: {
        nhsNumber,
        diagnoses: [
          {
            code: '254837009',
            codeSystem: 'SNOMED CT',
            kind: 'breast_cancer',
            text: 'Malignant neoplasm of breast',
            date: '2026-11-01',
          },
        ],
        procedures: [],
      },
    });
    expect(suspends(event(reading))).toBe(true);
    expect(suspensionReason(event(reading))).toBe(
      'Trust EPR: breast cancer diagnosed (SNOMED CT 254837009) on 1 November 2026',
    );
  });

  it('gives the same event as the HL7 feed for the same ICD-10 diagnosis', () => {
    const fromFhir = event(
      read(
        condition({
          code: {
            coding: [{ system: 'http://hl7.org/fhir/sid/icd-10', code: 'C509', display: 'Breast, unspecified' }],
          },
        }),
      ),
    );
    const hl7 = parseMessage(
      [
        'MSH|^~\\&|EPR|RX1|SCREENING-HUB|NHSBSP|20261103101500||ADT^A08^ADT_A01|M1|P|2.5.1',
        'EVN|A08|20261103101500',
        `PID|1||${nhsNumber}^^^NHS^NH||Testwoman^Jane||19660514|F`,
        'DG1|1||C50.9^Breast, unspecified^I10||20261101|F',
      ].join('\r'),
    );
    const fromHl7 = interpretMessage(hl7, TODAY);
    expect(fromHl7.kind === 'event' && fromHl7.event).toEqual(fromFhir);
  });

  it('dates by onsetDateTime, else onsetPeriod.start, else recordedDate, in England', () => {
    expect(event(read(condition({ onsetDateTime: '2026-06-30T23:30:00Z' }))).diagnoses[0]?.date).toBe('2026-07-01');
    expect(
      event(read(condition({ onsetDateTime: undefined, onsetPeriod: { start: '2026-10-02' } }))).diagnoses[0]?.date,
    ).toBe('2026-10-02');
    expect(
      event(read(condition({ onsetDateTime: undefined, recordedDate: '2026-10-03T09:00:00+01:00' }))).diagnoses[0]
        ?.date,
    ).toBe('2026-10-03');
  });

  it('never suspends on refuted or entered-in-error; does not act on unconfirmed ones or other codes', () => {
    expect(read(condition({ verificationStatus: status('condition-ver-status', 'refuted') }))).toMatchObject({
      kind: 'withdrawn',
      status: 'refuted',
      nhsNumber,
    });
    expect(
      read(condition({ verificationStatus: status('condition-ver-status', 'entered-in-error'), code: undefined })),
    ).toMatchObject({ kind: 'withdrawn', status: 'entered-in-error', ref: { id: 'c1', versionId: '3' } });
    expect(read(condition({ verificationStatus: status('condition-ver-status', 'differential') }))).toMatchObject({
      kind: 'ignored',
      why: 'The diagnosis is differential, not confirmed: nothing applied',
    });
    expect(read(condition({ code: { coding: [{ system: SCT, code: '73211009' }] } }))).toMatchObject({
      kind: 'ignored',
      why: 'Not a breast cancer diagnosis the link acts on (http://snomed.info/sct|73211009)',
    });
  });

  it('records a resolved diagnosis as past history, which does not suspend on its own', () => {
    const past = event(read(condition({ clinicalStatus: status('condition-clinical', 'resolved') })));
    expect(past.diagnoses[0]).toMatchObject({ historical: true });
    expect(suspends(past)).toBe(false);
  });

  it('says exactly what is wrong: malformed 400, unusable 422', () => {
    const cases: [unknown, 400 | 422, string, RegExp][] = [
      ['not an object', 400, '$', /must be a FHIR resource/],
      [condition({ resourceType: undefined }), 400, 'resourceType', /missing/],
      [condition({ resourceType: 'Observation' }), 400, 'resourceType', /not taken/],
      [condition({ subject: {} }), 400, 'Condition.subject.identifier', /matches her by NHS number/],
      [
        condition({ subject: { identifier: { system: 'urn:oid:1.2.3', value: nhsNumber } } }),
        400,
        'Condition.subject.identifier.system',
        /must be https:\/\/fhir\.nhs\.uk\/Id\/nhs-number/,
      ],
      [
        condition({ subject: { identifier: { system: NHS, value: '123' } } }),
        400,
        'Condition.subject.identifier.value',
        /not a valid NHS number/,
      ],
      [condition({ code: { coding: 'C50' } }), 400, 'Condition.code.coding', /must be an array/],
      [condition({ code: { coding: [{ system: SCT }] } }), 400, 'Condition.code.coding[0].code', /missing/],
      [condition({ id: 'has space' }), 400, 'Condition.id', /not a FHIR id/],
      [condition({ meta: { lastUpdated: 'yesterday' } }), 400, 'Condition.meta.lastUpdated', /not a FHIR instant/],
      [condition({ onsetDateTime: '2026-02-30' }), 400, 'Condition.onsetDateTime', /not a valid date/],
      [condition({ onsetDateTime: '2026-11' }), 422, 'Condition.onsetDateTime', /partial date/],
      [condition({ onsetDateTime: '2027-01-01' }), 422, 'Condition.onsetDateTime', /in the future/],
      [condition({ onsetDateTime: undefined }), 422, 'Condition.onsetDateTime', /no date/],
      [procedure({ status: undefined }), 400, 'Procedure.status', /missing/],
      [procedure({ status: 'done' }), 400, 'Procedure.status', /not one of/],
      [procedure({ performedDateTime: undefined }), 422, 'Procedure.performedDateTime', /no date/],
    ];
    for (const [resource, httpStatus, expression, diagnostics] of cases) {
      const found = issues(read(resource));
      expect(found, JSON.stringify(resource)).toHaveLength(1);
      expect(found[0]).toMatchObject({ status: httpStatus, expression });
      expect(found[0]?.diagnostics).toMatch(diagnostics);
      expect(statusFor(found)).toBe(httpStatus);
    }
  });

  it('checks the type the URL names', () => {
    expect(issues(readSymptomaticResource(procedure(), TODAY, { expected: 'Condition' }))[0]).toMatchObject({
      status: 400,
      expression: 'resourceType',
      diagnostics: 'resourceType is "Procedure": this endpoint takes Condition',
    });
  });
});

describe('FHIR Procedure and Encounter to a symptomatic event', () => {
  it('takes the side from the code, else from bodySite laterality', () => {
    const left = event(read(procedure({ code: { coding: [{ system: SCT, code: '741009001' }] } })));
    expect(left.procedures[0]).toMatchObject({ kind: 'mastectomy', side: 'left', codeSystem: 'SNOMED CT' });
    const bilateral = event(
      read(procedure({ bodySite: [{ coding: [{ system: SCT, code: '51440002', display: 'Right and left' }] }] })),
    );
    expect(bilateral.procedures[0]).toMatchObject({ kind: 'mastectomy', side: 'bilateral' });
    expect(suspensionReason(bilateral)).toMatch(/bilateral mastectomy .*consider ceasing/);
    const opcs = event(
      read(
        procedure({
          code: { coding: [{ system: 'http://hl7.org/fhir/sid/opcs-4', code: 'B28.2', display: 'Partial excision' }] },
          bodySite: [{ text: 'Right' }],
        }),
      ),
    );
    expect(opcs.procedures[0]).toEqual({
      code: 'B28.2',
      kind: 'excision',
      text: 'Partial excision',
      side: 'right',
      date: '2026-11-09',
    });
  });

  it('records implant insertion without suspending; chemotherapy and radiotherapy suspend', () => {
    const implant = event(read(procedure({ code: { coding: [{ system: SCT, code: '302343007' }] } })));
    expect(implant.procedures[0]?.kind).toBe('implant');
    expect(suspends(implant)).toBe(false);
    const radiotherapy = event(
      read(procedure({ status: 'in-progress', code: { coding: [{ system: SCT, code: '33195004' }] } })),
    );
    expect(suspends(radiotherapy)).toBe(true);
    expect(suspensionReason(radiotherapy)).toBe('Trust EPR: radiotherapy (SNOMED CT 33195004) on 9 November 2026');
  });

  it('does not act on a procedure that has not happened; withdraws one entered in error', () => {
    expect(read(procedure({ status: 'preparation' }))).toMatchObject({ kind: 'ignored' });
    expect(read(procedure({ status: 'entered-in-error' }))).toMatchObject({ kind: 'withdrawn' });
  });

  it('reads an Encounter: type as treatment, reasonCode as diagnosis, dated period.start', () => {
    const reading = read({
      resourceType: 'Encounter',
      id: 'e1',
      status: 'finished',
      type: [{ coding: [{ system: SCT, code: '367336001', display: 'Chemotherapy' }] }],
      reasonCode: [{ coding: [{ system: 'http://hl7.org/fhir/sid/icd-10-uk', code: 'D05.1' }] }],
      subject,
      period: { start: '2026-11-16T09:00:00Z', end: '2026-11-16T13:00:00Z' },
    });
    expect(event(reading)).toEqual({
      nhsNumber,
      diagnoses: [{ code: 'D05.1', kind: 'carcinoma_in_situ', text: '', date: '2026-11-16' }],
      procedures: [
        {
          code: '367336001',
          codeSystem: 'SNOMED CT',
          kind: 'chemotherapy',
          text: 'Chemotherapy',
          side: null,
          date: '2026-11-16',
        },
      ],
    });
    expect(
      read({
        resourceType: 'Encounter',
        id: 'e2',
        status: 'planned',
        type: reading.kind === 'event' ? [] : [],
        subject,
      }),
    ).toMatchObject({ kind: 'ignored' });
    expect(
      read({
        resourceType: 'Encounter',
        status: 'planned',
        type: [{ coding: [{ system: SCT, code: '367336001' }] }],
        subject,
      }),
    ).toMatchObject({ kind: 'ignored', why: 'The encounter is planned: nothing applied until it has begun' });
  });
});

describe('the code table', () => {
  it('holds each SNOMED CT concept once, and classifies by it', () => {
    const codes = SYMPTOMATIC_CODES.map((c) => c.code);
    expect(new Set(codes).size).toBe(codes.length);
    for (const entry of SYMPTOMATIC_CODES)
      expect(classifyCoding({ system: SCT, code: entry.code })).toMatchObject({ type: entry.fact.type });
    expect(classifyCoding({ system: 'http://example.org/other', code: '254837009' })).toBeUndefined();
  });
});

describe('FHIR Bundles of the symptomatic link', () => {
  it('reads each entry, resolving subject references to a Patient entry', () => {
    const bundle = readSymptomaticBundle(
      {
        resourceType: 'Bundle',
        type: 'transaction',
        entry: [
          {
            fullUrl: 'urn:uuid:p',
            resource: { resourceType: 'Patient', identifier: [{ system: NHS, value: nhsNumber }] },
          },
          { fullUrl: 'urn:uuid:c', resource: condition({ subject: { reference: 'urn:uuid:p' } }) },
          { resource: procedure() },
        ],
      },
      TODAY,
    );
    expect(bundle.kind).toBe('bundle');
    if (bundle.kind !== 'bundle') return;
    expect(bundle.entries.map((e) => [e.index, e.fullUrl, e.reading.kind])).toEqual([
      [1, 'urn:uuid:c', 'event'],
      [2, null, 'event'],
    ]);
  });

  it('reports every malformed entry with its place; refuses batch, empty and non-Bundle bodies', () => {
    const bad = readSymptomaticBundle(
      {
        resourceType: 'Bundle',
        type: 'collection',
        entry: [{ resource: condition({ onsetDateTime: 'soon' }) }, {}, { resource: procedure({ status: 'x' }) }],
      },
      TODAY,
    );
    expect(bad.kind === 'invalid' && bad.issues.map((i) => i.expression)).toEqual([
      'Bundle.entry[0].resource.onsetDateTime',
      'Bundle.entry[1].resource',
      'Bundle.entry[2].resource.status',
    ]);
    const refusal = (body: unknown) => {
      const r = readSymptomaticBundle(body, TODAY);
      return r.kind === 'invalid' ? r.issues[0]?.expression : undefined;
    };
    expect(refusal({ resourceType: 'Bundle', type: 'batch', entry: [{ resource: condition() }] })).toBe('Bundle.type');
    expect(refusal({ resourceType: 'Bundle', type: 'transaction', entry: [] })).toBe('Bundle.entry');
    expect(refusal(condition())).toBe('resourceType');
    expect(
      refusal({ resourceType: 'Bundle', type: 'transaction', entry: [{ resource: { resourceType: 'Patient' } }] }),
    ).toBe('Bundle.entry');
  });
});

describe('robustness', () => {
  it('answers any JSON with a reading, never a throw', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        const reading = read(value);
        expect(['event', 'ignored', 'withdrawn', 'invalid']).toContain(reading.kind);
        const bundle = readSymptomaticBundle(value, TODAY);
        expect(['bundle', 'invalid']).toContain(bundle.kind);
      }),
      { numRuns: 300 },
    );
  });

  it('answers a Condition with any one field replaced by any JSON with a reading or issues naming a place', () => {
    const fields = Object.keys(condition());
    fc.assert(
      fc.property(fc.constantFrom(...fields), fc.jsonValue(), (field, value) => {
        const reading = read({ ...condition(), [field]: value });
        if (reading.kind === 'invalid') {
          expect(reading.issues.length).toBeGreaterThan(0);
          for (const issue of reading.issues) expect(issue.expression).not.toBe('');
        }
      }),
      { numRuns: 500 },
    );
  });
});
