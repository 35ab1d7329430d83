import type { FastifyInstance } from 'fastify';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshDatabase } from '../support/database.js';
import { screenedExam } from '../support/exams.js';
import { smallOffice } from '../support/fixtures.js';
import { testHub } from '../support/hub-client.js';
import { axeViolations, haveChromium, launchChromium, signedInPage } from '../support/browser.js';

describe.skipIf(!haveChromium)('KC62 page in Chromium', () => {
  let database: Awaited<ReturnType<typeof freshDatabase>>;
  let app: FastifyInstance;
  let browser: Browser;
  let base: string;
  let first: Awaited<ReturnType<typeof screenedExam>>;

  beforeAll(async () => {
    database = await freshDatabase('pglite');
    const db = database.db;
    await smallOffice(db);
    // Two routine recalls screened on 16 November 2026 (this reporting year, 2026-27), one of them recalled to
    // assessment with an invasive cancer, 8 mm, found by a B5b core biopsy. Both women were born 14 May 1966 (the
    // fixture): 60 that day → 60 to 64; never screened before → Table B.
    first = await screenedExam(db, { participant: { given_name: 'Ada', family_name: 'Kcone' } });
    await screenedExam(db, { participant: { given_name: 'Bea', family_name: 'Kctwo' } });
    await db
      .insertInto('exam_result')
      .values({ appointment_id: first.appointmentId, episode_id: first.episodeId, result: 'recall_assessment' })
      .execute();
    await db
      .insertInto('assessment_procedure')
      .values({ episode_id: first.episodeId, procedure: 'core_biopsy', performed_on: '2026-11-20', b_code: 'B5b' })
      .execute();
    await db
      .insertInto('assessment_outcome')
      .values({ episode_id: first.episodeId, outcome: 'malignant_invasive', size_mm: 8, decided_on: '2026-11-21' })
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

  it('chooses a year, shows the return, drills down from a number to the episode: every page passes axe', async () => {
    const page: Page = await signedInPage(browser, base, 'admin');
    await page.getByRole('link', { name: 'Reports' }).first().click();
    await page.getByRole('link', { name: 'KC62 and KC63' }).click();
    await expect.poll(() => page.getByRole('heading', { name: 'KC62 and KC63', level: 1 }).count()).toBe(1);
    await page.getByLabel('Reporting year').selectOption('2026');
    await page.getByRole('button', { name: 'Show the return' }).click();
    await expect.poll(() => page.getByRole('heading', { name: /Table B: routine invitation/ }).count()).toBe(1);
    if (process.env.SCREENSHOTS) await page.screenshot({ path: `${process.env.SCREENSHOTS}/kc62.png`, fullPage: true });
    expect(await axeViolations(page)).toEqual([]);

    // Table B, Part 3: one invasive cancer under 10 mm, aged 60 to 64.
    await page
      .getByRole('table', { name: /Part 3: cancers detected \(Table B/ })
      .getByRole('link', { name: '1 (Invasive under 10 mm, 60 to 64)' })
      .click();
    await expect.poll(() => page.getByRole('heading', { level: 1, name: /Invasive under 10 mm/ }).count()).toBe(1);
    await expect.poll(() => page.getByText(first.episodeId).count()).toBe(1);
    await expect.poll(() => page.getByText('Invasive cancer (8 mm)').count()).toBe(1);
    expect(await axeViolations(page)).toEqual([]);
  });
});
