/**
 * A synthetic breast screening office for demos, tests and load checks: GP practices, static sites and mobile
 * units, women with their whole-person record items and past screening, and eight weeks of clinics around `today`
 * with appointments in every state.
 *
 * Everything is made up: NHS numbers come from the 999 test range (never issued to patients), names from faker,
 * phone numbers from Ofcom's drama ranges, email addresses at example.com. The same seed and the same `today`
 * give the same rows, ids included (ids are drawn from the seeded generator, not gen_random_uuid()).
 */
import { base, en, en_GB, Faker } from '@faker-js/faker';
import { sql, type Insertable } from 'kysely';
import { NOT_SCREENED_REASONS, type AppointmentStatus } from '../pathway/appointment-status.js';
import { slotCount, slotTime } from '../pathway/clinic-slots.js';
import {
  addDays,
  addMonths,
  addYears,
  ageOn,
  daysBetween,
  isIsoDate,
  isLeapYear,
  nthBirthday,
  type IsoDate,
} from '../pathway/dates.js';
import { testRangeNhsNumbers } from '../pathway/nhs-number.js';
import {
  itemKind,
  needsAccessibleLocation,
  slotsNeeded,
  type ItemFact,
  type Side,
  type Source,
} from '../pathway/record-items.js';
import type { Db } from '../store/database.js';
import { RESULT_COMMUNICATION, type CommunicationKind } from '../pathway/screening-outcomes.js';
import { planAssessment, planExam, type AssessmentPlan, type ExamPlan } from './demo-reading.js';
import type { FieldProvenance, Tables } from '../store/tables.js';

export interface DemoOptions {
  seed: number;
  participants: number;
  /** 'YYYY-MM-DD': clinics run from 4 weeks before to 4 weeks after, ages and history are relative to it. */
  today: string;
  /**
   * The film readers' user ids (at least 3): with them, screened exams get their reads, results and assessments
   * (demo-reading.ts); without, they wait unread with their images at the PACS.
   */
  readerIds?: readonly string[];
  onProgress?: (done: number, total: number, stage: string) => void;
}

export interface DemoSummary {
  participants: number;
  practices: number;
  sites: number;
  locations: number;
  clinics: number;
  appointments: number;
  episodes: number;
  items: number;
}

/** The phone number is from Ofcom's range for drama (0113 496 0000 to 0999): it reaches nobody. */
export const DEMO_OFFICE = { code: 'DMO', name: 'Demo Breast Screening Service', phone: '0113 496 0321' } as const;

const BATCH_ROWS = 1000;
const CLINIC_STARTS = '08:30';
const CLINIC_ENDS = '16:30';
const SLOT_MINUTES = 10;
const ASSESSMENT_STARTS = '09:00';
const ASSESSMENT_ENDS = '12:20';
const ASSESSMENT_SLOT_MINUTES = 20;
/** Results and outcomes of the last few days have their letters and GP messages still queued in the demo. */
const RECENT_COMMUNICATION_DAYS = 2;
/** Share of the eligible women who get an appointment at most, so some are left for booking in the demo. */
const MAX_BOOKED_SHARE = 0.7;

// ---------------------------------------------------------------------------------------------------------------
// A small seeded generator (sfc32) for every choice that is not a faker name.

class Random {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(seed: number) {
    const whole = Math.floor(Math.abs(seed));
    this.a = 0x9e3779b9;
    this.b = 0x243f6a88;
    this.c = (0xb7e15162 ^ Math.floor(whole / 0x1_0000_0000)) | 0;
    this.d = (whole ^ (seed < 0 ? 0x5bd1e995 : 0)) | 0;
    for (let i = 0; i < 20; i++) this.uint32();
  }

  uint32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  /** [0, 1) */
  next(): number {
    return this.uint32() / 0x1_0000_0000;
  }

  /** A whole number from min to max inclusive. */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    const item = items[Math.floor(this.next() * items.length)];
    if (item === undefined) throw new RangeError('pick from an empty list');
    return item;
  }

  weighted<T>(choices: readonly (readonly [T, number])[]): T {
    let total = 0;
    for (const [, w] of choices) total += w;
    let r = this.next() * total;
    for (const [value, w] of choices) {
      r -= w;
      if (r < 0) return value;
    }
    return choices[choices.length - 1]![0];
  }

  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = Math.floor(this.next() * (i + 1));
      [items[i], items[j]] = [items[j]!, items[i]!];
    }
    return items;
  }

  /** A version 4 UUID drawn from this generator (so ids are reproducible too). */
  uuid(): string {
    const hex = (n: number) => n.toString(16).padStart(8, '0');
    const w1 = hex(this.uint32());
    const w2 = hex(((this.uint32() & 0xffff0fff) | 0x00004000) >>> 0);
    const w3 = hex(((this.uint32() & 0x3fffffff) | 0x80000000) >>> 0);
    const w4 = hex(this.uint32());
    return `${w1}-${w2.slice(0, 4)}-${w2.slice(4)}-${w3.slice(0, 4)}-${w3.slice(4)}${w4}`;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Places: a small area of West Yorkshire-style towns and outcodes (the inward codes are random).

const TOWNS: readonly { town: string; outcodes: readonly string[]; weight: number }[] = [
  { town: 'Leeds', outcodes: Array.from({ length: 17 }, (_, i) => `LS${i + 1}`), weight: 48 },
  { town: 'Horsforth', outcodes: ['LS18'], weight: 5 },
  { town: 'Yeadon', outcodes: ['LS19'], weight: 4 },
  { town: 'Guiseley', outcodes: ['LS20'], weight: 4 },
  { town: 'Otley', outcodes: ['LS21'], weight: 4 },
  { town: 'Wetherby', outcodes: ['LS22', 'LS23'], weight: 5 },
  { town: 'Tadcaster', outcodes: ['LS24'], weight: 3 },
  { town: 'Garforth', outcodes: ['LS25'], weight: 4 },
  { town: 'Rothwell', outcodes: ['LS26'], weight: 4 },
  { town: 'Morley', outcodes: ['LS27'], weight: 6 },
  { town: 'Pudsey', outcodes: ['LS28'], weight: 6 },
  { town: 'Ilkley', outcodes: ['LS29'], weight: 5 },
];
const TOWN_WEIGHTS = TOWNS.map((t, i) => [i, t.weight] as const);
const INWARD_LETTERS = 'ABDEFGHJLNPQRSTUWXYZ';

function postcode(rng: Random, outcode: string): string {
  return `${outcode} ${rng.int(0, 9)}${rng.pick([...INWARD_LETTERS])}${rng.pick([...INWARD_LETTERS])}`;
}

const PRACTICE_SUFFIXES = ['Medical Centre', 'Surgery', 'Health Centre', 'Medical Practice', 'Family Practice'];

interface SiteDef {
  id: string;
  name: string;
  kind: 'static' | 'mobile';
  aeTitle: string | null;
}
const SITES: readonly SiteDef[] = [
  { id: 'DMO-STATIC-1', name: 'Demo General Hospital Breast Unit', kind: 'static', aeTitle: null },
  { id: 'DMO-STATIC-2', name: 'Demo Community Breast Screening Centre', kind: 'static', aeTitle: null },
  { id: 'DMO-MOBILE-1', name: 'Mobile unit 1', kind: 'mobile', aeTitle: 'MOBILE1' },
  { id: 'DMO-MOBILE-2', name: 'Mobile unit 2', kind: 'mobile', aeTitle: 'MOBILE2' },
];

interface LocationDef {
  id: string;
  name: string;
  address: string;
  outcode: string;
  accessible: boolean;
  staticSiteId: string | null;
}
const STATIC_LOCATIONS: readonly LocationDef[] = [
  {
    id: 'DMO-LOC-STATIC-1',
    name: 'Demo General Hospital Breast Unit',
    address: 'Level 1, Demo General Hospital, Infirmary Way, Leeds',
    outcode: 'LS1',
    accessible: true,
    staticSiteId: 'DMO-STATIC-1',
  },
  {
    id: 'DMO-LOC-STATIC-2',
    name: 'Demo Community Breast Screening Centre',
    address: 'Chapel Road, Seacroft, Leeds',
    outcode: 'LS14',
    accessible: true,
    staticSiteId: 'DMO-STATIC-2',
  },
];
/** Where the mobile units park, a week at a time. Two have steps up to the unit and no lift. */
const MOBILE_LOCATIONS: readonly LocationDef[] = [
  {
    id: 'DMO-LOC-1',
    name: 'Northgate Supermarket car park',
    address: 'Northgate Supermarket, Queen Street, Morley',
    outcode: 'LS27',
    accessible: true,
    staticSiteId: null,
  },
  {
    id: 'DMO-LOC-2',
    name: 'Moorside Surgery car park',
    address: 'Moorside Surgery, Moor Lane, Pudsey',
    outcode: 'LS28',
    accessible: false,
    staticSiteId: null,
  },
  {
    id: 'DMO-LOC-3',
    name: 'Eastfield Leisure Centre',
    address: 'Eastfield Leisure Centre, Barleyfield Road, Garforth',
    outcode: 'LS25',
    accessible: true,
    staticSiteId: null,
  },
  {
    id: 'DMO-LOC-4',
    name: 'Riverside Retail Park',
    address: 'Riverside Retail Park, Bridge Street, Otley',
    outcode: 'LS21',
    accessible: true,
    staticSiteId: null,
  },
  {
    id: 'DMO-LOC-5',
    name: "St Hilda's Church Hall car park",
    address: "St Hilda's Church Hall, Church Street, Rothwell",
    outcode: 'LS26',
    accessible: false,
    staticSiteId: null,
  },
  {
    id: 'DMO-LOC-6',
    name: 'Wharfe Valley Health Centre',
    address: 'Wharfe Valley Health Centre, Station Road, Ilkley',
    outcode: 'LS29',
    accessible: true,
    staticSiteId: null,
  },
];

// ---------------------------------------------------------------------------------------------------------------
// People.

/** Age bands on `today` and their weights: mostly 50 to 70, some either side. */
const AGE_BANDS: readonly (readonly [readonly [number, number], number])[] = [
  [[40, 44], 3],
  [[45, 49], 10],
  [[50, 70], 74],
  [[71, 75], 10],
  [[76, 85], 3],
];
const CEASED_REASONS: readonly (readonly [string, number])[] = [
  ['Informed choice', 60],
  ['Bilateral mastectomy', 25],
  ['Mental capacity', 10],
  ['Personal welfare', 5],
];
const LANGUAGES = ['Polish', 'Urdu', 'Punjabi', 'Romanian', 'Arabic', 'Bengali', 'Lithuanian', 'British Sign Language'];
const CANCEL_REASONS = [
  'Unable to attend on that day',
  'Unwell',
  'Work commitments',
  'Caring responsibilities',
  'On holiday',
  'Asked for a different location',
];
const PARTIAL_REASONS = [
  'Pain or discomfort: one view only',
  'Technical failure: right MLO not taken',
  'Unable to position: left CC only',
];
const NOT_SCREENED = [
  NOT_SCREENED_REASONS.pain,
  NOT_SCREENED_REASONS.symptomatic,
  NOT_SCREENED_REASONS.consent_withdrawn,
  NOT_SCREENED_REASONS.health,
  NOT_SCREENED_REASONS.recent_mammogram,
];

interface ItemSpec {
  kind: string;
  side?: Side | null;
  value?: string | null;
  details?: string;
  source: Source;
}

/** A record item row, with its category taken from ITEM_KINDS and its side and value checked against the kind. */
function itemRow(
  rng: Random,
  participantId: string,
  spec: ItemSpec,
  sourceDate: IsoDate,
  today: IsoDate,
): Insertable<Tables['record_item']> {
  const kind = itemKind(spec.kind);
  if (!kind) throw new Error(`Unknown record item kind ${spec.kind}`);
  if (kind.side === 'required' && !spec.side) throw new Error(`${spec.kind} needs a side`);
  if (kind.side === 'none' && spec.side) throw new Error(`${spec.kind} has no side`);
  if (kind.value && !spec.value) throw new Error(`${spec.kind} needs a value`);
  const recordedOn = minDate(addDays(sourceDate, rng.int(0, 5)), addDays(today, -1));
  return {
    id: rng.uuid(),
    participant_id: participantId,
    category: kind.category,
    kind: kind.kind,
    side: spec.side ?? null,
    value: spec.value ?? null,
    details: spec.details ?? '',
    temporary_until: null,
    source: spec.source,
    source_date: sourceDate,
    recorded_at: at(recordedOn, rng.int(8 * 60, 17 * 60)),
    recorded_by: null,
    replaces_id: null,
    removed_reason: null,
  };
}

function recordItemsFor(rng: Random, ceasedReason: string | null): ItemSpec[] {
  const items: ItemSpec[] = [];
  const leftOrRight = (): Side => (rng.chance(0.5) ? 'left' : 'right');
  if (ceasedReason === 'Bilateral mastectomy') {
    items.push({ kind: 'mastectomy', side: 'bilateral', source: rng.pick(['gp', 'epr'] as const) });
  } else if (rng.chance(0.01)) {
    items.push({ kind: 'mastectomy', side: leftOrRight(), source: rng.pick(['gp', 'epr', 'bs_select'] as const) });
  }
  if (rng.chance(0.02)) {
    items.push({
      kind: 'implants',
      side: rng.chance(0.85) ? 'bilateral' : leftOrRight(),
      details: rng.chance(0.3) ? 'Cosmetic implants: Eklund (implant displaced) views needed' : '',
      source: rng.pick(['participant', 'gp', 'staff'] as const),
    });
  }
  if (rng.chance(0.01)) {
    items.push({
      kind: 'previous_breast_cancer',
      side: rng.chance(0.8) ? leftOrRight() : null,
      source: rng.pick(['gp', 'epr', 'bs_select'] as const),
    });
  }
  if (rng.chance(0.005)) {
    items.push({ kind: 'symptomatic_treatment', side: rng.chance(0.7) ? leftOrRight() : null, source: 'epr' });
  }
  if (rng.chance(0.008)) {
    items.push({
      kind: 'wheelchair',
      details: rng.pick(['Uses her own wheelchair', 'Needs level access and a hoist transfer', 'Cannot stand unaided']),
      source: rng.pick(['participant', 'staff', 'gp'] as const),
    });
  }
  if (rng.chance(0.0015)) {
    items.push({ kind: 'hearing', details: 'Hard of hearing: face her when speaking', source: 'participant' });
  }
  if (rng.chance(0.0015)) {
    items.push({
      kind: 'learning_disability',
      details: 'Comes with her support worker',
      source: rng.pick(['gp', 'staff'] as const),
    });
  }
  if (rng.chance(0.001)) {
    items.push({ kind: 'chaperone', details: 'Prefers a chaperone to be present', source: 'participant' });
  }
  if (rng.chance(0.02)) {
    const kind = rng.weighted([
      ['easy_read', 25],
      ['large_print', 25],
      ['braille', 5],
      ['audio', 10],
      ['interpreter', 35],
    ] as const);
    const source = rng.pick(['participant', 'staff'] as const);
    items.push(kind === 'interpreter' ? { kind, value: rng.pick(LANGUAGES), source } : { kind, source });
  }
  return items;
}

// ---------------------------------------------------------------------------------------------------------------
// Dates and times.

function minDate(a: IsoDate, b: IsoDate): IsoDate {
  return a < b ? a : b;
}
function maxDate(a: IsoDate, b: IsoDate): IsoDate {
  return a > b ? a : b;
}
/** A timestamp in England's local time (PostgreSQL resolves GMT or BST for the day). */
function at(date: IsoDate, minuteOfDay: number): string {
  const m = Math.max(0, Math.min(24 * 60 - 1, Math.round(minuteOfDay)));
  return `${date} ${String(Math.floor(m / 60)).padStart(2, '0')}:${String(m % 60).padStart(2, '0')}:00 Europe/London`;
}
/** The nightly BS-Select feed's time on a date, as an ISO instant (UTC): for timestamps and provenance alike. */
function feedTime(date: IsoDate): string {
  return `${date}T02:00:00.000Z`;
}
function minutesOf(time: string): number {
  const [h, m] = time.split(':').map(Number);
  return (h ?? 0) * 60 + (m ?? 0);
}
/** 0 Sunday … 6 Saturday. */
function dayOfWeek(date: IsoDate): number {
  return (((daysBetween('1970-01-01', date) + 4) % 7) + 7) % 7;
}
/** Weeks since the Monday of 1970-01-05, so a week runs Monday to Sunday. */
function weekNumber(date: IsoDate): number {
  return Math.floor((daysBetween('1970-01-01', date) + 3) / 7);
}

// ---------------------------------------------------------------------------------------------------------------
// Batched inserts.

/**
 * A value as an SQL literal. The loader inlines its values rather than binding parameters: PGlite binds thousands of
 * parameters slowly, and inlining roughly halves the load time. Every value is generated in this file (never user
 * input); strings are quoted the standard way (quotes doubled), and a backslash or NUL, which no value here has, is
 * refused rather than trusted to a server setting.
 */
function literal(value: unknown): string {
  if (value === null || value === undefined) return 'null';
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new RangeError(`Not a finite number: ${value}`);
    return String(value);
  }
  if (typeof value === 'string') {
    if (/[\\\0]/.test(value)) throw new RangeError(`Refusing to inline ${JSON.stringify(value)}`);
    return `'${value.replaceAll("'", "''")}'`;
  }
  throw new TypeError(`Cannot inline a ${typeof value}`);
}

/** Collects rows and writes them BATCH_ROWS at a time, one multi-row insert each. */
class BatchWriter<T extends keyof Tables> {
  private rows: Insertable<Tables[T]>[] = [];
  count = 0;

  constructor(
    private readonly db: Db,
    private readonly table: T,
    private readonly options: { onFlush?: (count: number) => void; manual?: boolean } = {},
  ) {}

  get pending(): number {
    return this.rows.length;
  }

  /** Buffers a row; writes a full batch unless the writer is manual (its rows wait for rows they refer to). */
  async add(row: Insertable<Tables[T]>): Promise<void> {
    this.rows.push(row);
    if (!this.options.manual && this.rows.length >= BATCH_ROWS) await this.flush();
  }

  async flush(): Promise<void> {
    const rows = this.rows;
    this.rows = [];
    const columns = rows.length > 0 ? Object.keys(rows[0]!) : [];
    const head = `insert into ${this.table} (${columns.join(', ')}) values `;
    for (let from = 0; from < rows.length; from += BATCH_ROWS) {
      const batch = rows.slice(from, from + BATCH_ROWS);
      const values = batch.map((row) => {
        const record = row as Record<string, unknown>;
        if (Object.keys(record).length !== columns.length || !columns.every((c) => c in record))
          throw new Error(`${this.table} rows differ in their columns`);
        return `(${columns.map((c) => literal(record[c])).join(', ')})`;
      });
      await sql.raw(head + values.join(',\n')).execute(this.db);
      this.count += batch.length;
      this.options.onFlush?.(this.count);
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// The load.

interface Clinic {
  id: string;
  date: IsoDate;
  /** Screening clinics start at CLINIC_STARTS with SLOT_MINUTES slots; assessment clinics say otherwise. */
  startsAt?: string;
  slotMinutes?: number;
  siteId: string;
  locationId: string;
  accessible: boolean;
  slots: number;
}

interface Booking {
  id: string;
  clinic: Clinic;
  person: number;
  slotIndex: number;
  slotCount: number;
  status: AppointmentStatus;
  reason: string | null;
  bookedOn: IsoDate;
  /** Minute of the day it was booked. */
  bookedMinute: number;
  episodeId: string;
}

/** The appointment's version after its seeded history: one more for every status move after booking. */
const VERSION_AFTER: Record<AppointmentStatus, number> = {
  scheduled: 1,
  checked_in: 2,
  in_progress: 3,
  paused: 4,
  cancelled: 2,
  did_not_attend: 2,
  attended_not_screened: 3,
  screened: 4,
  partially_screened: 4,
};

/**
 * Loads a synthetic screening office into an empty, migrated database in one transaction, reproducibly from the
 * seed. Returns how many rows of each kind it wrote.
 */
export async function loadDemoOffice(db: Db, options: DemoOptions): Promise<DemoSummary> {
  const { seed, today } = options;
  const n = options.participants;
  if (!Number.isSafeInteger(n) || n < 1)
    throw new RangeError(`participants must be a whole number of 1 or more, got ${n}`);
  if (n > 800_000) throw new RangeError(`participants can be at most 800000 (the NHS number test range), got ${n}`);
  if (!isIsoDate(today)) throw new RangeError(`today must be a date in YYYY-MM-DD form, got ${JSON.stringify(today)}`);
  let last = '';
  const progress = (done: number, total: number, stage: string) => {
    const key = `${stage}:${done}/${total}`;
    if (key === last) return;
    last = key;
    options.onProgress?.(done, total, stage);
  };

  return db.transaction().execute(async (tx) => {
    const faker = new Faker({ locale: [en_GB, en, base] }); // fakerEN_GB, in an instance of our own
    faker.seed(seed);
    const rng = new Random(seed);

    // --- Office, practices, sites and locations ---------------------------------------------------------------
    progress(0, 1, 'reference');
    await tx.insertInto('screening_office').values(DEMO_OFFICE).execute();

    const streetsByTown = TOWNS.map(() => Array.from({ length: 60 }, () => faker.location.street()));
    const practiceCodes = new Set<string>();
    const practices: { code: string; town: number; outcode: string }[] = [];
    const practiceRows: Insertable<Tables['gp_practice']>[] = [];
    for (let i = 0; i < 30; i++) {
      let code: string;
      do code = `Y9${String(rng.int(0, 9999)).padStart(4, '0')}`;
      while (practiceCodes.has(code));
      practiceCodes.add(code);
      const town = i < TOWNS.length ? i : rng.weighted(TOWN_WEIGHTS);
      const outcode = rng.pick(TOWNS[town]!.outcodes);
      practices.push({ code, town, outcode });
      practiceRows.push({
        ods_code: code,
        name: `${faker.location.street()} ${rng.pick(PRACTICE_SUFFIXES)}`,
        postcode: postcode(rng, outcode),
        bso_code: DEMO_OFFICE.code,
        mesh_mailbox: `${code}OT001`,
      });
    }
    await tx.insertInto('gp_practice').values(practiceRows).execute();
    await tx
      .insertInto('site')
      .values(
        SITES.map((s) => ({ id: s.id, bso_code: DEMO_OFFICE.code, name: s.name, kind: s.kind, ae_title: s.aeTitle })),
      )
      .execute();
    const locations = [...STATIC_LOCATIONS, ...MOBILE_LOCATIONS];
    await tx
      .insertInto('location')
      .values(
        locations.map((l) => ({
          id: l.id,
          bso_code: DEMO_OFFICE.code,
          name: l.name,
          address: l.address,
          postcode: postcode(rng, l.outcode),
          wheelchair_accessible: l.accessible,
          static_site_id: l.staticSiteId,
        })),
      )
      .execute();
    progress(1, 1, 'reference');

    // --- Participants, their record items and a few demographic changes ---------------------------------------
    const loadedOn = addDays(today, -rng.int(300, 400)); // when BS-Select first sent the cohort
    const loadedAt = feedTime(loadedOn);
    const ids: string[] = new Array<string>(n);
    const dobs: IsoDate[] = new Array<IsoDate>(n);
    // Birthdays that matter, as ISO strings so later checks are string comparisons (fast for 250,000 people).
    const turns50: IsoDate[] = new Array<IsoDate>(n);
    const turns53: IsoDate[] = new Array<IsoDate>(n);
    const turns71: IsoDate[] = new Array<IsoDate>(n);
    /** The last day she could have been screened: today, or the day she died or was ceased. */
    const lastDay: IsoDate[] = new Array<IsoDate>(n);
    const bookable = new Uint8Array(n);
    const practiceOf: string[] = new Array<string>(n);
    const needs2 = new Uint8Array(n);
    const wheelchair = new Uint8Array(n);

    // Items and changes refer to participants, so they are written just after each batch of participants.
    const people = new BatchWriter(tx, 'participant', { onFlush: (c) => progress(c, n, 'participants'), manual: true });
    const itemWriter = new BatchWriter(tx, 'record_item', { manual: true });
    const changeWriter = new BatchWriter(tx, 'participant_change', { manual: true });
    const flushPeople = async () => {
      await people.flush();
      await itemWriter.flush();
      await changeWriter.flush();
    };
    const nhsNumbers = testRangeNhsNumbers(rng.int(0, 1_000_000 - Math.ceil(n * 1.15) - 1000));
    const leapYears: number[] = [];
    const todayYear = Number(today.slice(0, 4));
    for (let y = todayYear - 70; y <= todayYear - 50; y++) if (isLeapYear(y)) leapYears.push(y);

    progress(0, n, 'participants');
    for (let i = 0; i < n; i++) {
      const id = rng.uuid();
      const next = nhsNumbers.next();
      if (next.done) throw new RangeError('Ran out of test-range NHS numbers');
      const nhsNumber = next.value;
      const givenName = faker.person.firstName('female');
      const familyName = faker.person.lastName();

      let dob: IsoDate;
      if (rng.chance(0.002)) {
        dob = `${rng.pick(leapYears)}-02-29`;
      } else {
        const [lo, hi] = rng.weighted(AGE_BANDS);
        dob = addDays(addYears(today, -rng.int(lo, hi)), -rng.int(0, 364));
      }
      const age = ageOn(dob, today);

      const practice = rng.pick(practices);
      const town = rng.chance(0.85) ? practice.town : rng.weighted(TOWN_WEIGHTS);
      const outcode = town === practice.town ? practice.outcode : rng.pick(TOWNS[town]!.outcodes);
      const street = `${rng.int(1, 180)} ${rng.pick(streetsByTown[town]!)}`;
      const inFlat = rng.chance(0.08);
      const addressLine1 = inFlat ? `Flat ${rng.int(1, 24)}` : street;
      const addressLine2 = inFlat ? street : null;
      const postcodeValue = postcode(rng, outcode);
      const phone = rng.chance(0.7)
        ? rng.chance(0.6)
          ? `07700 900${String(rng.int(0, 999)).padStart(3, '0')}`
          : `0113 496 0${String(rng.int(0, 999)).padStart(3, '0')}`
        : null;
      const email = rng.chance(0.35)
        ? `${givenName}.${familyName}${rng.int(1, 99)}@example.com`.toLowerCase().replace(/[^a-z0-9.@]/g, '')
        : null;

      const dead = age >= 45 && rng.chance(0.01);
      const dateOfDeath = dead ? addDays(today, -rng.int(20, 1000)) : null;
      const ceased = !dead && age >= 45 && rng.chance(0.01);
      const ceasedReason = ceased ? rng.weighted(CEASED_REASONS) : null;
      const ceasedOn = ceased ? maxDate(addDays(today, -rng.int(30, 2500)), addYears(dob, 45)) : null;
      const veryHighRisk = rng.chance(0.005);

      // Provenance: BS-Select gave the demographics; the participant told us her phone and email.
      const bsOn = addDays(loadedOn, -rng.int(0, 30));
      const bs: FieldProvenance = { source: 'bs_select', on: bsOn, at: loadedAt };
      const provenance: Record<string, FieldProvenance> = {
        given_name: bs,
        family_name: bs,
        date_of_birth: bs,
        address_line1: bs,
        postcode: bs,
        gp_practice_code: bs,
      };
      if (phone || email) {
        const told: FieldProvenance = { source: 'participant', on: addDays(bsOn, -rng.int(30, 900)), at: loadedAt };
        if (phone) provenance.phone = told;
        if (email) provenance.email = told;
      }
      // Changes since the first load each make a new version of the record, with a history row per field.
      let version = 1;
      let updatedAt = loadedAt;
      if (dateOfDeath) {
        const on = minDate(addDays(dateOfDeath, rng.int(1, 10)), today);
        const knownAtLoad = on <= loadedOn;
        provenance.date_of_death = { source: 'bs_select', on, at: knownAtLoad ? loadedAt : feedTime(on) };
        if (!knownAtLoad) {
          version++;
          updatedAt = feedTime(on);
          await changeWriter.add({
            participant_id: id,
            field: 'date_of_death',
            old_value: null,
            new_value: dateOfDeath,
            source: 'bs_select',
            source_date: on,
            reason: 'Death notified by BS-Select',
            changed_at: updatedAt,
            changed_by: null,
          });
        }
      }
      if (!dateOfDeath && rng.chance(0.02)) {
        // She moved: the previous address is kept in the change history.
        const on = addDays(today, -rng.int(10, 250));
        const changedAt = feedTime(on);
        version++;
        if (changedAt > updatedAt) updatedAt = changedAt;
        const oldPostcode = postcode(rng, rng.pick(rng.pick(TOWNS).outcodes));
        const oldLine1 = `${rng.int(1, 180)} ${rng.pick(rng.pick(streetsByTown))}`;
        provenance.address_line1 = { source: 'bs_select', on, at: changedAt };
        provenance.postcode = { source: 'bs_select', on, at: changedAt };
        for (const [field, oldValue, newValue] of [
          ['address_line1', oldLine1, addressLine1],
          ['postcode', oldPostcode, postcodeValue],
        ] as const) {
          await changeWriter.add({
            participant_id: id,
            field,
            old_value: oldValue,
            new_value: newValue,
            source: 'bs_select',
            source_date: on,
            reason: 'Change of address from BS-Select',
            changed_at: changedAt,
            changed_by: null,
          });
        }
      }

      await people.add({
        id,
        nhs_number: nhsNumber,
        given_name: givenName,
        family_name: familyName,
        date_of_birth: dob,
        date_of_death: dateOfDeath,
        sex: 'female',
        address_line1: addressLine1,
        address_line2: addressLine2,
        town: TOWNS[town]!.town,
        postcode: postcodeValue,
        phone,
        email,
        gp_practice_code: (practiceOf[i] = practice.code),
        bso_code: DEMO_OFFICE.code,
        ceased_reason: ceasedReason,
        ceased_on: ceasedOn,
        very_high_risk: veryHighRisk,
        provenance: JSON.stringify(provenance),
        version,
        created_at: loadedAt,
        updated_at: updatedAt,
      });

      const specs = recordItemsFor(rng, ceasedReason);
      const facts: ItemFact[] = [];
      const adultFrom = addYears(dob, 25);
      for (const spec of specs) {
        const sourceDate = maxDate(addDays(today, -rng.int(14, 3650)), adultFrom);
        await itemWriter.add(itemRow(rng, id, spec, minDate(sourceDate, addDays(today, -1)), today));
        facts.push({ kind: spec.kind });
      }

      ids[i] = id;
      dobs[i] = dob;
      turns50[i] = nthBirthday(dob, 50);
      turns53[i] = nthBirthday(dob, 53);
      turns71[i] = nthBirthday(dob, 71);
      lastDay[i] = dateOfDeath ?? ceasedOn ?? today;
      bookable[i] = dateOfDeath || ceasedReason ? 0 : 1;
      needs2[i] = slotsNeeded(facts, today) === 2 ? 1 : 0;
      wheelchair[i] = needsAccessibleLocation(facts, today) ? 1 : 0;
      if (people.pending >= BATCH_ROWS) await flushPeople();
    }
    await flushPeople();
    progress(n, n, 'participants');

    // --- Clinics: 8 weeks of weekdays, one clinic a day at each site -------------------------------------------
    const clinics: Clinic[] = [];
    const firstDay = addDays(today, -28);
    const slotsPerClinic = slotCount({ startsAt: CLINIC_STARTS, endsAt: CLINIC_ENDS, slotMinutes: SLOT_MINUTES });
    for (let d = 0; d < 56; d++) {
      const date = addDays(firstDay, d);
      const dow = dayOfWeek(date);
      if (dow === 0 || dow === 6) continue;
      const week = weekNumber(date);
      for (const site of SITES) {
        let location: LocationDef;
        if (site.kind === 'static') {
          location = STATIC_LOCATIONS.find((l) => l.staticSiteId === site.id)!;
        } else {
          const offset = site.id === 'DMO-MOBILE-1' ? 0 : 3;
          location =
            MOBILE_LOCATIONS[
              (((week + offset) % MOBILE_LOCATIONS.length) + MOBILE_LOCATIONS.length) % MOBILE_LOCATIONS.length
            ]!;
        }
        clinics.push({
          id: rng.uuid(),
          date,
          siteId: site.id,
          locationId: location.id,
          accessible: location.accessible,
          slots: slotsPerClinic,
        });
      }
    }
    // Assessment clinics: Tuesday and Thursday mornings at the hospital breast unit.
    const assessmentClinics: Clinic[] = [];
    const assessmentSite = SITES[0]!;
    const assessmentLocation = STATIC_LOCATIONS[0]!;
    for (let d = 0; d < 56; d++) {
      const date = addDays(firstDay, d);
      if (dayOfWeek(date) !== 2 && dayOfWeek(date) !== 4) continue;
      assessmentClinics.push({
        id: rng.uuid(),
        date,
        siteId: assessmentSite.id,
        locationId: assessmentLocation.id,
        accessible: assessmentLocation.accessible,
        startsAt: ASSESSMENT_STARTS,
        slotMinutes: ASSESSMENT_SLOT_MINUTES,
        slots: slotCount({
          startsAt: ASSESSMENT_STARTS,
          endsAt: ASSESSMENT_ENDS,
          slotMinutes: ASSESSMENT_SLOT_MINUTES,
        }),
      });
    }
    progress(0, clinics.length, 'clinics');
    const clinicWriter = new BatchWriter(tx, 'clinic');
    for (const c of clinics) {
      await clinicWriter.add({
        id: c.id,
        site_id: c.siteId,
        location_id: c.locationId,
        clinic_date: c.date,
        starts_at: CLINIC_STARTS,
        ends_at: CLINIC_ENDS,
        slot_minutes: SLOT_MINUTES,
        status: 'open',
        created_at: at(addDays(firstDay, -56), 9 * 60),
        purpose: 'screening',
      });
    }
    for (const c of assessmentClinics) {
      await clinicWriter.add({
        id: c.id,
        site_id: c.siteId,
        location_id: c.locationId,
        clinic_date: c.date,
        starts_at: ASSESSMENT_STARTS,
        ends_at: ASSESSMENT_ENDS,
        slot_minutes: ASSESSMENT_SLOT_MINUTES,
        status: 'open',
        created_at: at(addDays(firstDay, -56), 9 * 60),
        purpose: 'assessment',
      });
    }
    await clinicWriter.flush();
    progress(clinics.length, clinics.length, 'clinics');

    // --- Who is booked where ------------------------------------------------------------------------------------
    const lastClinicDay = clinics[clinics.length - 1]?.date ?? today;
    const pool: number[] = [];
    for (let i = 0; i < n; i++) {
      // Aged 50 to 70 throughout the eight weeks, alive and not ceased.
      if (bookable[i] && turns50[i]! <= firstDay && turns71[i]! > lastClinicDay) pool.push(i);
    }
    rng.shuffle(pool);
    const cap = Math.floor(pool.length * MAX_BOOKED_SHARE);
    const cancelShare = (c: Clinic) => (c.date < today ? 0.1 / 0.9 : c.date === today ? 0 : 0.05 / 0.95);
    const planned = clinics.reduce((sum, c) => sum + (c.slots * 0.875 * (1 + cancelShare(c))) / 1.04, 0);
    const scale = Math.min(1, cap / Math.max(1, planned));

    let nextInPool = 0;
    const deferred: number[] = [];
    const used = { count: 0 };
    /** The next woman who can go into `run` free slots at this clinic (wheelchair users only where accessible). */
    const take = (clinic: Clinic, run: number): number | undefined => {
      if (used.count >= cap) return undefined;
      const fits = (p: number) => (needs2[p] ? 2 : 1) <= run && (!wheelchair[p] || clinic.accessible);
      const d = deferred.findIndex(fits);
      if (d >= 0) {
        used.count++;
        return deferred.splice(d, 1)[0];
      }
      while (nextInPool < pool.length) {
        const p = pool[nextInPool++]!;
        if (fits(p)) {
          used.count++;
          return p;
        }
        deferred.push(p);
      }
      return undefined;
    };

    const bookings: Booking[] = [];
    const bookedOnFor = (clinic: Clinic): IsoDate => {
      const on = addDays(clinic.date, -rng.int(21, 49));
      return on < today ? on : addDays(today, -rng.int(1, 7));
    };
    const book = (
      clinic: Clinic,
      person: number,
      slotIndex: number,
      status: AppointmentStatus,
      reason: string | null,
    ) => {
      const bookedOn = bookedOnFor(clinic);
      const booking: Booking = {
        id: rng.uuid(),
        clinic,
        person,
        slotIndex,
        slotCount: needs2[person] ? 2 : 1,
        status,
        reason,
        bookedOn,
        bookedMinute: rng.int(9 * 60, 16 * 60),
        episodeId: rng.uuid(),
      };
      bookings.push(booking);
      return booking;
    };
    progress(0, clinics.length, 'bookings');
    clinics.forEach((clinic, ci) => {
      const fill = (0.85 + rng.next() * 0.05) * scale;
      const past = clinic.date < today;
      const isToday = clinic.date === today;
      for (let slot = 0; slot < clinic.slots;) {
        if (!rng.chance(fill)) {
          slot++;
          continue;
        }
        const person = take(clinic, clinic.slots - slot);
        if (person === undefined) break;
        let status: AppointmentStatus = 'scheduled';
        let reason: string | null = null;
        if (past) {
          const r = rng.next();
          if (r < 0.7 / 0.9) {
            const kind = rng.next();
            if (kind < 0.03) {
              status = 'partially_screened';
              reason = rng.pick(PARTIAL_REASONS);
            } else if (kind < 0.06) {
              status = 'attended_not_screened';
              reason = rng.pick(NOT_SCREENED);
            } else status = 'screened';
          } else status = 'did_not_attend';
        } else if (isToday && slot < 3) {
          status = 'checked_in';
        }
        const held = book(clinic, person, slot, status, reason);
        // Someone who had this time before cancelled, and the slot went to the woman above.
        if (rng.chance(cancelShare(clinic))) {
          const other = take(clinic, clinic.slots);
          if (other !== undefined) {
            const count = needs2[other] ? 2 : 1;
            book(clinic, other, Math.min(slot, clinic.slots - count), 'cancelled', rng.pick(CANCEL_REASONS));
          }
        }
        slot += held.slotCount;
      }
      if (ci % 20 === 19) progress(ci + 1, clinics.length, 'bookings');
    });
    progress(clinics.length, clinics.length, 'bookings');

    // --- Reading: images, reads, results; technical recalls and assessment booked as follow-ups ------------------
    const readers = options.readerIds ?? [];
    const plans = new Map<Booking, ExamPlan>();
    const assessments = new Map<Booking, { followUp: Booking | null; plan: AssessmentPlan | null }>();
    const followUps: Booking[] = [];
    const followUpOf = new Map<Booking, Booking>();
    if (readers.length >= 3) {
      const taken = new Map<string, Set<number>>();
      for (const b of bookings) {
        if (b.status === 'cancelled') continue;
        const set = taken.get(b.clinic.id) ?? new Set<number>();
        for (let s = 0; s < b.slotCount; s++) set.add(b.slotIndex + s);
        taken.set(b.clinic.id, set);
      }
      /** Books her into the first of `candidates` with room, as the hub's booking would. */
      const bookFollowUp = (exam: Booking, candidates: readonly Clinic[]): Booking | null => {
        for (const clinic of candidates) {
          const set = taken.get(clinic.id) ?? new Set<number>();
          for (let slot = 0; slot + exam.slotCount <= clinic.slots; slot++) {
            if (Array.from({ length: exam.slotCount }, (_, k) => set.has(slot + k)).some(Boolean)) continue;
            for (let k = 0; k < exam.slotCount; k++) set.add(slot + k);
            taken.set(clinic.id, set);
            const followUp: Booking = {
              id: rng.uuid(),
              clinic,
              person: exam.person,
              slotIndex: slot,
              slotCount: exam.slotCount,
              status: clinic.date < today ? 'screened' : 'scheduled',
              reason: null,
              bookedOn: minDate(addDays(exam.clinic.date, 3), today),
              bookedMinute: rng.int(9 * 60, 16 * 60),
              episodeId: exam.episodeId,
            };
            followUps.push(followUp);
            followUpOf.set(exam, followUp);
            return followUp;
          }
        }
        return null;
      };
      for (const b of bookings) {
        if ((b.status !== 'screened' && b.status !== 'partially_screened') || b.clinic.date >= today) continue;
        const mobile = SITES.find((site) => site.id === b.clinic.siteId)?.kind === 'mobile';
        const plan = planExam(rng, b.clinic.date, mobile, today, readers.length);
        plans.set(b, plan);
        if (plan.result?.result === 'technical_recall') {
          const from = maxDate(addDays(plan.result.issuedOn, 1), today);
          bookFollowUp(
            b,
            clinics.filter(
              (c) => c.siteId === b.clinic.siteId && c.date > from && (!wheelchair[b.person] || c.accessible),
            ),
          );
        } else if (plan.result?.result === 'recall_assessment') {
          const by = addDays(b.clinic.date, 21);
          const followUp = bookFollowUp(
            b,
            assessmentClinics.filter((c) => c.date > plan.result!.issuedOn && c.date <= by),
          );
          const assessed = followUp && followUp.clinic.date < today ? followUp.clinic.date : null;
          assessments.set(b, { followUp, plan: assessed ? planAssessment(rng, assessed, today) : null });
        }
      }
    }

    // --- Screening history: past episodes for everyone, and the episode each appointment belongs to ------------
    const bookingOf = new Map<number, Booking>();
    for (const b of bookings) bookingOf.set(b.person, b);
    const episodeWriter = new BatchWriter(tx, 'episode');
    const screenedBefore = new Uint8Array(n);
    progress(0, n, 'episodes');
    for (let i = 0; i < n; i++) {
      if (i % 5000 === 4999) progress(i + 1, n, 'episodes');
      const [turn50, turn53, turn71] = [turns50[i]!, turns53[i]!, turns71[i]!];
      const booking = bookingOf.get(i);
      let last: IsoDate | null;
      if (booking) {
        // Due now: last screened about three years before this appointment (a few later, a few never).
        const r = rng.next();
        last =
          r < 0.92
            ? addDays(addMonths(booking.clinic.date, -36), rng.int(-20, 45))
            : r < 0.97
              ? addDays(booking.clinic.date, -rng.int(4 * 365, 6 * 365))
              : null;
        if (last && last >= booking.bookedOn) last = addDays(booking.bookedOn, -400);
      } else {
        const end = lastDay[i]!;
        const r = rng.next();
        last =
          r < 0.7
            ? addDays(end, -rng.int(365, 3 * 365 - 20))
            : r < 0.85
              ? addDays(end, -rng.int(3 * 365 + 20, 6 * 365))
              : null;
      }
      // About 3 in 10 women not booked now did not come to their last invitation (uptake is about 70 %): a round
      // 3 years after her last screen, or a first call if she was never screened, that she did not attend.
      const invitedOn = !booking
        ? last
          ? addDays(addMonths(last, 36), rng.int(-30, 30))
          : addDays(turn50, rng.int(60, 900))
        : null;
      if (
        invitedOn &&
        rng.chance(0.3) &&
        invitedOn >= turn50 &&
        invitedOn < turn71 &&
        invitedOn < addDays(today, -200) &&
        invitedOn < lastDay[i]!
      ) {
        await episodeWriter.add({
          id: rng.uuid(),
          participant_id: ids[i]!,
          bso_code: DEMO_OFFICE.code,
          episode_type: last ? 'R' : 'C',
          opened_on: addDays(invitedOn, -rng.int(21, 56)),
          screened_on: null,
          closed_on: addDays(invitedOn, rng.int(1, 60)),
          end_code: 'DNA',
          final_action: 'RR',
        });
      }
      // The last screen and the round before it (routine screening runs from the 50th to the 71st birthday).
      let episodes = 0;
      while (last && episodes < 2 && last >= turn50) {
        if (last >= turn71) {
          last = addMonths(last, -36);
          continue;
        }
        const previous = addDays(addMonths(last, -36), rng.int(-30, 30));
        const first = episodes === 1 || previous < turn50;
        const attended = episodes === 0 || rng.chance(0.95);
        const closed = minDate(addDays(last, rng.int(7, 21)), today);
        await episodeWriter.add({
          id: rng.uuid(),
          participant_id: ids[i]!,
          bso_code: DEMO_OFFICE.code,
          episode_type: first && last < turn53 ? 'C' : 'R',
          opened_on: addDays(last, -rng.int(21, 56)),
          screened_on: attended ? last : null,
          closed_on: closed,
          end_code: attended ? 'SC' : 'DNA',
          final_action: 'RR',
        });
        if (attended) screenedBefore[i] = 1;
        episodes++;
        last = previous;
      }
      if (booking) {
        const { status, clinic } = booking;
        const screened = status === 'screened' || status === 'partially_screened';
        const plan = plans.get(booking);
        const assessment = assessments.get(booking)?.plan;
        // Read and resulted: a normal result closes the episode; recall to assessment closes it at the outcome.
        const closedOn = !plan
          ? screened || status === 'did_not_attend'
            ? clinic.date
            : null
          : plan.result?.result === 'routine_recall'
            ? plan.result.issuedOn
            : (assessment?.decidedOn ?? null);
        const closed = closedOn !== null;
        await episodeWriter.add({
          id: booking.episodeId,
          participant_id: ids[i]!,
          bso_code: DEMO_OFFICE.code,
          episode_type: screenedBefore[i] ? 'R' : 'C',
          opened_on: booking.bookedOn,
          screened_on: screened ? clinic.date : null,
          closed_on: closedOn,
          end_code: closed ? (screened ? 'SC' : 'DNA') : null,
          final_action: closed ? (assessment?.finalAction ?? 'RR') : null,
        });
      }
    }
    await episodeWriter.flush();
    progress(n, n, 'episodes');

    // --- Appointments, the slots they hold, and the history of each ----------------------------------------------
    const allBookings = [...bookings, ...followUps];
    const total = allBookings.length;
    progress(0, total, 'appointments');
    const appointmentWriter = new BatchWriter(tx, 'appointment', {
      onFlush: (c) => progress(c, total, 'appointments'),
    });
    const slotWriter = new BatchWriter(tx, 'appointment_slot');
    const eventWriter = new BatchWriter(tx, 'appointment_status_event');
    const accession = (k: number) => 'SH' + String(k).padStart(8, '0'); // as the hub's nextAccessionNumber
    const studyUid = (b: Booking) => `2.25.${BigInt('0x' + b.id.replaceAll('-', '')).toString()}`;
    for (const [k, b] of allBookings.entries()) {
      const clinic = b.clinic;
      const imagesOn = plans.get(b)?.imagesOn ?? null;
      await appointmentWriter.add({
        id: b.id,
        clinic_id: clinic.id,
        participant_id: ids[b.person]!,
        episode_id: b.episodeId,
        slot_index: b.slotIndex,
        slot_count: b.slotCount,
        status: b.status,
        status_reason: b.reason,
        accession_number: accession(k + 1),
        rescheduled_from: null,
        booked_at: at(b.bookedOn, b.bookedMinute),
        booked_by: null,
        version: VERSION_AFTER[b.status],
        study_instance_uid: imagesOn ? studyUid(b) : null,
        images_available_at: imagesOn
          ? at(imagesOn, imagesOn === clinic.date ? 17 * 60 + rng.int(0, 120) : rng.int(7 * 60, 10 * 60))
          : null,
      });
    }
    await appointmentWriter.flush();
    for (const b of allBookings) {
      if (b.status === 'cancelled') continue;
      for (let s = 0; s < b.slotCount; s++)
        await slotWriter.add({ clinic_id: b.clinic.id, slot_index: b.slotIndex + s, appointment_id: b.id });
    }
    await slotWriter.flush();
    progress(0, total, 'status history');
    for (const b of allBookings) {
      const clinic = b.clinic;
      const event = (
        status: AppointmentStatus,
        when: string,
        reason: string | null = null,
        reInvite: boolean | null = null,
      ) =>
        eventWriter.add({
          appointment_id: b.id,
          status,
          reason,
          re_invite: reInvite,
          at: when,
          by_user: null,
          via: 'seed',
        });
      const slotMinutes = clinic.slotMinutes ?? SLOT_MINUTES;
      const start = minutesOf(slotTime({ startsAt: clinic.startsAt ?? CLINIC_STARTS, slotMinutes }, b.slotIndex));
      const end = start + b.slotCount * slotMinutes;
      await event('scheduled', at(b.bookedOn, b.bookedMinute));
      switch (b.status) {
        case 'scheduled':
          break;
        case 'checked_in':
          await event('checked_in', at(clinic.date, start - rng.int(2, 15)));
          break;
        case 'cancelled': {
          const last = minDate(addDays(clinic.date, -1), today);
          const on = last > b.bookedOn ? addDays(b.bookedOn, rng.int(1, daysBetween(b.bookedOn, last))) : b.bookedOn;
          const minute = on === b.bookedOn ? b.bookedMinute + rng.int(5, 50) : rng.int(9 * 60, 17 * 60);
          await event('cancelled', at(on, minute), b.reason, rng.chance(0.8));
          break;
        }
        case 'did_not_attend':
          await event('did_not_attend', at(clinic.date, minutesOf(CLINIC_ENDS) + rng.int(5, 60)));
          break;
        case 'attended_not_screened':
          await event('checked_in', at(clinic.date, start - rng.int(2, 15)));
          await event('attended_not_screened', at(clinic.date, start + rng.int(1, 8)), b.reason);
          break;
        default:
          await event('checked_in', at(clinic.date, start - rng.int(2, 15)));
          await event('in_progress', at(clinic.date, start + rng.int(0, 3)));
          await event(b.status, at(clinic.date, end - rng.int(0, 3)), b.reason);
      }
    }
    await eventWriter.flush();
    if (total > 0) await sql`select setval('accession_number_seq', ${total})`.execute(tx);
    progress(total, total, 'status history');

    // --- Reads, results and assessment --------------------------------------------------------------------------
    progress(0, plans.size, 'reading');
    const readWriter = new BatchWriter(tx, 'reading_opinion');
    const resultWriter = new BatchWriter(tx, 'exam_result');
    const procedureWriter = new BatchWriter(tx, 'assessment_procedure');
    const outcomeWriter = new BatchWriter(tx, 'assessment_outcome');
    const communicationWriter = new BatchWriter(tx, 'communication');
    /**
     * Her letter and her GP's message about a result or an outcome decided on `on`: those of the last
     * RECENT_COMMUNICATION_DAYS days still queued (for the demo's print run and MESH worker), older ones sent and
     * acknowledged. Older letters' words were not kept (as for letters sent before Screening Hub), so they have no PDF.
     */
    const communicate = async (b: Booking, kind: CommunicationKind, on: IsoDate, appointmentId: string | null) => {
      const queued = daysBetween(on, today) <= RECENT_COMMUNICATION_DAYS;
      const sentOn = addDays(on, 1);
      const common = {
        participant_id: ids[b.person]!,
        episode_id: b.episodeId,
        appointment_id: appointmentId,
        kind,
        language: null,
        content: null,
        content_sha256: null,
        attempts: queued ? 0 : 1,
        next_attempt_at: null,
        last_error: null,
        created_at: at(on, rng.int(9 * 60, 17 * 60)),
        sent_at: queued ? null : at(sentOn, rng.int(9 * 60, 11 * 60)),
      };
      await communicationWriter.add({
        ...common,
        id: rng.uuid(),
        recipient: 'participant',
        channel: 'letter',
        gp_practice_code: null,
        format: queued ? null : 'standard',
        status: queued ? 'queued' : 'sent',
        mesh_message_id: null,
        delivered_at: null,
        acknowledged_at: null,
      });
      await communicationWriter.add({
        ...common,
        id: rng.uuid(),
        recipient: 'gp',
        channel: 'mesh',
        gp_practice_code: practiceOf[b.person]!,
        format: null,
        status: queued ? 'queued' : 'acknowledged',
        mesh_message_id: queued ? null : `DEMO${rng.uuid().replaceAll('-', '').slice(0, 16).toUpperCase()}`,
        delivered_at: queued ? null : at(sentOn, rng.int(12 * 60, 14 * 60)),
        acknowledged_at: queued ? null : at(sentOn, rng.int(15 * 60, 17 * 60)),
      });
    };
    for (const [b, plan] of plans) {
      for (const r of plan.reads) {
        await readWriter.add({
          id: rng.uuid(),
          appointment_id: b.id,
          episode_id: b.episodeId,
          read_number: r.readNumber,
          reader_id: readers[r.reader]!,
          opinion: r.opinion,
          details: JSON.stringify(r.details),
          comment: '',
          read_at: at(r.on, rng.int(8 * 60, 18 * 60)),
        });
      }
      if (!plan.result) continue;
      const followUp = followUpOf.get(b) ?? null;
      const needsFollowUp = plan.result.result !== 'routine_recall';
      await resultWriter.add({
        appointment_id: b.id,
        episode_id: b.episodeId,
        result: plan.result.result,
        next_test_due: plan.result.nextTestDue,
        follow_up_appointment_id: followUp?.id ?? null,
        follow_up_problem:
          needsFollowUp && !followUp
            ? plan.result.result === 'recall_assessment'
              ? 'No assessment clinic had room within 21 days of screening'
              : 'No screening clinic at this site had room'
            : null,
        issued_at: at(plan.result.issuedOn, rng.int(9 * 60, 17 * 60)),
        issued_by: null,
      });
      await communicate(b, RESULT_COMMUNICATION[plan.result.result], plan.result.issuedOn, b.id);
      const assessment = assessments.get(b)?.plan;
      if (!assessment) continue;
      for (const p of assessment.procedures) {
        await procedureWriter.add({
          id: rng.uuid(),
          episode_id: b.episodeId,
          procedure: p.procedure,
          side: p.side,
          performed_on: followUp!.clinic.date,
          b_code: p.bCode,
          notes: '',
          recorded_by: null,
        });
      }
      await outcomeWriter.add({
        id: rng.uuid(),
        episode_id: b.episodeId,
        outcome: assessment.outcome,
        side: assessment.side,
        size_mm: assessment.sizeMm,
        grade: assessment.grade,
        early_recall_months: assessment.earlyRecallMonths,
        referred_to_treatment: assessment.finalAction === 'MT',
        treatment_provider: assessment.finalAction === 'MT' ? 'Demo General Hospital breast surgery' : null,
        decided_on: assessment.decidedOn,
        recorded_by: null,
      });
      await communicate(b, 'assessment_outcome', assessment.decidedOn, null);
    }
    for (const writer of [readWriter, resultWriter, procedureWriter, outcomeWriter]) await writer.flush();
    await communicationWriter.flush();
    progress(plans.size, plans.size, 'reading');

    return {
      participants: n,
      practices: practiceRows.length,
      sites: SITES.length,
      locations: locations.length,
      clinics: clinics.length + assessmentClinics.length,
      appointments: total,
      episodes: episodeWriter.count,
      items: itemWriter.count,
    };
  });
}
