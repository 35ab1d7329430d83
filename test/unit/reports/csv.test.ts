import { describe, expect, it } from 'vitest';
import { csvCell, csvDownloadHeaders, csvRows } from '../../../src/reports/csv.js';

describe('the report CSV writer', () => {
  it('quotes commas, quotes and line breaks, and ends every line with CRLF', () => {
    expect(csvRows([['Age band', 'Uptake (%)'], ['Smith, "Jo"', 70.6], ['two\nlines', null], []])).toBe(
      'Age band,Uptake (%)\r\n"Smith, ""Jo""",70.6\r\n"two\nlines",\r\n\r\n',
    );
  });
  it('keeps a spreadsheet from reading text as a formula, but writes negative numbers as numbers', () => {
    expect(['=1+1', '+44', '-x', '@SUM(A1)'].map(csvCell)).toEqual(["'=1+1", "'+44", "'-x", "'@SUM(A1)"]);
    expect(csvCell(-1.5)).toBe('-1.5');
    expect(csvCell('=a,b')).toBe(`"'=a,b"`);
  });
  it('names the download safely', () => {
    expect(csvDownloadHeaders('kpis-TST-2025-26.csv')).toEqual({
      'content-type': 'text/csv; charset=utf-8',
      'content-disposition': 'attachment; filename="kpis-TST-2025-26.csv"',
    });
    expect(csvDownloadHeaders('a "b"/c.csv')['content-disposition']).toBe('attachment; filename="a__b__c.csv"');
  });
});
