import { CsvReader } from '../../src/cohort/cohort-csv.js';

/** A downloaded CSV's records (the hub's RFC 4180 reader), checking every one is well formed. */
export function readCsv(text: string): string[][] {
  const reader = new CsvReader();
  const records = [...reader.push(text), ...reader.end()];
  for (const r of records) if (r.error) throw new Error(`CSV line ${r.line}: ${r.error}`);
  return records.map((r) => r.fields);
}

const textOf = (html: string) =>
  html
    .replace(/<[^>]+>/g, ' ')
    .replace(/&amp;/g, '&')
    .replace(/&#39;/g, "'")
    .replace(/\s+/g, ' ')
    .trim();

/**
 * The body rows of the page's table with this id: each row's data-key (if any), its row header's text and its
 * cells' texts, as a reader sees them.
 */
export function tableRows(html: string, id: string): { key: string | undefined; header: string; cells: string[] }[] {
  const start = html.indexOf(`id="${id}"`);
  if (start < 0) throw new Error(`No table with id ${id}`);
  const table = html.slice(start, html.indexOf('</table>', start));
  const body = table.slice(table.indexOf('<tbody'));
  return [...body.matchAll(/<tr([^>]*)>([\s\S]*?)<\/tr>/g)].map(([, attributes, row]) => ({
    key: /data-key="([^"]*)"/.exec(attributes!)?.[1],
    header: textOf(/<th[^>]*>([\s\S]*?)<\/th>/.exec(row!)?.[1] ?? ''),
    cells: [...row!.matchAll(/<td[^>]*>([\s\S]*?)<\/td>/g)].map((m) => textOf(m[1]!)),
  }));
}
