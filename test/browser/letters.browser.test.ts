import type { FastifyInstance } from 'fastify';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Db } from '../../src/store/database.js';
import { axeViolations, haveChromium, launchChromium, signedInPage } from '../support/browser.js';
import { freshDatabase } from '../support/database.js';
import { screenedExam } from '../support/exams.js';
import { smallOffice } from '../support/fixtures.js';
import { testHub } from '../support/hub-client.js';

/** A normal result, issued, with her letter queued as the results module queues it. */
async function normalResult(
  db: Db,
  participant: NonNullable<Parameters<typeof screenedExam>[1]>['participant'] = {},
  item?: string,
) {
  const exam = await screenedExam(db, { participant });
  if (item)
    await db
      .insertInto('record_item')
      .values({
        participant_id: exam.participantId,
        category: 'communication',
        kind: item,
        side: null,
        source: 'participant',
        source_date: '2026-01-01',
      })
      .execute();
  await db
    .insertInto('exam_result')
    .values({
      appointment_id: exam.appointmentId,
      episode_id: exam.episodeId,
      result: 'routine_recall',
      next_test_due: '2029-11-16',
    })
    .execute();
  await db
    .insertInto('communication')
    .values({
      participant_id: exam.participantId,
      episode_id: exam.episodeId,
      appointment_id: exam.appointmentId,
      recipient: 'participant',
      kind: 'result_normal',
      channel: 'letter',
      content: null,
    })
    .execute();
  return exam;
}

describe.skipIf(!haveChromium)('letters page in Chromium', () => {
  let database: Awaited<ReturnType<typeof freshDatabase>>;
  let app: FastifyInstance;
  let browser: Browser;
  let base: string;

  beforeAll(async () => {
    database = await freshDatabase('pglite');
    const db = database.db;
    await smallOffice(db);
    await normalResult(db, { given_name: 'Ada', family_name: 'Standard' });
    await normalResult(db, { given_name: 'Bea', family_name: 'Large' }, 'large_print');
    await normalResult(db, { given_name: 'Cat', family_name: 'Braille' }, 'braille');
    await normalResult(db, { given_name: 'Dot', family_name: 'Died', date_of_death: '2026-11-20' });
    app = await testHub(db);
    base = await app.listen({ port: 0, host: '127.0.0.1' });
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await app?.close();
    await database?.drop();
  });

  it('shows the queue, sends a print run, downloads its PDF and a letter: every page passes axe', async () => {
    const page = await signedInPage(browser, base, 'admin', { acceptDownloads: true });
    await page.getByRole('link', { name: 'Letters and GP messages' }).first().click();
    await expect.poll(() => page.getByRole('heading', { name: 'Letters', level: 1 }).count()).toBe(1);
    await expect.poll(() => page.getByRole('heading', { name: 'Ready to send (3)' }).count()).toBe(1);
    await expect.poll(() => page.getByText('Died on 20 November 2026').count()).toBe(1);
    expect(await axeViolations(page)).toEqual([]);

    // No office chosen: the message is next to the field and in the summary.
    await page.getByLabel('Screening office').selectOption('');
    await page.getByRole('button', { name: 'Show letters' }).click();
    await expect.poll(() => page.getByText('There is a problem').count()).toBe(1);
    expect(await axeViolations(page)).toEqual([]);
    await page.getByLabel('Screening office').selectOption('TST');
    await page.getByRole('button', { name: 'Show letters' }).click();

    await page.getByRole('button', { name: 'Send 3 letters' }).click();
    await expect
      .poll(() =>
        page
          .getByText('3 of 4 letters sent: 2 to print, 1 to a transcription or translation service. 1 not sent')
          .count(),
      )
      .toBe(1);
    await expect.poll(() => page.getByRole('heading', { name: 'To print (2)' }).count()).toBe(1);
    if (process.env.SCREENSHOTS)
      await page.screenshot({ path: `${process.env.SCREENSHOTS}/letters-run.png`, fullPage: true });
    expect(await axeViolations(page)).toEqual([]);

    const download = page.waitForEvent('download');
    await page.getByRole('link', { name: /Download the print run/ }).click();
    const file = await download;
    expect(file.suggestedFilename()).toMatch(/^result-letters-print-run-2026-11-23-\d+\.pdf$/);
    const pdf = await page.request.get(
      new URL(
        (await page.getByRole('link', { name: /Download the print run/ }).getAttribute('href')) ?? '',
        base,
      ).toString(),
    );
    expect(pdf.headers()['content-type']).toBe('application/pdf');
    expect((await pdf.body()).subarray(0, 5).toString()).toBe('%PDF-');

    // The braille letter goes to the transcription service, with its own PDF.
    await expect.poll(() => page.getByRole('link', { name: 'PDF of the letter to Cat BRAILLE' }).count()).toBe(1);

    await page.getByRole('link', { name: 'Letters', exact: true }).first().click();
    await expect.poll(() => page.getByRole('heading', { name: 'Ready to send (0)' }).count()).toBe(1);
    await expect.poll(() => page.getByRole('link', { name: /PDF of the letter to Ada STANDARD/ }).count()).toBe(1);
    await expect.poll(() => page.locator('#not-sent ~ table').getByText('Died on 20 November 2026').count()).toBe(1);
    if (process.env.SCREENSHOTS)
      await page.screenshot({ path: `${process.env.SCREENSHOTS}/letters.png`, fullPage: true });
    expect(await axeViolations(page)).toEqual([]);
    const letter = page.waitForEvent('download');
    await page.getByRole('link', { name: /PDF of the letter to Ada STANDARD/ }).click();
    expect((await letter).suggestedFilename()).toMatch(/^breast-screening-result-normal-2026-11-23-[0-9a-f]{8}\.pdf$/);
  });

  it('holds a letter whose appointment is today, and says why: the page passes axe', async () => {
    const db = database.db;
    const exam = await screenedExam(db, { participant: { given_name: 'Eve', family_name: 'Today' } });
    const clinic = await db
      .insertInto('clinic')
      .values({
        site_id: 'static-1',
        location_id: 'central',
        clinic_date: '2026-11-23',
        starts_at: '19:00',
        ends_at: '20:00',
        slot_minutes: 10,
      })
      .returning('id')
      .executeTakeFirstOrThrow();
    const repeat = await db
      .insertInto('appointment')
      .values({
        clinic_id: clinic.id,
        participant_id: exam.participantId,
        episode_id: exam.episodeId,
        slot_index: 0,
        slot_count: 1,
        status: 'scheduled',
        accession_number: `TR${exam.accessionNumber}`,
      })
      .returning('id')
      .executeTakeFirstOrThrow();
    await db
      .insertInto('exam_result')
      .values({
        appointment_id: exam.appointmentId,
        episode_id: exam.episodeId,
        result: 'technical_recall',
        follow_up_appointment_id: repeat.id,
      })
      .execute();
    await db
      .insertInto('communication')
      .values({
        participant_id: exam.participantId,
        episode_id: exam.episodeId,
        appointment_id: exam.appointmentId,
        recipient: 'participant',
        kind: 'result_technical_recall',
        channel: 'letter',
      })
      .execute();
    const page = await signedInPage(browser, base, 'admin', { acceptDownloads: true });
    await page.goto(`${base}/communications?office=TST`);
    await expect.poll(() => page.getByRole('heading', { name: 'Ready to send (0)' }).count()).toBe(1);
    await expect
      .poll(() =>
        page
          .getByText(
            'Her appointment is today (23 November 2026), too soon for a letter: book her a new one, or tell her by phone',
          )
          .count(),
      )
      .toBe(1);
    expect(await axeViolations(page)).toEqual([]);
  });
});
