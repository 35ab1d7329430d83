import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildHub } from '../../src/hub/app.js';
import type { OutboxReport } from '../../src/protocol/transfer.js';
import { bookAppointment } from '../../src/store/clinics.js';
import { createUpload, finishUpload, recordOutboxReport, recordStoredImage } from '../../src/store/transfers.js';
import { freshDatabase } from '../support/database.js';
import { addParticipant, newClinics, smallOffice, TODAY, type Clinics, type Office } from '../support/fixtures.js';
import { PageClient, testHub } from '../support/hub-client.js';

const MINUTE = 60_000;

/** The page as text (tags gone, spaces collapsed). */
const text = (html: string) =>
  html
    .replace(/<[^>]+>/g, ' ')
    .replace(/&#(\d+);/g, (_m, c: string) => String.fromCharCode(Number(c)))
    .replace(/&#x([0-9a-f]+);/gi, (_m, c: string) => String.fromCharCode(parseInt(c, 16)))
    .replace(/\s+/g, ' ');

/** The dashboard row of a unit (its HTML), and as text. */
const rowHtml = (html: string, unit: string) => {
  const rows = html.split('<tr class="nhsuk-table__row">').slice(1);
  const found = rows.find((r) => r.includes(`>${unit}<`));
  expect(found, unit).toBeDefined();
  return found!;
};
const row = (html: string, unit: string) => text(rowHtml(html, unit));

const report = (overrides: Partial<OutboxReport> = {}): OutboxReport => ({
  images: 12,
  bytes: 340_000_000,
  oldestWaitingSeconds: 600,
  sendBytesPerSecond: 500_000,
  capBitsPerSecond: null,
  damaged: 0,
  ...overrides,
});

describe('image transfer pages and metrics', () => {
  let database: Awaited<ReturnType<typeof freshDatabase>>;
  let app: FastifyInstance;
  let office: Office;
  let clinics: Clinics;
  const gateways: Record<string, string> = {};

  /** An enrolled gateway for a unit (made directly: enrolment has its own tests), last in touch `minutesAgo`. */
  const gateway = async (siteId: string, minutesAgo: number | null) => {
    const { id } = await database.db
      .insertInto('gateway')
      .values({
        site_id: siteId,
        status: 'enrolled',
        certificate_serial: `SERIAL-${siteId}`,
        enrolled_at: new Date(),
        last_contact_at: minutesAgo === null ? null : new Date(Date.now() - minutesAgo * MINUTE),
        last_contact_ip: minutesAgo === null ? null : '10.20.0.7',
      })
      .returning('id')
      .executeTakeFirstOrThrow();
    gateways[siteId] = id;
    return id;
  };

  /** An image the PACS now holds, sent by a gateway for an accession number, through an upload as the hub makes one. */
  const storedImage = async (gatewayId: string, sop: string, accessionNumber = '') => {
    const upload = await createUpload(database.db, {
      id: crypto.randomUUID(),
      gatewayId,
      sopInstanceUid: sop,
      accessionNumber,
      priority: 'routine',
      length: 1000,
      waitedSeconds: 60,
    });
    await recordStoredImage(
      database.db,
      {
        sopInstanceUid: sop,
        sopClassUid: '1.2.840.10008.5.1.4.1.1.1.2',
        studyInstanceUid: '2.25.4242',
        accessionNumber,
        patientId: '',
        originalBytes: 2500,
        packedBytes: 1000,
        originalSha256: 'a'.repeat(64),
        pixelSha256: 'b'.repeat(64),
        codec: 'jpeg-ls',
      },
      { id: upload.id, gatewayId },
      'file archive (test)',
      office.actor,
    );
  };

  beforeAll(async () => {
    database = await freshDatabase('pglite');
    office = await smallOffice(database.db);
    clinics = await newClinics(database.db);
    await database.db
      .insertInto('site')
      .values([
        { id: 'mobile-2', bso_code: 'TST', name: 'Mobile Unit 2', kind: 'mobile', ae_title: 'MOBILE2' },
        { id: 'mobile-3', bso_code: 'TST', name: 'Mobile Unit 3', kind: 'mobile', ae_title: 'MOBILE3' },
      ])
      .execute();
    // Unit 1: connected and sending. Unit 2: its oldest image past 4 hours once the report's age is added, and two
    // damaged. Unit 3: silent for 20 minutes, never reported.
    await recordOutboxReport(database.db, await gateway('mobile-1', 0.5), report());
    await recordOutboxReport(
      database.db,
      await gateway('mobile-2', 1),
      report({
        images: 3,
        bytes: 60_000_000,
        oldestWaitingSeconds: 3 * 3600 + 45 * 60,
        sendBytesPerSecond: 0,
        damaged: 2,
      }),
    );
    await database.db
      .updateTable('gateway')
      .set({ outbox_reported_at: new Date(Date.now() - 30 * MINUTE) })
      .where('id', '=', gateways['mobile-2']!)
      .execute();
    await gateway('mobile-3', 20);
    await storedImage(gateways['mobile-1']!, '2.25.100001');
    const rejected = await createUpload(database.db, {
      id: crypto.randomUUID(),
      gatewayId: gateways['mobile-1']!,
      sopInstanceUid: '2.25.100002',
      accessionNumber: '',
      priority: 'routine',
      length: 1000,
      waitedSeconds: 0,
    });
    await finishUpload(database.db, rejected.id, 'rejected', 'the seal did not open');
    app = await testHub(database.db);
  });
  afterAll(async () => {
    await app.close();
    await database.drop();
  });

  it('shows support each unit: link, backlog, throughput, time to clear, damaged and rejected, with a chart', async () => {
    const client = new PageClient(app);
    await client.signIn('support');
    const home = await client.get('/');
    expect(home.body).toContain('href="/support/transfers"');
    const gatewaysPage = await client.get('/support/gateways');
    expect(gatewaysPage.body).toContain('href="/support/transfers"');

    const response = await client.get('/support/transfers');
    expect(response.statusCode).toBe(200);
    const html = response.body;
    const one = row(html, 'Mobile Unit 1');
    expect(one).toContain('Connected');
    expect(one).toContain('12 images, 340 MB');
    expect(one).toContain('oldest waiting 10 minutes');
    expect(one).toContain('4.0 Mbit/s');
    expect(one).toContain('1 image stored in the last hour');
    // 340 MB at 0.5 MB/s: 680 s.
    expect(one).toContain('About 11 minutes');
    expect(one).toMatch(/ 0 1 None $/);

    // The report is 30 minutes old: 3 h 45 min then is 4 h 15 min now, past the 4-hour limit.
    const two = row(html, 'Mobile Unit 2');
    expect(two).toContain('oldest waiting 4 hours 15 minutes');
    expect(two).toContain('Reported 30 minutes ago');
    expect(two).toContain('—');
    expect(two).toContain('Oldest image has waited 4 hours 15 minutes');
    expect(two).toContain('2 damaged images: send again from the machine');

    const three = row(html, 'Mobile Unit 3');
    expect(three).toContain('Silent for 20 minutes');
    expect(three).toContain('No report yet');
    expect(rowHtml(html, 'Mobile Unit 3')).toContain('nhsuk-tag--red');

    // The warning at the top names each problem.
    const callout = html.slice(html.indexOf('nhsuk-card--warning'), html.indexOf('<h2>Backlog by unit</h2>'));
    expect(text(callout)).toContain('3 problems need attention');
    expect(text(callout)).toContain('Mobile Unit 2 : Oldest image has waited 4 hours 15 minutes');
    expect(text(callout)).toContain('Mobile Unit 3 : Silent for 20 minutes');

    // The chart: an image with a title and a description that says what it shows.
    expect(html).toMatch(/<svg role="img" aria-labelledby="backlog-chart-title backlog-chart-desc"/);
    expect(html).toContain('<title id="backlog-chart-title">');
    expect(text(html.slice(html.indexOf('<desc'), html.indexOf('</desc>')))).toContain(
      'Mobile Unit 1, 340 MB; Mobile Unit 2, 60 MB; Mobile Unit 3, no report yet',
    );
    expect(html.match(/<rect /g)).toHaveLength(3);
  });

  it('alerts at the limit the hub is given, and not before', async () => {
    const strict = await buildHub({
      db: database.db,
      secureCookies: false,
      today: () => TODAY,
      cookieSecret: 'test-cookie-secret-test-cookie-secret',
      transferWaitLimitMinutes: 5,
    });
    try {
      const client = new PageClient(strict);
      await client.signIn('support');
      const html = (await client.get('/support/transfers')).body;
      expect(row(html, 'Mobile Unit 1')).toContain('Oldest image has waited 10 minutes');
      expect(html).toContain('longer than 5 minutes');
    } finally {
      await strict.close();
    }
    const client = new PageClient(app);
    await client.signIn('support');
    const html = (await client.get('/support/transfers')).body;
    expect(row(html, 'Mobile Unit 1')).not.toContain('Oldest image has waited');
    expect(html).toContain('longer than 4 hours');
  });

  it('keeps the dashboard to support: others are refused, and nobody signed out sees it', async () => {
    const admin = new PageClient(app);
    await admin.signIn('admin');
    expect((await admin.get('/support/transfers')).statusCode).toBe(403);
    const anonymous = await new PageClient(app).get('/support/transfers');
    expect(anonymous.statusCode).toBe(302);
    expect(anonymous.headers.location).toBe('/sign-in?next=%2Fsupport%2Ftransfers');
  });

  it('serves /metrics to this machine, and to others only with the token', async () => {
    const local = await app.inject({ method: 'GET', url: '/metrics' });
    expect(local.statusCode).toBe(200);
    expect(local.headers['content-type']).toBe('text/plain; version=0.0.4; charset=utf-8');
    const m = local.body;
    expect(m).toContain('# TYPE hub_transfer_images_stored_total counter\nhub_transfer_images_stored_total 1\n');
    expect(m).toContain('\nhub_transfer_original_bytes_total 2500\n');
    expect(m).toContain('\nhub_transfer_packed_bytes_total 1000\n');
    expect(m).toContain('hub_transfer_uploads{state="stored"} 1\n');
    expect(m).toContain('hub_transfer_uploads{state="rejected"} 1\n');
    expect(m).toContain('hub_transfer_uploads{state="receiving"} 0\n');
    const unit = (id: string) => `{unit="${id}",gateway="${gateways[id]}"}`;
    expect(m).toContain(`hub_gateway_outbox_images${unit('mobile-1')} 12\n`);
    expect(m).toContain(`hub_gateway_outbox_bytes${unit('mobile-2')} 60000000\n`);
    expect(m).toMatch(new RegExp(`hub_gateway_oldest_waiting_seconds\\{unit="mobile-2",[^}]*\\} 153\\d\\d\n`));
    expect(m).toContain(`hub_gateway_damaged_images${unit('mobile-2')} 2\n`);
    expect(m).toMatch(new RegExp(`hub_gateway_last_contact_age_seconds\\{unit="mobile-3",[^}]*\\} 120\\d\n`));
    // Unit 3 never reported: no outbox figures made up for it.
    expect(m).not.toContain('hub_gateway_outbox_images{unit="mobile-3"');
    for (const line of m.trimEnd().split('\n'))
      expect(line).toMatch(/^(# (HELP|TYPE) \w+ .+|\w+(\{[a-z_]+="[^"]*"(,[a-z_]+="[^"]*")*\})? -?[0-9.e+]+)$/);

    const remote = await app.inject({ method: 'GET', url: '/metrics', remoteAddress: '10.9.8.7' });
    expect(remote.statusCode).toBe(403);
    expect(remote.body).toContain('Authorization: Bearer <METRICS_TOKEN>');
    expect(remote.body).not.toContain('hub_');
    // A proxy on the hub machine forwarding someone else's request is not the hub machine.
    const proxied = await app.inject({ method: 'GET', url: '/metrics', headers: { 'x-forwarded-for': '10.9.8.7' } });
    expect(proxied.statusCode).toBe(403);
    const noTokenSet = await app.inject({
      method: 'GET',
      url: '/metrics',
      remoteAddress: '10.9.8.7',
      headers: { authorization: 'Bearer guess' },
    });
    expect(noTokenSet.statusCode).toBe(403);
    expect(noTokenSet.body).toContain('no METRICS_TOKEN');

    const withToken = await buildHub({ db: database.db, secureCookies: false, metricsToken: 'scrape-me-please' });
    try {
      const scrape = (authorization: string) =>
        withToken.inject({ method: 'GET', url: '/metrics', remoteAddress: '10.9.8.7', headers: { authorization } });
      const right = await scrape('Bearer scrape-me-please');
      expect(right.statusCode).toBe(200);
      expect(right.body).toContain('hub_transfer_images_stored_total 1');
      const wrong = await scrape('Bearer scrape-me-not');
      expect(wrong.statusCode).toBe(403);
      expect(wrong.body).toContain('not the METRICS_TOKEN');
    } finally {
      await withToken.close();
    }
  });

  it('shows on the record how many images of each appointment the PACS holds', async () => {
    const participant = await addParticipant(database.db, { given_name: 'Imogen', family_name: 'Imaged' });
    const appointmentId = await bookAppointment(
      database.db,
      { participantId: participant.id, clinicId: clinics.inaccessibleClinic },
      office.actor,
      TODAY,
    );
    const { accession_number: accession } = await database.db
      .selectFrom('appointment')
      .select('accession_number')
      .where('id', '=', appointmentId)
      .executeTakeFirstOrThrow();
    const client = new PageClient(app);
    await client.signIn('admin');
    const before = await client.get(`/participants/${participant.id}`);
    expect(before.body).not.toContain('Images in PACS');
    for (const sop of ['2.25.200001', '2.25.200002', '2.25.200003', '2.25.200004'])
      await storedImage(gateways['mobile-1']!, sop, accession);
    const after = await client.get(`/participants/${participant.id}`);
    expect(after.statusCode).toBe(200);
    expect(text(after.body)).toContain('Images in PACS: 4');
    expect(text(after.body)).toMatch(/Since \d+ \w+ \d{4}, \d\d:\d\d/);
  });
});
