import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildHub } from '../../src/hub/app.js';
import type { FailsafeCheckId } from '../../src/pathway/failsafes.js';
import type { ArbitrationPolicy } from '../../src/pathway/reading.js';
import type { CommunicationStatus, ExamResult, Opinion } from '../../src/pathway/screening-outcomes.js';
import type { Db } from '../../src/store/database.js';
import {
  failsafeReport,
  failsafeTally,
  lastFailsafeRun,
  loadFailsafeThresholds,
  recentFailsafeRuns,
  runDailyFailsafes,
  runFailsafes,
  SHIPPED_THRESHOLDS_FILE,
} from '../../src/store/failsafes.js';
import type { StaffUser } from '../../src/store/accounts.js';
import { BACKENDS, freshDatabase } from '../support/database.js';
import { moreReaders, screenedExam, type ScreenedExam } from '../support/exams.js';
import { addParticipant, smallOffice, TODAY, type Office } from '../support/fixtures.js';
import { PageClient, testHub } from '../support/hub-client.js';

const { thresholds } = loadFailsafeThresholds({});

describe.each(BACKENDS)('failsafes on %s', (backend) => {
  let database: Awaited<ReturnType<typeof freshDatabase>>;
  let office: Office;
  let readers: StaffUser[];
  const db = (): Db => database.db;

  beforeAll(async () => {
    database = await freshDatabase(backend);
    office = await smallOffice(database.db);
    readers = [office.users.reader, ...(await moreReaders(database.db))];
    // A second office, with a site and a practice, for the office filter and moves.
    await db().insertInto('screening_office').values({ code: 'NTH', name: 'North Test Office' }).execute();
    await db()
      .insertInto('gp_practice')
      .values({ ods_code: 'Y00009', name: 'Moorside Surgery', postcode: 'YO1 7HH', bso_code: 'NTH' })
      .execute();
    await db()
      .insertInto('site')
      .values({ id: 'north-static', bso_code: 'NTH', name: 'North Breast Unit', kind: 'static', ae_title: null })
      .execute();
    await db()
      .insertInto('location')
      .values({
        id: 'north',
        bso_code: 'NTH',
        name: 'North Breast Unit',
        address: '1 North Road',
        postcode: 'YO1 1AA',
        wheelchair_accessible: true,
        static_site_id: 'north-static',
      })
      .execute();
  });
  afterAll(async () => {
    await database.drop();
  });

  /** Everyone on one check for an office today. */
  async function listed(check: FailsafeCheckId, options: { office?: string; policy?: ArbitrationPolicy } = {}) {
    const [report] = await failsafeReport(db(), options.office ?? 'TST', TODAY, {
      checks: [check],
      thresholds,
      policy: options.policy,
    });
    return report!.items;
  }
  const itemOf = async (check: FailsafeCheckId, participantId: string, options = {}) =>
    (await listed(check, options)).filter((i) => i.participantId === participantId);

  const read = (exam: ScreenedExam, n: 1 | 2 | 3, opinion: Opinion, at: string) =>
    db()
      .insertInto('reading_opinion')
      .values({
        appointment_id: exam.appointmentId,
        episode_id: exam.episodeId,
        read_number: n,
        reader_id: readers[n - 1]!.id,
        opinion,
        details: '{}',
        read_at: at,
      })
      .execute();
  const result = (exam: ScreenedExam, value: ExamResult, more: { follow_up_problem?: string } = {}) =>
    db()
      .insertInto('exam_result')
      .values({
        appointment_id: exam.appointmentId,
        episode_id: exam.episodeId,
        result: value,
        next_test_due: value === 'routine_recall' ? '2029-11-16' : null,
        issued_at: '2026-11-19T12:00:00Z',
        issued_by: office.users.admin.id,
        ...more,
      })
      .execute();
  const communication = (
    exam: ScreenedExam,
    recipient: 'participant' | 'gp',
    status: CommunicationStatus,
    more: { sent_at?: string; kind?: 'result_normal' | 'result_assessment'; last_error?: string } = {},
  ) =>
    db()
      .insertInto('communication')
      .values({
        participant_id: exam.participantId,
        episode_id: exam.episodeId,
        appointment_id: exam.appointmentId,
        recipient,
        kind: more.kind ?? 'result_normal',
        channel: recipient === 'gp' ? 'mesh' : 'letter',
        gp_practice_code: recipient === 'gp' ? 'Y00001' : null,
        status,
        sent_at: more.sent_at ?? null,
        last_error: more.last_error ?? null,
      })
      .returning('id')
      .executeTakeFirstOrThrow()
      .then((r) => r.id);
  const setCommunication = (id: string, status: CommunicationStatus, at = '2026-11-20T09:00:00Z') =>
    db()
      .updateTable('communication')
      .set({
        status,
        ...(status === 'sent' ? { sent_at: at } : {}),
        ...(status === 'acknowledged' ? { acknowledged_at: at } : {}),
      })
      .where('id', '=', id)
      .execute();

  let clinicMinute = 0;
  /** A clinic of its own (a start time no other test uses), for assessment or screening. */
  async function clinic(on: string, purpose: 'screening' | 'assessment', site = 'static-1', location = 'central') {
    const m = 21 * 60 + clinicMinute++;
    return db()
      .insertInto('clinic')
      .values({
        site_id: site,
        location_id: location,
        clinic_date: on,
        starts_at: `${String(Math.floor(m / 60)).padStart(2, '0')}:${String(m % 60).padStart(2, '0')}`,
        ends_at: '23:59',
        slot_minutes: 10,
        purpose,
      })
      .returning('id')
      .executeTakeFirstOrThrow()
      .then((r) => r.id);
  }
  async function appointment(
    clinicId: string,
    participantId: string,
    episodeId: string | null,
    status: 'scheduled' | 'checked_in' | 'cancelled' | 'did_not_attend' | 'screened',
  ) {
    return db()
      .insertInto('appointment')
      .values({
        clinic_id: clinicId,
        participant_id: participantId,
        episode_id: episodeId,
        slot_index: 0,
        slot_count: 1,
        status,
        accession_number: `FS${randomUUID().slice(0, 8).toUpperCase()}`,
      })
      .returning('id')
      .executeTakeFirstOrThrow()
      .then((r) => r.id);
  }
  const setStatus = (appointmentId: string, status: 'cancelled' | 'did_not_attend' | 'screened') =>
    db().updateTable('appointment').set({ status }).where('id', '=', appointmentId).execute();

  it('1: screened with no images at the hub fires, with the site as owner, and clears when they arrive', async () => {
    const exam = await screenedExam(db(), { on: '2026-11-19', imagesAvailable: false });
    const [item] = await itemOf('screened_no_images', exam.participantId);
    expect(item).toMatchObject({
      nhsNumber: exam.nhsNumber,
      since: '2026-11-19',
      ageDays: 4,
      status: 'overdue',
      owner: 'Central Breast Unit',
      action: { href: `/appointments/${exam.appointmentId}` },
    });
    expect(item!.detail).toContain('no images at the hub');
    // Yesterday's clinic is due soon (2 days allowed, amber from 1), today's is within time.
    const yesterday = await screenedExam(db(), { on: '2026-11-22', imagesAvailable: false });
    expect((await itemOf('screened_no_images', yesterday.participantId))[0]).toMatchObject({
      ageDays: 1,
      status: 'due_soon',
    });

    await db()
      .updateTable('appointment')
      .set({ images_available_at: '2026-11-23T08:00:00Z', study_instance_uid: exam.studyInstanceUid })
      .where('id', '=', exam.appointmentId)
      .execute();
    expect(await itemOf('screened_no_images', exam.participantId)).toEqual([]);
    // The next step's clock starts: images at the hub, not read.
    expect((await itemOf('images_not_read', exam.participantId))[0]).toMatchObject({ since: TODAY, ageDays: 0 });
  });

  it('2 and 3: not read twice until both reads (and arbitration) are in; then read but no result until it is issued', async () => {
    const exam = await screenedExam(db(), { on: '2026-11-16' });
    expect((await itemOf('images_not_read', exam.participantId))[0]).toMatchObject({
      since: '2026-11-16',
      ageDays: 7,
      status: 'due_soon',
      owner: 'The reading team',
      detail: 'Waiting for the first read',
      action: { href: '/reading' },
    });
    await read(exam, 1, 'normal', '2026-11-17T10:00:00Z');
    expect((await itemOf('images_not_read', exam.participantId))[0]!.detail).toBe(
      'Read once: waiting for the second read',
    );
    await read(exam, 2, 'recall_assessment', '2026-11-18T10:00:00Z');
    expect((await itemOf('images_not_read', exam.participantId))[0]!.detail).toBe('The two reads need arbitration');
    expect(await itemOf('read_no_result', exam.participantId)).toEqual([]);

    // A reader set it aside: the list says so.
    await db()
      .insertInto('reading_deferral')
      .values({ appointment_id: exam.appointmentId, reader_id: readers[2]!.id, reason: 'Waiting for priors' })
      .execute();
    expect((await itemOf('images_not_read', exam.participantId))[0]!.detail).toContain('set aside by a reader');

    await read(exam, 3, 'recall_assessment', '2026-11-21T15:00:00Z');
    expect(await itemOf('images_not_read', exam.participantId)).toEqual([]);
    // Decided by the arbiter on 21 November: 2 days allowed, so 2 days on is the last day.
    expect((await itemOf('read_no_result', exam.participantId))[0]).toMatchObject({
      since: '2026-11-21',
      ageDays: 2,
      status: 'due_soon',
      detail: 'Reading decided: Recall for assessment',
      action: { href: '/results' },
    });

    await result(exam, 'recall_assessment');
    expect(await itemOf('read_no_result', exam.participantId)).toEqual([]);
  });

  it('2: the arbitration policy decides whether two agreeing recalls are decided', async () => {
    const exam = await screenedExam(db(), { on: '2026-11-16' });
    await read(exam, 1, 'recall_assessment', '2026-11-17T10:00:00Z');
    await read(exam, 2, 'recall_assessment', '2026-11-18T10:00:00Z');
    // Discordant only: two recalls agree, so the reading is decided on the later read.
    expect(await itemOf('images_not_read', exam.participantId)).toEqual([]);
    expect((await itemOf('read_no_result', exam.participantId))[0]).toMatchObject({ since: '2026-11-18' });
    // Every recall arbitrated: still waiting.
    expect((await itemOf('images_not_read', exam.participantId, { policy: 'all_recalls' }))[0]!.detail).toBe(
      'The two reads need arbitration',
    );
    expect(await itemOf('read_no_result', exam.participantId, { policy: 'all_recalls' })).toEqual([]);
  });

  it('4: a result whose letter is not sent, or whose GP message is not acknowledged, fires each part until done', async () => {
    const exam = await screenedExam(db(), { on: '2026-11-05' });
    await read(exam, 1, 'normal', '2026-11-06T10:00:00Z');
    await read(exam, 2, 'normal', '2026-11-06T11:00:00Z');
    await result(exam, 'routine_recall');
    // No letter, no GP message yet: 18 days since screening is past the national 14.
    expect((await itemOf('result_letter_not_sent', exam.participantId))[0]).toMatchObject({
      since: '2026-11-05',
      ageDays: 18,
      status: 'overdue',
      owner: 'The screening office admin team',
      detail: 'No result letter has been made',
      action: { href: '/communications' },
    });
    expect((await itemOf('result_gp_not_acknowledged', exam.participantId))[0]).toMatchObject({
      since: '2026-11-19',
      detail: 'No message has been made for her GP practice (Y00001)',
    });

    const letter = await communication(exam, 'participant', 'queued');
    expect((await itemOf('result_letter_not_sent', exam.participantId))[0]!.detail).toBe(
      'Her letter is waiting to be sent',
    );
    await setCommunication(letter, 'failed');
    await db().updateTable('communication').set({ last_error: 'Printer offline' }).where('id', '=', letter).execute();
    expect((await itemOf('result_letter_not_sent', exam.participantId))[0]!.detail).toBe(
      'Her letter failed: Printer offline',
    );
    await setCommunication(letter, 'sent');
    expect(await itemOf('result_letter_not_sent', exam.participantId)).toEqual([]);
    // The letter part is done; the GP part still fires.
    expect(await itemOf('result_gp_not_acknowledged', exam.participantId)).toHaveLength(1);

    const message = await communication(exam, 'gp', 'queued');
    expect((await itemOf('result_gp_not_acknowledged', exam.participantId))[0]).toMatchObject({
      since: '2026-11-19',
      owner: 'The GP messaging and support team',
      detail: 'The message to Y00001 is waiting to be sent',
    });
    // Sent on the 22nd: the 48 hours run from sending.
    await setCommunication(message, 'sent', '2026-11-22T09:00:00Z');
    expect((await itemOf('result_gp_not_acknowledged', exam.participantId))[0]).toMatchObject({
      since: '2026-11-22',
      ageDays: 1,
      status: 'due_soon',
      detail: 'Sent to Y00001: not yet delivered or acknowledged',
    });
    await setCommunication(message, 'acknowledged');
    expect(await itemOf('result_gp_not_acknowledged', exam.participantId)).toEqual([]);
    expect(await itemOf('result_letter_not_sent', exam.participantId)).toEqual([]);
  });

  it('4: a woman with no GP practice needs no GP message, and one who has died no letter', async () => {
    const exam = await screenedExam(db(), { on: '2026-11-16' });
    await db()
      .updateTable('participant')
      .set({ gp_practice_code: null })
      .where('id', '=', exam.participantId)
      .execute();
    await result(exam, 'routine_recall');
    expect(await itemOf('result_letter_not_sent', exam.participantId)).toHaveLength(1);
    expect(await itemOf('result_gp_not_acknowledged', exam.participantId)).toEqual([]);
    // She died before her letter was made: no letter is due (her GP's message still is, when she has a GP).
    await db()
      .updateTable('participant')
      .set({ date_of_death: '2026-11-18', gp_practice_code: 'Y00002' })
      .where('id', '=', exam.participantId)
      .execute();
    expect(await itemOf('result_letter_not_sent', exam.participantId)).toEqual([]);
    expect(await itemOf('result_gp_not_acknowledged', exam.participantId)).toHaveLength(1);
  });

  it('5: recalled with no assessment appointment fires; booking clears it; a cancelled or missed one fires again', async () => {
    const exam = await screenedExam(db(), { on: '2026-11-02' });
    await result(exam, 'recall_assessment', { follow_up_problem: 'No assessment clinic with room in 3 weeks' });
    expect((await itemOf('recalled_no_assessment', exam.participantId))[0]).toMatchObject({
      since: '2026-11-02',
      ageDays: 21,
      status: 'due_soon',
      owner: 'The assessment team',
      detail: 'No assessment appointment is booked: No assessment clinic with room in 3 weeks',
      action: { href: '/assessment' },
    });

    const assessmentClinic = await clinic('2026-11-26', 'assessment');
    const booked = await appointment(assessmentClinic, exam.participantId, exam.episodeId, 'scheduled');
    await db()
      .updateTable('exam_result')
      .set({ follow_up_appointment_id: booked, follow_up_problem: null })
      .where('appointment_id', '=', exam.appointmentId)
      .execute();
    expect(await itemOf('recalled_no_assessment', exam.participantId)).toEqual([]);

    await setStatus(booked, 'cancelled');
    expect((await itemOf('recalled_no_assessment', exam.participantId))[0]!.detail).toBe(
      'Her assessment appointment on 26 November 2026 was cancelled and no new one is booked',
    );
    // Rebooked (a new appointment, not the result's follow-up): clears.
    const rebooked = await appointment(
      await clinic('2026-11-27', 'assessment'),
      exam.participantId,
      exam.episodeId,
      'scheduled',
    );
    expect(await itemOf('recalled_no_assessment', exam.participantId)).toEqual([]);
    await setStatus(rebooked, 'did_not_attend');
    expect(await itemOf('recalled_no_assessment', exam.participantId)).toHaveLength(1);
  });

  it('technical recall with no repeat exam: none booked, or it was cancelled, missed or not screened, until one stands', async () => {
    const exam = await screenedExam(db(), { on: '2026-10-19' });
    // Issued on 19 November (result() issues on that day): 28 days allowed, amber from 21.
    await result(exam, 'technical_recall', { follow_up_problem: 'No screening clinic at this site had room' });
    expect((await itemOf('technical_recall_no_repeat', exam.participantId))[0]).toMatchObject({
      key: exam.appointmentId,
      since: '2026-11-19',
      ageDays: 4,
      status: 'ok',
      owner: 'The screening office admin team',
      detail: 'No repeat appointment is booked: No screening clinic at this site had room',
      action: { href: `/participants/${exam.participantId}/book`, text: 'Book her repeat exam' },
    });

    const repeat = await appointment(
      await clinic('2026-11-26', 'screening'),
      exam.participantId,
      exam.episodeId,
      'scheduled',
    );
    await db()
      .updateTable('exam_result')
      .set({ follow_up_appointment_id: repeat, follow_up_problem: null })
      .where('appointment_id', '=', exam.appointmentId)
      .execute();
    expect(await itemOf('technical_recall_no_repeat', exam.participantId)).toEqual([]);

    for (const [status, detail] of [
      ['cancelled', 'Her repeat appointment on 26 November 2026 was cancelled and no new one is booked'],
      ['did_not_attend', 'She did not attend her repeat appointment on 26 November 2026 and no new one is booked'],
      [
        'attended_not_screened',
        'She came to her repeat appointment on 26 November 2026 but was not screened, and no new one is booked',
      ],
    ] as const) {
      await db().updateTable('appointment').set({ status }).where('id', '=', repeat).execute();
      expect((await itemOf('technical_recall_no_repeat', exam.participantId))[0]!.detail).toBe(detail);
    }
    // Booked again by hand (not the result's follow-up), in her episode: off the list; screened there: still off.
    const again = await appointment(
      await clinic('2026-12-01', 'screening'),
      exam.participantId,
      exam.episodeId,
      'scheduled',
    );
    expect(await itemOf('technical_recall_no_repeat', exam.participantId)).toEqual([]);
    await setStatus(again, 'screened');
    expect(await itemOf('technical_recall_no_repeat', exam.participantId)).toEqual([]);
    await setStatus(again, 'did_not_attend');
    expect(await itemOf('technical_recall_no_repeat', exam.participantId)).toHaveLength(1);
    // An appointment in another episode, or an assessment clinic, is not her repeat exam.
    const other = await db()
      .insertInto('episode')
      .values({ participant_id: exam.participantId, bso_code: 'TST', episode_type: 'R', opened_on: '2026-11-20' })
      .returning('id')
      .executeTakeFirstOrThrow();
    await appointment(await clinic('2026-12-02', 'screening'), exam.participantId, other.id, 'scheduled');
    await appointment(await clinic('2026-12-03', 'assessment'), exam.participantId, exam.episodeId, 'scheduled');
    expect(await itemOf('technical_recall_no_repeat', exam.participantId)).toHaveLength(1);

    // She has died: still listed (her episode is open), saying so; once the office closes the episode, off.
    await db()
      .updateTable('participant')
      .set({ date_of_death: '2026-11-21' })
      .where('id', '=', exam.participantId)
      .execute();
    expect((await itemOf('technical_recall_no_repeat', exam.participantId))[0]!.detail).toBe(
      'She came to her repeat appointment on 26 November 2026 but was not screened, and no new one is booked; she died on 21 November 2026',
    );
    await db()
      .updateTable('episode')
      .set({ closed_on: '2026-11-22', end_code: 'CEASED' })
      .where('id', '=', exam.episodeId)
      .execute();
    expect(await itemOf('technical_recall_no_repeat', exam.participantId)).toEqual([]);

    // 28 days after the result: overdue.
    const late = await screenedExam(db(), { on: '2026-10-01' });
    await db()
      .insertInto('exam_result')
      .values({
        appointment_id: late.appointmentId,
        episode_id: late.episodeId,
        result: 'technical_recall',
        follow_up_problem: 'No screening clinic at this site had room',
        issued_at: '2026-10-20T12:00:00Z',
      })
      .execute();
    expect((await itemOf('technical_recall_no_repeat', late.participantId))[0]).toMatchObject({
      since: '2026-10-20',
      ageDays: 34,
      status: 'overdue',
    });
  });

  it('6: assessed with no outcome fires from the first assessment day or procedure, and clears with an outcome', async () => {
    const exam = await screenedExam(db(), { on: '2026-11-02' });
    await result(exam, 'recall_assessment');
    const past = await appointment(
      await clinic('2026-11-20', 'assessment'),
      exam.participantId,
      exam.episodeId,
      'screened',
    );
    expect((await itemOf('assessment_no_outcome', exam.participantId))[0]).toMatchObject({
      key: exam.episodeId,
      since: '2026-11-20',
      ageDays: 3,
      status: 'ok',
      owner: 'The assessment team',
      detail: 'Assessment appointment passed: no procedures or outcome recorded',
    });
    // She attended, so she is no longer waiting for an appointment.
    expect(await itemOf('recalled_no_assessment', exam.participantId)).toEqual([]);
    await db()
      .insertInto('assessment_procedure')
      .values({ episode_id: exam.episodeId, procedure: 'core_biopsy', side: 'left', performed_on: '2026-11-20' })
      .execute();
    expect((await itemOf('assessment_no_outcome', exam.participantId))[0]!.detail).toBe(
      '1 assessment procedure recorded: no outcome',
    );

    const outcome = await db()
      .insertInto('assessment_outcome')
      .values({ episode_id: exam.episodeId, outcome: 'benign', decided_on: '2026-11-22' })
      .returning('id')
      .executeTakeFirstOrThrow();
    expect(await itemOf('assessment_no_outcome', exam.participantId)).toEqual([]);
    // An outcome replaced by nothing current (superseded) counts as none.
    await db()
      .updateTable('assessment_outcome')
      .set({ superseded_at: '2026-11-23T09:00:00Z' })
      .where('id', '=', outcome.id)
      .execute();
    expect(await itemOf('assessment_no_outcome', exam.participantId)).toHaveLength(1);
    void past;

    // Procedures alone (no appointment): fires from the procedure's day.
    const walkIn = await screenedExam(db(), { on: '2026-11-02' });
    await db()
      .insertInto('assessment_procedure')
      .values({ episode_id: walkIn.episodeId, procedure: 'ultrasound', side: 'right', performed_on: '2026-11-06' })
      .execute();
    expect((await itemOf('assessment_no_outcome', walkIn.participantId))[0]).toMatchObject({
      since: '2026-11-06',
      ageDays: 17,
      status: 'overdue',
    });
    // A future assessment appointment does not count as assessed.
    const later = await screenedExam(db(), { on: '2026-11-16' });
    await appointment(await clinic('2026-11-30', 'assessment'), later.participantId, later.episodeId, 'scheduled');
    expect(await itemOf('assessment_no_outcome', later.participantId)).toEqual([]);
  });

  it('an assessment outcome whose letter is not sent, or whose GP message is not acknowledged, fires from the decision', async () => {
    const exam = await screenedExam(db(), { on: '2026-11-02' });
    await result(exam, 'recall_assessment');
    const outcome = await db()
      .insertInto('assessment_outcome')
      .values({ episode_id: exam.episodeId, outcome: 'benign', decided_on: '2026-11-18' })
      .returning('id')
      .executeTakeFirstOrThrow();
    // Nothing queued at all: both fire, counted from the decision (7 days allowed for the letter).
    expect((await itemOf('outcome_letter_not_sent', exam.participantId))[0]).toMatchObject({
      key: `${exam.episodeId}:letter`,
      since: '2026-11-18',
      ageDays: 5,
      status: 'due_soon',
      owner: 'The screening office admin team',
      detail: 'No outcome letter has been made',
      action: { href: '/communications' },
    });
    expect((await itemOf('outcome_gp_not_acknowledged', exam.participantId))[0]).toMatchObject({
      since: '2026-11-18',
      status: 'overdue',
      owner: 'The GP messaging and support team',
      detail: 'No outcome message has been made for her GP practice (Y00001)',
    });
    // The result's own letter and message are another check's; another office does not list her.
    expect(await itemOf('result_letter_not_sent', exam.participantId)).toHaveLength(1);
    expect(await itemOf('outcome_letter_not_sent', exam.participantId, { office: 'NTH' })).toEqual([]);

    const outcomeRow = (recipient: 'participant' | 'gp', status: CommunicationStatus, more = {}) =>
      db()
        .insertInto('communication')
        .values({
          participant_id: exam.participantId,
          episode_id: exam.episodeId,
          appointment_id: null,
          recipient,
          kind: 'assessment_outcome',
          channel: recipient === 'gp' ? 'mesh' : 'letter',
          gp_practice_code: recipient === 'gp' ? 'Y00001' : null,
          status,
          ...more,
        })
        .returning('id')
        .executeTakeFirstOrThrow()
        .then((r) => r.id);
    const letter = await outcomeRow('participant', 'queued');
    const message = await outcomeRow('gp', 'queued');
    expect((await itemOf('outcome_letter_not_sent', exam.participantId))[0]).toMatchObject({
      key: letter,
      detail: 'Her outcome letter is waiting to be sent',
    });
    expect((await itemOf('outcome_gp_not_acknowledged', exam.participantId))[0]).toMatchObject({
      key: message,
      detail: 'The outcome message to Y00001 is waiting to be sent',
    });
    await setCommunication(letter, 'sent');
    await setCommunication(message, 'sent', '2026-11-22T09:00:00Z');
    expect(await itemOf('outcome_letter_not_sent', exam.participantId)).toEqual([]);
    expect((await itemOf('outcome_gp_not_acknowledged', exam.participantId))[0]).toMatchObject({
      since: '2026-11-22',
      ageDays: 1,
      status: 'due_soon',
      detail: 'Outcome sent to Y00001: not yet delivered or acknowledged',
    });
    await setCommunication(message, 'acknowledged');
    expect(await itemOf('outcome_gp_not_acknowledged', exam.participantId)).toEqual([]);

    // Corrected: the pair for the new outcome is followed, and the rows failed because of the correction are not.
    await db()
      .updateTable('assessment_outcome')
      .set({ superseded_at: new Date() })
      .where('id', '=', outcome.id)
      .execute();
    await db()
      .insertInto('assessment_outcome')
      .values({ episode_id: exam.episodeId, outcome: 'normal', decided_on: '2026-11-21', replaces_id: outcome.id })
      .execute();
    await outcomeRow('participant', 'failed', { last_error: 'Replaced by a corrected outcome' });
    const newLetter = await outcomeRow('participant', 'failed', { last_error: 'Printer jammed' });
    expect((await itemOf('outcome_letter_not_sent', exam.participantId))[0]).toMatchObject({
      key: newLetter,
      since: '2026-11-21',
      detail: 'Her outcome letter failed: Printer jammed',
    });
    await setCommunication(newLetter, 'sent');
    expect(await itemOf('outcome_letter_not_sent', exam.participantId)).toEqual([]);
  });

  it('2 and 3: an exam with images stays on the reading checks when its episode is closed, saying when she has died', async () => {
    const exam = await screenedExam(db(), { on: '2026-11-18' });
    await db()
      .updateTable('episode')
      .set({ closed_on: '2026-11-20', end_code: 'WITHDRAWN' })
      .where('id', '=', exam.episodeId)
      .execute();
    expect((await itemOf('images_not_read', exam.participantId))[0]!.detail).toBe('Waiting for the first read');
    await db()
      .updateTable('participant')
      .set({ date_of_death: '2026-11-20' })
      .where('id', '=', exam.participantId)
      .execute();
    expect((await itemOf('images_not_read', exam.participantId))[0]!.detail).toBe(
      'Waiting for the first read; she died on 20 November 2026',
    );
    await read(exam, 1, 'normal', '2026-11-19T10:00:00Z');
    await read(exam, 2, 'normal', '2026-11-19T11:00:00Z');
    expect(await itemOf('images_not_read', exam.participantId)).toEqual([]);
    expect((await itemOf('read_no_result', exam.participantId))[0]!.detail).toBe(
      'Reading decided: Normal; she died on 20 November 2026',
    );
  });

  it('7: an appointment whose day has passed with nothing recorded fires, and clears when attendance is recorded', async () => {
    const participant = await addParticipant(db());
    const episode = await db()
      .insertInto('episode')
      .values({ participant_id: participant.id, bso_code: 'TST', episode_type: 'R', opened_on: '2026-10-01' })
      .returning('id')
      .executeTakeFirstOrThrow();
    const past = await appointment(
      await clinic('2026-11-20', 'screening', 'mobile-1', 'car-park'),
      participant.id,
      episode.id,
      'checked_in',
    );
    const today = await appointment(await clinic(TODAY, 'screening'), participant.id, episode.id, 'scheduled');
    const items = await itemOf('appointment_not_closed', participant.id);
    expect(items).toHaveLength(1);
    expect(items[0]).toMatchObject({
      key: past,
      since: '2026-11-20',
      ageDays: 3,
      status: 'overdue',
      owner: 'Mobile Unit 1',
      detail: 'Appointment at Mobile Unit 1: checked in, never finished',
      action: { href: `/appointments/${past}` },
    });
    await setStatus(past, 'did_not_attend');
    expect(await itemOf('appointment_not_closed', participant.id)).toEqual([]);
    void today;
  });

  it('lists only the office asked for, and a closed episode takes an exam off the pathway checks', async () => {
    const elsewhere = await addParticipant(db());
    const episode = await db()
      .insertInto('episode')
      .values({ participant_id: elsewhere.id, bso_code: 'NTH', episode_type: 'R', opened_on: '2026-10-01' })
      .returning('id')
      .executeTakeFirstOrThrow();
    const north = await clinic('2026-11-18', 'screening', 'north-static', 'north');
    await appointment(north, elsewhere.id, episode.id, 'screened');
    expect(await itemOf('screened_no_images', elsewhere.id)).toEqual([]);
    expect(await itemOf('screened_no_images', elsewhere.id, { office: 'NTH' })).toHaveLength(1);

    const closed = await screenedExam(db(), { on: '2026-11-18', imagesAvailable: false });
    expect(await itemOf('screened_no_images', closed.participantId)).toHaveLength(1);
    await db()
      .updateTable('episode')
      .set({ closed_on: '2026-11-20', end_code: 'CEASED' })
      .where('id', '=', closed.episodeId)
      .execute();
    expect(await itemOf('screened_no_images', closed.participantId)).toEqual([]);
  });

  it('the queues: open data conflicts and unacknowledged movers, with their age, until dealt with', async () => {
    const participant = await addParticipant(db());
    const conflict = await db()
      .insertInto('data_conflict')
      .values({
        kind: 'field',
        participant_id: participant.id,
        subject: 'address',
        summary: 'Address: the cohort feed disagrees with her record',
        current_value: JSON.stringify({ postcode: 'LS6 2AB' }),
        current_source: 'participant',
        current_on: '2026-11-01',
        incoming_value: JSON.stringify({ postcode: 'LS1 1AA' }),
        incoming_source: 'bs_select',
        incoming_on: '2026-11-10',
        raised_at: '2026-11-10T09:00:00Z',
      })
      .returning('id')
      .executeTakeFirstOrThrow();
    expect((await itemOf('open_conflicts', participant.id))[0]).toMatchObject({
      since: '2026-11-10',
      ageDays: 13,
      status: 'overdue',
      detail: 'Address: the cohort feed disagrees with her record',
      action: { href: '/conflicts' },
    });
    await db()
      .updateTable('data_conflict')
      .set({
        status: 'resolved',
        resolution: 'kept_current',
        resolved_at: new Date(),
        resolved_by: office.users.admin.id,
      })
      .where('id', '=', conflict.id)
      .execute();
    expect(await itemOf('open_conflicts', participant.id)).toEqual([]);

    const move = await db()
      .insertInto('participant_move')
      .values({
        participant_id: participant.id,
        from_bso_code: 'TST',
        to_bso_code: 'NTH',
        effective_date: '2026-11-20',
        source: 'staff',
        gp_practice_from: 'Y00001',
        gp_practice_to: 'Y00009',
        recorded_at: '2026-11-21T10:00:00Z',
      })
      .returning('id')
      .executeTakeFirstOrThrow();
    expect((await itemOf('movers_not_acknowledged', participant.id))[0]).toMatchObject({
      since: '2026-11-21',
      ageDays: 2,
      detail: 'Moved out to North Test Office',
      action: { href: '/movers?office=TST' },
    });
    expect((await itemOf('movers_not_acknowledged', participant.id, { office: 'NTH' }))[0]!.detail).toBe(
      'Moved in from Test Breast Screening Office',
    );
    await db()
      .insertInto('participant_move_seen')
      .values({ move_id: move.id, bso_code: 'TST', seen_by: office.users.admin.id })
      .execute();
    expect(await itemOf('movers_not_acknowledged', participant.id)).toEqual([]);
    // The other office has still to acknowledge it.
    expect(await itemOf('movers_not_acknowledged', participant.id, { office: 'NTH' })).toHaveLength(1);
  });

  it('the tally: screened = images received = read twice = resulted = letters sent, per clinic day and site', async () => {
    const day = '2026-11-12';
    const noImages = await screenedExam(db(), { on: day, imagesAvailable: false });
    const done = await screenedExam(db(), { on: day });
    const readOnly = await screenedExam(db(), { on: day });
    for (const exam of [done, readOnly]) {
      await read(exam, 1, 'normal', '2026-11-13T10:00:00Z');
      await read(exam, 2, 'normal', '2026-11-13T11:00:00Z');
    }
    await result(done, 'routine_recall');
    const letter = await communication(done, 'participant', 'queued');
    // Older than the 14 days: not in the tally.
    await screenedExam(db(), { on: '2026-11-09' });

    const row = async () => (await failsafeTally(db(), 'TST', TODAY)).find((r) => r.clinicDate === day);
    expect(await row()).toEqual({
      clinicDate: day,
      siteId: 'static-1',
      siteName: 'Central Breast Unit',
      screened: 3,
      imagesReceived: 2,
      readTwice: 2,
      resulted: 1,
      lettersSent: 0,
    });
    await setCommunication(letter, 'sent');
    expect((await row())!.lettersSent).toBe(1);
    const tally = await failsafeTally(db(), 'TST', TODAY);
    expect(tally.some((r) => r.clinicDate === '2026-11-09')).toBe(false);
    expect(tally.some((r) => r.clinicDate === '2026-11-10' || r.clinicDate > '2026-11-10')).toBe(true);
    // Newest day first.
    expect(tally.map((r) => r.clinicDate)).toEqual([...tally.map((r) => r.clinicDate)].sort().reverse());
    void noImages;
  });

  it('the daily run records each check’s counts in failsafe_run, once a day when asked only if missing', async () => {
    const report = await failsafeReport(db(), 'TST', TODAY, { thresholds });
    const run = await runFailsafes(db(), 'TST', TODAY, { thresholds });
    const stored = await db().selectFrom('failsafe_run').selectAll().where('id', '=', run.id).executeTakeFirstOrThrow();
    expect(stored.as_of).toBe(TODAY);
    expect(stored.bso_code).toBe('TST');
    for (const r of report)
      expect(stored.counts[r.check.id]).toEqual({
        count: r.summary.count,
        overdue: r.summary.overdue,
        dueSoon: r.summary.dueSoon,
        oldestDays: r.summary.oldestDays,
      });
    expect(run.counts.screened_no_images!.count).toBeGreaterThan(0);

    const outcomes = await runDailyFailsafes(db(), TODAY, { thresholds, onlyIfMissing: true });
    expect(outcomes).toEqual([
      { office: 'NTH', outcome: 'ran' },
      { office: 'TST', outcome: 'already_ran' },
    ]);
    expect((await lastFailsafeRun(db(), 'NTH'))!.asOf).toBe(TODAY);
    // A later day's run: the trend has one row a day, newest first.
    await runFailsafes(db(), 'TST', '2026-11-24', { thresholds });
    expect((await recentFailsafeRuns(db(), 'TST')).map((r) => r.asOf)).toEqual(['2026-11-24', TODAY]);

    // One office failing does not stop the others, and the failure is reported, not thrown.
    const broken = { ...thresholds, screened_no_images: undefined } as unknown as typeof thresholds;
    const failed = await runDailyFailsafes(db(), '2026-11-25', { thresholds: broken });
    expect(failed.map((o) => o.outcome)).toEqual(['failed', 'failed']);
    expect(failed[0]!.error).toBeTruthy();
  });
});

describe.each(BACKENDS)('failsafes pages and job on %s', (backend) => {
  let database: Awaited<ReturnType<typeof freshDatabase>>;
  let app: FastifyInstance;
  let exam: ScreenedExam;
  const db = (): Db => database.db;
  beforeAll(async () => {
    database = await freshDatabase(backend);
    await smallOffice(database.db);
    exam = await screenedExam(database.db, { on: '2026-11-18', imagesAvailable: false });
    app = await testHub(database.db, { failsafeJob: true });
  });
  afterAll(async () => {
    await app.close();
    await database.drop();
  });
  const signedIn = async (username: string) => {
    const client = new PageClient(app);
    await client.signIn(username);
    return client;
  };

  it('at start, the hub runs today’s check for each office that has none', async () => {
    await app.ready();
    await expect.poll(async () => (await lastFailsafeRun(db(), 'TST'))?.asOf, { timeout: 10_000 }).toBe(TODAY);
    const run = (await lastFailsafeRun(db(), 'TST'))!;
    expect(run.counts.screened_no_images).toMatchObject({ count: 1, overdue: 1, oldestDays: 5 });
    // A second hub on the same database finds today's run and adds none.
    const second = await buildHub({ db: db(), secureCookies: false, today: () => TODAY });
    await second.ready();
    await second.close();
    expect(await db().selectFrom('failsafe_run').select('id').where('bso_code', '=', 'TST').execute()).toHaveLength(1);
  });

  it('with failsafeJob false, the hub runs nothing', async () => {
    await db().deleteFrom('failsafe_run').execute();
    const quiet = await buildHub({ db: db(), secureCookies: false, today: () => TODAY, failsafeJob: false });
    await quiet.ready();
    await new Promise((r) => setTimeout(r, 200));
    await quiet.close();
    expect(await db().selectFrom('failsafe_run').select('id').execute()).toEqual([]);
  });

  it('the page shows counts, tally, trend and thresholds; the list shows her; both views are audited', async () => {
    const admin = await signedIn('admin');
    expect((await admin.get('/failsafes')).body).toContain('The daily check has not run for this office yet');
    await runFailsafes(db(), 'TST', TODAY, { thresholds });
    const summary = await admin.get('/failsafes');
    expect(summary.statusCode).toBe(200);
    expect(summary.body).toContain('Screened, but no images at the hub');
    expect(summary.body).toContain('National standard: 95% or more of women');
    expect(summary.body).toContain('Local setting, not a national standard');
    expect(summary.body).toContain('role="img"');
    expect(summary.body).toContain('The daily check last ran at');
    expect(summary.body).toContain('GP results are not being sent');
    // The tally row for 18 November: 1 screened, 0 images, shown as a mismatch.
    expect(summary.body).toMatch(/18 November 2026[\s\S]*?No: images received, read twice, resulted, letters sent/);
    // Her name is not on the summary.
    expect(summary.body).not.toContain(exam.nhsNumber.slice(0, 3) + ' ' + exam.nhsNumber.slice(3, 6));

    const list = await admin.get('/failsafes/screened_no_images?office=TST');
    expect(list.statusCode).toBe(200);
    const formatted = `${exam.nhsNumber.slice(0, 3)} ${exam.nhsNumber.slice(3, 6)} ${exam.nhsNumber.slice(6)}`;
    expect(list.body).toContain(formatted);
    expect(list.body).toContain(`/participants/${exam.participantId}`);
    expect(list.body).toContain(`/appointments/${exam.appointmentId}`);

    const audit = await db()
      .selectFrom('audit_event')
      .select(['action', 'entity_id', 'detail'])
      .where('action', 'like', 'failsafes.%')
      .orderBy('id')
      .execute();
    expect(audit.map((a) => a.action)).toEqual(['failsafes.view', 'failsafes.view', 'failsafes.list']);
    expect(audit[2]).toMatchObject({
      entity_id: 'screened_no_images',
      detail: { office: 'TST', check: 'screened_no_images', count: 1, participants: [exam.participantId] },
    });
  });

  it('a bad thresholds file stops the hub starting, with a message naming the file and the key', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'failsafes-')), 'thresholds.json');
    const config = JSON.parse(readFileSync(SHIPPED_THRESHOLDS_FILE, 'utf8')) as {
      thresholds: Record<string, Record<string, unknown>>;
    };
    config.thresholds.images_not_read!.days = 'a week';
    writeFileSync(file, JSON.stringify(config));
    process.env.FAILSAFE_THRESHOLDS_FILE = file;
    try {
      await expect(buildHub({ db: db(), secureCookies: false, failsafeJob: false })).rejects.toThrow(
        `Failsafe thresholds in ${file} are not valid: thresholds.images_not_read.days: must be a whole number of days`,
      );
    } finally {
      delete process.env.FAILSAFE_THRESHOLDS_FILE;
    }
  });

  it('refuses staff without failsafe.view, an unknown check, and an unknown office (with the error shown)', async () => {
    const mammographer = await signedIn('mammographer');
    expect((await mammographer.get('/failsafes')).statusCode).toBe(403);
    const admin = await signedIn('admin');
    expect((await admin.get('/failsafes/no_such_check?office=TST')).statusCode).toBe(404);
    const bad = await admin.get('/failsafes?office=XXX');
    expect(bad.statusCode).toBe(400);
    expect(bad.body).toContain('There is a problem');
    expect(bad.body).toContain('Choose a screening office');
    expect((await admin.get('/failsafes/read_no_result?office=XXX')).statusCode).toBe(400);
  });
});
