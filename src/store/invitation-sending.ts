import { randomInt } from 'node:crypto';
import {
  planOffers,
  type NoOffer,
  type Offer,
  type OfferClinic,
  type OfferPlan,
} from '../pathway/appointment-offers.js';
import { slotTime } from '../pathway/clinic-slots.js';
import { addDays, formatLongDate, type IsoDate } from '../pathway/dates.js';
import { invitationLetter, letterFormatFor, type Letter, type LetterChoice } from '../pathway/invitation-letters.js';
import { needsAccessibleLocation, slotsNeeded } from '../pathway/record-items.js';
import { hashPassword } from './accounts.js';
import { recordAudit, type Actor } from './audit.js';
import { bookWithin, currentItemsOf, listClinics } from './clinics.js';
import type { Db } from './database.js';
import { NotFoundError, RuleError } from './errors.js';
import { previewBatch, type BatchCandidate, type BatchCriterion, type BatchRequest } from './invitation-batches.js';

/** Appointments are offered from the batch date up to this many days after it, unless the planner says otherwise. */
export const DEFAULT_HORIZON_DAYS = 42;
/** Women booked in one transaction: a failure part-way leaves whole chunks sent, and sending again finishes. */
export const SEND_CHUNK = 50;

// Self-booking codes --------------------------------------------------------------------------------------------

/** No 0/O, 1/I/L: easy to read off a letter and type. 31^8 ≈ 8.5 × 10^11 codes. */
export const CODE_ALPHABET = 'ABCDEFGHJKMNPQRSTUVWXYZ23456789';
export const CODE_LENGTH = 8;

/** A new random self-booking code, shown as XXXX-XXXX. */
export function newBookingCode(): string {
  let code = '';
  for (let i = 0; i < CODE_LENGTH; i++) code += CODE_ALPHABET[randomInt(CODE_ALPHABET.length)];
  return `${code.slice(0, 4)}-${code.slice(4)}`;
}

/** As typed: spaces and dashes dropped, upper case; the look-alikes a reader may type (O, 0, I, 1, L) kept as typed. */
export function normaliseBookingCode(typed: string): string {
  return typed.replace(/[\s-]/g, '').toUpperCase();
}

/**
 * Cheaper than a password's scrypt (a batch hashes hundreds of codes), but still salted and slow: the code alone
 * opens nothing (she also needs her NHS number and date of birth) and 5 wrong tries lock the invitation. Stored in
 * the same form as password hashes, so accounts.verifyPassword checks it.
 */
const CODE_COST = { N: 2 ** 12, r: 8, p: 1, maxmem: 32 * 1024 * 1024 };

export async function hashBookingCode(code: string): Promise<string> {
  return hashPassword(normaliseBookingCode(code), CODE_COST);
}

// Batches -------------------------------------------------------------------------------------------------------

export interface BatchToSend extends BatchRequest {
  horizonDate: IsoDate;
}

const criterionValue = (c: BatchCriterion) =>
  c.kind === 'gp_practice' ? c.odsCode : c.kind === 'outcode' ? c.outcode : String(c.month);

function criterionOf(kind: 'gp_practice' | 'outcode' | 'birth_month', value: string): BatchCriterion {
  if (kind === 'gp_practice') return { kind, odsCode: value };
  if (kind === 'outcode') return { kind, outcode: value };
  return { kind, month: Number(value) };
}

/**
 * Records a batch to send. `requestKey` comes from the confirm form: the same form sent twice (a double click, a
 * reload) finds the batch it made the first time rather than making another.
 */
export async function createBatch(db: Db, batch: BatchToSend, requestKey: string, actor: Actor): Promise<string> {
  if (batch.horizonDate < batch.batchDate)
    throw new RuleError('horizonDate', 'The last appointment date must be on or after the first');
  await db
    .insertInto('invitation_batch')
    .values({
      bso_code: batch.bsoCode,
      criterion_kind: batch.criterion.kind,
      criterion_value: criterionValue(batch.criterion),
      batch_date: batch.batchDate,
      horizon_date: batch.horizonDate,
      request_key: requestKey,
      created_by: actor.userId,
      created_by_name: actor.username,
    })
    .onConflict((oc) => oc.column('request_key').doNothing())
    .execute();
  const { id } = await db
    .selectFrom('invitation_batch')
    .select('id')
    .where('request_key', '=', requestKey)
    .executeTakeFirstOrThrow();
  return id;
}

async function loadBatch(db: Db, batchId: string) {
  const batch = await db
    .selectFrom('invitation_batch as b')
    .innerJoin('screening_office as o', 'o.code', 'b.bso_code')
    .selectAll('b')
    .select('o.name as office_name')
    .where('b.id', '=', batchId)
    .executeTakeFirst();
  if (!batch) throw new NotFoundError('That invitation batch does not exist');
  return { ...batch, criterion: criterionOf(batch.criterion_kind, batch.criterion_value) };
}

/** The most recent batches, newest first, with how many women have answered online or asked to be contacted. */
export async function recentBatches(db: Db, limit: number) {
  const batches = await db
    .selectFrom('invitation_batch as b')
    .innerJoin('screening_office as o', 'o.code', 'b.bso_code')
    .leftJoin('invitation as i', 'i.batch_id', 'b.id')
    .select((eb) => [
      'b.id',
      'b.criterion_kind',
      'b.criterion_value',
      'b.batch_date',
      'b.sent_at',
      'b.created_by_name',
      'b.offered_count',
      'b.no_clinic_count',
      'b.letters_issued_at',
      'o.name as office_name',
      eb.fn.count<number>('i.id').filterWhere('i.status', '=', 'contact_requested').as('contact_requested'),
      eb.fn.count<number>('i.id').filterWhere('i.status', '=', 'cancelled').as('cancelled'),
    ])
    .groupBy(['b.id', 'o.name'])
    .orderBy('b.created_at', 'desc')
    .limit(limit)
    .execute();
  return batches.map((b) => ({
    ...b,
    contact_requested: Number(b.contact_requested),
    cancelled: Number(b.cancelled),
    criterion: criterionOf(b.criterion_kind, b.criterion_value),
  }));
}

/** The office's open clinics from `from` to `to`, with the slots already held, for the offer planner. */
export async function officeClinics(db: Db, bsoCode: string, from: IsoDate, to: IsoDate): Promise<OfferClinic[]> {
  const sites = new Set(
    (await db.selectFrom('site').select('id').where('bso_code', '=', bsoCode).execute()).map((s) => s.id),
  );
  const clinics = (await listClinics(db, { from, to })).filter((c) => c.status === 'open' && sites.has(c.site_id));
  const taken = new Map<string, Set<number>>(clinics.map((c) => [c.id, new Set<number>()]));
  if (clinics.length > 0) {
    const rows = await db
      .selectFrom('appointment_slot')
      .select(['clinic_id', 'slot_index'])
      .where(
        'clinic_id',
        'in',
        clinics.map((c) => c.id),
      )
      .execute();
    for (const r of rows) taken.get(r.clinic_id)?.add(r.slot_index);
  }
  return clinics.map((c) => ({
    id: c.id,
    date: c.clinic_date,
    startsAt: c.starts_at,
    wheelchairAccessible: c.wheelchair_accessible,
    slotCount: c.slots,
    taken: taken.get(c.id) ?? new Set(),
  }));
}

export interface PlannedBatch {
  selected: BatchCandidate[];
  excluded: BatchCandidate[];
  /** Already invited in this batch (a batch sent again skips them). */
  alreadySent: string[];
  /** Selected, but she already has an appointment coming (another batch, or booked by staff). */
  alreadyBooked: NoOffer[];
  plan: OfferPlan;
  letters: Map<string, LetterChoice>;
}

/** Who the batch would offer which appointment, who it cannot and why: what the confirm page shows and send does. */
export async function planBatch(
  db: Db,
  batch: BatchToSend,
  today: IsoDate,
  options: { batchId?: string } = {},
): Promise<PlannedBatch> {
  const preview = await previewBatch(db, batch);
  const ids = preview.selected.map((c) => c.id);
  const sent = new Set<string>();
  if (options.batchId && ids.length > 0) {
    const rows = await db
      .selectFrom('invitation')
      .select('participant_id')
      .where('batch_id', '=', options.batchId)
      .execute();
    for (const r of rows) sent.add(r.participant_id);
  }
  const booked = new Map<string, string>();
  if (ids.length > 0) {
    const rows = await db
      .selectFrom('appointment as a')
      .innerJoin('clinic as c', 'c.id', 'a.clinic_id')
      .select(['a.participant_id', 'c.clinic_date'])
      .where('a.participant_id', 'in', ids)
      .where('a.status', 'in', ['scheduled', 'checked_in', 'in_progress', 'paused'])
      .where('c.clinic_date', '>=', today)
      .execute();
    for (const r of rows) booked.set(r.participant_id, r.clinic_date);
  }
  const items = await currentItemsOf(db, ids);
  const from = batch.batchDate > today ? batch.batchDate : today;
  const letters = new Map<string, LetterChoice>();
  const needs = [];
  const alreadyBooked: NoOffer[] = [];
  for (const c of preview.selected) {
    if (sent.has(c.id)) continue;
    const own = (items.get(c.id) ?? []).map((i) => ({
      kind: i.kind,
      temporaryUntil: i.temporary_until,
      value: i.value,
    }));
    letters.set(c.id, letterFormatFor(own, from));
    const on = booked.get(c.id);
    if (on) {
      alreadyBooked.push({
        participantId: c.id,
        code: 'no_slot',
        reason: `She already has an appointment on ${formatLongDate(on)}`,
      });
      continue;
    }
    needs.push({ participantId: c.id, slots: slotsNeeded(own, from), accessible: needsAccessibleLocation(own, from) });
  }
  const clinics = await officeClinics(db, batch.bsoCode, from, batch.horizonDate);
  return {
    selected: preview.selected,
    excluded: preview.excluded,
    alreadySent: [...sent],
    alreadyBooked,
    plan: planOffers(needs, clinics, { from, to: batch.horizonDate }),
    letters,
  };
}

export interface SendCounts {
  offered: number;
  noClinic: number;
  excluded: number;
  /** Already in the batch from an earlier send: not invited again. */
  alreadySent: number;
}

type Step = { participantId: string; offer?: Offer; noOffer?: NoOffer };

/** One woman: book the planned slot through the one booking path, or record why she has none. */
async function inviteOne(tx: Db, batchId: string, step: Step, letter: LetterChoice, actor: Actor, today: IsoDate) {
  let appointmentId: string | null = null;
  let reason = step.noOffer?.reason ?? null;
  if (step.offer) {
    const request = { clinicId: step.offer.clinicId, participantId: step.participantId };
    try {
      appointmentId = await bookWithin(tx, { ...request, slotIndex: step.offer.slotIndex }, actor, today);
    } catch (error) {
      if (!(error instanceof RuleError)) throw error;
      // Taken since the plan was made (staff booking alongside): the clinic's first free time, if any.
      try {
        appointmentId = await bookWithin(tx, request, actor, today);
      } catch (again) {
        if (!(again instanceof RuleError)) throw again;
        reason = again.message;
      }
    }
  }
  const episode = appointmentId
    ? await tx
        .selectFrom('appointment as a')
        .innerJoin('episode as e', 'e.id', 'a.episode_id')
        .select(['e.id', 'e.episode_type'])
        .where('a.id', '=', appointmentId)
        .executeTakeFirst()
    : undefined;
  await tx
    .insertInto('invitation')
    .values({
      batch_id: batchId,
      participant_id: step.participantId,
      episode_id: episode?.id ?? null,
      episode_type: episode?.episode_type === 'C' || episode?.episode_type === 'R' ? episode.episode_type : null,
      status: appointmentId ? 'offered' : 'no_suitable_clinic',
      appointment_id: appointmentId,
      no_clinic_reason: appointmentId ? null : (reason ?? 'No suitable clinic'),
      letter_format: letter.format,
      letter_language: letter.language,
      interpreter: letter.interpreter,
    })
    .execute();
  return appointmentId !== null;
}

/**
 * Sends a batch: each selected woman not already in it is booked into her planned slot (bookWithin: the same rules
 * and double-booking guard as staff booking) and gets an invitation, or an invitation row saying why there is no
 * suitable clinic. One transaction per chunk of women; sending the same batch again invites nobody twice.
 */
export async function sendBatch(
  db: Db,
  batchId: string,
  actor: Actor,
  today: IsoDate,
  options: { chunkSize?: number } = {},
): Promise<SendCounts> {
  const batch = await loadBatch(db, batchId);
  const request: BatchToSend = {
    bsoCode: batch.bso_code,
    criterion: batch.criterion,
    batchDate: batch.batch_date,
    horizonDate: batch.horizon_date,
  };
  const planned = await planBatch(db, request, today, { batchId });
  const steps: Step[] = [
    ...planned.plan.offers.map((offer) => ({ participantId: offer.participantId, offer })),
    ...[...planned.plan.noOffer, ...planned.alreadyBooked].map((noOffer) => ({
      participantId: noOffer.participantId,
      noOffer,
    })),
  ];
  const size = options.chunkSize ?? SEND_CHUNK;
  for (let start = 0; start < steps.length; start += size) {
    const chunk = steps.slice(start, start + size);
    await db.transaction().execute(async (tx) => {
      // Sends of one batch take turns; who is already in it is read again under the lock.
      await tx.selectFrom('invitation_batch').select('id').where('id', '=', batchId).forUpdate().execute();
      const done = new Set(
        (
          await tx
            .selectFrom('invitation')
            .select('participant_id')
            .where('batch_id', '=', batchId)
            .where(
              'participant_id',
              'in',
              chunk.map((s) => s.participantId),
            )
            .execute()
        ).map((r) => r.participant_id),
      );
      let offered = 0;
      let noClinic = 0;
      for (const step of chunk) {
        if (done.has(step.participantId)) continue;
        const letter = planned.letters.get(step.participantId) ?? {
          format: 'standard',
          language: null,
          interpreter: false,
        };
        if (await inviteOne(tx, batchId, step, letter, actor, today)) offered++;
        else noClinic++;
      }
      await recordAudit(tx, actor, {
        action: 'invitations.send',
        entityType: 'invitation_batch',
        entityId: batchId,
        detail: { offered, noClinic, chunk: start / size + 1 },
      });
    });
  }
  const counts = await db
    .selectFrom('invitation')
    .select([
      (eb) => eb.fn.countAll<string>().filterWhere('status', '<>', 'no_suitable_clinic').as('offered'),
      (eb) => eb.fn.countAll<string>().filterWhere('status', '=', 'no_suitable_clinic').as('no_clinic'),
    ])
    .where('batch_id', '=', batchId)
    .executeTakeFirstOrThrow();
  const result = {
    offered: Number(counts.offered),
    noClinic: Number(counts.no_clinic),
    excluded: planned.excluded.length,
    alreadySent: planned.alreadySent.length,
  };
  await db
    .updateTable('invitation_batch')
    .set({
      sent_at: batch.sent_at ?? new Date(),
      offered_count: result.offered,
      no_clinic_count: result.noClinic,
      excluded_count: result.excluded,
    })
    .where('id', '=', batchId)
    .execute();
  if (steps.length === 0) {
    await recordAudit(db, actor, {
      action: 'invitations.send',
      entityType: 'invitation_batch',
      entityId: batchId,
      detail: { offered: 0, noClinic: 0, alreadySent: result.alreadySent },
    });
  }
  return result;
}

/** A sent batch: its counts, each invitation with the woman and her appointment, and who has no suitable clinic. */
export async function batchResult(db: Db, batchId: string) {
  const batch = await loadBatch(db, batchId);
  const invitations = await db
    .selectFrom('invitation as i')
    .innerJoin('participant as p', 'p.id', 'i.participant_id')
    .leftJoin('appointment as a', 'a.id', 'i.appointment_id')
    .leftJoin('clinic as c', 'c.id', 'a.clinic_id')
    .leftJoin('location as l', 'l.id', 'c.location_id')
    .select([
      'i.id',
      'i.status',
      'i.no_clinic_reason',
      'i.letter_format',
      'i.letter_language',
      'i.interpreter',
      'i.episode_type',
      'i.code_issued_at',
      'i.contact_note',
      'i.updated_at',
      'p.id as participant_id',
      'p.nhs_number',
      'p.given_name',
      'p.family_name',
      'p.date_of_birth',
      'a.slot_index',
      'a.slot_count',
      'c.clinic_date',
      'c.starts_at',
      'c.slot_minutes',
      'l.name as location_name',
      'l.wheelchair_accessible',
    ])
    .where('i.batch_id', '=', batchId)
    .orderBy('p.family_name')
    .orderBy('p.given_name')
    .execute();
  const rows = invitations.map((i) => ({
    ...i,
    time:
      i.starts_at && i.slot_minutes != null && i.slot_index != null
        ? slotTime({ startsAt: i.starts_at, slotMinutes: i.slot_minutes }, i.slot_index)
        : null,
  }));
  return {
    batch,
    contactRequested: rows.filter((i) => i.status === 'contact_requested'),
    offered: rows.filter((i) => i.status !== 'no_suitable_clinic'),
    noClinic: rows.filter((i) => i.status === 'no_suitable_clinic'),
  };
}

export interface PrintedLetter extends Letter {
  invitationId: string;
  nhsNumber: string;
}

/**
 * The batch's letters for printing, each in its format with a new self-booking code. The codes are shown only here
 * (only their hashes are kept): producing the letters again gives everyone new codes, and the old ones stop working.
 */
export async function issueLetters(
  db: Db,
  batchId: string,
  actor: Actor,
  bookingAddress: string,
): Promise<{ batch: Awaited<ReturnType<typeof loadBatch>>; letters: PrintedLetter[] }> {
  const batch = await loadBatch(db, batchId);
  const rows = await db
    .selectFrom('invitation as i')
    .innerJoin('participant as p', 'p.id', 'i.participant_id')
    .innerJoin('appointment as a', 'a.id', 'i.appointment_id')
    .innerJoin('clinic as c', 'c.id', 'a.clinic_id')
    .innerJoin('location as l', 'l.id', 'c.location_id')
    .select([
      'i.id',
      'i.letter_format',
      'i.letter_language',
      'i.interpreter',
      'i.episode_type',
      'p.nhs_number',
      'p.given_name',
      'p.family_name',
      'p.address_line1',
      'p.address_line2',
      'p.town',
      'p.postcode',
      'a.slot_index',
      'a.slot_count',
      'a.status as appointment_status',
      'c.clinic_date',
      'c.starts_at',
      'c.ends_at',
      'c.slot_minutes',
      'l.name as location_name',
      'l.address as location_address',
      'l.postcode as location_postcode',
    ])
    .where('i.batch_id', '=', batchId)
    .where('i.status', '=', 'offered')
    .orderBy('p.postcode')
    .orderBy('p.family_name')
    .execute();
  const codes = rows.map(() => newBookingCode());
  const hashes = await Promise.all(codes.map((c) => hashBookingCode(c)));
  await db.transaction().execute(async (tx) => {
    for (const [n, row] of rows.entries())
      await tx
        .updateTable('invitation')
        .set({
          code_hash: hashes[n]!,
          code_issued_at: new Date(),
          failed_attempts: 0,
          locked_until: null,
          updated_at: new Date(),
        })
        .where('id', '=', row.id)
        .execute();
    await tx.updateTable('invitation_batch').set({ letters_issued_at: new Date() }).where('id', '=', batchId).execute();
    await recordAudit(tx, actor, {
      action: 'invitations.letters',
      entityType: 'invitation_batch',
      entityId: batchId,
      detail: { letters: rows.length, reissued: batch.letters_issued_at !== null },
    });
  });
  const letters = rows.map((r, n) => ({
    invitationId: r.id,
    nhsNumber: r.nhs_number,
    ...invitationLetter(
      {
        givenName: r.given_name,
        familyName: r.family_name,
        address: [r.address_line1, r.address_line2, r.town, r.postcode].filter((x): x is string => Boolean(x)),
        nhsNumber: r.nhs_number,
        appointment: {
          date: r.clinic_date,
          time: slotTime({ startsAt: r.starts_at, slotMinutes: r.slot_minutes }, r.slot_index),
          location: r.location_name,
          address: `${r.location_address}, ${r.location_postcode}`,
          minutes: r.slot_count * r.slot_minutes,
        },
        code: codes[n]!,
        bookingAddress,
        officeName: batch.office_name,
        episodeType: r.episode_type,
      },
      { format: r.letter_format, language: r.letter_language, interpreter: r.interpreter },
    ),
  }));
  return { batch, letters };
}

export const horizonFor = (batchDate: IsoDate) => addDays(batchDate, DEFAULT_HORIZON_DAYS);
