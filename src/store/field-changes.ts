import type { Insertable } from 'kysely';
import type { Source } from '../pathway/record-items.js';
import type { FieldProvenance, Tables } from './tables.js';

/**
 * How a change to a participant's fields is recorded, as correctDemographics does it (src/store/participants.ts):
 * each changed field gets a participant_change row with its source and source date, and the record's provenance
 * names the new source for that field. Pure: the caller writes the rows (one record at a time, or in batches).
 */
export interface FieldChangePlan {
  changed: string[];
  provenance: Record<string, FieldProvenance>;
  history: Insertable<Tables['participant_change']>[];
}

export interface FieldChangeRequest {
  participantId: string;
  current: Readonly<Record<string, string | null>>;
  provenance: Readonly<Record<string, FieldProvenance>>;
  changes: Readonly<Record<string, string | null>>;
  source: Source;
  sourceDate: string;
  /** The history row's reason for a field (null for none). */
  reason: (field: string) => string | null;
  changedBy: string | null;
  /** ISO instant for provenance.at. */
  at: string;
}

export function planFieldChanges(request: FieldChangeRequest): FieldChangePlan {
  const changed = Object.keys(request.changes).filter(
    (field) => (request.changes[field] ?? null) !== (request.current[field] ?? null),
  );
  const provenance: Record<string, FieldProvenance> = { ...request.provenance };
  for (const field of changed) provenance[field] = { source: request.source, on: request.sourceDate, at: request.at };
  return {
    changed,
    provenance,
    history: changed.map((field) => ({
      participant_id: request.participantId,
      field,
      old_value: request.current[field] ?? null,
      new_value: request.changes[field] ?? null,
      source: request.source,
      source_date: request.sourceDate,
      reason: request.reason(field),
      changed_by: request.changedBy,
    })),
  };
}
