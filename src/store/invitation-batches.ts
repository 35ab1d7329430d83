import { sql } from 'kysely';
import type { IsoDate } from '../pathway/dates.js';
import { selectForBatch, type ExclusionCode, type Selection } from '../pathway/invitation-selection.js';
import type { Db } from './database.js';

/** How an office draws a batch: a GP practice, a postcode outcode, or a month of birth (in its own area). */
export type BatchCriterion =
  | { kind: 'gp_practice'; odsCode: string }
  | { kind: 'outcode'; outcode: string }
  | { kind: 'birth_month'; month: number };

export interface BatchRequest {
  bsoCode: string;
  criterion: BatchCriterion;
  /** When the batch's first appointments fall: ages and recent screens are reckoned on it. */
  batchDate: IsoDate;
}

export interface BatchCandidate {
  id: string;
  nhsNumber: string;
  givenName: string;
  familyName: string;
  dateOfBirth: IsoDate;
  postcode: string;
  gpPracticeCode: string | null;
  lastScreenedOn: IsoDate | null;
  selection: Selection;
}

export interface BatchPreview {
  selected: BatchCandidate[];
  excluded: BatchCandidate[];
  /** Excluded, by reason, in the order reasons are checked. */
  excludedBy: Partial<Record<ExclusionCode, number>>;
}

/**
 * Who a batch would invite and who it would leave out, and why (pathway/invitation-selection.ts): everyone the
 * criterion matches, whichever office is responsible for them now (so a woman living in the outcode whose GP is
 * in another office's area shows as moved out), except by month of birth, which keeps to the office's own area.
 */
export async function previewBatch(db: Db, request: BatchRequest): Promise<BatchPreview> {
  const { criterion } = request;
  let query = db
    .selectFrom('participant as p')
    .leftJoin('episode as e', 'e.participant_id', 'p.id')
    // Invitations suspended by the symptomatic link (at most one in force: a unique index).
    .leftJoin('invitation_suspension as s', (join) =>
      join.onRef('s.participant_id', '=', 'p.id').on('s.lifted_at', 'is', null),
    )
    .select([
      'p.id',
      'p.nhs_number',
      'p.given_name',
      'p.family_name',
      'p.date_of_birth',
      'p.date_of_death',
      'p.postcode',
      'p.gp_practice_code',
      'p.bso_code',
      'p.ceased_reason',
      'p.ceased_on',
      'p.very_high_risk',
      's.reason as suspension_reason',
      's.source_event_date as suspended_since',
      sql<IsoDate | null>`max(e.screened_on)::text`.as('last_screened_on'),
    ])
    .groupBy(['p.id', 's.id']);
  if (criterion.kind === 'gp_practice') query = query.where('p.gp_practice_code', '=', criterion.odsCode);
  else if (criterion.kind === 'outcode')
    // The outcode is the postcode without its last three characters (the inward code).
    query = query.where(
      sql<string>`left(p.postcode_key, length(p.postcode_key) - 3)`,
      '=',
      criterion.outcode.replace(/\s/g, '').toUpperCase(),
    );
  else
    query = query
      .where('p.bso_code', '=', request.bsoCode)
      .where(sql<number>`extract(month from p.date_of_birth)`, '=', criterion.month);
  const rows = await query.orderBy('p.family_name').orderBy('p.given_name').execute();

  const preview: BatchPreview = { selected: [], excluded: [], excludedBy: {} };
  for (const r of rows) {
    const selection = selectForBatch(
      {
        dateOfBirth: r.date_of_birth,
        dateOfDeath: r.date_of_death,
        bsoCode: r.bso_code,
        ceased: r.ceased_reason && r.ceased_on ? { reason: r.ceased_reason, on: r.ceased_on } : null,
        suspended:
          r.suspension_reason && r.suspended_since ? { reason: r.suspension_reason, since: r.suspended_since } : null,
        veryHighRisk: r.very_high_risk,
        lastScreenedOn: r.last_screened_on,
      },
      request.bsoCode,
      request.batchDate,
    );
    const candidate: BatchCandidate = {
      id: r.id,
      nhsNumber: r.nhs_number,
      givenName: r.given_name,
      familyName: r.family_name,
      dateOfBirth: r.date_of_birth,
      postcode: r.postcode,
      gpPracticeCode: r.gp_practice_code,
      lastScreenedOn: r.last_screened_on,
      selection,
    };
    if (selection.selected) preview.selected.push(candidate);
    else {
      preview.excluded.push(candidate);
      preview.excludedBy[selection.code] = (preview.excludedBy[selection.code] ?? 0) + 1;
    }
  }
  return preview;
}
