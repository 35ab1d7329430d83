import { createHash } from 'node:crypto';
import type { WorklistEntry } from '../dicom/worklist-item.js';
import type { GatewayChange, TrailerField } from '../protocol/gateway-changes.js';
import type { ProcedureStepEvent } from './procedure-steps.js';

const ENTRY_FIELD: Record<TrailerField, 'givenName' | 'familyName' | 'dateOfBirth'> = {
  given_name: 'givenName',
  family_name: 'familyName',
  date_of_birth: 'dateOfBirth',
};

/** The value of a correctable detail in the trailer's copy. */
export const entryValue = (entry: WorklistEntry, field: TrailerField): string => entry[ENTRY_FIELD[field]];

/**
 * The worklist as the trailer should see it: the hub's copy with the changes the hub has not answered yet laid
 * over it. Did not attend, completed and discontinued leave the list; check-in and corrections show at once.
 */
export function withTrailerChanges(
  entries: readonly WorklistEntry[],
  pending: readonly GatewayChange[],
): WorklistEntry[] {
  const byAppointment = new Map(entries.map((e) => [e.appointmentId, { ...e }]));
  for (const change of pending) {
    const entry = byAppointment.get(change.appointmentId);
    if (!entry) continue;
    if (change.kind === 'attendance') {
      if (change.status === 'did_not_attend') byAppointment.delete(entry.appointmentId);
      else entry.status = 'checked_in';
    } else if (change.kind === 'procedure_step') {
      if (change.step === 'in_progress') entry.status = 'in_progress';
      else byAppointment.delete(entry.appointmentId);
    } else {
      for (const [field, value] of Object.entries(change.fields) as [TrailerField, { value: string }][])
        entry[ENTRY_FIELD[field]] = value.value;
    }
  }
  return entries.filter((e) => byAppointment.has(e.appointmentId)).map((e) => byAppointment.get(e.appointmentId)!);
}

/** A UUID (version 5 layout) from a name: the same MPPS report always makes the same change id. */
export function nameBasedUuid(name: string): string {
  const hash = createHash('sha256').update(name).digest();
  hash[6] = (hash[6]! & 0x0f) | 0x50;
  hash[8] = (hash[8]! & 0x3f) | 0x80;
  const hex = hash.subarray(0, 16).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** The change an MPPS report makes, for the appointment its accession number names (undefined if none does). */
export function procedureStepChange(
  event: ProcedureStepEvent,
  entries: readonly WorklistEntry[],
  madeBy: string,
): GatewayChange | undefined {
  const entry = entries.find((e) => e.accessionNumber === event.accessionNumber && event.accessionNumber !== '');
  if (!entry) return undefined;
  return {
    id: nameBasedUuid(`${event.sopInstanceUid}/${event.kind}`),
    kind: 'procedure_step',
    appointmentId: entry.appointmentId,
    madeAt: event.at,
    madeBy,
    step: event.kind,
    imageCount: event.imageCount,
    ...(event.reason ? { reason: event.reason.slice(0, 200) } : {}),
  };
}
