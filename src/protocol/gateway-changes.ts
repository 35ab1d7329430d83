import { z } from 'zod';
import { APPOINTMENT_STATUSES } from '../pathway/appointment-status.js';
import { isIsoDate } from '../pathway/dates.js';

/**
 * What a gateway sends back to the hub: changes made on the trailer (check-in, did not attend, corrected details)
 * and what the modality reported (MPPS). Each carries an id the gateway chose, so a resend after a dropped
 * link is recognised and answered with the first outcome (POST /gateway/v1/changes).
 */
const common = {
  id: z.uuid(),
  /** When it was done on the trailer (ISO instant, the gateway's clock). */
  madeAt: z.iso.datetime({ offset: true }),
  /** Who did it on the trailer (the name they entered), or the modality's AE title for MPPS. */
  madeBy: z.string().trim().min(1).max(100),
  appointmentId: z.uuid(),
};

/** The details a mammographer can correct on the trailer: the ones on the images. */
export const TRAILER_FIELDS = ['given_name', 'family_name', 'date_of_birth'] as const;
export type TrailerField = (typeof TRAILER_FIELDS)[number];

const fieldValue = z.object({
  /** The value the trailer had before the correction (from its worklist copy). */
  seen: z.string(),
  value: z.string().trim().min(1).max(100),
});

export const gatewayChangeSchema = z.discriminatedUnion('kind', [
  z.object({
    ...common,
    kind: z.literal('attendance'),
    /** The status the trailer's copy showed when the change was made. */
    seenStatus: z.enum(APPOINTMENT_STATUSES),
    status: z.enum(['checked_in', 'did_not_attend']),
  }),
  z.object({
    ...common,
    kind: z.literal('demographics'),
    participantId: z.uuid(),
    fields: z
      .partialRecord(z.enum(TRAILER_FIELDS), fieldValue)
      .refine((f) => Object.keys(f).length > 0, 'Name at least one corrected field')
      .refine((f) => !f.date_of_birth || isIsoDate(f.date_of_birth.value), 'The date of birth is not a date'),
  }),
  z.object({
    ...common,
    kind: z.literal('procedure_step'),
    step: z.enum(['in_progress', 'completed', 'discontinued']),
    /** Images the modality reported in the step (PerformedSeriesSequence). */
    imageCount: z.number().int().min(0).max(1000),
    reason: z.string().max(200).optional(),
  }),
]);
export type GatewayChange = z.infer<typeof gatewayChangeSchema>;

/** A batch: each change is checked on its own (gatewayChangeSchema), so one bad change cannot block the rest. */
export const changeBatchSchema = z.object({ changes: z.array(z.unknown()).min(1).max(500) });

export type ChangeOutcome = { id: string; outcome: 'applied' | 'conflict' | 'rejected'; message: string };
