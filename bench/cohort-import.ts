/**
 * Cohort feed import speed: a synthetic BS-Select style CSV of N people, imported into a fresh database three
 * times: first import (all added), the same file again (idempotent: nothing changes), and a file where one row in
 * ten has a new address with a later effective date (amendments with history).
 *
 *   npx tsx bench/cohort-import.ts [--rows 100000] [--batch 1000] [--format csv|fhir]
 *   DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres npx tsx bench/cohort-import.ts --rows 1000000
 *
 * Runs on an in-memory PGlite, and also on a fresh database on the PostgreSQL server when DATABASE_URL is set
 * (--only pglite|postgres for one of them). Everyone is made up: NHS numbers from the 999 test range, names from
 * faker. The test range holds about 909,000 numbers: past that, rows repeat earlier people with a later address.
 * --format fhir writes the same people as FHIR R4 NDJSON (one UK Core Patient a line) instead of CSV.
 */
import { createReadStream, createWriteStream, mkdtempSync, rmSync, statSync } from 'node:fs';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { base, en, en_GB, Faker } from '@faker-js/faker';
import { COHORT_HEADER, cohortCsvLine, type CohortRow } from '../src/cohort/cohort-csv.js';
import { cohortNdjsonLine } from '../src/cohort/cohort-fhir.js';
import { addDays } from '../src/pathway/dates.js';
import { testRangeNhsNumbers } from '../src/pathway/nhs-number.js';
import { SYSTEM_ACTOR } from '../src/store/audit.js';
import {
  COHORT_FORMATS,
  importCohort,
  type CohortFormat,
  type CohortImportSummary,
} from '../src/store/cohort-import.js';
import type { Db } from '../src/store/database.js';
import { BACKENDS, freshDatabase } from '../test/support/database.js';

const { values } = parseArgs({
  options: {
    rows: { type: 'string', default: '100000' },
    batch: { type: 'string', default: '1000' },
    only: { type: 'string' },
    format: { type: 'string', default: 'csv' },
  },
});
const format = values.format as CohortFormat;
if (!COHORT_FORMATS.includes(format)) throw new Error(`--format must be one of ${COHORT_FORMATS.join(', ')}`);
const rows = Number(values.rows);
const batchRows = Number(values.batch);
if (!Number.isInteger(rows) || rows < 1) throw new Error('--rows must be a whole number above 0');

const TODAY = '2026-11-23';
const OFFICES = ['BSA', 'BSB'];
const PRACTICES = Array.from({ length: 80 }, (_, i) => ({
  ods_code: `B${String(80001 + i)}`,
  name: `Practice ${i + 1}`,
  postcode: 'LS1 4AP',
  bso_code: OFFICES[i % 2]!,
}));
const TOWNS = ['Leeds', 'Otley', 'Ilkley', 'Morley', 'Pudsey', 'Wetherby'];
const LETTERS = 'ABDEFGHJLNPQRSTUWXYZ';

/** Writes the cohort file; `amendEvery` > 0 gives every nth person a new address on a later date. */
async function writeCohort(path: string, amendEvery: number): Promise<number> {
  const faker = new Faker({ locale: [en_GB, en, base] });
  faker.seed(2026);
  const out = createWriteStream(path);
  const write = async (text: string) => {
    if (!out.write(text)) await once(out, 'drain');
  };
  if (format === 'csv') await write(COHORT_HEADER);
  let numbers = testRangeNhsNumbers(0);
  let round = 0;
  for (let i = 0; i < rows; i++) {
    let next = numbers.next();
    if (next.done) {
      numbers = testRangeNhsNumbers(0);
      round++;
      next = numbers.next();
    }
    const amend = round > 0 || (amendEvery > 0 && i % amendEvery === 0);
    const n = i + round * 7;
    const row: CohortRow = {
      nhsNumber: next.value as string,
      familyName: faker.person.lastName(),
      givenName: faker.person.firstName('female'),
      dateOfBirth: addDays('1955-01-01', (i * 7919) % 7300),
      dateOfDeath: null,
      sex: 'female',
      addressLine1: `${(n % 180) + 1} ${amend ? 'New' : 'Old'} ${faker.location.street()}`,
      addressLine2: i % 13 === 0 ? `Flat ${(i % 24) + 1}, "Block ${i % 5}"` : null,
      town: TOWNS[i % TOWNS.length]!,
      postcode: `LS${(n % 29) + 1} ${n % 10}${LETTERS[n % 20]}${LETTERS[(n >> 3) % 20]}`,
      gpPracticeCode: PRACTICES[i % PRACTICES.length]!.ods_code,
      effectiveDate: amend ? addDays('2026-06-01', round) : '2026-01-05',
    };
    await write(format === 'csv' ? cohortCsvLine(row) : cohortNdjsonLine(row));
  }
  out.end();
  await once(out, 'close');
  return statSync(path).size;
}

async function timed(db: Db, path: string): Promise<CohortImportSummary> {
  return importCohort(db, createReadStream(path, { highWaterMark: 256 * 1024 }), {
    actor: SYSTEM_ACTOR,
    today: TODAY,
    sourceName: path,
    format,
    batchRows,
  });
}

const line = (label: string, s: CohortImportSummary) =>
  `  ${label.padEnd(24)} ${String(Math.round(s.rowsRead / s.seconds)).padStart(7)} rows/s  ${s.seconds.toFixed(1).padStart(6)} s  ` +
  `added ${s.added}, amended ${s.amended} (${s.fieldsChanged} fields), unchanged ${s.unchanged}, older ${s.olderThanRecord}, rejected ${s.rejected}`;

const dir = mkdtempSync(join(tmpdir(), 'cohort-bench-'));
try {
  const extension = format === 'csv' ? 'csv' : 'ndjson';
  const first = join(dir, `cohort.${extension}`);
  const amended = join(dir, `cohort-amended.${extension}`);
  const started = performance.now();
  const bytes = await writeCohort(first, 0);
  await writeCohort(amended, 10);
  console.log(
    `${rows} rows (${format === 'csv' ? 'CSV' : 'FHIR NDJSON'}), ${(bytes / 1e6).toFixed(1)} MB, batches of ${batchRows} (files written in ${((performance.now() - started) / 1000).toFixed(1)} s)`,
  );
  for (const backend of BACKENDS.filter((b) => !values.only || b === values.only)) {
    const database = await freshDatabase(backend);
    try {
      await database.db
        .insertInto('screening_office')
        .values(OFFICES.map((code) => ({ code, name: `Office ${code}` })))
        .execute();
      await database.db.insertInto('gp_practice').values(PRACTICES).execute();
      console.log(backend === 'pglite' ? 'PGlite (in memory)' : 'PostgreSQL (DATABASE_URL)');
      console.log(line('first import', await timed(database.db, first)));
      console.log(line('same file again', await timed(database.db, first)));
      console.log(line('1 in 10 rows amended', await timed(database.db, amended)));
    } finally {
      await database.drop();
    }
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
