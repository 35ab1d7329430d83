import { addDays } from '../pathway/dates.js';
import type { WorklistSnapshot } from './worklist-copy.js';

export interface FeedState {
  online: boolean;
  /** When the last attempt failed first, while offline. */
  offlineSince: string | null;
  lastError: string | null;
  lastSuccess: string | null;
}

export interface HubFeedOptions {
  hubUrl: string;
  unitId: string;
  token: string;
  /** Days of worklist to keep from today (the unit's next clinic days). */
  days: number;
  intervalMs: number;
  today: () => string;
  onSnapshot: (snapshot: WorklistSnapshot) => void;
  log: (level: 'info' | 'warn' | 'error', message: string) => void;
}

/**
 * Keeps the gateway's worklist in step with the hub by asking for it every few seconds. A failed request leaves
 * the copy as it was (the modality keeps being answered) and names what failed.
 */
export function startHubFeed(options: HubFeedOptions) {
  const state: FeedState = { online: false, offlineSince: null, lastError: null, lastSuccess: null };
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;

  async function pull(): Promise<void> {
    const from = options.today();
    const url = new URL(`/api/v1/units/${encodeURIComponent(options.unitId)}/worklist`, options.hubUrl);
    url.searchParams.set('from', from);
    url.searchParams.set('to', addDays(from, options.days));
    try {
      const response = await fetch(url, {
        headers: { authorization: `Bearer ${options.token}` },
        signal: AbortSignal.timeout(10_000),
      });
      if (!response.ok)
        throw new Error(`hub answered HTTP ${response.status}: ${(await response.text()).slice(0, 200)}`);
      options.onSnapshot((await response.json()) as WorklistSnapshot);
      if (!state.online) options.log('info', `Worklist feed from ${options.hubUrl} is online`);
      Object.assign(state, {
        online: true,
        offlineSince: null,
        lastError: null,
        lastSuccess: new Date().toISOString(),
      });
    } catch (error) {
      const cause = (error as { cause?: { code?: string } }).cause?.code;
      const message = `${(error as Error).message}${cause ? ` (${cause})` : ''}`;
      if (state.online || state.offlineSince === null) {
        options.log('warn', `Worklist feed offline: ${message}; answering from the local copy`);
        state.offlineSince = new Date().toISOString();
      }
      Object.assign(state, { online: false, lastError: message });
    }
  }

  async function loop(): Promise<void> {
    await pull();
    if (!stopped) timer = setTimeout(() => void loop(), options.intervalMs);
  }
  void loop();
  return {
    state,
    pullNow: pull,
    stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
    },
  };
}
