import { describe, expect, it } from 'vitest';
import { findWorklist, matches, responseFor, textOf, type DicomItem } from '../../../src/dicom/worklist-matching.js';
import { personName, studyInstanceUid, worklistItem } from '../../../src/dicom/worklist-item.js';

const item = (name: string, date: string, time = '090000', station = 'MAMMO1'): DicomItem => ({
  PatientName: name,
  PatientID: '9990000018',
  StudyInstanceUID: '1.2.3',
  ScheduledProcedureStepSequence: [
    {
      Modality: 'MG',
      ScheduledProcedureStepStartDate: date,
      ScheduledProcedureStepStartTime: time,
      ScheduledStationAETitle: station,
    },
  ],
});

describe('PS3.4 C.2.2.2 worklist matching', () => {
  const smith = item('SMITH^Ada', '20261123');

  it('universal matching: empty keys and a lone * match everything', () => {
    expect(matches({ PatientName: '', PatientID: '*', ScheduledProcedureStepSequence: [] }, smith)).toBe(true);
    expect(matches({ ScheduledProcedureStepSequence: [{ Modality: '' }] }, smith)).toBe(true);
  });

  it('single value matching: exact for text, case-insensitive for person names, trailing padding ignored', () => {
    expect(matches({ PatientID: '9990000018' }, smith)).toBe(true);
    expect(matches({ PatientID: '999000001' }, smith)).toBe(false);
    expect(matches({ PatientName: 'smith^ada' }, smith)).toBe(true);
    expect(matches({ PatientName: 'SMITH^Ada ' }, smith)).toBe(true);
    expect(matches({ PatientName: 'SMITH' }, smith)).toBe(false);
    expect(matches({ PatientName: [{ Alphabetic: 'SMITH^ADA' }] }, smith)).toBe(true);
  });

  it('wildcards: * for any run (also none), ? for exactly one character, regex characters taken literally', () => {
    expect(matches({ PatientName: 'SM*' }, smith)).toBe(true);
    expect(matches({ PatientName: 'SMITH^Ada*' }, smith)).toBe(true);
    expect(matches({ PatientName: 'SM?TH*' }, smith)).toBe(true);
    expect(matches({ PatientName: 'SM?ITH*' }, smith)).toBe(false);
    expect(matches({ PatientName: 'S.*' }, smith)).toBe(false);
    expect(matches({ PatientName: '*^(Ada)' }, item('SMITH^(Ada)', '20261123'))).toBe(true);
  });

  it('date ranges are inclusive and open-ended; a single date is exact; dates never take wildcards', () => {
    const key = (d: string) => ({ ScheduledProcedureStepSequence: [{ ScheduledProcedureStepStartDate: d }] });
    expect(matches(key('20261123'), smith)).toBe(true);
    expect(matches(key('20261124'), smith)).toBe(false);
    expect(matches(key('20261123-20261123'), smith)).toBe(true);
    expect(matches(key('20261120-20261122'), smith)).toBe(false);
    expect(matches(key('-20261123'), smith)).toBe(true);
    expect(matches(key('20261124-'), smith)).toBe(false);
    expect(matches(key('2026112?'), smith)).toBe(false);
  });

  it('time ranges compare on the digits given', () => {
    const key = (t: string) => ({ ScheduledProcedureStepSequence: [{ ScheduledProcedureStepStartTime: t }] });
    expect(matches(key('0800-1200'), smith)).toBe(true);
    expect(matches(key('1000-'), smith)).toBe(false);
    expect(matches(key('-0900'), smith)).toBe(true);
  });

  it('keys it does not support match everything (as PS3.4 allows for optional keys) and come back empty', () => {
    // dcmjs-dimse's worklist query sends Pregnancy Status 0 and its own _vrMap by default.
    const query: DicomItem = { _vrMap: {}, PregnancyStatus: 0, MedicalAlerts: 'x', PatientID: '9990000018' };
    expect(matches(query, smith)).toBe(true);
    expect(responseFor(query, smith)).toEqual({ PregnancyStatus: '', MedicalAlerts: '', PatientID: '9990000018' });
  });

  it('list of UID matching', () => {
    expect(matches({ StudyInstanceUID: '1.2.4\\1.2.3' }, smith)).toBe(true);
    expect(matches({ StudyInstanceUID: '1.2.*' }, smith)).toBe(false);
  });

  it('sequence matching needs one entry item to match the whole query item', () => {
    const twoSteps: DicomItem = {
      ScheduledProcedureStepSequence: [
        { Modality: 'US', ScheduledStationAETitle: 'MAMMO1' },
        { Modality: 'MG', ScheduledStationAETitle: 'MAMMO2' },
      ],
    };
    expect(
      matches({ ScheduledProcedureStepSequence: [{ Modality: 'MG', ScheduledStationAETitle: 'MAMMO2' }] }, twoSteps),
    ).toBe(true);
    expect(
      matches({ ScheduledProcedureStepSequence: [{ Modality: 'MG', ScheduledStationAETitle: 'MAMMO1' }] }, twoSteps),
    ).toBe(false);
  });

  it('returns exactly the keys asked for, empty where the entry has none, and only matching sequence items', () => {
    const response = responseFor(
      {
        PatientID: '',
        PatientSex: '',
        QueryRetrieveLevel: '',
        ScheduledProcedureStepSequence: [{ Modality: 'MG', ScheduledStationAETitle: '' }],
      },
      smith,
    );
    expect(response).toEqual({
      PatientID: '9990000018',
      PatientSex: '',
      ScheduledProcedureStepSequence: [{ Modality: 'MG', ScheduledStationAETitle: 'MAMMO1' }],
    });
    expect(
      findWorklist({ PatientName: 'J*' }, [smith, item('JONES^Mary', '20261123')]).map((r) => textOf(r.PatientName)),
    ).toEqual(['JONES^Mary']);
  });
});

describe('worklist items', () => {
  it('builds DICOM names and UIDs that survive awkward input', () => {
    expect(personName("O'Brien-Smith", 'Mary Ann')).toBe("O'BRIEN-SMITH^Mary Ann");
    expect(personName('Evil^Name\\X', 'a=b')).toBe('EVIL NAME X^a b');
    const uid = studyInstanceUid('123e4567-e89b-42d3-a456-426614174000');
    expect(uid).toMatch(/^2\.25\.[1-9][0-9]*$/);
    expect(uid.length).toBeLessThanOrEqual(64);
  });

  it('maps an appointment to an MG worklist item with the NHS number as Patient ID', () => {
    const dicom = worklistItem({
      appointmentId: '123e4567-e89b-42d3-a456-426614174000',
      participantId: '123e4567-e89b-42d3-a456-426614174001',
      status: 'scheduled',
      accessionNumber: 'SH00000042',
      nhsNumber: '9990000018',
      givenName: 'Ada',
      familyName: 'Smith',
      dateOfBirth: '1960-02-29',
      sex: 'female',
      clinicDate: '2026-11-23',
      startTime: '14:10',
      stationAeTitle: 'MOBILE1',
      locationName: 'Wharfe Valley Health Centre',
      adjustments: ['Wheelchair user'],
    });
    expect(dicom).toMatchObject({
      PatientID: '9990000018',
      IssuerOfPatientID: 'NHS',
      PatientBirthDate: '19600229',
      PatientSex: 'F',
      AccessionNumber: 'SH00000042',
    });
    expect(dicom.ScheduledProcedureStepSequence).toEqual([
      expect.objectContaining({
        Modality: 'MG',
        ScheduledProcedureStepStartDate: '20261123',
        ScheduledProcedureStepStartTime: '141000',
        ScheduledStationAETitle: 'MOBILE1',
        ScheduledProcedureStepLocation: 'Wharfe Valley He',
        ScheduledProcedureStepDescription: 'Breast screening: Wheelchair user',
      }),
    ]);
  });
});
