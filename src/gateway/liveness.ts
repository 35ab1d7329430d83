/**
 * The gateway's half of liveness by round trip (issue 8, ADR 0011): each `ping` on the push stream is answered
 * with POST /gateway/v1/heartbeat on the same mutual-TLS channel the images use, carrying a small report (online,
 * outbox, latest failure, version, mode). The hub's answer says the site's image mode, which is kept on disk so
 * the trailer page still shows manual images mode after a restart with the link down.
 */
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../paths.js';
import type { PhaseFailure } from '../protocol/failure-phase.js';
import { pingSchema, type GatewayReport, type HeartbeatAnswer, type ModeNotice } from '../protocol/liveness.js';
import type { HubConnection } from './hub-connection.js';

const MODE_FILE = 'image-mode.json';

function packageVersion(): string {
  try {
    return (JSON.parse(readFileSync(join(packageRoot, 'package.json'), 'utf8')) as { version?: string }).version ?? '';
  } catch {
    return '';
  }
}
export const GATEWAY_VERSION = packageVersion();

export interface LivenessOptions {
  connection: HubConnection;
  dataDir: string;
  /** The gateway's state as it is now, for the report. */
  status: () => {
    online: boolean;
    outbox: { awaiting: number; sending: number };
    lastFailure?: PhaseFailure | null | undefined;
    lastOutage?: GatewayReport['lastOutage'];
  };
  log: (level: 'info' | 'warn' | 'error', message: string) => void;
}

export class HubLiveness {
  /** The site's image mode as the hub last said it (normal until it has said anything). */
  mode: ModeNotice;
  /** When the hub last confirmed a round trip, as this gateway saw it, and how long the hub measured. */
  lastRoundTrip: { at: string; ms: number } | null = null;
  /** Pings answered and pings not answered because one answer was still on its way. */
  answered = 0;
  skipped = 0;
  /** The answer on its way, if any. */
  private answering: AbortController | undefined;

  constructor(private readonly options: LivenessOptions) {
    this.mode = HubLiveness.readMode(options.dataDir);
  }

  static readMode(dataDir: string): ModeNotice {
    try {
      return JSON.parse(readFileSync(join(dataDir, MODE_FILE), 'utf8')) as ModeNotice;
    } catch {
      return { mode: 'normal', reason: null, since: null, by: null };
    }
  }

  report(): GatewayReport {
    const status = this.options.status();
    return {
      online: status.online,
      outbox: status.outbox,
      lastFailure: status.lastFailure ?? null,
      lastOutage: status.lastOutage ?? null,
      version: GATEWAY_VERSION,
      mode: this.mode.mode,
    };
  }

  /** A `ping` event's data from the push stream. */
  onPing(data: string): void {
    let ping;
    try {
      ping = pingSchema.parse(JSON.parse(data));
    } catch {
      this.options.log('warn', 'The hub sent a ping this gateway does not understand: not answered');
      return;
    }
    // One answer on its way at a time: on a dying link answers would otherwise pile up on the connections the
    // images need. The next ping is answered once this one is done.
    if (this.answering) {
      this.skipped += 1;
      return;
    }
    const answering = new AbortController();
    this.answering = answering;
    this.options.connection
      .post<HeartbeatAnswer>('/gateway/v1/heartbeat', { pingId: ping.id, report: this.report() }, answering.signal)
      .then((answer) => {
        this.answered += 1;
        if (answer.roundTripMs !== null) this.lastRoundTrip = { at: new Date().toISOString(), ms: answer.roundTripMs };
        this.setMode(answer.mode);
      })
      .catch((error: unknown) => {
        if (!answering.signal.aborted)
          this.options.log('warn', `Could not answer the hub's ping: ${(error as Error).message}`);
      })
      .finally(() => {
        if (this.answering === answering) this.answering = undefined;
      });
  }

  /**
   * The link is back (a new push stream): an answer still on its way went over the link that died, where it would
   * wait out its timeout and hold back the answers to the new stream's pings. It is dropped.
   */
  linkRestored(): void {
    this.answering?.abort();
    this.answering = undefined;
  }

  private setMode(notice: ModeNotice): void {
    if (notice.mode === this.mode.mode && notice.since === this.mode.since) return;
    this.options.log(
      notice.mode === 'manual_images' ? 'warn' : 'info',
      notice.mode === 'manual_images'
        ? `The hub put this unit in manual images mode (${notice.reason ?? 'no reason given'}): keep images on the machine`
        : 'The hub put this unit back in normal mode: images go through the gateway again',
    );
    this.mode = notice;
    const file = join(this.options.dataDir, MODE_FILE);
    writeFileSync(`${file}.tmp`, JSON.stringify(notice));
    renameSync(`${file}.tmp`, file);
  }
}
