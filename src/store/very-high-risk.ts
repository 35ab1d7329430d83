/**
 * Very high risk surveillance on her record (issue 5, item 2): a referral puts her on it (or changes her risk group),
 * a reassessment takes her off. The rules are in pathway/vhr-referral.ts. Each change is kept the way demographic
 * corrections are (participant_change rows with source 'staff' and the referral as the reason, provenance per
 * field), under the same optimistic version check, in one transaction, audited as 'participant.very_high_risk'.
 */
import type { IsoDate } from '../pathway/dates.js';
import { vhrEndProblems, vhrReferralProblems } from '../pathway/vhr-referral.js';
import { recordAudit, type Actor } from './audit.js';
import { lockedParticipant } from './ceasing.js';
import { RulesRefusedError } from './errors.js';
import type { Db } from './database.js';
import { planFieldChanges } from './field-changes.js';

export interface VhrReferralInput {
  participantId: string;
  expectedVersion: number;
  riskGroup: string;
  since: IsoDate;
  radiotherapyOn: IsoDate | null;
  referredBy: string;
}

type Surveillance = Record<'very_high_risk' | 'vhr_risk_group' | 'vhr_since' | 'vhr_radiotherapy_on', string | null>;

/** Puts her on very high risk surveillance, or changes her risk group or dates. Returns the fields that changed. */
export async function referForVeryHighRisk(
  db: Db,
  input: VhrReferralInput,
  actor: Actor,
  today: IsoDate,
): Promise<string[]> {
  return db.transaction().execute(async (tx) => {
    const p = await lockedParticipant(tx, input.participantId, input.expectedVersion);
    const problems = vhrReferralProblems(
      { ...input, dateOfBirth: p.date_of_birth, dateOfDeath: p.date_of_death },
      today,
    );
    if (problems.length > 0) throw new RulesRefusedError(problems);
    return changeSurveillance(
      tx,
      p,
      {
        very_high_risk: 'true',
        vhr_risk_group: input.riskGroup,
        vhr_since: input.since,
        vhr_radiotherapy_on: input.radiotherapyOn,
      },
      input.referredBy.trim(),
      actor,
      today,
    );
  });
}

/** Takes her off very high risk surveillance (her risk was reassessed): she is screened routinely again. */
export async function endVeryHighRisk(
  db: Db,
  input: { participantId: string; expectedVersion: number; reason: string },
  actor: Actor,
  today: IsoDate,
): Promise<string[]> {
  return db.transaction().execute(async (tx) => {
    const p = await lockedParticipant(tx, input.participantId, input.expectedVersion);
    const problems = vhrEndProblems({ onSurveillance: p.very_high_risk, reason: input.reason });
    if (problems.length > 0) throw new RulesRefusedError(problems);
    return changeSurveillance(
      tx,
      p,
      { very_high_risk: 'false', vhr_risk_group: null, vhr_since: null, vhr_radiotherapy_on: null },
      input.reason.trim(),
      actor,
      today,
    );
  });
}

async function changeSurveillance(
  tx: Db,
  p: Awaited<ReturnType<typeof lockedParticipant>>,
  next: Surveillance,
  reason: string,
  actor: Actor,
  today: IsoDate,
): Promise<string[]> {
  const current: Surveillance = {
    very_high_risk: String(p.very_high_risk),
    vhr_risk_group: p.vhr_risk_group,
    vhr_since: p.vhr_since,
    vhr_radiotherapy_on: p.vhr_radiotherapy_on,
  };
  const plan = planFieldChanges({
    participantId: p.id,
    current,
    provenance: p.provenance,
    changes: next,
    source: 'staff',
    sourceDate: today,
    reason: () => reason,
    changedBy: actor.userId,
    at: new Date().toISOString(),
  });
  if (plan.changed.length === 0) return [];
  await tx.insertInto('participant_change').values(plan.history).execute();
  await tx
    .updateTable('participant')
    .set({
      very_high_risk: next.very_high_risk === 'true',
      vhr_risk_group: next.vhr_risk_group,
      vhr_since: next.vhr_since,
      vhr_radiotherapy_on: next.vhr_radiotherapy_on,
      provenance: JSON.stringify(plan.provenance),
      version: p.version + 1,
      updated_at: new Date(),
    })
    .where('id', '=', p.id)
    .execute();
  await recordAudit(tx, actor, {
    action: 'participant.very_high_risk',
    entityType: 'participant',
    entityId: p.id,
    participantId: p.id,
    detail: { changed: plan.changed, ...next, reason },
  });
  return plan.changed;
}
