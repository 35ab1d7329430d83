import type { FastifyInstance } from 'fastify';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshDatabase } from '../support/database.js';
import { addParticipant, newClinics, PASSWORD, smallOffice } from '../support/fixtures.js';
import { testHub } from '../support/hub-client.js';
import { axeViolations, haveChromium, launchChromium } from '../support/browser.js';

describe.skipIf(!haveChromium)('hub in Chromium', () => {
  let database: Awaited<ReturnType<typeof freshDatabase>>;
  let app: FastifyInstance;
  let browser: Browser;
  let base: string;
  let participant: { id: string; nhs_number: string };

  beforeAll(async () => {
    database = await freshDatabase('pglite');
    await smallOffice(database.db);
    await newClinics(database.db);
    participant = await addParticipant(database.db, {
      given_name: 'Brenda',
      family_name: 'Browser',
      date_of_birth: '1962-07-09',
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

  async function signedIn(username: string, javaScriptEnabled = true): Promise<Page> {
    // bypassCSP lets the test inject axe-core; the pages' own scripts still run under the real policy otherwise.
    const context = await browser.newContext({ bypassCSP: true, javaScriptEnabled });
    const page = await context.newPage();
    await page.goto(`${base}/sign-in`);
    if (javaScriptEnabled) expect(await axeViolations(page)).toEqual([]);
    await page.getByLabel('Username').fill(username);
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL(`${base}/`);
    return page;
  }

  it('signs in, searches, opens the record, adds an implant, books and cancels: every page passes axe', async () => {
    const page = await signedIn('admin');
    expect(await axeViolations(page)).toEqual([]);

    await page.getByRole('link', { name: 'Participants' }).first().click();
    await page.getByLabel('Family name').fill('brow');
    await page.getByLabel('Day').fill('9');
    await page.getByLabel('Month').fill('7');
    await page.getByLabel('Year').fill('1962');
    await page.getByRole('button', { name: 'Search by name and date of birth' }).click();
    if (process.env.SCREENSHOTS)
      await page.screenshot({ path: `${process.env.SCREENSHOTS}/search.png`, fullPage: true });
    await expect.poll(() => page.getByRole('heading', { name: /1 participant found/ }).count()).toBe(1);
    expect(await axeViolations(page)).toEqual([]);

    // A mistyped NHS number: the message is next to the field and in the summary.
    await page.getByLabel('NHS number').fill('999 123 4568');
    await page.getByRole('button', { name: 'Search by NHS number' }).click();
    await expect.poll(() => page.getByText('There is a problem').count()).toBe(1);
    expect(await axeViolations(page)).toEqual([]);

    await page.getByLabel('NHS number').fill(participant.nhs_number);
    await page.getByRole('button', { name: 'Search by NHS number' }).click();
    await page.waitForURL(`${base}/participants/${participant.id}`);
    await expect.poll(() => page.getByRole('heading', { level: 1 }).textContent()).toContain('BROWSER');
    expect(await axeViolations(page)).toEqual([]);

    await page.getByRole('link', { name: 'Add clinical history' }).click();
    await page.getByRole('button', { name: 'Add to the record' }).click();
    await expect.poll(() => page.getByText('Select what kind of information this is').count()).toBeGreaterThan(0);
    expect(await axeViolations(page)).toEqual([]);
    await page.getByLabel('Breast implants').check();
    await page.getByLabel('Both sides').check();
    await page.getByLabel('Participant', { exact: true }).check();
    const when = page.getByRole('group', { name: 'When did the source give it?' });
    await when.getByLabel('Day').fill('20');
    await when.getByLabel('Month').fill('11');
    await when.getByLabel('Year').fill('2026');
    await page.getByRole('button', { name: 'Add to the record' }).click();
    await page.waitForURL(`${base}/participants/${participant.id}#clinical`);
    await expect.poll(() => page.getByText('Breast implants added').count()).toBe(1);
    await expect.poll(() => page.locator('#adjustments').textContent()).toContain('Breast implants');

    await page.getByRole('button', { name: 'Book an appointment' }).click();
    await expect.poll(() => page.getByText('Special appointment: Breast implants').count()).toBe(1);
    expect(await axeViolations(page)).toEqual([]);
    const option = await page.locator('#slot option').nth(1).getAttribute('value');
    await page.locator('#slot').selectOption(option);
    await page.getByRole('button', { name: 'Book appointment' }).click();
    await expect.poll(() => page.getByText('Appointment booked').count()).toBe(1);
    expect(await axeViolations(page)).toEqual([]);

    await page.getByLabel('Reason for cancelling').fill('Participant asked to cancel');
    await page.getByRole('button', { name: 'Cancel appointment' }).click();
    await expect.poll(() => page.getByText('Appointment cancelled: the slot is free again').count()).toBe(1);

    for (const path of ['/clinics', '/admin/audit']) {
      await page.goto(`${base}${path}`);
      expect(await axeViolations(page), path).toEqual([]);
    }
    await page.getByRole('link', { name: 'Clinics' }).first().click();
    await page.locator('table a').first().click();
    expect(await axeViolations(page)).toEqual([]);
  });

  it("shows today's clinic to a mammographer with adjustments highlighted, and passes axe", async () => {
    const page = await signedIn('mammographer');
    await page.goto(`${base}/today?site=static-1`);
    await expect.poll(() => page.getByRole('heading', { name: "Today's clinic" }).count()).toBe(1);
    expect(await axeViolations(page)).toEqual([]);
  });

  it('lets support create an enrolment code and see gateways, and admins see data conflicts: every page passes axe', async () => {
    const support = await signedIn('support');
    await support.getByRole('link', { name: 'Gateways' }).first().click();
    expect(await axeViolations(support)).toEqual([]);
    await support.getByLabel('Unit or site the gateway is for').selectOption('mobile-1');
    await support.getByRole('button', { name: 'Create enrolment code' }).click();
    await expect.poll(() => support.getByText('Shown once').count()).toBe(1);
    expect(await axeViolations(support)).toEqual([]);
    await support.goto(`${base}/support/gateways`);
    expect(await axeViolations(support)).toEqual([]);
    const admin = await signedIn('admin');
    await admin.getByRole('link', { name: 'Data conflicts' }).first().click();
    await expect.poll(() => admin.getByRole('heading', { name: 'Data conflicts' }).count()).toBe(1);
    expect(await axeViolations(admin)).toEqual([]);
  });

  it('lets a programme planner draw an invitation batch by outcode and see who is left out and why, passing axe', async () => {
    const admin = await signedIn('admin');
    await admin.getByRole('link', { name: 'Invitation batches' }).first().click();
    await expect.poll(() => admin.getByRole('heading', { name: 'Invitation batch' }).count()).toBe(1);
    expect(await axeViolations(admin)).toEqual([]);
    await admin.getByLabel('Screening office').selectOption('TST');
    await admin.getByLabel('Postcode outcode').check();
    await admin.getByLabel('Outcode', { exact: true }).fill('LS6');
    await admin.getByLabel('Day').fill('12');
    await admin.getByLabel('Month', { exact: true }).fill('1');
    await admin.getByLabel('Year').fill('2027');
    await admin.getByRole('button', { name: 'Show who is in the batch' }).click();
    await expect.poll(() => admin.locator('#results').count()).toBe(1);
    expect(await admin.locator('#results').textContent()).toMatch(/^\d+ to invite, \d+ left out$/);
    expect(await axeViolations(admin)).toEqual([]);
  });

  it('works with JavaScript turned off: sign in, search, open a record', async () => {
    const page = await signedIn('reader', false);
    await page.goto(`${base}/participants`);
    await page.getByLabel('NHS number').fill(participant.nhs_number);
    await page.getByRole('button', { name: 'Search by NHS number' }).click();
    await page.waitForURL(`${base}/participants/${participant.id}`);
    await expect.poll(() => page.getByRole('heading', { level: 1 }).textContent()).toContain('BROWSER');
  });
});
