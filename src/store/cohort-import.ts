/**
 * Imports a BS-Select style cohort feed (CSV, src/cohort/cohort-csv.ts, or FHIR R4 Patients, src/cohort/cohort-fhir.ts;
 * both in README.md) into the participant table, incrementally and idempotently. The format only chooses the parser:
 * every format's rows are applied here, in the same way.
 *
 * The file is read as a stream and applied in batches, one transaction each. Keyed by NHS number: a new number is
 * added (its screening office is its GP practice's); a known one is amended field by field as the precedence rules
 * say (docs/data-precedence.md, src/pathway/source-precedence.ts): in the main, only where the row's effective_date is
 * not older than the date the field's current value is known from (its provenance), so a row that arrives out of
 * order changes nothing it should not; a row that disagrees with details given in person after it is kept apart
 * as a data conflict for staff (src/store/data-conflicts.ts). Each changed field gets a participant_change row
 * (source 'bs_select', source_date = effective_date) and new provenance; a GP change to another office's practice
 * moves bso_code with it, and her open episode and a participant_move row for both offices (src/store/movers.ts,
 * once a batch). The same row twice changes nothing the second time.
 *
 * A row the parser or the GP practice list refuses is reported and skipped. If the database refuses a batch, the
 * batch is rolled back and applied again a row at a time, so only the row it refuses is lost (and reported).
 */
import { randomUUID } from 'node:crypto';
import { sql, type Insertable } from 'kysely';
import {
  CohortCsvParser,
  type CohortParser,
  type CohortRejection,
  type CohortResult,
  type CohortRow,
} from '../cohort/cohort-csv.js';
import { CohortFhirParser } from '../cohort/cohort-fhir.js';
import type { IsoDate } from '../pathway/dates.js';
import { decideDetail, detailKnown, DETAILS, type Detail } from '../pathway/source-precedence.js';
import { recordAudit, type Actor } from './audit.js';
import type { Db } from './database.js';
import { detailConflict, raiseConflicts, type NewConflict } from './data-conflicts.js';
import { planFieldChanges } from './field-changes.js';
import { recordMoves, type MoveRequest } from './movers.js';
import type { FieldProvenance, Tables } from './tables.js';

export const COHORT_BATCH_ROWS = 1000;

/** The feed's formats: BS-Select style CSV, or FHIR R4 Patients (a Bundle or NDJSON, told apart by the content). */
export const COHORT_FORMATS = ['csv', 'fhir'] as const;
export type CohortFormat = (typeof COHORT_FORMATS)[number];

/** The parser for a format: every format gives the same rows, so they are applied in one way. */
export function cohortParser(format: CohortFormat, today: IsoDate): CohortParser {
  return format === 'fhir' ? new CohortFhirParser(today) : new CohortCsvParser(today);
}
/** Rejections kept in the summary; all of them go to onReject. */
export const SUMMARY_REJECTIONS = 1000;

/** The participant fields the feed sets, and how a row gives each. */
const FEED_FIELDS = {
  family_name: (r: CohortRow) => r.familyName,
  given_name: (r: CohortRow) => r.givenName,
  date_of_birth: (r: CohortRow) => r.dateOfBirth,
  date_of_death: (r: CohortRow) => r.dateOfDeath,
  sex: (r: CohortRow) => r.sex,
  address_line1: (r: CohortRow) => r.addressLine1,
  address_line2: (r: CohortRow) => r.addressLine2,
  town: (r: CohortRow) => r.town,
  postcode: (r: CohortRow) => r.postcode,
  gp_practice_code: (r: CohortRow) => r.gpPracticeCode,
} as const;
type FeedField = keyof typeof FEED_FIELDS;
const FIELD_NAMES = Object.keys(FEED_FIELDS) as FeedField[];
/** The details the feed gives (src/pathway/source-precedence.ts): each is decided whole. */
const FEED_DETAILS = (Object.keys(DETAILS) as Detail[])
  .filter((d) => DETAILS[d].fields.every((f) => f in FEED_FIELDS))
  .sort(
    (a, b) =>
      FIELD_NAMES.indexOf(DETAILS[a].fields[0] as FeedField) - FIELD_NAMES.indexOf(DETAILS[b].fields[0] as FeedField),
  );
type RecordField = FeedField | 'bso_code';

const REASONS: Partial<Record<RecordField, string>> = {
  date_of_death: 'Death notified by BS-Select',
  address_line1: 'Change of address from BS-Select',
  address_line2: 'Change of address from BS-Select',
  town: 'Change of address from BS-Select',
  postcode: 'Change of address from BS-Select',
  gp_practice_code: 'Change of GP practice from BS-Select',
  bso_code: 'Responsibility follows the GP practice',
};
/** The participant columns the import writes besides id, nhs_number, provenance and version. */
const RECORD_COLUMNS: readonly RecordField[] = [...FIELD_NAMES, 'bso_code'];
const RECORD_TYPES = sql.raw(
  [
    'id uuid',
    'nhs_number text',
    ...RECORD_COLUMNS.map((c) => `${c} ${c.startsWith('date_') ? 'date' : 'text'}`),
    'provenance jsonb',
    'version integer',
  ].join(', '),
);
const asRecordRow = (nhsNumber: string, r: Current) => ({
  id: r.id,
  nhs_number: nhsNumber,
  ...r.values,
  provenance: r.provenance,
  version: r.version,
});

const reasonFor = (field: string): string => REASONS[field as RecordField] ?? 'Amendment from BS-Select';

export interface CohortImportOptions {
  actor: Actor;
  /** Dates after it are refused. */
  today: IsoDate;
  /** What is imported (a file name), for the audit log. */
  sourceName: string;
  /** Default 'csv'. */
  format?: CohortFormat;
  batchRows?: number;
  /** After each chunk of input: the bytes read so far. */
  onProgress?: (bytesRead: number) => void;
  /** Every rejected row, in file order (the summary keeps only the first SUMMARY_REJECTIONS). */
  onReject?: (rejection: CohortRejection) => void | Promise<void>;
}

export interface CohortImportSummary {
  rowsRead: number;
  /** New participants. */
  added: number;
  /** Rows that changed at least one field of a participant on record. */
  amended: number;
  /** Fields changed in all (bso_code included when responsibility moved). */
  fieldsChanged: number;
  /** Rows that matched the record already. */
  unchanged: number;
  /** Rows that differed from the record only in fields known from a later date: nothing changed. */
  olderThanRecord: number;
  /** Fields left alone because the record's value is known from a later date (also in amended rows). */
  fieldsOlderThanRecord: number;
  /**
   * Details put in the data conflict queue (or brought up to date there) because the row disagrees with a value the
   * record holds from another source (src/store/data-conflicts.ts): the record keeps its value until staff decide.
   * A row that changed nothing else is counted in olderThanRecord.
   */
  conflicts: number;
  /** Rows that moved a person to another screening office (her GP practice is in its area): src/store/movers.ts. */
  moved: number;
  rejected: number;
  rejections: CohortRejection[];
  bytesRead: number;
  seconds: number;
}

interface Item {
  line: number;
  entry?: number;
  row: CohortRow;
}

/** A row that differs only in older fields is { changed: 0, older: n }. */
type RowOutcome =
  'added' | 'unchanged' | 'refused' | { changed: number; older: number; moved?: boolean; conflicts?: number };

interface Current {
  id: string;
  isNew: boolean;
  dirty: Set<RecordField>;
  values: Record<RecordField, string | null>;
  provenance: Record<string, FieldProvenance>;
  version: number;
}

/**
 * Reads `input` (bytes or text, UTF-8, e.g. a file's read stream) in `options.format` and applies it. Throws
 * CohortFormatError when the file is not a feed of that format (a wrong CSV header, a FHIR file that is not JSON or
 * a Bundle broken between its entries), and whatever the input throws when it cannot be read; rows applied by then stay applied (each
 * batch is whole), and the audit log says the import stopped.
 */
export async function importCohort(
  db: Db,
  input: AsyncIterable<Uint8Array | string> | Iterable<Uint8Array | string>,
  options: CohortImportOptions,
): Promise<CohortImportSummary> {
  const started = performance.now();
  const batchRows = options.batchRows ?? COHORT_BATCH_ROWS;
  const summary: CohortImportSummary = {
    rowsRead: 0,
    added: 0,
    amended: 0,
    fieldsChanged: 0,
    unchanged: 0,
    olderThanRecord: 0,
    fieldsOlderThanRecord: 0,
    conflicts: 0,
    moved: 0,
    rejected: 0,
    rejections: [],
    bytesRead: 0,
    seconds: 0,
  };
  const reject = async (rejection: CohortRejection) => {
    summary.rejected++;
    if (summary.rejections.length < SUMMARY_REJECTIONS) summary.rejections.push(rejection);
    await options.onReject?.(rejection);
  };
  // GP practices are few (about 6,500 in England): known up front, so an unknown one is refused before the batch.
  const practices = new Map(
    (await db.selectFrom('gp_practice').select(['ods_code', 'bso_code']).execute()).map((p) => [
      p.ods_code,
      p.bso_code,
    ]),
  );

  let batch: Item[] = [];
  const flush = async () => {
    if (batch.length === 0) return;
    const rows = batch;
    batch = [];
    let outcomes: RowOutcome[];
    try {
      outcomes = await db.transaction().execute((tx) => applyRows(tx, rows, practices, options.actor));
    } catch (error) {
      // A lost connection or a full disk stops the import (the batch was rolled back whole). Something in the batch
      // was refused: apply it again row by row so the others are kept.
      if (!refusesRow(error)) throw error;
      outcomes = [];
      for (const item of rows) {
        try {
          outcomes.push(...(await db.transaction().execute((tx) => applyRows(tx, [item], practices, options.actor))));
        } catch (error) {
          if (!refusesRow(error)) throw error;
          outcomes.push('refused');
          await reject({
            line: item.line,
            ...(item.entry !== undefined ? { entry: item.entry } : {}),
            nhsNumber: item.row.nhsNumber,
            reason: `the database refused the row: ${(error as Error).message}`,
          });
        }
      }
    }
    for (const outcome of outcomes) {
      if (outcome === 'refused') continue;
      if (outcome === 'added') summary.added++;
      else if (outcome === 'unchanged') summary.unchanged++;
      else {
        if (outcome.changed > 0) summary.amended++;
        else summary.olderThanRecord++;
        summary.fieldsChanged += outcome.changed;
        summary.fieldsOlderThanRecord += outcome.older;
        summary.conflicts += outcome.conflicts ?? 0;
        if (outcome.moved) summary.moved++;
      }
    }
  };
  const take = async (results: CohortResult[]) => {
    for (const result of results) {
      summary.rowsRead++;
      const where = { line: result.line, ...(result.entry !== undefined ? { entry: result.entry } : {}) };
      if (!result.ok) {
        await reject({ ...where, nhsNumber: result.nhsNumber, reason: result.reason });
        continue;
      }
      if (!practices.has(result.row.gpPracticeCode)) {
        await reject({
          ...where,
          nhsNumber: result.row.nhsNumber,
          reason: `gp_practice_code ${result.row.gpPracticeCode} is not a known GP practice`,
        });
        continue;
      }
      batch.push({ ...where, row: result.row });
      if (batch.length >= batchRows) await flush();
    }
  };

  const format = options.format ?? 'csv';
  const parser = cohortParser(format, options.today);
  const decoder = new TextDecoder('utf-8');
  try {
    for await (const chunk of input) {
      if (typeof chunk === 'string') {
        summary.bytesRead += Buffer.byteLength(chunk);
        await take(parser.push(chunk));
      } else {
        summary.bytesRead += chunk.byteLength;
        await take(parser.push(decoder.decode(chunk, { stream: true })));
      }
      options.onProgress?.(summary.bytesRead);
    }
    await take(parser.push(decoder.decode()));
    await take(parser.end());
    await flush();
  } catch (error) {
    summary.seconds = (performance.now() - started) / 1000;
    await recordAudit(db, options.actor, {
      action: 'cohort.import',
      entityType: 'cohort_feed',
      entityId: options.sourceName,
      detail: { format, ...counts(summary), stopped: (error as Error).message },
    });
    throw error;
  }
  summary.seconds = (performance.now() - started) / 1000;
  await recordAudit(db, options.actor, {
    action: 'cohort.import',
    entityType: 'cohort_feed',
    entityId: options.sourceName,
    detail: { format, ...counts(summary) },
  });
  return summary;
}

/**
 * Whether the database refused the row's data (SQLSTATE class 22 data exception, 23 integrity constraint, or an
 * exception raised by a trigger), rather than failing for another reason (a lost connection, a full disk): those stop
 * the import instead of rejecting every row after them.
 */
function refusesRow(error: unknown): boolean {
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' && /^(22|23|P0)/.test(code);
}

function counts(summary: CohortImportSummary): Record<string, number> {
  return Object.fromEntries(Object.entries(summary).filter(([, value]) => typeof value === 'number'));
}

/** Applies rows (in file order) inside the caller's transaction; the outcome of each. */
async function applyRows(
  tx: Db,
  rows: readonly Item[],
  practices: ReadonlyMap<string, string>,
  actor: Actor,
): Promise<RowOutcome[]> {
  const numbers = [...new Set(rows.map((r) => r.row.nhsNumber))];
  const found = await tx
    .selectFrom('participant')
    .select(['id', 'nhs_number', 'provenance', 'version', 'bso_code', ...FIELD_NAMES])
    .where('nhs_number', '=', sql<string>`any(${numbers}::text[])`)
    .orderBy('nhs_number')
    .forUpdate()
    .execute();
  const records = new Map<string, Current>();
  for (const p of found) {
    records.set(p.nhs_number, {
      id: p.id,
      isNew: false,
      dirty: new Set(),
      values: {
        ...(Object.fromEntries(FIELD_NAMES.map((f) => [f, p[f]])) as Record<FeedField, string | null>),
        bso_code: p.bso_code,
      },
      provenance: p.provenance,
      version: p.version,
    });
  }

  const at = new Date().toISOString();
  const history: Insertable<Tables['participant_change']>[] = [];
  const outcomes: RowOutcome[] = [];
  const raised: NewConflict[] = [];
  const moves: MoveRequest[] = [];
  for (const { row } of rows) {
    const bso = practices.get(row.gpPracticeCode);
    if (!bso) throw new Error(`gp_practice_code ${row.gpPracticeCode} is not a known GP practice`);
    const current = records.get(row.nhsNumber);
    if (!current) {
      const known: FieldProvenance = { source: 'bs_select', on: row.effectiveDate, at };
      records.set(row.nhsNumber, {
        id: randomUUID(),
        isNew: true,
        dirty: new Set(),
        values: {
          ...(Object.fromEntries(FIELD_NAMES.map((f) => [f, FEED_FIELDS[f](row)])) as Record<FeedField, string | null>),
          bso_code: bso,
        },
        provenance: Object.fromEntries([...FIELD_NAMES, 'bso_code'].map((f) => [f, known])),
        version: 1,
      });
      outcomes.push('added');
      continue;
    }
    const changes: Partial<Record<RecordField, string | null>> = {};
    let older = 0;
    let conflicts = 0;
    // Field by field as the precedence rules say (docs/data-precedence.md); a conflict holds the whole detail (all
    // four address lines) for staff, and nothing of it is applied.
    for (const detail of FEED_DETAILS) {
      const fields = DETAILS[detail].fields as readonly FeedField[];
      let applying: FeedField[] | undefined;
      let conflict: string | undefined;
      for (const field of fields) {
        const value = FEED_FIELDS[field](row);
        if (value === current.values[field]) continue;
        const decision = decideDetail(
          detail,
          { value: current.values[field], known: current.provenance[field] },
          { value, source: 'bs_select', on: row.effectiveDate },
        );
        if (decision.action === 'apply') (applying ??= []).push(field);
        else if (decision.action === 'keep') older++;
        else conflict ??= decision.why;
      }
      if (conflict !== undefined) {
        conflicts++;
        const offered = Object.fromEntries(fields.map((f) => [f, FEED_FIELDS[f](row)]));
        raised.push(
          detailConflict(
            current.id,
            detail,
            { values: current.values, known: detailKnown(detail, current.provenance) },
            { values: offered, source: 'bs_select', on: row.effectiveDate },
            conflict,
          ),
        );
      } else if (applying) for (const field of applying) changes[field] = FEED_FIELDS[field](row);
    }
    // Responsibility follows the GP: a move to another office's practice moves the person to that office.
    if (changes.gp_practice_code !== undefined && bso !== current.values.bso_code) changes.bso_code = bso;
    const plan = planFieldChanges({
      participantId: current.id,
      current: current.values,
      provenance: current.provenance,
      changes,
      source: 'bs_select',
      sourceDate: row.effectiveDate,
      reason: reasonFor,
      changedBy: actor.userId,
      at,
    });
    if (plan.changed.length === 0) {
      outcomes.push(older > 0 || conflicts > 0 ? { changed: 0, older, conflicts } : 'unchanged');
      continue;
    }
    history.push(...plan.history);
    const moved = plan.changed.includes('bso_code');
    if (moved)
      moves.push({
        participantId: current.id,
        fromOffice: current.values.bso_code as string,
        toOffice: bso,
        gpPracticeFrom: current.values.gp_practice_code,
        gpPracticeTo: row.gpPracticeCode,
        effectiveDate: row.effectiveDate,
        source: 'bs_select',
      });
    Object.assign(current.values, changes);
    current.provenance = plan.provenance;
    current.version++;
    for (const field of plan.changed) current.dirty.add(field as RecordField);
    outcomes.push({ changed: plan.changed.length, older, conflicts, ...(moved ? { moved } : {}) });
  }

  // Disagreements staff must decide go to the data conflict queue, one statement a batch.
  await raiseConflicts(tx, raised);
  // Each statement takes the whole batch as one JSON parameter (jsonb_to_recordset): far quicker than thousands of
  // bound parameters, and no limit on their number.
  const added = [...records.entries()].filter(([, r]) => r.isNew).map(([nhsNumber, r]) => asRecordRow(nhsNumber, r));
  if (added.length > 0) {
    await sql`
      insert into participant (id, nhs_number, ${sql.raw(RECORD_COLUMNS.join(', '))}, provenance, version)
      select id, nhs_number, ${sql.raw(RECORD_COLUMNS.join(', '))}, provenance, version
      from jsonb_to_recordset(${JSON.stringify(added)}::jsonb) as x(${RECORD_TYPES})`.execute(tx);
  }
  const amended = [...records.entries()]
    .filter(([, r]) => !r.isNew && r.dirty.size > 0)
    .map(([nhsNumber, r]) => asRecordRow(nhsNumber, r));
  if (amended.length > 0) {
    // Every field is set, changed or not: the others hold the values read above, under the row lock.
    await sql`
      update participant p
      set ${sql.raw(RECORD_COLUMNS.map((c) => `${c} = x.${c}`).join(', '))},
        provenance = x.provenance, version = x.version, updated_at = now()
      from jsonb_to_recordset(${JSON.stringify(amended)}::jsonb) as x(${RECORD_TYPES})
      where p.id = x.id`.execute(tx);
  }
  if (history.length > 0) {
    await sql`
      insert into participant_change (participant_id, field, old_value, new_value, source, source_date, reason,
        changed_by)
      select participant_id, field, old_value, new_value, source, source_date, reason, changed_by
      from jsonb_to_recordset(${JSON.stringify(history)}::jsonb) as x(participant_id uuid, field text,
        old_value text, new_value text, source text, source_date date, reason text, changed_by uuid)`.execute(tx);
  }
  // Her open episode moves with her, and both offices see the move (src/store/movers.ts): one call a batch.
  await recordMoves(tx, moves, actor.userId);
  return outcomes;
}
