import { z } from 'zod';

/**
 * The synthetic test participant probe (issue 8): what the hub and the gateway agree on. A probe is a test
 * appointment for a test participant who is not a person and not a participant row: identifiers no real
 * participant or exam can have, so nothing clinical can be mistaken for it, nor it for anything clinical.
 */

/** Accession numbers of probes: ZZPROBE + 9 digits (real ones are SH + 8 digits; migration 0014 forbids the prefix). */
export const PROBE_ACCESSION_PREFIX = 'ZZPROBE';
/** The probe's NHS number, from the 999 test range, kept for it (migration 0014: no participant may have it). */
export const PROBE_NHS_NUMBER = '9999999999';
export const PROBE_FAMILY_NAME = 'ZZZTEST';
export const PROBE_GIVEN_NAME = 'PROBE';
/**
 * The calling AE title of the gateway's built-in modality emulator, and the probe's Scheduled Station AE Title:
 * a mammography machine that asks for its own station's worklist does not see the probe.
 */
export const PROBE_AE_TITLE = 'SHPROBE';

export const isProbeAccession = (accessionNumber: string): boolean =>
  accessionNumber.startsWith(PROBE_ACCESSION_PREFIX);

/** The steps of a probe in the order they happen, with who records each and what it proves. */
export const PROBE_STEPS = {
  created: { by: 'hub', label: 'Probe created at the hub' },
  worklist_received: { by: 'gateway', label: 'Test appointment reached the gateway’s worklist (push)' },
  worklist_query: { by: 'gateway', label: 'Modality worklist query (C-FIND) found it' },
  mpps_in_progress: { by: 'gateway', label: 'Procedure step started (MPPS N-CREATE)' },
  image_stored: { by: 'gateway', label: 'Image stored on the gateway (C-STORE)' },
  mpps_completed: { by: 'gateway', label: 'Procedure step completed (MPPS N-SET)' },
  mpps_at_hub: { by: 'hub', label: 'Procedure step reached the hub' },
  received_at_hub: { by: 'hub', label: 'Image package received at the hub' },
  stored_in_pacs: { by: 'hub', label: 'Image stored in the PACS' },
  pacs_confirmed: { by: 'gateway', label: 'Gateway told the PACS holds the image' },
} as const;
export type ProbeStep = keyof typeof PROBE_STEPS;
export const PROBE_STEP_ORDER = Object.keys(PROBE_STEPS) as ProbeStep[];
export const GATEWAY_PROBE_STEPS = PROBE_STEP_ORDER.filter((s) => PROBE_STEPS[s].by === 'gateway');

/** What the gateway reports of one step (POST /gateway/v1/probes/:id/steps). */
export const probeStepReportSchema = z.object({
  step: z.enum(GATEWAY_PROBE_STEPS as [ProbeStep, ...ProbeStep[]]),
  ok: z.boolean(),
  /** How long the step took, measured on the gateway; absent: timed at the hub from the step before. */
  durationMs: z
    .number()
    .int()
    .min(0)
    .max(24 * 3600_000)
    .optional(),
  message: z.string().max(500).default(''),
});
export type ProbeStepReport = z.input<typeof probeStepReportSchema>;

/** The hub's answer to a gateway asking for today's pre-clinic probe (POST /gateway/v1/probes/pre-clinic). */
export interface PreClinicAnswer {
  probeId: string;
  /** False when the unit already had its pre-clinic probe today (it is not sent again). */
  created: boolean;
}
