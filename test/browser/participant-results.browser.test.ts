import type { FastifyInstance } from 'fastify';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sendLetters } from '../../src/store/letters.js';
import { freshDatabase } from '../support/database.js';
import { screenedExam, type ScreenedExam } from '../support/exams.js';
import { smallOffice, TODAY } from '../support/fixtures.js';
import { testHub } from '../support/hub-client.js';
import { axeViolations, haveChromium, launchChromium, signedInPage } from '../support/browser.js';

describe.skipIf(!haveChromium)('results and letters on her record, in Chromium', () => {
  let database: Awaited<ReturnType<typeof freshDatabase>>;
  let app: FastifyInstance;
  let browser: Browser;
  let base: string;
  let exam: ScreenedExam;
  let unread: ScreenedExam;

  beforeAll(async () => {
    database = await freshDatabase('pglite');
    const db = database.db;
    const office = await smallOffice(db);
    const assessmentClinic = (
      await db
        .insertInto('clinic')
        .values({
          site_id: 'static-1',
          location_id: 'central',
          clinic_date: '2026-11-30',
          starts_at: '09:00',
          ends_at: '17:00',
          slot_minutes: 20,
          purpose: 'assessment',
        })
        .returning('id')
        .executeTakeFirstOrThrow()
    ).id;
    // Recalled to assessment with an appointment; her letter sent, her GP's message delivered; assessed benign.
    exam = await screenedExam(db);
    const followUp = await db
      .insertInto('appointment')
      .values({
        clinic_id: assessmentClinic,
        participant_id: exam.participantId,
        episode_id: exam.episodeId,
        slot_index: 0,
        slot_count: 1,
        status: 'scheduled',
        accession_number: `FU${exam.accessionNumber}`,
      })
      .returning('id')
      .executeTakeFirstOrThrow();
    await db
      .insertInto('appointment_slot')
      .values({ clinic_id: assessmentClinic, slot_index: 0, appointment_id: followUp.id })
      .execute();
    await db
      .insertInto('exam_result')
      .values({
        appointment_id: exam.appointmentId,
        episode_id: exam.episodeId,
        result: 'recall_assessment',
        follow_up_appointment_id: followUp.id,
        issued_by: office.users.admin.id,
      })
      .execute();
    const letter = await db
      .insertInto('communication')
      .values({
        participant_id: exam.participantId,
        episode_id: exam.episodeId,
        appointment_id: exam.appointmentId,
        recipient: 'participant',
        kind: 'result_assessment',
        channel: 'letter',
      })
      .returning('id')
      .executeTakeFirstOrThrow();
    await sendLetters(db, { ids: [letter.id] }, office.actor, TODAY);
    await db
      .insertInto('communication')
      .values({
        participant_id: exam.participantId,
        episode_id: exam.episodeId,
        appointment_id: exam.appointmentId,
        recipient: 'gp',
        kind: 'result_assessment',
        channel: 'mesh',
        gp_practice_code: 'Y00001',
        status: 'delivered',
        sent_at: new Date('2026-11-20T10:00:00Z'),
        delivered_at: new Date('2026-11-20T10:05:00Z'),
      })
      .execute();
    await db
      .insertInto('assessment_outcome')
      .values({
        episode_id: exam.episodeId,
        outcome: 'benign',
        side: 'right',
        early_recall_months: 12,
        decided_on: '2026-11-21',
      })
      .execute();
    // Another woman's exam, read once.
    unread = await screenedExam(db);
    await db
      .insertInto('reading_opinion')
      .values({
        appointment_id: unread.appointmentId,
        episode_id: unread.episodeId,
        read_number: 1,
        reader_id: office.users.reader.id,
        opinion: 'normal',
        details: '{}',
      })
      .execute();
    app = await testHub(db);
    base = await app.listen({ port: 0, host: '127.0.0.1' });
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await app?.close();
    await database?.drop();
  });

  const signedIn = (username: string): Promise<Page> => signedInPage(browser, base, username);

  it('shows her results, assessment outcome and letters, and an exam waiting for reading: the pages pass axe', async () => {
    const page = await signedIn('reader');
    await page.goto(`${base}/participants/${exam.participantId}`);
    await expect.poll(() => page.getByRole('heading', { name: 'Results and letters', level: 2 }).count()).toBe(1);
    await expect
      .poll(() =>
        page.getByRole('table', { name: 'Screening results, newest first' }).getByText('Recall to assessment').count(),
      )
      .toBe(1);
    await expect
      .poll(() => page.getByRole('table', { name: 'Assessment outcome' }).getByText('Benign (right)').count())
      .toBe(1);
    await expect.poll(() => page.getByRole('link', { name: /View her assessment/ }).count()).toBe(1);
    await expect.poll(() => page.getByRole('link', { name: /Download the letter \(PDF\)/ }).count()).toBe(1);
    if (process.env.SCREENSHOTS)
      await page.screenshot({ path: `${process.env.SCREENSHOTS}/participant-results.png`, fullPage: true });
    expect(await axeViolations(page)).toEqual([]);

    await page.goto(`${base}/participants/${unread.participantId}`);
    await expect.poll(() => page.getByText('Read once: the second read is to do').count()).toBe(1);
    expect(await axeViolations(page)).toEqual([]);
  });

  it('filters clinics by purpose: the page passes axe', async () => {
    const page = await signedIn('admin');
    await page.goto(`${base}/clinics?from=2026-11-30&to=2026-11-30`);
    await page.getByLabel('Purpose').selectOption('assessment');
    await page.getByRole('button', { name: 'Show clinics' }).click();
    await expect.poll(() => page.getByText('1 assessment clinic from').count()).toBe(1);
    expect(await axeViolations(page)).toEqual([]);
    await page.getByRole('link', { name: 'Monday 30 November 2026' }).click();
    await expect.poll(() => page.getByText('Assessment clinic, Monday 30 November 2026').count()).toBe(1);
    expect(await axeViolations(page)).toEqual([]);
  });
});
