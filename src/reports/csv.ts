/**
 * The one CSV writer for report downloads (KC62, uptake, KPIs): RFC 4180 with CRLF line ends, a field quoted when
 * it holds a comma, a quote or a line break. A text cell a spreadsheet could take for a formula (starting =, +, -,
 * @, tab or carriage return) is prefixed with an apostrophe, so a name in the data cannot run as a formula when the
 * file is opened (OWASP, "CSV Injection"). Numbers are written as they are: round them before, as the page does.
 */

export type Cell = string | number | null;

export function csvCell(value: Cell): string {
  if (value === null) return '';
  if (typeof value === 'number') return String(value);
  const text = /^[=+\-@\t\r]/.test(value) ? `'${value}` : value;
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

/** Rows as CSV text, each line ended by CRLF. */
export function csvRows(rows: readonly (readonly Cell[])[]): string {
  return rows.map((row) => row.map(csvCell).join(',') + '\r\n').join('');
}

/** The headers that make a response a CSV download named `filename` (letters, digits, dot, dash and underscore). */
export function csvDownloadHeaders(filename: string): Record<string, string> {
  const safe = filename.replace(/[^A-Za-z0-9._-]/g, '_');
  return { 'content-type': 'text/csv; charset=utf-8', 'content-disposition': `attachment; filename="${safe}"` };
}
