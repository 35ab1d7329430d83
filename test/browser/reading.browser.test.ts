import type { FastifyInstance } from 'fastify';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshDatabase } from '../support/database.js';
import { moreReaders, screenedExam, type ScreenedExam } from '../support/exams.js';
import { addItem, smallOffice } from '../support/fixtures.js';
import { testHub } from '../support/hub-client.js';
import { axeViolations, haveChromium, launchChromium, signedInPage } from '../support/browser.js';

describe.skipIf(!haveChromium)('reading pages in Chromium', () => {
  let database: Awaited<ReturnType<typeof freshDatabase>>;
  let app: FastifyInstance;
  let browser: Browser;
  let base: string;
  let exam: ScreenedExam;

  beforeAll(async () => {
    database = await freshDatabase('pglite');
    const db = database.db;
    await smallOffice(db);
    await moreReaders(db);
    exam = await screenedExam(db, { participant: { given_name: 'Beatrice', family_name: 'Blindread' } });
    await addItem(db, exam.participantId, 'implants', 'left');
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

  async function openExam(page: Page) {
    await page.getByRole('link', { name: 'Reading' }).first().click();
    await expect.poll(() => page.getByRole('heading', { name: 'Reading', level: 1 }).count()).toBe(1);
    await page.getByRole('link', { name: 'Beatrice BLINDREAD', exact: true }).click();
    await page.waitForURL(`${base}/reading/${exam.appointmentId}`);
  }

  it('reads an exam as the first and second reader (blind, discordant) and arbitrates as a third: axe on every page', async () => {
    const first = await signedIn('reader');
    await first.getByRole('link', { name: 'Reading' }).first().click();
    await expect.poll(() => first.getByText('Waiting for you', { exact: true }).count()).toBe(1);
    await expect.poll(() => first.getByRole('link', { name: /Open in PACS viewer/ }).count()).toBe(1);
    expect(await first.getByRole('link', { name: /Open in PACS viewer/ }).getAttribute('href')).toBe(
      `/dicom-web/studies/${exam.studyInstanceUid}`,
    );
    expect(await axeViolations(first)).toEqual([]);

    await openExam(first);
    await expect.poll(() => first.getByText('Breast implants (left)').count()).toBe(1);
    expect(await axeViolations(first)).toEqual([]);

    // A recall for assessment with no finding: the error summary links to the field.
    await first.getByLabel('Recall for assessment').check();
    await first.getByRole('button', { name: 'Save opinion' }).click();
    await expect.poll(() => first.getByText('There is a problem').count()).toBe(1);
    await expect
      .poll(() => first.getByRole('link', { name: /Record a finding in one or both breasts/ }).count())
      .toBe(1);
    expect(await axeViolations(first)).toEqual([]);

    await first.getByLabel('Recall for assessment').check();
    await first.locator('#left-lesion').selectOption('mass_ill_defined');
    await first.locator('#left-location').fill('Lower inner quadrant, 8 o’clock');
    await first.locator('#left-concern-4').check();
    await first.getByLabel('Comment (optional)').fill('Spiculate margin');
    await first.getByRole('button', { name: 'Save opinion' }).click();
    await expect.poll(() => first.getByText('First read saved: recall for assessment.').count()).toBe(1);
    expect(await axeViolations(first)).toEqual([]);

    // The second reader: nothing of the first opinion on the page.
    const second = await signedIn('reader2');
    await openExam(second);
    await expect.poll(() => second.getByText('Second read', { exact: true }).count()).toBe(1);
    expect(await second.content()).not.toContain('Lower inner quadrant');
    expect(await second.content()).not.toContain('Spiculate');
    await second.getByLabel('Normal').check();
    await second.getByRole('button', { name: 'Save opinion' }).click();
    await expect.poll(() => second.getByText('Second read saved: normal.').count()).toBe(1);

    // The arbiter sees both reads and decides.
    const third = await signedIn('reader3');
    await openExam(third);
    await expect.poll(() => third.getByRole('heading', { name: 'The two reads' }).count()).toBe(1);
    await expect.poll(() => third.getByText(/Lower inner quadrant/).count()).toBe(1);
    await expect.poll(() => third.getByText('Comment: Spiculate margin').count()).toBe(1);
    if (process.env.SCREENSHOTS)
      await third.screenshot({ path: `${process.env.SCREENSHOTS}/reading-arbitration.png`, fullPage: true });
    expect(await axeViolations(third)).toEqual([]);
    await third.getByLabel('Recall for assessment').check();
    await third.locator('#left-lesion').selectOption('mass_ill_defined');
    await third.locator('#left-location').fill('Lower inner quadrant');
    await third.locator('#left-concern-3').check();
    await third.getByRole('button', { name: 'Save opinion' }).click();
    await expect.poll(() => third.getByText('Arbitration saved: recall for assessment.').count()).toBe(1);
    await expect.poll(() => third.getByText('No exams are waiting for you.').count()).toBe(1);

    await third.getByRole('link', { name: 'Your reading figures' }).click();
    await expect.poll(() => third.getByRole('heading', { name: 'Your reading figures', level: 1 }).count()).toBe(1);
    expect(await axeViolations(third)).toEqual([]);
  });
});
