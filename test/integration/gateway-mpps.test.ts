import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DicomItem } from '../../src/dicom/worklist-matching.js';
import { ProcedureStepStore, type ProcedureStepEvent } from '../../src/gateway/procedure-steps.js';
import { startWorklistScp, type WorklistScp } from '../../src/gateway/worklist-scp.js';
import { findscuWorklist, freePort, haveDcmtk } from '../support/dcmtk.js';
import { sendMpps } from '../support/mpps-client.js';

const TODAY = '20261123';
/** Two synthetic appointments on today's list (NHS numbers from the 999 test range). */
const worklist: DicomItem[] = [
  ['SH00000101', '9990000018', 'SMITH^Ada', '2.25.1001'],
  ['SH00000102', '9990000026', 'JONES^Bea', '2.25.1002'],
].map(([accession, nhsNumber, name, study]) => ({
  AccessionNumber: accession,
  PatientName: name,
  PatientID: nhsNumber,
  IssuerOfPatientID: 'NHS',
  StudyInstanceUID: study,
  RequestedProcedureID: accession,
  RequestedProcedureDescription: 'Breast screening mammography',
  ScheduledProcedureStepSequence: [
    {
      Modality: 'MG',
      ScheduledStationAETitle: 'MAMMO1',
      ScheduledProcedureStepStartDate: TODAY,
      ScheduledProcedureStepStartTime: '093000',
      ScheduledProcedureStepID: accession,
      ScheduledProcedureStepDescription: 'Breast screening',
    },
  ],
}));

/** The N-CREATE a mammography machine sends when it starts the exam it picked from the worklist (PS3.4 F.7.2.1). */
function started(item: Record<string, unknown>, status = 'IN PROGRESS'): Record<string, unknown> {
  const step = (item.ScheduledProcedureStepSequence as Record<string, unknown>[])[0]!;
  return {
    SpecificCharacterSet: 'ISO_IR 192',
    ScheduledStepAttributesSequence: [
      {
        StudyInstanceUID: item.StudyInstanceUID,
        AccessionNumber: item.AccessionNumber,
        RequestedProcedureID: item.RequestedProcedureID,
        RequestedProcedureDescription: 'Breast screening mammography',
        ScheduledProcedureStepID: step.ScheduledProcedureStepID,
        ScheduledProcedureStepDescription: 'Breast screening',
      },
    ],
    PatientName: item.PatientName,
    PatientID: item.PatientID,
    PerformedProcedureStepID: 'PPS0001',
    PerformedStationAETitle: 'MAMMO1',
    PerformedProcedureStepStartDate: TODAY,
    PerformedProcedureStepStartTime: '093512',
    PerformedProcedureStepStatus: status,
    Modality: 'MG',
    StudyID: '1',
    PerformedSeriesSequence: [],
  };
}

/** The final N-SET: the series the exam made, with one reference per image. */
function ended(status: 'COMPLETED' | 'DISCONTINUED', images: number, reason?: [string, string]) {
  return {
    PerformedProcedureStepStatus: status,
    PerformedProcedureStepEndDate: TODAY,
    PerformedProcedureStepEndTime: '094210',
    PerformedSeriesSequence: [
      {
        SeriesInstanceUID: '2.25.5001',
        PerformingPhysicianName: '',
        ProtocolName: 'Screening',
        OperatorsName: '',
        ReferencedImageSequence: Array.from({ length: images }, (_, i) => ({
          ReferencedSOPClassUID: '1.2.840.10008.5.1.4.1.1.1.2',
          ReferencedSOPInstanceUID: `2.25.5001.${i + 1}`,
        })),
        ReferencedNonImageCompositeSOPInstanceSequence: [],
      },
    ],
    ...(reason
      ? {
          PerformedProcedureStepDiscontinuationReasonCodeSequence: [
            { CodeValue: reason[0], CodingSchemeDesignator: 'DCM', CodeMeaning: reason[1] },
          ],
        }
      : {}),
  };
}

describe.skipIf(!haveDcmtk)('gateway MPPS SCP (N-CREATE, N-SET) driven by a dcmjs-dimse client', () => {
  let dir: string;
  let port: number;
  let scp: WorklistScp;
  const events: (ProcedureStepEvent & { journalled: boolean })[] = [];
  const logs: string[] = [];
  const journal = () => readFileSync(join(dir, 'procedure-steps.jsonl'), 'utf8');

  const start = async () => {
    port = await freePort();
    scp = startWorklistScp({
      port,
      aeTitle: 'SHGATEWAY',
      allowedCallingAeTitles: ['MAMMO1'],
      worklist: () => worklist,
      procedureSteps: new ProcedureStepStore(dir),
      // Each event must find its step's new state in the journal already.
      onProcedureStep: (event) =>
        events.push({
          ...event,
          journalled: journal()
            .trim()
            .split('\n')
            .some(
              (line) =>
                line.includes(event.sopInstanceUid) && line.includes(event.kind.replace('_', ' ').toUpperCase()),
            ),
        }),
      log: (level, message) => logs.push(`${level}: ${message}`),
    });
    await new Promise((r) => setTimeout(r, 200));
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'mpps-'));
    await start();
  });
  afterAll(() => {
    scp?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('records an exam picked from the worklist from IN PROGRESS to COMPLETED, with its images', async () => {
    const found = await findscuWorklist(port, [
      'AccessionNumber',
      'PatientName',
      'PatientID',
      'StudyInstanceUID',
      'RequestedProcedureID',
      'ScheduledProcedureStepSequence[0].Modality=MG',
      'ScheduledProcedureStepSequence[0].ScheduledProcedureStepID',
      'ScheduledProcedureStepSequence[0].ScheduledProcedureStepStartDate=' + TODAY,
    ]);
    const ada = found.responses.find((r) => r.PatientID === '9990000018')!;
    expect(ada).toBeDefined();

    const [create, set] = await sendMpps(port, [
      { op: 'create', sopInstanceUid: '2.25.700001', dataset: started(ada) },
      { op: 'set', sopInstanceUid: '2.25.700001', dataset: ended('COMPLETED', 4) },
    ]);
    expect(create).toMatchObject({ status: 0, sopInstanceUid: '2.25.700001' });
    expect(set).toMatchObject({ status: 0, sopInstanceUid: '2.25.700001' });
    expect(events.filter((e) => e.sopInstanceUid === '2.25.700001')).toEqual([
      {
        kind: 'in_progress',
        sopInstanceUid: '2.25.700001',
        accessionNumber: 'SH00000101',
        patientId: '9990000018',
        imageCount: 0,
        at: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
        journalled: true,
      },
      {
        kind: 'completed',
        sopInstanceUid: '2.25.700001',
        accessionNumber: 'SH00000101',
        patientId: '9990000018',
        imageCount: 4,
        at: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
        journalled: true,
      },
    ]);
    expect(logs).toContain('info: Procedure step 2.25.700001 from MAMMO1 in progress (accession SH00000101)');
    expect(logs).toContain('info: Procedure step 2.25.700001 from MAMMO1 completed: 4 image(s) (accession SH00000101)');
  });

  it('makes the instance UID when the modality sends none, and records a discontinued exam with its reason', async () => {
    const [create] = await sendMpps(port, [
      { op: 'create', sopInstanceUid: undefined, dataset: started(worklist[1]!) },
    ]);
    expect(create!.status).toBe(0);
    const uid = create!.sopInstanceUid!;
    expect(uid).toMatch(/^2\.25\.\d+$/);
    expect(uid.length).toBeLessThanOrEqual(64);

    // An intermediate N-SET (still IN PROGRESS) is recorded but is no news for the hub.
    const before = events.length;
    const [progress, stop] = await sendMpps(port, [
      {
        op: 'set',
        sopInstanceUid: uid,
        dataset: { ...ended('COMPLETED', 1), PerformedProcedureStepStatus: 'IN PROGRESS' },
      },
      {
        op: 'set',
        sopInstanceUid: uid,
        dataset: ended('DISCONTINUED', 2, ['110515', 'Patient condition prevented continuing']),
      },
    ]);
    expect(progress!.status).toBe(0);
    expect(stop!.status).toBe(0);
    expect(events.find((e) => e.sopInstanceUid === uid && e.kind === 'in_progress')).toMatchObject({
      accessionNumber: 'SH00000102',
      patientId: '9990000026',
    });
    expect(events.slice(before)).toEqual([
      expect.objectContaining({
        kind: 'discontinued',
        sopInstanceUid: uid,
        imageCount: 2,
        reason: 'Patient condition prevented continuing',
        journalled: true,
      }),
    ]);
    expect(
      logs.some((l) => l.includes(`${uid} from MAMMO1 discontinued: Patient condition prevented continuing`)),
    ).toBe(true);
  });

  it('refuses N-SET of an unknown step, a change to a finished one, a duplicate N-CREATE and one not IN PROGRESS', async () => {
    const before = events.length;
    const [unknown, again, duplicate, notStarted] = await sendMpps(port, [
      { op: 'set', sopInstanceUid: '2.25.799999', dataset: ended('COMPLETED', 1) },
      {
        op: 'set',
        sopInstanceUid: '2.25.700001',
        dataset: ended('DISCONTINUED', 1, ['110514', 'Incorrect worklist entry selected']),
      },
      { op: 'create', sopInstanceUid: '2.25.700001', dataset: started(worklist[0]!) },
      { op: 'create', sopInstanceUid: '2.25.700002', dataset: started(worklist[0]!, 'COMPLETED') },
    ]);
    expect(unknown!.status).toBe(0x0112); // No such object instance
    expect(again!.status).toBe(0x0110); // Processing failure: COMPLETED already (PS3.4 F.7.2.2)
    expect(again!.errorComment).toMatch(/COMPLETED already/);
    expect(duplicate!.status).toBe(0x0111); // Duplicate SOP instance
    expect(notStarted!.status).toBe(0x0106); // Invalid attribute value
    expect(events.length).toBe(before);
    expect(logs.filter((l) => /^warn: Procedure step .* refused/.test(l))).toHaveLength(4);
    // The refusals changed nothing: 2.25.700001 is still COMPLETED with its 4 images.
    const lines = journal()
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { sopInstanceUid: string; status: string; imageCount: number });
    expect(lines.filter((l) => l.sopInstanceUid === '2.25.700001').at(-1)).toMatchObject({
      status: 'COMPLETED',
      imageCount: 4,
    });
    expect(lines.some((l) => l.sopInstanceUid === '2.25.700002')).toBe(false);
  });

  it('completes after a restart a step begun before it (the journal is the state)', async () => {
    const [create] = await sendMpps(port, [
      { op: 'create', sopInstanceUid: '2.25.700003', dataset: started(worklist[0]!) },
    ]);
    expect(create!.status).toBe(0);
    scp.close();
    await start(); // a new SCP and a new store on the same data folder, as after a power cut

    const [set, afterEnd] = await sendMpps(port, [
      { op: 'set', sopInstanceUid: '2.25.700003', dataset: ended('COMPLETED', 3) },
      { op: 'set', sopInstanceUid: '2.25.700001', dataset: ended('COMPLETED', 9) },
    ]);
    expect(set!.status).toBe(0);
    expect(afterEnd!.status).toBe(0x0110); // finished before the restart, still finished after it
    expect(events.at(-1)).toMatchObject({
      kind: 'completed',
      sopInstanceUid: '2.25.700003',
      accessionNumber: 'SH00000101',
      imageCount: 3,
      journalled: true,
    });
  });
});
