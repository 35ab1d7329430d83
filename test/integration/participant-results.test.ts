import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LESION_LABELS, OPINION_LABELS } from '../../src/pathway/screening-outcomes.js';
import { sendLetters } from '../../src/store/letters.js';
import { BACKENDS, freshDatabase } from '../support/database.js';
import { moreReaders, screenedExam } from '../support/exams.js';
import { addParticipant, smallOffice, TODAY, type Office } from '../support/fixtures.js';
import { PageClient, testHub } from '../support/hub-client.js';

describe.each(BACKENDS)('results and letters on her record, and clinic purpose, on %s', (backend) => {
  let database: Awaited<ReturnType<typeof freshDatabase>>;
  let office: Office;
  let app: FastifyInstance;
  let assessmentClinic: string;
  let screeningClinic: string;
  beforeAll(async () => {
    database = await freshDatabase(backend);
    office = await smallOffice(database.db);
    await moreReaders(database.db);
    const clinic = (purpose: 'screening' | 'assessment', starts_at: string) =>
      database.db
        .insertInto('clinic')
        .values({
          site_id: 'static-1',
          location_id: 'central',
          clinic_date: '2026-11-30',
          starts_at,
          ends_at: '17:00',
          slot_minutes: 20,
          purpose,
        })
        .returning('id')
        .executeTakeFirstOrThrow()
        .then((r) => r.id);
    assessmentClinic = await clinic('assessment', '09:00');
    screeningClinic = await clinic('screening', '09:10');
    app = await testHub(database.db);
  });
  afterAll(async () => {
    await app.close();
    await database.drop();
  });
  const db = () => database.db;
  const signedIn = async (username: string) => {
    const client = new PageClient(app);
    await client.signIn(username);
    return client;
  };
  /** The record page's "Results and letters" section, up to the next h2. */
  const resultsSection = (html: string) => /<h2 id="results">[\s\S]*?(?=<h2 )/.exec(html)?.[0] ?? '';

  it('shows her results newest first, her assessment outcome, and her letters and GP messages with what became of them', async () => {
    // Three years ago: routine recall, a letter sent before letters were kept electronically.
    const old = await screenedExam(db(), { on: '2023-11-14' });
    const participantId = old.participantId;
    await db()
      .insertInto('exam_result')
      .values({
        appointment_id: old.appointmentId,
        episode_id: old.episodeId,
        result: 'routine_recall',
        next_test_due: '2026-11-14',
        issued_by: office.users.admin.id,
        issued_at: new Date('2023-11-28T10:00:00Z'),
      })
      .execute();
    await db()
      .insertInto('communication')
      .values({
        participant_id: participantId,
        episode_id: old.episodeId,
        appointment_id: old.appointmentId,
        recipient: 'participant',
        kind: 'result_normal',
        channel: 'letter',
        format: 'standard',
        status: 'sent',
        created_at: new Date('2023-11-28T10:00:00Z'),
        sent_at: new Date('2023-11-29T10:00:00Z'),
      })
      .execute();

    // This year, a new exam of hers: recalled to assessment, with an assessment appointment booked.
    const exam = await db()
      .insertInto('appointment')
      .values({
        clinic_id: (
          await db()
            .insertInto('clinic')
            .values({
              site_id: 'mobile-1',
              location_id: 'car-park',
              clinic_date: '2026-11-16',
              starts_at: '08:10',
              ends_at: '12:00',
              slot_minutes: 10,
              status: 'closed',
            })
            .returning('id')
            .executeTakeFirstOrThrow()
        ).id,
        participant_id: participantId,
        episode_id: (
          await db()
            .insertInto('episode')
            .values({
              participant_id: participantId,
              bso_code: 'TST',
              episode_type: 'R',
              opened_on: '2026-10-01',
              screened_on: '2026-11-16',
            })
            .returning('id')
            .executeTakeFirstOrThrow()
        ).id,
        slot_index: 0,
        slot_count: 1,
        status: 'screened',
        accession_number: `EXNEW${old.accessionNumber}`,
        study_instance_uid: '2.25.4242',
        images_available_at: new Date('2026-11-16T16:00:00Z'),
      })
      .returning(['id', 'episode_id'])
      .executeTakeFirstOrThrow();
    const episodeId = exam.episode_id!;
    const followUp = await db()
      .insertInto('appointment')
      .values({
        clinic_id: assessmentClinic,
        participant_id: participantId,
        episode_id: episodeId,
        slot_index: 1,
        slot_count: 1,
        status: 'scheduled',
        accession_number: `FU${old.accessionNumber}`,
      })
      .returning('id')
      .executeTakeFirstOrThrow();
    await db()
      .insertInto('appointment_slot')
      .values({ clinic_id: assessmentClinic, slot_index: 1, appointment_id: followUp.id })
      .execute();
    await db()
      .insertInto('exam_result')
      .values({
        appointment_id: exam.id,
        episode_id: episodeId,
        result: 'recall_assessment',
        follow_up_appointment_id: followUp.id,
        issued_by: office.users.admin.id,
      })
      .execute();
    const letter = await db()
      .insertInto('communication')
      .values({
        participant_id: participantId,
        episode_id: episodeId,
        appointment_id: exam.id,
        recipient: 'participant',
        kind: 'result_assessment',
        channel: 'letter',
      })
      .returning('id')
      .executeTakeFirstOrThrow();
    await db()
      .insertInto('communication')
      .values({
        participant_id: participantId,
        episode_id: episodeId,
        appointment_id: exam.id,
        recipient: 'gp',
        kind: 'result_assessment',
        channel: 'mesh',
        gp_practice_code: 'Y00001',
        status: 'queued',
        attempts: 2,
        last_error: 'The MESH mailbox did not answer',
      })
      .execute();
    // The letters module sends her letter: its words are kept, so it can be shown again.
    const sent = await sendLetters(db(), { ids: [letter.id] }, office.actor, TODAY);
    expect(sent.failed).toEqual([]);
    expect(
      (await db().selectFrom('communication').select('status').where('id', '=', letter.id).executeTakeFirstOrThrow())
        .status,
    ).toBe('sent');

    // Assessment decided benign, with early recall: an earlier, replaced outcome does not show.
    await db()
      .insertInto('assessment_outcome')
      .values({
        episode_id: episodeId,
        outcome: 'normal',
        decided_on: '2026-11-20',
        superseded_at: new Date('2026-11-21T09:00:00Z'),
      })
      .execute();
    await db()
      .insertInto('assessment_outcome')
      .values({
        episode_id: episodeId,
        outcome: 'benign',
        side: 'left',
        early_recall_months: 12,
        decided_on: '2026-11-21',
      })
      .execute();

    const mammographer = await signedIn('mammographer');
    const page = await mammographer.get(`/participants/${participantId}`);
    expect(page.statusCode).toBe(200);
    const section = resultsSection(page.body);
    // Newest exam first: recalled to assessment, with the appointment booked; then the routine recall three years ago.
    expect(section).toMatch(
      /16 November 2026[\s\S]*Mobile Unit 1, Supermarket car park[\s\S]*Recall to assessment[\s\S]*Assessment appointment 30 November 2026 at 09:20, Central Breast Unit, Central Breast Unit[\s\S]*14 November 2023[\s\S]*Normal: routine recall[\s\S]*Next test due 14 November 2026/,
    );
    expect(section).toContain(`/appointments/${followUp.id}`);
    // Her current outcome, not the replaced one; no link to record assessment for a mammographer.
    expect(section).toMatch(/21 November 2026<\/td>\s*<td class="nhsuk-table__cell">Benign \(left\)/);
    expect(section).toContain('In 12 months');
    expect(section).not.toContain('20 November 2026');
    expect(section).not.toContain(`/assessment/${episodeId}`);
    // Her screening status follows the early recall, not the routine 36 months.
    expect(page.body).toContain('early recall 12 months after her assessment on 21 November 2026');
    // Letters and the GP message, newest first: the letter sent today can be downloaded; the old one's words were
    // not kept; the GP message waits with its last error.
    const rows = section.split('<tr class="nhsuk-table__row">').filter((r) => r.includes('Queued '));
    expect(rows).toHaveLength(3);
    const letterRow = rows.find((r) => r.includes(`/communications/letters/${letter.id}.pdf`))!;
    expect(letterRow).toMatch(
      /Recall to assessment[\s\S]*>Her<[\s\S]*Standard print[\s\S]*Sent[\s\S]*Download the letter \(PDF\)/,
    );
    const gpRow = rows.find((r) => r.includes('Her GP practice'))!;
    expect(gpRow).toMatch(
      /Riverside Surgery \(Y00001\)[\s\S]*Electronic message \(MESH\)[\s\S]*Queued[\s\S]*The MESH mailbox did not answer/,
    );
    expect(gpRow).not.toContain('Download the letter');
    const oldRow = rows.find((r) => r.includes('Normal result'))!;
    expect(oldRow).toContain('Words not kept (sent before letters were kept electronically)');
    expect(oldRow).not.toContain('Download the letter');
    expect(rows.indexOf(oldRow)).toBe(2);

    // The link gives the letter as sent.
    const pdf = await mammographer.get(`/communications/letters/${letter.id}.pdf`);
    expect(pdf.statusCode).toBe(200);
    expect(pdf.headers['content-type']).toBe('application/pdf');

    // A film reader records assessment: she gets the link to the assessment.
    const reader = await signedIn('reader');
    expect(resultsSection((await reader.get(`/participants/${participantId}`)).body)).toContain(
      `href="/assessment/${episodeId}"`,
    );

    // Every view of the record is audited, whoever opened it.
    const views = await db()
      .selectFrom('audit_event')
      .select('user_id')
      .where('action', '=', 'participant.view')
      .where('participant_id', '=', participantId)
      .execute();
    expect(views.map((v) => v.user_id)).toEqual(
      expect.arrayContaining([office.users.mammographer.id, office.users.reader.id]),
    );
  });

  it('tells a film reader only that her exam waits for reading, never what another reader thought', async () => {
    const exam = await screenedExam(db());
    const comment = 'Spiculate density, compare with the priors';
    await db()
      .insertInto('reading_opinion')
      .values({
        appointment_id: exam.appointmentId,
        episode_id: exam.episodeId,
        read_number: 1,
        reader_id: office.users.reader.id,
        opinion: 'recall_assessment',
        details: JSON.stringify({
          findings: [
            { side: 'left', lesion: 'architectural_distortion', location: 'upper outer quadrant', concern: 4 },
          ],
        }),
        comment,
      })
      .execute();
    const notYetImaged = await screenedExam(db(), { imagesAvailable: false, on: '2026-11-20', participant: {} });

    const reader2 = await signedIn('reader2');
    for (const client of [reader2, await signedIn('reader')]) {
      const page = await client.get(`/participants/${exam.participantId}`);
      expect(page.statusCode).toBe(200);
      const section = resultsSection(page.body);
      expect(section).toMatch(/Waiting for reading[\s\S]*Read once: the second read is to do/);
      for (const secret of [
        OPINION_LABELS.recall_assessment,
        'recall_assessment',
        LESION_LABELS.architectural_distortion,
        'architectural_distortion',
        'upper outer quadrant',
        comment,
      ])
        expect(page.body).not.toContain(secret);
    }

    // Read twice (both recalls or not, the page cannot tell and does not say): read, waiting for the result.
    const reader3 = (
      await db().selectFrom('app_user').select('id').where('username', '=', 'reader3').executeTakeFirstOrThrow()
    ).id;
    await db()
      .insertInto('reading_opinion')
      .values({
        appointment_id: exam.appointmentId,
        episode_id: exam.episodeId,
        read_number: 2,
        reader_id: reader3,
        opinion: 'normal',
        details: '{}',
        comment: 'Nothing of note',
      })
      .execute();
    const twice = await reader2.get(`/participants/${exam.participantId}`);
    expect(resultsSection(twice.body)).toMatch(/Read, waiting for the result[\s\S]*Read twice/);
    expect(twice.body).not.toContain('Nothing of note');
    expect(twice.body).not.toContain(OPINION_LABELS.recall_assessment);

    // Screened, the images not yet at the PACS.
    const waitingImages = await reader2.get(`/participants/${notYetImaged.participantId}`);
    expect(resultsSection(waitingImages.body)).toContain('Waiting for the images');

    // Never screened: nothing yet.
    const never = await addParticipant(db());
    expect(resultsSection((await reader2.get(`/participants/${never.id}`)).body)).toContain(
      'No screening results or letters yet.',
    );
  });

  it('lists clinics with their purpose, filters by purpose, and books screening only in screening clinics', async () => {
    const admin = await signedIn('admin');
    const all = await admin.get('/clinics?from=2026-11-30&to=2026-11-30');
    expect(all.statusCode).toBe(200);
    const rowOf = (html: string, id: string) =>
      html.split('<tr class="nhsuk-table__row">').find((r) => r.includes(`/clinics/${id}"`));
    expect(rowOf(all.body, assessmentClinic)).toMatch(/nhsuk-tag--purple[^>]*>\s*Assessment/);
    expect(rowOf(all.body, screeningClinic)).toMatch(/nhsuk-tag--white[^>]*>\s*Screening/);

    const assessmentOnly = await admin.get('/clinics?from=2026-11-30&to=2026-11-30&purpose=assessment');
    expect(rowOf(assessmentOnly.body, assessmentClinic)).toBeDefined();
    expect(rowOf(assessmentOnly.body, screeningClinic)).toBeUndefined();
    expect(assessmentOnly.body).toContain('1 assessment clinic from');
    const screeningOnly = await admin.get('/clinics?from=2026-11-30&to=2026-11-30&purpose=screening');
    expect(rowOf(screeningOnly.body, assessmentClinic)).toBeUndefined();
    expect(rowOf(screeningOnly.body, screeningClinic)).toBeDefined();

    const wrong = await admin.get('/clinics?purpose=mobile');
    expect(wrong.body).toContain('There is a problem');
    expect(wrong.body).toContain('Choose screening, assessment, or both');

    const clinicPage = await admin.get(`/clinics/${assessmentClinic}`);
    expect(clinicPage.body).toContain('Assessment clinic, Monday 30 November 2026');
    expect(clinicPage.body).toContain('only assessment appointments are booked here');

    // Booking for screening offers the screening clinic, never the assessment one; posting it anyway is refused.
    const p = await addParticipant(db());
    const form = await admin.get(`/participants/${p.id}/book`);
    expect(form.body).toContain(`${screeningClinic}:`);
    expect(form.body).not.toContain(`${assessmentClinic}:`);
    const refused = await admin.post(`/participants/${p.id}/book`, { slot: `${assessmentClinic}:0` });
    expect(refused.statusCode).toBe(422);
    expect(refused.body).toContain('That is an assessment clinic: choose a screening clinic');
    expect(await db().selectFrom('appointment').select('id').where('participant_id', '=', p.id).execute()).toEqual([]);

    // An assessment appointment is rescheduled to an assessment clinic: those are what the page offers.
    const recalled = await screenedExam(db());
    const assessment = await db()
      .insertInto('appointment')
      .values({
        clinic_id: assessmentClinic,
        participant_id: recalled.participantId,
        episode_id: recalled.episodeId,
        slot_index: 5,
        slot_count: 1,
        status: 'scheduled',
        accession_number: `FU${recalled.accessionNumber}`,
      })
      .returning('id')
      .executeTakeFirstOrThrow();
    await db()
      .insertInto('appointment_slot')
      .values({ clinic_id: assessmentClinic, slot_index: 5, appointment_id: assessment.id })
      .execute();
    const reschedule = await admin.get(`/appointments/${assessment.id}/reschedule`);
    expect(reschedule.body).toContain(`${assessmentClinic}:`);
    expect(reschedule.body).not.toContain(`${screeningClinic}:`);
    const moved = await admin.post(`/appointments/${assessment.id}/reschedule`, {
      slot: `${assessmentClinic}:6`,
      version: '1',
    });
    expect(moved.statusCode).toBe(303);
  });
});
