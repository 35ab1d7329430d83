/**
 * Which source stands when two sources disagree about a person (docs/data-precedence.md has the table and the
 * reasons). Pure: given what the record holds and where it came from, and a value arriving from a source with the
 * date the source knew it, it says whether to apply the value, keep the record's (and why), or raise a conflict:
 * a real disagreement that staff decide, with both values kept.
 *
 * Participant fields are decided one by one, under the rule of the detail they belong to; the four address lines
 * are one detail, so a disagreement about any of them is one conflict about the address, not four, and the caller
 * applies none of the address from a row that conflicts.
 */
import type { Side, Source } from './record-items.js';

/** How the rules group the participant's details. */
export type DetailGroup = 'identity' | 'death' | 'gp_practice' | 'contact';

/** The details the rules decide, each with the participant fields it is made of. */
export const DETAILS = {
  given_name: { label: 'Given name', group: 'identity', fields: ['given_name'] },
  family_name: { label: 'Family name', group: 'identity', fields: ['family_name'] },
  date_of_birth: { label: 'Date of birth', group: 'identity', fields: ['date_of_birth'] },
  sex: { label: 'Sex', group: 'identity', fields: ['sex'] },
  date_of_death: { label: 'Date of death', group: 'death', fields: ['date_of_death'] },
  gp_practice_code: { label: 'GP practice', group: 'gp_practice', fields: ['gp_practice_code'] },
  address: {
    label: 'Address',
    group: 'contact',
    fields: ['address_line1', 'address_line2', 'town', 'postcode'],
  },
  phone: { label: 'Phone', group: 'contact', fields: ['phone'] },
  email: { label: 'Email', group: 'contact', fields: ['email'] },
} as const satisfies Record<string, { label: string; group: DetailGroup; fields: readonly string[] }>;
export type Detail = keyof typeof DETAILS;

const DETAIL_OF_FIELD = new Map<string, Detail>(
  (Object.keys(DETAILS) as Detail[]).flatMap((d) => DETAILS[d].fields.map((f) => [f, d] as const)),
);

/** The detail a participant field belongs to (undefined for a field the rules do not cover). */
export function detailOf(field: string): Detail | undefined {
  return DETAIL_OF_FIELD.get(field);
}

/** Sources that are a person telling or showing us something: the participant, screening staff, the trailer. */
export const IN_PERSON: ReadonlySet<Source> = new Set<Source>(['participant', 'staff', 'gateway']);

/** Where a value on record came from, as the record's provenance says. */
export interface Known {
  source: Source;
  /** The date the source knew it (ISO date). */
  on: string;
  /** A value from a source that staff decided against, when they kept this one (see resolveDataConflict). */
  declined?: { value: string | null; source: Source; on: string } | undefined;
}

/** A value arriving from a source. Values are compared as strings: a unit of several fields is one string. */
export interface Offered {
  value: string | null;
  source: Source;
  on: string;
}

export type KeepReason = 'same_value' | 'older' | 'in_person_newer' | 'declined' | 'nothing_to_remove';

export type Decision =
  | { action: 'apply'; why: string }
  | { action: 'keep'; because: KeepReason; why: string }
  | { action: 'conflict'; why: string };

const keep = (because: KeepReason, why: string): Decision => ({ action: 'keep', because, why });
const apply = (why: string): Decision => ({ action: 'apply', why });
const conflict = (why: string): Decision => ({ action: 'conflict', why });

/** The same source, or two sources the rules treat alike: the later date wins, and a tie goes to the newcomer. */
function laterWins(current: { on: string }, incoming: { on: string }, what: string): Decision {
  return incoming.on >= current.on
    ? apply(`${what}: the later date wins`)
    : keep('older', `${what}: the record's value is known from a later date`);
}

/**
 * Decides one detail. `current` is the record's value with its provenance (none when the record does not say where
 * it came from: anything offered then applies, as before provenance was kept).
 */
export function decideDetail(
  detail: Detail,
  current: { value: string | null; known: Known | undefined },
  incoming: Offered,
): Decision {
  if (incoming.value === current.value) return keep('same_value', 'The record already has this value');
  const known = current.known;
  if (!known) return apply('The record does not say where its value came from');
  if (known.declined && known.declined.value === incoming.value && known.declined.source === incoming.source)
    return keep('declined', 'Staff already kept the record over this value from this source');
  if (known.source === incoming.source) return laterWins(known, incoming, 'The same source');
  const group = DETAILS[detail].group;
  if (group === 'death' && incoming.source === 'bs_select') {
    if (incoming.value !== null) return apply('A death notified by the national feed always applies');
    // The feed says she is alive, but someone recorded a death: never undone without a person deciding.
    return incoming.on > known.on
      ? conflict('The national feed has no death, after a death was recorded from another source')
      : keep('older', "The record's death is known from a later date than the feed's row");
  }
  if (group !== 'contact') return laterWins(known, incoming, 'The national feed is the authority');
  const incomingInPerson = IN_PERSON.has(incoming.source);
  if (incomingInPerson === IN_PERSON.has(known.source))
    return laterWins(known, incoming, incomingInPerson ? 'Both given in person' : 'Both from records');
  if (incomingInPerson) {
    return incoming.on >= known.on
      ? apply('Given in person, on or after the date of the record it replaces')
      : conflict('Given in person before the date of a different value from records');
  }
  return incoming.on <= known.on
    ? keep('in_person_newer', 'Given in person on or after the date of this row: the in-person value is newer')
    : conflict('A feed row dated after an in-person correction gives a different value');
}

/** Record item kinds where two sources disagreeing is a conflict (the mammographer must know before imaging). */
export const DISPUTED_ITEM_KINDS: ReadonlySet<string> = new Set(['implants']);

/** What a source says about an item kind: she has it (on a side), or she does not. */
export interface ItemStatement {
  present: boolean;
  side: Side | null;
  source: Source;
  on: string;
}

const sameStatement = (a: ItemStatement, b: ItemStatement) =>
  a.present === b.present && (!a.present || a.side === b.side);

/**
 * Decides a statement about a record item kind against the current item of that kind (null: the record has none).
 * A statement that she does not have it, with nothing on record, agrees with the record. Screening staff (at the hub
 * or on the trailer) decide: what they record applies. Otherwise, for the kinds in DISPUTED_ITEM_KINDS, two sources
 * that disagree (she has them or not, or on which side) are a conflict; while it is open the record keeps its item.
 */
export function decideItem(kind: string, current: ItemStatement | null, incoming: ItemStatement): Decision {
  if (!current) {
    return incoming.present
      ? apply('The record has nothing of this kind')
      : keep('nothing_to_remove', 'The record has nothing of this kind either');
  }
  if (sameStatement(current, incoming)) return keep('same_value', 'The record already says this');
  if (current.source === incoming.source) return laterWins(current, incoming, 'The same source');
  if (incoming.source === 'staff' || incoming.source === 'gateway')
    return apply('Recorded by screening staff, who have checked it');
  if (!DISPUTED_ITEM_KINDS.has(kind)) return laterWins(current, incoming, 'No rule for this kind');
  return conflict(
    incoming.present && current.present
      ? 'The sources give different sides'
      : 'One source says she has them and another says she does not',
  );
}

/** Where a detail's value is known from: the latest of its fields' provenance (undefined when none says). */
export function detailKnown(
  detail: Detail,
  provenance: Readonly<Record<string, Known | undefined>>,
): Known | undefined {
  let latest: Known | undefined;
  for (const field of DETAILS[detail].fields) {
    const known = provenance[field];
    if (known && (!latest || known.on > latest.on)) latest = known;
  }
  return latest;
}
