import { request } from 'node:http';
import { describe, expect, it } from 'vitest';
import { duration } from '../../../src/pathway/dates.js';
import { renderMetrics, renderStatus, startStatusPage } from '../../../src/gateway/status-page.js';
import { freePort } from '../../support/dcmtk.js';
import { entry, fakeDesk, NOW, outboxImage } from '../../support/fake-trailer-desk.js';

/** The page as text (tags gone, spaces collapsed), for reading what people see. */
const text = (html: string) =>
  html
    .replace(/<[^>]+>/g, ' ')
    .replace(/&#(\d+);/g, (_m, c: string) => String.fromCharCode(Number(c)))
    .replace(/\s+/g, ' ');

/** The part of the page from one h2 to the next. */
const section = (html: string, heading: string) => {
  const start = html.indexOf(`<h2>${heading}</h2>`);
  expect(start, heading).toBeGreaterThanOrEqual(0);
  const end = html.indexOf('<h2>', start + 4);
  return html.slice(start, end < 0 ? undefined : end);
};

const render = (desk: ReturnType<typeof fakeDesk>) => renderStatus(desk, 'csrf-token', {}, NOW);

describe("the trailer page's image transfer", () => {
  it("shows each exam's images by state in today's worklist, and damaged ones as a red tag with what to do", () => {
    const sending = outboxImage('sending', { acknowledged: 4_000_000, sent: 4_000_000 });
    const desk = fakeDesk({
      entries: [entry(), entry({ appointmentId: 'b', accessionNumber: 'SH00000002', familyName: 'Second' })],
      images: [
        sending,
        outboxImage('sealed'),
        outboxImage('in_pacs'),
        outboxImage('in_pacs'),
        outboxImage('damaged', { accessionNumber: 'SH00000002' }),
        outboxImage('in_pacs', { accessionNumber: 'SH00000002' }),
      ],
    });
    const worklist = section(render(desk), "Today's worklist");
    expect(text(worklist)).toContain('4 received: 2 in PACS, 1 sending (40 %), 1 sealed');
    expect(text(worklist)).toContain('2 received: 1 in PACS');
    expect(worklist).toContain(
      '<strong class="nhsuk-tag nhsuk-tag--red">1 damaged</strong> <span class="nhsuk-body-s">send again from the machine</span>',
    );
    // An exam with none yet says so.
    expect(text(section(render(fakeDesk({ images: [] })), "Today's worklist"))).toContain('None yet');
  });

  it('says what is waiting, how fast it goes, the cap, the time to clear and the last error, above the images received', () => {
    const images = [
      outboxImage('sending', { minutesAgo: 95, acknowledged: 6_000_000, sent: 2_000_000 }),
      outboxImage('sealed', { minutesAgo: 30 }),
      outboxImage('received', { minutesAgo: 5, priority: 'urgent', accessionNumber: 'SH77777777' }),
    ];
    const desk = fakeDesk({
      images,
      report: { sendBytesPerSecond: 250_000, capBitsPerSecond: 4_000_000, bytes: 45_000_000 },
      lastError: 'connect ETIMEDOUT 10.0.0.1:8443',
    });
    const html = render(desk);
    expect(html.indexOf('<h2>Sending to the hub</h2>')).toBeLessThan(html.indexOf('<h2>Images received</h2>'));
    const sending = text(section(html, 'Sending to the hub'));
    expect(sending).toContain('Images waiting 3');
    expect(sending).toContain('To send 45 MB');
    expect(sending).toContain('Longest wait 1 hour 35 minutes');
    expect(sending).toContain('Send rate 2.0 Mbit/s');
    expect(sending).toContain('Bandwidth cap in force 4.0 Mbit/s');
    expect(sending).toContain('Estimated time to clear About 3 minutes');
    expect(sending).toContain('Last error connect ETIMEDOUT 10.0.0.1:8443');
    // The one sending has a progress bar, labelled, with the same in words.
    expect(html).toContain(
      '<label class="nhsuk-u-visually-hidden" for="progress-0">Sent so far</label><progress id="progress-0" max="20000000" value="8000000">40 %</progress>',
    );
    expect(sending).toContain('40 % (8.0 MB of 20 MB)');
    expect(sending).toContain('TRAILER, Tessa');
    expect(sending).toContain('Accession SH77777777');
    expect(sending).toContain('Urgent');
    expect(sending).toContain('Received, waiting to be sealed');
  });

  it('says none for no cap, a dash when nothing has been sent lately, and nothing to send when all is sent', () => {
    const stuck = text(section(render(fakeDesk({ images: [outboxImage('sealed')] })), 'Sending to the hub'));
    expect(stuck).toContain('Bandwidth cap in force none');
    expect(stuck).toContain('Estimated time to clear —');
    expect(stuck).not.toContain('Last error');
    const clear = text(section(render(fakeDesk({ images: [outboxImage('in_pacs')] })), 'Sending to the hub'));
    expect(clear).toContain('Estimated time to clear Nothing to send');
    expect(clear).toContain('Longest wait Nothing waiting');
    expect(clear).toContain('Every image received has been sent to the hub.');
  });

  it("gives each image received its transfer state, and 'In PACS' for one long since sent", () => {
    const images = [outboxImage('at_hub'), outboxImage('damaged'), outboxImage('in_pacs')];
    const received = fakeDesk({ images })
      .recentImages()
      .concat({
        ...fakeDesk({ images }).recentImages()[0]!,
        sopInstanceUid: '2.25.1234567',
      });
    const table = text(section(render(fakeDesk({ images, received })), 'Images received'));
    expect(table).toContain('Transfer');
    expect(table).toContain('Sent, the hub is storing it in the PACS');
    expect(table).toContain('Damaged send again from the machine');
    expect(table.match(/In PACS/g)).toHaveLength(2);
  });

  it('writes a length of time as people say it', () => {
    expect(duration(0)).toBe('0 seconds');
    expect(duration(1)).toBe('1 second');
    expect(duration(60)).toBe('1 minute');
    expect(duration(3600)).toBe('1 hour');
    expect(duration(5700)).toBe('1 hour 35 minutes');
    expect(duration(2 * 86_400 + 4 * 3600)).toBe('2 days 4 hours');
  });
});

describe('the gateway /metrics', () => {
  const images = [
    outboxImage('received'),
    outboxImage('sealed'),
    outboxImage('sealed'),
    outboxImage('damaged'),
    outboxImage('in_pacs'),
  ];

  it('has every state, the backlog, the rate, the counter, the link and damaged images in Prometheus text', () => {
    const metrics = renderMetrics(
      fakeDesk({ images, sentBytesTotal: 123_456_789, report: { sendBytesPerSecond: 1000, capBitsPerSecond: 2e6 } }),
    );
    for (const [state, n] of Object.entries({
      received: 1,
      sealed: 2,
      sending: 0,
      at_hub: 0,
      in_pacs: 1,
      damaged: 1,
    }))
      expect(metrics).toContain(`gateway_outbox_images{state="${state}"} ${n}\n`);
    expect(metrics).toContain('# TYPE gateway_outbox_images gauge\n');
    expect(metrics).toContain('\ngateway_outbox_bytes 60000000\n');
    expect(metrics).toContain('\ngateway_outbox_oldest_waiting_seconds 600\n');
    expect(metrics).toContain('\ngateway_send_bytes_per_second 1000\n');
    expect(metrics).toContain('# TYPE gateway_sent_bytes_total counter\ngateway_sent_bytes_total 123456789\n');
    expect(metrics).toContain('\ngateway_bandwidth_cap_bits_per_second 2000000\n');
    expect(metrics).toContain('\ngateway_hub_connected 1\n');
    expect(metrics).toContain('\ngateway_damaged_images 1\n');
    // Every line is a comment or "name{labels} value".
    for (const line of metrics.trimEnd().split('\n'))
      expect(line).toMatch(/^(# (HELP|TYPE) \w+ .+|\w+(\{[a-z_]+="[^"]*"\})? -?[0-9.e+]+)$/);
  });

  it('leaves the cap out when there is none, and says when the hub is not connected', () => {
    const metrics = renderMetrics(fakeDesk({ images, online: false }));
    expect(metrics).not.toContain('gateway_bandwidth_cap_bits_per_second');
    expect(metrics).toContain('\ngateway_hub_connected 0\n');
  });

  it('is served on the page server, with the same check of the Host it is reached by', async () => {
    const port = await freePort();
    const server = startStatusPage({ port, host: '127.0.0.1', desk: fakeDesk({ images }) });
    await new Promise((resolve) => server.once('listening', resolve));
    const get = (host: string) =>
      new Promise<{ status: number; type: string; body: string }>((resolve, reject) => {
        request({ host: '127.0.0.1', port, path: '/metrics', headers: { host } }, (response) => {
          let body = '';
          response.setEncoding('utf8');
          response.on('data', (chunk: string) => (body += chunk));
          response.on('end', () =>
            resolve({ status: response.statusCode!, type: String(response.headers['content-type']), body }),
          );
        })
          .on('error', reject)
          .end();
      });
    try {
      const ok = await get(`127.0.0.1:${port}`);
      expect(ok.status).toBe(200);
      expect(ok.type).toBe('text/plain; version=0.0.4; charset=utf-8');
      expect(ok.body).toContain('gateway_outbox_images{state="sealed"} 2');
      const rebound = await get(`attacker.example:${port}`);
      expect(rebound.status).toBe(421);
      expect(rebound.body).not.toContain('gateway_');
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
