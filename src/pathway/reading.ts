/** When an exam goes to arbitration: only when the two reads disagree, whenever either recalls, or whenever either is not normal. */
export type ArbitrationPolicy = 'discordant' | 'all_recalls' | 'all_non_normal';
