import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import type { Socket } from 'node:net';
import { join } from 'node:path';
import dcmjsDimse from 'dcmjs-dimse';
import { commitFile, fsyncPath } from '../durable.js';
import { isValidUid } from '../dicom/uid.js';
import type { ReceivedImage } from './image-store.js';
import { appendLineDurably, readLines } from './jsonl-journal.js';
import type { ImageState } from './outbox.js';

const { Client, Dataset } = dcmjsDimse;
const { NEventReportRequest } = dcmjsDimse.requests;
const { NActionResponse } = dcmjsDimse.responses;
const { Status, PresentationContextResult } = dcmjsDimse.constants;

/** Storage Commitment Push Model SOP Class and its well-known SOP Instance (PS3.4 J.3.1, J.6). */
export const STORAGE_COMMITMENT_SOP_CLASS = '1.2.840.10008.1.20.1';
export const STORAGE_COMMITMENT_SOP_INSTANCE = '1.2.840.10008.1.20.1.1';
/** N-ACTION Action Type ID "Request Storage Commitment" (PS3.4 J.3.2.1). */
export const REQUEST_STORAGE_COMMITMENT = 1;
/** N-EVENT-REPORT Event Type IDs (PS3.4 J.3.3.1). */
export const COMMITMENT_EVENT = { allCommitted: 1, someFailed: 2 } as const;

/** Failure Reason (0008,1197) values of Failed SOP Sequence items (PS3.4 J.3.3.1.1). */
export const FAILURE_REASON = {
  /** The image reached the gateway but cannot be kept (damaged: the hub refused its package). */
  processingFailure: 0x0110,
  /** The gateway never received the image. */
  noSuchObjectInstance: 0x0112,
  resourceLimitation: 0x0213,
  /** An instance of a SOP class the gateway does not store (it could never have been sent here). */
  referencedSopClassNotSupported: 0x0122,
  /** The gateway received the instance, but as another SOP class than the request names. */
  classInstanceConflict: 0x0119,
  /** The request reuses the Transaction UID of another request still in hand, with other images. */
  duplicateTransactionUid: 0x0131,
} as const;

/** N-ACTION-RSP statuses the gateway answers with (PS3.4 J.3.2.1.2, PS3.7 C). */
export const COMMITMENT_STATUS = {
  success: Status.Success,
  processingFailure: Status.ProcessingFailure, // 0110
  noSuchSopInstance: Status.NoSuchObjectInstance, // 0112
  invalidArgumentValue: Status.InvalidArgumentValue, // 0115
  sopClassNotSupported: Status.SopClassNotSupported, // 0122
  noSuchActionType: Status.NoSuchActionType, // 0123
  resourceLimitation: Status.ResourceLimitation, // 0213
} as const;

/** More references than this in one request are refused (Resource limitation): a screening exam has a handful. */
export const MAX_REFERENCES = 10_000;

export interface SopReference {
  sopClassUid: string;
  sopInstanceUid: string;
}

/** Where one referenced image stands, as far as Storage Commitment is concerned. */
export type CommitmentState =
  /** The PACS holds it: the gateway can commit it. */
  | { state: 'committed' }
  /** On its way (on the gateway, sealed, sending, at the hub). */
  | { state: 'pending' }
  /** Never received by the gateway (yet: it may still be arriving on another association). */
  | { state: 'unknown' }
  /** It will never be committed: Failure Reason (FAILURE_REASON) and why, for the log. */
  | { state: 'failed'; reason: number; why: string };

/** Where the Storage Commitment service learns what has become of the images (outboxImageSource, or a test's fake). */
export interface CommitmentImageSource {
  stateOf(reference: SopReference): CommitmentState;
  /** Calls the listener whenever any image's state may have changed; returns the way to stop. */
  onChange(listener: () => void): () => void;
}

/** A modality's own Storage Commitment SCU address, for sending it reports on an association the gateway opens. */
export interface CommitmentPeer {
  host: string;
  port: number;
}
export type CommitmentPeers = Readonly<Record<string, CommitmentPeer>>;

/**
 * What an open association (from the modality, with Storage Commitment accepted) lends the service: a way to send an
 * N-EVENT-REPORT-RQ on it. The SCP tells the link when the association ends.
 */
export interface CommitmentLink {
  /** The association is ending or ended: nothing more is sent on it, and what is awaiting an answer is sent again. */
  closed(): void;
}

export interface StorageCommitmentOptions {
  dataDir: string;
  /** The gateway's AE title: the calling AE title of associations it opens to deliver reports. */
  aeTitle: string;
  /** Each modality's address by its AE title (the calling AE title of its requests). */
  peers?: CommitmentPeers;
  images: CommitmentImageSource;
  log: (level: 'info' | 'warn' | 'error', message: string) => void;
  /** How long an image the gateway has never received may still arrive before it is reported missing (10 min). */
  unknownGraceMs?: number;
  /** First wait before trying an unreachable modality again (5 s), doubling up to maxRetryMs (5 min). */
  retryMs?: number;
  maxRetryMs?: number;
  /** How long the modality has to answer an N-EVENT-REPORT-RQ (30 s), and to get through a whole association (60 s). */
  responseTimeoutMs?: number;
  associationTimeoutMs?: number;
  /** How often waits (grace periods, retries) are checked (1 s). */
  tickMs?: number;
}

/** One Storage Commitment request, as the gateway holds it until the modality has been told its outcome. */
export interface CommitmentTransaction {
  /** The gateway's own id for the request (a Transaction UID may come twice). */
  id: string;
  transactionUid: string;
  callingAe: string;
  requestedAt: string;
  references: SopReference[];
  /** What is known so far, by SOP Instance UID: committed, or a Failure Reason. */
  outcomes: Map<string, 'committed' | number>;
}

type JournalLine =
  | {
      kind: 'requested';
      id: string;
      transactionUid: string;
      callingAe: string;
      at: string;
      references: SopReference[];
      /** Its Transaction UID was already in use by another request in hand. */
      duplicate?: true;
    }
  | { kind: 'resolved'; id: string; committed: string[]; failed: { sopInstanceUid: string; reason: number }[] }
  | { kind: 'reported'; id: string; eventType: number; status: number; at: string };

interface Link extends CommitmentLink {
  callingAe: string;
  send: (request: dcmjsDimse.requests.NEventReportRequest) => void;
  open: boolean;
  /** False once the modality left a report on it unanswered: reports go another way. */
  usable: boolean;
  /** Called when the association ends, to give up waiting for answers on it. */
  onClosed: Set<() => void>;
}

/** What a report is answered with, or why it was not. */
type Delivery = { status: number } | { error: string };

const JOURNAL = 'storage-commitment.jsonl';

/**
 * Storage Commitment Push Model SCP (PS3.4 Annex J). The modality asks (N-ACTION) the gateway to take responsibility
 * for a list of images; the gateway journals the request (fsynced) and answers Success at once, then, only when every
 * image is confirmed in the PACS or known lost, tells the modality (N-EVENT-REPORT: event type 1, all committed; 2, with
 * Failed SOP Sequence and a Failure Reason for each image that failed). The report goes on an association the modality
 * has open with Storage Commitment accepted (the newest: the request's own, while it is open), else on one the gateway opens to the
 * modality's address (peers), tried again with a growing wait while the modality cannot be reached. Requests not yet
 * reported survive a restart (storage-commitment.jsonl), and so does what the gateway had already learnt of their
 * images.
 */
export class StorageCommitment {
  readonly events = new EventEmitter();
  private readonly journal: string;
  private readonly transactions = new Map<string, CommitmentTransaction>();
  private readonly links = new Set<Link>();
  /** Transactions whose report is on its way (on a link or a new association). */
  private readonly inFlight = new Set<string>();
  /** Modalities the gateway is opening an association to, and when each unreachable one may be tried again. */
  private readonly connecting = new Set<string>();
  private readonly backoff = new Map<string, { failures: number; nextAt: number }>();
  /** How to abandon each association being opened (on close). */
  private readonly clients = new Set<() => void>();
  /** Transactions already logged as having no way to reach their modality. */
  private readonly warnedNoRoute = new Set<string>();
  private readonly unsubscribe: () => void;
  private readonly timer: NodeJS.Timeout;
  private scheduled = false;
  private stopped = false;
  private readonly unknownGraceMs: number;
  private readonly retryMs: number;
  private readonly maxRetryMs: number;
  private readonly responseTimeoutMs: number;
  private readonly associationTimeoutMs: number;

  constructor(private readonly options: StorageCommitmentOptions) {
    this.unknownGraceMs = options.unknownGraceMs ?? 10 * 60_000;
    this.retryMs = options.retryMs ?? 5_000;
    this.maxRetryMs = options.maxRetryMs ?? 5 * 60_000;
    this.responseTimeoutMs = options.responseTimeoutMs ?? 30_000;
    this.associationTimeoutMs = options.associationTimeoutMs ?? 60_000;
    mkdirSync(options.dataDir, { recursive: true, mode: 0o700 });
    this.journal = join(options.dataDir, JOURNAL);
    this.load();
    this.events.setMaxListeners(0);
    this.unsubscribe = options.images.onChange(() => this.soon());
    this.timer = setInterval(() => {
      if (this.transactions.size > 0) this.evaluate();
    }, options.tickMs ?? 1000);
    this.timer.unref();
    if (this.transactions.size > 0) {
      options.log(
        'info',
        `Storage commitment: ${this.transactions.size} request(s) from before the restart still to be reported`,
      );
      this.soon();
    }
  }

  /** The requests not yet reported to their modality. */
  pending(): CommitmentTransaction[] {
    return [...this.transactions.values()];
  }

  /**
   * An N-ACTION-RQ from `callingAe` (already allowed to associate). Answered Success once the request is durable;
   * otherwise with the status PS3.4 J.3.2.1.2 / PS3.7 C gives the fault, with an Error Comment.
   */
  action(request: dcmjsDimse.requests.NActionRequest, callingAe: string): dcmjsDimse.responses.NActionResponse {
    const response = NActionResponse.fromRequest(request);
    const refuse = (status: number, comment: string) => {
      response.setStatus(status);
      response.setErrorComment(comment.slice(0, 64));
      this.options.log(
        'warn',
        `Storage commitment request from ${callingAe} refused: ${comment} (status 0x${status.toString(16).padStart(4, '0')})`,
      );
      return response;
    };
    if (text(request.getRequestedSopClassUid()) !== STORAGE_COMMITMENT_SOP_CLASS)
      return refuse(COMMITMENT_STATUS.sopClassNotSupported, 'SOP class not supported');
    if (text(request.getRequestedSopInstanceUid()) !== STORAGE_COMMITMENT_SOP_INSTANCE)
      return refuse(COMMITMENT_STATUS.noSuchSopInstance, `SOP instance must be ${STORAGE_COMMITMENT_SOP_INSTANCE}`);
    if (request.getActionTypeId() !== REQUEST_STORAGE_COMMITMENT)
      return refuse(COMMITMENT_STATUS.noSuchActionType, `No such action type ${String(request.getActionTypeId())}`);
    const parsed = readActionInformation(request.getDataset()?.getElements());
    if ('refusal' in parsed) return refuse(parsed.status, parsed.refusal);
    const { transactionUid, references } = parsed;

    const same = [...this.transactions.values()].find((t) => t.transactionUid === transactionUid);
    if (same && same.callingAe === callingAe && sameReferences(same.references, references)) {
      // The modality asking again (it missed the answer): the same request, answered the same way.
      this.options.log('info', `Storage commitment ${transactionUid} from ${callingAe} asked again: already in hand`);
      response.setStatus(COMMITMENT_STATUS.success);
      this.soon();
      return response;
    }
    const transaction: CommitmentTransaction = {
      id: randomUUID(),
      transactionUid,
      callingAe,
      requestedAt: new Date().toISOString(),
      references,
      outcomes: new Map(),
    };
    try {
      this.write({
        kind: 'requested',
        id: transaction.id,
        transactionUid,
        callingAe,
        at: transaction.requestedAt,
        references,
        ...(same ? { duplicate: true } : {}),
      });
    } catch (error) {
      const code = (error as { code?: string }).code;
      this.options.log(
        'error',
        `Storage commitment ${transactionUid} could not be recorded: ${(error as Error).message}`,
      );
      return refuse(
        code === 'ENOSPC' ? COMMITMENT_STATUS.resourceLimitation : COMMITMENT_STATUS.processingFailure,
        'The request could not be recorded',
      );
    }
    // PS3.4 J.3.3.1.1: another request with the Transaction UID of one in hand fails, in its report, as a duplicate.
    if (same) failAsDuplicate(transaction);
    this.transactions.set(transaction.id, transaction);
    this.options.log(
      'info',
      `Storage commitment ${transactionUid} from ${callingAe}: ${references.length} image(s)${same ? ' (Transaction UID already in use: to be reported failed)' : ''}`,
    );
    this.events.emit('requested', transaction);
    response.setStatus(COMMITMENT_STATUS.success);
    // After the response is on its way (the SCP sends it when this returns): a report never overtakes it.
    this.soon();
    return response;
  }

  /**
   * An association from `callingAe` with Storage Commitment accepted: reports for that modality may go on it (on the
   * newest such association: the request's own while it is open). `send` puts an N-EVENT-REPORT-RQ on the association (dcmjs-dimse's Scp.sendRequests).
   */
  attach(callingAe: string, send: (request: dcmjsDimse.requests.NEventReportRequest) => void): CommitmentLink {
    const link: Link = {
      callingAe,
      send,
      open: true,
      usable: true,
      onClosed: new Set(),
      closed: () => {
        if (!link.open) return;
        link.open = false;
        this.links.delete(link);
        for (const giveUp of [...link.onClosed]) giveUp();
      },
    };
    this.links.add(link);
    this.soon();
    return link;
  }

  /** Stops: no more reports are started; an association being opened is abandoned (its reports stay pending). */
  async close(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearInterval(this.timer);
    this.unsubscribe();
    for (const abandon of [...this.clients]) abandon();
  }

  private soon(): void {
    if (this.scheduled || this.stopped) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      if (!this.stopped) this.evaluate();
    });
  }

  /** Learns what it can of each pending request's images (journalling it), then sends the reports that are ready. */
  private evaluate(): void {
    const now = Date.now();
    for (const transaction of this.transactions.values()) {
      const committed: string[] = [];
      const failed: { sopInstanceUid: string; reason: number; why: string }[] = [];
      for (const reference of transaction.references) {
        if (transaction.outcomes.has(reference.sopInstanceUid)) continue;
        const state = this.stateOf(reference);
        if (state.state === 'committed') committed.push(reference.sopInstanceUid);
        else if (state.state === 'failed')
          failed.push({ sopInstanceUid: reference.sopInstanceUid, reason: state.reason, why: state.why });
        else if (state.state === 'unknown' && now - Date.parse(transaction.requestedAt) >= this.unknownGraceMs)
          failed.push({
            sopInstanceUid: reference.sopInstanceUid,
            reason: FAILURE_REASON.noSuchObjectInstance,
            why: 'never received by the gateway',
          });
      }
      if (committed.length === 0 && failed.length === 0) continue;
      try {
        this.write({
          kind: 'resolved',
          id: transaction.id,
          committed,
          failed: failed.map(({ sopInstanceUid, reason }) => ({ sopInstanceUid, reason })),
        });
      } catch (error) {
        this.options.log(
          'error',
          `Storage commitment ${transaction.transactionUid}: could not record image states: ${(error as Error).message}`,
        );
        continue;
      }
      for (const sop of committed) transaction.outcomes.set(sop, 'committed');
      for (const f of failed) {
        transaction.outcomes.set(f.sopInstanceUid, f.reason);
        this.options.log(
          'warn',
          `Storage commitment ${transaction.transactionUid}: image ${f.sopInstanceUid} cannot be committed (${f.why}; failure reason 0x${f.reason.toString(16).padStart(4, '0')})`,
        );
      }
    }
    this.deliver();
  }

  private stateOf(reference: SopReference): CommitmentState {
    try {
      return this.options.images.stateOf(reference);
    } catch (error) {
      this.options.log(
        'error',
        `Storage commitment: state of ${reference.sopInstanceUid}: ${(error as Error).message}`,
      );
      return { state: 'pending' };
    }
  }

  /** Sends each report that is ready and not on its way: on an open association from its modality, else a new one. */
  private deliver(): void {
    const ready = new Map<string, CommitmentTransaction[]>();
    for (const t of this.transactions.values()) {
      if (this.inFlight.has(t.id) || t.outcomes.size < t.references.length) continue;
      ready.set(t.callingAe, [...(ready.get(t.callingAe) ?? []), t]);
    }
    const now = Date.now();
    for (const [callingAe, transactions] of ready) {
      const links = [...this.links].filter((l) => l.open && l.usable && l.callingAe === callingAe);
      if (links.length > 0) {
        for (const t of transactions) this.sendOnLink(links[links.length - 1]!, t);
        continue;
      }
      const peer = this.options.peers?.[callingAe];
      if (!peer) {
        for (const t of transactions.filter((t) => !this.warnedNoRoute.has(t.id))) {
          this.warnedNoRoute.add(t.id);
          this.options.log(
            'warn',
            `Storage commitment ${t.transactionUid}: ready, but no address for ${callingAe} (--commitment-peer): waiting for it to connect`,
          );
        }
        continue;
      }
      if (this.connecting.has(callingAe) || (this.backoff.get(callingAe)?.nextAt ?? 0) > now) continue;
      this.sendOnNewAssociation(callingAe, peer, transactions);
    }
  }

  private sendOnLink(link: Link, transaction: CommitmentTransaction): void {
    this.inFlight.add(transaction.id);
    const request = this.reportRequest(transaction);
    const fail = this.awaitAnswer(request, link, (delivery) => {
      this.inFlight.delete(transaction.id);
      if ('status' in delivery) return this.reported(transaction, delivery.status, 'on its association');
      // Unanswered (the modality may not take reports on its own associations): the next one goes another way.
      if (link.open) link.usable = false;
      this.options.log(
        'warn',
        `Storage commitment ${transaction.transactionUid}: report on ${transaction.callingAe}'s association not answered (${delivery.error}): sending it another way`,
      );
      this.soon();
    });
    try {
      link.send(request);
    } catch (error) {
      fail((error as Error).message);
    }
  }

  /**
   * Waits for the answer to a report: its response, or the link's end or the time allowed (on a link), or the way
   * returned being called (on a new association, when it ends).
   */
  private awaitAnswer(
    request: dcmjsDimse.requests.NEventReportRequest,
    link: Link | undefined,
    done: (delivery: Delivery) => void,
  ): (error: string) => void {
    let settled = false;
    const settle = (delivery: Delivery) => {
      if (settled) return;
      settled = true;
      clearTimeout(timeout);
      link?.onClosed.delete(onClosed);
      done(delivery);
    };
    const onClosed = () => settle({ error: 'the association ended' });
    link?.onClosed.add(onClosed);
    const timeout = link
      ? setTimeout(() => settle({ error: 'no answer in time' }), this.responseTimeoutMs).unref()
      : undefined;
    request.on('response', (response: dcmjsDimse.responses.NEventReportResponse) =>
      settle({ status: response.getStatus() }),
    );
    return (error) => settle({ error });
  }

  /**
   * Opens an association to the modality (the gateway as Storage Commitment SCP proposing the SCP role, PS3.4 J)
   * and sends its ready reports on it; what is not answered is tried again after a growing wait.
   */
  private sendOnNewAssociation(callingAe: string, peer: CommitmentPeer, transactions: CommitmentTransaction[]): void {
    this.connecting.add(callingAe);
    for (const t of transactions) this.inFlight.add(t.id);
    const client = new Client();
    const answered = new Set<string>();
    const giveUps: ((error: string) => void)[] = [];
    let why = '';
    for (const t of transactions) {
      const request = this.reportRequest(t);
      giveUps.push(
        this.awaitAnswer(request, undefined, (delivery) => {
          if ('status' in delivery) {
            answered.add(t.id);
            this.inFlight.delete(t.id);
            this.reported(t, delivery.status, `on an association to ${peer.host}:${peer.port}`);
          } else why ||= delivery.error;
        }),
      );
      client.addRequest(request);
    }
    let finished = false;
    const finish = () => {
      if (finished) return;
      finished = true;
      clearTimeout(watchdog);
      this.clients.delete(abandon);
      this.connecting.delete(callingAe);
      for (const giveUp of giveUps) giveUp(why || 'no answer');
      const undelivered = transactions.filter((t) => !answered.has(t.id));
      for (const t of undelivered) this.inFlight.delete(t.id);
      if (undelivered.length === 0) {
        this.backoff.delete(callingAe);
      } else if (!this.stopped) {
        const failures = (this.backoff.get(callingAe)?.failures ?? 0) + 1;
        const wait = Math.min(this.maxRetryMs, this.retryMs * 2 ** (failures - 1));
        this.backoff.set(callingAe, { failures, nextAt: Date.now() + wait });
        this.options.log(
          'warn',
          `Storage commitment: ${undelivered.length} report(s) not delivered to ${callingAe} at ${peer.host}:${peer.port} (${why || 'no answer'}): trying again in ${Math.round(wait / 1000)} s`,
        );
      }
      this.soon();
    };
    const destroy = () => (client as unknown as { network?: { socket?: Socket } }).network?.socket?.destroy();
    const abandon = () => {
      why ||= 'the gateway stopped';
      destroy();
      finish();
    };
    this.clients.add(abandon);
    const watchdog = setTimeout(() => {
      why ||= 'the association took too long';
      destroy();
      finish();
    }, this.associationTimeoutMs);
    watchdog.unref();
    client.on('associationAccepted', (association: dcmjsDimse.association.Association) => {
      const accepted = association
        .getPresentationContexts()
        .some(
          ({ context }) =>
            context.getAbstractSyntaxUid() === STORAGE_COMMITMENT_SOP_CLASS &&
            context.getResult() === PresentationContextResult.Accept,
        );
      if (!accepted) why ||= `${callingAe} did not accept Storage Commitment on the association`;
    });
    client.on('associationRejected', (r: { result: number; source: number; reason: number }) => {
      why ||= `association rejected (result ${r.result}, source ${r.source}, reason ${r.reason})`;
    });
    client.on('networkError', (error: Error) => {
      why ||= error.message;
    });
    client.on('closed', finish);
    try {
      client.send(peer.host, peer.port, this.options.aeTitle, callingAe, {
        connectTimeout: this.associationTimeoutMs,
        associationTimeout: this.responseTimeoutMs,
        pduTimeout: this.responseTimeoutMs,
        associationLingerTimeout: 0,
      });
      proposeScpRole(client);
    } catch (error) {
      why ||= (error as Error).message;
      finish();
    }
  }

  private reportRequest(transaction: CommitmentTransaction): dcmjsDimse.requests.NEventReportRequest {
    const report = commitmentReport(transaction);
    const request = new NEventReportRequest(
      STORAGE_COMMITMENT_SOP_CLASS,
      STORAGE_COMMITMENT_SOP_INSTANCE,
      report.eventType,
    );
    request.setDataset(new Dataset(report.dataset));
    return request;
  }

  private reported(transaction: CommitmentTransaction, status: number, how: string): void {
    if (!this.transactions.has(transaction.id)) return;
    const eventType = commitmentReport(transaction).eventType;
    try {
      this.write({ kind: 'reported', id: transaction.id, eventType, status, at: new Date().toISOString() });
    } catch (error) {
      // Not recorded: after a restart the modality is told again (the same Transaction UID twice).
      this.options.log(
        'error',
        `Storage commitment ${transaction.transactionUid}: could not record the report: ${(error as Error).message}`,
      );
    }
    this.transactions.delete(transaction.id);
    this.warnedNoRoute.delete(transaction.id);
    const failed = [...transaction.outcomes.values()].filter((o) => o !== 'committed').length;
    const outcome =
      failed === 0
        ? `all ${transaction.references.length} image(s) committed`
        : `${failed} of ${transaction.references.length} image(s) failed`;
    if (status === Status.Success)
      this.options.log(
        'info',
        `Storage commitment ${transaction.transactionUid} reported to ${transaction.callingAe} ${how}: ${outcome}`,
      );
    else
      this.options.log(
        'warn',
        `Storage commitment ${transaction.transactionUid} reported to ${transaction.callingAe} ${how} (${outcome}), which answered 0x${status.toString(16).padStart(4, '0')}`,
      );
    this.events.emit('reported', {
      transactionUid: transaction.transactionUid,
      callingAe: transaction.callingAe,
      eventType,
      status,
    });
    if (this.transactions.size === 0) this.forgetReported();
  }

  private write(line: JournalLine): void {
    appendLineDurably(this.journal, line);
  }

  /** Nothing is pending: the journal (requests all reported) is removed, so it never grows for ever. */
  private forgetReported(): void {
    try {
      if (existsSync(this.journal)) {
        rmSync(this.journal, { force: true });
        fsyncPath(this.options.dataDir);
      }
    } catch (error) {
      this.options.log('warn', `Storage commitment: could not tidy ${JOURNAL}: ${(error as Error).message}`);
    }
  }

  /** Reads the journal back: the requests not reported, with what was learnt of their images; then compacts it. */
  private load(): void {
    const { values, damaged } = readLines(this.journal);
    if (damaged > 0) this.options.log('warn', `Storage commitment: ${damaged} damaged line(s) in ${JOURNAL} skipped`);
    let reported = 0;
    for (const value of values) {
      const line = value as Partial<JournalLine> | null;
      if (!line || typeof line.id !== 'string') continue;
      if (line.kind === 'requested') {
        const l = line as Extract<JournalLine, { kind: 'requested' }>;
        if (!Array.isArray(l.references) || typeof l.transactionUid !== 'string') continue;
        const transaction: CommitmentTransaction = {
          id: l.id,
          transactionUid: l.transactionUid,
          callingAe: String(l.callingAe),
          requestedAt: String(l.at),
          references: l.references,
          outcomes: new Map(),
        };
        if (l.duplicate) failAsDuplicate(transaction);
        this.transactions.set(l.id, transaction);
      } else if (line.kind === 'resolved') {
        const l = line as Extract<JournalLine, { kind: 'resolved' }>;
        const t = this.transactions.get(l.id);
        for (const sop of l.committed ?? []) t?.outcomes.set(sop, 'committed');
        for (const f of l.failed ?? []) t?.outcomes.set(f.sopInstanceUid, f.reason);
      } else if (line.kind === 'reported') {
        if (this.transactions.delete(line.id)) reported++;
      }
    }
    if (this.transactions.size === 0) {
      if (values.length > 0 || damaged > 0) this.forgetReported();
      return;
    }
    if (reported === 0 && damaged === 0) return;
    // Rewritten with the pending requests only: one requested and one resolved line each.
    const temporary = `${this.journal}.${process.pid}.tmp`;
    rmSync(temporary, { force: true });
    for (const t of this.transactions.values()) {
      appendLineDurably(temporary, {
        kind: 'requested',
        id: t.id,
        transactionUid: t.transactionUid,
        callingAe: t.callingAe,
        at: t.requestedAt,
        references: t.references,
      } satisfies JournalLine);
      const outcomes = [...t.outcomes];
      if (outcomes.length > 0)
        appendLineDurably(temporary, {
          kind: 'resolved',
          id: t.id,
          committed: outcomes.filter(([, o]) => o === 'committed').map(([sop]) => sop),
          failed: outcomes
            .filter((e): e is [string, number] => e[1] !== 'committed')
            .map(([sopInstanceUid, reason]) => ({ sopInstanceUid, reason })),
        } satisfies JournalLine);
    }
    commitFile(temporary, this.journal);
  }
}

/** The N-EVENT-REPORT a transaction's outcomes make (PS3.4 J.3.3.1, Table J.3-2). */
export function commitmentReport(
  transaction: Pick<CommitmentTransaction, 'transactionUid' | 'references' | 'outcomes'>,
): {
  eventType: number;
  dataset: Record<string, unknown>;
} {
  const committed = transaction.references.filter((r) => transaction.outcomes.get(r.sopInstanceUid) === 'committed');
  const failed = transaction.references.filter((r) => {
    const outcome = transaction.outcomes.get(r.sopInstanceUid);
    return outcome !== undefined && outcome !== 'committed';
  });
  const item = (r: SopReference) => ({
    ReferencedSOPClassUID: r.sopClassUid,
    ReferencedSOPInstanceUID: r.sopInstanceUid,
  });
  return {
    eventType: failed.length === 0 ? COMMITMENT_EVENT.allCommitted : COMMITMENT_EVENT.someFailed,
    dataset: {
      TransactionUID: transaction.transactionUid,
      ...(committed.length > 0 ? { ReferencedSOPSequence: committed.map(item) } : {}),
      ...(failed.length > 0
        ? {
            FailedSOPSequence: failed.map((r) => ({
              ...item(r),
              FailureReason: transaction.outcomes.get(r.sopInstanceUid) as number,
            })),
          }
        : {}),
    },
  };
}

/** The Action Information of a storage commitment request (PS3.4 J.3.2.1.1, Table J.3-1), or why it is refused. */
export function readActionInformation(
  elements: Record<string, unknown> | undefined,
): { transactionUid: string; references: SopReference[] } | { refusal: string; status: number } {
  const invalid = (refusal: string) => ({ refusal, status: COMMITMENT_STATUS.invalidArgumentValue });
  if (!elements) return invalid('No Action Information (dataset) in the request');
  const transactionUid = text(elements.TransactionUID);
  if (!transactionUid) return invalid('Transaction UID (0008,1195) missing');
  if (!isValidUid(transactionUid)) return invalid('Transaction UID (0008,1195) is not a valid UID');
  const sequence = elements.ReferencedSOPSequence;
  const items = Array.isArray(sequence) ? sequence : sequence && typeof sequence === 'object' ? [sequence] : [];
  if (items.length === 0) return invalid('Referenced SOP Sequence (0008,1199) missing or empty');
  if (items.length > MAX_REFERENCES)
    return {
      refusal: `More than ${MAX_REFERENCES} images in one request`,
      status: COMMITMENT_STATUS.resourceLimitation,
    };
  const references: SopReference[] = [];
  const seen = new Set<string>();
  for (const [i, value] of items.entries()) {
    const entry = (value ?? {}) as Record<string, unknown>;
    const sopClassUid = text(entry.ReferencedSOPClassUID);
    const sopInstanceUid = text(entry.ReferencedSOPInstanceUID);
    if (!sopClassUid || !sopInstanceUid) return invalid(`Referenced SOP Sequence item ${i + 1}: a UID is missing`);
    if (!isValidUid(sopClassUid) || !isValidUid(sopInstanceUid))
      return invalid(`Referenced SOP Sequence item ${i + 1}: not a valid UID`);
    // The same image twice is one image to commit (and one line in the report).
    if (seen.has(sopInstanceUid)) continue;
    seen.add(sopInstanceUid);
    references.push({ sopClassUid, sopInstanceUid });
  }
  return { transactionUid, references };
}

/**
 * The commitment view of the gateway's outbox (outbox.ts): in the PACS, committed; damaged, failed (processing
 * failure); received, sealed, sending or at the hub, pending.
 *
 * The outbox forgets an image once the PACS holds it (it keeps only the latest 500 of those in memory), and only then.
 * So an image the outbox does not know but received.jsonl does (ReceivedImages) is in the PACS: committed. An image
 * neither knows was never received: unknown (reported missing after a grace period). The check of the SOP class makes
 * a request naming an image by the wrong class fail (class/instance conflict), and one naming a class the gateway does
 * not store fail at once (referenced SOP class not supported).
 */
export function outboxImageSource(
  outbox: { stateOf(sopInstanceUid: string): ImageState | undefined; readonly events: EventEmitter },
  received: ReceivedImages,
  storedSopClasses: readonly string[],
): CommitmentImageSource {
  return {
    stateOf({ sopClassUid, sopInstanceUid }) {
      const receivedAs = received.sopClassOf(sopInstanceUid);
      if (!receivedAs && !storedSopClasses.includes(sopClassUid))
        return {
          state: 'failed',
          reason: FAILURE_REASON.referencedSopClassNotSupported,
          why: `SOP class ${sopClassUid} is not one the gateway stores`,
        };
      if (receivedAs && receivedAs !== sopClassUid)
        return {
          state: 'failed',
          reason: FAILURE_REASON.classInstanceConflict,
          why: `received as SOP class ${receivedAs}, not ${sopClassUid}`,
        };
      switch (outbox.stateOf(sopInstanceUid)) {
        case 'in_pacs':
          return { state: 'committed' };
        case 'damaged':
          return { state: 'failed', reason: FAILURE_REASON.processingFailure, why: 'damaged on the gateway' };
        case undefined:
          return receivedAs ? { state: 'committed' } : { state: 'unknown' };
        default:
          return { state: 'pending' };
      }
    },
    onChange(listener) {
      outbox.events.on('changed', listener);
      outbox.events.on('stored', listener);
      return () => {
        outbox.events.off('changed', listener);
        outbox.events.off('stored', listener);
      };
    },
  };
}

/** Every image the gateway has ever received (received.jsonl), by SOP Instance UID: its SOP class. */
export class ReceivedImages {
  private readonly classes = new Map<string, string>();

  constructor(images: readonly Pick<ReceivedImage, 'sopInstanceUid' | 'sopClassUid'>[] = []) {
    for (const image of images) this.add(image);
  }

  add(image: Pick<ReceivedImage, 'sopInstanceUid' | 'sopClassUid'>): void {
    this.classes.set(image.sopInstanceUid, image.sopClassUid);
  }

  sopClassOf(sopInstanceUid: string): string | undefined {
    return this.classes.get(sopInstanceUid);
  }
}

/**
 * `--commitment-peer` values: `AE@host:port`, repeated or comma-separated (`MAMMO1@10.0.0.5:104`; an IPv6 address in
 * brackets, `MAMMO1@[fd00::5]:104`).
 */
export function parseCommitmentPeers(values: readonly string[] | string | undefined): Record<string, CommitmentPeer> {
  const peers: Record<string, CommitmentPeer> = {};
  const list = (typeof values === 'string' ? [values] : (values ?? []))
    .flatMap((v) => v.split(','))
    .map((v) => v.trim())
    .filter(Boolean);
  for (const entry of list) {
    const match = /^([^@]{1,16})@(\[[0-9A-Fa-f:.]+\]|[^:@\s]+):(\d{1,5})$/.exec(entry);
    const port = Number(match?.[3]);
    const ae = match?.[1]?.trim();
    if (!match || !ae || !Number.isInteger(port) || port < 1 || port > 65535)
      throw new Error(`--commitment-peer "${entry}" is not AE@host:port (e.g. MAMMO1@10.0.0.5:104)`);
    peers[ae] = { host: match[2]!.replace(/^\[|\]$/g, ''), port };
  }
  return peers;
}

/**
 * dcmjs-dimse 0.3.3's Client proposes default roles only: before its A-ASSOCIATE-RQ goes, the Storage Commitment
 * presentation context is given SCU/SCP Role Selection "SCP" (SCU role 0, SCP role 1), as PS3.4 Annex J asks of an SCP
 * that opens the association for its N-EVENT-REPORT.
 */
function proposeScpRole(client: dcmjsDimse.Client): void {
  const network = (
    client as unknown as {
      network?: { sendAssociationRequest(association: dcmjsDimse.association.Association): void };
    }
  ).network;
  if (!network) return;
  const send = network.sendAssociationRequest.bind(network);
  network.sendAssociationRequest = (association) => {
    for (const { context } of association.getPresentationContexts())
      if (context.getAbstractSyntaxUid() === STORAGE_COMMITMENT_SOP_CLASS) {
        context.setUserRole(false);
        context.setProviderRole(true);
      }
    send(association);
  };
}

function failAsDuplicate(transaction: CommitmentTransaction): void {
  for (const r of transaction.references)
    transaction.outcomes.set(r.sopInstanceUid, FAILURE_REASON.duplicateTransactionUid);
}

function sameReferences(a: readonly SopReference[], b: readonly SopReference[]): boolean {
  return (
    a.length === b.length &&
    a.every((r, i) => r.sopInstanceUid === b[i]!.sopInstanceUid && r.sopClassUid === b[i]!.sopClassUid)
  );
}

function text(value: unknown): string {
  const v = Array.isArray(value) ? (value as unknown[])[0] : value;
  return typeof v === 'string' ? v.replace(/[\0\s]+$/, '').trim() : '';
}
