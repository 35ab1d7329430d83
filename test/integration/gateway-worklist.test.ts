import dcmjsDimse from 'dcmjs-dimse';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { worklistItem, type WorklistEntry } from '../../src/dicom/worklist-item.js';
import { startWorklistScp, type WorklistScp } from '../../src/gateway/worklist-scp.js';
import { echoscu, findscuWorklist, freePort, haveDcmtk } from '../support/dcmtk.js';

const entry = (n: number, overrides: Partial<WorklistEntry> = {}): WorklistEntry => ({
  appointmentId: `00000000-0000-4000-8000-00000000000${n}`,
  participantId: `00000000-0000-4000-9000-00000000000${n}`,
  status: 'scheduled',
  accessionNumber: `SH0000000${n}`,
  nhsNumber: ['9990000018', '9990000026', '9990000034', '9990000042'][n - 1]!,
  givenName: ['Ada', 'Grace', 'Mary', 'Jane'][n - 1]!,
  familyName: ['Smith', 'Smythe', 'Jones', 'Brown'][n - 1]!,
  dateOfBirth: '1960-02-29',
  sex: 'female',
  clinicDate: '2026-11-23',
  startTime: `09:${n}0`,
  stationAeTitle: 'MAMMO1',
  locationName: 'Tesco car park',
  adjustments: [],
  ...overrides,
});

describe.skipIf(!haveDcmtk)('gateway worklist (C-FIND SCP) asked by DCMTK findscu -W', () => {
  let scp: WorklistScp;
  let port: number;
  const logs: string[] = [];
  const worklist = [
    entry(1, { adjustments: ['Breast implants'] }),
    entry(2),
    entry(3, { clinicDate: '2026-11-24' }),
    entry(4, { clinicDate: '2026-11-25', stationAeTitle: 'MAMMO2' }),
  ].map(worklistItem);

  beforeAll(async () => {
    port = await freePort();
    scp = startWorklistScp({
      port,
      aeTitle: 'SHGATEWAY',
      allowedCallingAeTitles: ['MAMMO1', 'MAMMO2'],
      worklist: () => worklist,
      log: (level, message) => logs.push(`${level}: ${message}`),
    });
    await new Promise((r) => setTimeout(r, 200));
  });
  afterAll(() => scp?.close());

  const mg = 'ScheduledProcedureStepSequence[0].Modality=MG';

  it('names the worklist SOP class in every response and always says the answer is UTF-8', async () => {
    const { Client, requests, constants } = dcmjsDimse;
    const client = new Client();
    const request = requests.CFindRequest.createWorklistFindRequest({ PatientID: '', PatientName: '' });
    const responses: dcmjsDimse.responses.CFindResponse[] = [];
    request.on('response', (response: dcmjsDimse.responses.CFindResponse) => responses.push(response));
    await new Promise<void>((resolve, reject) => {
      client.on('closed', () => resolve());
      client.on('networkError', reject);
      client.addRequest(request);
      client.send('127.0.0.1', port, 'MAMMO1', 'SHGATEWAY');
    });
    expect(responses.length).toBe(5); // four pending, then success
    for (const response of responses)
      expect(response.getAffectedSopClassUid()).toBe(constants.SopClass.ModalityWorklistInformationModelFind);
    const pending = responses.filter((r) => r.getStatus() === constants.Status.Pending);
    expect(
      pending.map((r) => (r.getDataset()?.getElements() as { SpecificCharacterSet?: string }).SpecificCharacterSet),
    ).toEqual(['ISO_IR 192', 'ISO_IR 192', 'ISO_IR 192', 'ISO_IR 192']);
  });

  it('answers C-ECHO from a configured modality', async () => {
    expect(await echoscu(port)).toBe(0);
  });

  it("returns today's appointments with the standard attributes", async () => {
    const { exitCode, responses } = await findscuWorklist(port, [
      'PatientName',
      'PatientID',
      'PatientBirthDate',
      'PatientSex',
      'AccessionNumber',
      'RequestedProcedureID',
      'StudyInstanceUID',
      mg,
      'ScheduledProcedureStepSequence[0].ScheduledProcedureStepStartDate=20261123',
      'ScheduledProcedureStepSequence[0].ScheduledProcedureStepStartTime',
      'ScheduledProcedureStepSequence[0].ScheduledStationAETitle',
      'ScheduledProcedureStepSequence[0].ScheduledProcedureStepLocation',
      'ScheduledProcedureStepSequence[0].ScheduledProcedureStepID',
      'ScheduledProcedureStepSequence[0].ScheduledProcedureStepDescription',
    ]);
    expect(exitCode).toBe(0);
    expect(responses.map((r) => r.PatientID)).toEqual(['9990000018', '9990000026']);
    const first = responses[0]!;
    expect(first).toMatchObject({
      PatientBirthDate: '19600229',
      PatientSex: 'F',
      AccessionNumber: 'SH00000001',
      RequestedProcedureID: 'SH00000001',
      // PS3.5 B.2: '2.25.' and the appointment UUID as one decimal integer.
      StudyInstanceUID: `2.25.${BigInt('0x00000000000040008000000000000001').toString()}`,
    });
    expect(JSON.stringify(first.PatientName)).toContain('SMITH^Ada');
    const step =
      (first.ScheduledProcedureStepSequence as Record<string, unknown>[])[0] ??
      (first.ScheduledProcedureStepSequence as Record<string, unknown>);
    expect(step).toMatchObject({
      Modality: 'MG',
      ScheduledProcedureStepStartDate: '20261123',
      ScheduledProcedureStepStartTime: '091000',
      ScheduledStationAETitle: 'MAMMO1',
      ScheduledProcedureStepLocation: 'Tesco car park',
      ScheduledProcedureStepID: 'SH00000001',
      ScheduledProcedureStepDescription: 'Breast screening: Breast implants',
    });
  });

  it('matches wildcards in names case-insensitively, date ranges and station AE titles', async () => {
    const byName = await findscuWorklist(port, ['PatientName=sm?th*', 'PatientID', mg]);
    expect(byName.responses.map((r) => r.PatientID)).toEqual(['9990000018', '9990000026']);
    const range = await findscuWorklist(port, [
      'PatientID',
      mg,
      'ScheduledProcedureStepSequence[0].ScheduledProcedureStepStartDate=20261124-20261130',
    ]);
    expect(range.responses.map((r) => r.PatientID)).toEqual(['9990000034', '9990000042']);
    const station = await findscuWorklist(
      port,
      ['PatientID', mg, 'ScheduledProcedureStepSequence[0].ScheduledStationAETitle=MAMMO2'],
      {
        callingAe: 'MAMMO2',
      },
    );
    expect(station.responses.map((r) => r.PatientID)).toEqual(['9990000042']);
    const single = await findscuWorklist(port, ['PatientID=9990000034', mg]);
    expect(single.responses.map((r) => r.PatientID)).toEqual(['9990000034']);
    const none = await findscuWorklist(port, ['PatientID', 'ScheduledProcedureStepSequence[0].Modality=CT']);
    expect(none.exitCode).toBe(0);
    expect(none.responses).toEqual([]);
  });

  it('refuses a modality whose AE title is not configured, and says so in the log', async () => {
    const refused = await findscuWorklist(port, ['PatientID', mg], { callingAe: 'STRANGER' });
    expect(refused.exitCode).not.toBe(0);
    expect(refused.responses).toEqual([]);
    expect(await echoscu(port, 'STRANGER')).not.toBe(0);
    expect(logs.some((l) => l.includes('calling AE title "STRANGER" is not configured'))).toBe(true);
    // And keeps serving the others.
    expect(await echoscu(port)).toBe(0);
  });
});
