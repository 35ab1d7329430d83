import type { FastifyInstance } from 'fastify';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StaffUser } from '../../src/store/accounts.js';
import { bookAppointment, listClinics, suitableClinics } from '../../src/store/clinics.js';
import { RuleError } from '../../src/store/errors.js';
import { issueResult, issueResults, resultsToIssue } from '../../src/store/results.js';
import { BACKENDS, freshDatabase } from '../support/database.js';
import { moreReaders, screenedExam, type ScreenedExam } from '../support/exams.js';
import { smallOffice, TODAY, type Office } from '../support/fixtures.js';
import { addClinic, readExam } from '../support/results.js';
import { PageClient, testHub } from '../support/hub-client.js';

describe.each(BACKENDS)('issuing results on %s', (backend) => {
  let database: Awaited<ReturnType<typeof freshDatabase>>;
  let office: Office;
  let readers: StaffUser[];
  let app: FastifyInstance;
  const db = () => database.db;
  const clinics: Record<string, string> = {};

  beforeAll(async () => {
    database = await freshDatabase(backend);
    office = await smallOffice(db());
    readers = [office.users.reader, ...(await moreReaders(db()))];
    // Screening exams (screenedExam) are on 16 November at the static site: assessment is due by 7 December. Today
    // is 23 November: a follow-up is booked from 26 November (3 days' notice), never tomorrow.
    clinics.assessmentTomorrow = await addClinic(db(), {
      site: 'static-1',
      location: 'central',
      date: '2026-11-24',
      starts: '10:00',
      ends: '12:00',
      purpose: 'assessment',
    });
    clinics.assessmentSoon = await addClinic(db(), {
      site: 'static-1',
      location: 'central',
      date: '2026-11-26',
      starts: '10:00',
      ends: '10:20',
      purpose: 'assessment',
    });
    clinics.screeningTomorrow = await addClinic(db(), {
      site: 'static-1',
      location: 'central',
      date: '2026-11-24',
      starts: '13:00',
      ends: '16:00',
      purpose: 'screening',
    });
    clinics.assessmentMobile = await addClinic(db(), {
      site: 'mobile-1',
      location: 'car-park',
      date: '2026-11-24',
      starts: '09:00',
      ends: '12:00',
      purpose: 'assessment',
    });
    clinics.assessmentTooLate = await addClinic(db(), {
      site: 'static-1',
      location: 'central',
      date: '2026-12-10',
      starts: '10:00',
      ends: '12:00',
      purpose: 'assessment',
    });
    clinics.screeningMobile = await addClinic(db(), {
      site: 'mobile-1',
      location: 'car-park',
      date: '2026-11-24',
      starts: '13:00',
      ends: '16:00',
      purpose: 'screening',
    });
    clinics.screeningStatic = await addClinic(db(), {
      site: 'static-1',
      location: 'central',
      date: '2026-11-26',
      starts: '09:00',
      ends: '12:00',
      purpose: 'screening',
    });
    app = await testHub(db());
  });
  afterAll(async () => {
    await app.close();
    await database.drop();
  });

  const issue = (exam: ScreenedExam) =>
    issueResult(db(), { appointmentId: exam.appointmentId, policy: 'discordant' }, office.actor, TODAY);
  const communications = (exam: ScreenedExam) =>
    db()
      .selectFrom('communication')
      .selectAll()
      .where('participant_id', '=', exam.participantId)
      .orderBy('recipient')
      .execute();
  const episode = (exam: ScreenedExam) =>
    db().selectFrom('episode').selectAll().where('id', '=', exam.episodeId).executeTakeFirstOrThrow();
  const resultOf = (exam: ScreenedExam) =>
    db().selectFrom('exam_result').selectAll().where('appointment_id', '=', exam.appointmentId).executeTakeFirst();
  const followUp = (appointmentId: string) =>
    db()
      .selectFrom('appointment as a')
      .innerJoin('clinic as c', 'c.id', 'a.clinic_id')
      .select(['a.id', 'a.status', 'a.episode_id', 'c.id as clinic_id', 'c.clinic_date', 'c.site_id', 'c.purpose'])
      .where('a.id', '=', appointmentId)
      .executeTakeFirstOrThrow();

  it('normal: routine recall in 36 months, episode closed (SC, RR), her letter and her GP message queued, once', async () => {
    const exam = await screenedExam(db());
    await readExam(db(), exam, readers, ['normal', 'normal']);
    const issued = await issue(exam);
    expect(issued).toMatchObject({ alreadyIssued: false, result: 'routine_recall', nextTestDue: '2029-11-16' });
    expect(issued.followUp).toBeNull();
    expect(await resultOf(exam)).toMatchObject({
      result: 'routine_recall',
      next_test_due: '2029-11-16',
      follow_up_appointment_id: null,
      follow_up_problem: null,
      issued_by: office.users.admin.id,
    });
    expect(await episode(exam)).toMatchObject({ closed_on: TODAY, end_code: 'SC', final_action: 'RR' });
    const sent = await communications(exam);
    expect(sent.map((c) => [c.recipient, c.channel, c.kind, c.status, c.gp_practice_code, c.format])).toEqual([
      ['gp', 'mesh', 'result_normal', 'queued', 'Y00001', null],
      ['participant', 'letter', 'result_normal', 'queued', null, 'standard'],
    ]);
    expect(sent.every((c) => c.appointment_id === exam.appointmentId && c.episode_id === exam.episodeId)).toBe(true);
    const audit = await db()
      .selectFrom('audit_event')
      .selectAll()
      .where('action', '=', 'result.issue')
      .where('entity_id', '=', exam.appointmentId)
      .execute();
    expect(audit).toHaveLength(1);
    expect(audit[0]!.participant_id).toBe(exam.participantId);

    // Again: nothing changes, and it says when it was issued.
    const again = await issue(exam);
    expect(again).toMatchObject({ alreadyIssued: true, result: 'routine_recall', nextTestDue: '2029-11-16' });
    expect(await communications(exam)).toHaveLength(2);
    expect(
      await db()
        .selectFrom('audit_event')
        .select('id')
        .where('action', '=', 'result.issue')
        .where('entity_id', '=', exam.appointmentId)
        .execute(),
    ).toHaveLength(1);
  });

  it('very high risk: routine recall in 12 months; a large print letter for her; no GP message without a GP', async () => {
    const exam = await screenedExam(db());
    await db()
      .updateTable('participant')
      .set({ very_high_risk: true, gp_practice_code: null })
      .where('id', '=', exam.participantId)
      .execute();
    await db()
      .insertInto('record_item')
      .values({
        participant_id: exam.participantId,
        category: 'communication',
        kind: 'large_print',
        source: 'participant',
        source_date: '2026-01-01',
      })
      .execute();
    await readExam(db(), exam, readers, ['normal', 'normal']);
    const issued = await issue(exam);
    expect(issued.nextTestDue).toBe('2027-11-16');
    expect(issued.notes).toEqual(['No GP message: she has no registered GP practice']);
    const sent = await communications(exam);
    expect(sent.map((c) => [c.recipient, c.format])).toEqual([['participant', 'large_print']]);
  });

  it('technical recall: a screening appointment at the same site 3 to 28 days on, in the same episode', async () => {
    const exam = await screenedExam(db());
    await readExam(db(), exam, readers, ['technical_recall', 'technical_recall']);
    const issued = await issue(exam);
    expect(issued.result).toBe('technical_recall');
    expect(issued.followUpProblem).toBeNull();
    // Not the earlier assessment clinic at the same site, nor the earlier screening clinic of the mobile unit, nor
    // the same site's screening clinic tomorrow (before her letter could reach her).
    const booked = await followUp(issued.followUp!.appointmentId);
    expect(booked).toMatchObject({
      clinic_id: clinics.screeningStatic,
      purpose: 'screening',
      site_id: 'static-1',
      clinic_date: '2026-11-26',
      status: 'scheduled',
      episode_id: exam.episodeId,
    });
    expect(await resultOf(exam)).toMatchObject({ follow_up_appointment_id: booked.id, next_test_due: null });
    expect((await episode(exam)).closed_on).toBeNull();
    expect((await communications(exam)).map((c) => c.kind)).toEqual([
      'result_technical_recall',
      'result_technical_recall',
    ]);
  });

  it('recall to assessment: an assessment clinic at a static site 3 days on to 21 days after screening, else says why', async () => {
    const exams = [await screenedExam(db()), await screenedExam(db()), await screenedExam(db())];
    for (const exam of exams) await readExam(db(), exam, readers, ['recall_assessment', 'recall_assessment']);
    const [first, second, third] = [await issue(exams[0]!), await issue(exams[1]!), await issue(exams[2]!)];
    // The static site's assessment clinic on 24 November has two slots: the first two women have them.
    for (const [i, issued] of [first, second].entries()) {
      expect(issued.followUpProblem).toBeNull();
      const booked = await followUp(issued.followUp!.appointmentId);
      expect(booked).toMatchObject({
        clinic_id: clinics.assessmentSoon,
        purpose: 'assessment',
        site_id: 'static-1',
        episode_id: exams[i]!.episodeId,
      });
      expect(booked.clinic_date).toBe('2026-11-26');
    }
    // The third: not tomorrow's clinic (it has room, but too soon for a letter), not the mobile unit's assessment
    // clinic, not a screening clinic, not 10 December (after 21 days).
    expect(third.followUp).toBeNull();
    expect(third.followUpProblem).toBe(
      'No assessment clinic has room for her between 26 November 2026 and 7 December 2026: book her assessment by hand',
    );
    expect(await resultOf(exams[2]!)).toMatchObject({
      result: 'recall_assessment',
      follow_up_appointment_id: null,
      follow_up_problem: third.followUpProblem,
    });
    for (const id of [clinics.assessmentTomorrow, clinics.assessmentMobile, clinics.assessmentTooLate]) {
      expect(await db().selectFrom('appointment').select('id').where('clinic_id', '=', id!).execute()).toEqual([]);
    }
    // Still issued: her letter and her GP's message are queued all the same.
    expect((await communications(exams[2]!)).map((c) => c.kind)).toEqual(['result_assessment', 'result_assessment']);
    for (const exam of exams) expect((await episode(exam)).closed_on).toBeNull();
  });

  it('recall to assessment more than 21 days after screening: issued, and says the standard cannot be met', async () => {
    const exam = await screenedExam(db(), { on: '2026-10-26' });
    await readExam(db(), exam, readers, ['recall_assessment', 'recall_assessment']);
    const issued = await issue(exam);
    expect(issued.followUp).toBeNull();
    expect(issued.followUpProblem).toBe(
      'The 21 days after her screening ended on 16 November 2026: book her assessment by hand, as soon as possible',
    );
  });

  it('recall to assessment when the 21 days end within 3 days: issued, nothing booked, and says why', async () => {
    // Screened on 3 November: the standard's last day is tomorrow, too soon for a letter; tomorrow's clinic has room.
    const exam = await screenedExam(db(), { on: '2026-11-03' });
    await readExam(db(), exam, readers, ['recall_assessment', 'recall_assessment']);
    const issued = await issue(exam);
    expect(issued.followUp).toBeNull();
    expect(issued.followUpProblem).toBe(
      "The 21 days after her screening end on 24 November 2026, too soon to give her 3 days' notice by letter: book her assessment by hand and tell her by phone",
    );
    expect(
      await db().selectFrom('appointment').select('id').where('clinic_id', '=', clinics.assessmentTomorrow!).execute(),
    ).toEqual([]);
  });

  it('refuses a result while the reads disagree without arbitration, or with fewer than two reads', async () => {
    const exam = await screenedExam(db());
    await expect(issue(exam)).rejects.toBeInstanceOf(RuleError);
    await expect(issue(exam)).rejects.toThrow(/no reads/);
    await readExam(db(), exam, readers, ['normal']);
    await expect(issue(exam)).rejects.toThrow(/only one read/);
    const other = await screenedExam(db());
    await readExam(db(), other, readers, ['normal', 'recall_assessment']);
    await expect(issue(other)).rejects.toThrow('The two readers disagree: the result waits for arbitration');
    expect(await resultOf(other)).toBeUndefined();
    expect(await communications(other)).toEqual([]);
    // The page refuses it too: 422, with the reason in the error summary.
    const client = new PageClient(app);
    await client.signIn('admin');
    await client.get('/results');
    const refused = await client.post(`/results/${other.appointmentId}/issue`, {});
    expect(refused.statusCode).toBe(422);
    expect(refused.body).toContain('There is a problem');
    expect(refused.body).toContain('Not issued: The two readers disagree: the result waits for arbitration.');
    expect(await resultOf(other)).toBeUndefined();

    // The arbiter decides: the result follows the arbiter.
    await db()
      .insertInto('reading_opinion')
      .values({
        appointment_id: other.appointmentId,
        episode_id: other.episodeId,
        read_number: 3,
        reader_id: readers[2]!.id,
        opinion: 'normal',
        details: '{}',
      })
      .execute();
    expect(await issue(other)).toMatchObject({ result: 'routine_recall', alreadyIssued: false });
  });

  it('an exam without images, or an appointment that is not an exam, has no result to issue', async () => {
    const noImages = await screenedExam(db(), { imagesAvailable: false });
    await readExam(db(), noImages, readers, ['normal', 'normal']);
    await expect(issue(noImages)).rejects.toThrow(/have not reached the hub/);
    const booked = await bookAppointment(
      db(),
      { clinicId: clinics.screeningStatic!, participantId: (await screenedExam(db())).participantId },
      office.actor,
      TODAY,
    );
    await expect(
      issueResult(db(), { appointmentId: booked, policy: 'discordant' }, office.actor, TODAY),
    ).rejects.toThrow(/not a screening exam/);
  });

  it('two people issuing one result at once: issued once', async () => {
    const exam = await screenedExam(db());
    await readExam(db(), exam, readers, ['normal', 'normal']);
    const both = await Promise.all([issue(exam), issue(exam)]);
    expect(both.map((b) => b.alreadyIssued).sort()).toEqual([false, true]);
    expect(await communications(exam)).toHaveLength(2);
  });

  it('lists decided exams oldest first with counts of those waiting, and issues a batch from the page', async () => {
    const older = await screenedExam(db(), { on: '2026-11-10' });
    const newer = await screenedExam(db(), { on: '2026-11-18' });
    const waiting = await screenedExam(db());
    const disagreeing = await screenedExam(db());
    const agreeingTechnical = await screenedExam(db());
    await readExam(db(), older, readers, ['normal', 'normal']);
    await readExam(db(), newer, readers, ['recall_assessment', 'technical_recall', 'technical_recall']);
    await readExam(db(), waiting, readers, ['normal']);
    await readExam(db(), disagreeing, readers, ['normal', 'technical_recall']);
    await readExam(db(), agreeingTechnical, readers, ['technical_recall', 'technical_recall']);
    const list = await resultsToIssue(db(), 'discordant', office.actor);
    const ids = list.decided.map((d) => d.appointmentId);
    expect(ids.indexOf(older.appointmentId)).toBeLessThan(ids.indexOf(newer.appointmentId));
    expect(ids).not.toContain(waiting.appointmentId);
    expect(ids).not.toContain(disagreeing.appointmentId);
    expect(list.decided.find((d) => d.appointmentId === newer.appointmentId)).toMatchObject({
      opinion: 'technical_recall',
      result: 'technical_recall',
      arbitrated: true,
    });
    expect(list.counts.second_read).toBeGreaterThanOrEqual(1);
    expect(list.counts.arbitration).toBeGreaterThanOrEqual(1);
    expect(ids).toContain(agreeingTechnical.appointmentId);
    // Under 'all_non_normal', agreeing technical recalls wait for an arbiter instead.
    const strict = await resultsToIssue(db(), 'all_non_normal', office.actor);
    expect(strict.decided.map((d) => d.appointmentId)).not.toContain(agreeingTechnical.appointmentId);
    expect(strict.counts.arbitration).toBeGreaterThan(list.counts.arbitration);

    const client = new PageClient(app);
    await client.signIn('admin');
    const shown = await client.get('/results');
    expect(shown.statusCode).toBe(200);
    expect(shown.body).toContain(`Ready to issue (${list.counts.decided})`);
    const secondRead = /Waiting for the second read[\s\S]*?<dd[^>]*>\s*(\d+)/.exec(shown.body)?.[1];
    expect(Number(secondRead)).toBe(list.counts.second_read);
    // "Issue all" posts one appointmentId field an exam shown (here one: PageClient's form cannot repeat a key).
    const response = await client.post('/results/issue', { appointmentId: older.appointmentId });
    expect(response.statusCode).toBe(303);
    expect(await resultOf(older)).toMatchObject({ result: 'routine_recall' });
    // A batch with an exam still waiting for reads: the decided one is issued, that one refused, none doubled.
    const batch = await issueResults(
      db(),
      { appointmentIds: [newer.appointmentId, waiting.appointmentId, older.appointmentId], policy: 'discordant' },
      office.actor,
      TODAY,
    );
    expect(batch.issued.map((i) => i.appointmentId)).toEqual([newer.appointmentId]);
    expect(batch.already.map((i) => i.appointmentId)).toEqual([older.appointmentId]);
    expect(batch.refused).toEqual([
      { appointmentId: waiting.appointmentId, message: expect.stringMatching(/only one read/) },
    ]);
    const after = await client.get('/results');
    expect(after.body).toContain('Issued recently');
    expect(after.body).toContain('No appointment booked');
    // The view's audit names the results shown as issued recently, as well as those to issue.
    const viewed = await db()
      .selectFrom('audit_event')
      .select('detail')
      .where('action', '=', 'results.view')
      .orderBy('id', 'desc')
      .executeTakeFirstOrThrow();
    const recent = (viewed.detail as { recent: string[] }).recent;
    expect(recent).toEqual(expect.arrayContaining([older.appointmentId, newer.appointmentId]));
    const again = await resultsToIssue(db(), 'discordant', office.actor);
    expect(again.recent.map((r) => r.appointment_id)).toEqual(recent);

    // Film readers record assessment but do not issue results.
    const reader = new PageClient(app);
    await reader.signIn('reader');
    expect((await reader.get('/results')).statusCode).toBe(403);
  });

  it('screening bookings never land in an assessment clinic; assessment bookings only in one', async () => {
    const exam = await screenedExam(db());
    // Staff booking into an assessment clinic is refused; the screening lists leave them out.
    await expect(
      bookAppointment(
        db(),
        { clinicId: clinics.assessmentTooLate!, participantId: exam.participantId },
        office.actor,
        TODAY,
      ),
    ).rejects.toThrow('That is an assessment clinic: choose a screening clinic');
    await expect(
      bookAppointment(
        db(),
        { clinicId: clinics.screeningStatic!, participantId: exam.participantId, purpose: 'assessment' },
        office.actor,
        TODAY,
      ),
    ).rejects.toThrow('That is a screening clinic: choose an assessment clinic');
    const screening = await listClinics(db(), { from: TODAY, to: '2026-12-31' });
    expect(screening.every((c) => c.purpose === 'screening')).toBe(true);
    expect(screening.map((c) => c.id)).toContain(clinics.screeningStatic);
    const all = await listClinics(db(), { from: TODAY, to: '2026-12-31', purpose: 'all' });
    expect(all.map((c) => c.id)).toContain(clinics.assessmentTooLate);
    const offered = await suitableClinics(db(), exam.participantId, TODAY, '2026-12-31');
    expect(offered.clinics.every((c) => c.purpose === 'screening')).toBe(true);
    const assessment = await suitableClinics(db(), exam.participantId, TODAY, '2026-12-31', {
      purpose: 'assessment',
      siteIds: ['static-1'],
    });
    expect(assessment.clinics.map((c) => c.id)).toEqual([clinics.assessmentTomorrow, clinics.assessmentTooLate]);
    // Nothing was written by the refusals.
    expect(
      (
        await sql<{
          n: number;
        }>`select count(*)::int as n from appointment where participant_id = ${exam.participantId}`.execute(db())
      ).rows[0]!.n,
    ).toBe(1);
  });
});
