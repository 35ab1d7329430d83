import { randomUUID } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import dcmjsDimse from 'dcmjs-dimse';
import { MPPS_SOP_CLASS } from '../dicom/performed-procedure-step.js';
import { MG_FOR_PRESENTATION, probePixels, syntheticMammogramFile } from '../dicom/synthetic-mammogram.js';
import type { ProbeStep } from '../protocol/probe.js';

const { Client, Dataset, constants } = dcmjsDimse;
const { CFindRequest, CStoreRequest, NCreateRequest, NSetRequest } = dcmjsDimse.requests;

export interface EmulatorOptions {
  /** The gateway's own DICOM port and AE title: the emulator is a client of it, as a mammography machine is. */
  host: string;
  port: number;
  calledAeTitle: string;
  callingAeTitle: string;
  /** Where the synthetic image is written before it is sent (removed afterwards). */
  workDir: string;
  /** Longest wait for one DICOM operation (default 30 s). */
  timeoutMs?: number;
}

export type EmulatorStep = Extract<
  ProbeStep,
  'worklist_query' | 'mpps_in_progress' | 'image_stored' | 'mpps_completed'
>;

export interface StepResult {
  step: EmulatorStep;
  ok: boolean;
  durationMs: number;
  message: string;
}

export interface EmulatedExam {
  steps: StepResult[];
  /** The image sent (when C-STORE succeeded): the probe runner waits for the PACS to hold it. */
  sopInstanceUid: string | undefined;
}

/** A UID under the 2.25 root from a fresh UUID (PS3.5 B.2). */
const newUid = () => `2.25.${BigInt(`0x${randomUUID().replaceAll('-', '')}`).toString()}`;

/** DICOM date and time now ('YYYYMMDD', 'HHMMSS'). */
const dicomNow = () => {
  const iso = new Date().toISOString();
  return { date: iso.slice(0, 10).replaceAll('-', ''), time: iso.slice(11, 19).replaceAll(':', '') };
};

/** Sends the requests on one association and resolves once it closes; rejects on refusal or network error. */
function associate(options: EmulatorOptions, requests: dcmjsDimse.requests.Request[]): Promise<void> {
  const client = new Client();
  for (const request of requests) client.addRequest(request);
  const timeoutMs = options.timeoutMs ?? 30_000;
  return new Promise<void>((resolve, reject) => {
    client.on('closed', () => resolve());
    client.on('networkError', (error: Error) => reject(error));
    client.on('associationRejected', (result: { reason?: number; source?: number }) =>
      reject(new Error(`association rejected (reason ${result?.reason ?? '?'})`)),
    );
    client.send(options.host, options.port, options.callingAeTitle, options.calledAeTitle, {
      connectTimeout: timeoutMs,
      associationTimeout: timeoutMs,
      pduTimeout: timeoutMs,
      associationLingerTimeout: 0,
    });
  });
}

const statusText = (status: number | undefined, comment?: string) =>
  `status 0x${(status ?? 0xffff).toString(16).padStart(4, '0')}${comment ? ` (${comment})` : ''}`;

/**
 * The gateway's built-in modality emulator (issue 8): runs one exam against the gateway's own DICOM services the
 * way a mammography machine does. It asks the worklist (C-FIND) for the accession number, starts the procedure
 * step (MPPS N-CREATE), sends a small synthetic mammogram (C-STORE) and completes the step (MPPS N-SET). Each step
 * is timed; the first that fails ends the exam (a later step would only fail for the same reason).
 */
export async function emulateExam(options: EmulatorOptions, accessionNumber: string): Promise<EmulatedExam> {
  const steps: StepResult[] = [];
  const run = async (step: EmulatorStep, action: () => Promise<string>): Promise<boolean> => {
    const started = performance.now();
    try {
      const message = await action();
      steps.push({ step, ok: true, durationMs: Math.round(performance.now() - started), message });
      return true;
    } catch (error) {
      steps.push({
        step,
        ok: false,
        durationMs: Math.round(performance.now() - started),
        message: (error as Error).message,
      });
      return false;
    }
  };

  let item: Record<string, unknown> | undefined;
  const found = await run('worklist_query', async () => {
    const request = CFindRequest.createWorklistFindRequest({
      AccessionNumber: accessionNumber,
      PatientID: '',
      PatientName: '',
      PatientBirthDate: '',
      PatientSex: '',
      StudyInstanceUID: '',
      RequestedProcedureID: '',
    });
    const items: Record<string, unknown>[] = [];
    let final: number | undefined;
    request.on('response', (response: dcmjsDimse.responses.CFindResponse) => {
      if (response.getStatus() === constants.Status.Pending) {
        const dataset = response.getDataset();
        if (dataset) items.push(dataset.getElements());
      } else final = response.getStatus();
    });
    await associate(options, [request]);
    if (final !== constants.Status.Success) throw new Error(`Worklist query answered ${statusText(final)}`);
    item = items.find((i) => i.AccessionNumber === accessionNumber);
    if (!item) throw new Error(`The worklist has no entry with accession number ${accessionNumber}`);
    return `${items.length} match`;
  });
  if (!found || !item) return { steps, sopInstanceUid: undefined };
  const entry = item;

  const mppsUid = newUid();
  const step = (entry.ScheduledProcedureStepSequence as Record<string, unknown>[] | undefined)?.[0] ?? {};
  const start = dicomNow();
  const nCreate = async (): Promise<string> => {
    const request = new NCreateRequest(MPPS_SOP_CLASS, mppsUid);
    request.setDataset(
      new Dataset({
        SpecificCharacterSet: 'ISO_IR 192',
        ScheduledStepAttributesSequence: [
          {
            StudyInstanceUID: entry.StudyInstanceUID,
            AccessionNumber: accessionNumber,
            RequestedProcedureID: entry.RequestedProcedureID ?? accessionNumber,
            RequestedProcedureDescription: 'Synthetic test probe',
            ScheduledProcedureStepID: step.ScheduledProcedureStepID ?? accessionNumber,
            ScheduledProcedureStepDescription: 'Synthetic test probe',
          },
        ],
        PatientName: entry.PatientName,
        PatientID: entry.PatientID,
        PerformedProcedureStepID: 'PROBE',
        PerformedStationAETitle: options.callingAeTitle,
        PerformedProcedureStepStartDate: start.date,
        PerformedProcedureStepStartTime: start.time,
        PerformedProcedureStepStatus: 'IN PROGRESS',
        Modality: 'MG',
        StudyID: '1',
        PerformedSeriesSequence: [],
      }),
    );
    let status: number | undefined;
    let comment: string | undefined;
    request.on('response', (response: dcmjsDimse.responses.NCreateResponse) => {
      status = response.getStatus();
      comment = response.getErrorComment();
    });
    await associate(options, [request]);
    if (status !== constants.Status.Success) throw new Error(`MPPS N-CREATE answered ${statusText(status, comment)}`);
    return '';
  };
  if (!(await run('mpps_in_progress', nCreate))) return { steps, sopInstanceUid: undefined };

  const sopInstanceUid = newUid();
  const seriesInstanceUid = newUid();
  const stored = await run('image_stored', async () => {
    mkdirSync(options.workDir, { recursive: true, mode: 0o700 });
    const file = join(options.workDir, `${sopInstanceUid}.dcm`);
    const [columns, rows] = [256, 320];
    writeFileSync(
      file,
      syntheticMammogramFile({
        sopInstanceUid,
        pixels: probePixels(columns, rows),
        rows,
        columns,
        attributes: {
          StudyInstanceUID: entry.StudyInstanceUID,
          SeriesInstanceUID: seriesInstanceUid,
          AccessionNumber: accessionNumber,
          PatientID: entry.PatientID,
          PatientName: entry.PatientName,
          PatientBirthDate: entry.PatientBirthDate ?? '',
          PatientSex: entry.PatientSex ?? '',
          StudyDate: start.date,
          StudyTime: start.time,
          SeriesDescription: 'Synthetic test probe',
          Manufacturer: 'Screening Hub modality emulator',
        },
      }),
    );
    try {
      const request = new CStoreRequest(file);
      let status: number | undefined;
      let comment: string | undefined;
      request.on('response', (response: dcmjsDimse.responses.CStoreResponse) => {
        status = response.getStatus();
        comment = response.getErrorComment();
      });
      await associate(options, [request]);
      if (status !== constants.Status.Success) throw new Error(`C-STORE answered ${statusText(status, comment)}`);
      return `${columns} × ${rows} image`;
    } finally {
      rmSync(file, { force: true });
    }
  });
  if (!stored) return { steps, sopInstanceUid: undefined };

  await run('mpps_completed', async () => {
    const end = dicomNow();
    const request = new NSetRequest(MPPS_SOP_CLASS, mppsUid);
    request.setDataset(
      new Dataset({
        PerformedProcedureStepStatus: 'COMPLETED',
        PerformedProcedureStepEndDate: end.date,
        PerformedProcedureStepEndTime: end.time,
        PerformedSeriesSequence: [
          {
            SeriesInstanceUID: seriesInstanceUid,
            PerformingPhysicianName: '',
            ProtocolName: 'Synthetic test probe',
            OperatorsName: '',
            ReferencedImageSequence: [
              { ReferencedSOPClassUID: MG_FOR_PRESENTATION, ReferencedSOPInstanceUID: sopInstanceUid },
            ],
            ReferencedNonImageCompositeSOPInstanceSequence: [],
          },
        ],
      }),
    );
    let status: number | undefined;
    let comment: string | undefined;
    request.on('response', (response: dcmjsDimse.responses.NSetResponse) => {
      status = response.getStatus();
      comment = response.getErrorComment();
    });
    await associate(options, [request]);
    if (status !== constants.Status.Success) throw new Error(`MPPS N-SET answered ${statusText(status, comment)}`);
    return '';
  });
  return { steps, sopInstanceUid };
}
