import type { Server } from 'node:http';
import type { FastifyInstance } from 'fastify';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStatusPage } from '../../src/gateway/status-page.js';
import { recordOutboxReport } from '../../src/store/transfers.js';
import { axeViolations, haveChromium, launchChromium } from '../support/browser.js';
import { freshDatabase } from '../support/database.js';
import { freePort } from '../support/dcmtk.js';
import { entry, fakeDesk, outboxImage } from '../support/fake-trailer-desk.js';
import { PASSWORD, smallOffice } from '../support/fixtures.js';
import { testHub } from '../support/hub-client.js';

describe.skipIf(!haveChromium)('image transfer pages in Chromium', () => {
  let database: Awaited<ReturnType<typeof freshDatabase>>;
  let hub: FastifyInstance;
  let base: string;
  let trailer: Server;
  let trailerUrl: string;
  let browser: Browser;

  beforeAll(async () => {
    database = await freshDatabase('pglite');
    await smallOffice(database.db);
    await database.db
      .insertInto('site')
      .values({ id: 'mobile-2', bso_code: 'TST', name: 'Mobile Unit 2', kind: 'mobile', ae_title: 'MOBILE2' })
      .execute();
    const gateway = async (siteId: string, minutesAgo: number) =>
      (
        await database.db
          .insertInto('gateway')
          .values({
            site_id: siteId,
            status: 'enrolled',
            certificate_serial: `SERIAL-${siteId}`,
            enrolled_at: new Date(),
            last_contact_at: new Date(Date.now() - minutesAgo * 60_000),
            last_contact_ip: '10.20.0.7',
          })
          .returning('id')
          .executeTakeFirstOrThrow()
      ).id;
    await recordOutboxReport(database.db, await gateway('mobile-1', 0), {
      images: 40,
      bytes: 900_000_000,
      oldestWaitingSeconds: 3600,
      sendBytesPerSecond: 1_250_000,
      capBitsPerSecond: 10_000_000,
      damaged: 0,
    });
    await recordOutboxReport(database.db, await gateway('mobile-2', 25), {
      images: 6,
      bytes: 120_000_000,
      oldestWaitingSeconds: 5 * 3600,
      sendBytesPerSecond: 0,
      capBitsPerSecond: null,
      damaged: 1,
    });
    hub = await testHub(database.db);
    base = await hub.listen({ port: 0, host: '127.0.0.1' });

    const port = await freePort();
    trailer = startStatusPage({
      port,
      host: '127.0.0.1',
      desk: fakeDesk({
        entries: [entry(), entry({ appointmentId: 'b', accessionNumber: 'SH00000002', familyName: 'Second' })],
        images: [
          outboxImage('sending', { minutesAgo: 40, acknowledged: 4_000_000, sent: 1_000_000 }),
          outboxImage('sealed', { minutesAgo: 30 }),
          outboxImage('received', { minutesAgo: 2, accessionNumber: 'SH00000002', priority: 'urgent' }),
          outboxImage('damaged', { accessionNumber: 'SH00000002' }),
          outboxImage('in_pacs'),
        ],
        report: { sendBytesPerSecond: 500_000, capBitsPerSecond: 8_000_000 },
        lastError: 'The hub closed the connection',
      }),
    });
    trailerUrl = `http://127.0.0.1:${port}`;
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await new Promise((resolve) => (trailer ? trailer.close(resolve) : resolve(undefined)));
    await hub?.close();
    await database?.drop();
  });

  it('shows support the transfer dashboard from the navigation, with alerts and a chart, passing axe', async () => {
    const context = await browser.newContext({ bypassCSP: true });
    const page = await context.newPage();
    await page.goto(`${base}/sign-in`);
    await page.getByLabel('Username').fill('support');
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL(`${base}/`);
    await page.getByRole('link', { name: 'Image transfers' }).first().click();
    await page.waitForURL(`${base}/support/transfers`);
    if (process.env.SCREENSHOTS)
      await page.screenshot({ path: `${process.env.SCREENSHOTS}/transfers.png`, fullPage: true });
    expect(await page.getByRole('heading', { name: /problems? needs? attention/ }).count()).toBe(1);
    const chart = page.getByRole('img', { name: 'Backlog waiting to be sent, in megabytes, by unit' });
    expect(await chart.count()).toBe(1);
    expect(await page.getByRole('row', { name: /Mobile Unit 2/ }).textContent()).toContain('Silent for 25 minutes');
    expect(await axeViolations(page)).toEqual([]);
    await context.close();
  });

  it('shows the trailer what it is sending, with a progress bar, passing axe (the page has no scripts)', async () => {
    const context = await browser.newContext({ bypassCSP: true });
    const page = await context.newPage();
    await page.goto(trailerUrl);
    if (process.env.SCREENSHOTS)
      await page.screenshot({ path: `${process.env.SCREENSHOTS}/trailer-sending.png`, fullPage: true });
    expect(await page.getByRole('heading', { name: 'Sending to the hub' }).count()).toBe(1);
    const progress = page.getByRole('progressbar', { name: 'Sent so far' });
    expect(await progress.count()).toBe(1);
    expect(await progress.getAttribute('value')).toBe('5000000');
    expect(
      await page
        .getByRole('row', { name: /TRAILER, Tessa/ })
        .first()
        .textContent(),
    ).toContain('3 received: 1 in PACS, 1 sending (25 %), 1 sealed');
    expect(await axeViolations(page)).toEqual([]);
    await context.close();
  });
});
