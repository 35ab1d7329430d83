import { faker } from '@faker-js/faker';
import type { FastifyInstance } from 'fastify';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshDatabase } from '../support/database.js';
import { addParticipant, smallOffice } from '../support/fixtures.js';
import { testHub } from '../support/hub-client.js';
import { axeViolations, haveChromium, launchChromium, signedInPage } from '../support/browser.js';

faker.seed(707);

describe.skipIf(!haveChromium)('uptake page in Chromium', () => {
  let database: Awaited<ReturnType<typeof freshDatabase>>;
  let app: FastifyInstance;
  let browser: Browser;
  let base: string;

  beforeAll(async () => {
    database = await freshDatabase('pglite');
    const db = database.db;
    await smallOffice(db);
    await db
      .insertInto('lsoa_imd')
      .values([
        { lsoa_code: 'E01000001', imd_decile: 2 },
        { lsoa_code: 'E01000002', imd_decile: 9 },
      ])
      .execute();
    await db
      .insertInto('postcode_lsoa')
      .values([
        { postcode_key: 'LS11AA', lsoa_code: 'E01000001' },
        { postcode_key: 'LS62AB', lsoa_code: 'E01000002' },
      ])
      .execute();
    // Twenty women invited in 2025-26, across two practices and three postcodes; every third one not screened.
    for (let i = 0; i < 20; i++) {
      const p = await addParticipant(db, {
        given_name: faker.person.firstName('female'),
        family_name: faker.person.lastName(),
        date_of_birth: `${1955 + (i % 20)}-0${1 + (i % 9)}-15`,
        postcode: ['LS1 1AA', 'LS6 2AB', 'LS9 9ZZ'][i % 3],
      });
      if (i % 2)
        await db.updateTable('participant').set({ gp_practice_code: 'Y00002' }).where('id', '=', p.id).execute();
      const opened = `2025-0${4 + (i % 6)}-10`;
      await db
        .insertInto('episode')
        .values({
          participant_id: p.id,
          bso_code: 'TST',
          episode_type: i % 4 ? 'R' : 'C',
          opened_on: opened,
          screened_on: i % 3 ? `2025-${String(5 + (i % 6)).padStart(2, '0')}-01` : null,
        })
        .execute();
    }
    app = await testHub(db);
    base = await app.listen({ port: 0, host: '127.0.0.1' });
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await app?.close();
    await database?.drop();
  });

  it('shows uptake and coverage with charts and tables from the reports page: it passes axe', async () => {
    const page = await signedInPage(browser, base, 'admin');
    await page.goto(`${base}/reports`);
    await page.getByRole('link', { name: 'Uptake and coverage' }).click();
    await expect.poll(() => page.getByRole('heading', { name: 'Uptake and coverage', level: 1 }).count()).toBe(1);
    await expect.poll(() => page.getByRole('heading', { name: 'Summary' }).count()).toBe(1);
    for (const name of [
      'Uptake by age band, with 95% confidence intervals',
      'Uptake by deprivation quintile, with 95% confidence intervals',
      'Uptake by GP practice, highest first, with 95% confidence intervals',
      'Uptake and coverage by reporting year',
    ])
      await expect.poll(() => page.getByRole('img', { name }).count()).toBe(1);
    await expect
      .poll(() => page.getByRole('rowheader', { name: 'Unknown (postcode not in the lookup)' }).count())
      .toBe(1);
    if (process.env.SCREENSHOTS)
      await page.screenshot({ path: `${process.env.SCREENSHOTS}/uptake.png`, fullPage: true });
    expect(await axeViolations(page)).toEqual([]);
  });

  it('shows problems in the error summary, next to the fields, and recovers', async () => {
    const page = await signedInPage(browser, base, 'admin');
    await page.goto(`${base}/reports/uptake?office=TST&from=2025-13-01&to=2026-03-31`);
    await expect.poll(() => page.getByText('There is a problem').count()).toBe(1);
    expect(await axeViolations(page)).toEqual([]);
    await page.getByLabel('Invited from').fill('2025-04-01');
    await page.getByLabel('Site').selectOption('static-1');
    await page.getByRole('button', { name: 'Show uptake and coverage' }).click();
    await expect.poll(() => page.getByRole('heading', { name: 'Summary' }).count()).toBe(1);
    // Nobody here had an appointment, so no invitation was at a site.
    await expect.poll(() => page.getByText('Nobody was invited in this period').count()).toBe(1);
    expect(await axeViolations(page)).toEqual([]);
  });
});
