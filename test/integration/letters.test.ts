import { createHash } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { PDFDocument } from 'pdf-lib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { layoutLetter } from '../../src/letters/pdf.js';
import type { ResultLetter } from '../../src/pathway/result-letters.js';
import type { CommunicationKind, ExamResult } from '../../src/pathway/screening-outcomes.js';
import type { OutcomeInput } from '../../src/pathway/assessment.js';
import { recordOutcome } from '../../src/store/assessment.js';
import {
  commitLetters,
  LetterIntegrityError,
  letterPdf,
  participantLetters,
  prepareLetters,
  printRunPdf,
  queuedLetters,
  recentLetters,
  recentRuns,
  sendLetters,
} from '../../src/store/letters.js';
import { BACKENDS, freshDatabase } from '../support/database.js';
import { screenedExam, type ScreenedExam } from '../support/exams.js';
import { smallOffice, TODAY, type Office } from '../support/fixtures.js';
import { PageClient, testHub } from '../support/hub-client.js';

const sha = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

describe.each(BACKENDS)('participant letters on %s', (backend) => {
  let database: Awaited<ReturnType<typeof freshDatabase>>;
  let office: Office;
  let app: FastifyInstance;
  let assessmentClinic: string;
  let slot = 0;
  beforeAll(async () => {
    database = await freshDatabase(backend);
    office = await smallOffice(database.db);
    app = await testHub(database.db);
    assessmentClinic = (
      await database.db
        .insertInto('clinic')
        .values({
          site_id: 'static-1',
          location_id: 'central',
          clinic_date: '2026-12-03',
          starts_at: '09:00',
          ends_at: '17:00',
          slot_minutes: 20,
          purpose: 'assessment',
        })
        .returning('id')
        .executeTakeFirstOrThrow()
    ).id;
  });
  afterAll(async () => {
    await app.close();
    await database.drop();
  });
  const db = () => database.db;

  /** A screened exam with its result issued and her letter (and her GP's message) queued, as the results module does. */
  async function resulted(
    result: ExamResult,
    options: {
      participant?: NonNullable<Parameters<typeof screenedExam>[1]>['participant'];
      followUp?: boolean;
      items?: [string, string | null][];
    } = {},
  ): Promise<ScreenedExam & { letterId: string; followUpId: string | null }> {
    const exam = await screenedExam(db(), { participant: options.participant });
    for (const [kind, value] of options.items ?? [])
      await db()
        .insertInto('record_item')
        .values({
          participant_id: exam.participantId,
          category: 'communication',
          kind,
          side: null,
          value,
          source: 'participant',
          source_date: '2026-01-01',
        })
        .execute();
    let followUpId: string | null = null;
    if (options.followUp) {
      const index = slot++;
      followUpId = (
        await db()
          .insertInto('appointment')
          .values({
            clinic_id: assessmentClinic,
            participant_id: exam.participantId,
            episode_id: exam.episodeId,
            slot_index: index,
            slot_count: 1,
            status: 'scheduled',
            accession_number: `FU${exam.accessionNumber}`,
          })
          .returning('id')
          .executeTakeFirstOrThrow()
      ).id;
      await db()
        .insertInto('appointment_slot')
        .values({ clinic_id: assessmentClinic, slot_index: index, appointment_id: followUpId })
        .execute();
    }
    await db()
      .insertInto('exam_result')
      .values({
        appointment_id: exam.appointmentId,
        episode_id: exam.episodeId,
        result,
        next_test_due: result === 'routine_recall' ? '2029-11-16' : null,
        follow_up_appointment_id: followUpId,
        follow_up_problem: result !== 'routine_recall' && !options.followUp ? 'no assessment clinic with room' : null,
        issued_by: office.users.admin.id,
      })
      .execute();
    const kind: CommunicationKind = (
      {
        routine_recall: 'result_normal',
        technical_recall: 'result_technical_recall',
        recall_assessment: 'result_assessment',
      } as const
    )[result];
    const letter = await db()
      .insertInto('communication')
      .values({
        participant_id: exam.participantId,
        episode_id: exam.episodeId,
        appointment_id: exam.appointmentId,
        recipient: 'participant',
        kind,
        channel: 'letter',
        content: null,
      })
      .returning('id')
      .executeTakeFirstOrThrow();
    await db()
      .insertInto('communication')
      .values({
        participant_id: exam.participantId,
        episode_id: exam.episodeId,
        appointment_id: exam.appointmentId,
        recipient: 'gp',
        kind,
        channel: 'mesh',
        gp_practice_code: 'Y00001',
        content: null,
      })
      .execute();
    return { ...exam, letterId: letter.id, followUpId };
  }

  const row = (id: string) =>
    db().selectFrom('communication').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
  const auditOf = (action: string, entityId: string) =>
    db().selectFrom('audit_event').selectAll().where('action', '=', action).where('entity_id', '=', entityId).execute();

  it('sends a print run in each format, records what was sent, and shows each letter again exactly as sent', async () => {
    const normal = await resulted('routine_recall');
    const large = await resulted('routine_recall', { items: [['large_print', null]] });
    const braille = await resulted('technical_recall', { followUp: true, items: [['braille', null]] });
    const portuguese = await resulted('routine_recall', { items: [['language', 'Portuguese']] });
    const polish = await resulted('recall_assessment', { followUp: true, items: [['interpreter', 'Polish']] });
    const easy = await resulted('recall_assessment', { followUp: true, items: [['easy_read', null]] });
    const noAppointment = await resulted('technical_recall');
    const died = await resulted('routine_recall', { participant: { date_of_death: '2026-11-20' } });

    const queue = await queuedLetters(db(), { office: 'TST', today: TODAY });
    expect(queue.letters).toHaveLength(8);
    const formatOf = (id: string) => queue.letters.find((l) => l.id === id);
    expect(formatOf(large.letterId)?.format).toBe('large_print');
    expect(formatOf(polish.letterId)).toMatchObject({ format: 'translated', language: 'Polish' });
    expect(formatOf(noAppointment.letterId)?.block).toEqual({
      status: 'held',
      reason: 'No appointment booked: no assessment clinic with room',
    });
    expect(formatOf(died.letterId)?.block).toEqual({ status: 'failed', reason: 'Died on 20 November 2026' });
    const count = (kind: CommunicationKind, format: string) =>
      queue.counts.filter((c) => c.kind === kind && c.format === format).reduce((n, c) => n + c.count, 0);
    expect(count('result_normal', 'standard')).toBe(1);
    expect(count('result_normal', 'large_print')).toBe(1);
    expect(count('result_normal', 'translated')).toBe(1);
    expect(count('result_technical_recall', 'braille')).toBe(1);
    expect(count('result_assessment', 'translated')).toBe(1);
    expect(count('result_assessment', 'easy_read')).toBe(1);
    expect(queue.counts.reduce((n, c) => n + c.count, 0)).toBe(6);

    const result = await sendLetters(db(), { office: 'TST' }, office.actor, TODAY);
    expect(result.printed.map((l) => l.id).sort()).toEqual(
      [normal.letterId, large.letterId, portuguese.letterId, easy.letterId].sort(),
    );
    expect(result.services.map((l) => [l.id, l.service])).toEqual(
      expect.arrayContaining([
        [braille.letterId, 'transcription'],
        [polish.letterId, 'translation'],
      ]),
    );
    expect(result.services).toHaveLength(2);
    expect(result.failed).toEqual([expect.objectContaining({ id: died.letterId, reason: 'Died on 20 November 2026' })]);
    expect(result.held.map((h) => h.id)).toEqual([noAppointment.letterId]);
    expect(result.runId).not.toBeNull();

    // The print run: the printed letters, one after another, and nothing for a service.
    const run = await PDFDocument.load(result.pdf!);
    const printedLetters = await Promise.all(
      result.printed.map(async (l) => (await row(l.id)).content as ResultLetter),
    );
    expect(run.getPageCount()).toBe(printedLetters.reduce((n, l) => n + layoutLetter(l).length, 0));
    expect(run.getPage(0).getSize().width).toBeCloseTo(595.28, 1);

    // Each row: its words, hash, format and language, sent; the GP messages untouched.
    const sent = await row(large.letterId);
    expect(sent).toMatchObject({
      status: 'sent',
      format: 'large_print',
      language: null,
      attempts: 1,
      last_error: null,
    });
    expect(new Date(sent.sent_at!).getTime()).toBe(result.runId);
    expect((sent.content as ResultLetter).to[0]).toBe('Jane Testwoman');
    const pt = await row(portuguese.letterId);
    expect(pt).toMatchObject({ format: 'translated', language: 'Portuguese' });
    expect((pt.content as ResultLetter).text.lang).toBe('pt-PT');
    const pl = await row(polish.letterId);
    expect(pl).toMatchObject({ format: 'translated', language: 'Polish' });
    expect((pl.content as ResultLetter).text.paragraphs).toContain(
      'We will book a Polish interpreter for your appointment.',
    );
    const br = (await row(braille.letterId)).content as ResultLetter;
    expect(br.coverLine).toContain('braille');
    expect(br.text.paragraphs.join(' ')).toContain(
      'on 3 December 2026 at 09:00 at Central Breast Unit, 1 Infirmary Street, LS1 3EX',
    );
    expect((await row(easy.letterId)).content as ResultLetter).toMatchObject({ format: 'easy_read' });
    const gp = await db().selectFrom('communication').select(['status']).where('channel', '=', 'mesh').execute();
    expect(gp.every((g) => g.status === 'queued')).toBe(true);
    expect(gp).toHaveLength(8);

    // Not sent: she died (failed, with the reason); no appointment (still queued, no content).
    expect(await row(died.letterId)).toMatchObject({
      status: 'failed',
      last_error: 'Died on 20 November 2026',
      content: null,
    });
    expect(await row(noAppointment.letterId)).toMatchObject({ status: 'queued', content: null, sent_at: null });

    // Shown again: rendered from the stored words, byte for byte the letter sent.
    for (const l of [...result.printed, ...result.services]) {
      const again = await letterPdf(db(), l.id, office.actor);
      expect(sha(again.pdf)).toBe((await row(l.id)).content_sha256);
      expect(sha(again.pdf)).toBe(l.sha256);
      expect(again.filename).toMatch(/^breast-screening-result-[a-z-]+-2026-11-23-[0-9a-f]{8}\.pdf$/);
    }
    // The run again: the same bytes as the PDF handed out.
    const runAgain = await printRunPdf(db(), result.runId!, office.actor);
    expect(sha(runAgain.pdf)).toBe(sha(result.pdf!));

    // Audited: each send, the failure and each download, against her record.
    const sends = await auditOf('letter.send', large.letterId);
    expect(sends).toHaveLength(1);
    expect(sends[0]).toMatchObject({ participant_id: large.participantId, username: 'admin' });
    expect(await auditOf('letter.fail', died.letterId)).toHaveLength(1);
    expect(await auditOf('letter.download', large.letterId)).toHaveLength(1);

    // The lists.
    expect((await recentLetters(db(), 'TST', 'failed')).map((l) => [l.id, l.last_error])).toEqual([
      [died.letterId, 'Died on 20 November 2026'],
    ]);
    expect(await recentLetters(db(), 'TST', 'sent')).toHaveLength(6);
    expect(await recentRuns(db(), 'TST')).toEqual([
      expect.objectContaining({ runId: result.runId, letters: 6, printed: 4, services: 2 }),
    ]);
    expect((await participantLetters(db(), large.participantId)).map((l) => l.status)).toEqual(['sent']);

    // Nothing more to send but the held letter; sending again sends nothing and changes nothing.
    const again = await sendLetters(db(), { office: 'TST' }, office.actor, TODAY);
    expect(again).toMatchObject({ runId: null, printed: [], services: [], failed: [], pdf: null });
    expect(again.held.map((h) => h.id)).toEqual([noAppointment.letterId]);
    expect((await row(large.letterId)).attempts).toBe(1);
  });

  it('sends only the letters asked for, and once booked a held letter goes with its appointment', async () => {
    const a = await resulted('routine_recall');
    const b = await resulted('routine_recall');
    const one = await sendLetters(db(), { ids: [a.letterId] }, office.actor, TODAY);
    expect(one.printed.map((l) => l.id)).toEqual([a.letterId]);
    expect((await row(b.letterId)).status).toBe('queued');
    // Asked again for a letter already sent: nothing happens.
    const none = await sendLetters(db(), { ids: [a.letterId] }, office.actor, TODAY);
    expect(none.runId).toBeNull();

    const held = await resulted('recall_assessment');
    expect((await sendLetters(db(), { ids: [held.letterId] }, office.actor, TODAY)).held).toHaveLength(1);
    const booked = await resulted('recall_assessment', { followUp: true });
    await db()
      .updateTable('exam_result')
      .set({ follow_up_appointment_id: booked.followUpId, follow_up_problem: null })
      .where('appointment_id', '=', held.appointmentId)
      .execute();
    const sent = await sendLetters(db(), { ids: [held.letterId, b.letterId, booked.letterId] }, office.actor, TODAY);
    expect(sent.printed.map((l) => l.id).sort()).toEqual([held.letterId, b.letterId, booked.letterId].sort());
    expect(sent.runId).toBeGreaterThan(one.runId!);
    const words = ((await row(held.letterId)).content as ResultLetter).text.paragraphs.join(' ');
    expect(words).toContain('Your appointment is on 3 December 2026');
    expect(words).toContain('about 4 in every 5 women');
  });

  it('writes an assessment outcome letter from the current outcome', async () => {
    const exam = await screenedExam(db());
    const first = await db()
      .insertInto('assessment_outcome')
      .values({ episode_id: exam.episodeId, outcome: 'normal', decided_on: '2026-11-20' })
      .returning('id')
      .executeTakeFirstOrThrow();
    await db()
      .updateTable('assessment_outcome')
      .set({ superseded_at: new Date() })
      .where('id', '=', first.id)
      .execute();
    await db()
      .insertInto('assessment_outcome')
      .values({
        episode_id: exam.episodeId,
        outcome: 'benign',
        early_recall_months: 12,
        decided_on: '2026-11-21',
        replaces_id: first.id,
      })
      .execute();
    const letter = await db()
      .insertInto('communication')
      .values({
        participant_id: exam.participantId,
        episode_id: exam.episodeId,
        appointment_id: null,
        recipient: 'participant',
        kind: 'assessment_outcome',
        channel: 'letter',
        content: null,
      })
      .returning('id')
      .executeTakeFirstOrThrow();
    const result = await sendLetters(db(), { ids: [letter.id] }, office.actor, TODAY);
    expect(result.printed).toHaveLength(1);
    const words = ((await row(letter.id)).content as ResultLetter).text.paragraphs.join(' ');
    expect(words).toContain('benign means it is not cancer');
    expect(words).toContain('see you again in 12 months');
  });

  const outcomeInput = (more: Partial<OutcomeInput> = {}): OutcomeInput => ({
    outcome: 'normal',
    side: null,
    sizeMm: null,
    grade: null,
    earlyRecallMonths: null,
    referredToTreatment: false,
    treatmentProvider: null,
    decidedOn: '2026-11-20',
    ...more,
  });
  const outcomeLetter = async (exam: ScreenedExam) =>
    (
      await db()
        .selectFrom('communication')
        .select('id')
        .where('episode_id', '=', exam.episodeId)
        .where('kind', '=', 'assessment_outcome')
        .where('recipient', '=', 'participant')
        .where('status', '=', 'queued')
        .executeTakeFirstOrThrow()
    ).id;
  let clinicMinute = 0;
  /** A clinic of its own on a day, and her appointment in it (in her episode). */
  async function appointmentOn(exam: ScreenedExam, date: string, purpose: 'screening' | 'assessment') {
    const m = 18 * 60 + clinicMinute++;
    const clinic = await db()
      .insertInto('clinic')
      .values({
        site_id: 'static-1',
        location_id: 'central',
        clinic_date: date,
        starts_at: `${String(Math.floor(m / 60)).padStart(2, '0')}:${String(m % 60).padStart(2, '0')}`,
        ends_at: '23:59',
        slot_minutes: 10,
        purpose,
      })
      .returning('id')
      .executeTakeFirstOrThrow();
    return (
      await db()
        .insertInto('appointment')
        .values({
          clinic_id: clinic.id,
          participant_id: exam.participantId,
          episode_id: exam.episodeId,
          slot_index: 0,
          slot_count: 1,
          status: 'scheduled',
          accession_number: `LT${exam.accessionNumber}${clinicMinute}`,
        })
        .returning('id')
        .executeTakeFirstOrThrow()
    ).id;
  }

  it('refuses to show a letter whose stored words no longer give the PDF that was sent', async () => {
    const exam = await resulted('routine_recall');
    await sendLetters(db(), { ids: [exam.letterId] }, office.actor, TODAY);
    const stored = (await row(exam.letterId)).content as ResultLetter;
    stored.text.paragraphs[1] = 'Something else entirely.';
    await db()
      .updateTable('communication')
      .set({ content: JSON.stringify(stored) })
      .where('id', '=', exam.letterId)
      .execute();
    await expect(letterPdf(db(), exam.letterId, office.actor)).rejects.toThrow(LetterIntegrityError);
    const audit = await auditOf('letter.download', exam.letterId);
    expect(audit.at(-1)?.detail).toMatchObject({ matches: false });
  });

  it('serves the pages: the queue, sending a run, the run and its PDF, and her letter to anyone who can see her', async () => {
    const exam = await resulted('routine_recall');
    const admin = new PageClient(app);
    await admin.signIn('admin');
    const list = await admin.get('/communications');
    expect(list.statusCode).toBe(200);
    expect(list.body).toContain('Ready to send (1)');
    expect(list.body).toContain('href="/communications/gp-messages"');
    expect(list.body).toContain('Not sent');
    const bad = await admin.post('/communications/send', { office: '' });
    expect(bad.statusCode).toBe(422);
    expect(bad.body).toContain('There is a problem');
    expect(bad.body).toContain('Choose a screening office');

    const sent = await admin.post('/communications/send', { office: 'TST' });
    expect(sent.statusCode).toBe(303);
    const runUrl = sent.headers.location as string;
    expect(runUrl).toMatch(/^\/communications\/runs\/\d+\?office=TST$/);
    const runPage = await admin.get(runUrl);
    expect(runPage.statusCode).toBe(200);
    expect(runPage.body).toContain(
      '1 of 2 letters sent: 1 to print, 0 to a transcription or translation service. 1 not sent',
    );
    expect(runPage.body).toContain('Download the print run (PDF, 1 letter)');
    const runId = /\/communications\/runs\/(\d+)/.exec(runUrl)![1];
    const runPdf = await admin.get(`/communications/runs/${runId}.pdf`);
    expect(runPdf.statusCode).toBe(200);
    expect(runPdf.headers['content-type']).toBe('application/pdf');
    expect(runPdf.headers['content-disposition']).toMatch(
      /^attachment; filename="result-letters-print-run-2026-11-23-\d+\.pdf"$/,
    );
    expect(runPdf.rawPayload.subarray(0, 5).toString()).toBe('%PDF-');

    // Her letter: to anyone who may see her record (a mammographer), not to support staff; not found is 404.
    const mammographer = new PageClient(app);
    await mammographer.signIn('mammographer');
    const pdf = await mammographer.get(`/communications/letters/${exam.letterId}.pdf`);
    expect(pdf.statusCode).toBe(200);
    expect(pdf.headers['content-type']).toBe('application/pdf');
    expect(pdf.headers['content-disposition']).toMatch(
      /^attachment; filename="breast-screening-result-normal-2026-11-23-/,
    );
    expect(sha(pdf.rawPayload)).toBe((await row(exam.letterId)).content_sha256);
    expect((await mammographer.get('/communications')).statusCode).toBe(403);
    const support = new PageClient(app);
    await support.signIn('support');
    expect((await support.get(`/communications/letters/${exam.letterId}.pdf`)).statusCode).toBe(403);
    expect((await admin.get('/communications/letters/00000000-0000-4000-8000-000000000000.pdf')).statusCode).toBe(404);
    expect((await admin.get('/communications/letters/not-a-letter')).statusCode).toBe(404);

    const after = await admin.get('/communications?office=TST');
    expect(after.body).toContain('Ready to send (0)');
    expect(after.body).toContain(`/communications/letters/${exam.letterId}.pdf`);
    expect(after.body).toContain(`/communications/runs/${runId}.pdf`);
  });

  it('words her next test from its due date: about a year under very high risk surveillance, after a result or an outcome', async () => {
    const normal = await resulted('routine_recall');
    // Very high risk surveillance: issueResult sets her next test 12 months on.
    await db()
      .updateTable('exam_result')
      .set({ next_test_due: '2027-11-16' })
      .where('appointment_id', '=', normal.appointmentId)
      .execute();
    const recalled = await resulted('recall_assessment', { followUp: true });
    for (const exam of [normal, recalled])
      await db()
        .updateTable('participant')
        .set({ very_high_risk: true })
        .where('id', '=', exam.participantId)
        .execute();
    await recordOutcome(
      db(),
      { episodeId: recalled.episodeId, outcome: outcomeInput(), replacesId: null },
      office.actor,
      TODAY,
    );
    const outcomeId = await outcomeLetter(recalled);
    const sent = await sendLetters(db(), { ids: [normal.letterId, outcomeId] }, office.actor, TODAY);
    expect(sent.printed.map((l) => l.id).sort()).toEqual([normal.letterId, outcomeId].sort());
    for (const id of [normal.letterId, outcomeId]) {
      const words = ((await row(id)).content as ResultLetter).text.paragraphs.join(' ');
      expect(words).toContain('in about a year, around November 2027');
      expect(words).not.toMatch(/3 years/);
    }
    // Not very high risk: 3 years after the screen that recalled her.
    const routine = await resulted('recall_assessment', { followUp: true });
    await recordOutcome(
      db(),
      { episodeId: routine.episodeId, outcome: outcomeInput({ outcome: 'benign', side: 'left' }), replacesId: null },
      office.actor,
      TODAY,
    );
    const routineLetter = await outcomeLetter(routine);
    await sendLetters(db(), { ids: [routineLetter] }, office.actor, TODAY);
    expect(((await row(routineLetter)).content as ResultLetter).text.paragraphs.join(' ')).toContain(
      'in about 3 years, around November 2029',
    );
  });

  it('never marks sent a letter made from an outcome corrected, or an appointment changed, while the run was made', async () => {
    // Corrected by hand (recordOutcome): the letter made from the first outcome is failed, not sent; a new one waits.
    const exam = await resulted('recall_assessment', { followUp: true });
    const first = await recordOutcome(
      db(),
      { episodeId: exam.episodeId, outcome: outcomeInput(), replacesId: null },
      office.actor,
      TODAY,
    );
    const oldLetter = await outcomeLetter(exam);
    const prepared = await prepareLetters(db(), { ids: [oldLetter] }, TODAY);
    expect(prepared.ready.map((r) => r.id)).toEqual([oldLetter]);
    expect(prepared.ready[0]!.letter.text.paragraphs.join(' ')).toContain('showed no signs of cancer');
    await recordOutcome(
      db(),
      {
        episodeId: exam.episodeId,
        outcome: outcomeInput({
          outcome: 'malignant_invasive',
          side: 'left',
          referredToTreatment: true,
          treatmentProvider: 'St James University Hospital',
        }),
        replacesId: first.outcomeId,
      },
      office.actor,
      TODAY,
    );
    const committed = await commitLetters(db(), prepared, office.actor);
    expect(committed).toMatchObject({ printed: [], services: [], skipped: 1, runId: null, pdf: null });
    expect(await row(oldLetter)).toMatchObject({
      status: 'failed',
      last_error: 'Replaced by a corrected outcome',
      content: null,
      sent_at: null,
    });
    const newLetter = await outcomeLetter(exam);
    expect(newLetter).not.toBe(oldLetter);

    // The outcome replaced some other way while the letter stays queued: still not sent from the old words.
    const again = await prepareLetters(db(), { ids: [newLetter] }, TODAY);
    expect(again.ready).toHaveLength(1);
    const current = await db()
      .selectFrom('assessment_outcome')
      .select('id')
      .where('episode_id', '=', exam.episodeId)
      .where('superseded_at', 'is', null)
      .executeTakeFirstOrThrow();
    await db()
      .updateTable('assessment_outcome')
      .set({ superseded_at: new Date() })
      .where('id', '=', current.id)
      .execute();
    await db()
      .insertInto('assessment_outcome')
      .values({ episode_id: exam.episodeId, outcome: 'benign', decided_on: '2026-11-21', replaces_id: current.id })
      .execute();
    expect(await commitLetters(db(), again, office.actor)).toMatchObject({ printed: [], skipped: 1 });
    expect(await row(newLetter)).toMatchObject({ status: 'queued', content: null });
    // The next run makes it from the outcome as it is now.
    await sendLetters(db(), { ids: [newLetter] }, office.actor, TODAY);
    expect(((await row(newLetter)).content as ResultLetter).text.paragraphs.join(' ')).toContain(
      'benign means it is not cancer',
    );

    // An appointment cancelled after its letter was made: not sent.
    const recall = await resulted('technical_recall', { followUp: true });
    const made = await prepareLetters(db(), { ids: [recall.letterId] }, TODAY);
    expect(made.ready).toHaveLength(1);
    await db().updateTable('appointment').set({ status: 'cancelled' }).where('id', '=', recall.followUpId).execute();
    expect(await commitLetters(db(), made, office.actor)).toMatchObject({ printed: [], skipped: 1 });
    expect(await row(recall.letterId)).toMatchObject({ status: 'queued', content: null });
  });

  it('holds a letter whose appointment is today or has passed, and sends it once a later one is booked', async () => {
    const today = await resulted('technical_recall');
    const passed = await resulted('recall_assessment');
    for (const [exam, date, purpose] of [
      [today, TODAY, 'screening'],
      [passed, '2026-11-20', 'assessment'],
    ] as const) {
      const id = await appointmentOn(exam, date, purpose);
      await db()
        .updateTable('exam_result')
        .set({ follow_up_appointment_id: id, follow_up_problem: null })
        .where('appointment_id', '=', exam.appointmentId)
        .execute();
    }
    const first = await sendLetters(db(), { ids: [today.letterId, passed.letterId] }, office.actor, TODAY);
    expect(first.printed).toEqual([]);
    expect(first.held).toEqual([
      expect.objectContaining({
        id: today.letterId,
        reason:
          'Her appointment is today (23 November 2026), too soon for a letter: book her a new one, or tell her by phone',
      }),
      expect.objectContaining({
        id: passed.letterId,
        reason: 'Her appointment on 20 November 2026 has passed: book her a new one',
      }),
    ]);
    expect(await row(today.letterId)).toMatchObject({ status: 'queued', content: null });
    // Booked again by hand, in her episode: the letter goes with the new appointment.
    await appointmentOn(today, '2026-12-01', 'screening');
    await appointmentOn(passed, '2026-12-02', 'assessment');
    const second = await sendLetters(db(), { ids: [today.letterId, passed.letterId] }, office.actor, TODAY);
    expect(second.held).toEqual([]);
    expect(second.printed.map((l) => l.id).sort()).toEqual([today.letterId, passed.letterId].sort());
    expect(((await row(today.letterId)).content as ResultLetter).text.paragraphs.join(' ')).toContain(
      'on 1 December 2026 at',
    );
    expect(((await row(passed.letterId)).content as ResultLetter).text.paragraphs.join(' ')).toContain(
      'Your appointment is on 2 December 2026',
    );
  });

  it('names a letter that does not match by its id, never by her name: in the error and in the log', async () => {
    const exam = await resulted('routine_recall', {
      participant: { given_name: 'Philippa', family_name: 'Loggable' },
    });
    const run = await sendLetters(db(), { ids: [exam.letterId] }, office.actor, TODAY);
    const stored = (await row(exam.letterId)).content as ResultLetter;
    stored.text.paragraphs[1] = 'Something else entirely.';
    await db()
      .updateTable('communication')
      .set({ content: JSON.stringify(stored) })
      .where('id', '=', exam.letterId)
      .execute();
    for (const attempt of [printRunPdf(db(), run.runId!, office.actor), letterPdf(db(), exam.letterId, office.actor)]) {
      const error = (await attempt.catch((e: unknown) => e)) as LetterIntegrityError;
      expect(error).toBeInstanceOf(LetterIntegrityError);
      expect(error.communicationId).toBe(exam.letterId);
      expect(error.message).toContain(exam.letterId);
      expect(error.message).not.toMatch(/Philippa|Loggable/);
    }
    // The pages log it: the log line names the letter, not her.
    const lines: string[] = [];
    const logged = await testHub(db(), { logger: { level: 'error', stream: { write: (l: string) => lines.push(l) } } });
    try {
      const admin = new PageClient(logged);
      await admin.signIn('admin');
      for (const url of [`/communications/runs/${run.runId}.pdf`, `/communications/letters/${exam.letterId}.pdf`]) {
        const response = await admin.get(url);
        expect(response.statusCode).toBe(500);
        expect(response.body).toContain('This letter cannot be shown');
        expect(response.body).not.toMatch(/Philippa|Loggable/);
      }
    } finally {
      await logged.close();
    }
    const errors = lines.filter((l) => l.includes(exam.letterId));
    expect(errors).toHaveLength(2);
    expect(lines.join('\n')).not.toMatch(/Philippa|Loggable/);
  });
});
