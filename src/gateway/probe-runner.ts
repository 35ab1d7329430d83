import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { WorklistEntry } from '../dicom/worklist-item.js';
import { isProbeAccession, type PreClinicAnswer, type ProbeStepReport } from '../protocol/probe.js';
import type { HubConnection } from './hub-connection.js';
import { emulateExam, type EmulatorOptions } from './modality-emulator.js';
import type { Outbox } from './outbox.js';
import { preClinicProbeDue, timeOfDayInLondon } from './pre-clinic-schedule.js';
import { writeDurably } from './worklist-copy.js';

export interface ProbeRunnerOptions {
  connection: HubConnection;
  /** The entries of the gateway's worklist copy as the hub sent them. */
  entries: () => readonly WorklistEntry[];
  outbox: Outbox;
  /** The gateway's own DICOM service, which the emulator calls as a modality would. */
  dicom: Omit<EmulatorOptions, 'workDir'>;
  dataDir: string;
  today: () => string;
  /** Asks the hub for the worklist now (a pre-clinic probe is then on it without waiting for the push). */
  pullNow: () => Promise<void>;
  /** Whether the gateway asks for the pre-clinic probe by itself (default true). */
  preClinic?: boolean;
  /** Time of day ('HH:MM', UK time) for the pre-clinic probe; default 07:00. */
  preClinicAt?: string;
  /** How often the pre-clinic rule is checked (default a minute). */
  checkEveryMs?: number;
  /** Longest wait for the PACS to hold the probe's image (default 10 minutes, the hub's probe timeout). */
  confirmTimeoutMs?: number;
  /** 'HH:MM' now (tests set it). */
  timeOfDay?: () => string;
  log: (level: 'info' | 'warn' | 'error', message: string) => void;
}

/**
 * Runs synthetic test probes on the gateway (issue 8). A probe reaches the gateway as an appointment on its
 * worklist (ZZPROBE accession number); the runner then plays the mammography machine against the gateway's own
 * DICOM port (modality-emulator.ts), and reports each step and its timing to the hub. The image it sends goes to
 * the hub in the outbox like any other; the last step is the gateway learning that the PACS holds it. Before each
 * clinic day it asks the hub for the day's pre-clinic probe (pre-clinic-schedule.ts says when).
 */
export class ProbeRunner {
  /**
   * Probes begun since start-up: each runs once. After a restart a probe still running at the hub runs again; the
   * hub keeps the first report of each step, so the second run changes nothing there.
   */
  private readonly begun = new Set<string>();
  private readonly running = new Set<Promise<void>>();
  private readonly timer: NodeJS.Timeout | undefined;
  private readonly stateFile: string;
  private lastAskedOn: string | null = null;
  private askedSinceStartUp = false;
  private asking = false;
  private stopped = false;

  constructor(private readonly options: ProbeRunnerOptions) {
    this.stateFile = join(options.dataDir, 'pre-clinic.json');
    if (existsSync(this.stateFile)) {
      try {
        this.lastAskedOn =
          (JSON.parse(readFileSync(this.stateFile, 'utf8')) as { lastAskedOn?: string }).lastAskedOn ?? null;
      } catch {
        this.lastAskedOn = null;
      }
    }
    this.timer =
      options.preClinic === false
        ? undefined
        : setInterval(() => void this.checkPreClinic(), options.checkEveryMs ?? 60_000);
  }

  /** The worklist copy changed: starts any probe on it for today not yet begun. */
  worklistChanged(): void {
    if (this.stopped) return;
    const today = this.options.today();
    for (const entry of this.options.entries())
      if (
        isProbeAccession(entry.accessionNumber) &&
        entry.clinicDate === today &&
        !this.begun.has(entry.appointmentId)
      ) {
        this.begun.add(entry.appointmentId);
        const run = this.run(entry).finally(() => this.running.delete(run));
        this.running.add(run);
      }
    void this.checkPreClinic();
  }

  /** Asks the hub for today's pre-clinic probe when the rule says it is due. */
  async checkPreClinic(): Promise<void> {
    if (this.stopped || this.asking || this.options.preClinic === false) return;
    const today = this.options.today();
    const due = preClinicProbeDue({
      today,
      timeOfDay: this.options.timeOfDay?.() ?? timeOfDayInLondon(new Date()),
      clinicDates: this.options
        .entries()
        .filter((e) => !isProbeAccession(e.accessionNumber))
        .map((e) => e.clinicDate),
      lastAskedOn: this.lastAskedOn,
      at: this.options.preClinicAt ?? '07:00',
      sinceStartUp: !this.askedSinceStartUp,
    });
    if (!due) return;
    this.asking = true;
    try {
      const answer = await this.options.connection.post<PreClinicAnswer>('/gateway/v1/probes/pre-clinic', {});
      this.lastAskedOn = today;
      this.askedSinceStartUp = true;
      writeDurably(this.stateFile, JSON.stringify({ lastAskedOn: today, probeId: answer.probeId }));
      this.options.log(
        'info',
        answer.created
          ? `Pre-clinic check: probe ${answer.probeId} sent for today's clinics`
          : `Pre-clinic check: today's probe ${answer.probeId} was already sent`,
      );
      await this.options.pullNow().catch(() => undefined);
    } catch (error) {
      // Tried again on the next check: the link may be down now and up before the clinic.
      this.options.log('warn', `Pre-clinic check could not ask the hub yet: ${(error as Error).message}`);
    } finally {
      this.asking = false;
    }
  }

  private async report(probeId: string, report: ProbeStepReport): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.options.connection.post(`/gateway/v1/probes/${probeId}/steps`, report);
        return;
      } catch (error) {
        if (attempt >= 5 || this.stopped) {
          this.options.log('warn', `Probe ${probeId}: step ${report.step} not reported: ${(error as Error).message}`);
          return;
        }
        await new Promise((r) => setTimeout(r, 2000 * attempt));
      }
    }
  }

  private async run(entry: WorklistEntry): Promise<void> {
    const probeId = entry.appointmentId;
    const log = this.options.log;
    log('info', `Probe ${probeId} (${entry.accessionNumber}) on the worklist: running the modality emulator`);
    await this.report(probeId, { step: 'worklist_received', ok: true, message: '' });
    const exam = await emulateExam(
      { ...this.options.dicom, workDir: join(this.options.dataDir, 'probe') },
      entry.accessionNumber,
    );
    for (const step of exam.steps) {
      if (!step.ok) log('error', `Probe ${probeId}: ${step.step} failed: ${step.message}`);
      await this.report(probeId, step);
    }
    if (!exam.sopInstanceUid) return;
    const started = performance.now();
    const held = await this.inPacs(exam.sopInstanceUid);
    await this.report(probeId, {
      step: 'pacs_confirmed',
      ok: held.ok,
      durationMs: Math.round(performance.now() - started),
      message: held.message,
    });
    log(held.ok ? 'info' : 'error', `Probe ${probeId}: ${held.ok ? 'round trip confirmed' : held.message}`);
  }

  /** Waits until the outbox says the PACS holds the image, it is damaged, or the wait runs out. */
  private inPacs(sopInstanceUid: string): Promise<{ ok: boolean; message: string }> {
    const { outbox } = this.options;
    return new Promise((resolve) => {
      const check = () => {
        const state = outbox.stateOf(sopInstanceUid);
        if (state === 'in_pacs') return finish({ ok: true, message: '' });
        if (state === 'damaged') return finish({ ok: false, message: 'The hub refused the probe image’s package' });
        if (this.stopped) return finish({ ok: false, message: 'The gateway stopped before the PACS held the image' });
      };
      const timer = setTimeout(
        () => finish({ ok: false, message: 'The PACS did not confirm the image in time' }),
        this.options.confirmTimeoutMs ?? 10 * 60_000,
      );
      const finish = (result: { ok: boolean; message: string }) => {
        clearTimeout(timer);
        outbox.events.off('changed', check);
        resolve(result);
      };
      outbox.events.on('changed', check);
      check();
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    this.options.outbox.events.emit('changed');
    await Promise.allSettled([...this.running]);
  }
}
