import { PROBE_STEPS, type ProbeStep } from '../protocol/probe.js';
import type { Db } from '../store/database.js';
import { createProbe, findProbe, type Probe } from '../store/probes.js';

const label = (step: string) => PROBE_STEPS[step as ProbeStep]?.label ?? step;
const ms = (n: number) => (n < 1000 ? `${n} ms` : `${(n / 1000).toFixed(1)} s`);

/**
 * `screening-hub probe --unit UNIT` (issue 8): sends a synthetic test probe through the unit's pipeline, prints each
 * step with its timing as the hub records it, and answers 0 when the round trip is confirmed, 1 when a step failed,
 * 2 when it is still running after `waitMs`. It works on the hub's database, so the running hub's listener pushes
 * the probe to the unit's gateway (PostgreSQL: DATABASE_URL; an embedded PGlite is held by the running hub).
 */
export async function runProbeCommand(
  db: Db,
  options: { unit: string; today: string; waitMs: number; everyMs?: number; print: (line: string) => void },
): Promise<number> {
  const made = await createProbe(db, options.unit, 'manual', options.today, {
    userId: null,
    username: 'screening-hub probe (command line)',
    ip: null,
  });
  options.print(`Probe ${made.accessionNumber} (${made.id}) sent to ${options.unit}`);
  const printed = new Set<string>();
  const deadline = Date.now() + options.waitMs;
  let probe: Probe | undefined;
  for (;;) {
    probe = await findProbe(db, made.id);
    for (const step of probe?.steps ?? [])
      if (!printed.has(step.step)) {
        printed.add(step.step);
        options.print(
          `  ${step.ok ? 'ok    ' : 'FAILED'} ${ms(step.durationMs).padStart(9)}  ${label(step.step)}${step.message ? `: ${step.message}` : ''}`,
        );
      }
    if (!probe || probe.status !== 'running' || Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, options.everyMs ?? 500));
  }
  if (probe?.status === 'passed') {
    options.print(`Round trip confirmed in ${ms(probe.totalMs)}`);
    return 0;
  }
  if (probe?.status === 'failed') {
    options.print(`Probe failed at "${label(probe.failedStep ?? '')}": ${probe.message}`);
    return 1;
  }
  options.print(`Probe still running after ${ms(options.waitMs)}: see the hub's Probes page`);
  return 2;
}
