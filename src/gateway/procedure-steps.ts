import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { PerformedStepCreation } from '../dicom/performed-procedure-step.js';
import { appendLineDurably, readLines } from './jsonl-journal.js';

/** Performed Procedure Step Status (0040,0252) as PS3.3 C.4.14 defines it. */
export type PerformedStatus = 'IN PROGRESS' | 'COMPLETED' | 'DISCONTINUED';
export const PERFORMED_STATUSES: readonly PerformedStatus[] = ['IN PROGRESS', 'COMPLETED', 'DISCONTINUED'];

/**
 * What the gateway keeps of one Modality Performed Procedure Step (one exam as the modality performed it): what the
 * N-CREATE said (performed-procedure-step.ts), and what the N-SETs since have changed.
 */
export interface ProcedureStep extends Omit<PerformedStepCreation, 'status'> {
  sopInstanceUid: string;
  status: PerformedStatus;
  endDate: string;
  endTime: string;
  /** Images referenced in Performed Series Sequence (the last one the modality sent). */
  imageCount: number;
  /** Discontinuation reason (code meaning, or code value without one). */
  reason?: string;
  /** The calling AE title that created the step. */
  modality: string;
  /** When the gateway recorded this state (ISO instant). */
  recordedAt: string;
}

/** Told to the gateway once a step's new state is durable, before the modality is answered. */
export interface ProcedureStepEvent {
  kind: 'in_progress' | 'completed' | 'discontinued';
  sopInstanceUid: string;
  accessionNumber: string;
  patientId: string;
  imageCount: number;
  reason?: string;
  /** When the state was recorded (ISO instant). */
  at: string;
}

export type NewProcedureStep = Omit<ProcedureStep, 'status' | 'recordedAt' | 'endDate' | 'endTime' | 'reason'> &
  Partial<Pick<ProcedureStep, 'endDate' | 'endTime'>>;
export type ProcedureStepChange = Partial<
  Pick<ProcedureStep, 'status' | 'endDate' | 'endTime' | 'imageCount' | 'reason'>
>;

/** Why a step could not be created or changed: PS3.4 F.7.2 maps each to an N-CREATE or N-SET status. */
export class ProcedureStepRefused extends Error {
  constructor(
    readonly code: 'duplicate' | 'unknown' | 'ended',
    message: string,
  ) {
    super(message);
  }
}

/**
 * The gateway's Modality Performed Procedure Steps, kept in its data folder as an append-only journal
 * (procedure-steps.jsonl): each change appends the step's whole new state as one JSON line and fsyncs it before the
 * change counts, so a power cut (kill -9) loses nothing acknowledged. On start the journal is read back, the last line
 * of each step wins; a torn last line (never acknowledged) is cut off, so N-SET after a restart finds its step.
 */
export class ProcedureStepStore {
  readonly file: string;
  /** Lines that could not be read when the journal was loaded (other than a torn last line). */
  readonly damagedLines: number;
  private readonly steps = new Map<string, ProcedureStep>();

  constructor(
    dataDir: string,
    log: (level: 'error', message: string) => void = (_level, message) => console.error(message),
  ) {
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    this.file = join(dataDir, 'procedure-steps.jsonl');
    const journal = readLines(this.file);
    let damaged = journal.damaged;
    for (const value of journal.values) {
      const step = asStep(value);
      if (step) this.steps.set(step.sopInstanceUid, step);
      else damaged++;
    }
    this.damagedLines = damaged;
    if (this.damagedLines > 0)
      log('error', `${this.file}: ${this.damagedLines} damaged line(s) skipped; those procedure steps are unknown`);
  }

  get(sopInstanceUid: string): ProcedureStep | undefined {
    return this.steps.get(sopInstanceUid);
  }

  all(): ProcedureStep[] {
    return [...this.steps.values()];
  }

  /** Records a new step, IN PROGRESS. Refused ('duplicate') if the instance UID is known already. */
  begin(step: NewProcedureStep, now = new Date()): ProcedureStep {
    if (this.steps.has(step.sopInstanceUid))
      throw new ProcedureStepRefused('duplicate', `Procedure step ${step.sopInstanceUid} exists already`);
    return this.append({
      endDate: '',
      endTime: '',
      ...step,
      status: 'IN PROGRESS',
      recordedAt: now.toISOString(),
    });
  }

  /**
   * Records a change to a step that is still IN PROGRESS (PS3.4 F.7.2.2: a COMPLETED or DISCONTINUED step may not be
   * changed). Refused ('unknown') for an instance never created, ('ended') for one already completed or discontinued.
   */
  change(sopInstanceUid: string, change: ProcedureStepChange, now = new Date()): ProcedureStep {
    const step = this.steps.get(sopInstanceUid);
    if (!step) throw new ProcedureStepRefused('unknown', `No procedure step ${sopInstanceUid}`);
    if (step.status !== 'IN PROGRESS')
      throw new ProcedureStepRefused('ended', `Procedure step ${sopInstanceUid} is ${step.status} already`);
    const defined = Object.fromEntries(Object.entries(change).filter(([, v]) => v !== undefined));
    return this.append({ ...step, ...defined, recordedAt: now.toISOString() });
  }

  private append(step: ProcedureStep): ProcedureStep {
    appendLineDurably(this.file, step);
    this.steps.set(step.sopInstanceUid, step);
    return step;
  }
}

function asStep(value: unknown): ProcedureStep | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const step = value as Partial<ProcedureStep>;
  const valid =
    typeof step.sopInstanceUid === 'string' &&
    PERFORMED_STATUSES.includes(step.status as PerformedStatus) &&
    typeof step.imageCount === 'number';
  return valid ? (step as ProcedureStep) : undefined;
}
