/**
 * KC62 and KC63 as downloads in the return's layout: one block (CSV) or sheet (XLSX) a table, each with its four
 * parts one under the other (age bands down, measures across, then uptake or rate), and KC63 last.
 *
 * The XLSX is written here without a dependency: an Office Open XML workbook is a zip of a few XML parts
 * (ECMA-376); strings are inline, so there is no shared-strings part, and each part is deflated with node:zlib.
 */
import { deflateRawSync } from 'node:zlib';
import { BAND_KEYS, BAND_LABELS } from '../pathway/age-bands.js';
import {
  countOf,
  KC62_TABLES,
  KC63_BAND_KEYS,
  KC63_BAND_LABELS,
  nonOperativeRate,
  PART_NUMBERS,
  PARTS,
  percent,
  TABLE_TITLES,
  uptake,
  type Kc62Counts,
  type Kc62Table,
  type Kc63CellKey,
  type Measure,
  type PartNumber,
} from '../pathway/kc62.js';
import { reportingYear } from '../pathway/reporting-year.js';
import { formatLongDate } from '../pathway/dates.js';
import { csvRows, type Cell } from './csv.js';

export type { Cell };
export interface Sheet {
  name: string;
  rows: Cell[][];
}

export interface ExportInput {
  officeLabel: string;
  year: number;
  counts: Kc62Counts;
  coverage: Map<Kc63CellKey, number>;
  coverageAt: string;
}

/** The measures a table's part shows (referral tables have no invited column). */
export function partMeasures(table: Kc62Table, part: PartNumber): Measure[] {
  const all = Object.keys(PARTS[part].measures) as Measure[];
  return table === 'F1' || table === 'F2' ? all.filter((m) => m !== 'invited') : all;
}

/** The derived column at the end of a part, if any: uptake (Part 1) or the non-operative rate (Part 4). */
export function partRate(table: Kc62Table, part: PartNumber): string | undefined {
  if (part === 1) return table === 'F1' || table === 'F2' ? undefined : 'Uptake (%)';
  if (part === 4) return 'Non-operative diagnosis (%)';
  return undefined;
}

export function kc62Sheets(input: ExportInput): Sheet[] {
  const { label } = reportingYear(input.year);
  const heading = (title: string): Cell[][] => [
    [title],
    [`Screening office: ${input.officeLabel}`],
    [`Reporting year ${label} (1 April ${input.year} to 31 March ${input.year + 1})`],
    [],
  ];
  const sheets: Sheet[] = KC62_TABLES.map((table) => {
    const rows: Cell[][] = heading(`KC62 ${TABLE_TITLES[table]}`);
    for (const part of PART_NUMBERS) {
      const measures = partMeasures(table, part);
      const rate = partRate(table, part);
      rows.push([PARTS[part].title]);
      rows.push([
        'Age band',
        ...measures.map((m) => PARTS[part].measures[m as never] as string),
        ...(rate ? [rate] : []),
      ]);
      for (const band of BAND_KEYS) {
        const value = part === 1 ? uptake(input.counts, table, band) : nonOperativeRate(input.counts, table, band);
        rows.push([
          BAND_LABELS[band],
          ...measures.map((m) => countOf(input.counts, table, m, band)),
          ...(rate ? [value] : []),
        ]);
      }
      rows.push([]);
    }
    return { name: `Table ${table}`, rows };
  });
  const kc63: Cell[][] = heading(`KC63 coverage at ${formatLongDate(input.coverageAt)}`);
  kc63.push(['Age band at 31 March', 'Eligible women', 'Screened in the last 36 months', 'Coverage (%)']);
  for (const band of KC63_BAND_KEYS) {
    const eligible = input.coverage.get(`KC63.eligible.${band}`) ?? 0;
    const covered = input.coverage.get(`KC63.covered.${band}`) ?? 0;
    kc63.push([KC63_BAND_LABELS[band], eligible, covered, percent(covered, eligible)]);
  }
  sheets.push({ name: 'KC63', rows: kc63 });
  return sheets;
}

// ---------------------------------------------------------------------------------------------------------------
// CSV

/** Every sheet one after the other, a blank line between (RFC 4180, CRLF). */
export function kc62Csv(input: ExportInput): string {
  return kc62Sheets(input)
    .map((sheet) => csvRows(sheet.rows))
    .join('\r\n');
}

// ---------------------------------------------------------------------------------------------------------------
// XLSX

const xmlEscape = (s: string) =>
  s
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;')
    // Characters XML 1.0 does not allow.
    // eslint-disable-next-line no-control-regex
    .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f]/g, '');

function columnName(index: number): string {
  let name = '';
  for (let n = index + 1; n > 0; n = Math.floor((n - 1) / 26)) name = String.fromCharCode(65 + ((n - 1) % 26)) + name;
  return name;
}

function sheetXml(sheet: Sheet): string {
  const rows = sheet.rows
    .map((row, r) => {
      const cells = row
        .map((value, c) => {
          const ref = `${columnName(c)}${r + 1}`;
          if (value === null || value === '') return '';
          if (typeof value === 'number') return `<c r="${ref}"><v>${value}</v></c>`;
          return `<c r="${ref}" t="inlineStr"><is><t xml:space="preserve">${xmlEscape(value)}</t></is></c>`;
        })
        .join('');
      return `<row r="${r + 1}">${cells}</row>`;
    })
    .join('');
  return (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n' +
    '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">' +
    '<cols><col min="1" max="1" width="28" customWidth="1"/><col min="2" max="16" width="14" customWidth="1"/></cols>' +
    `<sheetData>${rows}</sheetData></worksheet>`
  );
}

export function xlsxParts(sheets: Sheet[]): Map<string, string> {
  const NS = 'http://schemas.openxmlformats.org';
  const parts = new Map<string, string>();
  parts.set(
    '[Content_Types].xml',
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n' +
      `<Types xmlns="${NS}/package/2006/content-types">` +
      `<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>` +
      `<Default Extension="xml" ContentType="application/xml"/>` +
      `<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>` +
      sheets
        .map(
          (_, i) =>
            `<Override PartName="/xl/worksheets/sheet${i + 1}.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>`,
        )
        .join('') +
      '</Types>',
  );
  parts.set(
    '_rels/.rels',
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n' +
      `<Relationships xmlns="${NS}/package/2006/relationships">` +
      `<Relationship Id="rId1" Type="${NS}/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/>` +
      '</Relationships>',
  );
  parts.set(
    'xl/workbook.xml',
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n' +
      `<workbook xmlns="${NS}/spreadsheetml/2006/main" xmlns:r="${NS}/officeDocument/2006/relationships"><sheets>` +
      sheets.map((s, i) => `<sheet name="${xmlEscape(s.name)}" sheetId="${i + 1}" r:id="rId${i + 1}"/>`).join('') +
      '</sheets></workbook>',
  );
  parts.set(
    'xl/_rels/workbook.xml.rels',
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n' +
      `<Relationships xmlns="${NS}/package/2006/relationships">` +
      sheets
        .map(
          (_, i) =>
            `<Relationship Id="rId${i + 1}" Type="${NS}/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet${i + 1}.xml"/>`,
        )
        .join('') +
      '</Relationships>',
  );
  sheets.forEach((s, i) => parts.set(`xl/worksheets/sheet${i + 1}.xml`, sheetXml(s)));
  return parts;
}

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

export function crc32(data: Uint8Array): number {
  let c = 0xffffffff;
  for (const byte of data) c = CRC_TABLE[(c ^ byte) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/**
 * A zip of the files (deflated), with a fixed date (1 January 2000), so the same report gives the same bytes.
 * No zip64: fine for a workbook of a few hundred kilobytes.
 */
export function zip(files: Map<string, string | Uint8Array>): Buffer {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  const DOS_TIME = 0;
  const DOS_DATE = ((2000 - 1980) << 9) | (1 << 5) | 1;
  for (const [name, content] of files) {
    const data = typeof content === 'string' ? Buffer.from(content, 'utf8') : Buffer.from(content);
    const compressed = deflateRawSync(data);
    const nameBytes = Buffer.from(name, 'utf8');
    const crc = crc32(data);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4); // version needed
    local.writeUInt16LE(0x0800, 6); // UTF-8 names
    local.writeUInt16LE(8, 8); // deflate
    local.writeUInt16LE(DOS_TIME, 10);
    local.writeUInt16LE(DOS_DATE, 12);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(compressed.length, 18);
    local.writeUInt32LE(data.length, 22);
    local.writeUInt16LE(nameBytes.length, 26);
    local.writeUInt16LE(0, 28);
    locals.push(local, nameBytes, compressed);
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE(20, 4); // version made by
    central.writeUInt16LE(20, 6);
    central.writeUInt16LE(0x0800, 8);
    central.writeUInt16LE(8, 10);
    central.writeUInt16LE(DOS_TIME, 12);
    central.writeUInt16LE(DOS_DATE, 14);
    central.writeUInt32LE(crc, 16);
    central.writeUInt32LE(compressed.length, 20);
    central.writeUInt32LE(data.length, 24);
    central.writeUInt16LE(nameBytes.length, 28);
    central.writeUInt32LE(offset, 42);
    centrals.push(central, nameBytes);
    offset += 30 + nameBytes.length + compressed.length;
  }
  const centralSize = centrals.reduce((n, b) => n + b.length, 0);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(files.size, 8);
  end.writeUInt16LE(files.size, 10);
  end.writeUInt32LE(centralSize, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, ...centrals, end]);
}

export function kc62Xlsx(input: ExportInput): Buffer {
  return zip(xlsxParts(kc62Sheets(input)));
}
