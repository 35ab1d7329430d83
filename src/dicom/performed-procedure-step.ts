import type { DicomItem, DicomValue } from './worklist-matching.js';

/** Modality Performed Procedure Step SOP Class (PS3.4 F.7). */
export const MPPS_SOP_CLASS = '1.2.840.10008.3.1.2.3.3';

/** What the gateway reads from an MPPS N-CREATE (PS3.4 F.7.2.1, attributes from PS3.3 C.4.13 and C.4.14). */
export interface PerformedStepCreation {
  /** Performed Procedure Step Status: must be IN PROGRESS for N-CREATE. */
  status: string;
  /** From the first item of Scheduled Step Attributes Sequence (0040,0270). */
  accessionNumber: string;
  requestedProcedureId: string;
  scheduledProcedureStepId: string;
  studyInstanceUid: string;
  patientId: string;
  startDate: string;
  startTime: string;
}

/** What the gateway reads from an MPPS N-SET (PS3.4 F.7.2.2): only what the N-SET carries is set. */
export interface PerformedStepUpdate {
  status?: string;
  endDate?: string;
  endTime?: string;
  /** References to images in Performed Series Sequence (0040,0340), counted over all its series. */
  imageCount?: number;
  /** From the first item of Performed Procedure Step Discontinuation Reason Code Sequence (0040,0281). */
  reason?: string;
}

export function readCreation(dataset: DicomItem): PerformedStepCreation {
  const scheduled = items(dataset.ScheduledStepAttributesSequence)[0] ?? {};
  return {
    status: text(dataset.PerformedProcedureStepStatus),
    accessionNumber: text(scheduled.AccessionNumber),
    requestedProcedureId: text(scheduled.RequestedProcedureID),
    scheduledProcedureStepId: text(scheduled.ScheduledProcedureStepID),
    studyInstanceUid: text(scheduled.StudyInstanceUID),
    patientId: text(dataset.PatientID),
    startDate: text(dataset.PerformedProcedureStepStartDate),
    startTime: text(dataset.PerformedProcedureStepStartTime),
  };
}

export function readUpdate(dataset: DicomItem): PerformedStepUpdate {
  const update: PerformedStepUpdate = {};
  if ('PerformedProcedureStepStatus' in dataset) update.status = text(dataset.PerformedProcedureStepStatus);
  if ('PerformedProcedureStepEndDate' in dataset) update.endDate = text(dataset.PerformedProcedureStepEndDate);
  if ('PerformedProcedureStepEndTime' in dataset) update.endTime = text(dataset.PerformedProcedureStepEndTime);
  if ('PerformedSeriesSequence' in dataset)
    update.imageCount = items(dataset.PerformedSeriesSequence).reduce(
      (sum, series) => sum + items(series.ReferencedImageSequence).length,
      0,
    );
  const code = items(dataset.PerformedProcedureStepDiscontinuationReasonCodeSequence)[0];
  if (code) {
    const reason = text(code.CodeMeaning) || text(code.CodeValue);
    if (reason) update.reason = reason;
  }
  return update;
}

/** The items of a sequence as dcmjs gives it (an array of items, or a lone item), none for anything else. */
function items(value: DicomValue): DicomItem[] {
  if (Array.isArray(value)) return value.filter((v): v is DicomItem => typeof v === 'object' && v !== null);
  if (typeof value === 'object' && value !== null) return [value];
  return [];
}

/** A single text value without DICOM's padding; the first of several values; '' for none. */
function text(value: DicomValue): string {
  if (Array.isArray(value)) return text(value[0]);
  if (typeof value === 'string') return value.trim();
  if (typeof value === 'number') return String(value);
  return '';
}
