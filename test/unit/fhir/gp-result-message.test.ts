import { describe, expect, it } from 'vitest';
import {
  buildGpResponseMessage,
  buildGpResultMessage,
  derivedUuid,
  isUuid,
  MAMMOGRAPHY_NORMAL,
  NHS_NUMBER_SYSTEM,
  ODS_SYSTEM,
  parseGpResponseMessage,
  readGpResultMessage,
  resultConclusion,
  SCREENING_MAMMOGRAPHY,
  type GpResultMessageInput,
  type MessageBundle,
  type Resource,
} from '../../../src/fhir/gp-result-message.js';
import { testRangeNhsNumbers } from '../../../src/pathway/nhs-number.js';

const nhsNumber = testRangeNhsNumbers(6060).next().value as string;
const COMMUNICATION = '5b0d6f43-2a3e-4c8e-9d1f-7a6b5c4d3e2f';
const AT = new Date('2026-11-23T10:15:00Z');

const input = (overrides: Partial<GpResultMessageInput> = {}): GpResultMessageInput => ({
  communicationId: COMMUNICATION,
  kind: 'result_normal',
  at: AT,
  hub: { mailbox: 'HUBMBX01' },
  office: { code: 'TST', name: 'Test Breast Screening Office' },
  practice: { odsCode: 'Y00001', name: 'Riverside Surgery', mailbox: 'Y00001MB' },
  patient: { nhsNumber, givenName: 'Jane', familyName: 'Testwoman', birthDate: '1966-05-14', sex: 'female' },
  effectiveDate: '2026-11-16',
  accessionNumber: 'EX000001AB12',
  finding: { type: 'exam', result: 'routine_recall', nextTestDue: '2029-11-16', followUp: null, followUpProblem: null },
  ...overrides,
});

const resources = (bundle: MessageBundle) => bundle.entry.map((e) => e.resource);
const ofType = (bundle: MessageBundle, type: string) => resources(bundle).filter((r) => r.resourceType === type);
const one = (bundle: MessageBundle, type: string): Resource => {
  const found = ofType(bundle, type);
  expect(found).toHaveLength(1);
  return found[0]!;
};

/** Every { reference } anywhere inside a value. */
function references(value: unknown, found: string[] = []): string[] {
  if (Array.isArray(value)) for (const v of value) references(v, found);
  else if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      if (k === 'reference' && typeof v === 'string') found.push(v);
      else references(v, found);
    }
  }
  return found;
}

describe('the GP result message', () => {
  it('is a message Bundle: MessageHeader first, focused on the DiagnosticReport, from the hub to the practice', () => {
    const bundle = buildGpResultMessage(input());
    expect(bundle).toMatchObject({ resourceType: 'Bundle', type: 'message', timestamp: AT.toISOString() });
    expect(bundle.identifier).toEqual({ system: 'urn:ietf:rfc:3986', value: `urn:uuid:${bundle.id}` });
    expect(resources(bundle).map((r) => r.resourceType)).toEqual([
      'MessageHeader',
      'DiagnosticReport',
      'Patient',
      'Organization',
      'Organization',
    ]);
    const header = bundle.entry[0]!.resource;
    // The MessageHeader id is the communication's own id: a response names it.
    expect(header.id).toBe(COMMUNICATION);
    expect(header).toMatchObject({
      eventCoding: { code: 'breast-screening-result' },
      source: { endpoint: 'HUBMBX01', software: 'screening-hub' },
      destination: [{ endpoint: 'Y00001MB', name: 'Riverside Surgery' }],
    });
    const report = one(bundle, 'DiagnosticReport');
    expect((header.focus as { reference: string }[])[0]!.reference).toBe(`urn:uuid:${report.id}`);
    const [practice, office] = ofType(bundle, 'Organization');
    expect((header.destination as { receiver: { reference: string } }[])[0]!.receiver.reference).toBe(
      `urn:uuid:${practice!.id}`,
    );
    expect((header.sender as { reference: string }).reference).toBe(`urn:uuid:${office!.id}`);
  });

  it('reports a final screening mammography result for her, with the conclusion in words and codes', () => {
    const bundle = buildGpResultMessage(input());
    const report = one(bundle, 'DiagnosticReport');
    const patient = one(bundle, 'Patient');
    expect(report).toMatchObject({
      status: 'final',
      category: [{ coding: [{ code: 'RAD' }] }],
      code: { coding: [SCREENING_MAMMOGRAPHY] },
      subject: { reference: `urn:uuid:${patient.id}` },
      effectiveDateTime: '2026-11-16',
      issued: AT.toISOString(),
      identifier: [{ value: 'EX000001AB12' }],
    });
    expect(report.conclusion).toBe(
      'Normal result: no evidence of breast cancer on screening mammography. Returned to routine recall: next ' +
        'screening due by 16 November 2029.',
    );
    const codes = (report.conclusionCode as { coding: { code: string }[] }[]).map((c) => c.coding[0]!.code);
    expect(codes).toEqual(['routine_recall', MAMMOGRAPHY_NORMAL.code]);
    expect(patient).toMatchObject({
      identifier: [{ system: NHS_NUMBER_SYSTEM, value: nhsNumber }],
      name: [{ family: 'Testwoman', given: ['Jane'] }],
      birthDate: '1966-05-14',
      gender: 'female',
    });
    const [practice, office] = ofType(bundle, 'Organization');
    expect(practice).toMatchObject({
      identifier: [{ system: ODS_SYSTEM, value: 'Y00001' }],
      name: 'Riverside Surgery',
    });
    expect(office).toMatchObject({ identifier: [{ value: 'TST' }], name: 'Test Breast Screening Office' });
  });

  it('resolves every reference to an entry of the Bundle, and every fullUrl is its resource id', () => {
    for (const finding of [
      input().finding,
      {
        type: 'exam',
        result: 'recall_assessment',
        nextTestDue: null,
        followUp: { date: '2026-12-01', place: 'Central Breast Unit' },
        followUpProblem: null,
      },
      {
        type: 'assessment',
        outcome: 'malignant_invasive',
        side: 'left',
        sizeMm: 14,
        grade: 2,
        earlyRecallMonths: null,
        referredToTreatment: true,
        treatmentProvider: 'Leeds Teaching Hospitals',
        decidedOn: '2026-12-10',
      },
    ] as GpResultMessageInput['finding'][]) {
      const bundle = buildGpResultMessage(input({ finding }));
      const fullUrls = new Set(bundle.entry.map((e) => e.fullUrl));
      for (const e of bundle.entry) expect(e.fullUrl).toBe(`urn:uuid:${e.resource.id}`);
      const refs = references(bundle.entry.map((e) => e.resource));
      expect(refs.length).toBeGreaterThanOrEqual(6);
      for (const ref of refs) expect(fullUrls.has(ref), ref).toBe(true);
      expect(new Set(bundle.entry.map((e) => e.resource.id)).size).toBe(bundle.entry.length);
    }
  });

  it('makes the same message from the same communication, and a new one for a resend', () => {
    const a = buildGpResultMessage(input());
    expect(buildGpResultMessage(input())).toEqual(a);
    const other = buildGpResultMessage(input({ communicationId: derivedUuid('another') }));
    expect(other.id).not.toBe(a.id);
    const resend = buildGpResultMessage(input({ generation: 1 }));
    expect(resend.entry[0]!.resource.id).not.toBe(COMMUNICATION);
    const ids = (b: MessageBundle) => b.entry.map((e) => e.resource.id);
    expect(ids(resend).filter((id) => ids(a).includes(id))).toEqual([]);
    for (const id of [...ids(a), ...ids(resend), a.id]) expect(isUuid(id)).toBe(true);
  });

  it('says what comes next in words a GP reads', () => {
    expect(
      resultConclusion({
        type: 'exam',
        result: 'technical_recall',
        nextTestDue: null,
        followUp: { date: '2026-11-30', place: 'Central Breast Unit' },
        followUpProblem: null,
      }),
    ).toMatch(/invited back for more images\. Appointment: 30 November 2026 at Central Breast Unit\.$/);
    expect(
      resultConclusion({
        type: 'exam',
        result: 'recall_assessment',
        nextTestDue: null,
        followUp: null,
        followUpProblem: 'no assessment clinic with room',
      }),
    ).toMatch(/No appointment could be booked yet \(no assessment clinic with room\)/);
    expect(
      resultConclusion({
        type: 'assessment',
        outcome: 'malignant_invasive',
        side: 'left',
        sizeMm: 14,
        grade: 2,
        earlyRecallMonths: null,
        referredToTreatment: true,
        treatmentProvider: 'Leeds Teaching Hospitals',
        decidedOn: '2026-12-10',
      }),
    ).toBe(
      'Assessment outcome: Malignant: invasive, left breast, invasive size 14 mm, grade 2 (decided 10 December ' +
        '2026). Referred for treatment at Leeds Teaching Hospitals.',
    );
    expect(
      resultConclusion({
        type: 'assessment',
        outcome: 'benign',
        side: null,
        sizeMm: null,
        grade: null,
        earlyRecallMonths: 12,
        referredToTreatment: false,
        treatmentProvider: null,
        decidedOn: '2026-12-10',
      }),
    ).toMatch(/Benign .*Early recall: next screening in 12 months\.$/);
  });

  it('is read back by a practice system: its id, where to answer, her NHS number and the conclusion', () => {
    const bundle = buildGpResultMessage(input());
    const read = readGpResultMessage(JSON.parse(JSON.stringify(bundle)));
    expect(read).toMatchObject({ ok: true, messageId: COMMUNICATION, sourceEndpoint: 'HUBMBX01', nhsNumber });
    expect(readGpResultMessage({ resourceType: 'Bundle', type: 'collection' })).toMatchObject({ ok: false });
  });
});

describe('the practice response', () => {
  const response = (code: 'ok' | 'transient-error' | 'fatal-error', details?: string) =>
    buildGpResponseMessage({
      originalMessageId: COMMUNICATION,
      code,
      from: { mailbox: 'Y00001MB', name: 'Riverside Surgery' },
      to: 'HUBMBX01',
      at: AT,
      ...(details ? { details } : {}),
    });

  it('names the message it answers and how', () => {
    const ok = response('ok');
    const parsed = parseGpResponseMessage(JSON.parse(JSON.stringify(ok)));
    expect(parsed).toEqual({
      ok: true,
      messageId: ok.entry[0]!.resource.id,
      originalMessageId: COMMUNICATION,
      code: 'ok',
      details: null,
    });
  });

  it('carries the reason for an error in an OperationOutcome the header refers to', () => {
    const fatal = response('fatal-error', 'Patient not registered at this practice');
    expect(fatal.entry.map((e) => e.resource.resourceType)).toEqual(['MessageHeader', 'OperationOutcome']);
    expect(parseGpResponseMessage(fatal)).toMatchObject({
      ok: true,
      code: 'fatal-error',
      details: 'Patient not registered at this practice',
    });
  });

  it('refuses what is not a response', () => {
    expect(parseGpResponseMessage(null)).toEqual({ ok: false, problem: 'not a FHIR Bundle' });
    expect(parseGpResponseMessage({ resourceType: 'Bundle', type: 'document', entry: [] })).toMatchObject({
      ok: false,
    });
    // A result message is not a response: it has no MessageHeader.response.
    expect(parseGpResponseMessage(buildGpResultMessage(input()))).toMatchObject({
      ok: false,
      problem: expect.stringContaining('response is missing'),
    });
    const bad = JSON.parse(JSON.stringify(response('ok')));
    bad.entry[0].resource.response.code = 'fine';
    expect(parseGpResponseMessage(bad)).toMatchObject({ ok: false, problem: expect.stringContaining('"fine"') });
    delete bad.entry[0].resource.response.identifier;
    expect(parseGpResponseMessage(bad)).toMatchObject({ ok: false, problem: expect.stringContaining('identifier') });
  });
});
