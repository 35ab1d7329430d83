import type { FastifyInstance } from 'fastify';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createUser } from '../../src/store/accounts.js';
import { axeViolations, haveChromium, launchChromium, signedInPage } from '../support/browser.js';
import { freshDatabase } from '../support/database.js';
import { PASSWORD, smallOffice } from '../support/fixtures.js';
import { testHub } from '../support/hub-client.js';
import { episode, woman } from '../support/kpi-data.js';

describe.skipIf(!haveChromium)('KPI and intervention pages in Chromium', () => {
  let database: Awaited<ReturnType<typeof freshDatabase>>;
  let app: FastifyInstance;
  let browser: Browser;
  let base: string;

  beforeAll(async () => {
    database = await freshDatabase('pglite');
    const db = database.db;
    await smallOffice(db);
    await createUser(db, {
      username: 'manager',
      displayName: 'Pat Manager',
      role: 'programme_manager',
      password: PASSWORD,
    });
    // A few invitations over three years at both practices, so the plots have points.
    for (const [practice, opened, screened] of [
      ['Y00001', '2023-09-01', '2023-09-20'],
      ['Y00001', '2024-09-01', null],
      ['Y00002', '2024-09-01', '2024-09-20'],
      ['Y00001', '2025-09-01', '2025-09-20'],
      ['Y00002', '2025-09-01', null],
    ] as const) {
      const id = await woman(db, 'TST', '1965-01-01', { gp: practice });
      await episode(db, 'TST', id, 'R', opened, screened);
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

  it('the dashboard, with a plot per KPI, passes axe; so do the interventions pages and the form with errors', async () => {
    const page = await signedInPage(browser, base, 'manager');
    // The only office is chosen for her; the year can be changed.
    await page.goto(`${base}/reports/kpis`);
    await page.getByLabel('Reporting year (1 April to 31 March)').selectOption('2025');
    await page.getByRole('button', { name: 'Change' }).click();
    await expect.poll(() => page.url()).toContain('year=2025');
    expect(await page.getByRole('heading', { level: 1 }).textContent()).toBe('Key performance indicators');
    expect(await page.locator('svg[aria-labelledby="plot-uptake-title plot-uptake-desc"] title').textContent()).toBe(
      "Uptake: the office's history",
    );
    expect(await page.locator('main svg[role="img"]').count()).toBe(9);
    expect(await axeViolations(page)).toEqual([]);

    await page.getByRole('link', { name: /Interventions: uptake before and after/ }).click();
    await page.waitForURL(/\/reports\/kpis\/interventions\?office=TST/);
    await page.getByRole('button', { name: 'Add an intervention' }).click();
    await page.waitForURL(/\/reports\/kpis\/interventions\/new/);
    await page.getByRole('button', { name: 'Add intervention' }).click();
    await page.getByRole('heading', { name: 'There is a problem' }).waitFor();
    expect(await page.getByRole('link', { name: 'Enter a short name for the intervention' }).count()).toBe(1);
    expect(await axeViolations(page)).toEqual([]);

    await page.getByLabel('Name').fill('Text reminders');
    await page.getByLabel('GP practice').selectOption('Y00001');
    await page.getByRole('group', { name: 'Start date' }).getByLabel('Day').fill('1');
    await page.getByRole('group', { name: 'Start date' }).getByLabel('Month').fill('6');
    await page.getByRole('group', { name: 'Start date' }).getByLabel('Year').fill('2025');
    await page.getByRole('button', { name: 'Add intervention' }).click();
    await page.waitForURL(/\/reports\/kpis\/interventions\?office=TST/);
    expect(await page.getByRole('heading', { name: 'Text reminders' }).count()).toBe(1);
    expect(await axeViolations(page)).toEqual([]);
  });
});
