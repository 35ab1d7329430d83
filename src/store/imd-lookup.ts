/**
 * The deprivation lookups (issue 7, item 2): postcode → LSOA (ONS National Statistics Postcode Lookup, NSPL, or the
 * ONS Postcode Directory, ONSPD) and LSOA → Index of Multiple Deprivation decile (MHCLG English Indices of
 * Deprivation 2019, File 1). docs/imd-lookup.md says where to get the files and how to load them.
 *
 * The hub ships a SYNTHETIC lookup for the demo area (lookups/imd/: made-up LSOA codes for the Leeds outcodes the
 * demo office uses), loaded by ensureDemoImdLookup when the tables are empty. It is not real deprivation data.
 */
import { packageRoot } from '../paths.js';
import { createReadStream } from 'node:fs';
import { join } from 'node:path';
import { createGunzip } from 'node:zlib';
import { sql } from 'kysely';
import { CsvReader, type CsvRecord } from '../cohort/cohort-csv.js';
import type { Db } from './database.js';

/** The shipped synthetic lookup files (lookups/imd/, at the repository root). */
export const DEMO_IMD_DIR = join(packageRoot, 'lookups', 'imd');
export const DEMO_POSTCODE_FILE = join(DEMO_IMD_DIR, 'synthetic-postcode-lsoa.csv.gz');
export const DEMO_IMD_FILE = join(DEMO_IMD_DIR, 'synthetic-lsoa-imd.csv');
export const DEMO_IMD_SOURCE = 'SYNTHETIC demo lookup (not real deprivation data)';

const LSOA = /^E0[0-9]{7}$/;
const POSTCODE_KEY = /^[A-Z0-9]{5,7}$/;
const BATCH = 20_000;

export interface ImdLoadSummary {
  lsoas: number;
  postcodes: number;
  /** Postcode rows skipped: no English LSOA (Wales, Scotland, Northern Ireland, crown dependencies) or a bad code. */
  skippedPostcodes: number;
  /** IMD rows skipped: not an English LSOA code, or no decile 1..10. */
  skippedLsoas: number;
  lsoaColumn: string;
}

/** Reads a CSV file (gzipped when its name ends in .gz) record by record: header first. */
async function* csvRecords(file: string): AsyncGenerator<CsvRecord> {
  const stream = file.endsWith('.gz') ? createReadStream(file).pipe(createGunzip()) : createReadStream(file);
  stream.setEncoding('utf8');
  const reader = new CsvReader();
  for await (const chunk of stream as AsyncIterable<string>) yield* reader.push(chunk);
  yield* reader.end();
}

/** The index of the first header matching a pattern, or -1. */
const column = (header: string[], ...patterns: RegExp[]) => {
  for (const pattern of patterns) {
    const i = header.findIndex((h) => pattern.test(h.trim()));
    if (i >= 0) return i;
  }
  return -1;
};

async function readImdFile(file: string) {
  const deciles = new Map<string, number>();
  let skipped = 0;
  let code = -1;
  let decile = -1;
  for await (const record of csvRecords(file)) {
    if (code < 0) {
      code = column(record.fields, /^LSOA code/i, /^lsoa(11|21)?(cd)?$/i);
      decile = column(record.fields, /^Index of Multiple Deprivation \(IMD\) Decile/i, /IMD.*decile/i, /^imd_decile$/i);
      if (code < 0 || decile < 0)
        throw new Error(
          `${file}: the first row must name the LSOA code and IMD decile columns (IoD 2019 File 1: "LSOA code (2011)", "Index of Multiple Deprivation (IMD) Decile")`,
        );
      continue;
    }
    const lsoa = record.fields[code]?.trim() ?? '';
    const value = Number(record.fields[decile]?.trim());
    if (record.error || !LSOA.test(lsoa) || !Number.isInteger(value) || value < 1 || value > 10) skipped++;
    else deciles.set(lsoa, value);
  }
  if (code < 0) throw new Error(`${file} is empty`);
  return { deciles, skipped };
}

/**
 * Loads postcode → LSOA and LSOA → IMD decile from the national files, replacing what the tables held (the shipped
 * synthetic rows too), in one transaction. The postcode file is the NSPL or ONSPD CSV (columns pcds or pcd, and
 * lsoa11 and/or lsoa21; a .gz file is read gunzipped); each postcode takes the LSOA column the IMD file's codes are
 * in (IoD 2019 uses 2011 LSOAs: lsoa11 is preferred when the IMD file knows its code). The IMD file is the IoD 2019
 * File 1 CSV (columns "LSOA code (2011)" and "Index of Multiple Deprivation (IMD) Decile").
 */
export async function loadImdFiles(
  db: Db,
  files: { postcodeCsv: string; imdCsv: string; source?: string },
): Promise<ImdLoadSummary> {
  const { deciles, skipped: skippedLsoas } = await readImdFile(files.imdCsv);
  const source = files.source ?? 'English Indices of Deprivation 2019';
  return db.transaction().execute(async (tx) => {
    await sql`delete from postcode_lsoa`.execute(tx);
    await sql`delete from lsoa_imd`.execute(tx);
    const entries = [...deciles];
    for (let i = 0; i < entries.length; i += BATCH)
      await tx
        .insertInto('lsoa_imd')
        .values(entries.slice(i, i + BATCH).map(([lsoa_code, imd_decile]) => ({ lsoa_code, imd_decile, source })))
        .execute();

    let postcodes = 0;
    let skippedPostcodes = 0;
    let header: { postcode: number; lsoa11: number; lsoa21: number } | null = null;
    let batch = new Map<string, string>();
    const flush = async () => {
      if (batch.size === 0) return;
      const keys = [...batch.keys()];
      const lsoas = [...batch.values()];
      batch = new Map();
      // Two array parameters rather than two per row: far quicker on PGlite.
      await sql`insert into postcode_lsoa (postcode_key, lsoa_code)
        select * from unnest(${keys}::text[], ${lsoas}::text[])
        on conflict (postcode_key) do update set lsoa_code = excluded.lsoa_code`.execute(tx);
    };
    for await (const record of csvRecords(files.postcodeCsv)) {
      if (!header) {
        header = {
          postcode: column(record.fields, /^pcds$/i, /^pcd$/i, /^pcd2$/i, /^postcode$/i),
          lsoa11: column(record.fields, /^lsoa11(cd)?$/i),
          lsoa21: column(record.fields, /^lsoa21(cd)?$/i),
        };
        if (header.postcode < 0 || (header.lsoa11 < 0 && header.lsoa21 < 0))
          throw new Error(
            `${files.postcodeCsv}: the first row must name the columns pcds (or pcd) and lsoa11 or lsoa21`,
          );
        continue;
      }
      const key = (record.fields[header.postcode] ?? '').replace(/\s+/g, '').toUpperCase();
      const lsoa11 = header.lsoa11 >= 0 ? (record.fields[header.lsoa11]?.trim() ?? '') : '';
      const lsoa21 = header.lsoa21 >= 0 ? (record.fields[header.lsoa21]?.trim() ?? '') : '';
      const lsoa = deciles.has(lsoa11) ? lsoa11 : deciles.has(lsoa21) ? lsoa21 : LSOA.test(lsoa11) ? lsoa11 : lsoa21;
      if (record.error || !POSTCODE_KEY.test(key) || !LSOA.test(lsoa)) {
        skippedPostcodes++;
        continue;
      }
      batch.set(key, lsoa);
      postcodes++;
      if (batch.size >= BATCH) await flush();
    }
    await flush();
    if (!header) throw new Error(`${files.postcodeCsv} is empty`);
    return {
      lsoas: deciles.size,
      postcodes,
      skippedPostcodes,
      skippedLsoas,
      lsoaColumn: header.lsoa11 >= 0 ? 'lsoa11' : 'lsoa21',
    };
  });
}

/**
 * Loads the shipped SYNTHETIC demo lookup (lookups/imd/) when both tables are empty; does nothing (and returns null)
 * when either has rows, so a real lookup loaded with loadImdFiles is never overwritten.
 */
export async function ensureDemoImdLookup(db: Db): Promise<ImdLoadSummary | null> {
  const { rows } = await sql<{ has: boolean }>`
    select exists (select 1 from postcode_lsoa) or exists (select 1 from lsoa_imd) as has`.execute(db);
  if (rows[0]?.has) return null;
  return loadImdFiles(db, { postcodeCsv: DEMO_POSTCODE_FILE, imdCsv: DEMO_IMD_FILE, source: DEMO_IMD_SOURCE });
}

/** How many postcodes and LSOAs the lookup holds, and where the deciles came from. */
export async function imdLookupStatus(db: Db) {
  const { rows } = await sql<{ postcodes: number; lsoas: number; sources: string[] | null }>`
    select (select count(*) from postcode_lsoa)::int as postcodes,
      (select count(*) from lsoa_imd)::int as lsoas,
      (select array_agg(distinct source) from lsoa_imd) as sources`.execute(db);
  const row = rows[0]!;
  return { postcodes: row.postcodes, lsoas: row.lsoas, sources: row.sources ?? [] };
}
