import { testRangeNhsNumbers } from '../../src/pathway/nhs-number.js';
import { createUser, type StaffUser } from '../../src/store/accounts.js';
import type { Actor } from '../../src/store/audit.js';
import type { Db } from '../../src/store/database.js';

/** A small, hand-made screening office for tests: every value here is one a test can rely on. */
export const TODAY = '2026-11-23';
export const PASSWORD = 'correct horse battery';

const numbers = testRangeNhsNumbers(123_456);
export const nextNhsNumber = () => numbers.next().value as string;

export interface Clinics {
  accessibleClinic: string;
  inaccessibleClinic: string;
  pastClinic: string;
  tomorrowClinic: string;
}

export interface Office {
  users: Record<'admin' | 'mammographer' | 'reader' | 'support', StaffUser>;
  actor: Actor;
}

export async function smallOffice(db: Db): Promise<Office> {
  await db.insertInto('screening_office').values({ code: 'TST', name: 'Test Breast Screening Office' }).execute();
  await db
    .insertInto('gp_practice')
    .values([
      { ods_code: 'Y00001', name: 'Riverside Surgery', postcode: 'LS1 4AP', bso_code: 'TST' },
      { ods_code: 'Y00002', name: 'Hillside Medical Centre', postcode: 'LS6 2AB', bso_code: 'TST' },
    ])
    .execute();
  await db
    .insertInto('site')
    .values([
      { id: 'static-1', bso_code: 'TST', name: 'Central Breast Unit', kind: 'static', ae_title: null },
      { id: 'mobile-1', bso_code: 'TST', name: 'Mobile Unit 1', kind: 'mobile', ae_title: 'MOBILE1' },
    ])
    .execute();
  await db
    .insertInto('location')
    .values([
      {
        id: 'central',
        bso_code: 'TST',
        name: 'Central Breast Unit',
        address: '1 Infirmary Street',
        postcode: 'LS1 3EX',
        wheelchair_accessible: true,
        static_site_id: 'static-1',
      },
      {
        id: 'car-park',
        bso_code: 'TST',
        name: 'Supermarket car park',
        address: 'Ring Road',
        postcode: 'LS12 1AA',
        wheelchair_accessible: false,
        static_site_id: null,
      },
    ])
    .execute();
  const [admin, mammographer, reader, support] = await Promise.all([
    createUser(db, { username: 'admin', displayName: 'Alex Admin', role: 'admin', password: PASSWORD }),
    createUser(db, {
      username: 'mammographer',
      displayName: 'Morgan Mammographer',
      role: 'mammographer',
      password: PASSWORD,
    }),
    createUser(db, { username: 'reader', displayName: 'Riley Reader', role: 'film_reader', password: PASSWORD }),
    createUser(db, { username: 'support', displayName: 'Sam Support', role: 'support', password: PASSWORD }),
  ]);
  return {
    users: { admin, mammographer, reader, support },
    actor: { userId: admin.id, username: 'admin', ip: '127.0.0.1' },
  };
}

let clinicCalls = 0;

/** Four new one-hour clinics of 6 slots each (a new start time each call, so tests sharing a database never meet). */
export async function newClinics(db: Db): Promise<Clinics> {
  // Starts 23 minutes apart from 01:00, so 40 calls never share a start time (unique per site and day).
  const start = 60 + 23 * (clinicCalls++ % 40);
  const hhmm = (m: number) => `${String(Math.floor(m / 60)).padStart(2, '0')}:${String(m % 60).padStart(2, '0')}`;
  const [hour, end] = [hhmm(start), hhmm(start + 60)];
  const clinic = (site_id: string, location_id: string, clinic_date: string) =>
    db
      .insertInto('clinic')
      .values({ site_id, location_id, clinic_date, starts_at: hour, ends_at: end, slot_minutes: 10 })
      .returning('id')
      .executeTakeFirstOrThrow()
      .then((r) => r.id);
  return {
    accessibleClinic: await clinic('static-1', 'central', TODAY),
    inaccessibleClinic: await clinic('mobile-1', 'car-park', TODAY),
    pastClinic: await clinic('static-1', 'central', '2026-11-16'),
    tomorrowClinic: await clinic('static-1', 'central', '2026-11-24'),
  };
}

export async function addParticipant(
  db: Db,
  overrides: Partial<{
    given_name: string;
    family_name: string;
    date_of_birth: string;
    postcode: string;
    date_of_death: string;
    ceased_reason: string;
    ceased_on: string;
  }> = {},
) {
  return db
    .insertInto('participant')
    .values({
      nhs_number: nextNhsNumber(),
      given_name: 'Jane',
      family_name: 'Testwoman',
      date_of_birth: '1966-05-14',
      address_line1: '2 Test Street',
      postcode: 'LS6 2AB',
      gp_practice_code: 'Y00001',
      bso_code: 'TST',
      provenance: JSON.stringify({
        postcode: { source: 'bs_select', on: '2026-01-02', at: '2026-01-02T09:00:00.000Z' },
      }),
      ...overrides,
    })
    .returning(['id', 'nhs_number', 'version'])
    .executeTakeFirstOrThrow();
}

export async function addItem(
  db: Db,
  participantId: string,
  kind: string,
  side: 'left' | 'right' | 'bilateral' | null = null,
) {
  const categories: Record<string, 'clinical' | 'access' | 'communication'> = {
    implants: 'clinical',
    wheelchair: 'access',
    large_print: 'communication',
    symptomatic_treatment: 'clinical',
  };
  await db
    .insertInto('record_item')
    .values({
      participant_id: participantId,
      category: categories[kind] ?? 'clinical',
      kind,
      side,
      source: 'gp',
      source_date: '2026-01-01',
    })
    .execute();
}
