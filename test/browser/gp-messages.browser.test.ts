import type { FastifyInstance } from 'fastify';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildHub } from '../../src/hub/app.js';
import { pollGpInbox } from '../../src/mesh/gp-system.js';
import { MeshClient, type MeshSettings } from '../../src/mesh/mesh-client.js';
import { startTestMailbox, type TestMailbox } from '../../src/mesh/test-mailbox.js';
import { pollGpMessageUpdates, sendQueuedGpMessages } from '../../src/store/gp-messages.js';
import { axeViolations, haveChromium, launchChromium, signedInPage } from '../support/browser.js';
import { freshDatabase } from '../support/database.js';
import { screenedExam } from '../support/exams.js';
import { smallOffice, TODAY } from '../support/fixtures.js';

const KEY = 'BrowserSharedKey';

describe.skipIf(!haveChromium)('GP messages page in Chromium', () => {
  let database: Awaited<ReturnType<typeof freshDatabase>>;
  let mailbox: TestMailbox;
  let app: FastifyInstance;
  let browser: Browser;
  let base: string;

  beforeAll(async () => {
    database = await freshDatabase('pglite');
    const db = database.db;
    const office = await smallOffice(db);
    mailbox = await startTestMailbox({
      sharedKey: KEY,
      mailboxes: [
        { id: 'HUBMBX01', password: 'hub' },
        { id: 'Y00001MB', password: 'gp' },
      ],
    });
    const settings: MeshSettings = { url: mailbox.url, mailbox: 'HUBMBX01', password: 'hub', sharedKey: KEY };
    await db.updateTable('gp_practice').set({ mesh_mailbox: 'Y00001MB' }).where('ods_code', '=', 'Y00001').execute();
    // Hillside's mailbox is not one MESH knows: its message fails.
    await db.updateTable('gp_practice').set({ mesh_mailbox: 'Y00002MB' }).where('ods_code', '=', 'Y00002').execute();
    for (const practice of ['Y00001', 'Y00001', 'Y00002']) {
      const exam = await screenedExam(db);
      await db
        .updateTable('participant')
        .set({ gp_practice_code: practice })
        .where('id', '=', exam.participantId)
        .execute();
      await db
        .insertInto('exam_result')
        .values({
          appointment_id: exam.appointmentId,
          episode_id: exam.episodeId,
          result: 'routine_recall',
          next_test_due: '2029-11-16',
          issued_by: office.users.admin.id,
        })
        .execute();
      await db
        .insertInto('communication')
        .values({
          participant_id: exam.participantId,
          episode_id: exam.episodeId,
          appointment_id: exam.appointmentId,
          recipient: 'gp',
          kind: 'result_normal',
          channel: 'mesh',
          gp_practice_code: practice,
        })
        .execute();
    }
    // Sent three hours ago; the practice downloads both but answers neither: both are overdue an acknowledgement.
    const hub = new MeshClient(settings);
    await sendQueuedGpMessages(db, hub, { now: new Date(Date.now() - 3 * 60 * 60 * 1000) });
    await pollGpInbox(new MeshClient({ ...settings, mailbox: 'Y00001MB', password: 'gp' }), { respond: () => null });
    await pollGpMessageUpdates(db, hub);
    app = await buildHub({
      db,
      secureCookies: false,
      today: () => TODAY,
      cookieSecret: 'test-cookie-secret-test-cookie-secret',
      mesh: { ...settings, pollIntervalSeconds: 3600, acknowledgementLimitHours: 2 },
    });
    base = await app.listen({ port: 0, host: '127.0.0.1' });
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await app?.close();
    await mailbox?.close();
    await database?.drop();
  });

  const signedIn = (username: string): Promise<Page> => signedInPage(browser, base, username);

  it('shows what needs attention, filters, retries a failed message: every page passes axe', async () => {
    const page = await signedIn('admin');
    await page.goto(`${base}/communications/gp-messages`);
    await expect.poll(() => page.getByRole('heading', { name: 'GP messages', level: 1 }).count()).toBe(1);
    await expect.poll(() => page.getByRole('heading', { name: 'Needs attention (3)' }).count()).toBe(1);
    await expect.poll(() => page.getByRole('heading', { name: 'Not acknowledged within 2 hours (2)' }).count()).toBe(1);
    await expect.poll(() => page.getByText(/Unregistered to address/).count()).toBe(1);
    if (process.env.SCREENSHOTS)
      await page.screenshot({ path: `${process.env.SCREENSHOTS}/gp-messages.png`, fullPage: true });
    expect(await axeViolations(page)).toEqual([]);

    await page.getByLabel('Status').selectOption('delivered');
    await page.getByRole('button', { name: 'Show messages' }).click();
    await page.waitForURL(/status=delivered/);
    await expect.poll(() => page.locator('#recent ~ table tbody tr').count()).toBe(2);
    expect(await axeViolations(page)).toEqual([]);

    // A status that is not one: the message is next to the field and in the summary.
    await page.goto(`${base}/communications/gp-messages?status=lost`);
    await expect.poll(() => page.getByText('There is a problem').count()).toBe(1);
    expect(await axeViolations(page)).toEqual([]);

    await page.getByRole('button', { name: /Retry now/ }).click();
    await expect.poll(() => page.getByText('The message will be sent again within a minute.').count()).toBe(1);
    expect(await axeViolations(page)).toEqual([]);
  });

  it('says so, with an error summary, when a retry finds the message being sent by another hub process', async () => {
    const db = database.db;
    const hillside = () =>
      db
        .selectFrom('communication')
        .select(['id', 'status'])
        .where('gp_practice_code', '=', 'Y00002')
        .executeTakeFirstOrThrow();
    // The last test's retry: the worker tries it at once, and MESH still does not know the mailbox.
    await expect.poll(async () => (await hillside()).status, { timeout: 10_000, interval: 100 }).toBe('failed');
    const page = await signedIn('admin');
    await page.goto(`${base}/communications/gp-messages`);
    await expect.poll(() => page.getByRole('button', { name: /Retry now/ }).count()).toBe(1);
    // Meanwhile another hub process has queued it again and claimed it (its lease runs five minutes).
    await db
      .updateTable('communication')
      .set({ status: 'queued', attempts: 1, last_error: null, next_attempt_at: new Date(Date.now() + 5 * 60 * 1000) })
      .where('id', '=', (await hillside()).id)
      .execute();
    await page.getByRole('button', { name: /Retry now/ }).click();
    await expect.poll(() => page.getByText('There is a problem').count()).toBe(1);
    await expect
      .poll(() => page.getByText('This message is being sent now: try again in a few minutes').count())
      .toBe(2);
    expect(await axeViolations(page)).toEqual([]);
    expect(await hillside()).toMatchObject({ status: 'queued' });
  });
});
