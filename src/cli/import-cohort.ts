import { closeSync, createReadStream, createWriteStream, openSync, readSync, statSync } from 'node:fs';
import { once } from 'node:events';
import { basename, extname } from 'node:path';
import { csvLine, type CohortRejection } from '../cohort/cohort-csv.js';
import { isoDateInLondon } from '../pathway/dates.js';
import type { Actor } from '../store/audit.js';
import { importCohort, type CohortFormat, type CohortImportSummary } from '../store/cohort-import.js';
import type { Database } from '../store/database.js';
import { progressReporter } from './progress.js';

export const COHORT_ACTOR: Actor = { userId: null, username: 'import-cohort', ip: null };
/** Rejections printed when there is no --rejects file. */
const PRINTED_REJECTIONS = 20;

export interface CohortImportRun {
  file: string;
  /** Default: by the file's extension, else its content (cohortFormatOf). */
  format?: CohortFormat;
  rejectsFile?: string;
  openDatabase: () => Promise<Database>;
  out?: NodeJS.WritableStream;
}

/**
 * A cohort file's format: .csv is CSV; .json and .ndjson are FHIR (a Bundle or NDJSON, which the FHIR parser tells
 * apart by the first resource); any other name is FHIR if its first character that is not white space is "{".
 */
export function cohortFormatOf(file: string): CohortFormat {
  const extension = extname(file).toLowerCase();
  if (extension === '.csv') return 'csv';
  if (extension === '.json' || extension === '.ndjson') return 'fhir';
  const head = Buffer.alloc(4096);
  const fd = openSync(file, 'r');
  try {
    const length = readSync(fd, head, 0, head.length, 0);
    return /^\uFEFF?\s*\{/.test(head.subarray(0, length).toString('utf8')) ? 'fhir' : 'csv';
  } finally {
    closeSync(fd);
  }
}

/** `screening-hub import-cohort`: throws (a non-zero exit) only when the file cannot be read as a cohort feed. */
export async function runCohortImport(run: CohortImportRun): Promise<CohortImportSummary> {
  const out = run.out ?? process.stdout;
  let size: number;
  try {
    const stat = statSync(run.file);
    if (!stat.isFile()) throw new Error('not a file');
    size = stat.size;
  } catch (error) {
    throw new Error(`Cannot read ${run.file}: ${(error as Error).message}`, { cause: error });
  }
  const format = run.format ?? cohortFormatOf(run.file);
  const rejects = run.rejectsFile ? createWriteStream('', { fd: openSync(run.rejectsFile, 'w') }) : undefined;
  const database = await run.openDatabase();
  const write = async (text: string) => {
    if (rejects && !rejects.write(text)) await once(rejects, 'drain');
  };
  try {
    // A FHIR Bundle's rejections also say which entry (from 0, as Bundle.entry[n]); NDJSON leaves it empty.
    await write(
      csvLine(format === 'fhir' ? ['line', 'entry', 'nhs_number', 'reason'] : ['line', 'nhs_number', 'reason']),
    );
    const progress = progressReporter();
    progress(0, size, 'cohort');
    const summary = await importCohort(database.db, createReadStream(run.file, { highWaterMark: 256 * 1024 }), {
      actor: COHORT_ACTOR,
      today: isoDateInLondon(new Date()),
      sourceName: basename(run.file),
      format,
      onProgress: (bytes) => progress(Math.min(bytes, size), size, 'cohort'),
      onReject: (r: CohortRejection) =>
        write(csvLine(format === 'fhir' ? [r.line, r.entry, r.nhsNumber, r.reason] : [r.line, r.nhsNumber, r.reason])),
    });
    progress(size, size, 'cohort');
    out.write(describe(summary));
    if (summary.rejected > 0) {
      if (run.rejectsFile) {
        out.write(`Rejected rows and their reasons are in ${run.rejectsFile}\n`);
      } else {
        for (const r of summary.rejections.slice(0, PRINTED_REJECTIONS))
          out.write(
            `  line ${r.line}${r.entry !== undefined ? `, entry[${r.entry}]` : ''}${r.nhsNumber ? ` (${r.nhsNumber})` : ''}: ${r.reason}\n`,
          );
        if (summary.rejected > PRINTED_REJECTIONS)
          out.write(`  … and ${summary.rejected - PRINTED_REJECTIONS} more (give --rejects FILE to have them all)\n`);
      }
    }
    return summary;
  } finally {
    if (rejects) {
      rejects.end();
      await once(rejects, 'close');
    }
    await database.close();
  }
}

export function describe(s: CohortImportSummary): string {
  const rate = s.seconds > 0 ? Math.round(s.rowsRead / s.seconds) : s.rowsRead;
  return [
    `Read ${s.rowsRead} rows in ${s.seconds.toFixed(1)} s (${rate} rows/s):`,
    `  added             ${s.added}`,
    `  amended           ${s.amended} (${s.fieldsChanged} fields changed)`,
    `  unchanged         ${s.unchanged}`,
    `  older than record ${s.olderThanRecord} (${s.fieldsOlderThanRecord} fields in all left as they were: the record knows them from a later date)`,
    `  moved office      ${s.moved} (her GP practice is in another screening office's area: see the Movers page)`,
    `  data conflicts    ${s.conflicts} (the record keeps its value until staff decide: see Data conflicts)`,
    `  rejected          ${s.rejected}`,
    '',
  ].join('\n');
}
