import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatValue, KPI_DEFINITIONS, KPI_IDS } from '../../src/pathway/kpis.js';
import type { Db } from '../../src/store/database.js';
import { kpiCounts, kpiFigures, loadNhsbspStandards } from '../../src/store/kpis.js';
import { BACKENDS, freshDatabase } from '../support/database.js';
import { smallOffice, TODAY } from '../support/fixtures.js';
import { PageClient, testHub } from '../support/hub-client.js';
import { readCsv, tableRows } from '../support/report-tables.js';
import { addOffice, appointment, episode, examResult, normalLetter, outcome, woman } from '../support/kpi-data.js';

const { standards } = loadNhsbspStandards({});
// Reporting year 2025 is 1 April 2025 to 31 March 2026; TODAY is 23 November 2026 (in 2026-27).

describe.each(BACKENDS)('KPIs on %s', (backend) => {
  let database: Awaited<ReturnType<typeof freshDatabase>>;
  const db = (): Db => database.db;
  let app: FastifyInstance;

  const counts = async (office: string, years = [2024, 2025, 2026]) =>
    new Map((await kpiCounts(db(), office, years, TODAY, standards)).map((y) => [y.year, y]));

  beforeAll(async () => {
    database = await freshDatabase(backend);
    await smallOffice(db());
    for (const code of ['UPT', 'COV', 'RND', 'RES', 'SCR']) await addOffice(db(), code);

    // UPT: uptake. 2025: W1 55, R opened 1 May 2025, screened 1 June (in time); W2 64, opened 1 July 2025, screened
    // 15 February 2026 (after the 6 months, 1 January); W3 53, C opened 1 September 2025, never screened (6 months up
    // 1 March 2026); W10 50 that very day (born 1 May 1975), opened 1 May 2025, screened 20 May (in time); W9 49 (turns
    // 50 the next day): left out; W4 75: left out; a GP referral (G): not an invitation. 2025: 2 of 4 = 50.0 %.
    // 2024: W6 opened 1 June 2024, screened 20 June: 1 of 1. 2026: W7 opened 1 October 2026, not screened and 6 months
    // not up: left out; W8 opened 1 September 2026, screened 1 October: 1 of 1.
    const u = (dob: string) => woman(db(), 'UPT', dob);
    await episode(db(), 'UPT', await u('1970-01-01'), 'R', '2025-05-01', '2025-06-01');
    await episode(db(), 'UPT', await u('1960-06-01'), 'R', '2025-07-01', '2026-02-15');
    await episode(db(), 'UPT', await u('1972-01-01'), 'C', '2025-09-01');
    await episode(db(), 'UPT', await u('1975-05-01'), 'C', '2025-05-01', '2025-05-20');
    await episode(db(), 'UPT', await u('1975-05-02'), 'C', '2025-05-01', '2025-05-20');
    await episode(db(), 'UPT', await u('1950-01-01'), 'R', '2025-05-01', '2025-05-20');
    await episode(db(), 'UPT', await u('1965-01-01'), 'G', '2025-05-01', '2025-05-20');
    await episode(db(), 'UPT', await u('1965-03-03'), 'R', '2024-06-01', '2024-06-20');
    await episode(db(), 'UPT', await u('1965-03-03'), 'R', '2026-10-01');
    await episode(db(), 'UPT', await u('1965-03-03'), 'R', '2026-09-01', '2026-10-01');

    // COV: coverage at 31 March 2026 (36 months back: screened after 31 March 2023). Eligible: C1 66 screened
    // 10 January 2024 (covered); C2 61 screened 1 December 2022 (not); C3 53 that day, never screened (not); C5 70
    // (71 on 1 April 2026) screened 1 January 2025 (covered); C9 screened 31 March 2023 exactly (not: 36 months and a
    // day). Left out: C4 52; C6 bilateral mastectomy; C7 died 1 January 2026; C8 no GP. 2 of 5 = 40.0 %.
    const c = async (dob: string, screened: string | null, extra = {}) => {
      const id = await woman(db(), 'COV', dob, extra);
      if (screened) await episode(db(), 'COV', id, 'R', screened, screened);
    };
    await c('1960-01-01', '2024-01-10');
    await c('1965-01-01', '2022-12-01');
    await c('1973-03-31', null);
    await c('1955-04-01', '2025-01-01');
    await c('1962-05-05', '2023-03-31');
    await c('1973-04-01', '2025-01-01');
    await c('1960-01-01', '2025-01-01', { ceased_reason: 'bilateral_mastectomy', ceased_on: '2020-01-01' });
    await c('1960-01-01', '2025-01-01', { date_of_death: '2026-01-01' });
    await c('1960-01-01', '2025-01-01', { gp: null });

    // RND: round length, by the year of the first offered appointment. R1 previous screen 1 June 2022, first offered
    // 15 May 2025 (cancelled; screened 1 July): within. R2 previous 10 April 2022, first offered 1 May 2025: not.
    // R3 previous 1 June 2022, first offered 1 June 2025 exactly: within. R4 no previous screen: left out. R5 first
    // offered 5 April 2026: in 2026 (previous 1 January 2023: after 1 January 2026, not within). 2025: 2 of 3 = 66.7 %.
    const r = async (previous: string | null, offers: [string, 'screened' | 'cancelled'][]) => {
      const id = await woman(db(), 'RND', '1960-01-01');
      if (previous) await episode(db(), 'RND', id, 'R', previous, previous);
      const e = await episode(db(), 'RND', id, 'R', '2025-03-01');
      for (const [date, status] of offers) await appointment(db(), id, e, date, { status });
    };
    await r('2022-06-01', [
      ['2025-05-15', 'cancelled'],
      ['2025-07-01', 'screened'],
    ]);
    await r('2022-04-10', [['2025-05-01', 'screened']]);
    await r('2022-06-01', [['2025-06-01', 'screened']]);
    await r(null, [['2025-06-01', 'screened']]);
    await r('2023-01-01', [['2026-04-05', 'screened']]);

    // RES: normal results within 14 days of screening on 2 June 2025 (14 days: 16 June). N1 letter 16 June 10:00 UTC
    // (within); N2 17 June (not); N3 16 June 23:30 UTC, which is 17 June 00:30 in London (not); N4 no letter, long
    // overdue (not). 2025: 1 of 4 = 25.0 %. 2026: N5 screened 20 November 2026, no letter yet, 14 days not over: left out.
    const n = async (screened: string, sentAt: string | null) => {
      const id = await woman(db(), 'RES', '1960-01-01');
      const e = await episode(db(), 'RES', id, 'R', '2025-05-01', screened);
      const a = await appointment(db(), id, e, screened);
      await examResult(db(), a, e, 'routine_recall');
      if (sentAt) await normalLetter(db(), id, a, sentAt);
    };
    await n('2025-06-02', '2025-06-16T10:00:00Z');
    await n('2025-06-02', '2025-06-17T09:00:00Z');
    await n('2025-06-02', '2025-06-16T23:30:00Z');
    await n('2025-06-02', null);
    await n('2026-11-20', null);
    // Assessment within 21 days of screening on 1 July 2025 (21 days: 22 July). A1 assessment 22 July (within); A2
    // 23 July (not); A3 none, long overdue (not); A4 10 July (cancelled) then 30 July: the first offered, 10 July,
    // counts (within). 2025: 2 of 4 = 50.0 %.
    const as = async (assessments: [string, 'scheduled' | 'cancelled'][]) => {
      const id = await woman(db(), 'RES', '1960-01-01');
      const e = await episode(db(), 'RES', id, 'R', '2025-05-01', '2025-07-01');
      const a = await appointment(db(), id, e, '2025-07-01');
      await examResult(db(), a, e, 'recall_assessment');
      for (const [date, status] of assessments) await appointment(db(), id, e, date, { purpose: 'assessment', status });
    };
    await as([['2025-07-22', 'scheduled']]);
    await as([['2025-07-23', 'scheduled']]);
    await as([]);
    await as([
      ['2025-07-10', 'cancelled'],
      ['2025-07-30', 'scheduled'],
    ]);

    // SCR: women screened on 1 June 2025. Six at a first screen aged 51 (born 1 January 1974): two referred, one an
    // invasive cancer, one benign. Four at a repeat screen aged 66 (born 1 January 1959, screened before on 1 June
    // 2022): two referred, one a non-invasive cancer, one whose invasive outcome was corrected to normal. One very high
    // risk (H) episode, referred: left out.
    // Referral: first 2 of 6 = 33.3 %, repeat 2 of 4 = 50.0 %. Cancers 2 of 10 = 200 per 1,000. Invasive observed 1;
    // expected 6 × 4.37 / 1,000 + 4 × 5.45 / 1,000 = 0.02622 + 0.0218 = 0.04802; SDR 1 / 0.04802 = 20.82.
    const s = async (
      dob: string,
      previous: boolean,
      referredOutcome: 'none' | 'benign' | 'malignant_invasive' | 'malignant_non_invasive' | 'corrected',
      type: 'R' | 'H' = 'R',
    ) => {
      const id = await woman(db(), 'SCR', dob);
      if (previous) await episode(db(), 'SCR', id, 'R', '2022-05-01', '2022-06-01');
      const e = await episode(db(), 'SCR', id, type, '2025-05-01', '2025-06-01');
      const a = await appointment(db(), id, e, '2025-06-01');
      if (referredOutcome === 'none') return examResult(db(), a, e, 'routine_recall');
      await examResult(db(), a, e, 'recall_assessment');
      if (referredOutcome === 'corrected') {
        const first = await outcome(db(), e, 'malignant_invasive', '2025-06-20', { superseded: true });
        await outcome(db(), e, 'normal', '2025-06-21', { replaces: first });
      } else await outcome(db(), e, referredOutcome, '2025-06-20');
    };
    for (const o of ['malignant_invasive', 'benign', 'none', 'none', 'none', 'none'] as const)
      await s('1974-01-01', false, o);
    for (const o of ['malignant_non_invasive', 'corrected', 'none', 'none'] as const) await s('1959-01-01', true, o);
    await s('1980-01-01', false, 'malignant_invasive', 'H');

    app = await testHub(db());
  });
  afterAll(async () => {
    await app?.close();
    await database.drop();
  });

  it('uptake: invitations screened within 6 months, she 50 to under 71 when invited', async () => {
    const y = await counts('UPT');
    expect(y.get(2025)!.counts.uptake).toEqual({ numerator: 2, denominator: 4 });
    expect(y.get(2024)!.counts.uptake).toEqual({ numerator: 1, denominator: 1 });
    expect(y.get(2026)!.counts.uptake).toEqual({ numerator: 1, denominator: 1 });
    const [f2025] = await kpiFigures(db(), 'UPT', [2025], TODAY, standards);
    expect(f2025!.figures.uptake).toMatchObject({ value: 50, rag: 'red' });
    expect(f2025!.asOf).toBe('2026-03-31');
  });

  it('coverage: screened in the 36 months to 31 March, women 53 to under 71 with a GP', async () => {
    const y = await counts('COV');
    expect(y.get(2025)!.counts.coverage).toEqual({ numerator: 2, denominator: 5 });
  });

  it('round length: first offered appointment within 36 months of the previous screen', async () => {
    const y = await counts('RND');
    expect(y.get(2025)!.counts.round_length).toEqual({ numerator: 2, denominator: 3 });
    expect(y.get(2026)!.counts.round_length).toEqual({ numerator: 0, denominator: 1 });
  });

  it('normal results within 14 days, by the day in England the letter went', async () => {
    const y = await counts('RES');
    expect(y.get(2025)!.counts.normal_results_14_days).toEqual({ numerator: 1, denominator: 4 });
    expect(y.get(2026)!.counts.normal_results_14_days).toEqual({ numerator: 0, denominator: 0 });
  });

  it('assessment offered within 21 days: the first assessment appointment, whatever became of it', async () => {
    const y = await counts('RES');
    expect(y.get(2025)!.counts.assessment_21_days).toEqual({ numerator: 2, denominator: 4 });
  });

  it('referral to assessment at first and repeat screens, cancer detection and the SDR', async () => {
    const y = (await counts('SCR')).get(2025)!;
    expect(y.counts.referral_first).toEqual({ numerator: 2, denominator: 6 });
    expect(y.counts.referral_repeat).toEqual({ numerator: 2, denominator: 4 });
    expect(y.counts.cancer_detection).toEqual({ numerator: 2, denominator: 10 });
    expect(y.counts.sdr.numerator).toBe(1);
    expect(y.counts.sdr.denominator).toBeCloseTo(0.04802, 10);
    const [f] = await kpiFigures(db(), 'SCR', [2025], TODAY, standards);
    expect(f!.figures.referral_first.value).toBeCloseTo(33.333, 2);
    expect(f!.figures.referral_first.rag).toBe('red'); // not below 9 %
    expect(f!.figures.cancer_detection.value).toBeCloseTo(200, 10);
    expect(f!.figures.sdr.value).toBeCloseTo(20.824, 2);
    expect(f!.figures.sdr.rag).toBe('green');
  });

  it('an office with nothing has no values and no colours', async () => {
    const [f] = await kpiFigures(db(), 'TST', [2025], TODAY, standards);
    expect(f!.figures.uptake).toMatchObject({ value: null, rag: 'none', denominator: 0 });
  });

  describe('the page', () => {
    it('shows each KPI with its standard, the national average and the history, to reports.view only', async () => {
      const admin = new PageClient(app);
      await admin.signIn('admin');
      const page = await admin.get('/reports/kpis?office=UPT&year=2025');
      expect(page.statusCode).toBe(200);
      expect(page.body).toContain('Office UPT (UPT), 2025-26');
      expect(page.body).toContain('50.0 %');
      expect(page.body).toContain('Below acceptable');
      expect(page.body).toContain('70.6 %'); // national uptake 2024-25
      expect(page.body).toContain('≥ 70.0 %');
      expect(page.body).toMatch(/<svg role="img" aria-labelledby="plot-uptake-title plot-uptake-desc"/);
      expect(page.body).toContain('2021-22'); // five years of history: 2021-22 to 2025-26
      expect(page.body).toContain('The proportion of eligible women invited for routine screening');
      const audit = await db()
        .selectFrom('audit_event')
        .select(['action', 'detail'])
        .where('action', '=', 'kpis.view')
        .execute();
      expect(audit.length).toBeGreaterThan(0);

      const mammographer = new PageClient(app);
      await mammographer.signIn('mammographer');
      expect((await mammographer.get('/reports/kpis?office=UPT')).statusCode).toBe(403);
    });

    it("downloads the dashboard as CSV with the page's numbers, linked from the page", async () => {
      const admin = new PageClient(app);
      await admin.signIn('admin');
      const body = (await admin.get('/reports/kpis?office=SCR&year=2025')).body;
      expect(body).toContain('href="/reports/kpis.csv?office=SCR&amp;year=2025"');
      const csv = await admin.get('/reports/kpis.csv?office=SCR&year=2025');
      expect(csv.statusCode).toBe(200);
      expect(csv.headers['content-type']).toBe('text/csv; charset=utf-8');
      expect(csv.headers['content-disposition']).toBe('attachment; filename="kpis-SCR-2025-26.csv"');
      const [header, ...records] = readCsv(csv.body);
      expect(header).toEqual([
        'Screening office',
        'Reporting year',
        'Counted to',
        'KPI code',
        'KPI',
        'Unit',
        'Numerator',
        'Denominator',
        'Value',
        '95% CI lower',
        '95% CI upper',
        'Better when',
        'Acceptable',
        'Achievable',
        'National average (2024-25)',
        'Against the standard',
        'RAG',
      ]);
      // Nine KPIs, five years each (2021-22 to 2025-26), each KPI's years in order.
      expect(records).toHaveLength(KPI_IDS.length * 5);
      const column = (name: string) => header!.indexOf(name);
      const row = (id: string, year: string) => records.find((r) => r[3] === id && r[1] === year)!;
      // Hand-checked (see the SCR cases above): referral at first screens 2 of 6 = 33.3 %, red against < 9 %;
      // cancers 2 of 10 screened = 200.0 per 1,000; SDR 1 observed of 0.05 expected = 20.82, green.
      expect(row('referral_first', '2025-26').slice(6, 11)).toEqual([
        '2',
        '6',
        '33.3',
        expect.any(String),
        expect.any(String),
      ]);
      expect(row('referral_first', '2025-26').slice(11)).toEqual(['lower', '9', '9', '', 'Below acceptable', 'red']);
      expect(row('cancer_detection', '2025-26').slice(6, 9)).toEqual(['2', '10', '200']);
      expect(row('sdr', '2025-26').slice(6, 9)).toEqual(['1', '0.05', '20.82']);
      expect(row('sdr', '2025-26').at(-1)).toBe('green');
      expect(row('uptake', '2025-26')[14]).toBe('70.6');
      // Every KPI's history table on the page shows the same numbers as the CSV, year by year.
      for (const id of KPI_IDS) {
        const { unit } = KPI_DEFINITIONS[id];
        const page = tableRows(body, `${id}-history`);
        const mine = records.filter((r) => r[3] === id);
        expect(mine.map((r) => r[1])).toEqual(page.map((r) => r.header));
        for (const [i, r] of mine.entries()) {
          const value = r[column('Value')] === '' ? null : Number(r[column('Value')]);
          const [lower, upper] = [r[column('95% CI lower')], r[column('95% CI upper')]];
          expect(page[i]!.cells).toEqual([
            Number(r[column('Numerator')]).toLocaleString('en-GB'),
            id === 'sdr'
              ? Number(r[column('Denominator')]).toFixed(2)
              : Number(r[column('Denominator')]).toLocaleString('en-GB'),
            formatValue(value, unit),
            lower ? `${formatValue(Number(lower), unit)} to ${formatValue(Number(upper), unit)}` : 'Not applicable',
            r[column('Against the standard')],
          ]);
        }
      }
      const bad = await admin.get('/reports/kpis.csv?office=SCR&year=1999');
      expect(bad.statusCode).toBe(400);
      expect(bad.body).toContain('Choose a reporting year from');
      expect((await admin.get('/reports/kpis.csv')).statusCode).toBe(400);
      const mammographer = new PageClient(app);
      await mammographer.signIn('mammographer');
      expect((await mammographer.get('/reports/kpis.csv?office=SCR')).statusCode).toBe(403);
    });

    it('says what is wrong with a bad office or year', async () => {
      const admin = new PageClient(app);
      await admin.signIn('admin');
      const badYear = await admin.get('/reports/kpis?office=UPT&year=1999');
      expect(badYear.statusCode).toBe(400);
      expect(badYear.body).toContain('There is a problem');
      expect(badYear.body).toContain('Choose a reporting year from 2017-18 to 2026-27');
      const badOffice = await admin.get('/reports/kpis?office=NOPE');
      expect(badOffice.statusCode).toBe(400);
      expect(badOffice.body).toContain('Choose a screening office');
    });
  });
});
