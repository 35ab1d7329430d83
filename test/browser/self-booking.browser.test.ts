import type { FastifyInstance } from 'fastify';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatNhsNumber } from '../../src/pathway/nhs-number.js';
import { axeViolations, haveChromium, launchChromium } from '../support/browser.js';
import { freshDatabase } from '../support/database.js';
import { addParticipant, PASSWORD, smallOffice } from '../support/fixtures.js';
import { testHub } from '../support/hub-client.js';
import { addNeed, batchClinics } from '../support/invitation-batch.js';

describe.skipIf(!haveChromium)('sending invitations and self-booking in Chromium', () => {
  let database: Awaited<ReturnType<typeof freshDatabase>>;
  let app: FastifyInstance;
  let browser: Browser;
  let base: string;
  let booker: { id: string; nhs_number: string };

  beforeAll(async () => {
    database = await freshDatabase('pglite');
    await smallOffice(database.db);
    await batchClinics(database.db);
    await database.db
      .insertInto('clinic')
      .values({
        site_id: 'mobile-1',
        location_id: 'car-park',
        clinic_date: '2027-01-19',
        starts_at: '10:00',
        ends_at: '11:00',
        slot_minutes: 10,
      })
      .execute();
    booker = await addParticipant(database.db, {
      given_name: 'Bella',
      family_name: 'Booker',
      date_of_birth: '1962-07-09',
    });
    for (const [name, kind] of [
      ['Wheels', 'wheelchair'],
      ['Wheelie', 'wheelchair'],
      ['Print', 'large_print'],
    ] as const)
      await addNeed(
        database.db,
        (await addParticipant(database.db, { family_name: name, date_of_birth: '1961-02-03' })).id,
        kind,
      );
    app = await testHub(database.db);
    base = await app.listen({ port: 0, host: '127.0.0.1' });
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await app?.close();
    await database?.drop();
  });

  it('sends a batch, produces the letters, and she changes her appointment online: every page passes axe', async () => {
    const context = await browser.newContext({ bypassCSP: true });
    const admin = await context.newPage();
    await admin.goto(`${base}/sign-in`);
    await admin.getByLabel('Username').fill('admin');
    await admin.getByLabel('Password').fill(PASSWORD);
    await admin.getByRole('button', { name: 'Sign in' }).click();
    await admin.waitForURL(`${base}/`);
    await admin.goto(`${base}/invitations/batch`);
    await admin.getByLabel('Screening office').selectOption('TST');
    await admin.getByLabel('Postcode outcode').check();
    await admin.getByLabel('Outcode', { exact: true }).fill('LS6');
    await admin.getByLabel('Day').fill('12');
    await admin.getByLabel('Month', { exact: true }).fill('1');
    await admin.getByLabel('Year').fill('2027');
    await admin.getByRole('button', { name: 'Show who is in the batch' }).click();
    await admin.getByRole('link', { name: 'Send invitations' }).click();
    await expect.poll(() => admin.getByRole('heading', { name: 'Send invitations', level: 1 }).count()).toBe(1);
    expect(await admin.getByText('1 will not be offered an appointment').count()).toBe(1);
    expect(await axeViolations(admin)).toEqual([]);
    await admin.getByRole('button', { name: 'Send 3 invitations' }).click();
    await expect
      .poll(() => admin.getByText('Invitations sent: 3 offered an appointment, 1 with no suitable clinic').count())
      .toBe(1);
    expect(await axeViolations(admin)).toEqual([]);
    await admin.getByRole('button', { name: 'Produce the letters for printing' }).click();
    await expect.poll(() => admin.getByRole('heading', { name: 'Invitation letters' }).count()).toBe(1);
    expect(await axeViolations(admin)).toEqual([]);
    const letter = admin.locator('article', { hasText: formatNhsNumber(booker.nhs_number) });
    const code = (await letter.locator('code').textContent())!.trim();
    expect(code).toMatch(/^[A-Z2-9]{4}-[A-Z2-9]{4}$/);
    expect(await admin.locator('article', { hasText: 'Large print' }).count()).toBe(1);

    // She has no staff account: a fresh browser.
    const own = await browser.newContext({ bypassCSP: true });
    const page = await own.newPage();
    await page.goto(`${base}/book-your-screening`);
    expect(await axeViolations(page)).toEqual([]);
    await page.getByRole('button', { name: 'Continue' }).click();
    await expect.poll(() => page.getByText('Enter the code from your letter').count()).toBeGreaterThan(0);
    expect(await axeViolations(page)).toEqual([]);
    await page.getByLabel('NHS number').fill(booker.nhs_number);
    await page.getByLabel('Day').fill('9');
    await page.getByLabel('Month').fill('7');
    await page.getByLabel('Year').fill('1962');
    await page.getByLabel('Code from your letter').fill('ABCD-2345');
    await page.getByRole('button', { name: 'Continue' }).click();
    await expect
      .poll(() => page.getByText('We could not find an invitation with these details').count())
      .toBeGreaterThan(0);
    expect(await axeViolations(page)).toEqual([]);
    await page.getByLabel('Code from your letter').fill(code);
    await page.getByRole('button', { name: 'Continue' }).click();
    await page.waitForURL(`${base}/book-your-screening/appointment`);
    expect(await axeViolations(page)).toEqual([]);
    await page.getByRole('link', { name: 'Choose another time' }).click();
    await expect.poll(() => page.getByRole('heading', { name: 'Choose another time' }).count()).toBe(1);
    expect(await axeViolations(page)).toEqual([]);
    await page.getByRole('button', { name: 'Change my appointment' }).click();
    await expect.poll(() => page.getByText('Choose a time').count()).toBeGreaterThan(0);
    expect(await axeViolations(page)).toEqual([]);
    await page.locator('input[name="choice"]').last().check();
    await page.getByRole('button', { name: 'Change my appointment' }).click();
    await expect.poll(() => page.getByText('Your appointment has been changed').count()).toBe(1);
    expect(await axeViolations(page)).toEqual([]);
    await page.getByRole('link', { name: 'Cancel or ask us to contact you' }).click();
    expect(await axeViolations(page)).toEqual([]);
    await page.getByRole('button', { name: 'Continue' }).click();
    await expect.poll(() => page.getByText('Choose what you would like to do').count()).toBeGreaterThan(0);
    expect(await axeViolations(page)).toEqual([]);
    await page.getByLabel('Ask us to contact you').check();
    await page.getByLabel('Anything you would like to tell us').fill('Please phone in the morning');
    await page.getByRole('button', { name: 'Continue' }).click();
    await expect.poll(() => page.getByText('Thank you: we will contact you').count()).toBe(1);
  });
});
