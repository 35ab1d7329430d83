/**
 * Liveness by round trip (issue 8): the hub sends a `ping` on each gateway's push stream, the gateway answers it
 * with POST /gateway/v1/heartbeat on the same mutual-TLS channel the work uses, and the hub records the round
 * trip. A socket can look open while carrying nothing; only an answered ping proves the link (ADR 0011).
 */
import { z } from 'zod';
import { FAILURE_PHASES } from './failure-phase.js';

/** How a site takes its images: through the gateway as usual, or kept on the machine to be sent later. */
export const IMAGE_MODES = ['normal', 'manual_images'] as const;
export type ImageMode = (typeof IMAGE_MODES)[number];

export const IMAGE_MODE_LABELS: Record<ImageMode, string> = {
  normal: 'Normal: images go through the gateway',
  manual_images: 'Manual images: images kept on the machine, to be sent later',
};

/** What the trailer staff are told to do while the unit is in manual images mode (status page and hub page). */
export const MANUAL_IMAGES_ADVICE =
  'Carry on with the clinic. Keep every image on the mammography machine (do not delete any), note on the daybook who was screened, and do not wait for images to show as sent. Support will say when to send them and when the unit is back to normal.';

/** The `ping` event's data on the push stream. */
export const pingSchema = z.object({ id: z.string().min(1).max(200), sentAt: z.iso.datetime() });
export type Ping = z.infer<typeof pingSchema>;

const phaseFailureSchema = z.object({
  phase: z.enum(FAILURE_PHASES),
  message: z.string().max(2000),
  at: z.string().max(40),
});

/** What the gateway says about itself with each answer: small, so it costs the link nothing. */
export const gatewayReportSchema = z.object({
  online: z.boolean(),
  outbox: z.object({ awaiting: z.number().int().min(0), sending: z.number().int().min(0) }),
  lastFailure: phaseFailureSchema.nullable().optional(),
  /** The last time the link was down, with its phase, kept after it came back (an overnight outage, say). */
  lastOutage: z
    .object({ failure: phaseFailureSchema, from: z.string().max(40), until: z.string().max(40) })
    .nullable()
    .optional(),
  version: z.string().max(40),
  /** The mode the gateway last heard from the hub. */
  mode: z.enum(IMAGE_MODES),
});
export type GatewayReport = z.infer<typeof gatewayReportSchema>;

export const heartbeatSchema = z.object({ pingId: z.string().min(1).max(200), report: gatewayReportSchema });
export type Heartbeat = z.infer<typeof heartbeatSchema>;

/** The site's mode as the hub tells the gateway. */
export interface ModeNotice {
  mode: ImageMode;
  reason: string | null;
  since: string | null;
  by: string | null;
}

/** The hub's answer to a heartbeat. */
export interface HeartbeatAnswer {
  /** The round trip the hub measured (null when the ping was not one the hub knows: too old, or forged). */
  roundTripMs: number | null;
  mode: ModeNotice;
}
