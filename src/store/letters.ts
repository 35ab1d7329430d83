import { createHash } from 'node:crypto';
import { sql } from 'kysely';
import { slotTime } from '../pathway/clinic-slots.js';
import { letterFormatFor, type LetterChoice } from '../pathway/invitation-letters.js';
import { STATUS_LABELS } from '../pathway/appointment-status.js';
import {
  letterBlock,
  letterProduction,
  resultLetter,
  type LetterAppointment,
  type LetterBlock,
  type ResultLetter,
  type ResultLetterFacts,
} from '../pathway/result-letters.js';
import { episodeEnd } from '../pathway/assessment.js';
import { COMMUNICATION_KINDS, isMalignant, type CommunicationKind } from '../pathway/screening-outcomes.js';
import { compareIsoDate, type IsoDate } from '../pathway/dates.js';
import { renderLetterPdf, renderLettersPdf } from '../letters/pdf.js';
import { recordAudit, type Actor } from './audit.js';
import { currentItemsOf } from './clinics.js';
import type { Db } from './database.js';
import { NotFoundError } from './errors.js';

/**
 * Result letters to participants: the results module queues a communication row (channel 'letter'); here each is
 * written in her format (src/pathway/result-letters.ts), rendered to PDF (src/letters/pdf.ts) and recorded as sent
 * with its words and the PDF's SHA-256, so it can be shown again exactly as sent. Printed letters come out as one
 * PDF a run; braille, audio and translations not provided here go to their service with a cover line. A letter to
 * someone who has died is not sent (failed, with the date); one whose appointment or outcome is missing, or whose
 * appointment is today or has passed, waits (held) until one is booked in her episode. A letter is marked sent only
 * if what its words were made from still stands as the run is recorded (commitLetters).
 */

/**
 * The re-rendered letter is not the one sent: its stored words or the renderer changed. The message is logged, so it
 * names the letter by its communication id, never by her name.
 */
export class LetterIntegrityError extends Error {
  override readonly name = 'LetterIntegrityError';
  constructor(
    message: string,
    readonly communicationId: string,
  ) {
    super(message);
  }
}

export const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

const officeOf = sql<string>`coalesce(e.bso_code, p.bso_code)`;

/** Letters to participants with what their words need: the exam, its result, the follow-up, the outcome. */
function letterRows(db: Db) {
  return db
    .selectFrom('communication as m')
    .innerJoin('participant as p', 'p.id', 'm.participant_id')
    .leftJoin('episode as e', 'e.id', 'm.episode_id')
    .leftJoin('appointment as xa', 'xa.id', 'm.appointment_id')
    .leftJoin('clinic as xc', 'xc.id', 'xa.clinic_id')
    .leftJoin('exam_result as r', 'r.appointment_id', 'm.appointment_id')
    .leftJoin('appointment as fa', 'fa.id', 'r.follow_up_appointment_id')
    .leftJoin('clinic as fc', 'fc.id', 'fa.clinic_id')
    .leftJoin('location as fl', 'fl.id', 'fc.location_id')
    .leftJoin('assessment_outcome as o', (join) =>
      join.onRef('o.episode_id', '=', 'm.episode_id').on('o.superseded_at', 'is', null),
    )
    .where('m.channel', '=', 'letter')
    .where('m.recipient', '=', 'participant');
}

/** The recall to assessment's exam day in the letter's episode (the latest recall, when more than one). */
const recallScreenedOn = sql<string | null>`(
  select rc.clinic_date from exam_result rr
  join appointment ra on ra.id = rr.appointment_id
  join clinic rc on rc.id = ra.clinic_id
  where rr.episode_id = m.episode_id and rr.result = 'recall_assessment'
  order by rr.issued_at desc limit 1)`;

/** The clinic purpose a letter's appointment is at: a repeat screen, or the assessment clinic. */
const appointmentPurpose = (kind: CommunicationKind) =>
  kind === 'result_technical_recall' ? 'screening' : 'assessment';

async function loadQueued(db: Db, which: { ids: readonly string[] } | { office: string }, today: IsoDate) {
  let query = letterRows(db)
    .select([
      'm.id',
      'm.participant_id',
      'm.episode_id',
      'm.appointment_id',
      'm.kind',
      'm.format',
      'm.language',
      'm.created_at',
      'p.nhs_number',
      'p.given_name',
      'p.family_name',
      'p.date_of_birth',
      'p.date_of_death',
      'p.address_line1',
      'p.address_line2',
      'p.town',
      'p.postcode',
      'p.gp_practice_code',
      'p.very_high_risk',
      officeOf.as('bso_code'),
      'xc.clinic_date as exam_date',
      'e.screened_on',
      recallScreenedOn.as('recall_screened_on'),
      'r.next_test_due',
      'r.follow_up_problem',
      'fa.id as follow_up_id',
      'fa.status as follow_up_status',
      'fa.slot_index as follow_up_slot',
      'fc.clinic_date as follow_up_date',
      'fc.starts_at as follow_up_starts_at',
      'fc.slot_minutes as follow_up_slot_minutes',
      'fl.name as follow_up_location',
      'fl.address as follow_up_address',
      'fl.postcode as follow_up_postcode',
      'o.id as outcome_id',
      'o.outcome',
      'o.early_recall_months',
      'o.referred_to_treatment',
      'o.treatment_provider',
    ])
    .where('m.status', '=', 'queued');
  if ('ids' in which) {
    if (which.ids.length === 0) return [];
    query = query.where('m.id', 'in', [...which.ids]);
  } else query = query.where(officeOf, '=', which.office);
  const rows = await query.orderBy('m.created_at').orderBy('m.id').execute();
  if (rows.length === 0) return [];

  const offices = await officeAddresses(db, [...new Set(rows.map((r) => r.bso_code))]);
  const items = await currentItemsOf(db, [...new Set(rows.map((r) => r.participant_id))]);
  const later = await laterAppointments(
    db,
    rows.filter(
      (r) =>
        r.kind === 'result_technical_recall' ||
        r.kind === 'result_assessment' ||
        (r.kind === 'assessment_outcome' && r.outcome !== null && isMalignant(r.outcome)),
    ),
    today,
  );
  return rows.map((r) => {
    const own = (items.get(r.participant_id) ?? []).map((i) => ({
      kind: i.kind,
      value: i.value,
      temporaryUntil: i.temporary_until,
    }));
    const preferred = letterFormatFor(own, today);
    const choice: LetterChoice = r.format
      ? { ...preferred, format: r.format, language: r.language ?? preferred.language }
      : preferred;
    let appointment: (LetterAppointment & { id: string }) | null = null;
    let appointmentProblem = r.follow_up_problem;
    const laterOne = r.episode_id ? (later.get(`${r.episode_id}:${appointmentPurpose(r.kind)}`) ?? null) : null;
    if (r.kind === 'result_technical_recall' || r.kind === 'result_assessment') {
      const booked =
        r.follow_up_id && r.follow_up_status === 'scheduled' && r.follow_up_date
          ? {
              id: r.follow_up_id,
              date: r.follow_up_date,
              time: slotTime(
                { startsAt: r.follow_up_starts_at!, slotMinutes: r.follow_up_slot_minutes! },
                r.follow_up_slot!,
              ),
              location: r.follow_up_location!,
              address: `${r.follow_up_address}, ${r.follow_up_postcode}`,
            }
          : null;
      // The appointment the result booked; else one booked since in her episode (by hand, after it was cancelled,
      // missed or too soon); else the booked one even if it is too soon (the letter waits, saying so).
      if (booked && compareIsoDate(booked.date, today) > 0) appointment = booked;
      else if (laterOne) appointment = laterOne;
      else if (booked) appointment = booked;
      else if (r.follow_up_status)
        appointmentProblem = `the appointment booked is now ${STATUS_LABELS[r.follow_up_status].toLowerCase()}`;
    } else if (r.kind === 'assessment_outcome') appointment = laterOne;
    const outcomeScreenedOn = r.recall_screened_on ?? r.screened_on;
    const nextTestDue =
      r.kind === 'assessment_outcome'
        ? r.outcome && outcomeScreenedOn
          ? episodeEnd(
              { outcome: r.outcome, earlyRecallMonths: r.early_recall_months },
              { screenedOn: outcomeScreenedOn, veryHighRisk: r.very_high_risk },
            ).nextTestDue
          : null
        : r.next_test_due;
    const office = offices.get(r.bso_code) ?? { name: r.bso_code, address: [], phone: null };
    const facts: ResultLetterFacts = {
      kind: r.kind,
      date: today,
      givenName: r.given_name,
      familyName: r.family_name,
      address: [r.address_line1, r.address_line2, r.town, r.postcode].filter((x): x is string => Boolean(x)),
      nhsNumber: r.nhs_number,
      dateOfBirth: r.date_of_birth,
      dateOfDeath: r.date_of_death,
      office,
      screenedOn: r.kind === 'assessment_outcome' ? outcomeScreenedOn : (r.exam_date ?? r.screened_on),
      nextTestDue,
      appointment: appointment && {
        date: appointment.date,
        time: appointment.time,
        location: appointment.location,
        address: appointment.address,
      },
      outcome:
        r.kind === 'assessment_outcome' && r.outcome
          ? {
              outcome: r.outcome,
              earlyRecallMonths: r.early_recall_months,
              referredToTreatment: r.referred_to_treatment ?? false,
              treatmentProvider: r.treatment_provider,
            }
          : null,
      appointmentProblem,
      gpInformed: r.gp_practice_code !== null,
    };
    return {
      row: r,
      facts,
      choice,
      block: letterBlock(facts),
      // What the words are made from, checked again as the letter is marked sent.
      basis: {
        outcomeId: r.kind === 'assessment_outcome' ? r.outcome_id : null,
        appointmentId: appointment?.id ?? null,
      },
    };
  });
}

/** Each office's name, and its address: its static breast unit's (where the letters come from). */
async function officeAddresses(db: Db, codes: string[]) {
  const offices = new Map<string, { name: string; address: string[]; phone: string | null }>();
  if (codes.length === 0) return offices;
  const names = await db
    .selectFrom('screening_office')
    .select(['code', 'name', 'phone'])
    .where('code', 'in', codes)
    .execute();
  const places = await db
    .selectFrom('location')
    .select(['bso_code', 'name', 'address', 'postcode'])
    .where('bso_code', 'in', codes)
    .where('static_site_id', 'is not', null)
    .orderBy('name')
    .execute();
  for (const o of names) {
    const place = places.find((p) => p.bso_code === o.code);
    offices.set(o.code, {
      name: o.name,
      address: place ? [place.name, place.address, place.postcode] : [],
      phone: o.phone,
    });
  }
  return offices;
}

/**
 * The next appointment booked (scheduled) in each of these letters' episodes after today, at a screening clinic (a
 * technical recall's repeat) and at an assessment clinic (an assessment, or her next one after a malignant outcome).
 * Keyed `episode:purpose`.
 */
async function laterAppointments(db: Db, rows: { episode_id: string | null }[], today: IsoDate) {
  const found = new Map<string, LetterAppointment & { id: string }>();
  const episodes = [...new Set(rows.map((r) => r.episode_id).filter((e): e is string => e !== null))];
  if (episodes.length === 0) return found;
  const appointments = await db
    .selectFrom('appointment as a')
    .innerJoin('clinic as c', 'c.id', 'a.clinic_id')
    .innerJoin('location as l', 'l.id', 'c.location_id')
    .select([
      'a.id',
      'a.episode_id',
      'a.slot_index',
      'c.purpose',
      'c.clinic_date',
      'c.starts_at',
      'c.slot_minutes',
      'l.name',
      'l.address',
      'l.postcode',
    ])
    .where('a.episode_id', 'in', episodes)
    .where('a.status', '=', 'scheduled')
    .where('c.clinic_date', '>', today)
    .orderBy('c.clinic_date')
    .orderBy('c.starts_at')
    .orderBy('a.slot_index')
    .execute();
  for (const a of appointments) {
    const key = `${a.episode_id}:${a.purpose}`;
    if (a.episode_id && !found.has(key))
      found.set(key, {
        id: a.id,
        date: a.clinic_date,
        time: slotTime({ startsAt: a.starts_at, slotMinutes: a.slot_minutes }, a.slot_index),
        location: a.name,
        address: `${a.address}, ${a.postcode}`,
      });
  }
  return found;
}

// Queued letters ------------------------------------------------------------------------------------------------

export interface QueuedLetter {
  id: string;
  participantId: string;
  nhsNumber: string;
  givenName: string;
  familyName: string;
  kind: CommunicationKind;
  createdAt: Date;
  format: ResultLetter['format'];
  language: string | null;
  /** How it will be made: the print run, or a service. */
  production: string;
  /** Why it cannot go now (held) or at all (failed). */
  block: LetterBlock | null;
}

/** Letters ready to send, by kind, format and how they are made. */
export interface QueueCount {
  kind: CommunicationKind;
  format: QueuedLetter['format'];
  production: string;
  count: number;
}

/** An office's queued letters, each with the format it will be sent in and anything stopping it. */
export async function queuedLetters(
  db: Db,
  filter: { office: string; today: IsoDate },
): Promise<{ letters: QueuedLetter[]; counts: QueueCount[] }> {
  const loaded = await loadQueued(db, { office: filter.office }, filter.today);
  const letters = loaded.map(({ row, choice, block, facts }) => {
    return {
      id: row.id,
      participantId: row.participant_id,
      nhsNumber: row.nhs_number,
      givenName: row.given_name,
      familyName: row.family_name,
      kind: row.kind,
      createdAt: row.created_at,
      format: choice.format,
      language: choice.format === 'translated' ? choice.language : null,
      production: letterProduction(facts.kind, choice),
      block,
    };
  });
  const counts = new Map<string, QueueCount>();
  for (const l of letters) {
    if (l.block) continue;
    const key = `${l.kind}/${l.format}/${l.production}`;
    const c = counts.get(key) ?? { kind: l.kind, format: l.format, production: l.production, count: 0 };
    c.count++;
    counts.set(key, c);
  }
  const order = (c: QueueCount) => COMMUNICATION_KINDS.indexOf(c.kind);
  return {
    letters,
    counts: [...counts.values()].sort(
      (a, b) => order(a) - order(b) || a.format.localeCompare(b.format) || a.production.localeCompare(b.production),
    ),
  };
}

// Sending -------------------------------------------------------------------------------------------------------

export interface SentLetter {
  id: string;
  participantId: string;
  nhsNumber: string;
  name: string;
  kind: CommunicationKind;
  format: ResultLetter['format'];
  language: string | null;
  production: string;
  service: ResultLetter['service'];
  sha256: string;
}

export interface SendResult {
  /** The print run's id (its sent_at in milliseconds), when anything was sent. */
  runId: number | null;
  /** In the print run's PDF, in the order printed. */
  printed: SentLetter[];
  /** Sent to the transcription or translation service (each has its own PDF with the cover line). */
  services: SentLetter[];
  failed: {
    id: string;
    participantId: string;
    kind: CommunicationKind;
    nhsNumber: string;
    name: string;
    reason: string;
  }[];
  held: { id: string; nhsNumber: string; name: string; reason: string }[];
  /**
   * Changed while this run was being made, so not marked sent: sent by someone else, or its outcome corrected or its
   * appointment changed since its words were made (left queued for the next run to make again, unless failed).
   */
  skipped: number;
  /** The print run: every printed letter, one after another. */
  pdf: Uint8Array | null;
}

/** Postal order: postcode, then name, then id; the same from the stored words, so a run renders again the same. */
function printOrder(a: { id: string; letter: ResultLetter }, b: { id: string; letter: ResultLetter }): number {
  const key = (x: { id: string; letter: ResultLetter }) => [x.letter.to.at(-1) ?? '', x.letter.to[0] ?? '', x.id];
  const [ka, kb] = [key(a), key(b)];
  for (let i = 0; i < ka.length; i++) if (ka[i] !== kb[i]) return ka[i]! < kb[i]! ? -1 : 1;
  return 0;
}

/** Letters made ready to send (rendered, outside any transaction), and those that cannot go; see prepareLetters. */
export interface PreparedLetters {
  which: { ids: readonly string[] } | { office: string };
  today: IsoDate;
  ready: {
    id: string;
    row: Awaited<ReturnType<typeof loadQueued>>[number]['row'];
    letter: ResultLetter;
    sha256: string;
    /** What the words were made from: the outcome (outcome letters) and the appointment (when it names one). */
    basis: { outcomeId: string | null; appointmentId: string | null };
  }[];
  failed: SendResult['failed'];
  held: SendResult['held'];
}

const nameOf = (r: { given_name: string; family_name: string }) => `${r.given_name} ${r.family_name}`;

/**
 * The first half of sending: each queued letter written in her format and rendered (slow: no transaction is held
 * open for it); she has died: to be failed; something missing or too late: held, with the reason.
 */
export async function prepareLetters(
  db: Db,
  which: { ids: readonly string[] } | { office: string },
  today: IsoDate,
): Promise<PreparedLetters> {
  const loaded = await loadQueued(db, which, today);
  const failed: SendResult['failed'] = [];
  const held: SendResult['held'] = [];
  const ready: PreparedLetters['ready'] = [];
  for (const { row, facts, choice, block, basis } of loaded) {
    const who = { id: row.id, nhsNumber: row.nhs_number, name: nameOf(row) };
    if (block?.status === 'failed')
      failed.push({ ...who, participantId: row.participant_id, kind: row.kind, reason: block.reason });
    else if (block) held.push({ ...who, reason: block.reason });
    else {
      const letter = resultLetter(facts, choice);
      ready.push({ id: row.id, row, letter, sha256: sha256(await renderLetterPdf(letter)), basis });
    }
  }
  ready.sort(printOrder);
  return { which, today, ready, failed, held };
}

/**
 * Sends queued letters: these ids, or every one queued for an office. Each is written in her format, rendered, and
 * recorded as sent with its words and hash; she has died: failed, with the date; something missing: left queued.
 */
export async function sendLetters(
  db: Db,
  which: { ids: readonly string[] } | { office: string },
  actor: Actor,
  today: IsoDate,
): Promise<SendResult> {
  return commitLetters(db, await prepareLetters(db, which, today), actor);
}

/**
 * The second half of sending, in one transaction: each prepared letter is marked sent only if it is still queued
 * and what its words were made from still stands (the outcome is still the current one, the appointment is still
 * booked); otherwise it is skipped, left as it is, for the next run to make again from the record as it is then.
 */
export async function commitLetters(db: Db, prepared: PreparedLetters, actor: Actor): Promise<SendResult> {
  const { which, today, ready, failed, held } = prepared;
  let skipped = 0;
  const sent: SentLetter[] = [];
  // A run is known by its sent_at (milliseconds), so no two runs share one.
  let runAt = new Date();
  await db.transaction().execute(async (tx) => {
    if (ready.length > 0) {
      const last = await tx
        .selectFrom('communication')
        .select((eb) => eb.fn.max('sent_at').as('last'))
        .where('channel', '=', 'letter')
        .executeTakeFirst();
      const lastMs = last?.last ? new Date(last.last).getTime() : 0;
      runAt = new Date(Math.max(Date.now(), lastMs + 1));
    }
    for (const r of ready) {
      const updated = await tx
        .updateTable('communication')
        .set((eb) => ({
          status: 'sent',
          sent_at: runAt,
          content: JSON.stringify(r.letter),
          content_sha256: r.sha256,
          format: r.letter.format,
          language: r.letter.language,
          attempts: eb('attempts', '+', 1),
          last_error: null,
        }))
        .where('id', '=', r.id)
        .where('status', '=', 'queued')
        .where((eb) =>
          eb.and([
            ...(r.basis.outcomeId
              ? [
                  eb.exists(
                    eb
                      .selectFrom('assessment_outcome')
                      .select('id')
                      .where('id', '=', r.basis.outcomeId)
                      .where('superseded_at', 'is', null),
                  ),
                ]
              : []),
            ...(r.basis.appointmentId
              ? [
                  eb.exists(
                    eb
                      .selectFrom('appointment')
                      .select('id')
                      .where('id', '=', r.basis.appointmentId)
                      .where('status', '=', 'scheduled'),
                  ),
                ]
              : []),
          ]),
        )
        .executeTakeFirst();
      if (Number(updated.numUpdatedRows) === 0) {
        skipped++;
        continue;
      }
      sent.push({
        id: r.id,
        participantId: r.row.participant_id,
        nhsNumber: r.row.nhs_number,
        name: nameOf(r.row),
        kind: r.letter.kind,
        format: r.letter.format,
        language: r.letter.language,
        production: r.letter.production,
        service: r.letter.service,
        sha256: r.sha256,
      });
      await recordAudit(tx, actor, {
        action: 'letter.send',
        entityType: 'communication',
        entityId: r.id,
        participantId: r.row.participant_id,
        detail: {
          kind: r.letter.kind,
          format: r.letter.format,
          service: r.letter.service,
          sha256: r.sha256,
          runId: runAt.getTime(),
        },
      });
    }
    for (const f of failed) {
      const updated = await tx
        .updateTable('communication')
        .set((eb) => ({ status: 'failed', last_error: f.reason, attempts: eb('attempts', '+', 1) }))
        .where('id', '=', f.id)
        .where('status', '=', 'queued')
        .executeTakeFirst();
      if (Number(updated.numUpdatedRows) === 0) continue;
      await recordAudit(tx, actor, {
        action: 'letter.fail',
        entityType: 'communication',
        entityId: f.id,
        participantId: f.participantId,
        detail: { kind: f.kind, reason: f.reason },
      });
    }
    await recordAudit(tx, actor, {
      action: 'letters.send',
      entityType: 'communication',
      detail: {
        ...('office' in which ? { office: which.office } : { ids: which.ids.length }),
        runId: sent.length > 0 ? runAt.getTime() : null,
        sent: sent.length,
        printed: sent.filter((s) => !s.service).length,
        services: sent.filter((s) => s.service).length,
        failed: failed.length,
        held: held.length,
        skipped,
      },
    });
  });
  const sentIds = new Set(sent.map((s) => s.id));
  const printed = ready.filter((r) => sentIds.has(r.id) && !r.letter.service);
  return {
    runId: sent.length > 0 ? runAt.getTime() : null,
    printed: sent.filter((s) => !s.service),
    services: sent.filter((s) => s.service),
    failed,
    held,
    skipped,
    pdf:
      printed.length > 0
        ? await runPdf(
            printed.map((p) => p.letter),
            today,
          )
        : null,
  };
}

const runPdf = (letters: ResultLetter[], date: IsoDate) =>
  renderLettersPdf(letters, {
    title: `Result letters, print run of ${date}: ${letters.length} letters`,
    lang: 'en-GB',
  });

// Showing letters again -----------------------------------------------------------------------------------------

const slug = (kind: string) => kind.replaceAll('_', '-');

/** A sent letter's PDF, rendered again from its stored words: refused if it is not byte for byte what was sent. */
export async function letterPdf(
  db: Db,
  communicationId: string,
  actor: Actor,
): Promise<{ pdf: Uint8Array; filename: string; letter: ResultLetter; participantId: string }> {
  const row = await db
    .selectFrom('communication')
    .select(['id', 'participant_id', 'kind', 'content', 'content_sha256', 'status', 'sent_at'])
    .where('id', '=', communicationId)
    .where('channel', '=', 'letter')
    .executeTakeFirst();
  if (!row || row.content === null || row.content_sha256 === null)
    throw new NotFoundError('No letter was sent for this');
  const letter = row.content as ResultLetter;
  const pdf = await renderLetterPdf(letter);
  const hash = sha256(pdf);
  await recordAudit(db, actor, {
    action: 'letter.download',
    entityType: 'communication',
    entityId: row.id,
    participantId: row.participant_id,
    detail: { kind: row.kind, matches: hash === row.content_sha256 },
  });
  if (hash !== row.content_sha256)
    throw new LetterIntegrityError(
      `This letter cannot be shown: rendered again, it does not match the letter that was sent (letter ${row.id}). Report this to the service desk.`,
      row.id,
    );
  return {
    pdf,
    filename: `breast-screening-${slug(row.kind)}-${letter.date}-${row.id.slice(0, 8)}.pdf`,
    letter,
    participantId: row.participant_id,
  };
}

/** A run's letters: what was printed (in print order) and what went to services. */
export async function printRun(db: Db, runId: number) {
  const rows = await db
    .selectFrom('communication as m')
    .innerJoin('participant as p', 'p.id', 'm.participant_id')
    .select([
      'm.id',
      'm.participant_id',
      'm.kind',
      'm.format',
      'm.language',
      'm.content',
      'm.content_sha256',
      'm.status',
      'p.nhs_number',
      'p.given_name',
      'p.family_name',
    ])
    .where('m.channel', '=', 'letter')
    .where('m.sent_at', '=', new Date(runId))
    .where('m.content', 'is not', null)
    .execute();
  if (rows.length === 0) throw new NotFoundError('No such print run');
  const letters = rows.map((r) => ({ id: r.id, row: r, letter: r.content as ResultLetter })).sort(printOrder);
  return {
    runId,
    sentAt: new Date(runId),
    printed: letters.filter((l) => !l.letter.service),
    services: letters.filter((l) => l.letter.service),
  };
}

/** The run's print PDF, rendered again from the stored letters, each checked against its hash. */
export async function printRunPdf(db: Db, runId: number, actor: Actor): Promise<{ pdf: Uint8Array; filename: string }> {
  const run = await printRun(db, runId);
  if (run.printed.length === 0)
    throw new NotFoundError('Nothing in this run was printed: every letter went to a service');
  for (const l of run.printed)
    if (sha256(await renderLetterPdf(l.letter)) !== l.row.content_sha256)
      throw new LetterIntegrityError(
        `The print run cannot be shown: letter ${l.id} in it does not match what was sent. Report this to the service desk.`,
        l.id,
      );
  const date = run.printed[0]!.letter.date;
  await recordAudit(db, actor, {
    action: 'letters.download_run',
    entityType: 'communication',
    detail: { runId, letters: run.printed.length, ids: run.printed.map((l) => l.id) },
  });
  return {
    pdf: await runPdf(
      run.printed.map((l) => l.letter),
      date,
    ),
    filename: `result-letters-print-run-${date}-${runId}.pdf`,
  };
}

// Lists ---------------------------------------------------------------------------------------------------------

/** The latest print runs of an office, newest first. */
export async function recentRuns(db: Db, office: string, limit = 10) {
  const rows = await letterRows(db)
    .select([
      'm.sent_at',
      sql<number>`count(*)::int`.as('letters'),
      sql<number>`(count(*) filter (where m.content->>'service' is null))::int`.as('printed'),
    ])
    .where(officeOf, '=', office)
    .where('m.sent_at', 'is not', null)
    .where('m.content', 'is not', null)
    .groupBy('m.sent_at')
    .orderBy('m.sent_at', 'desc')
    .limit(limit)
    .execute();
  return rows.map((r) => {
    const sentAt = new Date(r.sent_at!);
    return { runId: sentAt.getTime(), sentAt, letters: r.letters, printed: r.printed, services: r.letters - r.printed };
  });
}

/** Letters already dealt with: sent (newest first), or failed with the reason. */
export async function recentLetters(db: Db, office: string, status: 'sent' | 'failed', limit = 50) {
  let query = letterRows(db)
    .select([
      'm.id',
      'm.participant_id',
      'm.kind',
      'm.format',
      'm.language',
      'm.status',
      'm.sent_at',
      'm.created_at',
      'm.last_error',
      'p.nhs_number',
      'p.given_name',
      'p.family_name',
      sql<string | null>`m.content->>'service'`.as('service'),
    ])
    .where(officeOf, '=', office);
  query =
    status === 'sent'
      ? query.where('m.status', 'in', ['sent', 'delivered', 'acknowledged']).orderBy('m.sent_at', 'desc')
      : query.where('m.status', '=', 'failed').orderBy('m.created_at', 'desc');
  return query.orderBy('m.id').limit(limit).execute();
}

/** Her letters, newest first, for her record. */
export async function participantLetters(db: Db, participantId: string) {
  return db
    .selectFrom('communication')
    .select(['id', 'kind', 'format', 'language', 'status', 'created_at', 'sent_at', 'last_error'])
    .where('participant_id', '=', participantId)
    .where('channel', '=', 'letter')
    .orderBy('created_at', 'desc')
    .execute();
}
