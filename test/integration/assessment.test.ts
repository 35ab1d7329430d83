import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { OutcomeInput } from '../../src/pathway/assessment.js';
import type { StaffUser } from '../../src/store/accounts.js';
import {
  assessmentEpisode,
  assessmentWorklist,
  FormProblemsError,
  recordOutcome,
  recordProcedure,
} from '../../src/store/assessment.js';
import { ConflictError, NotFoundError } from '../../src/store/errors.js';
import { issueResult } from '../../src/store/results.js';
import { BACKENDS, freshDatabase } from '../support/database.js';
import { moreReaders, screenedExam, type ScreenedExam } from '../support/exams.js';
import { smallOffice, TODAY, type Office } from '../support/fixtures.js';
import { PageClient, testHub } from '../support/hub-client.js';
import { addClinic, readExam } from '../support/results.js';

const benign = (overrides: Partial<OutcomeInput> = {}): OutcomeInput => ({
  outcome: 'benign',
  side: 'left',
  sizeMm: null,
  grade: null,
  earlyRecallMonths: null,
  referredToTreatment: false,
  treatmentProvider: null,
  decidedOn: '2026-11-20',
  ...overrides,
});

describe.each(BACKENDS)('assessment on %s', (backend) => {
  let database: Awaited<ReturnType<typeof freshDatabase>>;
  let office: Office;
  let readers: StaffUser[];
  let reader: { userId: string; username: string; ip: string };
  let app: FastifyInstance;
  const db = () => database.db;

  beforeAll(async () => {
    database = await freshDatabase(backend);
    office = await smallOffice(db());
    readers = [office.users.reader, ...(await moreReaders(db()))];
    reader = { userId: office.users.reader.id, username: 'reader', ip: '127.0.0.1' };
    await addClinic(db(), {
      site: 'static-1',
      location: 'central',
      date: '2026-11-27',
      starts: '09:00',
      ends: '12:00',
      purpose: 'assessment',
    });
    app = await testHub(db());
  });
  afterAll(async () => {
    await app.close();
    await database.drop();
  });

  /** A woman screened on 16 November, both readers recalling her, the result issued (booked into assessment). */
  async function recalled(): Promise<ScreenedExam> {
    const exam = await screenedExam(db());
    await readExam(db(), exam, readers, ['recall_assessment', 'recall_assessment']);
    await issueResult(db(), { appointmentId: exam.appointmentId, policy: 'discordant' }, office.actor, TODAY);
    return exam;
  }
  const outcomeComms = (exam: ScreenedExam) =>
    db()
      .selectFrom('communication')
      .selectAll()
      .where('participant_id', '=', exam.participantId)
      .where('kind', '=', 'assessment_outcome')
      .orderBy('created_at')
      .orderBy('recipient')
      .execute();
  const episode = (exam: ScreenedExam) =>
    db().selectFrom('episode').selectAll().where('id', '=', exam.episodeId).executeTakeFirstOrThrow();

  it('lists women recalled to assessment with their appointment until an outcome is recorded', async () => {
    const exam = await recalled();
    const normalExam = await screenedExam(db());
    await readExam(db(), normalExam, readers, ['normal', 'normal']);
    await issueResult(db(), { appointmentId: normalExam.appointmentId, policy: 'discordant' }, office.actor, TODAY);
    const { awaiting } = await assessmentWorklist(db(), reader);
    const mine = awaiting.find((a) => a.episode_id === exam.episodeId);
    expect(mine).toMatchObject({
      participant_id: exam.participantId,
      screened_on: '2026-11-16',
      deadline: '2026-12-07',
      follow_up_date: '2026-11-27',
      follow_up_time: '09:00',
      follow_up_status: 'scheduled',
      procedures: 0,
    });
    expect(awaiting.map((a) => a.episode_id)).not.toContain(normalExam.episodeId);
    await recordOutcome(
      db(),
      { episodeId: exam.episodeId, outcome: benign({ side: null, outcome: 'normal' }), replacesId: null },
      reader,
      TODAY,
    );
    const after = await assessmentWorklist(db(), reader);
    expect(after.awaiting.map((a) => a.episode_id)).not.toContain(exam.episodeId);
    expect(after.recent.map((r) => r.episode_id)).toContain(exam.episodeId);
  });

  it('records any number of procedures, refusing bad ones with every problem at its field', async () => {
    const exam = await recalled();
    await recordProcedure(
      db(),
      {
        episodeId: exam.episodeId,
        procedure: { procedure: 'clinical_examination', side: null, performedOn: '2026-11-20', bCode: null, notes: '' },
      },
      reader,
      TODAY,
    );
    await recordProcedure(
      db(),
      {
        episodeId: exam.episodeId,
        procedure: { procedure: 'core_biopsy', side: 'left', performedOn: '2026-11-20', bCode: 'B5b', notes: '14G x3' },
      },
      reader,
      TODAY,
    );
    const refused = recordProcedure(
      db(),
      {
        episodeId: exam.episodeId,
        procedure: { procedure: 'ultrasound', side: null, performedOn: '2026-11-10', bCode: 'B2', notes: '' },
      },
      reader,
      TODAY,
    );
    await expect(refused).rejects.toBeInstanceOf(FormProblemsError);
    await expect(refused).rejects.toMatchObject({
      problems: {
        performedOn: 'The date of the procedure cannot be before she was screened',
        bCode: 'Only a biopsy has a B code: leave it blank for this procedure',
      },
    });
    const shown = await assessmentEpisode(db(), exam.episodeId, reader);
    expect(shown.procedures.map((p) => [p.procedure, p.side, p.b_code, p.notes])).toEqual([
      ['clinical_examination', null, null, ''],
      ['core_biopsy', 'left', 'B5b', '14G x3'],
    ]);
    expect(shown.reads.map((r) => r.opinion)).toEqual(['recall_assessment', 'recall_assessment']);
    expect(
      await db()
        .selectFrom('audit_event')
        .select('id')
        .where('action', '=', 'assessment.procedure')
        .where('participant_id', '=', exam.participantId)
        .execute(),
    ).toHaveLength(2);
  });

  it('an outcome closes the episode and queues one letter and one GP message; a correction replaces it', async () => {
    const exam = await recalled();
    const first = await recordOutcome(
      db(),
      { episodeId: exam.episodeId, outcome: benign({ earlyRecallMonths: '12' }), replacesId: null },
      reader,
      TODAY,
    );
    expect(first.end).toEqual({ endCode: 'SC', finalAction: 'EC', nextTestDue: '2027-11-16' });
    expect(await episode(exam)).toMatchObject({ closed_on: TODAY, end_code: 'SC', final_action: 'EC' });
    let comms = await outcomeComms(exam);
    expect(comms.map((c) => [c.recipient, c.channel, c.status, c.appointment_id, c.episode_id])).toEqual([
      ['gp', 'mesh', 'queued', null, exam.episodeId],
      ['participant', 'letter', 'queued', null, exam.episodeId],
    ]);

    // Recording a first outcome again (the form was opened before the first was saved): refused, not overwritten.
    await expect(
      recordOutcome(db(), { episodeId: exam.episodeId, outcome: benign(), replacesId: null }, reader, TODAY),
    ).rejects.toBeInstanceOf(ConflictError);

    // The GP message was made and tried once (MESH timed out): its stored bytes say the first outcome.
    await db()
      .updateTable('communication')
      .set({
        content: JSON.stringify({ resourceType: 'Bundle', note: 'benign, early recall' }),
        content_sha256: 'a'.repeat(64),
        attempts: 1,
        last_error: 'MESH timed out',
        next_attempt_at: new Date('2026-11-23T10:00:00Z'),
      })
      .where('id', '=', comms[0]!.id)
      .execute();

    // A correction: malignant after all. The old outcome stays, superseded; the episode's final action follows.
    const corrected = await recordOutcome(
      db(),
      {
        episodeId: exam.episodeId,
        outcome: benign({
          outcome: 'malignant_invasive',
          sizeMm: '18',
          grade: '3',
          referredToTreatment: true,
          treatmentProvider: 'St James University Hospital',
        }),
        replacesId: first.outcomeId,
      },
      reader,
      TODAY,
    );
    expect(corrected).toMatchObject({ replacedId: first.outcomeId, end: { finalAction: 'MT', nextTestDue: null } });
    const rows = await db()
      .selectFrom('assessment_outcome')
      .selectAll()
      .where('episode_id', '=', exam.episodeId)
      .orderBy('recorded_at')
      .execute();
    expect(rows.map((r) => [r.outcome, r.superseded_at !== null, r.replaces_id])).toEqual([
      ['benign', true, null],
      ['malignant_invasive', false, first.outcomeId],
    ]);
    expect(Number(rows[1]!.size_mm)).toBe(18);
    expect(await episode(exam)).toMatchObject({ closed_on: TODAY, final_action: 'MT' });
    // The letter and GP message still waiting would have told the first outcome (the GP's from its stored bytes):
    // both are failed and kept, saying why, and a new pair is queued for the corrected outcome.
    comms = await outcomeComms(exam);
    expect(comms.map((c) => [c.recipient, c.status, c.last_error])).toEqual([
      ['gp', 'failed', 'Replaced by a corrected outcome'],
      ['participant', 'failed', 'Replaced by a corrected outcome'],
      ['gp', 'queued', null],
      ['participant', 'queued', null],
    ]);
    expect(comms[0]).toMatchObject({ content_sha256: 'a'.repeat(64), next_attempt_at: null });
    expect(comms[2]).toMatchObject({ content: null, attempts: 0, episode_id: exam.episodeId, appointment_id: null });
    const replacedAudit = await db()
      .selectFrom('audit_event')
      .select(['entity_id', 'participant_id'])
      .where('action', '=', 'communication.replace')
      .where('participant_id', '=', exam.participantId)
      .orderBy('entity_id')
      .execute();
    expect(replacedAudit.map((a) => a.entity_id)).toEqual([comms[0]!.id, comms[1]!.id].sort());

    // Once they have gone, a further correction queues a new pair and leaves what was sent alone.
    await db()
      .updateTable('communication')
      .set({ status: 'sent' })
      .where('participant_id', '=', exam.participantId)
      .where('status', '=', 'queued')
      .execute();
    await recordOutcome(
      db(),
      {
        episodeId: exam.episodeId,
        outcome: benign({
          outcome: 'malignant_non_invasive',
          grade: '2',
          referredToTreatment: true,
          treatmentProvider: 'St James University Hospital',
        }),
        replacesId: corrected.outcomeId,
      },
      reader,
      TODAY,
    );
    comms = await outcomeComms(exam);
    expect(comms.map((c) => c.status)).toEqual(['failed', 'failed', 'sent', 'sent', 'queued', 'queued']);
    // A stale correction (the form opened on the first outcome) is refused.
    await expect(
      recordOutcome(db(), { episodeId: exam.episodeId, outcome: benign(), replacesId: first.outcomeId }, reader, TODAY),
    ).rejects.toBeInstanceOf(ConflictError);
    const audit = await db()
      .selectFrom('audit_event')
      .select('action')
      .where('participant_id', '=', exam.participantId)
      .where('action', 'like', 'assessment.outcome%')
      .orderBy('id')
      .execute();
    expect(audit.map((a) => a.action)).toEqual([
      'assessment.outcome',
      'assessment.outcome.correct',
      'assessment.outcome.correct',
    ]);
  });

  it('refuses an outcome the rules do not allow, and an episode never recalled to assessment', async () => {
    const exam = await recalled();
    const refused = recordOutcome(
      db(),
      { episodeId: exam.episodeId, outcome: benign({ grade: '2', referredToTreatment: true }), replacesId: null },
      reader,
      TODAY,
    );
    await expect(refused).rejects.toMatchObject({
      problems: {
        grade: 'Only a malignant outcome has a grade: leave it blank',
        referredToTreatment: 'Only a malignant outcome is referred to treatment',
      },
    });
    expect((await episode(exam)).closed_on).toBeNull();
    expect(await outcomeComms(exam)).toEqual([]);
    const normal = await screenedExam(db());
    await expect(
      recordOutcome(db(), { episodeId: normal.episodeId, outcome: benign(), replacesId: null }, reader, TODAY),
    ).rejects.toBeInstanceOf(NotFoundError);
  });

  it('pages: list, procedure and outcome forms with error summaries; admins cannot record', async () => {
    const exam = await recalled();
    const client = new PageClient(app);
    await client.signIn('reader');
    const list = await client.get('/assessment');
    expect(list.statusCode).toBe(200);
    expect(list.body).toContain(`/assessment/${exam.episodeId}`);

    const bad = await client.post(`/assessment/${exam.episodeId}/procedure`, {
      procedure: 'core_biopsy',
      side: '',
      'performedOn[day]': '20',
      'performedOn[month]': '11',
      'performedOn[year]': '2026',
      bCode: 'B3',
    });
    expect(bad.statusCode).toBe(400);
    expect(bad.body).toContain('There is a problem');
    expect(bad.body).toContain('href="#side"');
    expect(bad.body).toContain('Choose which breast the biopsy was taken from');
    const badDate = await client.post(`/assessment/${exam.episodeId}/procedure`, {
      procedure: 'ultrasound',
      'performedOn[day]': '31',
      'performedOn[month]': '11',
      'performedOn[year]': '2026',
    });
    expect(badDate.statusCode).toBe(400);
    expect(badDate.body).toContain('href="#performedOn-day"');
    const good = await client.post(`/assessment/${exam.episodeId}/procedure`, {
      procedure: 'core_biopsy',
      side: 'right',
      'performedOn[day]': '20',
      'performedOn[month]': '11',
      'performedOn[year]': '2026',
      bCode: 'B3',
    });
    expect(good.statusCode).toBe(303);

    await client.get(`/assessment/${exam.episodeId}/outcome`);
    const badOutcome = await client.post(`/assessment/${exam.episodeId}/outcome`, {
      replacesId: '',
      outcome: 'malignant_invasive',
      side: 'right',
      sizeMm: '600',
      'decidedOn[day]': '23',
      'decidedOn[month]': '11',
      'decidedOn[year]': '2026',
    });
    expect(badOutcome.statusCode).toBe(400);
    expect(badOutcome.body).toContain('href="#sizeMm"');
    expect(badOutcome.body).toContain('href="#referredToTreatment"');
    const saved = await client.post(`/assessment/${exam.episodeId}/outcome`, {
      replacesId: '',
      outcome: 'benign',
      side: 'right',
      earlyRecallMonths: '6',
      'decidedOn[day]': '23',
      'decidedOn[month]': '11',
      'decidedOn[year]': '2026',
    });
    expect(saved.statusCode).toBe(303);
    const page = await client.get(`/assessment/${exam.episodeId}`);
    expect(page.body).toContain('Outcome recorded: Benign. Episode closed: early recall. Next test due 16 May 2027.');
    expect(page.body).toContain('Correct the outcome');
    // Opening the correction form, then someone else correcting first: 409, nothing saved, theirs shown.
    const form = await client.get(`/assessment/${exam.episodeId}/outcome`);
    const replacesId = /name="replacesId" value="([^"]+)"/.exec(form.body)![1]!;
    await recordOutcome(
      db(),
      { episodeId: exam.episodeId, outcome: benign({ side: 'right' }), replacesId },
      reader,
      TODAY,
    );
    const stale = await client.post(`/assessment/${exam.episodeId}/outcome`, {
      replacesId,
      outcome: 'normal',
      'decidedOn[day]': '23',
      'decidedOn[month]': '11',
      'decidedOn[year]': '2026',
    });
    expect(stale.statusCode).toBe(409);
    expect(stale.body).toContain('Someone else recorded an outcome');

    const admin = new PageClient(app);
    await admin.signIn('admin');
    expect((await admin.get('/assessment')).statusCode).toBe(403);
    expect((await client.get('/assessment/00000000-0000-4000-8000-000000000000')).statusCode).toBe(404);
  });
});
