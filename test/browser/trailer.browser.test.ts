import { execFile } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { FastifyInstance } from 'fastify';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { startGateway } from '../../src/gateway/gateway.js';
import { bookAppointment } from '../../src/store/clinics.js';
import { axeViolations, haveChromium, launchChromium } from '../support/browser.js';
import { freshDatabase } from '../support/database.js';
import { freePort } from '../support/dcmtk.js';
import { addParticipant, newClinics, smallOffice, TODAY } from '../support/fixtures.js';
import { gatewayListener, startTestGateway, until } from '../support/gateway-hub.js';
import { testHub } from '../support/hub-client.js';
import { writeSyntheticMammogram } from '../support/mammogram.js';

const run = promisify(execFile);

describe.skipIf(!haveChromium)("the trailer's gateway page in Chromium", () => {
  let database: Awaited<ReturnType<typeof freshDatabase>>;
  let hub: FastifyInstance;
  let listener: Awaited<ReturnType<typeof gatewayListener>>;
  let gateway: ReturnType<typeof startGateway>;
  let browser: Browser;
  let dataDir: string;
  let page: string;
  let appointments: { checkIn: string; correct: string };
  let dicomPort: number;

  beforeAll(async () => {
    database = await freshDatabase('pglite');
    const office = await smallOffice(database.db);
    const clinics = await newClinics(database.db);
    const book = async (given: string, family: string) => {
      const p = await addParticipant(database.db, { given_name: given, family_name: family });
      return bookAppointment(
        database.db,
        { participantId: p.id, clinicId: clinics.inaccessibleClinic },
        office.actor,
        TODAY,
      );
    };
    appointments = { checkIn: await book('Tessa', 'Trailer'), correct: await book('Coral', 'Misspelt') };
    hub = await testHub(database.db);
    listener = await gatewayListener(database);
    const statusPort = await freePort();
    ({ gateway, dicomPort, dataDir } = await startTestGateway(database, listener, office.actor, {
      status: { port: statusPort, host: '127.0.0.1' },
    }));
    page = `http://127.0.0.1:${statusPort}`;
    await until(() => gateway.feed.state.online, 10_000);
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await gateway?.close();
    await listener?.close();
    await hub?.close();
    await database?.drop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('checks a participant in and corrects details from the trailer page, passing axe (the page has no scripts)', async () => {
    const context = await browser.newContext({ bypassCSP: true, javaScriptEnabled: true });
    const tab = await context.newPage();
    await tab.goto(page);
    expect(await tab.getByText('Connected to the hub').count()).toBe(1);
    await tab.getByRole('button', { name: 'Checked in' }).first().click();
    await expect.poll(() => tab.getByText('Enter your name under “Who is working” first').count()).toBe(1);
    await tab.getByLabel('Your name (recorded with each change you make here)').fill('Morgan Mammographer');
    await tab.getByRole('button', { name: 'Save name' }).click();
    await expect.poll(() => tab.getByText('Morgan Mammographer').count()).toBeGreaterThan(0);
    const row = tab.getByRole('row', { name: /TRAILER, Tessa/ });
    await row.getByRole('button', { name: 'Checked in' }).click();
    await expect.poll(() => tab.getByText('Saved on the gateway').count()).toBe(1);
    await expect
      .poll(
        async () =>
          (
            await database.db
              .selectFrom('appointment')
              .select('status')
              .where('id', '=', appointments.checkIn)
              .executeTakeFirstOrThrow()
          ).status,
      )
      .toBe('checked_in');

    await tab.getByRole('link', { name: /Correct details of MISSPELT, Coral/ }).click();
    expect(await axeViolations(tab)).toEqual([]);
    await tab.getByLabel('Family name').fill('');
    await tab.getByRole('button', { name: 'Save correction' }).click();
    await expect.poll(() => tab.getByText('Enter the family name').count()).toBeGreaterThan(0);
    expect(await axeViolations(tab)).toEqual([]);
    await tab.getByLabel('Family name').fill('Mispelt');
    await tab.getByRole('button', { name: 'Save correction' }).click();
    await expect.poll(() => tab.getByText('Saved on the gateway').count()).toBe(1);
    await expect
      .poll(
        async () =>
          (
            await database.db
              .selectFrom('participant')
              .select('family_name')
              .where('family_name', '=', 'Mispelt')
              .execute()
          ).length,
      )
      .toBe(1);
    // Two images from the machine: one with Tessa's accession number, one with an accession nobody has here.
    const { accession_number: accession } = await database.db
      .selectFrom('appointment')
      .select('accession_number')
      .where('id', '=', appointments.checkIn)
      .executeTakeFirstOrThrow();
    for (const [uid, accessionNumber] of [
      ['2.25.7701', accession],
      ['2.25.7702', 'SH99999999'],
    ] as const) {
      const file = join(dataDir, `${uid}.dcm`);
      writeSyntheticMammogram(file, { sopInstanceUid: uid, side: 64, accessionNumber });
      await run('storescu', ['-aet', 'MOBILE1', '-aec', 'SHGATEWAY', '127.0.0.1', String(dicomPort), file]);
    }
    await tab.reload();
    await expect.poll(() => tab.locator('.nhsuk-tag', { hasText: 'At the hub' }).count()).toBe(2);
    expect(
      await tab
        .getByRole('row', { name: /TRAILER, Tessa/ })
        .first()
        .textContent(),
    ).toContain('1 received');
    expect(await tab.getByRole('row', { name: /Not matched/ }).textContent()).toContain('SH99999999');
    expect(await axeViolations(tab)).toEqual([]);
  });
});
