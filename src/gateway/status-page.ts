import { randomBytes, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { hostname, networkInterfaces } from 'node:os';
import { join } from 'node:path';
import type { WorklistEntry } from '../dicom/worklist-item.js';
import { duration, isIsoDate } from '../pathway/dates.js';
import { metric } from '../prometheus.js';
import { STATUS_LABELS } from '../pathway/appointment-status.js';
import { nhsukFrontendDir } from '../paths.js';
import type { GatewayChange, TrailerField } from '../protocol/gateway-changes.js';
import type { QueuedChange } from './change-queue.js';
import type { ReceivedImage } from './image-store.js';
import { IMAGE_STATES, type ImageState, type OutboxImage } from './outbox.js';
import type { OutboxReport } from '../protocol/transfer.js';
import type { FeedState } from './hub-feed.js';
import { PHASE_DESCRIPTIONS, type PhaseFailure } from '../protocol/failure-phase.js';
import { MANUAL_IMAGES_ADVICE, type ModeNotice } from '../protocol/liveness.js';
import type { WorklistCopy } from './worklist-copy.js';

/** What the trailer's local page shows and what it can do (gateway.ts provides it). */
export interface TrailerDesk {
  unitId: string;
  state: FeedState;
  copy: WorklistCopy;
  today(): string;
  /** Appointments from today on, with the trailer's unanswered changes laid over the hub's copy. */
  entries(): WorklistEntry[];
  changes(): QueuedChange[];
  imagesFor(entry: WorklistEntry): number;
  /** The exam's images in the outbox and the latest confirmed in the PACS, with their transfer state. */
  transfersFor(entry: WorklistEntry): OutboxImage[];
  /** The outbox as a whole: what is waiting, the send rate and cap, the last sending error. */
  outbox(): {
    report: OutboxReport;
    images: OutboxImage[];
    lastError: string | undefined;
    /** The last sending error by its phase (shown instead of lastError when there is one). */
    lastFailure?: PhaseFailure | undefined;
  };
  /** Bytes sent to the hub since the gateway started (a Prometheus counter: it starts again from 0 on restart). */
  sentBytesTotal(): number;
  /** The latest images received, newest first. */
  recentImages(): ReceivedImage[];
  /** The site's image mode as the hub last said it (liveness.ts); absent: normal. */
  imageMode?(): ModeNotice;
  /** Throws TrailerChangeRefused with a message for the page. */
  markAttendance(appointmentId: string, status: 'checked_in' | 'did_not_attend', madeBy: string): void;
  correctDetails(appointmentId: string, values: Partial<Record<TrailerField, string>>, madeBy: string): boolean;
}

const SOP_CLASS_NAMES: Record<string, string> = {
  '1.2.840.10008.5.1.4.1.1.1.2': 'Mammogram (for presentation)',
  '1.2.840.10008.5.1.4.1.1.1.2.1': 'Mammogram (for processing)',
  '1.2.840.10008.5.1.4.1.1.13.1.3': 'Breast tomosynthesis',
};

const escape = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** A failure as staff read it: its phase, what happened, and what to do first (failure-phase.ts). */
const failureText = (failure: PhaseFailure) =>
  `<strong class="phase-${failure.phase}">${escape(PHASE_DESCRIPTIONS[failure.phase].label)}</strong>: ${escape(failure.message.replace(/[.\s]+$/, ''))}. <span class="nhsuk-body-s">What to do: ${escape(PHASE_DESCRIPTIONS[failure.phase].action)}</span>`;

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

const cell = (html: string) => `<td class="nhsuk-table__cell">${html}</td>`;
const header = (text: string) => `<th scope="col" class="nhsuk-table__header">${text}</th>`;
const who = (e: WorklistEntry) => `${escape(e.familyName.toUpperCase())}, ${escape(e.givenName)}`;

/** Megabytes (10⁶ bytes, as the image sizes on this page): one decimal below 10 MB. */
const megabytes = (bytes: number) => {
  const mb = bytes / 1e6;
  return `${mb > 0 && mb < 10 ? mb.toFixed(1) : Math.round(mb)} MB`;
};
const megabits = (bitsPerSecond: number) => `${(bitsPerSecond / 1e6).toFixed(1)} Mbit/s`;

/** Bytes of a package the hub has acknowledged or is being sent now, and the package's size. */
function sentOf(image: OutboxImage): { sent: number; of: number } {
  const of = image.packedBytes ?? 0;
  return { sent: Math.min(of, image.acknowledged + image.sent), of };
}
const percent = (sent: number, of: number) => (of > 0 ? Math.floor((sent / of) * 100) : 0);

/** An image's transfer state for the page (plain text, but for damaged: a red tag and what to do). */
function stateText(image: OutboxImage | undefined): string {
  switch (image?.state) {
    case 'received':
      return 'Received, waiting to be sealed';
    case 'sealed':
      return 'Sealed, waiting to send';
    case 'sending':
      return `Sending (${percent(sentOf(image).sent, sentOf(image).of)} %)`;
    case 'at_hub':
      return 'Sent, the hub is storing it in the PACS';
    case 'damaged':
      return `<strong class="nhsuk-tag nhsuk-tag--red">Damaged</strong> <span class="nhsuk-body-s">send again from the machine</span>`;
    // Not in the outbox any more (undefined): confirmed in the PACS long enough ago to have left the list.
    case 'in_pacs':
    case undefined:
      return 'In PACS';
  }
}

/** An exam's images: "4 received: 2 in PACS, 1 sending (40 %), 1 sealed", and any damaged, as a red tag. */
function examImages(received: number, transfers: readonly OutboxImage[]): string {
  const total = Math.max(received, transfers.length);
  if (total === 0) return 'None yet';
  const count = (state: ImageState) => transfers.filter((i) => i.state === state).length;
  const sending = transfers.filter((i) => i.state === 'sending');
  const sendingProgress = sending.reduce((sum, i) => ({ sent: sum.sent + sentOf(i).sent, of: sum.of + sentOf(i).of }), {
    sent: 0,
    of: 0,
  });
  // Images the outbox no longer lists were confirmed in the PACS long ago.
  const inPacs = count('in_pacs') + (total - transfers.length);
  const parts = [
    inPacs && `${inPacs} in PACS`,
    count('at_hub') && `${count('at_hub')} at the hub`,
    sending.length && `${sending.length} sending (${percent(sendingProgress.sent, sendingProgress.of)} %)`,
    count('sealed') && `${count('sealed')} sealed`,
    count('received') && `${count('received')} waiting to be sealed`,
  ].filter(Boolean);
  const damaged = count('damaged');
  return `${total} received${parts.length ? `: ${parts.join(', ')}` : ''}${
    damaged
      ? `<br><strong class="nhsuk-tag nhsuk-tag--red">${damaged} damaged</strong> <span class="nhsuk-body-s">send again from the machine</span>`
      : ''
  }`;
}

/** The worklist appointment an image belongs to: by accession number, or by patient ID when it has none. */
function entryFor(
  image: { accessionNumber: string; patientId: string },
  entries: readonly WorklistEntry[],
): WorklistEntry | undefined {
  return entries.find(
    (e) =>
      (image.accessionNumber && e.accessionNumber === image.accessionNumber) ||
      (!image.accessionNumber && e.nhsNumber === image.patientId),
  );
}

const summaryRow = (key: string, value: string) =>
  `<div class="nhsuk-summary-list__row"><dt class="nhsuk-summary-list__key">${key}</dt><dd class="nhsuk-summary-list__value">${value}</dd></div>`;

/** The images waiting to go to the hub, how fast they go, and when they will all be there. */
function sendingSection(
  outbox: ReturnType<TrailerDesk['outbox']>,
  upcoming: readonly WorklistEntry[],
  now: Date,
): string {
  const { report, images, lastError, lastFailure } = outbox;
  const rate = report.sendBytesPerSecond;
  const toClear =
    report.bytes === 0
      ? 'Nothing to send'
      : rate > 0
        ? `About ${duration(report.bytes / rate)}`
        : '—<span class="nhsuk-u-visually-hidden"> (not known: nothing has been sent in the last ten minutes)</span>';
  const summary = `<dl class="nhsuk-summary-list">${[
    summaryRow('Images waiting', String(report.images)),
    summaryRow('To send', megabytes(report.bytes)),
    summaryRow('Longest wait', report.images ? duration(report.oldestWaitingSeconds) : 'Nothing waiting'),
    summaryRow(
      'Send rate',
      rate > 0
        ? megabits(rate * 8)
        : `${megabits(0)} <span class="nhsuk-body-s">(nothing sent in the last ten minutes)</span>`,
    ),
    summaryRow('Bandwidth cap in force', report.capBitsPerSecond === null ? 'none' : megabits(report.capBitsPerSecond)),
    summaryRow('Estimated time to clear', toClear),
    ...(report.damaged
      ? [
          summaryRow(
            'Damaged images',
            `<strong class="nhsuk-tag nhsuk-tag--red">${report.damaged} damaged</strong> <span class="nhsuk-body-s">send them again from the machine</span>`,
          ),
        ]
      : []),
    ...(lastFailure
      ? [summaryRow('Last error', failureText(lastFailure))]
      : lastError
        ? [summaryRow('Last error', escape(lastError))]
        : []),
  ].join('')}</dl>`;
  const waiting = images.filter((i) => i.state !== 'in_pacs');
  const shown = waiting.slice(0, 50);
  const rows = shown
    .map((image, index) => {
      const entry = entryFor(image, upcoming);
      const exam = entry
        ? `${who(entry)} <span class="nhsuk-body-s">(${escape(entry.startTime)}, accession ${escape(entry.accessionNumber)})</span>`
        : `Accession ${escape(image.accessionNumber || 'none')}, patient ID ${escape(image.patientId || 'none')} <span class="nhsuk-body-s">(not on this unit's worklist)</span>`;
      let progress = '';
      if (image.state === 'sending') {
        const { sent, of } = sentOf(image);
        const id = `progress-${index}`;
        progress = `<label class="nhsuk-u-visually-hidden" for="${id}">Sent so far</label><progress id="${id}" max="${of}" value="${sent}">${percent(sent, of)} %</progress> <span class="nhsuk-body-s">${percent(sent, of)} % (${megabytes(sent)} of ${megabytes(of)})</span>`;
      } else if (image.state === 'at_hub') progress = 'All sent';
      else if (image.state === 'damaged') progress = escape(image.message ?? '');
      else progress = 'Not started';
      const size = image.packedBytes === undefined ? megabytes(image.originalBytes) : megabytes(image.packedBytes);
      return `<tr class="nhsuk-table__row">${cell(stateText(image))}${cell(
        `${exam}${image.priority === 'urgent' ? ' <strong class="nhsuk-tag nhsuk-tag--orange">Urgent</strong>' : ''}`,
      )}${cell(escape(duration((now.getTime() - image.receivedAt) / 1000)))}${cell(size)}${cell(progress)}</tr>`;
    })
    .join('');
  const table = rows
    ? `<table class="nhsuk-table"><caption class="nhsuk-table__caption nhsuk-table__caption--s">Images waiting to go to the hub, in sending order</caption><thead class="nhsuk-table__head"><tr>${header('State')}${header('Exam')}${header('Waiting')}${header('Size')}${header('Progress')}</tr></thead><tbody class="nhsuk-table__body">${rows}</tbody></table>${
        waiting.length > shown.length
          ? `<p>Showing the first ${shown.length} of ${waiting.length}, in sending order.</p>`
          : ''
      }`
    : '<p>Every image received has been sent to the hub.</p>';
  return `<h2>Sending to the hub</h2>${summary}${table}`;
}

function layout(title: string, body: string): string {
  return `<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>${escape(title)} – Screening Hub gateway</title>
<link rel="stylesheet" href="/nhsuk-frontend.min.css"></head><body><div class="nhsuk-width-container"><main class="nhsuk-main-wrapper" id="maincontent">
${body}
</main></div></body></html>`;
}

function describeChange(change: GatewayChange, entries: Map<string, WorklistEntry>): string {
  const entry = entries.get(change.appointmentId);
  const name = entry ? who(entry) : 'An appointment';
  if (change.kind === 'attendance') return `${name}: ${STATUS_LABELS[change.status].toLowerCase()}`;
  if (change.kind === 'procedure_step') return `${name}: machine reported ${change.step.replace('_', ' ')}`;
  return `${name}: details corrected`;
}

function outcomeTag(queued: QueuedChange): string {
  const o = queued.outcome;
  if (!o) return '<strong class="nhsuk-tag nhsuk-tag--yellow">Waiting to send</strong>';
  if (o.outcome === 'applied') return '<strong class="nhsuk-tag nhsuk-tag--green">At the hub</strong>';
  if (o.outcome === 'conflict')
    return `<strong class="nhsuk-tag nhsuk-tag--orange">Data conflict</strong> <span class="nhsuk-body-s">${escape(o.message)}. The screening office will resolve it.</span>`;
  return `<strong class="nhsuk-tag nhsuk-tag--red">Refused</strong> <span class="nhsuk-body-s">${escape(o.message)}</span>`;
}

/** The gateway's own page on the trailer's network: is it connected, how old is its worklist, who is next. */
export function renderStatus(
  desk: TrailerDesk,
  csrf: string,
  options: { saved?: boolean; error?: string; staffName?: string } = {},
  now = new Date(),
): string {
  const { state, copy } = desk;
  const today = desk.today();
  const snapshot = copy.current();
  const upcoming = desk.entries();
  const todays = upcoming.filter((e) => e.clinicDate === today);
  const link = state.online
    ? `<strong class="nhsuk-tag nhsuk-tag--green">Connected to the hub</strong>`
    : `<strong class="nhsuk-tag nhsuk-tag--red">Offline${state.offlineSince ? ` since ${escape(time(state.offlineSince))}` : ''}</strong>
       <p>${state.lastFailure ? `${failureText(state.lastFailure)}</p><p>` : `${escape(state.lastError ?? 'Not connected yet')}. `}The worklist is answered from the copy below, and changes made here are kept until the link is back.</p>`;
  const copyLine = snapshot
    ? `Worklist copy from ${escape(time(snapshot.fetchedAt))} (${escape(age(snapshot.fetchedAt, now))} old): ${upcoming.length} appointments, ${todays.length} today.`
    : 'No worklist copy yet: the machine gets an empty worklist until the hub has been reached once.';
  const button = (id: string, status: string, text: string, secondary: boolean) =>
    `<form method="post" action="/attendance" class="nhsuk-u-margin-bottom-1" style="display:inline"><input type="hidden" name="csrf" value="${csrf}"><input type="hidden" name="appointment" value="${escape(id)}"><input type="hidden" name="status" value="${status}"><button type="submit" class="nhsuk-button nhsuk-button--small${secondary ? ' nhsuk-button--secondary' : ''} nhsuk-u-margin-bottom-0">${text}<span class="nhsuk-u-visually-hidden"> for this appointment</span></button></form>`;
  const rows = todays
    .map((e) => {
      const images = examImages(desk.imagesFor(e), desk.transfersFor(e));
      const actions =
        e.status === 'scheduled'
          ? `${button(e.appointmentId, 'checked_in', 'Checked in', false)} ${button(e.appointmentId, 'did_not_attend', 'Did not attend', true)}`
          : '';
      return `<tr class="nhsuk-table__row">${cell(escape(e.startTime))}${cell(`${who(e)}<br><span class="nhsuk-body-s">NHS ${escape(e.nhsNumber)} · born ${escape(e.dateOfBirth)}</span>`)}${cell(
        `${escape(STATUS_LABELS[e.status])}${e.adjustments.length ? `<br><span class="nhsuk-body-s">${escape(e.adjustments.join(', '))}</span>` : ''}`,
      )}${cell(images)}${cell(`${actions} <a href="/details?appointment=${escape(e.appointmentId)}">Correct details<span class="nhsuk-u-visually-hidden"> of ${who(e)}</span></a>`)}</tr>`;
    })
    .join('');
  const byId = new Map(upcoming.map((e) => [e.appointmentId, e]));
  const changes = desk
    .changes()
    .slice(-30)
    .reverse()
    .map(
      (q) =>
        `<tr class="nhsuk-table__row">${cell(escape(time(q.change.madeAt)))}${cell(describeChange(q.change, byId))}${cell(escape(q.change.madeBy))}${cell(outcomeTag(q))}</tr>`,
    )
    .join('');
  const pending = desk.changes().filter((q) => !q.outcome).length;
  const outbox = desk.outbox();
  const inOutbox = new Map(outbox.images.map((i) => [i.sopInstanceUid, i]));
  const imageRows = desk
    .recentImages()
    .slice(0, 20)
    .map((image) => {
      const entry = entryFor(image, upcoming);
      const matched = entry
        ? `${who(entry)} <span class="nhsuk-body-s">(${escape(entry.startTime)})</span>`
        : `<strong class="nhsuk-tag nhsuk-tag--orange">Not matched</strong> <span class="nhsuk-body-s">accession ${escape(image.accessionNumber || 'none')}, patient ID ${escape(image.patientId || 'none')}: not on this unit's worklist. Check the details on the machine.</span>`;
      return `<tr class="nhsuk-table__row">${cell(escape(time(image.receivedAt)))}${cell(escape(SOP_CLASS_NAMES[image.sopClassUid] ?? image.sopClassUid))}${cell(`${Math.round(image.bytes / 1e6)} MB`)}${cell(matched)}${cell(stateText(inOutbox.get(image.sopInstanceUid)))}</tr>`;
    })
    .join('');
  const banner = options.error
    ? `<div class="nhsuk-error-summary" aria-labelledby="error-title" role="alert" tabindex="-1"><h2 class="nhsuk-error-summary__title" id="error-title">There is a problem</h2><div class="nhsuk-error-summary__body"><p>${escape(options.error)}</p></div></div>`
    : options.saved
      ? `<div class="nhsuk-inset-text"><p>Saved on the gateway. ${state.online ? 'It is being sent to the hub.' : 'It will be sent to the hub when the link is back.'}</p></div>`
      : '';
  // Manual images mode (issue 8): hard to miss, above everything, with what to do.
  const mode = desk.imageMode?.();
  const manual =
    mode?.mode === 'manual_images'
      ? `<div class="nhsuk-warning-callout" id="manual-images"><h2 class="nhsuk-warning-callout__label"><span role="text"><span class="nhsuk-u-visually-hidden">Important: </span>Manual images mode is on</span></h2><p>${escape(MANUAL_IMAGES_ADVICE)}</p><p class="nhsuk-body-s">Switched on at the hub${mode.by ? ` by ${escape(mode.by)}` : ''}${mode.since ? ` at ${escape(time(mode.since))}` : ''}${mode.reason ? `: ${escape(mode.reason)}` : ''}.</p></div>`
      : '';
  const staff = options.staffName
    ? `<p>Changes are recorded as made by <strong>${escape(options.staffName)}</strong>. <a href="#staff-name">Not you?</a></p>`
    : '';
  const nameForm = `<form method="post" action="/name" class="nhsuk-u-margin-bottom-5"><input type="hidden" name="csrf" value="${csrf}"><div class="nhsuk-form-group"><label class="nhsuk-label" for="staff-name">Your name (recorded with each change you make here)</label><input class="nhsuk-input nhsuk-input--width-20" id="staff-name" name="madeBy" type="text" autocomplete="name" value="${escape(options.staffName ?? '')}"></div><button type="submit" class="nhsuk-button nhsuk-button--secondary">Save name</button></form>`;
  return layout(
    `Gateway ${desk.unitId}`,
    `${banner}${manual}<h1>Gateway: ${escape(desk.unitId)}</h1><p>${link}</p><p>${copyLine}</p>
<p>Page shown at ${escape(time(now.toISOString()))}. <a href="/">Refresh</a></p>${staff}
<h2>Today's worklist</h2><table class="nhsuk-table"><caption class="nhsuk-table__caption nhsuk-u-visually-hidden">Today's worklist</caption>
<thead class="nhsuk-table__head"><tr>${header('Time')}${header('Participant')}${header('Status')}${header('Images')}${header('Actions')}</tr></thead>
<tbody class="nhsuk-table__body">${rows || '<tr class="nhsuk-table__row"><td class="nhsuk-table__cell" colspan="5">No appointments today.</td></tr>'}</tbody></table>
${sendingSection(outbox, upcoming, now)}
<h2>Images received</h2>${imageRows ? `<table class="nhsuk-table"><caption class="nhsuk-table__caption nhsuk-u-visually-hidden">Latest images received from the machine</caption><thead class="nhsuk-table__head"><tr>${header('When')}${header('Image')}${header('Size')}${header('Appointment')}${header('Transfer')}</tr></thead><tbody class="nhsuk-table__body">${imageRows}</tbody></table>` : '<p>No images received yet.</p>'}
<h2>Changes made on this unit</h2><p>${pending === 0 ? 'Nothing waiting to be sent.' : `${pending} waiting to be sent to the hub.`}</p>
${changes ? `<table class="nhsuk-table"><caption class="nhsuk-table__caption nhsuk-u-visually-hidden">Changes made on this unit</caption><thead class="nhsuk-table__head"><tr>${header('When')}${header('Change')}${header('By')}${header('At the hub')}</tr></thead><tbody class="nhsuk-table__body">${changes}</tbody></table>` : ''}
<h2>Who is working</h2>${nameForm}`,
  );
}

/** GET /metrics: the outbox and the link, for Prometheus (text format 0.0.4). */
export function renderMetrics(desk: TrailerDesk): string {
  const { report, images } = desk.outbox();
  const cap = report.capBitsPerSecond;
  return [
    metric(
      'gateway_outbox_images',
      'gauge',
      'Images in the outbox by transfer state (in_pacs: confirmed in the PACS recently, still listed on the page).',
      IMAGE_STATES.map((state) => ({ labels: { state }, value: images.filter((i) => i.state === state).length })),
    ),
    metric('gateway_outbox_bytes', 'gauge', 'Bytes still to send to the hub (estimated for images not yet sealed).', [
      { value: report.bytes },
    ]),
    metric('gateway_outbox_oldest_waiting_seconds', 'gauge', 'Seconds the longest-waiting image has waited.', [
      { value: report.oldestWaitingSeconds },
    ]),
    metric(
      'gateway_send_bytes_per_second',
      'gauge',
      'Bytes per second the hub acknowledged over the last ten minutes of sending.',
      [{ value: report.sendBytesPerSecond }],
    ),
    metric('gateway_sent_bytes_total', 'counter', 'Bytes of packages sent to the hub since the gateway started.', [
      { value: desk.sentBytesTotal() },
    ]),
    ...(cap === null
      ? []
      : [
          metric('gateway_bandwidth_cap_bits_per_second', 'gauge', 'The bandwidth cap in force now.', [{ value: cap }]),
        ]),
    metric('gateway_hub_connected', 'gauge', '1 while the push stream from the hub is up, else 0.', [
      { value: desk.state.online ? 1 : 0 },
    ]),
    metric(
      'gateway_damaged_images',
      'gauge',
      'Images the gateway cannot send (refused twice by the hub, or unreadable): send them again from the machine.',
      [{ value: report.damaged }],
    ),
  ].join('');
}

const DETAIL_FIELDS: { field: TrailerField; label: string }[] = [
  { field: 'given_name', label: 'Given name' },
  { field: 'family_name', label: 'Family name' },
  { field: 'date_of_birth', label: 'Date of birth (YYYY-MM-DD)' },
];

function renderDetails(
  entry: WorklistEntry,
  csrf: string,
  values: Partial<Record<TrailerField | 'madeBy', string>>,
  errors: Partial<Record<TrailerField | 'madeBy', string>>,
): string {
  const current: Record<TrailerField, string> = {
    given_name: entry.givenName,
    family_name: entry.familyName,
    date_of_birth: entry.dateOfBirth,
  };
  const input = (name: TrailerField | 'madeBy', label: string, value: string, autocomplete: string) => {
    const error = errors[name];
    return `<div class="nhsuk-form-group${error ? ' nhsuk-form-group--error' : ''}"><label class="nhsuk-label" for="${name}">${label}</label>${
      error
        ? `<span class="nhsuk-error-message" id="${name}-error"><span class="nhsuk-u-visually-hidden">Error:</span> ${escape(error)}</span>`
        : ''
    }<input class="nhsuk-input${error ? ' nhsuk-input--error' : ''}" id="${name}" name="${name}" type="text" value="${escape(value)}" autocomplete="${autocomplete}"${error ? ` aria-describedby="${name}-error"` : ''}></div>`;
  };
  const summary = Object.keys(errors).length
    ? `<div class="nhsuk-error-summary" aria-labelledby="error-title" role="alert" tabindex="-1"><h2 class="nhsuk-error-summary__title" id="error-title">There is a problem</h2><div class="nhsuk-error-summary__body"><ul class="nhsuk-list nhsuk-error-summary__list">${Object.entries(
        errors,
      )
        .map(([field, message]) => `<li><a href="#${field}">${escape(message)}</a></li>`)
        .join('')}</ul></div></div>`
    : '';
  return layout(
    'Correct details',
    `<a class="nhsuk-back-link" href="/">Back to today's worklist</a>${summary}<h1>Correct details</h1>
<p>NHS number ${escape(entry.nhsNumber)}, appointment at ${escape(entry.startTime)} on ${escape(entry.clinicDate)}. The correction goes on the images from now on and is sent to the hub, where it is checked against any change made there meanwhile.</p>
<form method="post" action="/details" novalidate><input type="hidden" name="csrf" value="${csrf}"><input type="hidden" name="appointment" value="${escape(entry.appointmentId)}">
${DETAIL_FIELDS.map((d) => input(d.field, d.label, values[d.field] ?? current[d.field], 'off')).join('')}
${input('madeBy', 'Your name', values.madeBy ?? '', 'name')}
<button type="submit" class="nhsuk-button">Save correction</button></form>`,
  );
}

async function formBody(request: IncomingMessage): Promise<URLSearchParams> {
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const chunk of request) {
    size += (chunk as Buffer).length;
    if (size > 16 * 1024) throw new Error('form too large');
    chunks.push(chunk as Buffer);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

const nameCookie = (request: IncomingMessage) => {
  const match = /(?:^|;\s*)gw_name=([^;]*)/.exec(request.headers.cookie ?? '');
  return match ? decodeURIComponent(match[1]!) : '';
};

/**
 * Serves the page on the trailer's local network only (bind it to the trailer's interface): there is no sign-in
 * on the box, so each change records the name the mammographer gives.
 */
export function startStatusPage(options: {
  port: number;
  host: string;
  desk: TrailerDesk;
  /** Other names the trailer's PCs reach the gateway by (its LAN address when bound to 0.0.0.0). */
  allowedHosts?: string[];
}): Server {
  const { desk } = options;
  const css = readFileSync(join(nhsukFrontendDir, 'nhsuk', 'nhsuk-frontend.min.css'));
  // A token in every form, unknown to other sites' pages, so they cannot post changes through a browser here.
  const csrf = randomBytes(16).toString('hex');
  const csrfOk = (sent: string | null) =>
    sent !== null && sent.length === csrf.length && timingSafeEqual(Buffer.from(sent), Buffer.from(csrf));
  const headers = {
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
    'x-frame-options': 'DENY',
    'content-security-policy':
      "default-src 'self'; style-src 'self' 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
  };
  const html = (response: ServerResponse, status: number, body: string, extra: Record<string, string> = {}) =>
    response.writeHead(status, { ...headers, ...extra, 'content-type': 'text/html; charset=utf-8' }).end(body);
  const home = (response: ServerResponse, extra: Record<string, string> = {}) =>
    response.writeHead(303, { ...headers, ...extra, location: '/?saved=1' }).end();

  // Only names this page is really reached by: a web page elsewhere that rebinds its own name to the gateway's
  // address (DNS rebinding) is refused, and so is a form posted from another origin.
  const allowedHosts = new Set(
    [
      options.host,
      'localhost',
      hostname(),
      // The box's own addresses, so a PC on the trailer's network can use the IP it was given.
      ...Object.values(networkInterfaces()).flatMap((list) =>
        (list ?? []).map((a) => (a.family === 'IPv6' ? `[${a.address}]` : a.address)),
      ),
      ...(options.allowedHosts ?? []),
    ].map((h) => `${h}:${options.port}`),
  );
  const handle = async (request: IncomingMessage, response: ServerResponse) => {
    const host = request.headers.host ?? '';
    const origin = request.headers.origin;
    if (!allowedHosts.has(host) || (request.method === 'POST' && origin !== undefined && origin !== `http://${host}`)) {
      response
        .writeHead(421, { ...headers, 'content-type': 'text/plain' })
        .end('This page is only served on the gateway’s own address');
      return;
    }
    const url = new URL(request.url ?? '/', 'http://gateway');
    if (request.method === 'GET' && url.pathname === '/nhsuk-frontend.min.css')
      return response.writeHead(200, { ...headers, 'content-type': 'text/css' }).end(css);
    if (request.method === 'GET' && url.pathname === '/metrics')
      return response
        .writeHead(200, { ...headers, 'content-type': 'text/plain; version=0.0.4; charset=utf-8' })
        .end(renderMetrics(desk));
    if (request.method === 'GET' && (url.pathname === '/' || url.pathname === '/status'))
      return html(
        response,
        200,
        renderStatus(desk, csrf, { saved: url.searchParams.has('saved'), staffName: nameCookie(request) }),
      );
    const entryOf = (id: string | null) => desk.entries().find((e) => e.appointmentId === id);
    if (request.method === 'GET' && url.pathname === '/details') {
      const entry = entryOf(url.searchParams.get('appointment'));
      if (!entry)
        return html(response, 404, renderStatus(desk, csrf, { error: 'That appointment is not on the worklist' }));
      return html(response, 200, renderDetails(entry, csrf, { madeBy: nameCookie(request) }, {}));
    }
    const nameSetting = (madeBy: string) => ({
      'set-cookie': `gw_name=${encodeURIComponent(madeBy.slice(0, 100))}; Path=/; HttpOnly; SameSite=Strict; Max-Age=43200`,
    });
    if (request.method === 'POST' && ['/attendance', '/details', '/name'].includes(url.pathname)) {
      const form = await formBody(request);
      if (!csrfOk(form.get('csrf')))
        return html(
          response,
          403,
          renderStatus(desk, csrf, { error: 'This form has expired: reload the page and try again' }),
        );
      if (url.pathname === '/name') {
        const madeBy = (form.get('madeBy') ?? '').trim();
        if (!madeBy) return html(response, 400, renderStatus(desk, csrf, { error: 'Enter your name' }));
        return response.writeHead(303, { ...headers, ...nameSetting(madeBy), location: '/' }).end();
      }
      const entry = entryOf(form.get('appointment'));
      if (!entry)
        return html(
          response,
          404,
          renderStatus(desk, csrf, { error: 'That appointment is not on the worklist any more' }),
        );
      if (url.pathname === '/attendance') {
        const status = form.get('status');
        if (status !== 'checked_in' && status !== 'did_not_attend')
          return html(response, 400, renderStatus(desk, csrf, { error: 'Choose checked in or did not attend' }));
        const madeBy = nameCookie(request);
        if (!madeBy)
          return html(
            response,
            400,
            renderStatus(desk, csrf, {
              error: 'Enter your name under “Who is working” first: it is recorded with the change',
            }),
          );
        try {
          desk.markAttendance(entry.appointmentId, status, madeBy);
        } catch (error) {
          return html(response, 422, renderStatus(desk, csrf, { error: (error as Error).message }));
        }
        return home(response);
      }
      const values = Object.fromEntries(
        DETAIL_FIELDS.map((d) => [d.field, (form.get(d.field) ?? '').trim()]),
      ) as Record<TrailerField, string>;
      const madeBy = (form.get('madeBy') ?? '').trim();
      const errors: Partial<Record<TrailerField | 'madeBy', string>> = {};
      if (!values.given_name) errors.given_name = 'Enter the given name';
      if (!values.family_name) errors.family_name = 'Enter the family name';
      if (!isIsoDate(values.date_of_birth) || values.date_of_birth > desk.today())
        errors.date_of_birth = 'Enter the date of birth as year-month-day, for example 1961-03-27';
      for (const d of DETAIL_FIELDS)
        if (values[d.field].length > 100) errors[d.field] = `${d.label} must be 100 characters or fewer`;
      if (!madeBy) errors.madeBy = 'Enter your name: it is recorded with the correction';
      if (Object.keys(errors).length)
        return html(response, 400, renderDetails(entry, csrf, { ...values, madeBy }, errors));
      desk.correctDetails(entry.appointmentId, values, madeBy.slice(0, 100));
      return home(response, nameSetting(madeBy));
    }
    response.writeHead(404, { ...headers, 'content-type': 'text/plain' }).end('Not found');
  };

  const server = createServer((request, response) => {
    handle(request, response).catch((error: Error) => {
      // Plain text: the page itself may be what failed, and the gateway's DICOM services must keep running.
      if (!response.headersSent)
        response
          .writeHead(500, { ...headers, 'content-type': 'text/plain; charset=utf-8' })
          .end(
            `The gateway page could not be shown: ${error.message}. The worklist and image services are not affected.`,
          );
      else response.destroy();
    });
  });
  server.listen(options.port, options.host);
  return server;
}
