import type { WorklistEntry } from '../../src/dicom/worklist-item.js';
import type { ReceivedImage } from '../../src/gateway/image-store.js';
import type { ImageState, OutboxImage } from '../../src/gateway/outbox.js';
import type { TrailerDesk } from '../../src/gateway/status-page.js';
import type { WorklistCopy } from '../../src/gateway/worklist-copy.js';
import type { OutboxReport } from '../../src/protocol/transfer.js';
import { TODAY } from './fixtures.js';

/** The instant the fake desk's page is drawn at, and the images' ages are measured from. */
export const NOW = new Date(`${TODAY}T11:00:00Z`);

export function entry(overrides: Partial<WorklistEntry> = {}): WorklistEntry {
  return {
    appointmentId: '00000000-0000-4000-8000-000000000001',
    participantId: '00000000-0000-4000-8000-0000000000a1',
    status: 'checked_in',
    accessionNumber: 'SH00000001',
    nhsNumber: '9990000018',
    givenName: 'Tessa',
    familyName: 'Trailer',
    dateOfBirth: '1961-03-27',
    sex: 'female',
    clinicDate: TODAY,
    startTime: '09:00',
    stationAeTitle: 'MOBILE1',
    locationName: 'Supermarket car park',
    adjustments: [],
    ...overrides,
  };
}

let sequence = 0;

/** An image in the outbox in a given state; minutesAgo: when it was received, before NOW. */
export function outboxImage(
  state: ImageState,
  overrides: Partial<OutboxImage> & { minutesAgo?: number } = {},
): OutboxImage {
  const { minutesAgo = 10, ...rest } = overrides;
  const receivedAt = NOW.getTime() - minutesAgo * 60_000;
  const sealed = state !== 'received';
  sequence += 1;
  return {
    sopInstanceUid: `2.25.9${sequence}`,
    accessionNumber: 'SH00000001',
    patientId: '9990000018',
    priority: 'routine',
    receivedAt,
    examReceivedAt: receivedAt,
    sequence,
    originalBytes: 50_000_000,
    imageFile: `/tmp/${sequence}.dcm`,
    state,
    ...(sealed ? { packageId: `p${sequence}`, packedBytes: 20_000_000, codec: 'jpeg-ls' } : {}),
    acknowledged: state === 'at_hub' || state === 'in_pacs' ? 20_000_000 : 0,
    sent: 0,
    rejections: 0,
    ...(state === 'damaged'
      ? { message: 'The hub refused its package 2 times (bad seal): send the image again from the machine' }
      : {}),
    ...rest,
  };
}

export interface FakeDeskOptions {
  entries?: WorklistEntry[];
  images?: OutboxImage[];
  report?: Partial<OutboxReport>;
  lastError?: string;
  online?: boolean;
  received?: ReceivedImage[];
  sentBytesTotal?: number;
}

/** A TrailerDesk with no gateway behind it: what the page and /metrics show, fixed. */
export function fakeDesk(options: FakeDeskOptions = {}): TrailerDesk {
  const entries = options.entries ?? [entry()];
  const images = options.images ?? [];
  const waiting = images.filter((i) => i.state !== 'in_pacs' && i.state !== 'damaged');
  const report: OutboxReport = {
    images: waiting.length,
    bytes: waiting.reduce((sum, i) => sum + (i.packedBytes ?? i.originalBytes / 2.5) - i.acknowledged, 0),
    oldestWaitingSeconds: Math.max(0, ...waiting.map((i) => Math.round((NOW.getTime() - i.receivedAt) / 1000))),
    sendBytesPerSecond: 0,
    capBitsPerSecond: null,
    damaged: images.filter((i) => i.state === 'damaged').length,
    ...options.report,
  };
  const ofExam = (e: WorklistEntry) =>
    images.filter((i) => (i.accessionNumber ? i.accessionNumber === e.accessionNumber : i.patientId === e.nhsNumber));
  const copy = {
    current: () => ({ unitId: 'mobile-1', fetchedAt: new Date(NOW.getTime() - 5 * 60_000).toISOString(), entries }),
  } as unknown as WorklistCopy;
  return {
    unitId: 'mobile-1',
    state: {
      online: options.online ?? true,
      offlineSince: null,
      lastError: null,
      lastFailure: null,
      lastOutage: null,
      lastSuccess: NOW.toISOString(),
      revoked: false,
    },
    copy,
    today: () => TODAY,
    entries: () => entries,
    changes: () => [],
    imagesFor: (e) => ofExam(e).length,
    transfersFor: ofExam,
    outbox: () => ({ report, images, lastError: options.lastError }),
    sentBytesTotal: () => options.sentBytesTotal ?? 0,
    recentImages: () =>
      options.received ??
      images.map((i) => ({
        sopInstanceUid: i.sopInstanceUid,
        sopClassUid: '1.2.840.10008.5.1.4.1.1.1.2',
        transferSyntaxUid: '1.2.840.10008.1.2.1',
        accessionNumber: i.accessionNumber,
        patientId: i.patientId,
        studyInstanceUid: '2.25.1',
        bytes: i.originalBytes,
        receivedAt: new Date(i.receivedAt).toISOString(),
        file: i.imageFile,
      })),
    markAttendance: () => undefined,
    correctDetails: () => false,
  };
}
