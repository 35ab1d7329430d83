import { randomUUID } from 'node:crypto';
import { worklistItem, type WorklistEntry } from '../dicom/worklist-item.js';
import type { DicomItem } from '../dicom/worklist-matching.js';
import type { ChangeOutcome, GatewayChange, TrailerField } from '../protocol/gateway-changes.js';
import { ChangeQueue } from './change-queue.js';
import { HubConnection } from './hub-connection.js';
import { startHubFeed } from './hub-feed.js';
import { HubLiveness } from './liveness.js';
import type { GatewayIdentity } from './identity.js';
import { ImageStore } from './image-store.js';
import { Outbox } from './outbox.js';
import { TransferSender } from './transfer-sender.js';
import type { CapPeriod } from '../pathway/bandwidth-cap.js';
import { ProcedureStepStore } from './procedure-steps.js';
import { startStatusPage, type TrailerDesk } from './status-page.js';
import { entryValue, procedureStepChange, withTrailerChanges } from './trailer-changes.js';
import { WorklistCopy } from './worklist-copy.js';
import { outboxImageSource, ReceivedImages, StorageCommitment, type CommitmentPeers } from './storage-commitment.js';
import { MAMMOGRAPHY_STORAGE, startWorklistScp } from './worklist-scp.js';
import { isProbeAccession, PROBE_AE_TITLE } from '../protocol/probe.js';
import { ProbeRunner } from './probe-runner.js';

export interface GatewayOptions {
  hubUrl: string;
  /** From enrolment (identity.ts): the gateway's key and the certificate the hub issued for it. */
  identity: GatewayIdentity;
  dataDir: string;
  dicomPort: number;
  aeTitle: string;
  allowedCallingAeTitles: string[];
  /** Each modality's own DICOM address, by calling AE title: where Storage Commitment reports go when its
   * association is closed. */
  commitmentPeers?: CommitmentPeers;
  /** Refuse images (C-STORE) when less than this is free on the data disk (default 2 GiB: one tomosynthesis object). */
  minFreeBytes?: number;
  /** The local status page (omit to run without one). */
  status?: { port: number; host: string };
  /** Days of worklist kept ahead (default 7). */
  days?: number;
  /** Bandwidth cap for sending images, by time of day (pathway/bandwidth-cap.ts); none by default. */
  cap?: CapPeriod[];
  /** Reconnect waits and resync period (tests shorten them). */
  maxRetryMs?: number;
  resyncMs?: number;
  /** A push stream silent this long is taken as a dead link (default 45 s: three of the hub's 15 s pings). */
  silenceMs?: number;
  /**
   * Synthetic test probes (issue 8): probes sent from the hub always run. With this set, the gateway also asks for
   * the pre-clinic probe on clinic days, at start-up and at `preClinicAt` (default 07:00); the command line sets it.
   */
  probe?: { preClinicAt?: string; checkEveryMs?: number; confirmTimeoutMs?: number; timeOfDay?: () => string };
  today: () => string;
  log: (level: 'info' | 'warn' | 'error', message: string) => void;
}

export class TrailerChangeRefused extends Error {}

/**
 * The gateway on a mobile unit: its worklist copy kept in step with the hub by push, the Modality Worklist and
 * MPPS served to the mammography machine online or not, the images it sends stored durably (C-STORE), and the
 * changes made on the trailer queued and sent to the hub when the link allows.
 */
export function startGateway(options: GatewayOptions) {
  const { identity, log } = options;
  const copy = new WorklistCopy(options.dataDir, log);
  copy.purgeBefore(options.today());
  const changes = new ChangeQueue(options.dataDir);
  const receivedIndex = ImageStore.readIndex(options.dataDir);
  const images = new ImageStore(options.dataDir, options.minFreeBytes ?? 2 * 1024 ** 3, receivedIndex);
  const procedureSteps = new ProcedureStepStore(options.dataDir, log);
  const connection = new HubConnection(options.hubUrl, identity);
  // Every appointment any copy has held, by accession number: the machine may report an exam from a worklist it
  // fetched before the hub took that appointment off (cancelled, did not attend). The hub then decides, and raises
  // a conflict, rather than the report being dropped here.
  const seen = new Map<string, WorklistEntry>();
  const remember = (entries: readonly WorklistEntry[]) => {
    for (const e of entries) seen.set(e.accessionNumber, e);
  };
  remember(copy.current()?.entries ?? []);
  // Images go to the hub from the outbox: urgent exams first (the worklist says which), then oldest first.
  const outbox = new Outbox(
    options.dataDir,
    receivedIndex,
    (accession) => seen.get(accession)?.priority ?? 'routine',
    log,
  );
  // The outbox forgets an image once the PACS holds it: Storage Commitment counts an image it no longer holds, but
  // this knows was received, as committed. The outbox first: an image is never "received" here without being in it.
  const received = new ReceivedImages(receivedIndex);
  images.onRecord = (image) => {
    outbox.add(image);
    received.add(image);
  };
  const commitment = new StorageCommitment({
    dataDir: options.dataDir,
    aeTitle: options.aeTitle,
    peers: options.commitmentPeers ?? {},
    images: outboxImageSource(outbox, received, MAMMOGRAPHY_STORAGE),
    log,
  });

  /** Today's and later appointments as the trailer sees them (hub copy + changes not yet answered). */
  const entries = (): WorklistEntry[] => {
    const today = options.today();
    const upcoming = (copy.current()?.entries ?? []).filter((e) => e.clinicDate >= today);
    return withTrailerChanges(upcoming, changes.pending());
  };
  // The DICOM items are made again only when the copy or the queue changes, not per query.
  let cached: { key: string; items: DicomItem[] } = { key: '', items: [] };
  const worklist = () => {
    const key = `${copy.current()?.fetchedAt ?? ''}/${changes.revision}/${options.today()}`;
    if (cached.key !== key) cached = { key, items: entries().map(worklistItem) };
    return cached.items;
  };

  /** Sends queued changes, oldest first, in batches; each outcome is journalled as it comes back. */
  const sendQueued = async (): Promise<void> => {
    try {
      for (let batch = changes.pending(); batch.length > 0 && feed.state.online; batch = changes.pending()) {
        const { results } = await connection.post<{ results: ChangeOutcome[] }>('/gateway/v1/changes', {
          changes: batch.slice(0, 100),
        });
        // The copy is out of date for the changes the hub has just applied: ask for it now, not on the next push.
        if (results.some((r) => r.outcome === 'applied')) void feed.pullNow().catch(() => undefined);
        for (const result of results) {
          changes.recordOutcome(result);
          if (result.outcome !== 'applied')
            log('warn', `Change ${result.id} ${result.outcome} at the hub: ${result.message}`);
        }
      }
    } catch (error) {
      log('warn', `Could not send changes to the hub yet: ${(error as Error).message}`);
    }
  };
  let syncing: Promise<void> | undefined;
  const sync = (): Promise<void> => (syncing ??= sendQueued().finally(() => (syncing = undefined)));

  const record = (change: GatewayChange) => {
    changes.add(change);
    void sync();
  };

  const scp = startWorklistScp({
    port: options.dicomPort,
    aeTitle: options.aeTitle,
    // The built-in modality emulator (probe-runner.ts) calls as SHPROBE.
    allowedCallingAeTitles: [...options.allowedCallingAeTitles, PROBE_AE_TITLE],
    worklist,
    images,
    procedureSteps,
    commitment,
    onProcedureStep: (event) => {
      const change = procedureStepChange(event, [...seen.values()], 'mammography machine (MPPS)');
      if (change) record(change);
      else
        log(
          'warn',
          `Procedure step ${event.sopInstanceUid} names accession "${event.accessionNumber}", which is not on this unit's worklist: not sent to the hub`,
        );
    },
    log,
  });
  // Answers the hub's pings with a small report (liveness by round trip) and learns the site's image mode.
  const liveness = new HubLiveness({
    connection,
    dataDir: options.dataDir,
    status: () => {
      const waiting = outbox.all();
      return {
        online: feed.state.online,
        outbox: {
          awaiting: waiting.filter((i) => i.state === 'received' || i.state === 'sealed').length,
          sending: waiting.filter((i) => i.state === 'sending').length,
        },
        // Phase-named (issue 8 item 3): the link's own failure is gone by the time a ping is answered, so what
        // shows is the sender's (refused packages, a full disk) and the last outage, with its phase.
        lastFailure: feed.state.lastFailure ?? sender.lastFailure ?? null,
        lastOutage: feed.state.lastOutage,
      };
    },
    log,
  });
  const feed = startHubFeed({
    onEvent: (name, data) => {
      if (name === 'ping') liveness.onPing(data);
    },
    connection,
    days: options.days ?? 7,
    today: options.today,
    onSnapshot: (snapshot) => {
      copy.replace(snapshot, options.today());
      remember(snapshot.entries);
      probes.worklistChanged();
    },
    onOnline: () => {
      liveness.linkRestored();
      void sync();
      sender.nudge();
    },
    ...(options.maxRetryMs ? { maxRetryMs: options.maxRetryMs } : {}),
    ...(options.resyncMs ? { resyncMs: options.resyncMs } : {}),
    ...(options.silenceMs ? { silenceMs: options.silenceMs } : {}),
    log,
  });
  const sender = new TransferSender({
    connection,
    outbox,
    dataDir: options.dataDir,
    cap: options.cap ?? [],
    online: () => feed.state.online,
    ...(options.maxRetryMs ? { maxRetryMs: options.maxRetryMs } : {}),
    log,
  });
  // Issue 8: runs synthetic test probes that reach the worklist, and asks for the pre-clinic probe each clinic day.
  const probes = new ProbeRunner({
    connection,
    entries: () => copy.current()?.entries ?? [],
    outbox,
    dicom: {
      host: '127.0.0.1',
      port: options.dicomPort,
      calledAeTitle: options.aeTitle,
      callingAeTitle: PROBE_AE_TITLE,
    },
    dataDir: options.dataDir,
    today: options.today,
    pullNow: () => feed.pullNow(),
    preClinic: options.probe !== undefined,
    ...options.probe,
    log,
  });
  // Changes refused by a dropped link are retried while there are any; a past clinic day leaves the copy even
  // when the hub cannot be reached to send a new one.
  const housekeeping = setInterval(() => {
    if (feed.state.online && changes.pending().length > 0) void sync();
    copy.purgeBefore(options.today());
  }, 10_000);

  const find = (appointmentId: string) => {
    const entry = entries().find((e) => e.appointmentId === appointmentId);
    if (!entry) throw new TrailerChangeRefused('That appointment is not on this unit’s worklist any more');
    return entry;
  };
  const desk: TrailerDesk = {
    unitId: identity.unitId,
    state: feed.state,
    copy,
    today: options.today,
    // The probe's test appointment is for the emulator, not the trailer's day list.
    entries: () => entries().filter((e) => !isProbeAccession(e.accessionNumber)),
    changes: () => changes.all(),
    imagesFor: (entry) => images.countFor(entry.accessionNumber, entry.nhsNumber),
    transfersFor: (entry) => outbox.ofExam(entry.accessionNumber, entry.nhsNumber),
    outbox: () => ({
      report: sender.outboxReport(),
      images: outbox.all(),
      lastError: sender.lastError,
      lastFailure: sender.lastFailure,
    }),
    sentBytesTotal: () => sender.totalSentBytes,
    recentImages: () => images.recent(),
    imageMode: () => liveness.mode,
    markAttendance(appointmentId, status, madeBy) {
      const entry = find(appointmentId);
      if (status === 'did_not_attend' && entry.clinicDate > options.today())
        throw new TrailerChangeRefused('Did not attend can only be recorded on or after the clinic day');
      record({
        id: randomUUID(),
        kind: 'attendance',
        appointmentId,
        madeAt: new Date().toISOString(),
        madeBy,
        seenStatus: entry.status,
        status,
      });
    },
    correctDetails(appointmentId, values, madeBy) {
      const entry = find(appointmentId);
      const fields = Object.fromEntries(
        (Object.entries(values) as [TrailerField, string][])
          .filter(([field, value]) => value !== entryValue(entry, field))
          .map(([field, value]) => [field, { seen: entryValue(entry, field), value }]),
      );
      if (Object.keys(fields).length === 0) return false;
      record({
        id: randomUUID(),
        kind: 'demographics',
        appointmentId,
        participantId: entry.participantId,
        madeAt: new Date().toISOString(),
        madeBy,
        fields,
      });
      return true;
    },
  };
  const statusPage = options.status ? startStatusPage({ ...options.status, desk }) : undefined;
  return {
    copy,
    feed,
    images,
    outbox,
    sender,
    commitment,
    changes,
    desk,
    liveness,
    probes,
    sync,
    async close() {
      clearInterval(housekeeping);
      await probes.stop();
      feed.stop();
      scp.close();
      await commitment.close();
      statusPage?.close();
      await sender.stop();
      connection.close();
    },
  };
}
