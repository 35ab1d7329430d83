import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { ChangeOutcome, GatewayChange } from '../protocol/gateway-changes.js';
import { appendLineDurably, readLines } from './jsonl-journal.js';

type JournalLine = { change: GatewayChange } | { outcome: ChangeOutcome };

export interface QueuedChange {
  change: GatewayChange;
  /** What the hub answered, once it has. */
  outcome?: ChangeOutcome;
}

/**
 * Changes made on the trailer (and reported by the modality), kept in an append-only journal fsynced per line
 * before the change counts as made, so a power cut loses none. The hub's outcome for each is appended when it
 * comes. A torn last line (power cut mid-write) is ignored: it was never acknowledged to anyone.
 */
export class ChangeQueue {
  private readonly file: string;
  private readonly changes = new Map<string, QueuedChange>();
  /** Moves on with every change and outcome: what is built from the queue can tell it is out of date. */
  revision = 0;

  constructor(dataDir: string) {
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    this.file = join(dataDir, 'changes.jsonl');
    for (const entry of readLines(this.file).values as JournalLine[]) {
      if ('change' in entry) this.changes.set(entry.change.id, { change: entry.change });
      else {
        const queued = this.changes.get(entry.outcome.id);
        if (queued) queued.outcome = entry.outcome;
      }
    }
  }

  /** Records a change durably; only then is it shown as made. */
  add(change: GatewayChange): void {
    appendLineDurably(this.file, { change });
    this.changes.set(change.id, { change });
    this.revision += 1;
  }

  recordOutcome(outcome: ChangeOutcome): void {
    const queued = this.changes.get(outcome.id);
    if (!queued || queued.outcome) return;
    appendLineDurably(this.file, { outcome });
    queued.outcome = outcome;
    this.revision += 1;
  }

  /** Not yet answered by the hub, oldest first. */
  pending(): GatewayChange[] {
    return [...this.changes.values()].filter((q) => !q.outcome).map((q) => q.change);
  }

  all(): QueuedChange[] {
    return [...this.changes.values()];
  }
}
