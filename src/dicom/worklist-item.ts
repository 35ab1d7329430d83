import type { TransferPriority } from '../pathway/transfer-priority.js';
import type { AppointmentStatus } from '../pathway/appointment-status.js';
import type { DicomItem } from './worklist-matching.js';

/** What the gateway's worklist copy holds for one booked appointment (from the hub). */
export interface WorklistEntry {
  appointmentId: string;
  participantId: string;
  /** The appointment's status at the hub (scheduled, checked in, in progress, paused). */
  status: AppointmentStatus;
  accessionNumber: string;
  nhsNumber: string;
  givenName: string;
  familyName: string;
  /** 'YYYY-MM-DD' */
  dateOfBirth: string;
  sex: 'female' | 'male' | 'other' | 'unknown';
  /** 'YYYY-MM-DD' */
  clinicDate: string;
  /** 'HH:MM' */
  startTime: string;
  stationAeTitle: string;
  locationName: string;
  /** Reasonable adjustments, shown to the mammographer on the machine's worklist. */
  adjustments: string[];
  /** Whether the exam's images go before routine ones (pathway/transfer-priority.ts); routine when absent. */
  priority?: TransferPriority;
}

const SEX: Record<WorklistEntry['sex'], string> = { female: 'F', male: 'M', other: 'O', unknown: '' };

/** A deterministic Study Instance UID from the appointment's UUID (PS3.5 B.2: the 2.25 root with a UUID's integer). */
export function studyInstanceUid(appointmentId: string): string {
  return `2.25.${BigInt(`0x${appointmentId.replaceAll('-', '')}`).toString()}`;
}

/** DICOM person name: FAMILY^Given, with the component separator and backslash removed from the parts. */
export function personName(family: string, given: string): string {
  const clean = (s: string) => s.replace(/[\^\\=]/g, ' ').trim();
  return `${clean(family).toUpperCase()}^${clean(given)}`;
}

/** The Modality Worklist item (PS3.4 K.6) for one screening appointment: MG, NHS number as Patient ID. */
export function worklistItem(entry: WorklistEntry): DicomItem {
  const description = entry.adjustments.length
    ? `Breast screening: ${entry.adjustments.join(', ')}`.slice(0, 64)
    : 'Breast screening mammography';
  return {
    SpecificCharacterSet: 'ISO_IR 192',
    AccessionNumber: entry.accessionNumber,
    ReferringPhysicianName: '',
    PatientName: personName(entry.familyName, entry.givenName),
    PatientID: entry.nhsNumber,
    IssuerOfPatientID: 'NHS',
    PatientBirthDate: entry.dateOfBirth.replaceAll('-', ''),
    PatientSex: SEX[entry.sex],
    StudyInstanceUID: studyInstanceUid(entry.appointmentId),
    RequestedProcedureID: entry.accessionNumber,
    RequestedProcedureDescription: 'Breast screening mammography',
    ScheduledProcedureStepSequence: [
      {
        Modality: 'MG',
        ScheduledStationAETitle: entry.stationAeTitle,
        ScheduledProcedureStepStartDate: entry.clinicDate.replaceAll('-', ''),
        ScheduledProcedureStepStartTime: `${entry.startTime.replace(':', '')}00`,
        ScheduledProcedureStepID: entry.accessionNumber,
        ScheduledProcedureStepDescription: description,
        ScheduledProcedureStepLocation: entry.locationName.slice(0, 16),
        ScheduledPerformingPhysicianName: '',
      },
    ],
  };
}
