import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createUser } from '../../src/store/accounts.js';
import type { Db } from '../../src/store/database.js';
import { interventionImpact, listInterventions } from '../../src/store/interventions.js';
import { BACKENDS, freshDatabase } from '../support/database.js';
import { PASSWORD, smallOffice, TODAY } from '../support/fixtures.js';
import { PageClient, testHub } from '../support/hub-client.js';
import { episode, woman } from '../support/kpi-data.js';

// An intervention at Y00001 from 1 June 2025; TODAY 23 November 2026. Before: invitations 1 June 2024 to 31 May 2025;
// after: 1 June 2025 to 23 May 2026 (12 months on would be 31 May 2026, but only invitations whose 6 months are up).
// Y00001: before 2 of 4 screened in time (50 %), after 3 of 4 (75 %): +25 points.
// Y00002: before 2 of 4, after 2 of 4: no change. Difference 25 points;
//   SE = 100 × √(0.25/4 + 0.1875/4 + 0.25/4 + 0.25/4) = 100 × √0.234375 = 48.412; ± 1.96 × SE = ± 94.886.
// With the IMD lookup: Y00001 and Y00003 in quintile 2, Y00002 in quintile 5; Y00003 before 2 of 2 (100 %), after
// 1 of 2 (50 %): −50 points; difference 25 − (−50) = 75 points.
describe.each(BACKENDS)('interventions on %s', (backend) => {
  let database: Awaited<ReturnType<typeof freshDatabase>>;
  const db = (): Db => database.db;
  let app: FastifyInstance;

  const invitations = async (practice: string, opened: string, invited: number, screenedInTime: number) => {
    for (let i = 0; i < invited; i++) {
      const id = await woman(db(), 'TST', '1965-01-01', { gp: practice });
      const screened = i < screenedInTime ? opened.replace(/-01$/, '-20') : null;
      await episode(db(), 'TST', id, 'R', opened, screened);
    }
  };

  beforeAll(async () => {
    database = await freshDatabase(backend);
    await smallOffice(db());
    await db()
      .insertInto('gp_practice')
      .values({ ods_code: 'Y00003', name: 'Valley Practice', postcode: 'LS2 9JT', bso_code: 'TST' })
      .execute();
    await createUser(db(), {
      username: 'manager',
      displayName: 'Pat Manager',
      role: 'programme_manager',
      password: PASSWORD,
    });
    await invitations('Y00001', '2024-09-01', 4, 2);
    await invitations('Y00001', '2025-09-01', 4, 3);
    await invitations('Y00002', '2024-09-01', 4, 2);
    await invitations('Y00002', '2025-09-01', 4, 2);
    // Outside both windows: not counted.
    await invitations('Y00001', '2024-03-01', 3, 0);
    await invitations('Y00001', '2026-07-01', 3, 0);
    app = await testHub(db());
  });
  afterAll(async () => {
    await app?.close();
    await database.drop();
  });

  const intervention = {
    bsoCode: 'TST',
    gpPracticeCode: 'Y00001',
    practiceName: 'Riverside Surgery',
    startsOn: '2025-06-01',
    endsOn: null,
  };

  it('uptake before and after at the practice against the office’s other practices', async () => {
    const impact = await interventionImpact(db(), intervention, TODAY);
    expect(impact.windows).toEqual({
      before: { from: '2024-06-01', to: '2025-05-31' },
      after: { from: '2025-06-01', to: '2026-05-23' },
    });
    expect(impact.target).toMatchObject({
      before: { invited: 4, screened: 2 },
      after: { invited: 4, screened: 3 },
      beforePct: 50,
      afterPct: 75,
      change: 25,
    });
    // Y00003 has no invitations, so the comparison is Y00002's.
    expect(impact.comparison).toMatchObject({
      basis: 'other_practices',
      before: { invited: 4, screened: 2 },
      after: { invited: 4, screened: 2 },
      change: 0,
    });
    expect(impact.difference!.value).toBeCloseTo(25, 10);
    expect(impact.difference!.interval.lower).toBeCloseTo(-69.886, 1);
    expect(impact.difference!.interval.upper).toBeCloseTo(119.886, 1);
  });

  it('compares with practices in the same IMD quintile when the lookup knows them', async () => {
    const lookup = [
      ['LS14AP', 'E01000001', 3],
      ['LS29JT', 'E01000002', 4],
      ['LS62AB', 'E01000003', 9],
    ] as const;
    for (const [postcode_key, lsoa_code, imd_decile] of lookup) {
      await db()
        .insertInto('lsoa_imd')
        .values({ lsoa_code, imd_decile })
        .onConflict((oc) => oc.column('lsoa_code').doUpdateSet({ imd_decile }))
        .execute();
      await db()
        .insertInto('postcode_lsoa')
        .values({ postcode_key, lsoa_code })
        .onConflict((oc) => oc.column('postcode_key').doUpdateSet({ lsoa_code }))
        .execute();
    }
    await invitations('Y00003', '2024-09-01', 2, 2);
    await invitations('Y00003', '2025-09-01', 2, 1);
    const impact = await interventionImpact(db(), intervention, TODAY);
    expect(impact.comparison).toMatchObject({ basis: 'imd_quintile', imdQuintile: 2, beforePct: 100, afterPct: 50 });
    expect(impact.comparison.practices.map((p) => p.code)).toEqual(['Y00003']);
    expect(impact.difference!.value).toBeCloseTo(75, 10);
  });

  it('office-wide: before and after for the whole office, no comparison', async () => {
    const impact = await interventionImpact(db(), { ...intervention, gpPracticeCode: null, practiceName: null }, TODAY);
    // Before: 4 + 4 + 2 = 10 invited, 2 + 2 + 2 = 6 screened; after: 10 invited, 3 + 2 + 1 = 6 screened.
    expect(impact.target).toMatchObject({ before: { invited: 10, screened: 6 }, after: { invited: 10, screened: 6 } });
    expect(impact.difference).toBeNull();
  });

  describe('the pages', () => {
    it('a programme manager adds one (audited); errors are summarised', async () => {
      const manager = new PageClient(app);
      await manager.signIn('manager');
      const form = await manager.get('/reports/kpis/interventions/new?office=TST');
      expect(form.statusCode).toBe(200);
      const bad = await manager.post('/reports/kpis/interventions/new', {
        office: 'TST',
        label: '',
        gpPracticeCode: 'Y99999',
        'startsOn[day]': '31',
        'startsOn[month]': '2',
        'startsOn[year]': '2026',
      });
      expect(bad.statusCode).toBe(400);
      expect(bad.body).toContain('There is a problem');
      expect(bad.body).toContain('Enter a short name for the intervention');
      expect(bad.body).toContain('Choose one of the office’s GP practices, or the whole office');
      expect(bad.body).toContain('Start date must be a real date');
      const backwards = await manager.post('/reports/kpis/interventions/new', {
        office: 'TST',
        label: 'Text reminders',
        gpPracticeCode: 'Y00001',
        'startsOn[day]': '1',
        'startsOn[month]': '6',
        'startsOn[year]': '2025',
        'endsOn[day]': '1',
        'endsOn[month]': '5',
        'endsOn[year]': '2025',
      });
      expect(backwards.statusCode).toBe(400);
      expect(backwards.body).toContain('End date must be on or after the start date (1 June 2025)');

      const good = await manager.post('/reports/kpis/interventions/new', {
        office: 'TST',
        label: 'Text reminders',
        description: 'SMS two days before each appointment',
        gpPracticeCode: 'Y00001',
        'startsOn[day]': '1',
        'startsOn[month]': '6',
        'startsOn[year]': '2025',
      });
      expect(good.statusCode).toBe(303);
      const [saved] = await listInterventions(db(), 'TST');
      expect(saved).toMatchObject({
        label: 'Text reminders',
        gpPracticeCode: 'Y00001',
        startsOn: '2025-06-01',
        endsOn: null,
      });
      const audit = await db()
        .selectFrom('audit_event')
        .select(['action', 'entity_id'])
        .where('action', '=', 'intervention.create')
        .execute();
      expect(audit).toEqual([{ action: 'intervention.create', entity_id: saved!.id }]);

      const list = await manager.get('/reports/kpis/interventions?office=TST');
      expect(list.statusCode).toBe(200);
      expect(list.body).toContain('Text reminders');
      expect(list.body).toContain('Comparable practices (IMD quintile 2)');
      expect(list.body).toContain('+75 percentage points');
    });

    it('reports.view sees the list; only intervention.manage may add', async () => {
      const admin = new PageClient(app);
      await admin.signIn('admin');
      const list = await admin.get('/reports/kpis/interventions?office=TST');
      expect(list.statusCode).toBe(200);
      expect(list.body).not.toContain('Add an intervention');
      expect((await admin.get('/reports/kpis/interventions/new?office=TST')).statusCode).toBe(403);
      const reader = new PageClient(app);
      await reader.signIn('reader');
      expect((await reader.get('/reports/kpis/interventions?office=TST')).statusCode).toBe(403);
    });
  });
});
