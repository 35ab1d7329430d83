import { worklistItem } from '../dicom/worklist-item.js';
import type { DicomItem } from '../dicom/worklist-matching.js';
import { startHubFeed } from './hub-feed.js';
import { ImageStore } from './image-store.js';
import { startStatusPage } from './status-page.js';
import { WorklistCopy, type WorklistSnapshot } from './worklist-copy.js';
import { startWorklistScp } from './worklist-scp.js';

export interface GatewayOptions {
  hubUrl: string;
  unitId: string;
  /** Until enrolment with a client certificate exists: a hub API token (see the README). */
  token: string;
  dataDir: string;
  dicomPort: number;
  aeTitle: string;
  allowedCallingAeTitles: string[];
  /** Refuse images (C-STORE) when less than this is free on the data disk (default 2 GiB: one tomosynthesis object). */
  minFreeBytes?: number;
  /** The local status page (omit to run without one). */
  status?: { port: number; host: string };
  /** Days of worklist kept ahead (default 7). */
  days?: number;
  pollIntervalMs?: number;
  today: () => string;
  log: (level: 'info' | 'warn' | 'error', message: string) => void;
}

/**
 * The gateway on a mobile unit, so far: its worklist copy kept in step with the hub, the Modality Worklist served
 * from that copy to the mammography machine online or not, and the images it sends, stored durably (C-STORE).
 */
export function startGateway(options: GatewayOptions) {
  const copy = new WorklistCopy(options.dataDir, options.log);
  copy.purgeBefore(options.today());
  // The DICOM items are made once per snapshot, not per query.
  let items: { snapshot: WorklistSnapshot | undefined; dicom: { clinicDate: string; item: DicomItem }[] } = {
    snapshot: undefined,
    dicom: [],
  };
  const worklist = () => {
    const snapshot = copy.current();
    if (items.snapshot !== snapshot) {
      items = {
        snapshot,
        dicom: (snapshot?.entries ?? []).map((e) => ({ clinicDate: e.clinicDate, item: worklistItem(e) })),
      };
    }
    // Past clinic days are never offered, even before the copy is purged.
    const today = options.today();
    return items.dicom.filter((d) => d.clinicDate >= today).map((d) => d.item);
  };
  const images = new ImageStore(options.dataDir, options.minFreeBytes ?? 2 * 1024 ** 3);
  const scp = startWorklistScp({
    port: options.dicomPort,
    aeTitle: options.aeTitle,
    allowedCallingAeTitles: options.allowedCallingAeTitles,
    worklist,
    images,
    log: options.log,
  });
  const feed = startHubFeed({
    hubUrl: options.hubUrl,
    unitId: options.unitId,
    token: options.token,
    days: options.days ?? 7,
    intervalMs: options.pollIntervalMs ?? 2000,
    today: options.today,
    onSnapshot: (snapshot) => copy.replace(snapshot, options.today()),
    log: options.log,
  });
  const statusPage = options.status
    ? startStatusPage({ ...options.status, unitId: options.unitId, state: feed.state, copy, today: options.today })
    : undefined;
  return {
    copy,
    feed,
    images,
    close() {
      feed.stop();
      scp.close();
      statusPage?.close();
    },
  };
}
