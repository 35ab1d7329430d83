/**
 * Reading in the store (issue 6, item 1): the reading worklist, what one reader may see of an exam, opinions (read 1
 * and 2 blind, read 3 arbitration), deferrals, and a reader's own figures. Blindness is enforced here, not in the
 * page: readingSummary returns only the reads src/pathway/reading.ts visibleReads allows, and recordOpinion assigns
 * the read number itself under a lock on the appointment row, so two readers submitting at once never share one.
 *
 * An exam is an appointment screened or partially screened whose images reached the PACS and has no result yet.
 */
import { sql } from 'kysely';
import type { IsoDate } from '../pathway/dates.js';
import {
  arbitrationPairs,
  DEFERRAL_REASON_MAX,
  nextRead,
  opinionProblems,
  READ_REFUSALS,
  READER_QA_ANNUAL_READS,
  rate,
  readingOutcome,
  statisticsPeriods,
  visibleReads,
  type ArbitrationPolicy,
  type EpisodeType,
  type OpinionInput,
  type ReadingStage,
  type ReadSummary,
} from '../pathway/reading.js';
import type { Opinion, OpinionDetails, PriorImages, ReadNumber } from '../pathway/screening-outcomes.js';
import { recordAudit, type Actor } from './audit.js';
import type { Db } from './database.js';
import { isUniqueViolation, NotFoundError, RuleError, RulesRefusedError } from './errors.js';

/** Appointment statuses whose images are read. */
const READ_STATUSES = ['screened', 'partially_screened'] as const;

/** The stages an exam waits in, on a reader's list. */
export type WaitingStage = Exclude<ReadingStage, 'decided'>;

export interface WorklistExam {
  appointmentId: string;
  episodeId: string;
  participantId: string;
  nhsNumber: string;
  givenName: string;
  familyName: string;
  dateOfBirth: string;
  episodeType: EpisodeType;
  /** The day she was screened (the clinic's date). */
  screenedOn: IsoDate;
  siteName: string;
  priorImages: PriorImages | null;
  accessionNumber: string;
  studyInstanceUid: string | null;
  imagesAvailableAt: Date;
  stage: WaitingStage;
}

export interface DeferredExam {
  appointmentId: string;
  nhsNumber: string;
  givenName: string;
  familyName: string;
  screenedOn: IsoDate;
  reason: string;
  deferredAt: Date;
}

export interface ReadingWorklist {
  /** The next exams this reader may read, oldest screened first (as many as the batch asked for). */
  exams: WorklistExam[];
  /** Exams waiting for this reader, by stage. */
  waiting: { total: number; firstRead: number; secondRead: number; arbitration: number };
  /** Exams this reader set aside, still unread and without a result. */
  deferred: DeferredExam[];
}

export interface WorklistOptions {
  policy?: ArbitrationPolicy;
  /** How many exams to list (a reading session's batch); null or absent for all. */
  limit?: number | null;
}

/**
 * Every exam that waits for a read (no result, reading not decided under the policy), with the stage it waits in
 * and who read it so far. The stage is the pure readingOutcome's, with the arbitration pairs from the same module.
 */
function waitingExams(db: Db, policy: ArbitrationPolicy) {
  const pairs = arbitrationPairs(policy).map(([a, b]) => `${a}|${b}`);
  const needsArbiter = pairs.length > 0 ? sql`(r1.opinion || '|' || r2.opinion) in (${sql.join(pairs)})` : sql`false`;
  const stage = sql<ReadingStage>`case when r1.id is null then 'first_read' when r2.id is null then 'second_read'
    when r3.id is null and ${needsArbiter} then 'arbitration' else 'decided' end`;
  return db
    .selectFrom('appointment as a')
    .innerJoin('clinic as c', 'c.id', 'a.clinic_id')
    .innerJoin('site as s', 's.id', 'c.site_id')
    .innerJoin('episode as e', 'e.id', 'a.episode_id')
    .innerJoin('participant as p', 'p.id', 'a.participant_id')
    .leftJoin('reading_opinion as r1', (j) => j.onRef('r1.appointment_id', '=', 'a.id').on('r1.read_number', '=', 1))
    .leftJoin('reading_opinion as r2', (j) => j.onRef('r2.appointment_id', '=', 'a.id').on('r2.read_number', '=', 2))
    .leftJoin('reading_opinion as r3', (j) => j.onRef('r3.appointment_id', '=', 'a.id').on('r3.read_number', '=', 3))
    .select([
      'a.id as appointment_id',
      'a.episode_id',
      'a.participant_id',
      'a.accession_number',
      'a.study_instance_uid',
      'a.images_available_at',
      'c.clinic_date as screened_on',
      's.name as site_name',
      'e.episode_type',
      'e.prior_images',
      'p.nhs_number',
      'p.given_name',
      'p.family_name',
      'p.date_of_birth',
      'r1.reader_id as reader1',
      'r2.reader_id as reader2',
      'r3.reader_id as reader3',
      stage.as('stage'),
    ])
    .where('a.status', 'in', READ_STATUSES)
    .where('c.purpose', '=', 'screening')
    .where('a.images_available_at', 'is not', null)
    .where((eb) =>
      eb.not(
        eb.exists(
          eb
            .selectFrom('exam_result as x')
            .select(sql`1`.as('one'))
            .whereRef('x.appointment_id', '=', 'a.id'),
        ),
      ),
    );
}

/** The exams waiting for this reader: not read by them, not set aside by them. */
function waitingFor(db: Db, readerId: string, policy: ArbitrationPolicy) {
  return db
    .selectFrom(waitingExams(db, policy).as('w'))
    .selectAll('w')
    .where('w.stage', '<>', 'decided')
    .where(sql<boolean>`array_position(array[w.reader1, w.reader2, w.reader3], ${readerId}::uuid) is null`)
    .where((eb) =>
      eb.not(
        eb.exists(
          eb
            .selectFrom('reading_deferral as d')
            .select(sql`1`.as('one'))
            .whereRef('d.appointment_id', '=', 'w.appointment_id')
            .where('d.reader_id', '=', readerId)
            .where('d.resolved_at', 'is', null),
        ),
      ),
    );
}

/**
 * The reading worklist of one reader: the oldest screened exams first (by the day she was screened, whichever clinic
 * or unit), what waits for them in total and at each stage, and the exams they deferred.
 */
export async function readingWorklist(
  db: Db,
  readerId: string,
  options: WorklistOptions = {},
): Promise<ReadingWorklist> {
  const policy = options.policy ?? 'discordant';
  let listed = waitingFor(db, readerId, policy)
    .orderBy('w.screened_on')
    .orderBy('w.images_available_at')
    .orderBy('w.appointment_id');
  if (options.limit != null) listed = listed.limit(options.limit);
  const [rows, counts, deferred] = await Promise.all([
    listed.execute(),
    db
      .selectFrom(waitingFor(db, readerId, policy).as('v'))
      .select(['v.stage', sql<number>`count(*)::int`.as('n')])
      .groupBy('v.stage')
      .execute(),
    db
      .selectFrom('reading_deferral as d')
      .innerJoin('appointment as a', 'a.id', 'd.appointment_id')
      .innerJoin('clinic as c', 'c.id', 'a.clinic_id')
      .innerJoin('participant as p', 'p.id', 'a.participant_id')
      .select([
        'd.appointment_id',
        'd.reason',
        'd.deferred_at',
        'c.clinic_date',
        'p.nhs_number',
        'p.given_name',
        'p.family_name',
      ])
      .where('d.reader_id', '=', readerId)
      .where('d.resolved_at', 'is', null)
      .where((eb) =>
        eb.not(
          eb.exists(
            eb
              .selectFrom('exam_result as x')
              .select(sql`1`.as('one'))
              .whereRef('x.appointment_id', '=', 'd.appointment_id'),
          ),
        ),
      )
      .orderBy('c.clinic_date')
      .orderBy('d.deferred_at')
      .execute(),
  ]);
  const count = (stage: WaitingStage) => counts.find((c) => c.stage === stage)?.n ?? 0;
  const waiting = {
    firstRead: count('first_read'),
    secondRead: count('second_read'),
    arbitration: count('arbitration'),
  };
  return {
    exams: rows.map((r) => ({
      appointmentId: r.appointment_id,
      episodeId: r.episode_id!,
      participantId: r.participant_id,
      nhsNumber: r.nhs_number,
      givenName: r.given_name,
      familyName: r.family_name,
      dateOfBirth: r.date_of_birth,
      episodeType: r.episode_type,
      screenedOn: r.screened_on,
      siteName: r.site_name,
      priorImages: r.prior_images,
      accessionNumber: r.accession_number,
      studyInstanceUid: r.study_instance_uid,
      imagesAvailableAt: r.images_available_at!,
      stage: r.stage as WaitingStage,
    })),
    waiting: { total: waiting.firstRead + waiting.secondRead + waiting.arbitration, ...waiting },
    deferred: deferred.map((d) => ({
      appointmentId: d.appointment_id,
      nhsNumber: d.nhs_number,
      givenName: d.given_name,
      familyName: d.family_name,
      screenedOn: d.clinic_date,
      reason: d.reason,
      deferredAt: d.deferred_at,
    })),
  };
}

/** The next exam on this reader's list, oldest screened first (a reading session moves through these). */
export async function nextExamFor(db: Db, readerId: string, policy: ArbitrationPolicy = 'discordant') {
  const row = await waitingFor(db, readerId, policy)
    .orderBy('w.screened_on')
    .orderBy('w.images_available_at')
    .orderBy('w.appointment_id')
    .limit(1)
    .executeTakeFirst();
  return row?.appointment_id;
}

/** One opinion as a reader may see it. */
export interface OpinionView {
  readNumber: ReadNumber;
  readerId: string;
  readerName: string;
  opinion: Opinion;
  details: OpinionDetails;
  comment: string;
  readAt: Date;
}

/** One exam as one reader may see it: the exam, her context, and only the reads blind reading lets them see. */
export interface ReadingSummary {
  appointmentId: string;
  episodeId: string;
  participant: { id: string; nhsNumber: string; givenName: string; familyName: string; dateOfBirth: string };
  episodeType: EpisodeType;
  screenedOn: IsoDate;
  siteName: string;
  priorImages: PriorImages | null;
  accessionNumber: string;
  studyInstanceUid: string | null;
  imagesAvailableAt: Date | null;
  /** Her current clinical history (implants, previous cancer, surgery...) from her record. */
  clinicalHistory: { kind: string; side: string | null; value: string | null }[];
  /** Why nobody can read it (no images yet, result issued), or null. */
  notReadable: string | null;
  /** What the exam waits for next under the policy. */
  stage: ReadingStage;
  /** The read this reader would record, or why they cannot. */
  next: { readNumber: ReadNumber } | { refused: string };
  /** The reads this reader may see (their own; both blind reads when they arbitrate). */
  reads: OpinionView[];
  /** Their own open deferral of this exam. */
  deferral: { reason: string; deferredAt: Date } | null;
}

/** The exam's reads, as the rules in src/pathway/reading.ts take them. */
async function readsOf(db: Db, appointmentId: string): Promise<ReadSummary[]> {
  const rows = await db
    .selectFrom('reading_opinion')
    .select(['read_number', 'reader_id', 'opinion'])
    .where('appointment_id', '=', appointmentId)
    .orderBy('read_number')
    .execute();
  return rows.map((r) => ({ readNumber: r.read_number, readerId: r.reader_id, opinion: r.opinion }));
}

/**
 * What one reader may see of an exam: its context and the reads blind reading allows them (src/pathway/reading.ts
 * visibleReads). Undefined when there is no such appointment. Read 1 never learns read 2's opinion here, nor read 2
 * read 1's; the arbiter sees both.
 */
export async function readingSummary(
  db: Db,
  appointmentId: string,
  readerId: string,
  policy: ArbitrationPolicy = 'discordant',
): Promise<ReadingSummary | undefined> {
  const exam = await db
    .selectFrom('appointment as a')
    .innerJoin('clinic as c', 'c.id', 'a.clinic_id')
    .innerJoin('site as s', 's.id', 'c.site_id')
    .innerJoin('episode as e', 'e.id', 'a.episode_id')
    .innerJoin('participant as p', 'p.id', 'a.participant_id')
    .leftJoin('exam_result as x', 'x.appointment_id', 'a.id')
    .select([
      'a.id',
      'a.status',
      'a.episode_id',
      'a.accession_number',
      'a.study_instance_uid',
      'a.images_available_at',
      'c.clinic_date',
      's.name as site_name',
      'e.episode_type',
      'e.prior_images',
      'p.id as participant_id',
      'p.nhs_number',
      'p.given_name',
      'p.family_name',
      'p.date_of_birth',
      'x.appointment_id as result_for',
    ])
    .where('a.id', '=', appointmentId)
    .executeTakeFirst();
  if (!exam) return undefined;
  const [reads, history, deferral] = await Promise.all([
    readsOf(db, appointmentId),
    db
      .selectFrom('record_item')
      .select(['kind', 'side', 'value'])
      .where('participant_id', '=', exam.participant_id)
      .where('category', '=', 'clinical')
      .where('superseded_at', 'is', null)
      .where('removed_at', 'is', null)
      .orderBy('source_date', 'desc')
      .execute(),
    db
      .selectFrom('reading_deferral')
      .select(['reason', 'deferred_at'])
      .where('appointment_id', '=', appointmentId)
      .where('reader_id', '=', readerId)
      .where('resolved_at', 'is', null)
      .orderBy('deferred_at', 'desc')
      .executeTakeFirst(),
  ]);
  const visible = visibleReads(reads, readerId, policy);
  const details = visible.length
    ? await db
        .selectFrom('reading_opinion as r')
        .innerJoin('app_user as u', 'u.id', 'r.reader_id')
        .select(['r.read_number', 'r.reader_id', 'u.display_name', 'r.opinion', 'r.details', 'r.comment', 'r.read_at'])
        .where('r.appointment_id', '=', appointmentId)
        .where(
          'r.read_number',
          'in',
          visible.map((v) => v.readNumber),
        )
        .orderBy('r.read_number')
        .execute()
    : [];
  const notReadable = examNotReadable(exam);
  const next = nextRead(reads, readerId, policy);
  return {
    appointmentId: exam.id,
    episodeId: exam.episode_id!,
    participant: {
      id: exam.participant_id,
      nhsNumber: exam.nhs_number,
      givenName: exam.given_name,
      familyName: exam.family_name,
      dateOfBirth: exam.date_of_birth,
    },
    episodeType: exam.episode_type,
    screenedOn: exam.clinic_date,
    siteName: exam.site_name,
    priorImages: exam.prior_images,
    accessionNumber: exam.accession_number,
    studyInstanceUid: exam.study_instance_uid,
    imagesAvailableAt: exam.images_available_at,
    clinicalHistory: history,
    notReadable,
    stage: readingOutcome(reads, policy).stage,
    next: notReadable ? { refused: notReadable } : 'refused' in next ? { refused: READ_REFUSALS[next.refused] } : next,
    reads: details.map((d) => ({
      readNumber: d.read_number,
      readerId: d.reader_id,
      readerName: d.display_name,
      opinion: d.opinion,
      details: d.details,
      comment: d.comment,
      readAt: d.read_at,
    })),
    deferral: deferral ? { reason: deferral.reason, deferredAt: deferral.deferred_at } : null,
  };
}

/** Why an appointment cannot be read now, or null. */
function examNotReadable(a: {
  status: string;
  images_available_at: Date | null;
  result_for: string | null;
}): string | null {
  if (!(READ_STATUSES as readonly string[]).includes(a.status)) return 'This appointment was not screened';
  if (!a.images_available_at) return 'Her images have not reached the PACS yet';
  if (a.result_for) return 'The result of this exam has been issued: no more reads can be recorded';
  return null;
}

/** The exam locked for a change by one reader (FOR UPDATE on its appointment row), with whether it has a result. */
async function lockedExam(tx: Db, appointmentId: string) {
  const exam = await tx
    .selectFrom('appointment')
    .select(['id', 'status', 'episode_id', 'participant_id', 'images_available_at'])
    .where('id', '=', appointmentId)
    .forUpdate()
    .executeTakeFirst();
  if (!exam || !exam.episode_id) throw new NotFoundError('There is no such exam');
  const result = await tx
    .selectFrom('exam_result')
    .select('appointment_id')
    .where('appointment_id', '=', appointmentId)
    .executeTakeFirst();
  const problem = examNotReadable({ ...exam, result_for: result?.appointment_id ?? null });
  if (problem) throw new RuleError('form', problem);
  return { ...exam, episode_id: exam.episode_id };
}

function readerOf(actor: Actor): string {
  if (!actor.userId) throw new RuleError('form', 'Only a signed-in film reader can read an exam');
  return actor.userId;
}

/**
 * Records the actor's opinion on an exam and returns its read number: 1 or 2 (blind double reading) or 3
 * (arbitration, only when the two reads need it under the policy, and never by either reader). The number is
 * decided here, with the appointment row locked, so concurrent readers queue and take 1 and 2 in turn; the unique
 * (appointment, reader) and (appointment, read number) constraints stand behind the lock. Closes the reader's open
 * deferral of the exam. Audited with the opinion. `expectedReadNumber` is the read the reader's page showed: a blind
 * read (1 or 2) submitted after two others came in is refused rather than taken as the arbitration.
 */
export async function recordOpinion(
  db: Db,
  input: { appointmentId: string; expectedReadNumber?: ReadNumber } & OpinionInput,
  actor: Actor,
  policy: ArbitrationPolicy = 'discordant',
): Promise<ReadNumber> {
  const readerId = readerOf(actor);
  const problems = opinionProblems(input.opinion, input.details, input.comment);
  if (problems.length > 0) throw new RulesRefusedError(problems.map((p) => p.message));
  try {
    return await db.transaction().execute(async (tx) => {
      const exam = await lockedExam(tx, input.appointmentId);
      const next = nextRead(await readsOf(tx, exam.id), readerId, policy);
      if ('refused' in next) throw new RuleError('form', READ_REFUSALS[next.refused]);
      // A blind read never becomes the arbitration: an arbiter must have seen both reads (the page said which read
      // it showed). Read 1 becoming read 2 is harmless: both are blind.
      if (input.expectedReadNumber && (input.expectedReadNumber === 3) !== (next.readNumber === 3))
        throw new RuleError(
          'form',
          'Two readers read this exam while you had it open, so it now needs arbitration. Open it again to see both reads',
        );
      const { id } = await tx
        .insertInto('reading_opinion')
        .values({
          appointment_id: exam.id,
          episode_id: exam.episode_id,
          read_number: next.readNumber,
          reader_id: readerId,
          opinion: input.opinion,
          details: JSON.stringify(input.details),
          comment: input.comment,
        })
        .returning('id')
        .executeTakeFirstOrThrow();
      const resolved = await tx
        .updateTable('reading_deferral')
        .set({ resolved_at: new Date() })
        .where('appointment_id', '=', exam.id)
        .where('reader_id', '=', readerId)
        .where('resolved_at', 'is', null)
        .executeTakeFirst();
      await recordAudit(tx, actor, {
        action: 'reading.opinion',
        entityType: 'appointment',
        entityId: exam.id,
        participantId: exam.participant_id,
        detail: {
          opinionId: id,
          readNumber: next.readNumber,
          opinion: input.opinion,
          details: input.details,
          deferralResolved: Number(resolved.numUpdatedRows) > 0,
        },
      });
      return next.readNumber;
    });
  } catch (error) {
    // The lock makes this unreachable in one database; the constraints are the last word if it ever is not.
    if (isUniqueViolation(error))
      throw new RuleError('form', 'Another read of this exam was recorded at the same moment: open it again');
    throw error;
  }
}

/**
 * A reader sets an exam aside with a reason (waiting for prior images, a colleague's view): it leaves their list
 * until they put it back, and stays on everyone else's.
 */
export async function deferExam(
  db: Db,
  input: { appointmentId: string; reason: string },
  actor: Actor,
  policy: ArbitrationPolicy = 'discordant',
): Promise<void> {
  const readerId = readerOf(actor);
  const reason = input.reason.trim();
  if (!reason) throw new RuleError('deferReason', 'Enter why you are deferring this exam');
  if (reason.length > DEFERRAL_REASON_MAX)
    throw new RuleError('deferReason', `The reason must be ${DEFERRAL_REASON_MAX} characters or fewer`);
  await db.transaction().execute(async (tx) => {
    const exam = await lockedExam(tx, input.appointmentId);
    const next = nextRead(await readsOf(tx, exam.id), readerId, policy);
    if ('refused' in next) throw new RuleError('form', READ_REFUSALS[next.refused]);
    const open = await tx
      .selectFrom('reading_deferral')
      .select('id')
      .where('appointment_id', '=', exam.id)
      .where('reader_id', '=', readerId)
      .where('resolved_at', 'is', null)
      .executeTakeFirst();
    if (open) throw new RuleError('form', 'You have already deferred this exam');
    const { id } = await tx
      .insertInto('reading_deferral')
      .values({ appointment_id: exam.id, reader_id: readerId, reason })
      .returning('id')
      .executeTakeFirstOrThrow();
    await recordAudit(tx, actor, {
      action: 'reading.defer',
      entityType: 'appointment',
      entityId: exam.id,
      participantId: exam.participant_id,
      detail: { deferralId: id, reason },
    });
  });
}

/** Puts an exam the reader deferred back on their list. Returns false when they had no open deferral of it. */
export async function resumeExam(db: Db, appointmentId: string, actor: Actor): Promise<boolean> {
  const readerId = readerOf(actor);
  return db.transaction().execute(async (tx) => {
    const resolved = await tx
      .updateTable('reading_deferral')
      .set({ resolved_at: new Date() })
      .where('appointment_id', '=', appointmentId)
      .where('reader_id', '=', readerId)
      .where('resolved_at', 'is', null)
      .returning('id')
      .execute();
    if (resolved.length === 0) return false;
    const appointment = await tx
      .selectFrom('appointment')
      .select('participant_id')
      .where('id', '=', appointmentId)
      .executeTakeFirst();
    await recordAudit(tx, actor, {
      action: 'reading.resume',
      entityType: 'appointment',
      entityId: appointmentId,
      participantId: appointment?.participant_id ?? null,
      detail: { deferralIds: resolved.map((r) => r.id) },
    });
    return true;
  });
}

/** The reads of each exam (every id asked for has an entry, empty when unread): results and failsafes use this. */
export async function examReads(db: Db, appointmentIds: readonly string[]): Promise<Map<string, ReadSummary[]>> {
  const reads = new Map<string, ReadSummary[]>(appointmentIds.map((id) => [id, []]));
  if (appointmentIds.length === 0) return reads;
  const rows = await db
    .selectFrom('reading_opinion')
    .select(['appointment_id', 'read_number', 'reader_id', 'opinion'])
    .where('appointment_id', '=', sql<string>`any(${[...new Set(appointmentIds)]}::uuid[])`)
    .orderBy('appointment_id')
    .orderBy('read_number')
    .execute();
  for (const r of rows)
    reads.get(r.appointment_id)?.push({ readNumber: r.read_number, readerId: r.reader_id, opinion: r.opinion });
  return reads;
}

export interface ReaderPeriod {
  from: IsoDate;
  to: IsoDate;
  reads: number;
  firstReads: number;
  secondReads: number;
  arbitrations: number;
  recalls: number;
  technicalRecalls: number;
  /** Recalls for assessment ÷ reads; null with no reads. */
  recallRate: number | null;
  technicalRecallRate: number | null;
}

export interface ReaderStatistics {
  thisYear: ReaderPeriod;
  last12Months: ReaderPeriod;
  /** In the last 12 months: exams this reader read first or second that went to arbitration, and how many the
   * arbiter's opinion matched theirs. */
  arbitration: { arbitrated: number; agreed: number; agreementRate: number | null };
  /** The NHSBSP quality assurance figure: cases a reader reads a year. */
  qaAnnualReads: number;
}

/** A reader's own volumes and rates, this calendar year and in the 12 months to today (days in England). */
export async function readerStatistics(db: Db, readerId: string, today: IsoDate): Promise<ReaderStatistics> {
  const { yearFrom, twelveMonthsFrom } = statisticsPeriods(today);
  const from = yearFrom < twelveMonthsFrom ? yearFrom : twelveMonthsFrom;
  const day = sql`(r.read_at at time zone 'Europe/London')::date`;
  const period = (start: IsoDate, prefix: string) => {
    const inPeriod = sql`${day} >= ${start}::date`;
    const counted = (name: string, condition = sql`true`) =>
      sql<number>`count(*) filter (where ${inPeriod} and ${condition})::int`.as(`${prefix}_${name}`);
    return [
      counted('reads'),
      counted('first', sql`r.read_number = 1`),
      counted('second', sql`r.read_number = 2`),
      counted('arbitration', sql`r.read_number = 3`),
      counted('recalls', sql`r.opinion = 'recall_assessment'`),
      counted('technical', sql`r.opinion = 'technical_recall'`),
    ];
  };
  const [row, agreement] = await Promise.all([
    db
      .selectFrom('reading_opinion as r')
      .select([...period(yearFrom, 'y'), ...period(twelveMonthsFrom, 't')])
      .where('r.reader_id', '=', readerId)
      .where(sql<boolean>`${day} between ${from}::date and ${today}::date`)
      .executeTakeFirstOrThrow(),
    db
      .selectFrom('reading_opinion as r')
      .innerJoin('reading_opinion as a', (j) =>
        j.onRef('a.appointment_id', '=', 'r.appointment_id').on('a.read_number', '=', 3),
      )
      .select([
        sql<number>`count(*)::int`.as('arbitrated'),
        sql<number>`count(*) filter (where a.opinion = r.opinion)::int`.as('agreed'),
      ])
      .where('r.reader_id', '=', readerId)
      .where('r.read_number', 'in', [1, 2])
      .where(sql<boolean>`${day} between ${twelveMonthsFrom}::date and ${today}::date`)
      .executeTakeFirstOrThrow(),
  ]);
  const counts = row as unknown as Record<string, number>;
  const figures = (prefix: string, start: IsoDate): ReaderPeriod => {
    const n = (name: string) => counts[`${prefix}_${name}`] ?? 0;
    return {
      from: start,
      to: today,
      reads: n('reads'),
      firstReads: n('first'),
      secondReads: n('second'),
      arbitrations: n('arbitration'),
      recalls: n('recalls'),
      technicalRecalls: n('technical'),
      recallRate: rate(n('recalls'), n('reads')),
      technicalRecallRate: rate(n('technical'), n('reads')),
    };
  };
  return {
    thisYear: figures('y', yearFrom),
    last12Months: figures('t', twelveMonthsFrom),
    arbitration: { ...agreement, agreementRate: rate(agreement.agreed, agreement.arbitrated) },
    qaAnnualReads: READER_QA_ANNUAL_READS,
  };
}
