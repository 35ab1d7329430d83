import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { nhsukFrontendDir } from '../paths.js';
import type { FeedState } from './hub-feed.js';
import type { WorklistCopy } from './worklist-copy.js';

const escape = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function age(fromIso: string, now: Date): string {
  const minutes = Math.max(0, Math.round((now.getTime() - new Date(fromIso).getTime()) / 60_000));
  if (minutes < 1) return 'less than a minute';
  if (minutes < 120) return `${minutes} minute${minutes === 1 ? '' : 's'}`;
  return `${Math.round(minutes / 60)} hours`;
}

const time = (iso: string) =>
  new Intl.DateTimeFormat('en-GB', { timeZone: 'Europe/London', dateStyle: 'medium', timeStyle: 'short' }).format(
    new Date(iso),
  );

/** The gateway's own page on the trailer's network: is it connected, and how old is the worklist it serves? */
export function renderStatus(
  unitId: string,
  state: FeedState,
  copy: WorklistCopy,
  today: string,
  now = new Date(),
): string {
  const snapshot = copy.current();
  const todays = snapshot?.entries.filter((e) => e.clinicDate === today) ?? [];
  const link = state.online
    ? `<strong class="nhsuk-tag nhsuk-tag--green">Connected to the hub</strong>`
    : `<strong class="nhsuk-tag nhsuk-tag--red">Offline${state.offlineSince ? ` since ${escape(time(state.offlineSince))}` : ''}</strong>
       <p>${escape(state.lastError ?? 'Not connected yet')}. The worklist is answered from the copy below.</p>`;
  const copyLine = snapshot
    ? `Worklist copy from ${escape(time(snapshot.fetchedAt))} (${escape(age(snapshot.fetchedAt, now))} old): ${snapshot.entries.length} appointments, ${todays.length} today.`
    : 'No worklist copy yet: the machine gets an empty worklist until the hub has been reached once.';
  const rows = todays
    .map(
      (e) =>
        `<tr class="nhsuk-table__row"><td class="nhsuk-table__cell">${escape(e.startTime)}</td><td class="nhsuk-table__cell">${escape(e.familyName.toUpperCase())}, ${escape(e.givenName)}</td><td class="nhsuk-table__cell">${escape(e.accessionNumber)}</td><td class="nhsuk-table__cell">${escape(e.adjustments.join(', '))}</td></tr>`,
    )
    .join('');
  return `<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="15">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>Gateway ${escape(unitId)} – Screening Hub</title>
<link rel="stylesheet" href="/nhsuk-frontend.min.css"></head><body><div class="nhsuk-width-container"><main class="nhsuk-main-wrapper" id="maincontent">
<h1>Gateway: ${escape(unitId)}</h1><p>${link}</p><p>${copyLine}</p>
<h2>Today's worklist</h2><table class="nhsuk-table"><caption class="nhsuk-table__caption nhsuk-u-visually-hidden">Today's worklist</caption>
<thead class="nhsuk-table__head"><tr><th scope="col" class="nhsuk-table__header">Time</th><th scope="col" class="nhsuk-table__header">Participant</th><th scope="col" class="nhsuk-table__header">Accession</th><th scope="col" class="nhsuk-table__header">Adjustments</th></tr></thead>
<tbody class="nhsuk-table__body">${rows || '<tr class="nhsuk-table__row"><td class="nhsuk-table__cell" colspan="4">No appointments today.</td></tr>'}</tbody></table>
</main></div></body></html>`;
}

/** Serves the status page on the trailer's local network only (bind it to the trailer's interface). */
export function startStatusPage(options: {
  port: number;
  host: string;
  unitId: string;
  state: FeedState;
  copy: WorklistCopy;
  today: () => string;
}): Server {
  const css = readFileSync(join(nhsukFrontendDir, 'nhsuk', 'nhsuk-frontend.min.css'));
  const server = createServer((request, response) => {
    const headers = {
      'cache-control': 'no-store',
      'x-content-type-options': 'nosniff',
      'content-security-policy': "default-src 'self'",
    };
    if (request.url === '/nhsuk-frontend.min.css') {
      response.writeHead(200, { ...headers, 'content-type': 'text/css' }).end(css);
    } else if (request.url === '/' || request.url === '/status') {
      response
        .writeHead(200, { ...headers, 'content-type': 'text/html; charset=utf-8' })
        .end(renderStatus(options.unitId, options.state, options.copy, options.today()));
    } else {
      response.writeHead(404, { ...headers, 'content-type': 'text/plain' }).end('Not found');
    }
  });
  server.listen(options.port, options.host);
  return server;
}
