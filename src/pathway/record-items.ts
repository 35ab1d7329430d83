/**
 * The kinds of fact held on the whole-person record beside demographics: clinical history, access needs and
 * communication preferences. Each kind says which category it belongs to, whether it takes a side or a value,
 * and what it means for an appointment (a reasonable adjustment: a longer slot, an accessible location).
 */
export type ItemCategory = 'clinical' | 'access' | 'communication';
export type Side = 'left' | 'right' | 'bilateral';
export type Source = 'bs_select' | 'gp' | 'epr' | 'participant' | 'staff' | 'gateway';

export interface ItemKind {
  readonly kind: string;
  readonly category: ItemCategory;
  readonly label: string;
  /** 'required' kinds need a side (left, right, bilateral); 'optional' may have one. */
  readonly side: 'required' | 'optional' | 'none';
  /** A value the kind needs, e.g. the interpreter's language. */
  readonly value?: { label: string; hint?: string };
  /** A reasonable adjustment for the appointment: shown on clinic lists and lengthens the slot. */
  readonly adjustment: boolean;
  readonly needsAccessibleLocation?: boolean;
}

export const ITEM_KINDS: readonly ItemKind[] = [
  {
    kind: 'previous_breast_cancer',
    category: 'clinical',
    label: 'Previous breast cancer',
    side: 'optional',
    adjustment: false,
  },
  { kind: 'breast_surgery', category: 'clinical', label: 'Breast surgery', side: 'optional', adjustment: false },
  { kind: 'implants', category: 'clinical', label: 'Breast implants', side: 'required', adjustment: true },
  { kind: 'mastectomy', category: 'clinical', label: 'Mastectomy', side: 'required', adjustment: false },
  { kind: 'lumpectomy', category: 'clinical', label: 'Lumpectomy', side: 'required', adjustment: false },
  { kind: 'symptoms', category: 'clinical', label: 'Current breast symptoms', side: 'optional', adjustment: false },
  {
    kind: 'symptomatic_treatment',
    category: 'clinical',
    label: 'In symptomatic treatment',
    side: 'optional',
    adjustment: false,
  },
  {
    kind: 'implanted_device',
    category: 'clinical',
    label: 'Implanted medical device',
    side: 'none',
    value: { label: 'Device', hint: 'For example, cardiac device or Hickman line' },
    adjustment: true,
  },
  {
    kind: 'wheelchair',
    category: 'access',
    label: 'Wheelchair user',
    side: 'none',
    adjustment: true,
    needsAccessibleLocation: true,
  },
  { kind: 'physical_restriction', category: 'access', label: 'Physical restriction', side: 'none', adjustment: true },
  { kind: 'hearing', category: 'access', label: 'Hearing', side: 'none', adjustment: true },
  { kind: 'vision', category: 'access', label: 'Vision', side: 'none', adjustment: true },
  { kind: 'learning_disability', category: 'access', label: 'Learning disability', side: 'none', adjustment: true },
  {
    kind: 'social_emotional_mental_health',
    category: 'access',
    label: 'Social, emotional or mental health',
    side: 'none',
    adjustment: true,
  },
  { kind: 'chaperone', category: 'access', label: 'Needs a chaperone', side: 'none', adjustment: true },
  { kind: 'gender_identity', category: 'access', label: 'Gender identity', side: 'none', adjustment: true },
  { kind: 'other_access', category: 'access', label: 'Other reasonable adjustment', side: 'none', adjustment: true },
  {
    kind: 'interpreter',
    category: 'communication',
    label: 'Needs an interpreter',
    side: 'none',
    value: { label: 'Language', hint: 'For example, Polish or British Sign Language' },
    adjustment: true,
  },
  { kind: 'easy_read', category: 'communication', label: 'Plain English / easy read', side: 'none', adjustment: false },
  { kind: 'large_print', category: 'communication', label: 'Large print', side: 'none', adjustment: false },
  { kind: 'braille', category: 'communication', label: 'Braille', side: 'none', adjustment: false },
  { kind: 'audio', category: 'communication', label: 'Audio', side: 'none', adjustment: false },
  {
    kind: 'language',
    category: 'communication',
    label: 'Preferred language',
    side: 'none',
    value: { label: 'Language' },
    adjustment: false,
  },
  {
    kind: 'contact_channel',
    category: 'communication',
    label: 'Preferred contact',
    side: 'none',
    value: { label: 'Channel', hint: 'Letter, email, text message or phone' },
    adjustment: false,
  },
];

const BY_KIND = new Map(ITEM_KINDS.map((k) => [k.kind, k]));

export function itemKind(kind: string): ItemKind | undefined {
  return BY_KIND.get(kind);
}

export const CATEGORY_LABELS: Record<ItemCategory, string> = {
  clinical: 'Clinical history',
  access: 'Access needs',
  communication: 'Communication preferences',
};

export const SOURCE_LABELS: Record<Source, string> = {
  bs_select: 'BS-Select',
  gp: 'GP practice',
  epr: 'Trust EPR',
  participant: 'Participant',
  staff: 'Screening staff',
  gateway: 'Mobile unit',
};

export const SIDE_LABELS: Record<Side, string> = { left: 'Left', right: 'Right', bilateral: 'Both sides' };

/** The facts about one item that appointment rules need. */
export interface ItemFact {
  kind: string;
  temporaryUntil?: string | null;
}

function activeOn(item: ItemFact, on: string): boolean {
  return !item.temporaryUntil || item.temporaryUntil >= on;
}

/** Reasonable adjustments in force on a date (temporary ones lapse after their end date). */
export function adjustmentsOn(items: readonly ItemFact[], on: string): ItemKind[] {
  return items
    .filter((item) => activeOn(item, on))
    .map((item) => itemKind(item.kind))
    .filter((k): k is ItemKind => k !== undefined && k.adjustment);
}

/** Slots an appointment takes: a special appointment (any reasonable adjustment) takes two. */
export function slotsNeeded(items: readonly ItemFact[], on: string): 1 | 2 {
  return adjustmentsOn(items, on).length > 0 ? 2 : 1;
}

export function needsAccessibleLocation(items: readonly ItemFact[], on: string): boolean {
  return adjustmentsOn(items, on).some((k) => k.needsAccessibleLocation === true);
}

export type ItemProblem = { field: 'kind' | 'side' | 'value' | 'sourceDate'; message: string };

/** Checks an item against its kind's rules; returns the problems to show next to the fields. */
export function itemProblems(
  input: { kind: string; side?: string | null; value?: string | null; sourceDate: string },
  today: string,
): ItemProblem[] {
  const kind = itemKind(input.kind);
  if (!kind) return [{ field: 'kind', message: 'Select what kind of information this is' }];
  const problems: ItemProblem[] = [];
  if (kind.side === 'required' && !input.side)
    problems.push({ field: 'side', message: `Select which side: ${kind.label.toLowerCase()}` });
  if (kind.side === 'none' && input.side)
    problems.push({ field: 'side', message: `${kind.label} does not have a side` });
  if (kind.value && !input.value?.trim())
    problems.push({ field: 'value', message: `Enter the ${kind.value.label.toLowerCase()}` });
  if (input.sourceDate > today)
    problems.push({ field: 'sourceDate', message: 'The date the source gave this must be today or in the past' });
  return problems;
}
