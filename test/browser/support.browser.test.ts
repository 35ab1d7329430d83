import type { Server } from 'node:http';
import type { FastifyInstance } from 'fastify';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStatusPage } from '../../src/gateway/status-page.js';
import { recordHeartbeat, siteImageModeHistory } from '../../src/store/gateway-health.js';
import { axeViolations, haveChromium, launchChromium, signedInPage } from '../support/browser.js';
import { freshDatabase } from '../support/database.js';
import { freePort } from '../support/dcmtk.js';
import { fakeDesk } from '../support/fake-trailer-desk.js';
import { newClinics, smallOffice } from '../support/fixtures.js';
import { testHub } from '../support/hub-client.js';

describe.skipIf(!haveChromium)('the support page in Chromium', () => {
  let database: Awaited<ReturnType<typeof freshDatabase>>;
  let hub: FastifyInstance;
  let base: string;
  let trailer: Server;
  let trailerUrl: string;
  let browser: Browser;

  beforeAll(async () => {
    database = await freshDatabase('pglite');
    await smallOffice(database.db);
    await newClinics(database.db); // one today at Mobile Unit 1
    const gateway = async (siteId: string) =>
      (
        await database.db
          .insertInto('gateway')
          .values({
            site_id: siteId,
            status: 'enrolled',
            certificate_serial: `SERIAL-${siteId}`,
            enrolled_at: new Date(),
            last_contact_at: new Date(),
            last_contact_ip: '10.20.0.7',
          })
          .returning('id')
          .executeTakeFirstOrThrow()
      ).id;
    // Mobile Unit 1 answered a ping just now, after a TLS failure; the static site's gateway last did 5 minutes ago.
    await recordHeartbeat(database.db, await gateway('mobile-1'), {
      roundTripMs: 84,
      stream: 'test',
      report: {
        online: true,
        outbox: { awaiting: 3, sending: 1 },
        lastFailure: {
          phase: 'tls_handshake',
          message: 'socket hang up during the handshake',
          at: new Date().toISOString(),
        },
        lastOutage: {
          failure: { phase: 'silent_link', message: 'nothing from the hub for 45 s', at: '2026-11-23T02:10:00.000Z' },
          from: '2026-11-23T02:10:00.000Z',
          until: '2026-11-23T05:40:00.000Z',
        },
        version: '0.1.0',
        mode: 'normal',
      },
    });
    await recordHeartbeat(
      database.db,
      await gateway('static-1'),
      {
        roundTripMs: 120,
        stream: 'test',
        report: { online: true, outbox: { awaiting: 0, sending: 0 }, version: '0.1.0', mode: 'normal' },
      },
      new Date(Date.now() - 5 * 60_000),
    );
    hub = await testHub(database.db);
    base = await hub.listen({ port: 0, host: '127.0.0.1' });

    const port = await freePort();
    trailer = startStatusPage({
      port,
      host: '127.0.0.1',
      desk: {
        ...fakeDesk(),
        imageMode: () => ({
          mode: 'manual_images',
          reason: 'Link keeps dropping',
          since: new Date().toISOString(),
          by: 'support',
        }),
      },
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

  it('shows each unit’s last round trip, failure and clinics, and switches manual images mode, passing axe', async () => {
    const page = await signedInPage(browser, base, 'support');
    await page.getByRole('link', { name: 'Support', exact: true }).first().click();
    await page.waitForURL(`${base}/support`);
    if (process.env.SCREENSHOTS)
      await page.screenshot({ path: `${process.env.SCREENSHOTS}/support.png`, fullPage: true });
    const mobile = page.getByRole('region', { name: 'Mobile Unit 1' });
    const central = page.getByRole('region', { name: 'Central Breast Unit' });
    expect(await mobile.locator('[data-round-trip]').textContent()).toMatch(/\d+ seconds? ago\s+took 84 ms/);
    expect(await mobile.locator('[data-round-trip] .nhsuk-tag--green').count()).toBe(1);
    // Five minutes without an answered ping: red, and said in words.
    expect(await central.locator('[data-round-trip] .nhsuk-tag--red').textContent()).toContain('5 minutes ago');
    expect(await central.locator('[data-round-trip]').textContent()).toContain('No ping answered for over 90 seconds');
    const failure = await mobile.locator('[data-failure]').textContent();
    expect(failure).toContain('Secure connection (TLS handshake)');
    expect(failure).toContain('socket hang up during the handshake');
    expect(failure).toContain('Something between the unit and the hub');
    // The night's outage is kept after the link came back, with its phase.
    expect(await mobile.locator('[data-outage]').textContent()).toMatch(
      /Last outage: Link carries nothing from .* until .*: nothing from the hub for 45 s/,
    );
    // No image has failed to reach the PACS in this hub process.
    expect(await page.locator('[data-pacs]').textContent()).toContain('No failure storing images in the PACS');
    expect(await mobile.textContent()).toContain('3 waiting to send, 1 sending');
    expect(await mobile.textContent()).toMatch(/Supermarket car park: 0 booked/);
    // The probe's place (its results come from src/store/probes.ts when the hub wires them).
    expect(await mobile.locator('[data-probe]').count()).toBe(1);
    expect(await axeViolations(page)).toEqual([]);

    // A switch without a reason is refused, with the NHS error summary linking to the field.
    await mobile.getByRole('button', { name: 'Switch to manual images mode' }).click();
    await page.getByRole('heading', { name: 'There is a problem' }).waitFor();
    expect(await page.getByRole('link', { name: 'Give a reason for switching to manual images mode' }).count()).toBe(1);
    expect(await axeViolations(page)).toEqual([]);

    await page
      .getByRole('region', { name: 'Mobile Unit 1' })
      .getByLabel('Reason for switching Mobile Unit 1 to manual images mode')
      .fill('Gateway link down: clinic carries on');
    await page
      .getByRole('region', { name: 'Mobile Unit 1' })
      .getByRole('button', { name: 'Switch to manual images mode' })
      .click();
    await page.getByText('Mobile Unit 1 is in manual images mode').waitFor();
    const switched = page.getByRole('region', { name: 'Mobile Unit 1' });
    expect(await switched.locator('[data-mode]').getAttribute('data-mode')).toBe('manual_images');
    expect(await switched.locator('[data-mode]').textContent()).toContain('Gateway link down: clinic carries on');
    expect(await switched.locator('[data-mode]').textContent()).toContain('The gateway has not heard of this yet');
    expect(await axeViolations(page)).toEqual([]);
    expect((await siteImageModeHistory(database.db, 'mobile-1')).map((h) => h.changed_by_name)).toEqual(['support']);

    // And back, with a reason: nothing is deleted.
    await switched.getByLabel('Reason for switching Mobile Unit 1 back to normal').fill('Router restarted');
    await switched.getByRole('button', { name: 'Switch back to normal' }).click();
    await page.getByText('Mobile Unit 1 is back in normal mode').waitFor();
    expect(
      await page.getByRole('region', { name: 'Mobile Unit 1' }).locator('[data-mode]').getAttribute('data-mode'),
    ).toBe('normal');
    expect((await siteImageModeHistory(database.db, 'mobile-1')).map((h) => h.mode)).toEqual([
      'normal',
      'manual_images',
    ]);
    await page.context().close();
  });

  it('shows the trailer a banner while manual images mode is on, passing axe', async () => {
    const context = await browser.newContext({ bypassCSP: true });
    const page = await context.newPage();
    await page.goto(trailerUrl);
    expect(await page.getByRole('heading', { name: /Manual images mode is on/ }).count()).toBe(1);
    expect(await page.locator('#manual-images').textContent()).toContain('Keep every image on the mammography machine');
    expect(await axeViolations(page)).toEqual([]);
    await context.close();
  });
});
