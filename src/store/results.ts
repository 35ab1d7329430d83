/**
 * Results (issue 6, item 2): the exams whose reading is decided and have no result yet, and issuing a result, which
 * books what comes next and queues the letter to her and the message to her GP, all in one transaction.
 *
 * - Routine recall (normal): the episode closes (screening complete, routine recall) with her next test due.
 * - Technical recall: a new appointment at a screening clinic of the same site, within TECHNICAL_RECALL_WITHIN_DAYS.
 * - Recall to assessment: an appointment at an assessment clinic of one of the office's static sites, no later than
 *   ASSESSMENT_WITHIN_DAYS after screening.
 * Neither is booked sooner than FOLLOW_UP_NOTICE_DAYS after the result, so her letter reaches her first.
 * When no clinic has room the result is still issued, with follow_up_problem saying why: the failsafe page lists it.
 * A result is issued once: issuing again changes nothing and says when it was issued.
 */
import { slotTime } from '../pathway/clinic-slots.js';
import { compareIsoDate, formatLongDate } from '../pathway/dates.js';
import { letterFormatFor } from '../pathway/invitation-letters.js';
import type { ArbitrationPolicy, ReadSummary } from '../pathway/reading.js';
import { readingOutcome, type ReadingStage } from '../pathway/reading.js';
import {
  assessmentWindow,
  FOLLOW_UP_NOTICE_DAYS,
  nextTestDue,
  resultDecision,
  technicalRecallWindow,
  type BookingWindow,
} from '../pathway/results.js';
import {
  RESULT_COMMUNICATION,
  type ClinicPurpose,
  type ExamResult,
  type Opinion,
  type OpinionDetails,
} from '../pathway/screening-outcomes.js';
import { recordAudit, type Actor } from './audit.js';
import { bookWithin, currentItemsOf, suitableClinics } from './clinics.js';
import type { Db } from './database.js';
import { NotFoundError, RuleError } from './errors.js';

/** Appointment statuses whose images make an exam. */
export const EXAM_STATUSES = ['screened', 'partially_screened'] as const;

/** The most decided exams the results page lists at once (oldest first); the rest wait for the next batch. */
export const RESULTS_SHOWN = 200;

/**
 * Screening exams with images at the hub and no result: appointments screened (or partially) at a screening clinic
 * whose images reached the PACS. Assessment clinic appointments are not screening exams: they are not read or
 * resulted here.
 */
function examsWithoutResult(db: Db) {
  return db
    .selectFrom('appointment as a')
    .innerJoin('clinic as c', 'c.id', 'a.clinic_id')
    .where('a.status', 'in', EXAM_STATUSES)
    .where('a.images_available_at', 'is not', null)
    .where('a.episode_id', 'is not', null)
    .where('c.purpose', '=', 'screening')
    .where((eb) =>
      eb.not(
        eb.exists(
          eb.selectFrom('exam_result as r').select('r.appointment_id').whereRef('r.appointment_id', '=', 'a.id'),
        ),
      ),
    );
}

export interface ExamRead extends ReadSummary {
  details: OpinionDetails;
  readerName: string;
}

function groupReads(
  rows: {
    appointment_id: string;
    read_number: 1 | 2 | 3;
    reader_id: string;
    opinion: Opinion;
    details: OpinionDetails;
    display_name: string;
  }[],
) {
  const byExam = new Map<string, ExamRead[]>();
  for (const r of rows) {
    const read: ExamRead = {
      readNumber: r.read_number,
      readerId: r.reader_id,
      opinion: r.opinion,
      details: r.details,
      readerName: r.display_name,
    };
    byExam.set(r.appointment_id, [...(byExam.get(r.appointment_id) ?? []), read]);
  }
  return byExam;
}

const readColumns = [
  'o.appointment_id',
  'o.read_number',
  'o.reader_id',
  'o.opinion',
  'o.details',
  'u.display_name',
] as const;

/** The reads of these exams (read_number order). */
export async function readsOf(db: Db, appointmentIds: readonly string[]): Promise<Map<string, ExamRead[]>> {
  if (appointmentIds.length === 0) return new Map();
  const rows = await db
    .selectFrom('reading_opinion as o')
    .innerJoin('app_user as u', 'u.id', 'o.reader_id')
    .select(readColumns)
    .where('o.appointment_id', 'in', appointmentIds)
    .orderBy('o.read_number')
    .execute();
  return groupReads(rows);
}

export interface ResultToIssue {
  appointmentId: string;
  episodeId: string;
  participantId: string;
  nhsNumber: string;
  givenName: string;
  familyName: string;
  dateOfBirth: string;
  screenedOn: string;
  siteName: string;
  imagesAvailableAt: Date;
  opinion: Opinion;
  result: ExamResult;
  /** Decided by the arbiter (read 3), not by two reads that agreed. */
  arbitrated: boolean;
  /** A normal result's next test due. */
  nextTestDue: string | null;
  reads: ExamRead[];
}

export interface ResultsToIssue {
  /** Decided exams, oldest screened first, at most RESULTS_SHOWN. */
  decided: ResultToIssue[];
  /** How many exams are decided in all, and how many wait for each step of reading. */
  counts: { decided: number } & Record<Exclude<ReadingStage, 'decided'>, number>;
  /** The latest results issued (recentResults), shown beside them: in the same audit of what was seen. */
  recent: RecentResult[];
}

/** The results waiting to be issued, and how many exams still wait for reads (counts only). Audited. */
export async function resultsToIssue(db: Db, policy: ArbitrationPolicy, actor: Actor): Promise<ResultsToIssue> {
  const exams = await examsWithoutResult(db)
    .innerJoin('site as s', 's.id', 'c.site_id')
    .innerJoin('participant as p', 'p.id', 'a.participant_id')
    .select([
      'a.id',
      'a.episode_id',
      'a.images_available_at',
      'c.clinic_date',
      's.name as site_name',
      'p.id as participant_id',
      'p.nhs_number',
      'p.given_name',
      'p.family_name',
      'p.date_of_birth',
      'p.very_high_risk',
    ])
    .orderBy('c.clinic_date')
    .orderBy('a.images_available_at')
    .orderBy('a.id')
    .execute();
  // One query for every exam's reads, whatever their number (no list of ids to outgrow the parameter limit).
  const reads = groupReads(
    await db
      .selectFrom('reading_opinion as o')
      .innerJoin('app_user as u', 'u.id', 'o.reader_id')
      .select(readColumns)
      .where('o.appointment_id', 'in', examsWithoutResult(db).select('a.id'))
      .orderBy('o.read_number')
      .execute(),
  );
  const counts = { decided: 0, first_read: 0, second_read: 0, arbitration: 0 };
  const decided: ResultToIssue[] = [];
  for (const e of exams) {
    const own = reads.get(e.id) ?? [];
    const stage = readingOutcome(own, policy).stage;
    counts[stage]++;
    if (stage !== 'decided' || decided.length >= RESULTS_SHOWN) continue;
    const decision = resultDecision(own, policy);
    if (!decision.ok) continue;
    decided.push({
      appointmentId: e.id,
      episodeId: e.episode_id!,
      participantId: e.participant_id,
      nhsNumber: e.nhs_number,
      givenName: e.given_name,
      familyName: e.family_name,
      dateOfBirth: e.date_of_birth,
      screenedOn: e.clinic_date,
      siteName: e.site_name,
      imagesAvailableAt: e.images_available_at!,
      opinion: decision.opinion,
      result: decision.result,
      arbitrated: decision.arbitrated,
      nextTestDue:
        decision.result === 'routine_recall' ? nextTestDue(e.clinic_date, { veryHighRisk: e.very_high_risk }) : null,
      reads: own,
    });
  }
  const recent = await recentResults(db);
  await recordAudit(db, actor, {
    action: 'results.view',
    entityType: 'exam_result',
    detail: { shown: decided.map((d) => d.appointmentId), recent: recent.map((r) => r.appointment_id), counts },
  });
  return { decided, counts, recent };
}

export interface FollowUp {
  appointmentId: string;
  clinicDate: string;
  time: string;
  siteName: string;
  locationName: string;
}

export interface IssuedResult {
  appointmentId: string;
  participantId: string;
  name: string;
  /** True when the result had been issued before: nothing was changed this time. */
  alreadyIssued: boolean;
  issuedAt: Date;
  result: ExamResult;
  nextTestDue: string | null;
  followUp: FollowUp | null;
  followUpProblem: string | null;
  /** Letters and messages not queued, and why (no GP practice, she has died). */
  notes: string[];
}

async function followUpOf(db: Db, appointmentId: string | null): Promise<FollowUp | null> {
  if (!appointmentId) return null;
  const row = await db
    .selectFrom('appointment as a')
    .innerJoin('clinic as c', 'c.id', 'a.clinic_id')
    .innerJoin('site as s', 's.id', 'c.site_id')
    .innerJoin('location as l', 'l.id', 'c.location_id')
    .select(['a.id', 'a.slot_index', 'c.clinic_date', 'c.starts_at', 'c.slot_minutes', 's.name', 'l.name as location'])
    .where('a.id', '=', appointmentId)
    .executeTakeFirst();
  if (!row) return null;
  return {
    appointmentId: row.id,
    clinicDate: row.clinic_date,
    time: slotTime({ startsAt: row.starts_at, slotMinutes: row.slot_minutes }, row.slot_index),
    siteName: row.name,
    locationName: row.location,
  };
}

/**
 * Books the first clinic of `purpose` with room in the window, at one of `siteIds`: the booking's own rules apply
 * (bookWithin). Returns the appointment, or why there is none.
 */
async function bookFollowUp(
  tx: Db,
  request: { participantId: string; purpose: ClinicPurpose; siteIds: string[]; window: BookingWindow; what: string },
  actor: Actor,
  today: string,
): Promise<{ appointmentId: string } | { problem: string }> {
  const { window } = request;
  const span = `between ${formatLongDate(window.from)} and ${formatLongDate(window.to)}`;
  if (request.siteIds.length === 0)
    return { problem: `There is no ${request.purpose} site to book ${request.what} at: book it by hand` };
  const { clinics } = await suitableClinics(tx, request.participantId, window.from, window.to, {
    purpose: request.purpose,
    siteIds: request.siteIds,
  });
  let last: string | null = null;
  for (const clinic of clinics) {
    try {
      const appointmentId = await bookWithin(
        tx,
        { clinicId: clinic.id, participantId: request.participantId, purpose: request.purpose },
        actor,
        today,
      );
      return { appointmentId };
    } catch (error) {
      if (!(error instanceof RuleError)) throw error;
      // Something about her (she has died, is ceased, already has an appointment): no other clinic will do.
      if (error.field === 'participantId') return { problem: `${error.message}: book ${request.what} by hand` };
      last = error.message;
    }
  }
  return {
    problem: `No ${request.purpose} clinic has room for her ${span}${last ? ` (${last})` : ''}: book ${request.what} by hand`,
  };
}

async function lockedExam(tx: Db, appointmentId: string) {
  // The appointment row is the lock: two people issuing the same result take turns, and the second sees the first's.
  const locked = await tx
    .selectFrom('appointment')
    .select('id')
    .where('id', '=', appointmentId)
    .forUpdate()
    .executeTakeFirst();
  if (!locked) throw new NotFoundError('That exam does not exist');
  return tx
    .selectFrom('appointment as a')
    .innerJoin('clinic as c', 'c.id', 'a.clinic_id')
    .innerJoin('participant as p', 'p.id', 'a.participant_id')
    .leftJoin('episode as e', 'e.id', 'a.episode_id')
    .select([
      'a.id',
      'a.status',
      'a.images_available_at',
      'a.episode_id',
      'c.clinic_date',
      'c.site_id',
      'c.purpose',
      'e.bso_code as episode_bso_code',
      'e.closed_on',
      'p.id as participant_id',
      'p.given_name',
      'p.family_name',
      'p.date_of_death',
      'p.very_high_risk',
      'p.gp_practice_code',
      'p.bso_code',
    ])
    .where('a.id', '=', appointmentId)
    .executeTakeFirstOrThrow();
}

/**
 * Issues one exam's result. Refused (RuleError) unless the exam's reading is decided: two reads that agree, or the
 * arbiter's when they disagree (or the policy asks for one). Issued before: changes nothing, alreadyIssued true.
 */
export async function issueResult(
  db: Db,
  request: { appointmentId: string; policy: ArbitrationPolicy },
  actor: Actor,
  today: string,
): Promise<IssuedResult> {
  return db.transaction().execute(async (tx) => {
    const exam = await lockedExam(tx, request.appointmentId);
    const name = `${exam.given_name} ${exam.family_name.toUpperCase()}`;
    const existing = await tx
      .selectFrom('exam_result')
      .selectAll()
      .where('appointment_id', '=', exam.id)
      .executeTakeFirst();
    if (existing) {
      return {
        appointmentId: exam.id,
        participantId: exam.participant_id,
        name,
        alreadyIssued: true,
        issuedAt: existing.issued_at,
        result: existing.result,
        nextTestDue: existing.next_test_due,
        followUp: await followUpOf(tx, existing.follow_up_appointment_id),
        followUpProblem: existing.follow_up_problem,
        notes: [],
      };
    }
    if (!(EXAM_STATUSES as readonly string[]).includes(exam.status) || exam.purpose !== 'screening')
      throw new RuleError('appointmentId', 'This appointment is not a screening exam: it has no result to issue');
    if (!exam.images_available_at || !exam.episode_id)
      throw new RuleError('appointmentId', 'The images of this exam have not reached the hub: it cannot be read yet');
    const reads = (await readsOf(tx, [exam.id])).get(exam.id) ?? [];
    const decision = resultDecision(reads, request.policy);
    if (!decision.ok) throw new RuleError('appointmentId', decision.problem);

    const episodeId = exam.episode_id;
    let due: string | null = null;
    let booked: { appointmentId: string } | { problem: string } | null = null;
    if (decision.result === 'routine_recall') {
      due = nextTestDue(exam.clinic_date, { veryHighRisk: exam.very_high_risk });
      await tx
        .updateTable('episode')
        .set({ closed_on: today, end_code: 'SC', final_action: 'RR' })
        .where('id', '=', episodeId)
        .where('closed_on', 'is', null)
        .execute();
    } else if (decision.result === 'technical_recall') {
      booked = await bookFollowUp(
        tx,
        {
          participantId: exam.participant_id,
          purpose: 'screening',
          siteIds: [exam.site_id],
          window: technicalRecallWindow(today),
          what: 'her technical recall',
        },
        actor,
        today,
      );
    } else {
      const window = assessmentWindow(exam.clinic_date, today);
      if (window.late) {
        booked = {
          problem:
            compareIsoDate(window.to, today) < 0
              ? `The 21 days after her screening ended on ${formatLongDate(window.to)}: book her assessment by hand, as soon as possible`
              : `The 21 days after her screening end on ${formatLongDate(window.to)}, too soon to give her ${FOLLOW_UP_NOTICE_DAYS} days' notice by letter: book her assessment by hand and tell her by phone`,
        };
      } else {
        const sites = await tx
          .selectFrom('site')
          .select('id')
          .where('kind', '=', 'static')
          .where('bso_code', '=', exam.episode_bso_code ?? exam.bso_code)
          .orderBy('name')
          .execute();
        booked = await bookFollowUp(
          tx,
          {
            participantId: exam.participant_id,
            purpose: 'assessment',
            siteIds: sites.map((s) => s.id),
            window,
            what: 'her assessment',
          },
          actor,
          today,
        );
      }
    }
    const followUpId = booked && 'appointmentId' in booked ? booked.appointmentId : null;
    const followUpProblem = booked && 'problem' in booked ? booked.problem : null;
    const inserted = await tx
      .insertInto('exam_result')
      .values({
        appointment_id: exam.id,
        episode_id: episodeId,
        result: decision.result,
        next_test_due: due,
        follow_up_appointment_id: followUpId,
        follow_up_problem: followUpProblem,
        issued_by: actor.userId,
      })
      .returning('issued_at')
      .executeTakeFirstOrThrow();

    const notes = await queueCommunications(
      tx,
      {
        participantId: exam.participant_id,
        episodeId,
        appointmentId: exam.id,
        kind: RESULT_COMMUNICATION[decision.result],
        dateOfDeath: exam.date_of_death,
        gpPracticeCode: exam.gp_practice_code,
      },
      today,
    );
    await recordAudit(tx, actor, {
      action: 'result.issue',
      entityType: 'exam_result',
      entityId: exam.id,
      participantId: exam.participant_id,
      detail: {
        result: decision.result,
        opinion: decision.opinion,
        arbitrated: decision.arbitrated,
        reads: reads.map((r) => ({ readNumber: r.readNumber, readerId: r.readerId, opinion: r.opinion })),
        nextTestDue: due,
        followUpAppointmentId: followUpId,
        followUpProblem,
        notes,
      },
    });
    return {
      appointmentId: exam.id,
      participantId: exam.participant_id,
      name,
      alreadyIssued: false,
      issuedAt: inserted.issued_at,
      result: decision.result,
      nextTestDue: due,
      followUp: await followUpOf(tx, followUpId),
      followUpProblem,
      notes,
    };
  });
}

/**
 * Queues the letter to her (in the format her communication preferences ask for) and the message to her GP
 * practice, unless queued already. Returns what was not queued and why.
 */
export async function queueCommunications(
  tx: Db,
  c: {
    participantId: string;
    episodeId: string;
    /** The exam's appointment; null for an assessment outcome (then a row still waiting to go counts as queued). */
    appointmentId: string | null;
    kind: (typeof RESULT_COMMUNICATION)[ExamResult] | 'assessment_outcome';
    dateOfDeath: string | null;
    gpPracticeCode: string | null;
  },
  today: string,
): Promise<string[]> {
  const notes: string[] = [];
  const base = {
    participant_id: c.participantId,
    episode_id: c.episodeId,
    appointment_id: c.appointmentId,
    kind: c.kind,
  };
  const rows = [];
  if (c.dateOfDeath) {
    notes.push(`No letter to her: she died on ${formatLongDate(c.dateOfDeath)}`);
  } else {
    const items = ((await currentItemsOf(tx, [c.participantId])).get(c.participantId) ?? []).map((i) => ({
      kind: i.kind,
      value: i.value,
      temporaryUntil: i.temporary_until,
    }));
    const letter = letterFormatFor(items, today);
    rows.push({
      ...base,
      recipient: 'participant' as const,
      channel: 'letter' as const,
      format: letter.format,
      language: letter.language,
    });
  }
  if (c.gpPracticeCode) {
    rows.push({ ...base, recipient: 'gp' as const, channel: 'mesh' as const, gp_practice_code: c.gpPracticeCode });
  } else {
    notes.push('No GP message: she has no registered GP practice');
  }
  for (const row of rows) {
    if (c.appointmentId === null) {
      // No unique index covers these: add none beside one still waiting (recordOutcome first fails those of an
      // outcome it corrects, so a correction always gets its own pair).
      const waiting = await tx
        .selectFrom('communication')
        .select('id')
        .where('episode_id', '=', c.episodeId)
        .where('appointment_id', 'is', null)
        .where('recipient', '=', row.recipient)
        .where('kind', '=', c.kind)
        .where('status', '=', 'queued')
        .executeTakeFirst();
      if (waiting) continue;
      await tx.insertInto('communication').values(row).execute();
    } else {
      await tx
        .insertInto('communication')
        .values(row)
        .onConflict((oc) =>
          oc.columns(['appointment_id', 'recipient', 'kind']).where('appointment_id', 'is not', null).doNothing(),
        )
        .execute();
    }
  }
  return notes;
}

export interface BatchOutcome {
  issued: IssuedResult[];
  already: IssuedResult[];
  refused: { appointmentId: string; message: string }[];
}

/** Issues each of these results in its own transaction: one refused does not hold up the rest. */
export async function issueResults(
  db: Db,
  request: { appointmentIds: readonly string[]; policy: ArbitrationPolicy },
  actor: Actor,
  today: string,
): Promise<BatchOutcome> {
  const outcome: BatchOutcome = { issued: [], already: [], refused: [] };
  for (const appointmentId of new Set(request.appointmentIds)) {
    try {
      const issued = await issueResult(db, { appointmentId, policy: request.policy }, actor, today);
      (issued.alreadyIssued ? outcome.already : outcome.issued).push(issued);
    } catch (error) {
      if (error instanceof RuleError || error instanceof NotFoundError)
        outcome.refused.push({ appointmentId, message: error.message });
      else throw error;
    }
  }
  return outcome;
}

export type RecentResult = Awaited<ReturnType<typeof recentResults>>[number];

/**
 * The latest results issued, newest first, with what was booked or why nothing could be. Not audited itself:
 * resultsToIssue returns (and audits) these for the results page.
 */
export async function recentResults(db: Db, limit = 25) {
  const rows = await db
    .selectFrom('exam_result as r')
    .innerJoin('appointment as a', 'a.id', 'r.appointment_id')
    .innerJoin('clinic as c', 'c.id', 'a.clinic_id')
    .innerJoin('participant as p', 'p.id', 'a.participant_id')
    .leftJoin('app_user as u', 'u.id', 'r.issued_by')
    .leftJoin('appointment as f', 'f.id', 'r.follow_up_appointment_id')
    .leftJoin('clinic as fc', 'fc.id', 'f.clinic_id')
    .leftJoin('site as fs', 'fs.id', 'fc.site_id')
    .select([
      'r.appointment_id',
      'r.episode_id',
      'r.result',
      'r.next_test_due',
      'r.follow_up_appointment_id',
      'r.follow_up_problem',
      'r.issued_at',
      'u.display_name as issued_by_name',
      'c.clinic_date as screened_on',
      'p.id as participant_id',
      'p.nhs_number',
      'p.given_name',
      'p.family_name',
      'fc.clinic_date as follow_up_date',
      'fc.starts_at as follow_up_starts_at',
      'fc.slot_minutes as follow_up_slot_minutes',
      'f.slot_index as follow_up_slot_index',
      'fs.name as follow_up_site',
    ])
    .orderBy('r.issued_at', 'desc')
    .orderBy('r.appointment_id')
    .limit(limit)
    .execute();
  return rows.map((r) => ({
    ...r,
    follow_up_time:
      r.follow_up_starts_at && r.follow_up_slot_minutes !== null && r.follow_up_slot_index !== null
        ? slotTime({ startsAt: r.follow_up_starts_at, slotMinutes: r.follow_up_slot_minutes }, r.follow_up_slot_index)
        : null,
  }));
}
