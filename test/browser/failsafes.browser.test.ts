import { faker } from '@faker-js/faker';
import type { FastifyInstance } from 'fastify';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runFailsafes } from '../../src/store/failsafes.js';
import { freshDatabase } from '../support/database.js';
import { moreReaders, screenedExam, type ScreenedExam } from '../support/exams.js';
import { smallOffice } from '../support/fixtures.js';
import { testHub } from '../support/hub-client.js';
import { axeViolations, haveChromium, launchChromium, signedInPage } from '../support/browser.js';

faker.seed(606);

describe.skipIf(!haveChromium)('failsafes page in Chromium', () => {
  let database: Awaited<ReturnType<typeof freshDatabase>>;
  let app: FastifyInstance;
  let browser: Browser;
  let base: string;
  let missing: ScreenedExam;

  beforeAll(async () => {
    database = await freshDatabase('pglite');
    const db = database.db;
    const office = await smallOffice(db);
    const [second] = await moreReaders(db);
    const person = () => ({ given_name: faker.person.firstName('female'), family_name: faker.person.lastName() });
    // One exam at each stage: no images (overdue), images not read, read and decided but no result, resulted with
    // the letter not sent.
    missing = await screenedExam(db, { on: '2026-11-17', imagesAvailable: false, participant: person() });
    await screenedExam(db, { on: '2026-11-20', participant: person() });
    const decided = await screenedExam(db, { on: '2026-11-19', participant: person() });
    const resulted = await screenedExam(db, { on: '2026-11-19', participant: person() });
    for (const exam of [decided, resulted]) {
      for (const [n, reader] of [
        [1, office.users.reader],
        [2, second!],
      ] as const)
        await db
          .insertInto('reading_opinion')
          .values({
            appointment_id: exam.appointmentId,
            episode_id: exam.episodeId,
            read_number: n,
            reader_id: reader.id,
            opinion: 'normal',
            details: '{}',
            read_at: '2026-11-20T10:00:00Z',
          })
          .execute();
    }
    await db
      .insertInto('exam_result')
      .values({
        appointment_id: resulted.appointmentId,
        episode_id: resulted.episodeId,
        result: 'routine_recall',
        next_test_due: '2029-11-19',
        issued_at: '2026-11-21T10:00:00Z',
      })
      .execute();
    // A technical recall whose repeat appointment could not be booked.
    const recall = await screenedExam(db, { on: '2026-11-16', participant: person() });
    await db
      .insertInto('exam_result')
      .values({
        appointment_id: recall.appointmentId,
        episode_id: recall.episodeId,
        result: 'technical_recall',
        follow_up_problem: 'No screening clinic at this site had room',
        issued_at: '2026-11-20T10:00:00Z',
      })
      .execute();
    await runFailsafes(db, 'TST', '2026-11-22');
    app = await testHub(db, { failsafeJob: true });
    base = await app.listen({ port: 0, host: '127.0.0.1' });
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await app?.close();
    await database?.drop();
  });

  const signedIn = (username: string): Promise<Page> => signedInPage(browser, base, username);

  it('shows the summary, chart, tally and trend, drills down to a list and opens her record: every page passes axe', async () => {
    const page = await signedIn('admin');
    await page.getByRole('link', { name: 'Failsafes' }).first().click();
    await expect.poll(() => page.getByRole('heading', { name: 'Failsafes', level: 1 }).count()).toBe(1);
    await expect.poll(() => page.getByRole('img', { name: 'People overdue, by check' }).count()).toBe(1);
    await expect.poll(() => page.getByRole('heading', { name: 'Daily tally' }).count()).toBe(1);
    // The trend has yesterday's run and today's (the hub ran it at start).
    await expect.poll(() => page.getByRole('columnheader', { name: '22 November 2026' }).count()).toBe(1);
    await expect.poll(() => page.getByRole('columnheader', { name: '23 November 2026' }).count()).toBe(1);
    if (process.env.SCREENSHOTS) {
      await page.screenshot({ path: `${process.env.SCREENSHOTS}/failsafes.png`, fullPage: true });
      await page.screenshot({
        path: `${process.env.SCREENSHOTS}/failsafes-top.png`,
        fullPage: true,
        clip: { x: 0, y: 0, width: 1280, height: 1500 },
      });
      await page.screenshot({
        path: `${process.env.SCREENSHOTS}/failsafes-middle.png`,
        fullPage: true,
        clip: { x: 0, y: 1500, width: 1280, height: 1700 },
      });
      await page.screenshot({
        path: `${process.env.SCREENSHOTS}/failsafes-bottom.png`,
        fullPage: true,
        clip: { x: 0, y: 3200, width: 1280, height: 1500 },
      });
    }
    expect(await axeViolations(page)).toEqual([]);

    await page.getByRole('link', { name: 'Screened, but no images at the hub' }).click();
    await expect
      .poll(() => page.getByRole('heading', { name: 'Screened, but no images at the hub', level: 1 }).count())
      .toBe(1);
    await expect.poll(() => page.getByRole('cell', { name: '6', exact: true }).count()).toBe(1);
    await expect.poll(() => page.getByText('Overdue', { exact: true }).count()).toBe(1);
    expect(await axeViolations(page)).toEqual([]);

    await page.locator('tbody a[href^="/participants/"]').first().click();
    await page.waitForURL(`${base}/participants/${missing.participantId}`);
    expect(await axeViolations(page)).toEqual([]);
  });

  it('lists a technical recall with no repeat exam, with where to book it: the list passes axe', async () => {
    const page = await signedIn('admin');
    await page.goto(`${base}/failsafes?office=TST`);
    await page.getByRole('link', { name: 'Technical recall, but no repeat exam' }).click();
    await expect
      .poll(() => page.getByRole('heading', { name: 'Technical recall, but no repeat exam', level: 1 }).count())
      .toBe(1);
    await expect
      .poll(() => page.getByText('No repeat appointment is booked: No screening clinic at this site had room').count())
      .toBe(1);
    await expect.poll(() => page.getByRole('link', { name: /^Book her repeat exam/ }).count()).toBe(1);
    expect(await axeViolations(page)).toEqual([]);
  });

  it('an unknown office is shown in the error summary, next to the field', async () => {
    const page = await signedIn('admin');
    await page.goto(`${base}/failsafes?office=XXX`);
    await expect.poll(() => page.getByText('There is a problem').count()).toBe(1);
    expect(await axeViolations(page)).toEqual([]);
    await page.getByLabel('Screening office').selectOption('TST');
    await page.getByRole('button', { name: 'Show failsafes' }).click();
    await expect.poll(() => page.getByRole('heading', { name: 'Summary' }).count()).toBe(1);
    expect(await axeViolations(page)).toEqual([]);
  });
});
