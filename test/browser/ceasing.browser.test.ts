import type { FastifyInstance } from 'fastify';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshDatabase } from '../support/database.js';
import { addParticipant, PASSWORD, smallOffice } from '../support/fixtures.js';
import { testHub } from '../support/hub-client.js';
import { axeViolations, haveChromium, launchChromium } from '../support/browser.js';

describe.skipIf(!haveChromium)('ceasing and reinstating in Chromium', () => {
  let database: Awaited<ReturnType<typeof freshDatabase>>;
  let app: FastifyInstance;
  let browser: Browser;
  let base: string;
  let participant: { id: string };

  beforeAll(async () => {
    database = await freshDatabase('pglite');
    await smallOffice(database.db);
    participant = await addParticipant(database.db, {
      given_name: 'Celia',
      family_name: 'Browser',
      date_of_birth: '1961-08-30',
    });
    app = await testHub(database.db);
    base = await app.listen({ port: 0, host: '127.0.0.1' });
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await app?.close();
    await database?.drop();
  });

  it('ceases (with its error summary) and reinstates her from the record: every page passes axe', async () => {
    // bypassCSP lets the test inject axe-core; the pages' own scripts still run under the real policy otherwise.
    const context = await browser.newContext({ bypassCSP: true });
    const page = await context.newPage();
    await page.goto(`${base}/sign-in`);
    await page.getByLabel('Username').fill('admin');
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL(`${base}/`);

    await page.goto(`${base}/participants/${participant.id}`);
    await page.getByRole('link', { name: /Cease from screening/ }).click();
    await page.waitForURL(`${base}/participants/${participant.id}/cease`);
    expect(await axeViolations(page)).toEqual([]);

    // Nothing chosen, no evidence: the summary links to each field, and the page still passes.
    await page.getByRole('button', { name: 'Cease from screening' }).click();
    await expect.poll(() => page.getByText('There is a problem').count()).toBe(1);
    await expect.poll(() => page.locator('.nhsuk-error-summary a[href="#reason"]').count()).toBe(1);
    expect(await axeViolations(page)).toEqual([]);

    await page.getByLabel('Informed choice').check();
    await page.getByLabel('Evidence on record').fill('Signed letter, ref CB/1');
    await page.getByRole('button', { name: 'Cease from screening' }).click();
    await page.waitForURL(`${base}/participants/${participant.id}`);
    await expect.poll(() => page.getByText('Ceased from screening: Informed choice.').count()).toBe(1);
    expect(await axeViolations(page)).toEqual([]);

    await page.getByRole('link', { name: /Reinstate to screening/ }).click();
    await page.waitForURL(`${base}/participants/${participant.id}/reinstate`);
    expect(await axeViolations(page)).toEqual([]);
    await page.getByLabel('Who decided?').fill('Her own request');
    await page.getByLabel('Why is she being reinstated?').fill('She would like to be invited again');
    await page.getByRole('button', { name: 'Reinstate' }).click();
    await page.waitForURL(`${base}/participants/${participant.id}`);
    await expect
      .poll(() => page.locator('#screening-status').textContent())
      .toContain('Reinstated on 23 November 2026');
    expect(await axeViolations(page)).toEqual([]);

    // A woman on very high risk surveillance: her group and the test due show with the status.
    const vhr = await addParticipant(database.db, {
      given_name: 'Vita',
      family_name: 'Browser',
      date_of_birth: '1990-05-01',
    });
    await database.db
      .updateTable('participant')
      .set({ very_high_risk: true, vhr_risk_group: 'tp53', vhr_since: '2026-10-01' })
      .where('id', '=', vhr.id)
      .execute();
    await page.goto(`${base}/participants/${vhr.id}`);
    const status = () => page.locator('#screening-status').textContent();
    await expect.poll(status).toContain('TP53 (Li-Fraumeni syndrome)');
    await expect.poll(status).toContain('MRI, due 1 October 2026');
    expect(await axeViolations(page)).toEqual([]);
    await context.close();
  });
});
