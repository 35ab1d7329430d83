import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { planOffers, type OfferClinic, type OfferNeeds } from '../../../src/pathway/appointment-offers.js';
import { addDays } from '../../../src/pathway/dates.js';
import { invitationLetter, letterFormatFor, type LetterFacts } from '../../../src/pathway/invitation-letters.js';

const window = { from: '2027-01-12', to: '2027-02-23' };
const clinic = (id: string, more: Partial<OfferClinic> = {}): OfferClinic => ({
  id,
  date: '2027-01-12',
  startsAt: '09:00',
  wheelchairAccessible: true,
  slotCount: 6,
  taken: new Set(),
  ...more,
});
const woman = (participantId: string, more: Partial<OfferNeeds> = {}): OfferNeeds => ({
  participantId,
  slots: 1,
  accessible: false,
  ...more,
});

describe('planOffers', () => {
  it('offers a wheelchair user only an accessible location, and lists her with the reason when there is none', () => {
    const plan = planOffers(
      [woman('w', { accessible: true, slots: 2 }), woman('a')],
      [clinic('car-park', { wheelchairAccessible: false })],
      window,
    );
    expect(plan.offers).toEqual([{ participantId: 'a', clinicId: 'car-park', slotIndex: 0, slotCount: 1 }]);
    expect(plan.noOffer).toEqual([
      {
        participantId: 'w',
        code: 'no_accessible_slot',
        reason:
          'She uses a wheelchair and no wheelchair accessible clinic has 2 free slots in a row between 12 January 2027 and 23 February 2027',
      },
    ]);
  });

  it('places the hardest to place first, so an accessible clinic is kept for the wheelchair user', () => {
    const plan = planOffers(
      [woman('a'), woman('b'), woman('w', { accessible: true })],
      [clinic('central', { slotCount: 1 }), clinic('car-park', { wheelchairAccessible: false, slotCount: 1 })],
      window,
    );
    expect(plan.offers.find((o) => o.participantId === 'w')?.clinicId).toBe('central');
    expect(plan.noOffer.map((n) => [n.participantId, n.code])).toEqual([['b', 'no_slot']]);
  });

  it('gives a special appointment two free slots in a row', () => {
    const plan = planOffers(
      [woman('s', { slots: 2 })],
      [
        clinic('c', { slotCount: 4, taken: new Set([1, 3]) }),
        clinic('d', { date: '2027-01-13', slotCount: 4, taken: new Set([0]) }),
      ],
      window,
    );
    expect(plan.offers).toEqual([{ participantId: 's', clinicId: 'd', slotIndex: 1, slotCount: 2 }]);
  });

  it('spreads a batch over its clinics rather than filling the first', () => {
    const plan = planOffers(
      ['a', 'b', 'c', 'd'].map((id) => woman(id)),
      [clinic('first'), clinic('second', { date: '2027-01-19' })],
      window,
    );
    expect(plan.offers.map((o) => o.clinicId)).toEqual(['first', 'second', 'first', 'second']);
  });

  it('uses only clinics from the batch date to the horizon', () => {
    const plan = planOffers(
      [woman('a'), woman('b')],
      [clinic('before', { date: '2027-01-11' }), clinic('after', { date: '2027-02-24' })],
      window,
    );
    expect(plan.offers).toEqual([]);
    expect(plan.noOffer.map((n) => n.code)).toEqual(['no_slot', 'no_slot']);
  });

  const clinicsArb = fc.array(
    fc.record({
      day: fc.integer({ min: -5, max: 50 }),
      wheelchairAccessible: fc.boolean(),
      slotCount: fc.integer({ min: 0, max: 8 }),
      taken: fc.uniqueArray(fc.integer({ min: 0, max: 7 }), { maxLength: 6 }),
    }),
    { maxLength: 6 },
  );
  const womenArb = fc.array(fc.record({ slots: fc.constantFrom(1, 2), accessible: fc.boolean() }), { maxLength: 40 });

  it('never double books, always respects access and length, and offers or lists everyone (property)', () => {
    fc.assert(
      fc.property(clinicsArb, womenArb, (clinicSpecs, womenSpecs) => {
        const clinics = clinicSpecs.map((c, i) =>
          clinic(`c${i}`, {
            date: addDays(window.from, c.day),
            wheelchairAccessible: c.wheelchairAccessible,
            slotCount: c.slotCount,
            taken: new Set(c.taken.filter((t) => t < c.slotCount)),
          }),
        );
        const women = womenSpecs.map((w, i) => woman(`w${i}`, w));
        const plan = planOffers(women, clinics, window);
        const byId = new Map(clinics.map((c) => [c.id, c]));
        const held = new Set<string>();
        for (const c of clinics) for (const t of c.taken) held.add(`${c.id}:${t}`);
        for (const offer of plan.offers) {
          const c = byId.get(offer.clinicId)!;
          const w = women.find((x) => x.participantId === offer.participantId)!;
          expect(c.date >= window.from && c.date <= window.to).toBe(true);
          if (w.accessible) expect(c.wheelchairAccessible).toBe(true);
          expect(offer.slotCount).toBe(w.slots);
          for (let i = 0; i < offer.slotCount; i++) {
            const slot = `${offer.clinicId}:${offer.slotIndex + i}`;
            expect(offer.slotIndex + i).toBeLessThan(c.slotCount);
            expect(held.has(slot)).toBe(false);
            held.add(slot);
          }
        }
        const accounted = [...plan.offers, ...plan.noOffer].map((x) => x.participantId).sort();
        expect(accounted).toEqual(women.map((w) => w.participantId).sort());
        for (const n of plan.noOffer) expect(n.reason.length).toBeGreaterThan(0);
      }),
      { numRuns: 300 },
    );
  });

  it('leaves nobody unplaced while a suitable slot is free (property)', () => {
    fc.assert(
      fc.property(clinicsArb, womenArb, (clinicSpecs, womenSpecs) => {
        const clinics = clinicSpecs.map((c, i) =>
          clinic(`c${i}`, {
            date: addDays(window.from, Math.abs(c.day) % 40),
            wheelchairAccessible: c.wheelchairAccessible,
            slotCount: c.slotCount,
          }),
        );
        const women = womenSpecs.map((w, i) => woman(`w${i}`, { ...w, slots: 1 }));
        const plan = planOffers(women, clinics, window);
        const used = new Map<string, number>();
        for (const o of plan.offers) used.set(o.clinicId, (used.get(o.clinicId) ?? 0) + 1);
        for (const n of plan.noOffer) {
          const w = women.find((x) => x.participantId === n.participantId)!;
          const free = clinics.filter(
            (c) => (!w.accessible || c.wheelchairAccessible) && c.slotCount - (used.get(c.id) ?? 0) > 0,
          );
          expect(free).toEqual([]);
        }
      }),
      { numRuns: 200 },
    );
  });
});

describe('invitation letters', () => {
  const facts: LetterFacts = {
    givenName: 'Jane',
    familyName: 'Testwoman',
    address: ['2 Test Street', 'LS6 2AB'],
    nhsNumber: '9991234567',
    appointment: {
      date: '2027-01-12',
      time: '09:10',
      location: 'Central Breast Unit',
      address: '1 Infirmary Street',
      minutes: 10,
    },
    code: 'ABCD-2345',
    bookingAddress: 'https://hub.example/book-your-screening',
    officeName: 'Test Breast Screening Office',
    episodeType: 'C',
  };

  it('chooses one format from her communication preferences', () => {
    const on = '2027-01-12';
    expect(letterFormatFor([], on)).toEqual({ format: 'standard', language: null, interpreter: false });
    expect(letterFormatFor([{ kind: 'large_print' }, { kind: 'braille' }], on).format).toBe('braille');
    expect(letterFormatFor([{ kind: 'easy_read' }], on).format).toBe('easy_read');
    expect(letterFormatFor([{ kind: 'audio' }, { kind: 'large_print' }], on).format).toBe('audio');
    expect(letterFormatFor([{ kind: 'large_print', temporaryUntil: '2027-01-11' }], on).format).toBe('standard');
    expect(letterFormatFor([{ kind: 'interpreter', value: 'Polish' }], on)).toEqual({
      format: 'translated',
      language: 'Polish',
      interpreter: true,
    });
    expect(letterFormatFor([{ kind: 'interpreter', value: 'British Sign Language' }], on).format).toBe('standard');
    expect(letterFormatFor([{ kind: 'language', value: 'English' }], on)).toEqual({
      format: 'standard',
      language: null,
      interpreter: false,
    });
  });

  it('writes the letter in her format, with the appointment, the code and who produces it', () => {
    const standard = invitationLetter(facts, { format: 'standard', language: null, interpreter: false });
    expect(standard.paragraphs[0]).toMatch(/first breast screening/);
    expect(standard.paragraphs.join(' ')).toContain('12 January 2027 at 09:10 at Central Breast Unit');
    expect(standard.booking.steps).toContain('Enter this code: ABCD-2345');
    const easy = invitationLetter(facts, { format: 'easy_read', language: null, interpreter: false });
    expect(easy.heading).toBe('Your breast screening');
    expect(easy.paragraphs[0]).toBe(
      'This letter is about a breast screening. Breast screening is an X-ray of your breasts.',
    );
    const braille = invitationLetter(facts, { format: 'braille', language: null, interpreter: false });
    expect(braille.production).toMatch(/transcription service for braille/);
    const polish = invitationLetter(facts, { format: 'translated', language: 'Polish', interpreter: true });
    expect(polish.production).toBe('Send to the translation service, then post with the English version (Polish)');
    expect(polish.paragraphs).toContain('We will book a Polish interpreter for your appointment.');
  });
});
