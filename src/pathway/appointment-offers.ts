/**
 * Which appointment each woman in an invitation batch is offered (NHS Breast Screening Programme, England). Pure:
 * the store gives the selected women with what their bookings need (from the record's access items, see
 * record-items.ts) and the office's open clinics from the batch date to the horizon with the slots already taken.
 *
 * - A wheelchair user is only offered a clinic at a wheelchair accessible location.
 * - A special appointment (any reasonable adjustment) takes the slots it needs, in a row.
 * - Only clinics on or after the batch date and on or before the horizon.
 * - Fair: the women with the fewest possible clinics choose first (accessible and longer appointments, then
 *   everyone else, each group in the batch's order), and each goes to the suitable clinic that is least full so
 *   far (then the earliest), so a batch spreads over its clinics rather than filling the first ones.
 * - Nobody is silently dropped: a woman with no suitable free slot is listed with the reason.
 */
import { compareIsoDate, formatLongDate, type IsoDate } from './dates.js';
import { freeSlotStarts } from './clinic-slots.js';

export interface OfferNeeds {
  participantId: string;
  /** Slots in a row her appointment takes (1, or 2 for a special appointment). */
  slots: number;
  /** She needs a wheelchair accessible location. */
  accessible: boolean;
}

export interface OfferClinic {
  id: string;
  date: IsoDate;
  /** 'HH:MM', for ordering clinics on one day. */
  startsAt: string;
  wheelchairAccessible: boolean;
  /** Slots in the clinic's day. */
  slotCount: number;
  /** Slot indexes already held. */
  taken: ReadonlySet<number>;
}

export interface Offer {
  participantId: string;
  clinicId: string;
  slotIndex: number;
  slotCount: number;
}

export type NoOfferCode = 'no_accessible_slot' | 'no_long_slot' | 'no_slot';

export interface NoOffer {
  participantId: string;
  code: NoOfferCode;
  reason: string;
}

export interface OfferPlan {
  offers: Offer[];
  noOffer: NoOffer[];
}

export const NO_OFFER_LABELS: Record<NoOfferCode, string> = {
  no_accessible_slot: 'No wheelchair accessible clinic',
  no_long_slot: 'No free special appointment',
  no_slot: 'No free appointment',
};

/** How hard she is to place: fewer suitable clinics first. */
const constraint = (n: OfferNeeds) => (n.accessible ? 2 : 0) + (n.slots > 1 ? 1 : 0);

/** Plans an offer for each woman (or says why there is none). Clinics outside the window are not used. */
export function planOffers(
  women: readonly OfferNeeds[],
  clinics: readonly OfferClinic[],
  window: { from: IsoDate; to: IsoDate },
): OfferPlan {
  const usable = clinics
    .filter((c) => compareIsoDate(c.date, window.from) >= 0 && compareIsoDate(c.date, window.to) <= 0)
    .map((c) => ({ clinic: c, taken: new Set(c.taken) }))
    .sort(
      (a, b) =>
        compareIsoDate(a.clinic.date, b.clinic.date) ||
        a.clinic.startsAt.localeCompare(b.clinic.startsAt) ||
        a.clinic.id.localeCompare(b.clinic.id),
    );
  const order = women.map((w, i) => ({ w, i })).sort((a, b) => constraint(b.w) - constraint(a.w) || a.i - b.i);
  const between = `between ${formatLongDate(window.from)} and ${formatLongDate(window.to)}`;
  const offers: Offer[] = [];
  const noOffer: NoOffer[] = [];
  for (const { w } of order) {
    let best: { entry: (typeof usable)[number]; start: number; fill: number } | undefined;
    for (const entry of usable) {
      if (w.accessible && !entry.clinic.wheelchairAccessible) continue;
      const total = entry.clinic.slotCount;
      if (total - entry.taken.size < w.slots) continue;
      const start = freeSlotStarts(total, entry.taken, w.slots)[0];
      if (start === undefined) continue;
      const fill = entry.taken.size / total;
      // Strictly less full wins; on a tie the earlier clinic (the list is in date order) stays.
      if (!best || fill < best.fill) best = { entry, start, fill };
    }
    if (best) {
      for (let i = 0; i < w.slots; i++) best.entry.taken.add(best.start + i);
      offers.push({
        participantId: w.participantId,
        clinicId: best.entry.clinic.id,
        slotIndex: best.start,
        slotCount: w.slots,
      });
    } else if (w.accessible) {
      noOffer.push({
        participantId: w.participantId,
        code: 'no_accessible_slot',
        reason: `She uses a wheelchair and no wheelchair accessible clinic has ${w.slots > 1 ? `${w.slots} free slots in a row` : 'a free slot'} ${between}`,
      });
    } else if (w.slots > 1) {
      noOffer.push({
        participantId: w.participantId,
        code: 'no_long_slot',
        reason: `She needs a special appointment (${w.slots} slots in a row) and no clinic has one free ${between}`,
      });
    } else {
      noOffer.push({ participantId: w.participantId, code: 'no_slot', reason: `No clinic has a free slot ${between}` });
    }
  }
  return { offers, noOffer };
}
