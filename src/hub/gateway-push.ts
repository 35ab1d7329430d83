import { addDays } from '../pathway/dates.js';
import type { Database } from '../store/database.js';

type Listener = { onWorklistChange(): void; onRevoked(): void };

/**
 * Tells connected gateways when their unit's worklist may have changed. The database says what changed
 * (triggers NOTIFY worklist_change with a site or a participant, migration 0002), so changes made by any hub
 * process, the API or a feed all reach the trailers. Several changes within `settleMs` make one message.
 */
export class GatewayPush {
  private readonly listeners = new Map<string, Set<Listener & { gatewayId: string }>>();
  private readonly pending = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private stops: (() => Promise<void>)[] = [];

  constructor(
    private readonly database: Database,
    private readonly today: () => string,
    private readonly settleMs = 100,
  ) {}

  async start(): Promise<void> {
    this.stops.push(await this.database.listen('worklist_change', (payload) => void this.changed(payload)));
    this.stops.push(await this.database.listen('gateway_revoked', (gatewayId) => this.revoked(gatewayId)));
  }

  async stop(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    await Promise.all(this.stops.map((stop) => stop()));
    this.stops = [];
  }

  subscribe(unitId: string, gatewayId: string, listener: Listener): () => void {
    const entry = { ...listener, gatewayId };
    const set = this.listeners.get(unitId) ?? new Set();
    set.add(entry);
    this.listeners.set(unitId, set);
    return () => {
      set.delete(entry);
      if (set.size === 0) this.listeners.delete(unitId);
    };
  }

  /** How many gateways are listening now, per unit. */
  connected(): Map<string, number> {
    return new Map([...this.listeners].map(([unit, set]) => [unit, set.size]));
  }

  private async changed(payload: string): Promise<void> {
    if (this.listeners.size === 0) return;
    let change: { site?: string; participant?: string };
    try {
      change = JSON.parse(payload) as typeof change;
    } catch {
      return;
    }
    if (change.site) this.queue([change.site]);
    if (change.participant) {
      // A participant's details are on the worklists of the units she is booked at from today.
      const today = this.today();
      const rows = await this.database.db
        .selectFrom('appointment as a')
        .innerJoin('clinic as c', 'c.id', 'a.clinic_id')
        .select('c.site_id')
        .distinct()
        .where('a.participant_id', '=', change.participant)
        .where('c.clinic_date', '>=', today)
        .where('c.clinic_date', '<=', addDays(today, 31))
        .execute()
        .catch(() => []);
      this.queue(rows.map((r) => r.site_id));
    }
  }

  private queue(units: string[]): void {
    for (const unit of units) if (this.listeners.has(unit)) this.pending.add(unit);
    if (this.pending.size === 0 || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      for (const unit of this.pending)
        for (const listener of this.listeners.get(unit) ?? []) listener.onWorklistChange();
      this.pending.clear();
    }, this.settleMs);
  }

  private revoked(gatewayId: string): void {
    for (const set of this.listeners.values())
      for (const listener of set) if (listener.gatewayId === gatewayId) listener.onRevoked();
  }
}
