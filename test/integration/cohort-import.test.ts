import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cohortCsvLine, type CohortRow } from '../../src/cohort/cohort-csv.js';
import { cohortBundle, cohortNdjsonLine } from '../../src/cohort/cohort-fhir.js';
import { openDatabase } from '../../src/store/database.js';
import { migrate } from '../../src/store/migrate.js';
import { importCohort, type CohortImportOptions, type CohortImportSummary } from '../../src/store/cohort-import.js';
import { correctDemographics } from '../../src/store/participants.js';
import { packageRoot } from '../../src/paths.js';
import { cohortCsv as csv, cohortRow } from '../support/cohort-rows.js';
import { BACKENDS, freshDatabase } from '../support/database.js';
import { nextNhsNumber, smallOffice, TODAY, type Office } from '../support/fixtures.js';

const row = (overrides: Partial<CohortRow> = {}): CohortRow =>
  cohortRow({
    familyName: 'Cohortwoman',
    givenName: 'Ada',
    dateOfBirth: '1970-03-04',
    addressLine1: '3 Feed Street',
    effectiveDate: '2026-01-05',
    ...overrides,
  });
const ndjson = (...rows: CohortRow[]) => rows.map(cohortNdjsonLine).join('');

describe.each(BACKENDS)('cohort import on %s', (backend) => {
  let database: Awaited<ReturnType<typeof freshDatabase>>;
  let office: Office;
  beforeAll(async () => {
    database = await freshDatabase(backend);
    office = await smallOffice(database.db);
    await database.db.insertInto('screening_office').values({ code: 'OTH', name: 'Other Office' }).execute();
    await database.db
      .insertInto('gp_practice')
      .values({ ods_code: 'Y00003', name: 'Far Away Surgery', postcode: 'YO1 7HH', bso_code: 'OTH' })
      .execute();
  });
  afterAll(async () => database.drop());
  const db = () => database.db;

  const run = (text: string, options: Partial<CohortImportOptions> = {}) =>
    importCohort(db(), [text], { actor: office.actor, today: TODAY, sourceName: 'cohort.csv', ...options });
  const person = (nhsNumber: string) =>
    db().selectFrom('participant').selectAll().where('nhs_number', '=', nhsNumber).executeTakeFirstOrThrow();
  const history = async (nhsNumber: string) =>
    db()
      .selectFrom('participant_change as c')
      .innerJoin('participant as p', 'p.id', 'c.participant_id')
      .select(['c.field', 'c.old_value', 'c.new_value', 'c.source', 'c.source_date', 'c.reason'])
      .where('p.nhs_number', '=', nhsNumber)
      .orderBy('c.id')
      .execute();

  it('adds a new person, in the office of her GP practice, with BS-Select provenance', async () => {
    const ada = row({ addressLine1: 'Flat 2, "The Willows"', addressLine2: '12 Long Lane' });
    const summary = await run(csv(ada));
    expect(summary).toMatchObject({ rowsRead: 1, added: 1, amended: 0, rejected: 0 });
    const p = await person(ada.nhsNumber);
    expect(p).toMatchObject({
      family_name: 'Cohortwoman',
      address_line1: 'Flat 2, "The Willows"',
      address_line2: '12 Long Lane',
      date_of_birth: '1970-03-04',
      gp_practice_code: 'Y00001',
      bso_code: 'TST',
      version: 1,
    });
    expect(p.provenance.postcode).toMatchObject({ source: 'bs_select', on: '2026-01-05' });
    expect(await history(ada.nhsNumber)).toEqual([]);
    const audit = await db()
      .selectFrom('audit_event')
      .selectAll()
      .where('action', '=', 'cohort.import')
      .orderBy('id', 'desc')
      .executeTakeFirstOrThrow();
    expect(audit).toMatchObject({ username: 'admin', entity_type: 'cohort_feed', entity_id: 'cohort.csv' });
    expect(audit.detail).toMatchObject({ rowsRead: 1, added: 1 });
  });

  it('amends a changed field with history and provenance, and a second run changes nothing', async () => {
    const ada = row();
    await run(csv(ada));
    const moved = { ...ada, postcode: 'LS1 4AP', effectiveDate: '2026-03-01' };
    const file = csv(moved);
    const first = await run(file);
    expect(first).toMatchObject({ added: 0, amended: 1, fieldsChanged: 1, unchanged: 0 });
    const p = await person(ada.nhsNumber);
    expect(p).toMatchObject({ postcode: 'LS1 4AP', version: 2 });
    expect(p.provenance.postcode).toMatchObject({ source: 'bs_select', on: '2026-03-01' });
    expect(p.provenance.family_name).toMatchObject({ on: '2026-01-05' });
    expect(await history(ada.nhsNumber)).toEqual([
      {
        field: 'postcode',
        old_value: 'LS6 2AB',
        new_value: 'LS1 4AP',
        source: 'bs_select',
        source_date: '2026-03-01',
        reason: 'Change of address from BS-Select',
      },
    ]);

    const again = await run(file);
    expect(again).toMatchObject({ rowsRead: 1, added: 0, amended: 0, fieldsChanged: 0, unchanged: 1 });
    expect((await person(ada.nhsNumber)).version).toBe(2);
    expect(await history(ada.nhsNumber)).toHaveLength(1);
  });

  it('ignores a row older than what the record knows, field by field', async () => {
    const ada = row({ effectiveDate: '2026-03-01' });
    await run(csv(ada));
    // A staff correction of the town on 2026-04-01 (a later date than the feed knows).
    const p0 = await person(ada.nhsNumber);
    await correctDemographics(
      db(),
      {
        participantId: p0.id,
        expectedVersion: p0.version,
        changes: { town: 'Headingley' },
        source: 'staff',
        sourceDate: '2026-04-01',
        reason: 'Told at the desk',
      },
      office.actor,
    );
    const late = await run(csv({ ...ada, postcode: 'LS1 4AP', effectiveDate: '2026-02-01' }));
    expect(late).toMatchObject({ amended: 0, unchanged: 0, olderThanRecord: 1, fieldsOlderThanRecord: 2 });
    // Newer for the postcode, older for the town: the postcode changes, the town stays.
    const mixed = await run(csv({ ...ada, postcode: 'LS1 4AP', effectiveDate: '2026-03-15' }));
    expect(mixed).toMatchObject({ amended: 1, fieldsChanged: 1, fieldsOlderThanRecord: 1 });
    expect(await person(ada.nhsNumber)).toMatchObject({ postcode: 'LS1 4AP', town: 'Headingley' });
  });

  it('records a death', async () => {
    const ada = row();
    await run(csv(ada));
    const summary = await run(csv({ ...ada, dateOfDeath: '2026-06-10', effectiveDate: '2026-06-12' }));
    expect(summary).toMatchObject({ amended: 1, fieldsChanged: 1 });
    expect((await person(ada.nhsNumber)).date_of_death).toBe('2026-06-10');
    expect(await history(ada.nhsNumber)).toEqual([
      expect.objectContaining({
        field: 'date_of_death',
        new_value: '2026-06-10',
        reason: 'Death notified by BS-Select',
      }),
    ]);
  });

  it('moves responsibility with a GP change to another office’s practice', async () => {
    const ada = row();
    await run(csv(ada));
    const summary = await run(
      csv({ ...ada, gpPracticeCode: 'Y00003', postcode: 'YO1 7HH', effectiveDate: '2026-07-01' }),
    );
    expect(summary).toMatchObject({ amended: 1, fieldsChanged: 3 });
    const p = await person(ada.nhsNumber);
    expect(p).toMatchObject({ gp_practice_code: 'Y00003', bso_code: 'OTH' });
    expect(p.provenance.bso_code).toMatchObject({ source: 'bs_select', on: '2026-07-01' });
    expect((await history(ada.nhsNumber)).map((h) => [h.field, h.old_value, h.new_value])).toEqual([
      ['postcode', 'LS6 2AB', 'YO1 7HH'],
      ['gp_practice_code', 'Y00001', 'Y00003'],
      ['bso_code', 'TST', 'OTH'],
    ]);
    // A GP change within the office keeps the office.
    await run(csv({ ...ada, gpPracticeCode: 'Y00002', effectiveDate: '2026-08-01' }));
    expect(await person(ada.nhsNumber)).toMatchObject({ gp_practice_code: 'Y00002', bso_code: 'TST' });
  });

  it('applies the good rows around a bad one and says why the bad one was rejected', async () => {
    const [a, b, c] = [row(), row(), row({ gpPracticeCode: 'Y09999' })];
    const bad = cohortCsvLine({ ...row(), postcode: 'LS6 2A' }).replace(/^\d+/, '9990010006');
    const summary = await run(csv(a, bad, b, c));
    expect(summary).toMatchObject({ rowsRead: 4, added: 2, rejected: 2 });
    expect(summary.rejections).toEqual([
      {
        line: 3,
        nhsNumber: '9990010006',
        reason: expect.stringMatching(/^nhs_number: .*check digit.*; postcode "LS6 2A" is not a UK postcode$/),
      },
      { line: 5, nhsNumber: c.nhsNumber, reason: 'gp_practice_code Y09999 is not a known GP practice' },
    ]);
    await person(a.nhsNumber);
    await person(b.nhsNumber);
    expect(await db().selectFrom('participant').where('nhs_number', '=', c.nhsNumber).selectAll().execute()).toEqual(
      [],
    );
  });

  it('keeps the rest of a batch when the database refuses one row in it', async () => {
    // Her date of birth was corrected by staff on a later date than the feed's row, so the feed's death date (after
    // the feed's date of birth, before the record's) breaks the table's check: only the database can tell.
    const ada = row({ dateOfBirth: '1950-01-01' });
    await run(csv(ada));
    const p0 = await person(ada.nhsNumber);
    await correctDemographics(
      db(),
      {
        participantId: p0.id,
        expectedVersion: p0.version,
        changes: { date_of_birth: '1960-01-01' },
        source: 'staff',
        sourceDate: '2026-09-01',
        reason: 'Birth certificate seen',
      },
      office.actor,
    );
    const [before, after] = [row(), row()];
    const refused = { ...ada, dateOfDeath: '1955-06-01', effectiveDate: '2026-08-01' };
    const rejects: unknown[] = [];
    const summary = await run(csv(before, refused, after), { onReject: (r) => void rejects.push(r) });
    expect(summary).toMatchObject({ rowsRead: 3, added: 2, rejected: 1 });
    expect(summary.rejections).toEqual([
      {
        line: 3,
        nhsNumber: ada.nhsNumber,
        reason: expect.stringMatching(/^the database refused the row: .*participant_check/),
      },
    ]);
    expect(rejects).toEqual(summary.rejections);
    await person(before.nhsNumber);
    await person(after.nhsNumber);
    expect(await person(ada.nhsNumber)).toMatchObject({ date_of_birth: '1960-01-01', date_of_death: null });
  });

  it('streams in batches: a person added and amended in one file, across chunk and batch boundaries', async () => {
    const people = Array.from({ length: 7 }, () => row());
    const ada = people[3]!;
    const text = csv(...people, { ...ada, familyName: 'Newname', effectiveDate: '2026-02-01' }, ada);
    // Bytes in awkward chunks, batches of 2.
    const bytes = Buffer.from('\uFEFF' + text);
    const chunks = Array.from({ length: Math.ceil(bytes.length / 37) }, (_, i) => bytes.subarray(i * 37, i * 37 + 37));
    const seen: number[] = [];
    const summary = await importCohort(db(), chunks, {
      actor: office.actor,
      today: TODAY,
      sourceName: 'chunks.csv',
      batchRows: 2,
      onProgress: (n) => seen.push(n),
    });
    expect(summary).toMatchObject({ rowsRead: 9, added: 7, amended: 1, olderThanRecord: 1, rejected: 0 });
    expect(summary.bytesRead).toBe(bytes.length);
    expect(seen.at(-1)).toBe(bytes.length);
    expect(await person(ada.nhsNumber)).toMatchObject({ family_name: 'Newname', version: 2 });
    expect(await history(ada.nhsNumber)).toEqual([
      expect.objectContaining({ field: 'family_name', old_value: 'Cohortwoman', new_value: 'Newname' }),
    ]);
  });

  it('imports FHIR NDJSON and Bundles through the same import: the same records as CSV, idempotently', async () => {
    const viaCsv = [row(), row({ addressLine2: 'Upper End', town: null }), row({ givenName: 'Siân' })];
    const viaFhir = viaCsv.map((r) => ({ ...r, nhsNumber: nextNhsNumber() }));
    const amend = (r: CohortRow, i: number): CohortRow =>
      [
        { ...r, postcode: 'LS1 4AP', addressLine1: '9 New Road', effectiveDate: '2026-03-01' },
        { ...r, dateOfDeath: '2026-06-10', effectiveDate: '2026-06-12' },
        { ...r, gpPracticeCode: 'Y00003', effectiveDate: '2026-07-01' },
      ][i]!;
    const fhir = (text: string, sourceName = 'cohort.ndjson') => run(text, { format: 'fhir', sourceName });
    const counts = (s: CohortImportSummary) => ({
      rowsRead: s.rowsRead,
      added: s.added,
      amended: s.amended,
      fieldsChanged: s.fieldsChanged,
      unchanged: s.unchanged,
      rejected: s.rejected,
    });

    // The same people and changes by CSV and by FHIR (NDJSON, then a transaction Bundle) count the same…
    const csvAdded = await run(csv(...viaCsv));
    expect(counts(await fhir(ndjson(...viaFhir)))).toEqual(counts(csvAdded));
    const csvAmended = await run(csv(...viaCsv.map(amend)));
    expect(csvAmended).toMatchObject({ amended: 3, fieldsChanged: 5 });
    const bundle = cohortBundle(viaFhir.map(amend), 'transaction');
    expect(counts(await fhir(bundle, 'cohort.json'))).toEqual(counts(csvAmended));

    // …and give the same records, history and provenance.
    const record = async (nhsNumber: string) => {
      const { id, nhs_number, created_at, updated_at, provenance, ...rest } = await person(nhsNumber);
      void [id, nhs_number, created_at, updated_at];
      return {
        ...rest,
        provenance: Object.fromEntries(Object.entries(provenance).map(([f, p]) => [f, { ...p, at: 'at' }])),
        history: await history(nhsNumber),
      };
    };
    for (const [i, r] of viaCsv.entries())
      expect(await record(viaFhir[i]!.nhsNumber)).toEqual(await record(r.nhsNumber));
    expect((await person(viaFhir[1]!.nhsNumber)).date_of_death).toBe('2026-06-10');
    expect(await person(viaFhir[2]!.nhsNumber)).toMatchObject({ gp_practice_code: 'Y00003', bso_code: 'OTH' });

    // Idempotent: the Bundle again changes nothing; so does the CSV people's state as NDJSON.
    const versions = async () =>
      Promise.all([...viaCsv, ...viaFhir].map(async (r) => (await person(r.nhsNumber)).version));
    const before = await versions();
    expect(await fhir(bundle, 'cohort.json')).toMatchObject({ rowsRead: 3, amended: 0, unchanged: 3 });
    expect(await fhir(ndjson(...viaCsv.map(amend)))).toMatchObject({ rowsRead: 3, amended: 0, unchanged: 3 });
    expect(await versions()).toEqual(before);
    const audit = await db()
      .selectFrom('audit_event')
      .select(['entity_id', 'detail'])
      .where('action', '=', 'cohort.import')
      .orderBy('id', 'desc')
      .executeTakeFirstOrThrow();
    expect(audit).toMatchObject({ entity_id: 'cohort.ndjson', detail: { format: 'fhir', unchanged: 3 } });
  });

  it('reports FHIR rejections with their line and Bundle entry, and applies the rest', async () => {
    const [a, b] = [row(), row()];
    const unknownGp = row({ gpPracticeCode: 'Y09999' });
    const badPostcode = row({ postcode: 'LS6 2A' });
    const summary = await run(cohortBundle([a, unknownGp, badPostcode, b]), { format: 'fhir' });
    expect(summary).toMatchObject({ rowsRead: 4, added: 2, rejected: 2 });
    expect(summary.rejections).toEqual([
      {
        line: expect.any(Number),
        entry: 1,
        nhsNumber: unknownGp.nhsNumber,
        reason: 'gp_practice_code Y09999 is not a known GP practice',
      },
      {
        line: expect.any(Number),
        entry: 2,
        nhsNumber: badPostcode.nhsNumber,
        reason: 'address.postalCode "LS6 2A" is not a UK postcode',
      },
    ]);
    await person(a.nhsNumber);
    await person(b.nhsNumber);
    await expect(run('nhs_number,family_name\n', { format: 'fhir' })).rejects.toThrow(/does not start with "\{"/);
  });

  it('refuses a file whose header is not a cohort header, and audits that it stopped', async () => {
    await expect(run('nhs_number,name\n9990010005,Ada\n')).rejects.toThrow(/unknown column "name"/);
    const audit = await db()
      .selectFrom('audit_event')
      .select('detail')
      .where('action', '=', 'cohort.import')
      .orderBy('id', 'desc')
      .executeTakeFirstOrThrow();
    expect(audit.detail).toMatchObject({ stopped: expect.stringContaining('unknown column') });
  });
});

describe('screening-hub import-cohort', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cohort-cli-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const cli = (...args: string[]) =>
    promisify(execFile)('npx', ['tsx', join(packageRoot, 'src/cli/screening-hub.ts'), 'import-cohort', ...args], {
      cwd: packageRoot,
      env: { ...process.env, DATABASE_URL: '' },
    });

  it('imports a file into PGlite, prints a summary and writes the rejected rows with reasons', async () => {
    const dataDir = join(dir, 'db');
    const setup = await openDatabase({ kind: 'pglite', dataDir });
    await migrate(setup);
    await smallOffice(setup.db);
    await setup.close();
    const good = [row(), row({ town: 'Leeds, West Yorkshire' })];
    const file = join(dir, 'cohort.csv');
    writeFileSync(
      file,
      csv(good[0]!, cohortCsvLine(row({ postcode: 'nowhere' })), good[1]!, row({ gpPracticeCode: 'Y07777' })),
    );
    const rejectsFile = join(dir, 'rejects.csv');

    const first = await cli(file, '--rejects', rejectsFile, '--pglite', dataDir);
    expect(first.stdout).toMatch(/Read 4 rows/);
    expect(first.stdout).toMatch(/added\s+2\b/);
    expect(first.stdout).toMatch(/rejected\s+2\b/);
    expect(readFileSync(rejectsFile, 'utf8').split('\r\n')).toEqual([
      'line,nhs_number,reason',
      expect.stringMatching(/^3,\d{10},"postcode ""nowhere"" is not a UK postcode"$/),
      expect.stringMatching(/^5,\d{10},gp_practice_code Y07777 is not a known GP practice$/),
      '',
    ]);

    const second = await cli(file, '--pglite', dataDir);
    expect(second.stdout).toMatch(/added\s+0\b/);
    expect(second.stdout).toMatch(/unchanged\s+2\b/);
    expect(second.stdout).toMatch(/moved office\s+0\b/);
    expect(second.stdout).toMatch(/data conflicts\s+0\b/);
    expect(second.stdout).toMatch(/line 3 \(\d{10}\): postcode "nowhere" is not a UK postcode/);

    const check = await openDatabase({ kind: 'pglite', dataDir });
    const rows = await check.db.selectFrom('participant').select('town').orderBy('town').execute();
    await check.close();
    expect(rows.map((r) => r.town)).toEqual(['Leeds', 'Leeds, West Yorkshire']);
  });

  it('imports a FHIR Bundle (.json) and NDJSON (.ndjson), chosen by the file name', async () => {
    const dataDir = join(dir, 'db-fhir');
    const setup = await openDatabase({ kind: 'pglite', dataDir });
    await migrate(setup);
    await smallOffice(setup.db);
    await setup.close();
    const good = [row(), row()];
    const bundleFile = join(dir, 'cohort.json');
    writeFileSync(bundleFile, cohortBundle([good[0]!, row({ gpPracticeCode: 'Y07777' }), good[1]!]));
    const rejectsFile = join(dir, 'rejects-fhir.csv');

    const first = await cli(bundleFile, '--rejects', rejectsFile, '--pglite', dataDir);
    expect(first.stdout).toMatch(/Read 3 rows/);
    expect(first.stdout).toMatch(/added\s+2\b/);
    expect(first.stdout).toMatch(/rejected\s+1\b/);
    expect(readFileSync(rejectsFile, 'utf8').split('\r\n')).toEqual([
      'line,entry,nhs_number,reason',
      expect.stringMatching(/^\d+,1,\d{10},gp_practice_code Y07777 is not a known GP practice$/),
      '',
    ]);

    const ndjsonFile = join(dir, 'cohort.ndjson');
    writeFileSync(ndjsonFile, ndjson(...good) + '{"resourceType":"Patient"}\n');
    const second = await cli(ndjsonFile, '--pglite', dataDir);
    expect(second.stdout).toMatch(/Read 3 rows/);
    expect(second.stdout).toMatch(/unchanged\s+2\b/);
    expect(second.stdout).toMatch(/moved office\s+0\b/);
    expect(second.stdout).toMatch(/data conflicts\s+0\b/);
    expect(second.stdout).toMatch(/line 3: identifier: there is no NHS number/);
  });

  it('exits non-zero when the file cannot be read', async () => {
    await expect(cli(join(dir, 'missing.csv'), '--pglite', join(dir, 'db2'))).rejects.toMatchObject({
      code: 1,
      stderr: expect.stringContaining('Cannot read'),
    });
  });
});
