import dcmjsDimse from 'dcmjs-dimse';
import { MPPS_SOP_CLASS, readCreation, readUpdate } from '../dicom/performed-procedure-step.js';
import { isValidUid, newUid } from '../dicom/uid.js';
import type { DicomItem } from '../dicom/worklist-matching.js';
import {
  PERFORMED_STATUSES,
  ProcedureStepRefused,
  type PerformedStatus,
  type ProcedureStep,
  type ProcedureStepEvent,
  type ProcedureStepStore,
} from './procedure-steps.js';

const { NCreateResponse, NSetResponse } = dcmjsDimse.responses;
const { Status } = dcmjsDimse.constants;

/** PS3.4 F.7.2.1.2 and F.7.2.2.2 statuses the gateway answers with (PS3.7 C for their meaning). */
export const MPPS_STATUS = {
  success: Status.Success,
  invalidAttributeValue: 0x0106,
  processingFailure: 0x0110,
  duplicateSopInstance: 0x0111,
  noSuchObjectInstance: 0x0112,
  invalidObjectInstance: 0x0117,
  sopClassNotSupported: 0x0122,
} as const;

export interface ProcedureStepService {
  store: ProcedureStepStore;
  onProcedureStep?: ((event: ProcedureStepEvent) => void) | undefined;
  log: (level: 'info' | 'warn' | 'error', message: string, detail?: Record<string, unknown>) => void;
}

interface Outcome {
  status: number;
  /** Error Comment (0000,0902) for a failure, and the log line's reason. */
  comment?: string;
  sopInstanceUid: string;
}

/**
 * N-CREATE of a Modality Performed Procedure Step (PS3.4 F.7.2.1): the step starts IN PROGRESS. The new state is
 * durable, and the gateway told, before the modality is answered Success.
 */
export function createProcedureStep(
  service: ProcedureStepService,
  request: dcmjsDimse.requests.NCreateRequest,
  calling: string,
): dcmjsDimse.responses.NCreateResponse {
  const outcome = decideCreate(service, request, calling);
  const response = NCreateResponse.fromRequest(request);
  response.setAffectedSopInstanceUid(outcome.sopInstanceUid);
  return answer(service, response, outcome, calling);
}

/**
 * N-SET of a Modality Performed Procedure Step (PS3.4 F.7.2.2): only while IN PROGRESS; COMPLETED or DISCONTINUED
 * ends it.
 */
export function setProcedureStep(
  service: ProcedureStepService,
  request: dcmjsDimse.requests.NSetRequest,
  calling: string,
): dcmjsDimse.responses.NSetResponse {
  const outcome = decideSet(service, request, calling);
  return answer(service, NSetResponse.fromRequest(request), outcome, calling);
}

function decideCreate(
  service: ProcedureStepService,
  request: dcmjsDimse.requests.NCreateRequest,
  calling: string,
): Outcome {
  const requested = text(request.getAffectedSopInstanceUid());
  const sopInstanceUid = requested || newUid();
  if (request.getAffectedSopClassUid() !== MPPS_SOP_CLASS)
    return { status: MPPS_STATUS.sopClassNotSupported, comment: 'SOP class not supported', sopInstanceUid };
  if (!isValidUid(sopInstanceUid))
    return { status: MPPS_STATUS.invalidObjectInstance, comment: 'Not a valid SOP instance UID', sopInstanceUid };
  const created = readCreation(elements(request));
  if (created.status !== 'IN PROGRESS')
    return {
      status: MPPS_STATUS.invalidAttributeValue,
      comment: 'Performed Procedure Step Status must be IN PROGRESS',
      sopInstanceUid,
    };
  return record(service, sopInstanceUid, () => {
    const step = service.store.begin({
      sopInstanceUid,
      accessionNumber: created.accessionNumber,
      requestedProcedureId: created.requestedProcedureId,
      scheduledProcedureStepId: created.scheduledProcedureStepId,
      studyInstanceUid: created.studyInstanceUid,
      patientId: created.patientId,
      startDate: created.startDate,
      startTime: created.startTime,
      imageCount: 0,
      modality: calling,
    });
    service.log(
      'info',
      `Procedure step ${sopInstanceUid} from ${calling} in progress (accession ${step.accessionNumber || 'none'})`,
    );
    return step;
  });
}

function decideSet(service: ProcedureStepService, request: dcmjsDimse.requests.NSetRequest, calling: string): Outcome {
  const sopInstanceUid = text(request.getRequestedSopInstanceUid());
  if (request.getRequestedSopClassUid() !== MPPS_SOP_CLASS)
    return { status: MPPS_STATUS.sopClassNotSupported, comment: 'SOP class not supported', sopInstanceUid };
  // Checked here as well as by the store so that an unknown or ended step is reported before a bad attribute.
  const existing = service.store.get(sopInstanceUid);
  if (!existing) return { status: MPPS_STATUS.noSuchObjectInstance, comment: 'No such procedure step', sopInstanceUid };
  if (existing.status !== 'IN PROGRESS')
    return {
      status: MPPS_STATUS.processingFailure,
      comment: `Procedure step is ${existing.status} already`,
      sopInstanceUid,
    };
  const update = readUpdate(elements(request));
  if (update.status !== undefined && !PERFORMED_STATUSES.includes(update.status as PerformedStatus))
    return {
      status: MPPS_STATUS.invalidAttributeValue,
      comment: `Performed Procedure Step Status "${update.status.slice(0, 16)}" not known`,
      sopInstanceUid,
    };
  return record(service, sopInstanceUid, () => {
    const step = service.store.change(sopInstanceUid, {
      status: update.status as PerformedStatus | undefined,
      endDate: update.endDate,
      endTime: update.endTime,
      imageCount: update.imageCount,
      reason: update.reason,
    });
    const what =
      step.status === 'COMPLETED'
        ? `completed: ${step.imageCount} image(s)`
        : step.status === 'DISCONTINUED'
          ? `discontinued: ${step.reason ?? 'no reason given'}, ${step.imageCount} image(s)`
          : `updated: ${step.imageCount} image(s) so far`;
    service.log(
      'info',
      `Procedure step ${sopInstanceUid} from ${calling} ${what} (accession ${step.accessionNumber || 'none'})`,
    );
    return step;
  });
}

/** Records the change durably, then tells the gateway; a refusal or a failure to record becomes the status. */
function record(service: ProcedureStepService, sopInstanceUid: string, change: () => ProcedureStep): Outcome {
  let step: ProcedureStep;
  const before = service.store.get(sopInstanceUid)?.status;
  try {
    step = change();
  } catch (error) {
    if (error instanceof ProcedureStepRefused) {
      const status = {
        duplicate: MPPS_STATUS.duplicateSopInstance,
        unknown: MPPS_STATUS.noSuchObjectInstance,
        ended: MPPS_STATUS.processingFailure,
      }[error.code];
      return { status, comment: error.message.slice(0, 64), sopInstanceUid };
    }
    service.log('error', `Procedure step ${sopInstanceUid} could not be recorded: ${(error as Error).message}`);
    return { status: MPPS_STATUS.processingFailure, comment: 'Could not be recorded', sopInstanceUid };
  }
  if (step.status !== before) notify(service, step);
  return { status: MPPS_STATUS.success, sopInstanceUid };
}

function notify(service: ProcedureStepService, step: ProcedureStep): void {
  const kind = ({ 'IN PROGRESS': 'in_progress', COMPLETED: 'completed', DISCONTINUED: 'discontinued' } as const)[
    step.status
  ];
  const event: ProcedureStepEvent = {
    kind,
    sopInstanceUid: step.sopInstanceUid,
    accessionNumber: step.accessionNumber,
    patientId: step.patientId,
    imageCount: step.imageCount,
    at: step.recordedAt,
  };
  if (step.reason !== undefined) event.reason = step.reason;
  try {
    service.onProcedureStep?.(event);
  } catch (error) {
    // The step is recorded: the modality is answered Success whatever the listener does.
    service.log('error', `Procedure step ${step.sopInstanceUid}: listener failed: ${(error as Error).message}`);
  }
}

function answer<R extends dcmjsDimse.responses.NCreateResponse | dcmjsDimse.responses.NSetResponse>(
  service: ProcedureStepService,
  response: R,
  outcome: Outcome,
  calling: string,
): R {
  response.setStatus(outcome.status);
  if (outcome.status !== MPPS_STATUS.success) {
    if (outcome.comment) response.setErrorComment(outcome.comment);
    service.log(
      'warn',
      `Procedure step ${outcome.sopInstanceUid || '(no instance UID)'} from ${calling} refused: ${outcome.comment ?? 'failure'} (status 0x${outcome.status.toString(16).padStart(4, '0')})`,
    );
  }
  return response;
}

function elements(request: dcmjsDimse.requests.NCreateRequest | dcmjsDimse.requests.NSetRequest): DicomItem {
  return (request.getDataset()?.getElements() ?? {}) as DicomItem;
}

function text(value: unknown): string {
  return typeof value === 'string' ? value.trim() : '';
}
