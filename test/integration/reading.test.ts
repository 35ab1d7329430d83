import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readingOutcome } from '../../src/pathway/reading.js';
import type { OpinionDetails } from '../../src/pathway/screening-outcomes.js';
import { createUser, type StaffUser } from '../../src/store/accounts.js';
import type { Actor } from '../../src/store/audit.js';
import type { Db } from '../../src/store/database.js';
import { RuleError } from '../../src/store/errors.js';
import {
  deferExam,
  examReads,
  nextExamFor,
  readerStatistics,
  readingSummary,
  readingWorklist,
  recordOpinion,
  resumeExam,
} from '../../src/store/reading.js';
import { BACKENDS, freshDatabase } from '../support/database.js';
import { moreReaders, screenedExam } from '../support/exams.js';
import { addItem, PASSWORD, smallOffice, TODAY, type Office } from '../support/fixtures.js';
import { PageClient, testHub } from '../support/hub-client.js';

const recall: OpinionDetails = {
  findings: [{ side: 'right', lesion: 'microcalcification', location: 'upper outer quadrant', concern: 4 }],
};
const normal = { opinion: 'normal' as const, details: {}, comment: '' };
const recallOpinion = { opinion: 'recall_assessment' as const, details: recall, comment: 'Clustered, new since prior' };
const technical = {
  opinion: 'technical_recall' as const,
  details: { views: ['LMLO' as const], reason: 'blurred' as const },
  comment: '',
};

describe.each(BACKENDS)('reading on %s', (backend) => {
  let database: Awaited<ReturnType<typeof freshDatabase>>;
  let office: Office;
  let readers: StaffUser[];
  let actors: Actor[];
  let app: FastifyInstance;
  beforeAll(async () => {
    database = await freshDatabase(backend);
    office = await smallOffice(database.db);
    readers = [office.users.reader, ...(await moreReaders(database.db))];
    actors = readers.map((u) => ({ userId: u.id, username: u.username, ip: '127.0.0.1' }));
    app = await testHub(database.db);
  });
  afterAll(async () => {
    await app.close();
    await database.drop();
  });
  const db = (): Db => database.db;
  const refusal = async (promise: Promise<unknown>): Promise<string> => {
    const error = await promise.then(
      () => null,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(RuleError);
    return (error as RuleError).message;
  };
  const issueResult = (exam: { appointmentId: string; episodeId: string }) =>
    db()
      .insertInto('exam_result')
      .values({
        appointment_id: exam.appointmentId,
        episode_id: exam.episodeId,
        result: 'routine_recall',
        next_test_due: '2029-11-16',
      })
      .execute();
  const auditOf = (action: string, entityId: string) =>
    db()
      .selectFrom('audit_event')
      .select(['username', 'participant_id', 'detail'])
      .where('action', '=', action)
      .where('entity_id', '=', entityId)
      .orderBy('id')
      .execute();

  it('lists exams with images and no result, oldest screened first whatever the clinic, in batches, with counts', async () => {
    // Screened on different days in clinics made in another order; one without images yet; one not screened.
    const later = await screenedExam(db(), { on: '2026-11-12', episodeType: 'C' });
    const oldest = await screenedExam(db(), { on: '2026-11-03' });
    const middle = await screenedExam(db(), { on: '2026-11-09' });
    const noImages = await screenedExam(db(), { on: '2026-11-01', imagesAvailable: false });
    const notScreened = await screenedExam(db(), { on: '2026-11-02' });
    await db()
      .updateTable('appointment')
      .set({ status: 'scheduled' })
      .where('id', '=', notScreened.appointmentId)
      .execute();
    await db()
      .updateTable('appointment')
      .set({ status: 'partially_screened' })
      .where('id', '=', middle.appointmentId)
      .execute();
    await db().updateTable('episode').set({ prior_images: 'requested' }).where('id', '=', oldest.episodeId).execute();

    const all = await readingWorklist(db(), readers[0]!.id);
    expect(all.exams.map((e) => e.appointmentId)).toEqual([
      oldest.appointmentId,
      middle.appointmentId,
      later.appointmentId,
    ]);
    expect(all.waiting).toEqual({ total: 3, firstRead: 3, secondRead: 0, arbitration: 0 });
    expect(all.exams[0]).toMatchObject({
      nhsNumber: oldest.nhsNumber,
      episodeType: 'R',
      screenedOn: '2026-11-03',
      siteName: 'Central Breast Unit',
      priorImages: 'requested',
      studyInstanceUid: oldest.studyInstanceUid,
      accessionNumber: oldest.accessionNumber,
      stage: 'first_read',
    });
    expect(all.exams[2]).toMatchObject({ episodeType: 'C', priorImages: null });
    expect(all.exams.map((e) => e.appointmentId)).not.toContain(noImages.appointmentId);

    // A batch of 2: the two oldest; the counts still say what waits in total.
    const batch = await readingWorklist(db(), readers[0]!.id, { limit: 2 });
    expect(batch.exams.map((e) => e.appointmentId)).toEqual([oldest.appointmentId, middle.appointmentId]);
    expect(batch.waiting.total).toBe(3);
    expect(await nextExamFor(db(), readers[0]!.id)).toBe(oldest.appointmentId);

    // Read once: off the first reader's list, waiting for a second read on everyone else's.
    expect(await recordOpinion(db(), { appointmentId: oldest.appointmentId, ...normal }, actors[0]!)).toBe(1);
    expect((await readingWorklist(db(), readers[0]!.id)).waiting).toEqual({
      total: 2,
      firstRead: 2,
      secondRead: 0,
      arbitration: 0,
    });
    const second = await readingWorklist(db(), readers[1]!.id);
    expect(second.waiting).toEqual({ total: 3, firstRead: 2, secondRead: 1, arbitration: 0 });
    expect(second.exams[0]).toMatchObject({ appointmentId: oldest.appointmentId, stage: 'second_read' });

    // Results issued for all of them: nothing left for anyone (the other tests start from an empty list).
    for (const exam of [later, oldest, middle]) await issueResult(exam);
    expect((await readingWorklist(db(), readers[1]!.id)).waiting.total).toBe(0);
  });

  it('is blind: the second reader is shown nothing of the first opinion, and nobody reads an exam twice', async () => {
    const exam = await screenedExam(db());
    const [r1, r2, r3, r4] = readers.map((r) => r.id) as [string, string, string, string];
    expect(await recordOpinion(db(), { appointmentId: exam.appointmentId, ...recallOpinion }, actors[0]!)).toBe(1);

    const secondView = await readingSummary(db(), exam.appointmentId, r2);
    expect(secondView).toMatchObject({ next: { readNumber: 2 }, reads: [], stage: 'second_read' });
    const shown = JSON.stringify(secondView);
    expect(shown).not.toContain('microcalcification');
    expect(shown).not.toContain('Clustered');
    expect(shown).not.toContain(r1);

    const firstView = await readingSummary(db(), exam.appointmentId, r1);
    expect(firstView?.reads.map((r) => [r.readNumber, r.opinion])).toEqual([[1, 'recall_assessment']]);
    expect(firstView?.next).toEqual({ refused: expect.stringMatching(/already read this exam/) as unknown });
    expect(await refusal(recordOpinion(db(), { appointmentId: exam.appointmentId, ...normal }, actors[0]!))).toMatch(
      /never reads the same exam twice/,
    );

    expect(await recordOpinion(db(), { appointmentId: exam.appointmentId, ...normal }, actors[1]!)).toBe(2);
    // Still blind after both reads: each sees their own only.
    const afterFirst = await readingSummary(db(), exam.appointmentId, r1);
    const afterSecond = await readingSummary(db(), exam.appointmentId, r2);
    expect(afterFirst?.reads.map((r) => r.readerId)).toEqual([r1]);
    expect(afterSecond?.reads.map((r) => r.readerId)).toEqual([r2]);
    expect(JSON.stringify(afterSecond)).not.toContain('microcalcification');
    expect(await refusal(recordOpinion(db(), { appointmentId: exam.appointmentId, ...normal }, actors[1]!))).toMatch(
      /already read/,
    );

    // Discordant: the arbiter (a reader who did not read it) sees both opinions, with details and comments.
    const arbiterView = await readingSummary(db(), exam.appointmentId, r3);
    expect(arbiterView).toMatchObject({ stage: 'arbitration', next: { readNumber: 3 } });
    expect(arbiterView?.reads.map((r) => [r.readNumber, r.readerId, r.opinion])).toEqual([
      [1, r1, 'recall_assessment'],
      [2, r2, 'normal'],
    ]);
    expect(arbiterView?.reads[0]).toMatchObject({ details: recall, comment: 'Clustered, new since prior' });
    const list3 = await readingWorklist(db(), r3);
    expect(list3.exams.find((e) => e.appointmentId === exam.appointmentId)?.stage).toBe('arbitration');
    for (const reader of [r1, r2])
      expect((await readingWorklist(db(), reader)).exams.map((e) => e.appointmentId)).not.toContain(exam.appointmentId);

    // A blind read submitted from a page opened before both reads came in is not taken as the arbitration.
    expect(
      await refusal(
        recordOpinion(db(), { appointmentId: exam.appointmentId, expectedReadNumber: 1, ...normal }, actors[3]!),
      ),
    ).toMatch(/now needs arbitration/);

    expect(
      await recordOpinion(
        db(),
        { appointmentId: exam.appointmentId, expectedReadNumber: 3, ...recallOpinion },
        actors[2]!,
      ),
    ).toBe(3);
    expect(await refusal(recordOpinion(db(), { appointmentId: exam.appointmentId, ...normal }, actors[3]!))).toMatch(
      /all the reads it needs/,
    );
    expect((await readingSummary(db(), exam.appointmentId, r4))?.reads).toEqual([]);
    // The first reader still cannot see the others, even decided.
    expect((await readingSummary(db(), exam.appointmentId, r1))?.reads.map((r) => r.readNumber)).toEqual([1]);

    const reads = (await examReads(db(), [exam.appointmentId])).get(exam.appointmentId)!;
    expect(reads.map((r) => [r.readNumber, r.readerId])).toEqual([
      [1, r1],
      [2, r2],
      [3, r3],
    ]);
    expect(readingOutcome(reads, 'discordant')).toEqual({ stage: 'decided', opinion: 'recall_assessment' });
    const audit = await auditOf('reading.opinion', exam.appointmentId);
    expect(audit.map((a) => [a.username, (a.detail as { readNumber: number }).readNumber])).toEqual([
      ['reader', 1],
      ['reader2', 2],
      ['reader3', 3],
    ]);
    expect(audit[0]).toMatchObject({ participant_id: exam.participantId, detail: { opinion: 'recall_assessment' } });

    // The unique (appointment, reader) constraint stands behind the rule, whatever a caller does.
    await expect(
      db()
        .insertInto('reading_opinion')
        .values({
          appointment_id: exam.appointmentId,
          episode_id: exam.episodeId,
          read_number: 3,
          reader_id: r1,
          opinion: 'normal',
          details: '{}',
        })
        .execute(),
    ).rejects.toMatchObject({ code: '23505' });
  });

  it('arbitrates only when the policy needs it', async () => {
    const agreed = await screenedExam(db());
    await recordOpinion(db(), { appointmentId: agreed.appointmentId, ...technical }, actors[0]!);
    await recordOpinion(db(), { appointmentId: agreed.appointmentId, ...technical }, actors[1]!);
    // Agreed technical recalls: decided when only disagreement goes to arbitration...
    expect((await readingSummary(db(), agreed.appointmentId, readers[2]!.id))?.stage).toBe('decided');
    expect(await refusal(recordOpinion(db(), { appointmentId: agreed.appointmentId, ...normal }, actors[2]!))).toMatch(
      /all the reads it needs/,
    );
    expect((await readingWorklist(db(), readers[2]!.id)).exams.map((e) => e.appointmentId)).not.toContain(
      agreed.appointmentId,
    );
    // ...but arbitrated when every opinion that is not normal is, and not when only recalls for assessment are.
    const allNonNormal = await readingWorklist(db(), readers[2]!.id, { policy: 'all_non_normal' });
    expect(allNonNormal.exams.find((e) => e.appointmentId === agreed.appointmentId)?.stage).toBe('arbitration');
    expect(allNonNormal.waiting.arbitration).toBe(1);
    const allRecalls = await readingWorklist(db(), readers[2]!.id, { policy: 'all_recalls' });
    expect(allRecalls.exams.map((e) => e.appointmentId)).not.toContain(agreed.appointmentId);
    expect(
      (await readingSummary(db(), agreed.appointmentId, readers[2]!.id, 'all_non_normal'))?.reads.map((r) => r.opinion),
    ).toEqual(['technical_recall', 'technical_recall']);
    // The first reader cannot arbitrate their own exam.
    expect(
      await refusal(
        recordOpinion(db(), { appointmentId: agreed.appointmentId, ...normal }, actors[0]!, 'all_non_normal'),
      ),
    ).toMatch(/already read/);
    expect(
      await recordOpinion(db(), { appointmentId: agreed.appointmentId, ...technical }, actors[2]!, 'all_non_normal'),
    ).toBe(3);
    await issueResult(agreed);
  });

  it('gives two readers submitting at once read 1 and read 2, never the same number', async () => {
    for (let i = 0; i < 5; i++) {
      const exam = await screenedExam(db());
      const numbers = await Promise.all([
        recordOpinion(db(), { appointmentId: exam.appointmentId, ...normal }, actors[0]!),
        recordOpinion(db(), { appointmentId: exam.appointmentId, ...recallOpinion }, actors[1]!),
      ]);
      expect([...numbers].sort()).toEqual([1, 2]);
      const rows = await db()
        .selectFrom('reading_opinion')
        .select(['read_number', 'reader_id'])
        .where('appointment_id', '=', exam.appointmentId)
        .orderBy('read_number')
        .execute();
      expect(rows.map((r) => r.read_number)).toEqual([1, 2]);
      expect(new Set(rows.map((r) => r.reader_id)).size).toBe(2);
      await issueResult(exam);
    }
    // Three at once on a fresh exam: two blind reads, and the third is refused (agreed) or not taken as arbitration.
    const exam = await screenedExam(db());
    const outcomes = await Promise.allSettled(
      actors
        .slice(0, 3)
        .map((actor, i) =>
          recordOpinion(
            db(),
            { appointmentId: exam.appointmentId, expectedReadNumber: 1, ...(i === 1 ? recallOpinion : normal) },
            actor,
          ),
        ),
    );
    const taken = outcomes.filter((o) => o.status === 'fulfilled').map((o) => o.value);
    expect([...taken].sort()).toEqual([1, 2]);
    expect(outcomes.filter((o) => o.status === 'rejected')).toHaveLength(1);
    await issueResult(exam);
  });

  it('records no read, and lists nothing, once the result is issued', async () => {
    const exam = await screenedExam(db());
    await recordOpinion(db(), { appointmentId: exam.appointmentId, ...normal }, actors[0]!);
    await issueResult(exam);
    expect(await refusal(recordOpinion(db(), { appointmentId: exam.appointmentId, ...normal }, actors[1]!))).toMatch(
      /result of this exam has been issued/,
    );
    expect(
      await refusal(deferExam(db(), { appointmentId: exam.appointmentId, reason: 'Waiting for priors' }, actors[1]!)),
    ).toMatch(/result of this exam has been issued/);
    expect((await readingSummary(db(), exam.appointmentId, readers[1]!.id))?.next).toEqual({
      refused: 'The result of this exam has been issued: no more reads can be recorded',
    });
    expect((await readingWorklist(db(), readers[1]!.id)).waiting.total).toBe(0);
    // And nothing for an exam whose images have not arrived.
    const waiting = await screenedExam(db(), { imagesAvailable: false });
    expect(await refusal(recordOpinion(db(), { appointmentId: waiting.appointmentId, ...normal }, actors[1]!))).toMatch(
      /not reached the PACS/,
    );
    expect(
      await db()
        .selectFrom('reading_opinion')
        .select('id')
        .where('appointment_id', '=', waiting.appointmentId)
        .execute(),
    ).toEqual([]);
  });

  it('refuses an opinion whose details do not fit it, saving nothing', async () => {
    const exam = await screenedExam(db());
    await expect(
      recordOpinion(
        db(),
        { appointmentId: exam.appointmentId, opinion: 'recall_assessment', details: {}, comment: '' },
        actors[0]!,
      ),
    ).rejects.toBeInstanceOf(RuleError);
    await expect(
      recordOpinion(
        db(),
        { appointmentId: exam.appointmentId, opinion: 'normal', details: recall, comment: '' },
        actors[0]!,
      ),
    ).rejects.toBeInstanceOf(RuleError);
    expect((await examReads(db(), [exam.appointmentId])).get(exam.appointmentId)).toEqual([]);
    await issueResult(exam);
  });

  it('a deferred exam leaves that reader’s list until they put it back, and stays on the others’', async () => {
    const exam = await screenedExam(db());
    const [r1, r2] = [readers[0]!.id, readers[1]!.id];
    expect(await refusal(deferExam(db(), { appointmentId: exam.appointmentId, reason: '  ' }, actors[0]!))).toMatch(
      /Enter why/,
    );
    await deferExam(db(), { appointmentId: exam.appointmentId, reason: 'Waiting for prior images' }, actors[0]!);
    expect(await refusal(deferExam(db(), { appointmentId: exam.appointmentId, reason: 'Again' }, actors[0]!))).toMatch(
      /already deferred/,
    );
    const mine = await readingWorklist(db(), r1);
    expect(mine.exams.map((e) => e.appointmentId)).not.toContain(exam.appointmentId);
    expect(mine.deferred).toEqual([
      expect.objectContaining({ appointmentId: exam.appointmentId, reason: 'Waiting for prior images' }),
    ]);
    expect(await nextExamFor(db(), r1)).not.toBe(exam.appointmentId);
    expect((await readingWorklist(db(), r2)).exams.map((e) => e.appointmentId)).toContain(exam.appointmentId);
    expect((await readingSummary(db(), exam.appointmentId, r1))?.deferral?.reason).toBe('Waiting for prior images');
    expect(await auditOf('reading.defer', exam.appointmentId)).toEqual([
      expect.objectContaining({
        username: 'reader',
        detail: expect.objectContaining({ reason: 'Waiting for prior images' }) as unknown,
      }),
    ]);

    expect(await resumeExam(db(), exam.appointmentId, actors[0]!)).toBe(true);
    expect(await resumeExam(db(), exam.appointmentId, actors[0]!)).toBe(false);
    expect((await readingWorklist(db(), r1)).exams.map((e) => e.appointmentId)).toContain(exam.appointmentId);

    // Deferred again, then read anyway: the deferral is closed with the read.
    await deferExam(db(), { appointmentId: exam.appointmentId, reason: 'Second opinion first' }, actors[0]!);
    await recordOpinion(db(), { appointmentId: exam.appointmentId, ...normal }, actors[0]!);
    expect((await readingWorklist(db(), r1)).deferred).toEqual([]);
    const open = await db()
      .selectFrom('reading_deferral')
      .select('id')
      .where('appointment_id', '=', exam.appointmentId)
      .where('resolved_at', 'is', null)
      .execute();
    expect(open).toEqual([]);
    await issueResult(exam);
  });

  it('counts a reader’s own reads, recall rates and arbitration agreement, this year and in 12 months', async () => {
    const reader = await createUser(db(), {
      username: 'statsreader',
      displayName: 'Stats Reader',
      role: 'film_reader',
      password: PASSWORD,
    });
    const insert = async (
      exam: { appointmentId: string; episodeId: string },
      readNumber: 1 | 2 | 3,
      readerId: string,
      opinion: 'normal' | 'technical_recall' | 'recall_assessment',
      at: string,
    ) =>
      db()
        .insertInto('reading_opinion')
        .values({
          appointment_id: exam.appointmentId,
          episode_id: exam.episodeId,
          read_number: readNumber,
          reader_id: readerId,
          opinion,
          details: JSON.stringify(
            opinion === 'normal' ? {} : opinion === 'technical_recall' ? technical.details : recall,
          ),
          read_at: at,
        })
        .execute();
    const exams = await Promise.all([1, 2, 3, 4, 5].map(() => screenedExam(db())));
    const [a, b, c, d, e] = exams as [
      (typeof exams)[0],
      (typeof exams)[0],
      (typeof exams)[0],
      (typeof exams)[0],
      (typeof exams)[0],
    ];
    const [other1, other2] = [readers[1]!.id, readers[2]!.id];
    // This year (and in 12 months): a recall as read 1 the arbiter agreed with, a normal read 2 the arbiter
    // overruled, a technical recall arbitration.
    await insert(a, 1, reader.id, 'recall_assessment', '2026-11-20T10:00:00Z');
    await insert(a, 2, other1, 'normal', '2026-11-20T11:00:00Z');
    await insert(a, 3, other2, 'recall_assessment', '2026-11-21T09:00:00Z');
    await insert(b, 1, other1, 'technical_recall', '2026-02-01T10:00:00Z');
    await insert(b, 2, reader.id, 'normal', '2026-02-02T10:00:00Z');
    await insert(b, 3, other2, 'technical_recall', '2026-02-03T10:00:00Z');
    await insert(c, 3, reader.id, 'technical_recall', '2026-01-01T00:30:00Z');
    // Last year but in the last 12 months (23:30 on 31 December in England is still last year).
    await insert(d, 1, reader.id, 'normal', '2025-12-31T23:30:00Z');
    // More than 12 months ago: in neither.
    await insert(e, 1, reader.id, 'recall_assessment', '2025-11-23T12:00:00Z');

    const figures = await readerStatistics(db(), reader.id, TODAY);
    expect(figures.thisYear).toEqual({
      from: '2026-01-01',
      to: TODAY,
      reads: 3,
      firstReads: 1,
      secondReads: 1,
      arbitrations: 1,
      recalls: 1,
      technicalRecalls: 1,
      recallRate: 1 / 3,
      technicalRecallRate: 1 / 3,
    });
    expect(figures.last12Months).toMatchObject({
      from: '2025-11-24',
      reads: 4,
      firstReads: 2,
      recalls: 1,
      recallRate: 0.25,
      technicalRecallRate: 0.25,
    });
    expect(figures.arbitration).toEqual({ arbitrated: 2, agreed: 1, agreementRate: 0.5 });
    expect(figures.qaAnnualReads).toBe(5000);
    const nobody = await readerStatistics(db(), readers[3]!.id, TODAY);
    expect(nobody.thisYear.recallRate).toBeNull();
    for (const exam of exams) await issueResult(exam);
  });

  describe('pages', () => {
    const signedIn = async (username: string) => {
      const client = new PageClient(app);
      await client.signIn(username);
      return client;
    };

    it('reads an exam from the worklist: PACS link, history, errors, blind second page, arbitration', async () => {
      const exam = await screenedExam(db(), { participant: { given_name: 'Ada', family_name: 'Readingtest' } });
      await addItem(db(), exam.participantId, 'implants', 'bilateral');
      const first = await signedIn('reader');
      const list = await first.get('/reading?batch=50');
      expect(list.statusCode).toBe(200);
      expect(list.body).toContain(`href="/reading/${exam.appointmentId}"`);
      expect(list.body).toContain(`href="/dicom-web/studies/${exam.studyInstanceUid}"`);
      expect(list.body).toContain('Routine recall (R)');
      expect(list.body).toContain('Not requested');
      expect(list.body).toContain('16 November 2026');
      const worklistViewed = async () =>
        (
          await db()
            .selectFrom('audit_event')
            .select(['username', 'detail'])
            .where('action', '=', 'reading.worklist')
            .orderBy('id', 'desc')
            .executeTakeFirstOrThrow()
        ).detail as { appointmentIds: string[]; deferredAppointmentIds: string[]; batch: string };
      // The audit names the exams listed.
      expect(await worklistViewed()).toMatchObject({ batch: '50', deferredAppointmentIds: [] });
      expect((await worklistViewed()).appointmentIds).toContain(exam.appointmentId);

      const session = await first.get('/reading/next?session=25&done=0');
      expect(session.statusCode).toBe(303);
      expect(session.headers.location).toBe(`/reading/${exam.appointmentId}?session=25&done=0`);

      const pageOne = await first.get(`/reading/${exam.appointmentId}`);
      expect(pageOne.statusCode).toBe(200);
      expect(pageOne.body).toContain('Ada READINGTEST');
      expect(pageOne.body).toContain('Breast implants (both sides)');
      expect(pageOne.body).toContain('First read');
      expect((await auditOf('reading.view', exam.appointmentId))[0]).toMatchObject({
        username: 'reader',
        participant_id: exam.participantId,
      });

      const none = await first.post(`/reading/${exam.appointmentId}`, { readNumber: '1' });
      expect(none.statusCode).toBe(400);
      expect(none.body).toContain('There is a problem');
      expect(none.body).toContain('href="#opinion"');
      const noFinding = await first.post(`/reading/${exam.appointmentId}`, { opinion: 'recall_assessment' });
      expect(noFinding.statusCode).toBe(400);
      expect(noFinding.body).toContain('Record a finding in one or both breasts');
      const noView = await first.post(`/reading/${exam.appointmentId}`, { opinion: 'technical_recall' });
      expect(noView.body).toContain('Choose the views to repeat');

      const saved = await first.post(`/reading/${exam.appointmentId}`, {
        readNumber: '1',
        opinion: 'recall_assessment',
        'left-lesion': 'architectural_distortion',
        'left-location': 'Retroareolar, SECRET-LOCATION',
        'left-concern': '5',
        comment: 'First reader comment',
        session: '25',
        done: '0',
      });
      expect(saved.statusCode).toBe(303);
      expect(saved.headers.location).toBe('/reading/next?session=25&done=1');

      // The second reader's page: no sign of the first opinion anywhere.
      const second = await signedIn('reader2');
      const pageTwo = await second.get(`/reading/${exam.appointmentId}`);
      expect(pageTwo.statusCode).toBe(200);
      expect(pageTwo.body).toContain('Second read');
      expect(pageTwo.body).not.toContain('SECRET-LOCATION');
      expect(pageTwo.body).not.toContain('First reader comment');
      expect(pageTwo.body).not.toContain('Riley Reader');
      expect(
        (await second.post(`/reading/${exam.appointmentId}`, { readNumber: '2', opinion: 'normal' })).statusCode,
      ).toBe(303);
      // Back on the first reader's page: their own opinion, not the second.
      const again = await first.get(`/reading/${exam.appointmentId}`);
      expect(again.body).toContain('SECRET-LOCATION');
      expect(again.body).not.toContain('Second Reader');
      expect(again.body).toContain('You have already read this exam');
      expect((await first.post(`/reading/${exam.appointmentId}`, { opinion: 'normal' })).statusCode).toBe(422);

      const arbiter = await signedIn('reader3');
      const pageThree = await arbiter.get(`/reading/${exam.appointmentId}`);
      expect(pageThree.body).toContain('The two reads');
      expect(pageThree.body).toContain('SECRET-LOCATION');
      expect(pageThree.body).toContain('Second Reader');
      const decided = await arbiter.post(`/reading/${exam.appointmentId}`, {
        readNumber: '3',
        opinion: 'recall_assessment',
        'left-lesion': 'architectural_distortion',
        'left-location': 'Retroareolar',
        'left-concern': '4',
      });
      expect(decided.statusCode).toBe(303);
      expect(decided.headers.location).toBe('/reading');
      const reads = (await examReads(db(), [exam.appointmentId])).get(exam.appointmentId)!;
      expect(readingOutcome(reads, 'discordant').opinion).toBe('recall_assessment');

      const figures = await first.get('/reading/me');
      expect(figures.statusCode).toBe(200);
      expect(figures.body).toContain('Your reading figures');
      expect(figures.body).toContain('5000');

      // Deferral from the page, with its error.
      const other = await screenedExam(db());
      const noReason = await first.post(`/reading/${other.appointmentId}/defer`, { deferReason: '' });
      expect(noReason.statusCode).toBe(400);
      expect(noReason.body).toContain('href="#deferReason"');
      expect(
        (await first.post(`/reading/${other.appointmentId}/defer`, { deferReason: 'Needs priors' })).statusCode,
      ).toBe(303);
      expect((await first.get('/reading')).body).toContain('Needs priors');
      // Deferred: off the reader's list, and named in the audit as deferred.
      expect((await worklistViewed()).deferredAppointmentIds).toEqual([other.appointmentId]);
      expect((await worklistViewed()).appointmentIds).not.toContain(other.appointmentId);
      expect((await first.post(`/reading/${other.appointmentId}/resume`, {})).statusCode).toBe(303);

      // Staff without reading.read are refused.
      const admin = await signedIn('admin');
      expect((await admin.get('/reading')).statusCode).toBe(403);
      expect((await admin.get(`/reading/${exam.appointmentId}`)).statusCode).toBe(403);
      expect((await first.get('/reading/not-a-uuid')).statusCode).toBe(404);
      await issueResult(exam);
      await issueResult(other);
    });
  });
});
