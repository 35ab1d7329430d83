import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Source } from '../../../src/pathway/record-items.js';
import {
  decideDetail,
  decideItem,
  DETAILS,
  detailKnown,
  detailOf,
  type Detail,
  type ItemStatement,
  type Known,
  type Offered,
} from '../../../src/pathway/source-precedence.js';
import { isoDateArb } from './arbitraries.js';

const SOURCES: Source[] = ['bs_select', 'gp', 'epr', 'participant', 'staff', 'gateway'];
const sourceArb = fc.constantFrom(...SOURCES);
const detailArb = fc.constantFrom(...(Object.keys(DETAILS) as Detail[]));
const dateArb = isoDateArb(2024, 2027);
const valueArb = fc.option(fc.constantFrom('LS6 2AB', 'LS1 4AP', 'YO1 7HH', '2026-06-10'), { nil: null });

/**
 * A model of one detail on the record as the store keeps it: the value, its provenance, the values it replaced, and
 * the open conflict (one a detail: a newer incoming value replaces its incoming side). Resolution is by staff, later.
 */
interface Held {
  value: string | null;
  known: Known | undefined;
  replaced: (string | null)[];
  conflict: { current: string | null; incoming: Offered } | null;
}

function offer(held: Held, detail: Detail, incoming: Offered): Held {
  const decision = decideDetail(detail, { value: held.value, known: held.known }, incoming);
  if (decision.action === 'apply')
    return {
      ...held,
      value: incoming.value,
      known: { source: incoming.source, on: incoming.on },
      replaced: [...held.replaced, held.value],
    };
  if (decision.action === 'conflict') return { ...held, conflict: { current: held.value, incoming } };
  return held;
}

describe('decideDetail: the table in docs/data-precedence.md', () => {
  const feed = (value: string | null, on: string): Offered => ({ value, source: 'bs_select', on });

  it('address: a trailer correction is newer than a feed row dated before it; a feed row dated after it is a conflict', () => {
    const current = { value: 'LS1 4AP', known: { source: 'gateway' as Source, on: '2026-11-20' } };
    expect(decideDetail('address', current, feed('LS6 2AB', '2026-11-01'))).toMatchObject({
      action: 'keep',
      because: 'in_person_newer',
    });
    expect(decideDetail('address', current, feed('LS6 2AB', '2026-11-20'))).toMatchObject({ action: 'keep' });
    expect(decideDetail('address', current, feed('LS6 2AB', '2026-11-22'))).toMatchObject({ action: 'conflict' });
    expect(decideDetail('address', current, feed('LS1 4AP', '2026-11-22'))).toMatchObject({
      action: 'keep',
      because: 'same_value',
    });
  });

  it('address: given in person applies over records dated on or before it', () => {
    const current = { value: 'LS6 2AB', known: { source: 'bs_select' as Source, on: '2026-11-01' } };
    expect(decideDetail('address', current, { value: 'LS1 4AP', source: 'participant', on: '2026-11-01' }).action).toBe(
      'apply',
    );
    expect(decideDetail('phone', current, { value: '07700', source: 'staff', on: '2026-10-01' }).action).toBe(
      'conflict',
    );
    // Two record sources: the later date wins.
    expect(decideDetail('address', current, { value: 'LS1 4AP', source: 'gp', on: '2026-11-02' }).action).toBe('apply');
  });

  it('name, date of birth and GP practice: the later effective date wins, whoever gave the value', () => {
    const current = { value: 'Smith', known: { source: 'gateway' as Source, on: '2026-11-20' } };
    expect(decideDetail('family_name', current, feed('Smyth', '2026-11-21')).action).toBe('apply');
    expect(decideDetail('family_name', current, feed('Smyth', '2026-11-19'))).toMatchObject({
      action: 'keep',
      because: 'older',
    });
    const gp = { value: 'Y00001', known: { source: 'staff' as Source, on: '2026-11-20' } };
    expect(decideDetail('gp_practice_code', gp, feed('Y00002', '2026-11-21')).action).toBe('apply');
  });

  it('death: the feed’s death always applies; the feed’s “no death” never undoes a recorded one without a person', () => {
    const alive = { value: null, known: { source: 'staff' as Source, on: '2026-11-20' } };
    expect(decideDetail('date_of_death', alive, feed('2026-06-10', '2026-01-01')).action).toBe('apply');
    const died = { value: '2026-06-10', known: { source: 'staff' as Source, on: '2026-07-01' } };
    expect(decideDetail('date_of_death', died, feed(null, '2026-08-01')).action).toBe('conflict');
    expect(decideDetail('date_of_death', died, feed(null, '2026-06-01')).action).toBe('keep');
  });

  it('remembers a value staff declined: the same value from the same source again is kept, not raised again', () => {
    const current = {
      value: 'LS1 4AP',
      known: {
        source: 'gateway' as Source,
        on: '2026-11-20',
        declined: { value: 'LS6 2AB', source: 'bs_select' as Source, on: '2026-11-22' },
      },
    };
    expect(decideDetail('address', current, feed('LS6 2AB', '2026-12-01'))).toMatchObject({
      action: 'keep',
      because: 'declined',
    });
    expect(decideDetail('address', current, feed('YO1 7HH', '2026-12-01')).action).toBe('conflict');
  });

  it('knows which detail a field belongs to, and the latest provenance of a detail made of several fields', () => {
    expect(detailOf('town')).toBe('address');
    expect(detailOf('ceased_reason')).toBeUndefined();
    expect(
      detailKnown('address', {
        postcode: { source: 'bs_select', on: '2026-01-01' },
        address_line1: { source: 'gateway', on: '2026-11-20' },
      }),
    ).toEqual({ source: 'gateway', on: '2026-11-20' });
  });
});

describe('decideDetail: properties', () => {
  it('the same source: the later (or same) date applies, an earlier one is kept', () => {
    fc.assert(
      fc.property(detailArb, sourceArb, dateArb, dateArb, valueArb, valueArb, (detail, source, on1, on2, v1, v2) => {
        fc.pre(v1 !== v2);
        const d = decideDetail(detail, { value: v1, known: { source, on: on1 } }, { value: v2, source, on: on2 });
        // Except a death from the feed, which always applies.
        if (detail === 'date_of_death' && source === 'bs_select' && v2 !== null && on2 < on1) return;
        expect(d.action).toBe(on2 >= on1 ? 'apply' : 'keep');
      }),
    );
  });

  it('is idempotent: a value the record already has is never a conflict, and applying it twice changes nothing', () => {
    fc.assert(
      fc.property(
        detailArb,
        fc.option(fc.record({ source: sourceArb, on: dateArb }), { nil: undefined }),
        valueArb,
        fc.record({ value: valueArb, source: sourceArb, on: dateArb }),
        (detail, known, value, incoming) => {
          expect(decideDetail(detail, { value: incoming.value, known }, incoming)).toMatchObject({
            action: 'keep',
            because: 'same_value',
          });
          const once = offer({ value, known, replaced: [], conflict: null }, detail, incoming);
          const twice = offer(once, detail, incoming);
          expect(twice.value).toBe(once.value);
          expect(twice.known).toEqual(once.known);
          if (once.value === incoming.value) expect(twice.conflict).toEqual(once.conflict);
        },
      ),
    );
  });

  it('loses no value: whatever arrives, each value is on record, replaced into history, held in a conflict, or refused for a stated reason', () => {
    fc.assert(
      fc.property(
        detailArb,
        fc.record({ value: valueArb, source: sourceArb, on: dateArb }),
        fc.array(fc.record({ value: valueArb, source: sourceArb, on: dateArb }), { maxLength: 8 }),
        (detail, first, arrivals) => {
          let held: Held = {
            value: first.value,
            known: { source: first.source, on: first.on },
            replaced: [],
            conflict: null,
          };
          for (const incoming of arrivals) {
            const before = held;
            const decision = decideDetail(detail, { value: before.value, known: before.known }, incoming);
            held = offer(before, detail, incoming);
            if (decision.action === 'conflict') {
              // A conflict keeps both: the record's value untouched, the incoming one held with its source and date.
              expect(held.value).toBe(before.value);
              expect(held.conflict).toEqual({ current: before.value, incoming });
            } else if (decision.action === 'apply') {
              expect(held.value).toBe(incoming.value);
              expect(held.replaced.at(-1)).toBe(before.value);
            } else {
              expect(held).toBe(before);
              expect(decision.why.length).toBeGreaterThan(0);
            }
            // The feed never silently overwrites a contact detail given in person on or after its date.
            if (
              DETAILS[detail].group === 'contact' &&
              incoming.source === 'bs_select' &&
              before.known &&
              ['participant', 'staff', 'gateway'].includes(before.known.source) &&
              incoming.value !== before.value
            )
              expect(decision.action).not.toBe('apply');
          }
        },
      ),
    );
  });
});

describe('decideItem: breast implants', () => {
  const gp = (present: boolean, on = '2026-10-01', side: ItemStatement['side'] = 'bilateral'): ItemStatement => ({
    present,
    side: present ? side : null,
    source: 'gp',
    on,
  });
  const her = (present: boolean, on = '2026-11-20', side: ItemStatement['side'] = 'bilateral'): ItemStatement => ({
    present,
    side: present ? side : null,
    source: 'participant',
    on,
  });

  it('the GP and the participant disagreeing is a conflict, either way round and about the side', () => {
    expect(decideItem('implants', her(true), gp(false)).action).toBe('conflict');
    expect(decideItem('implants', gp(true), her(false)).action).toBe('conflict');
    expect(decideItem('implants', gp(true, '2026-10-01', 'left'), her(true)).action).toBe('conflict');
    expect(decideItem('implants', gp(true), her(true)).action).toBe('keep');
  });

  it('the same source: the later statement wins; screening staff decide; nothing on record agrees with “none”', () => {
    expect(decideItem('implants', gp(true, '2026-01-01'), gp(false, '2026-10-01')).action).toBe('apply');
    expect(decideItem('implants', gp(true, '2026-11-01'), gp(false, '2026-10-01')).action).toBe('keep');
    expect(decideItem('implants', gp(true), { ...her(false), source: 'staff' }).action).toBe('apply');
    expect(decideItem('implants', null, gp(false))).toMatchObject({ action: 'keep', because: 'nothing_to_remove' });
    expect(decideItem('implants', null, her(true)).action).toBe('apply');
    // Kinds without a disagreement rule: the later date wins.
    expect(decideItem('wheelchair', gp(true), her(false)).action).toBe('apply');
  });

  it('properties: a statement the record already makes is never a conflict; the same source is ordered by date', () => {
    const statementArb = fc.record({
      present: fc.boolean(),
      side: fc.constantFrom('left' as const, 'right' as const, 'bilateral' as const),
      source: sourceArb,
      on: dateArb,
    });
    fc.assert(
      fc.property(statementArb, statementArb, (a, b) => {
        const current = { ...a, present: true };
        expect(decideItem('implants', current, { ...current, source: b.source, on: b.on }).action).toBe('keep');
        const same = { ...b, source: current.source };
        const d = decideItem('implants', current, same);
        if (same.present && same.side === current.side) expect(d.action).toBe('keep');
        else expect(d.action).toBe(same.on >= current.on ? 'apply' : 'keep');
      }),
    );
  });
});
