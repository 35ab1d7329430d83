import { addDays } from '../pathway/dates.js';
import { phaseLine, type PhaseFailure } from '../protocol/failure-phase.js';
import { classifyLinkError } from './failure-classifier.js';
import { HubError, StreamClosed, type EventStream, type HubConnection } from './hub-connection.js';
import type { WorklistSnapshot } from './worklist-copy.js';

export interface FeedState {
  online: boolean;
  /** When the link was first found down, while offline. */
  offlineSince: string | null;
  lastError: string | null;
  /** The last failure by its phase (DNS, TCP connect, TLS, certificate, …), with what to do; null once connected. */
  lastFailure: PhaseFailure | null;
  /**
   * The last time the link was down, kept once it is back (the hub hears of it only then, with the next heartbeat):
   * its phase-named failure (the last one, if several), from when and until when.
   */
  lastOutage: { failure: PhaseFailure; from: string; until: string } | null;
  lastSuccess: string | null;
  /** The hub has revoked this gateway: it will not be let back in without a new enrolment. */
  revoked: boolean;
}

export interface HubFeedOptions {
  connection: HubConnection;
  /** Days of worklist to keep from today (the unit's next clinic days). */
  days: number;
  today: () => string;
  onSnapshot: (snapshot: WorklistSnapshot) => void;
  /** Every event on the push stream, by name, with its data (the hub's pings are answered from here). */
  onEvent?: (name: string, data: string) => void;
  /** Called each time the link comes back (queued changes go then). */
  onOnline?: () => void;
  /** Asks again this often while connected, in case a push was missed (default 5 minutes). */
  resyncMs?: number;
  /** Longest wait between attempts to reconnect (default 30 s); the first retry is after 1 s. */
  maxRetryMs?: number;
  /** A stream that says nothing (not even the hub's heartbeat) for this long is taken as a dead link. */
  silenceMs?: number;
  log: (level: 'info' | 'warn' | 'error', message: string) => void;
}

const describe = (error: unknown) => {
  const cause =
    (error as { cause?: { code?: string }; code?: string }).cause?.code ?? (error as { code?: string }).code;
  const message = (error as Error).message;
  return cause && !message.includes(cause) ? `${message} (${cause})` : message;
};

/**
 * Keeps the gateway's worklist in step with the hub: a push stream (server-sent events over mutual TLS) says
 * when the unit's worklist changed, and the gateway then asks for it. When the stream drops it reconnects with
 * growing waits, and meanwhile the copy it has keeps answering the modality.
 */
export function startHubFeed(options: HubFeedOptions) {
  const state: FeedState = {
    online: false,
    offlineSince: null,
    lastError: null,
    lastFailure: null,
    lastOutage: null,
    lastSuccess: null,
    revoked: false,
  };
  let stream: EventStream | undefined;
  let retry: NodeJS.Timeout | undefined;
  let stopped = false;
  let failures = 0;
  let pulling: Promise<void> | undefined;
  let again = false;

  function wentOffline(error: unknown): void {
    const message = describe(error);
    // A stream the feed closed itself (to start again after a failed ask) keeps the failure that made it close.
    if (error instanceof StreamClosed && state.lastFailure) return void (state.online = false);
    const failure = classifyLinkError(error);
    // Logged when the link goes down, and again when the phase changes (the DNS is back, but the port is shut).
    if (state.online || state.offlineSince === null) {
      options.log('warn', `${phaseLine(failure)}; the worklist is answered from the local copy`);
      state.offlineSince = new Date().toISOString();
    } else if (state.lastFailure?.phase !== failure.phase) options.log('warn', `${phaseLine(failure)}; still offline`);
    Object.assign(state, { online: false, lastError: message, lastFailure: failure });
    if (error instanceof HubError && error.status === 403 && /revoked/.test(message)) {
      if (!state.revoked) options.log('error', `This gateway has been revoked at the hub: ${message}`);
      state.revoked = true;
    }
  }

  async function pullOnce(): Promise<void> {
    const from = options.today();
    const snapshot = await options.connection.get<WorklistSnapshot>(
      `/gateway/v1/worklist?from=${from}&to=${addDays(from, options.days)}`,
    );
    options.onSnapshot(snapshot);
    const wasOnline = state.online;
    if (state.lastFailure && state.offlineSince)
      state.lastOutage = { failure: state.lastFailure, from: state.offlineSince, until: new Date().toISOString() };
    Object.assign(state, {
      online: true,
      offlineSince: null,
      lastError: null,
      lastFailure: null,
      lastSuccess: new Date().toISOString(),
    });
    if (!wasOnline) {
      options.log('info', `Connected to the hub: worklist of ${snapshot.entries.length} appointments`);
      options.onOnline?.();
    }
  }

  /** Asks for the worklist; pushes that arrive meanwhile make one more ask, not one each. */
  function pull(): Promise<void> {
    if (pulling) {
      again = true;
      return pulling;
    }
    pulling = (async () => {
      do {
        again = false;
        await pullOnce();
      } while (again && !stopped);
    })().finally(() => (pulling = undefined));
    return pulling;
  }

  function connect(): void {
    if (stopped) return;
    stream = options.connection.events(
      '/gateway/v1/events',
      (name, data) => {
        options.onEvent?.(name, data);
        if (name === 'hello' || name === 'worklist')
          pull()
            .then(() => (failures = 0))
            .catch((error: unknown) => {
              // The stream may still be up while the worklist cannot be had (a 503, a timeout): start again from
              // a new connection, which asks again, rather than wait for a push that may not come for hours.
              wentOffline(error);
              stream?.close();
            });
      },
      (error) => {
        stream = undefined;
        if (stopped) return;
        wentOffline(error);
        failures += 1;
        const wait = Math.min(options.maxRetryMs ?? 30_000, 1000 * 2 ** Math.min(failures - 1, 10));
        retry = setTimeout(connect, wait);
      },
      options.silenceMs,
    );
  }

  connect();
  const resync = setInterval(
    () => {
      if (stream) pull().catch((error: unknown) => wentOffline(error));
    },
    options.resyncMs ?? 5 * 60_000,
  );
  return {
    state,
    pullNow: pull,
    stop() {
      stopped = true;
      if (retry) clearTimeout(retry);
      clearInterval(resync);
      stream?.close();
    },
  };
}
