/**
 * Putting a woman on very high risk (VHR) surveillance, changing her risk group, and taking her off it when her risk
 * is reassessed (NHS Breast Screening Programme, "Protocols for the surveillance of women at higher risk"). She is
 * referred by a genetics service or the clinician who treated her; the screening office records the referral. Pure
 * rules: what must be on record, in words staff can act on. The protocols themselves are in eligibility.ts.
 *
 * Leaving surveillance by her own choice is a ceasing (very_high_risk_withdrawal, ceasing.ts), not this: this is a
 * clinical decision that she is not (or no longer) at very high risk.
 */
import { ageOn, compareIsoDate, isIsoDate, nthBirthday, type IsoDate } from './dates.js';
import { isVhrRiskGroup, ROUTINE_END_AGE, VHR_PROTOCOLS, VHR_RISK_GROUPS } from './eligibility.js';

/** How old she must have been at her first radiotherapy to breast tissue, for each radiotherapy group. */
export const RADIOTHERAPY_AGES: Partial<Record<(typeof VHR_RISK_GROUPS)[number], { from: number; to: number }>> = {
  radiotherapy_aged_10_to_19: { from: 10, to: 19 },
  radiotherapy_aged_20_to_35: { from: 20, to: 35 },
};

export interface VhrReferral {
  riskGroup: string;
  /** The day surveillance began (her referral was accepted). */
  since: IsoDate;
  /** Her first radiotherapy to breast tissue: radiotherapy groups only. */
  radiotherapyOn: IsoDate | null;
  /** Who referred her: the genetics service or clinician, and their letter. */
  referredBy: string;
  dateOfBirth: IsoDate;
  dateOfDeath?: IsoDate | null;
}

/** Why the referral cannot be recorded; empty when it can. */
export function vhrReferralProblems(referral: VhrReferral, today: IsoDate): string[] {
  const problems: string[] = [];
  const { dateOfBirth: dob } = referral;
  if (referral.dateOfDeath) problems.push('She has died: she cannot be put on very high risk screening');
  if (compareIsoDate(today, nthBirthday(dob, ROUTINE_END_AGE)) >= 0)
    problems.push('Very high risk surveillance ends at her 71st birthday: she can self-refer every 3 years instead');
  const group = isVhrRiskGroup(referral.riskGroup) ? referral.riskGroup : undefined;
  if (!group) problems.push(`Choose her risk group: ${VHR_RISK_GROUPS.map((g) => VHR_PROTOCOLS[g].label).join('; ')}`);
  if (!isIsoDate(referral.since)) problems.push('The date surveillance began must be a real date');
  else {
    if (compareIsoDate(referral.since, today) > 0) problems.push('The date surveillance began cannot be in the future');
    if (compareIsoDate(referral.since, dob) < 0)
      problems.push('The date surveillance began cannot be before her date of birth');
  }
  const ages = group ? RADIOTHERAPY_AGES[group] : undefined;
  if (group && !ages && referral.radiotherapyOn)
    problems.push('Leave the date of radiotherapy empty: her risk group is not a radiotherapy group');
  if (ages) {
    if (!referral.radiotherapyOn) problems.push('Enter the date of her first radiotherapy to breast tissue');
    else if (!isIsoDate(referral.radiotherapyOn)) problems.push('The date of radiotherapy must be a real date');
    else if (compareIsoDate(referral.radiotherapyOn, today) > 0)
      problems.push('The date of radiotherapy cannot be in the future');
    else {
      const age = ageOn(dob, referral.radiotherapyOn);
      if (age < ages.from || age > ages.to)
        problems.push(
          `The date of radiotherapy makes her ${age} then: this group is for radiotherapy at ${ages.from} to ${ages.to}`,
        );
    }
  }
  if (referral.referredBy.trim().length === 0)
    problems.push('Say who referred her: the genetics service or clinician, and their letter');
  return problems;
}

/** Why she cannot be taken off very high risk screening; empty when she can. */
export function vhrEndProblems(request: { onSurveillance: boolean; reason: string }): string[] {
  const problems: string[] = [];
  if (!request.onSurveillance) problems.push('She is not on very high risk screening');
  if (request.reason.trim().length === 0) problems.push('Give the reason: who reassessed her risk, and their letter');
  return problems;
}
