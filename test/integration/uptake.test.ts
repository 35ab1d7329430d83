import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { byAgeBand, byPractice, byQuintile, overall } from '../../src/pathway/uptake.js';
import type { Db } from '../../src/store/database.js';
import { ensureDemoImdLookup, imdLookupStatus, loadImdFiles } from '../../src/store/imd-lookup.js';
import { coverageCounts, practiceNames, uptakeCounts, uptakeTrend } from '../../src/store/uptake.js';
import { BACKENDS, freshDatabase } from '../support/database.js';
import { addParticipant, smallOffice, TODAY } from '../support/fixtures.js';
import { PageClient, testHub } from '../support/hub-client.js';
import { readCsv, tableRows } from '../support/report-tables.js';

/** [key or label, numerator, denominator] for each row. */
const triples = (rows: { label: string; numerator: number; denominator: number }[]) =>
  rows.map((r) => [r.label, r.numerator, r.denominator]);

describe.each(BACKENDS)('uptake and coverage on %s', (backend) => {
  let database: Awaited<ReturnType<typeof freshDatabase>>;
  const db = (): Db => database.db;
  let accession = 0;

  async function clinic(site: string, location: string, date: string) {
    const { id } = await db()
      .insertInto('clinic')
      .values({
        site_id: site,
        location_id: location,
        clinic_date: date,
        starts_at: '09:00',
        ends_at: '12:00',
        slot_minutes: 10,
      })
      .onConflict((oc) => oc.columns(['site_id', 'clinic_date', 'starts_at']).doUpdateSet({ slot_minutes: 10 }))
      .returning('id')
      .executeTakeFirstOrThrow();
    return id;
  }

  /** A woman with one episode (or none), and its appointments: [site, location, clinic date, booked at, status]. */
  async function woman(
    person: Parameters<typeof addParticipant>[1] & { gp?: string | null },
    episode?: {
      type: 'C' | 'R' | 'E' | 'S';
      opened: string;
      screened?: string;
      appointments?: [string, string, string, string, string][];
    },
  ) {
    const { gp, ...rest } = person ?? {};
    const p = await addParticipant(db(), rest);
    if (gp !== undefined)
      await db().updateTable('participant').set({ gp_practice_code: gp }).where('id', '=', p.id).execute();
    if (!episode) return p.id;
    const { id: episodeId } = await db()
      .insertInto('episode')
      .values({
        participant_id: p.id,
        bso_code: 'TST',
        episode_type: episode.type,
        opened_on: episode.opened,
        screened_on: episode.screened ?? null,
      })
      .returning('id')
      .executeTakeFirstOrThrow();
    for (const [site, location, date, bookedAt, status] of episode.appointments ?? []) {
      await db()
        .insertInto('appointment')
        .values({
          clinic_id: await clinic(site, location, date),
          participant_id: p.id,
          episode_id: episodeId,
          slot_index: accession % 18,
          slot_count: 1,
          status: status as 'screened',
          accession_number: `UPT${String(++accession).padStart(7, '0')}`,
          booked_at: bookedAt,
        })
        .execute();
    }
    return p.id;
  }

  beforeAll(async () => {
    database = await freshDatabase(backend);
    await smallOffice(db());
    // The lookup: LS1 1AA → decile 1 (quintile 1), LS6 2AB → decile 6 (quintile 3); LS9 9ZZ is not in it.
    await db()
      .insertInto('lsoa_imd')
      .values([
        { lsoa_code: 'E01000001', imd_decile: 1 },
        { lsoa_code: 'E01000002', imd_decile: 6 },
      ])
      .execute();
    await db()
      .insertInto('postcode_lsoa')
      .values([
        { postcode_key: 'LS11AA', lsoa_code: 'E01000001' },
        { postcode_key: 'LS62AB', lsoa_code: 'E01000002' },
      ])
      .execute();
    // Routine invitations in 2025-26 (ages at invitation):
    // A 55, LS1 1AA, Y00001: invited 1 May 2025, screened 1 June → taken up.
    await woman(
      { date_of_birth: '1970-01-10', postcode: 'LS1 1AA', gp: 'Y00001' },
      {
        type: 'R',
        opened: '2025-05-01',
        screened: '2025-06-01',
        appointments: [['static-1', 'central', '2025-06-01', '2025-05-01T09:00:00Z', 'screened']],
      },
    );
    // B 55, LS1 1AA, Y00001: invited 1 June 2025, screened 2 December: one day after the six months → not taken up.
    await woman(
      { date_of_birth: '1970-02-10', postcode: 'LS1 1AA', gp: 'Y00001' },
      {
        type: 'R',
        opened: '2025-06-01',
        screened: '2025-12-02',
        appointments: [['static-1', 'central', '2025-06-20', '2025-06-01T09:00:00Z', 'did_not_attend']],
      },
    );
    // C 50, LS6 2AB, Y00002: first call 15 April 2025, screened 20 May at the mobile unit → taken up.
    await woman(
      { date_of_birth: '1975-03-01', postcode: 'LS6 2AB', gp: 'Y00002' },
      {
        type: 'C',
        opened: '2025-04-15',
        screened: '2025-05-20',
        appointments: [['mobile-1', 'car-park', '2025-05-20', '2025-04-15T09:00:00Z', 'screened']],
      },
    );
    // D 65, LS9 9ZZ (not in the lookup), Y00002: invited 1 September 2025 to the static site, moved to the mobile
    // unit, did not attend. Her invitation's site is the first appointment's: static-1, central.
    await woman(
      { date_of_birth: '1960-01-01', postcode: 'LS9 9ZZ', gp: 'Y00002' },
      {
        type: 'R',
        opened: '2025-09-01',
        appointments: [
          ['static-1', 'central', '2025-09-20', '2025-09-01T09:00:00Z', 'cancelled'],
          ['mobile-1', 'car-park', '2025-10-01', '2025-09-02T09:00:00Z', 'did_not_attend'],
        ],
      },
    );
    // Not routine invitations in the period: E an early recall, F invited the day before it, H a self-referral.
    await woman(
      { date_of_birth: '1960-01-01', postcode: 'LS6 2AB' },
      { type: 'E', opened: '2025-07-01', screened: '2025-07-10' },
    );
    await woman(
      { date_of_birth: '1962-01-01', postcode: 'LS6 2AB' },
      { type: 'R', opened: '2025-03-31', screened: '2025-04-10' },
    );
    await woman(
      { date_of_birth: '1953-06-01', postcode: 'LS6 2AB' },
      { type: 'S', opened: '2025-08-01', screened: '2025-08-01' },
    );
    // I 68, LS1 1AA, Y00002: screened 31 March 2023, exactly 36 months before 31 March 2026 → not covered then.
    await woman(
      { date_of_birth: '1958-01-01', postcode: 'LS1 1AA', gp: 'Y00002' },
      { type: 'R', opened: '2023-03-01', screened: '2023-03-31' },
    );
    // J ceased (bilateral mastectomy) and K died 1 December 2025: not eligible on 31 March 2026. L ceased by her own
    // choice: eligible, not covered.
    await woman({ date_of_birth: '1965-05-05', ceased_reason: 'bilateral_mastectomy', ceased_on: '2024-01-01' });
    await woman({ date_of_birth: '1965-05-05', date_of_death: '2025-12-01' });
    await woman({ date_of_birth: '1966-06-01', ceased_reason: 'informed_choice', ceased_on: '2024-01-01' });
  });
  afterAll(async () => {
    await database.drop();
  });

  const period = { office: 'TST', from: '2025-04-01', to: '2026-03-31' };

  it('counts routine invitations screened within six months: 2 of 4', async () => {
    // A yes, B no (a day late), C yes, D no; E (early recall), F (before the period), H (self-referral) not counted.
    const counts = await uptakeCounts(db(), period);
    expect(overall(counts)).toMatchObject({ numerator: 2, denominator: 4, rate: 0.5 });
    // 55–59: A and B, 1 of 2; 50–52: C, 1 of 1; 65–69: D, 0 of 1.
    expect(triples(byAgeBand(counts))).toEqual([
      ['50 to 52', 1, 1],
      ['55 to 59', 1, 2],
      ['65 to 69', 0, 1],
    ]);
    // Quintile 1: A, B (1 of 2); quintile 3: C (1 of 1); unknown: D (0 of 1).
    expect(triples(byQuintile(counts)).filter((r) => r[2] !== 0)).toEqual([
      ['1 (most deprived)', 1, 2],
      ['3', 1, 1],
      ['Unknown (postcode not in the lookup)', 0, 1],
    ]);
    // Both practices 1 of 2: the tie goes by name.
    expect(triples(byPractice(counts, await practiceNames(db())))).toEqual([
      ['Hillside Medical Centre (Y00002)', 1, 2],
      ['Riverside Surgery (Y00001)', 1, 2],
    ]);
  });

  it("filters by the invitation's first appointment's site and location", async () => {
    // static-1 / central: A, B and D (her first appointment) → 1 of 3; mobile-1 / car-park: C → 1 of 1.
    for (const [filter, expected] of [
      [{ site: 'static-1' }, [1, 3]],
      [{ location: 'central' }, [1, 3]],
      [{ site: 'mobile-1' }, [1, 1]],
      [{ site: 'mobile-1', location: 'car-park' }, [1, 1]],
      [{ site: 'mobile-1', location: 'central' }, [0, 0]],
    ] as const) {
      const all = overall(await uptakeCounts(db(), { ...period, ...filter }));
      expect([all.numerator, all.denominator], JSON.stringify(filter)).toEqual(expected);
    }
  });

  it('counts coverage on 31 March 2026: 4 of 7 women 53 to 70', async () => {
    // Eligible: A 56, B 56, D 66, E 66, F 64, I 68, L 59 (C is 51, H 72, J ceased for mastectomy, K died).
    // Covered: A (June 2025), B (December 2025), E (July 2025), F (April 2025); not D (never), I (36 months to the
    // day), L (never).
    const counts = await coverageCounts(db(), 'TST', '2026-03-31');
    expect(overall(counts)).toMatchObject({ numerator: 4, denominator: 7 });
    // 55–59: A, B, L → 2 of 3; 60–64: F → 1 of 1; 65–69: D, E, I → 1 of 3.
    expect(triples(byAgeBand(counts))).toEqual([
      ['55 to 59', 2, 3],
      ['60 to 64', 1, 1],
      ['65 to 69', 1, 3],
    ]);
    // LS1 1AA (quintile 1): A, B, I → 2 of 3; LS6 2AB (quintile 3): E, F, L → 2 of 3; LS9 9ZZ: D → 0 of 1.
    expect(triples(byQuintile(counts)).filter((r) => r[2] !== 0)).toEqual([
      ['1 (most deprived)', 2, 3],
      ['3', 2, 3],
      ['Unknown (postcode not in the lookup)', 0, 1],
    ]);
    // Y00001: A, B, E, F, L → 4 of 5; Y00002: D, I → 0 of 2.
    expect(triples(byPractice(counts, await practiceNames(db())))).toEqual([
      ['Riverside Surgery (Y00001)', 4, 5],
      ['Hillside Medical Centre (Y00002)', 0, 2],
    ]);
  });

  it('gives a trend by reporting year', async () => {
    const trend = await uptakeTrend(db(), {
      office: 'TST',
      lastYear: 2025,
      count: 6,
      today: TODAY,
      finalBefore: '2026-05-23',
    });
    expect(trend.map((t) => t.period.label)).toEqual([
      '2020-21',
      '2021-22',
      '2022-23',
      '2023-24',
      '2024-25',
      '2025-26',
    ]);
    // Uptake: 2022-23 I (1 of 1), 2024-25 F invited 31 March 2025 (1 of 1), 2025-26 2 of 4.
    expect(trend.map((t) => [t.uptake.numerator, t.uptake.denominator])).toEqual([
      [0, 0],
      [0, 0],
      [1, 1],
      [0, 0],
      [1, 1],
      [2, 4],
    ]);
    // Coverage on 31 March 2025: A, B, D, E, F, I, L and K (alive then) are 53 to 70; only I (31 March 2023) was
    // screened in the 36 months before → 1 of 8.
    expect([trend[4]!.coverage.numerator, trend[4]!.coverage.denominator]).toEqual([1, 8]);
    expect(trend[5]!.coverage).toMatchObject({ numerator: 4, denominator: 7 });
    expect(trend.every((t) => !t.provisional)).toBe(true);
  });

  describe('the page', () => {
    let app: FastifyInstance;
    beforeAll(async () => {
      app = await testHub(db());
    });
    afterAll(async () => {
      await app.close();
    });

    it('shows the figures with intervals, charts and tables', async () => {
      const client = new PageClient(app);
      await client.signIn('admin');
      const response = await client.get('/reports/uptake?office=TST&from=2025-04-01&to=2026-03-31');
      expect(response.statusCode).toBe(200);
      const body = response.body;
      // 2 of 4: Wilson 95% interval 15.0% to 85.0% (centre 0.5, half = 1.959964/1.960366 × √(0.0625 + 0.0600228)
      // = 0.999795 × 0.350032 = 0.349961).
      expect(body).toContain('<strong>50.0%</strong> (2 of 4 invited; 95% confidence interval 15.0% to 85.0%)');
      // 4 of 7 = 57.1%.
      expect(body).toContain('<strong>57.1%</strong> (4 of 7 eligible');
      expect(body).toContain('aria-labelledby="practice-uptake-title practice-uptake-desc"');
      expect(body).toContain('<caption class="nhsuk-table__caption">Uptake and coverage by IMD quintile</caption>');
      expect(body).toContain('Unknown (postcode not in the lookup)');
      expect(body).toContain('id="trend-table"');
      const audit = await db()
        .selectFrom('audit_event')
        .select(['detail'])
        .where('action', '=', 'reports.uptake.view')
        .execute();
      expect(audit.length).toBeGreaterThan(0);
    });

    it('filters by site', async () => {
      const client = new PageClient(app);
      await client.signIn('admin');
      const body = (await client.get('/reports/uptake?office=TST&from=2025-04-01&to=2026-03-31&site=static-1')).body;
      expect(body).toContain('(1 of 3 invited;');
      expect(body).toContain('at Central Breast Unit');
    });

    it('defaults to the last complete reporting year', async () => {
      const client = new PageClient(app);
      await client.signIn('admin');
      const response = await client.get('/reports/uptake?office=TST');
      expect(response.statusCode).toBe(200);
      expect(response.body).toContain('value="2025-04-01"');
      expect(response.body).toContain('(2 of 4 invited;');
    });

    it('says what is wrong with bad choices', async () => {
      const client = new PageClient(app);
      await client.signIn('admin');
      const bad = await client.get('/reports/uptake?office=TST&from=2026-02-30&to=2025-01-01&site=nowhere');
      expect(bad.statusCode).toBe(400);
      expect(bad.body).toContain('There is a problem');
      expect(bad.body).toContain('Start date must be a real date, like 2025-04-01');
      expect(bad.body).toContain('Choose a site from the list');
      expect(bad.body).toContain('href="#from"');
      const backwards = await client.get('/reports/uptake?office=TST&from=2026-01-01&to=2025-01-01');
      expect(backwards.body).toContain('Start date must be the same as or before the end date');
      const future = await client.get('/reports/uptake?office=TST&from=2026-01-01&to=2027-01-01');
      expect(future.body).toContain('End date must be today or in the past');
      const missing = await client.get('/reports/uptake?office=TST&from=2026-01-01');
      expect(missing.body).toContain('Enter the end date');
      const office = await client.get('/reports/uptake?office=NOPE');
      expect(office.statusCode).toBe(400);
      expect(office.body).toContain('Choose a screening office');
    });

    it("downloads each table as CSV with the page's numbers, linked from the page", async () => {
      const client = new PageClient(app);
      await client.signIn('admin');
      const query = 'office=TST&from=2025-04-01&to=2026-03-31';
      const body = (await client.get(`/reports/uptake?${query}`)).body;
      // Each row as the page shows it: screened, invited, rate and interval, or 0, 0 and "No women".
      const shown = (n: string, d: string, rate: string, lower: string, upper: string) =>
        d === '0'
          ? ['0', '0', 'No women']
          : [n, d, `${Number(rate).toFixed(1)}%`, `${Number(lower).toFixed(1)}% to ${Number(upper).toFixed(1)}%`];
      for (const [table, tableId, name] of [
        ['age', 'age-table', 'by-age-band'],
        ['deprivation', 'quintile-table', 'by-imd-quintile'],
        ['practice', 'practice-table', 'by-gp-practice'],
      ] as const) {
        const href = `/reports/uptake/${table}.csv?${query}`;
        expect(body).toContain(`href="${href.replaceAll('&', '&amp;')}"`);
        const csv = await client.get(href);
        expect(csv.statusCode).toBe(200);
        expect(csv.headers['content-type']).toBe('text/csv; charset=utf-8');
        expect(csv.headers['content-disposition']).toBe(
          `attachment; filename="uptake-${name}-TST-2025-04-01-to-2026-03-31.csv"`,
        );
        const [header, ...records] = readCsv(csv.body);
        expect(header!.slice(0, 8)).toEqual([
          'Screening office',
          'Invited from',
          'Invited up to',
          'Site',
          'Location',
          table === 'age' ? 'Age band' : table === 'deprivation' ? 'IMD quintile' : 'GP practice',
          'Group code',
          'Screened within 6 months',
        ]);
        const page = tableRows(body, tableId);
        expect(records.map((r) => r[6])).toEqual(page.map((r) => r.key));
        for (const [i, r] of records.entries()) {
          expect(r.slice(0, 5)).toEqual([
            'Test Breast Screening Office (TST)',
            '2025-04-01',
            '2026-03-31',
            'All sites',
            'All locations',
          ]);
          expect(r[5]).toBe(page[i]!.header);
          const [un, ud, ur, ul, uu, cn, cd, cr, cl, cu] = r.slice(7);
          expect(page[i]!.cells).toEqual([...shown(un!, ud!, ur!, ul!, uu!), ...shown(cn!, cd!, cr!, cl!, cu!)]);
        }
        // Every woman is in one group of each table: 2 of 4 invited screened, 4 of 7 eligible covered.
        const sum = (column: number) => records.reduce((n, r) => n + Number(r[column]), 0);
        expect([sum(7), sum(8), sum(12), sum(13)]).toEqual([2, 4, 4, 7]);
      }
      const audit = await db()
        .selectFrom('audit_event')
        .select(['detail'])
        .where('action', '=', 'reports.uptake.download')
        .execute();
      expect(audit.map((a) => (a.detail as { table: string }).table)).toEqual(
        expect.arrayContaining(['age', 'deprivation', 'practice']),
      );
      // The filters go with the download, and a bad choice is the page with its errors.
      const site = readCsv((await client.get(`/reports/uptake/age.csv?${query}&site=static-1`)).body);
      expect(site.slice(1).reduce((n, r) => n + Number(r[8]), 0)).toBe(3);
      expect(site[1]![3]).toBe('Central Breast Unit');
      const bad = await client.get('/reports/uptake/practice.csv?office=TST&from=2026-02-30&to=2026-03-31');
      expect(bad.statusCode).toBe(400);
      expect(bad.body).toContain('Start date must be a real date, like 2025-04-01');
      // As on the page, the only office and the last complete reporting year are chosen when not given.
      const defaults = await client.get('/reports/uptake/age.csv');
      expect(defaults.statusCode).toBe(200);
      expect(readCsv(defaults.body)[1]!.slice(0, 3)).toEqual([
        'Test Breast Screening Office (TST)',
        '2025-04-01',
        '2026-03-31',
      ]);
    });

    it('is only for roles that view reports', async () => {
      const client = new PageClient(app);
      await client.signIn('mammographer');
      expect((await client.get('/reports/uptake?office=TST')).statusCode).toBe(403);
      expect((await client.get('/reports/uptake/age.csv?office=TST')).statusCode).toBe(403);
    });
  });
});

describe.each(BACKENDS)('the deprivation lookup on %s', (backend) => {
  let database: Awaited<ReturnType<typeof freshDatabase>>;
  beforeAll(async () => {
    database = await freshDatabase(backend);
  });
  afterAll(async () => {
    await database.drop();
  });

  it('loads NSPL and IoD 2019 files, English LSOAs only, preferring the LSOA the IMD file knows', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'imd-'));
    const postcodes = join(dir, 'nspl.csv');
    const imd = join(dir, 'iod.csv');
    writeFileSync(
      postcodes,
      [
        'pcd,pcd2,pcds,dointr,doterm,lsoa11,lsoa21,msoa21',
        '"LS1 1AA","LS1  1AA","LS1 1AA","198001","","E01011111","E01033333","E02000001"',
        '"LS6 2AB","LS6  2AB","LS6 2AB","198001","","E01022222","","E02000002"',
        // Wales: no English LSOA → skipped.
        '"CF101AA","CF10 1AA","CF10 1AA","198001","","W01001234","W01001234",""',
        // Only a 2021 LSOA the IMD file does not know: kept (the postcode is known, its decile is not).
        '"LS9 9ZZ","LS9  9ZZ","LS9 9ZZ","198001","","","E01044444",""',
      ].join('\r\n'),
    );
    writeFileSync(
      imd,
      [
        'LSOA code (2011),LSOA name (2011),Local Authority District code (2019),Local Authority District name (2019),Index of Multiple Deprivation (IMD) Rank,Index of Multiple Deprivation (IMD) Decile',
        'E01011111,"Leeds 111A",E08000035,Leeds,1200,1',
        'E01022222,"Leeds, 222B",E08000035,Leeds,22000,7',
        'W01001234,Cardiff 1,W06000015,Cardiff,100,1',
      ].join('\n'),
    );
    const summary = await loadImdFiles(database.db, { postcodeCsv: postcodes, imdCsv: imd });
    expect(summary).toEqual({ lsoas: 2, postcodes: 3, skippedPostcodes: 1, skippedLsoas: 1, lsoaColumn: 'lsoa11' });
    const rows = await database.db
      .selectFrom('postcode_lsoa as pl')
      .leftJoin('lsoa_imd as li', 'li.lsoa_code', 'pl.lsoa_code')
      .select(['pl.postcode_key', 'pl.lsoa_code', 'li.imd_decile', 'li.imd_quintile'])
      .orderBy('pl.postcode_key')
      .execute();
    expect(rows).toEqual([
      { postcode_key: 'LS11AA', lsoa_code: 'E01011111', imd_decile: 1, imd_quintile: 1 },
      { postcode_key: 'LS62AB', lsoa_code: 'E01022222', imd_decile: 7, imd_quintile: 4 },
      { postcode_key: 'LS99ZZ', lsoa_code: 'E01044444', imd_decile: null, imd_quintile: null },
    ]);
    // The shipped demo lookup does not replace a loaded one.
    expect(await ensureDemoImdLookup(database.db)).toBeNull();
    await expect(loadImdFiles(database.db, { postcodeCsv: imd, imdCsv: imd })).rejects.toThrow(/pcds/);
    await expect(loadImdFiles(database.db, { postcodeCsv: postcodes, imdCsv: postcodes })).rejects.toThrow(/LSOA code/);
  });

  it('loads the shipped synthetic demo lookup into empty tables', async () => {
    await database.db.deleteFrom('postcode_lsoa').execute();
    await database.db.deleteFrom('lsoa_imd').execute();
    const started = performance.now();
    const summary = await ensureDemoImdLookup(database.db);
    const ms = performance.now() - started;
    expect(summary).toMatchObject({ lsoas: 1160, postcodes: 116_000, skippedPostcodes: 0, skippedLsoas: 0 });
    const status = await imdLookupStatus(database.db);
    expect(status).toEqual({
      postcodes: 116_000,
      lsoas: 1160,
      sources: ['SYNTHETIC demo lookup (not real deprivation data)'],
    });
    const deciles = await database.db
      .selectFrom('lsoa_imd')
      .select('imd_decile')
      .distinct()
      .orderBy('imd_decile')
      .execute();
    expect(deciles.map((d) => d.imd_decile)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(await ensureDemoImdLookup(database.db)).toBeNull();
    console.log(`demo IMD lookup loaded on ${backend} in ${Math.round(ms)} ms`);
  }, 60_000);
});
