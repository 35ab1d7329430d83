import type { FastifyInstance } from 'fastify';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { axeViolations, haveChromium, launchChromium, signedInPage } from '../support/browser.js';
import { freshDatabase } from '../support/database.js';
import { moreReaders, screenedExam, type ScreenedExam } from '../support/exams.js';
import { smallOffice } from '../support/fixtures.js';
import { testHub } from '../support/hub-client.js';
import { addClinic, readExam } from '../support/results.js';

describe.skipIf(!haveChromium)('results and assessment in Chromium', () => {
  let database: Awaited<ReturnType<typeof freshDatabase>>;
  let app: FastifyInstance;
  let browser: Browser;
  let base: string;
  let recalled: ScreenedExam;
  let normal: ScreenedExam;

  beforeAll(async () => {
    database = await freshDatabase('pglite');
    const db = database.db;
    const office = await smallOffice(db);
    const readers = [office.users.reader, ...(await moreReaders(db))];
    await addClinic(db, {
      site: 'static-1',
      location: 'central',
      date: '2026-11-27',
      starts: '09:00',
      ends: '12:00',
      purpose: 'assessment',
    });
    recalled = await screenedExam(db, { participant: { given_name: 'Rhian', family_name: 'Recall' } });
    normal = await screenedExam(db, { on: '2026-11-12', participant: { given_name: 'Nora', family_name: 'Normal' } });
    await readExam(db, recalled, readers, ['recall_assessment', 'recall_assessment']);
    await readExam(db, normal, readers, ['normal', 'normal']);
    // Waiting for arbitration: counted, not listed.
    await readExam(db, await screenedExam(db), readers, ['normal', 'technical_recall']);
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

  it('an admin issues one result, then the rest: each page passes axe', async () => {
    const page = await signedIn('admin');
    await page.getByRole('link', { name: 'Results' }).first().click();
    await expect.poll(() => page.getByRole('heading', { name: 'Results', level: 1 }).count()).toBe(1);
    await expect.poll(() => page.getByRole('heading', { name: 'Ready to issue (2)' }).count()).toBe(1);
    expect(await axeViolations(page)).toEqual([]);

    await page.getByRole('button', { name: 'Issue result for Nora NORMAL' }).click();
    await expect
      .poll(() =>
        page.getByText(/Normal: routine recall issued for Nora NORMAL\. Next test due 12 November 2029\./).count(),
      )
      .toBe(1);
    await expect.poll(() => page.getByRole('heading', { name: 'Ready to issue (1)' }).count()).toBe(1);
    expect(await axeViolations(page)).toEqual([]);

    await page.getByRole('button', { name: 'Issue all 1 result shown' }).click();
    await expect.poll(() => page.getByText('1 result issued.').count()).toBe(1);
    await expect.poll(() => page.getByText('No results are ready to issue.').count()).toBe(1);
    await expect.poll(() => page.getByText('Booked 27 November 2026 at 09:00, Central Breast Unit').count()).toBe(1);
    if (process.env.SCREENSHOTS)
      await page.screenshot({ path: `${process.env.SCREENSHOTS}/results.png`, fullPage: true });
    expect(await axeViolations(page)).toEqual([]);
  });

  it('a film reader records a procedure and the outcome, with the error summary on the way', async () => {
    const page = await signedIn('reader');
    await page.getByRole('link', { name: 'Assessment' }).first().click();
    await expect.poll(() => page.getByRole('heading', { name: 'Assessment', level: 1 }).count()).toBe(1);
    expect(await axeViolations(page)).toEqual([]);

    await page.getByRole('link', { name: 'Record assessment for Rhian RECALL' }).click();
    await page.waitForURL(`${base}/assessment/${recalled.episodeId}`);
    await expect.poll(() => page.getByText('27 November 2026').count()).toBeGreaterThan(0);
    expect(await axeViolations(page)).toEqual([]);

    await page.getByRole('link', { name: 'Add a procedure' }).click();
    await page.getByLabel('Core biopsy').check();
    await page.getByLabel('B code (biopsies only)').selectOption('B2');
    await page.getByRole('button', { name: 'Save procedure' }).click();
    // A biopsy without its side: the summary links to the field.
    await expect.poll(() => page.getByText('There is a problem').count()).toBe(1);
    await expect.poll(() => page.locator('.nhsuk-error-summary a[href="#side"]').count()).toBe(1);
    expect(await axeViolations(page)).toEqual([]);
    await page.getByLabel('Left', { exact: true }).check();
    await page.getByRole('button', { name: 'Save procedure' }).click();
    await page.waitForURL(`${base}/assessment/${recalled.episodeId}`);
    await expect.poll(() => page.getByText('Core biopsy on 23 November 2026 recorded.').count()).toBe(1);

    await page.getByRole('link', { name: 'Record the outcome' }).click();
    await page.getByLabel('Malignant: invasive').check();
    await page.getByRole('button', { name: 'Save outcome' }).click();
    await expect.poll(() => page.getByText('There is a problem').count()).toBe(1);
    await expect.poll(() => page.locator('.nhsuk-error-summary a[href="#referredToTreatment"]').count()).toBe(1);
    expect(await axeViolations(page)).toEqual([]);
    await page.getByLabel('Left', { exact: true }).check();
    await page.getByLabel('Invasive size (mm, optional)').fill('14');
    await page.getByLabel('2', { exact: true }).check();
    await page.getByLabel('Referred to treatment').check();
    await page.getByLabel('Where she is referred for treatment').fill('St James University Hospital');
    await page.getByRole('button', { name: 'Save outcome' }).click();
    await page.waitForURL(`${base}/assessment/${recalled.episodeId}`);
    await expect
      .poll(() =>
        page.getByText('Outcome recorded: Malignant: invasive. Episode closed: referred for treatment.').count(),
      )
      .toBe(1);
    if (process.env.SCREENSHOTS)
      await page.screenshot({ path: `${process.env.SCREENSHOTS}/assessment.png`, fullPage: true });
    expect(await axeViolations(page)).toEqual([]);

    // She has an outcome now: off the waiting list, on the recent one.
    await page.getByRole('link', { name: 'Assessment', exact: true }).first().click();
    await expect.poll(() => page.getByText('Nobody is waiting for an assessment outcome.').count()).toBe(1);
    expect(await axeViolations(page)).toEqual([]);
  });
});
