import { describe, expect, it } from 'vitest';
import { parseMessage } from '../../../src/hl7/message.js';
import { interpretMessage } from '../../../src/hl7/symptomatic-messages.js';
import { testRangeNhsNumbers } from '../../../src/pathway/nhs-number.js';
import { suspensionDecision, type SymptomaticEvent } from '../../../src/pathway/symptomatic.js';

const NHS = testRangeNhsNumbers(42).next().value as string;
const TODAY = '2026-11-23';
const msh = (type: string, id = 'M1', extra = '') =>
  `MSH|^~\\&|EPR|RX1|SCREENING-HUB|NHSBSP|20261103101500||${type}|${id}|P|2.5.1${extra}`;
const pid = (nhs = NHS) => `PID|1||RX1-77^^^RX1^MR~${nhs}^^^NHS^NH||Testwoman^Jane||19660514|F`;
const read = (...segments: string[]) => interpretMessage(parseMessage(segments.join('\r')), TODAY);

describe('reading symptomatic link messages', () => {
  it('reads a breast cancer diagnosis from DG1 of an ADT^A08', () => {
    const result = read(
      msh('ADT^A08^ADT_A01'),
      'EVN|A08|20261103',
      pid(),
      'DG1|1||C50.4^Malignant neoplasm of upper-outer quadrant of breast^I10||20261101|F',
      'DG1|2||E11.9^Type 2 diabetes^I10||20200101|F',
    );
    expect(result).toEqual({
      kind: 'event',
      eventDate: '2026-11-03',
      event: {
        nhsNumber: NHS,
        diagnoses: [
          {
            code: 'C50.4',
            kind: 'breast_cancer',
            text: 'Malignant neoplasm of upper-outer quadrant of breast',
            date: '2026-11-01',
          },
        ],
        procedures: [],
      },
    });
  });

  it('reads a coded OBX of an ORU^R01, dated by OBR-7, and skips deleted results and other codings', () => {
    const result = read(
      msh('ORU^R01^ORU_R01'),
      pid(),
      'OBR|1||LAB1|HISTO^Histopathology|||20261028',
      'OBX|1|CWE|DX^Diagnosis||D05.1^Intraductal carcinoma in situ^I10||||||F',
      'OBX|2|CWE|DX^Diagnosis||C509^Breast cancer^I10||||||D',
      'OBX|3|CWE|DX^Diagnosis||254837009^Malignant neoplasm of breast^SCT||||||F',
      'OBX|4|TX|NOTE^Note||C50.9||||||F',
    );
    expect(result.kind === 'event' && result.event.diagnoses).toEqual([
      { code: 'D05.1', kind: 'carcinoma_in_situ', text: 'Intraductal carcinoma in situ', date: '2026-10-28' },
    ]);
  });

  it('reads procedures with their side, and ignores codes outside the set', () => {
    const result = read(
      msh('ADT^A03'),
      'EVN|A03|20261110',
      pid(),
      'PR1|1||B27.4^Total mastectomy NEC^OPCS4||20261109|||||||||||Z94.3^Left sided^OPCS4',
      'PR1|2||B301^Insertion of prosthesis for breast^OPCS4||20261109|||||||||||BIL',
      'PR1|3||B28.2^Partial excision of breast^OPCS4||20261109',
      'PR1|4||H22.1^Colonoscopy^OPCS4||20261109',
    );
    expect(result.kind === 'event' && result.event.procedures).toEqual([
      { code: 'B27.4', kind: 'mastectomy', text: 'Total mastectomy NEC', side: 'left', date: '2026-11-09' },
      {
        code: 'B30.1',
        kind: 'implant',
        text: 'Insertion of prosthesis for breast',
        side: 'bilateral',
        date: '2026-11-09',
      },
      { code: 'B28.2', kind: 'excision', text: 'Partial excision of breast', side: null, date: '2026-11-09' },
    ]);
  });

  it('takes a message with nothing of interest as an event with no facts', () => {
    const result = read(msh('ADT^A31'), 'EVN|A31|20261103', pid());
    expect(result).toMatchObject({ kind: 'event', event: { diagnoses: [], procedures: [] } });
  });

  it.each([
    [[msh('SIU^S12'), pid()], 'unsupportedMessageType', /SIU\^S12.*not taken/],
    [[msh('ADT^A28'), pid()], 'unsupportedEventCode', /ADT\^A28/],
    [[msh('ADT^A08').replace('|P|', '|T|'), pid()], 'unsupportedProcessingId', /P \(production\)/],
    [[msh('ADT^A08').replace('2.5.1', '3.0'), pid()], 'unsupportedVersionId', /3\.0/],
    [[msh('ADT^A08', ''), pid()], 'requiredFieldMissing', /MSH-10/],
    [[msh('ADT^A08').replace('|RX1|', '||'), pid()], 'requiredFieldMissing', /MSH-4/],
    [[msh('ADT^A08')], 'segmentSequence', /one PID/],
    [[msh('ADT^A08'), 'PID|1||RX1-77^^^RX1^MR'], 'requiredFieldMissing', /no NHS number/],
    [[msh('ADT^A08'), pid('9990000010')], 'dataTypeError', /check digit/],
    [[msh('ADT^A08'), pid(), 'DG1|1||C50.9^x^I10||2026-11-01'], 'dataTypeError', /DG1-5 is not a date/],
    [[msh('ADT^A08'), pid(), 'DG1|1||C50.9^x^I10||20301101'], 'dataTypeError', /future/],
  ])('rejects a malformed or unsupported message (%#)', (segments, error, reason) => {
    const result = read(...segments);
    expect(result.kind).toBe('reject');
    if (result.kind !== 'reject') return;
    expect(result.error).toBe(error);
    expect(result.reason).toMatch(reason);
  });
});

describe('when invitations are suspended', () => {
  const event = (date: string, kind: 'diagnosis' | 'implant' | 'mastectomy' = 'diagnosis'): SymptomaticEvent => ({
    nhsNumber: NHS,
    diagnoses: kind === 'diagnosis' ? [{ code: 'C50.9', kind: 'breast_cancer', text: '', date }] : [],
    procedures:
      kind === 'diagnosis'
        ? []
        : [{ code: kind === 'implant' ? 'B30.1' : 'B27.1', kind, text: '', side: 'bilateral', date }],
  });

  it('suspends on a diagnosis or surgery, not on implants alone', () => {
    expect(suspensionDecision(event('2026-11-01'), { active: false, lastLiftedOn: null })).toMatchObject({
      suspend: 'start',
      since: '2026-11-01',
    });
    expect(suspensionDecision(event('2026-11-01', 'implant'), { active: false, lastLiftedOn: null }).suspend).toBe(
      'no',
    );
    const bilateral = suspensionDecision(event('2026-11-01', 'mastectomy'), { active: false, lastLiftedOn: null });
    expect(bilateral.suspend === 'start' && bilateral.reason).toMatch(/bilateral mastectomy.*consider ceasing/i);
  });

  it('keeps one suspension, and an event not after the last lift does not suspend again', () => {
    expect(suspensionDecision(event('2026-11-01'), { active: true, lastLiftedOn: null }).suspend).toBe('already');
    expect(suspensionDecision(event('2026-11-01'), { active: false, lastLiftedOn: '2026-11-10' }).suspend).toBe('no');
    expect(suspensionDecision(event('2026-11-10'), { active: false, lastLiftedOn: '2026-11-10' }).suspend).toBe('no');
    expect(suspensionDecision(event('2026-11-11'), { active: false, lastLiftedOn: '2026-11-10' }).suspend).toBe(
      'start',
    );
  });
});
