import { X509Certificate } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { COHORT_HEADER, cohortCsvLine, type CohortRow } from '../../src/cohort/cohort-csv.js';
import { bookAppointment } from '../../src/store/clinics.js';
import { importCohort } from '../../src/store/cohort-import.js';
import { listDataConflicts } from '../../src/store/data-conflicts.js';
import { applyGatewayChange } from '../../src/store/gateway-changes.js';
import { addGateway, enrolGateway, gatewayByCertificate } from '../../src/store/gateways.js';
import { correctDemographics } from '../../src/store/participants.js';
import { addItem, recordItemAbsent } from '../../src/store/record-items.js';
import { createGatewayKey } from '../../src/tls/certificates.js';
import { axeViolations, haveChromium, launchChromium, signedInPage } from '../support/browser.js';
import { freshDatabase } from '../support/database.js';
import { addParticipant, newClinics, nextNhsNumber, smallOffice, TODAY } from '../support/fixtures.js';
import { testHub } from '../support/hub-client.js';

describe.skipIf(!haveChromium)('data conflict queue in Chromium', () => {
  let database: Awaited<ReturnType<typeof freshDatabase>>;
  let app: FastifyInstance;
  let browser: Browser;
  let base: string;
  let moved: { id: string };

  beforeAll(async () => {
    database = await freshDatabase('pglite');
    const db = database.db;
    const office = await smallOffice(db);
    const clinics = await newClinics(db);

    // A feed address dated after the trailer's correction.
    const feedRow: CohortRow = {
      nhsNumber: nextNhsNumber(),
      familyName: 'Mover',
      givenName: 'Maud',
      dateOfBirth: '1969-04-05',
      dateOfDeath: null,
      sex: 'female',
      addressLine1: '3 Feed Street',
      addressLine2: null,
      town: 'Leeds',
      postcode: 'LS6 2AB',
      gpPracticeCode: 'Y00001',
      effectiveDate: '2026-10-01',
    };
    const run = (row: CohortRow) =>
      importCohort(db, [COHORT_HEADER + cohortCsvLine(row)], { actor: office.actor, today: TODAY, sourceName: 'x' });
    await run(feedRow);
    const maud = await db
      .selectFrom('participant')
      .select(['id', 'version'])
      .where('nhs_number', '=', feedRow.nhsNumber)
      .executeTakeFirstOrThrow();
    moved = maud;
    await correctDemographics(
      db,
      {
        participantId: maud.id,
        expectedVersion: maud.version,
        changes: { address_line1: '9 New Road', postcode: 'LS1 4AP' },
        source: 'gateway',
        sourceDate: '2026-11-20',
        reason: 'Corrected on the trailer',
      },
      office.actor,
    );
    await run({ ...feedRow, addressLine1: '5 Old Lane', postcode: 'LS2 9JT', effectiveDate: '2026-11-22' });

    // The GP's record has no implants; she said she has them.
    const ivy = await addParticipant(db, { given_name: 'Ivy', family_name: 'Implant' });
    await addItem(
      db,
      ivy.id,
      {
        kind: 'implants',
        side: 'bilateral',
        value: null,
        details: '',
        temporaryUntil: null,
        source: 'participant',
        sourceDate: '2026-11-01',
      },
      office.actor,
    );
    await recordItemAbsent(
      db,
      ivy.id,
      { kind: 'implants', source: 'gp', sourceDate: '2026-11-10', details: '' },
      office.actor,
    );

    // A trailer's name correction that crossed one made at the hub.
    const { code } = await addGateway(db, 'mobile-1', office.actor);
    const enrolled = await enrolGateway(db, code, (await createGatewayKey()).requestPem, null);
    const gateway = (await gatewayByCertificate(db, new X509Certificate(enrolled.certificatePem).serialNumber))!;
    const tess = await addParticipant(db, { given_name: 'Tess', family_name: 'Trailer' });
    const appointmentId = await bookAppointment(
      db,
      { participantId: tess.id, clinicId: clinics.inaccessibleClinic },
      office.actor,
      TODAY,
    );
    await db.updateTable('participant').set({ family_name: 'Trailor', version: 2 }).where('id', '=', tess.id).execute();
    await applyGatewayChange(
      db,
      gateway,
      {
        id: '5d0c1f5e-0000-4000-8000-0000000000c1',
        kind: 'demographics',
        appointmentId,
        participantId: tess.id,
        madeAt: `${TODAY}T10:00:00Z`,
        madeBy: 'Morgan',
        fields: { family_name: { seen: 'Trailer', value: 'Trailar' } },
      },
      null,
      TODAY,
    );
    expect((await listDataConflicts(db, 'open')).map((c) => c.kind).sort()).toEqual([
      'field',
      'record_item',
      'trailer',
    ]);

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

  it('shows conflicts of each kind from the record, asks for a reason, and resolves one: every page passes axe', async () => {
    const page = await signedIn('admin');
    await page.goto(`${base}/participants/${moved.id}`);
    await expect.poll(() => page.getByText('1 data conflict to resolve').count()).toBe(1);
    expect(await axeViolations(page)).toEqual([]);

    await page.getByRole('link', { name: 'Resolve in the data conflicts queue' }).click();
    await page.waitForURL(`${base}/conflicts`);
    await expect.poll(() => page.getByRole('heading', { name: 'Data conflicts', level: 1 }).count()).toBe(1);
    expect(await page.getByText('Personal details: Address').count()).toBe(1);
    expect(await page.getByText('Clinical history: Breast implants').count()).toBe(1);
    expect(await page.getByText('Change from a mobile unit: Personal details').count()).toBe(1);
    if (process.env.SCREENSHOTS)
      await page.screenshot({ path: `${process.env.SCREENSHOTS}/conflicts.png`, fullPage: true });
    expect(await axeViolations(page)).toEqual([]);

    const [address] = (await listDataConflicts(database.db, 'open')).filter((c) => c.kind === 'field');
    const card = page.locator(`#conflict-${address!.id}`);
    expect(await card.getByRole('cell', { name: '5 Old Lane' }).count()).toBe(1);
    expect(await card.getByRole('cell', { name: '9 New Road' }).count()).toBe(1);

    // Chose, but gave no reason: the summary links to the field.
    await card.getByLabel("Keep the record's value").check();
    await card.getByRole('button', { name: 'Save decision' }).click();
    await expect.poll(() => page.getByText('There is a problem').count()).toBe(1);
    expect(await axeViolations(page)).toEqual([]);
    await page.getByRole('link', { name: 'Give a reason for your decision' }).click();
    const again = page.locator(`#conflict-${address!.id}`);
    expect(await again.getByLabel("Keep the record's value").isChecked()).toBe(true);
    await page.locator(`#reason-${address!.id}`).fill('She showed her tenancy agreement on the trailer');
    await again.getByRole('button', { name: 'Save decision' }).click();
    await expect.poll(() => page.getByText("Conflict resolved: the record's value stands.").count()).toBe(1);
    expect(await page.locator(`#conflict-${address!.id}`).count()).toBe(0);
    await expect.poll(() => page.getByRole('cell', { name: /Record's value kept by Alex Admin/ }).count()).toBe(1);
    expect(await page.getByRole('cell', { name: 'She showed her tenancy agreement on the trailer' }).count()).toBe(1);
    expect(await axeViolations(page)).toEqual([]);

    // The record no longer warns.
    await page.goto(`${base}/participants/${moved.id}`);
    expect(await page.getByText(/data conflicts? to resolve/).count()).toBe(0);
  });
});
