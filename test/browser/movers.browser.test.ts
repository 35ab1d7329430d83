import { faker } from '@faker-js/faker';
import type { FastifyInstance } from 'fastify';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { correctDemographics } from '../../src/store/participants.js';
import { bookAppointment } from '../../src/store/clinics.js';
import { freshDatabase } from '../support/database.js';
import { addParticipant, newClinics, smallOffice, TODAY } from '../support/fixtures.js';
import { testHub } from '../support/hub-client.js';
import { axeViolations, haveChromium, launchChromium, signedInPage } from '../support/browser.js';

faker.seed(808);

describe.skipIf(!haveChromium)('movers page in Chromium', () => {
  let database: Awaited<ReturnType<typeof freshDatabase>>;
  let app: FastifyInstance;
  let browser: Browser;
  let base: string;
  let participant: { id: string; nhs_number: string };

  beforeAll(async () => {
    database = await freshDatabase('pglite');
    const db = database.db;
    const office = await smallOffice(db);
    await db.insertInto('screening_office').values({ code: 'NTH', name: 'North Test Office' }).execute();
    await db
      .insertInto('gp_practice')
      .values({ ods_code: 'Y00009', name: 'Moorside Surgery', postcode: 'YO1 7HH', bso_code: 'NTH' })
      .execute();
    const clinics = await newClinics(db);
    participant = await addParticipant(db, {
      given_name: faker.person.firstName('female'),
      family_name: faker.person.lastName(),
    });
    // Booked at TST (which opens her episode), then staff correct her GP to a practice in NTH's area.
    await bookAppointment(db, { clinicId: clinics.tomorrowClinic, participantId: participant.id }, office.actor, TODAY);
    await correctDemographics(
      db,
      {
        participantId: participant.id,
        expectedVersion: 1,
        changes: { gp_practice_code: 'Y00009' },
        source: 'participant',
        sourceDate: TODAY,
        reason: 'Registered with a new GP after moving house',
      },
      office.actor,
    );
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

  it('chooses an office, lists who moved in, acknowledges one, and opens her record: every page passes axe', async () => {
    const page = await signedIn('admin');
    await page.getByRole('link', { name: 'Movers' }).first().click();
    await expect.poll(() => page.getByRole('heading', { name: 'Movers', level: 1 }).count()).toBe(1);
    expect(await axeViolations(page)).toEqual([]);

    // No office chosen: the message is next to the field and in the summary.
    await page.getByRole('button', { name: 'Show movers' }).click();
    await expect.poll(() => page.getByText('There is a problem').count()).toBe(1);
    expect(await axeViolations(page)).toEqual([]);

    await page.getByLabel('Screening office').selectOption('NTH');
    await page.getByRole('button', { name: 'Show movers' }).click();
    await expect.poll(() => page.getByRole('heading', { name: 'Moved in to North Test Office' }).count()).toBe(1);
    await expect.poll(() => page.getByText('Moved to the new office').count()).toBe(1);
    if (process.env.SCREENSHOTS)
      await page.screenshot({ path: `${process.env.SCREENSHOTS}/movers.png`, fullPage: true });
    expect(await axeViolations(page)).toEqual([]);

    await page.getByRole('button', { name: /Mark as seen/ }).click();
    await expect.poll(() => page.getByText('Move acknowledged for your office.').count()).toBe(1);
    // Nothing left to acknowledge, in or out.
    await expect.poll(() => page.getByText('To acknowledge (0)').count()).toBe(2);
    expect(await axeViolations(page)).toEqual([]);

    await page.locator('#moved-in ~ table a').first().click();
    await page.waitForURL(`${base}/participants/${participant.id}`);
    await expect.poll(() => page.getByRole('heading', { name: 'Moved between screening offices' }).count()).toBe(1);
    expect(await axeViolations(page)).toEqual([]);
  });
});
