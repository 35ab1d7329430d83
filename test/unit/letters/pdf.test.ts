import { createHash } from 'node:crypto';
import { decodePDFRawStream, PDFArray, PDFDocument, PDFRawStream, type PDFPage } from 'pdf-lib';
import { describe, expect, it } from 'vitest';
import {
  layoutLetter,
  PAGE_HEIGHT,
  PAGE_WIDTH,
  renderLetterPdf,
  renderLettersPdf,
  TYPE_SIZES,
  wrap,
} from '../../../src/letters/pdf.js';
import type { LetterFormat } from '../../../src/pathway/invitation-letters.js';
import { resultLetter, type ResultLetter, type ResultLetterFacts } from '../../../src/pathway/result-letters.js';

const facts = (more: Partial<ResultLetterFacts> = {}): ResultLetterFacts => ({
  kind: 'result_assessment',
  date: '2026-11-23',
  givenName: 'Jane',
  familyName: 'Testwoman',
  address: ['2 Test Street', 'Leeds', 'LS6 2AB'],
  nhsNumber: '9991234567',
  dateOfBirth: '1966-05-14',
  dateOfDeath: null,
  office: { name: 'Test Breast Screening Office', address: ['1 Infirmary Street', 'LS1 3EX'], phone: '0113 496 0000' },
  screenedOn: '2026-11-16',
  nextTestDue: '2029-11-16',
  appointment: { date: '2026-12-01', time: '10:30', location: 'Central Breast Unit', address: '1 Infirmary Street' },
  outcome: null,
  appointmentProblem: null,
  gpInformed: true,
  ...more,
});
const letterIn = (format: LetterFormat, more: Partial<ResultLetterFacts> = {}, language: string | null = null) =>
  resultLetter(facts(more), { format, language, interpreter: false });
const sha = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

/** The text drawn on a page: pdf-lib writes each line as a hex string shown with Tj, in WinAnsi (Latin-1 here). */
function pageText(page: PDFPage): string[] {
  const contents = page.node.Contents();
  const streams = contents instanceof PDFArray ? contents.asArray().map((r) => page.doc.context.lookup(r)) : [contents];
  const lines: string[] = [];
  for (const stream of streams) {
    if (!(stream instanceof PDFRawStream)) throw new Error('expected a raw content stream');
    const source = Buffer.from(decodePDFRawStream(stream).decode()).toString('latin1');
    for (const m of source.matchAll(/<([0-9A-Fa-f]*)>\s*Tj/g)) lines.push(Buffer.from(m[1]!, 'hex').toString('latin1'));
  }
  return lines;
}

async function open(bytes: Uint8Array) {
  const doc = await PDFDocument.load(bytes, { updateMetadata: false });
  return { doc, pages: doc.getPages().map(pageText) };
}

describe('renderLetterPdf', () => {
  it('is an A4 letter with the office, her name and address, the date, NHS number, heading and words', async () => {
    const letter = letterIn('standard');
    const { doc, pages } = await open(await renderLetterPdf(letter));
    expect(doc.getPageCount()).toBe(1);
    const { width, height } = doc.getPage(0).getSize();
    expect(width).toBeCloseTo(595.28, 1);
    expect(height).toBeCloseTo(841.89, 1);
    const text = pages[0]!.join('\n');
    for (const expected of [
      'NHS Breast Screening Programme',
      'Test Breast Screening Office',
      'Jane Testwoman',
      '2 Test Street',
      'LS6 2AB',
      'Date: 23 November 2026',
      'NHS number: 999 123 4567',
      'Dear Jane Testwoman',
      'Yours sincerely',
      'Page 1 of 1',
    ])
      expect(text).toContain(expected);
    // Wrapped, but every word of every paragraph is there, in order.
    const flat = pages[0]!.join(' ');
    for (const p of letter.text.paragraphs) expect(flat).toContain(p);
    expect(flat).toContain(letter.text.heading);
    expect(doc.getTitle()).toBe(letter.text.heading);
    expect(doc.getCreationDate()?.toISOString()).toBe('2026-11-23T00:00:00.000Z');
    expect(doc.getModificationDate()?.toISOString()).toBe('2026-11-23T00:00:00.000Z');
  });

  it('gives the same bytes every time for the same letter, and different bytes for a different one', async () => {
    const letter = letterIn('standard');
    const first = await renderLetterPdf(letter);
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const again = await renderLetterPdf(JSON.parse(JSON.stringify(letter)) as ResultLetter);
    expect(sha(again)).toBe(sha(first));
    const other = await renderLetterPdf(letterIn('standard', { givenName: 'Joan' }));
    expect(sha(other)).not.toBe(sha(first));
    // Nothing random in the file: no document id, no dates but the letter's.
    const raw = Buffer.from(first).toString('latin1');
    expect(raw).not.toMatch(/\/ID\s*\[/);
  });

  it('sets a large print letter at 16 point or more throughout, and standard print at 11', async () => {
    const large = layoutLetter(letterIn('large_print'));
    const sizes = large.flatMap((p) => p.texts.map((t) => t.size));
    expect(Math.min(...sizes)).toBeGreaterThanOrEqual(16);
    const standard = layoutLetter(letterIn('standard'));
    const body = standard[0]!.texts.find((t) => t.text === 'Dear Jane Testwoman');
    expect(body?.size).toBe(11);
    expect(layoutLetter(letterIn('easy_read'))[0]!.texts.find((t) => t.text === 'Dear Jane Testwoman')?.size).toBe(14);
    expect(TYPE_SIZES.large_print.body).toBeGreaterThanOrEqual(16);
    // The same words take more pages in large print.
    expect(large.length).toBeGreaterThan(standard.length);
    const { doc, pages } = await open(await renderLetterPdf(letterIn('large_print')));
    expect(doc.getPageCount()).toBe(large.length);
    expect(pages.at(-1)!.join('\n')).toContain(`Page ${large.length} of ${large.length}`);
    // Continued pages say whose letter they are.
    expect(pages[1]![0]).toBe('Jane Testwoman, NHS number: 999 123 4567');
  });

  it('keeps every line on the page, and breaks a long letter over pages', () => {
    const long = letterIn('standard');
    long.text.paragraphs = Array.from(
      { length: 40 },
      (_, n) => `Paragraph ${n + 1}. ${'Some words here. '.repeat(12)}`,
    );
    long.text.paragraphs.push(`A long address: https://example.org/${'x'.repeat(300)}`);
    for (const letter of [long, letterIn('large_print'), letterIn('braille'), letterIn('easy_read')]) {
      const pages = layoutLetter(letter);
      const sizes = TYPE_SIZES[letter.format];
      for (const p of pages)
        for (const t of p.texts) {
          expect(t.x).toBeGreaterThanOrEqual(56);
          expect(t.y).toBeGreaterThanOrEqual(30);
          expect(t.y + t.size).toBeLessThanOrEqual(PAGE_HEIGHT);
          expect(wrap(t.text, t.size, t.bold, PAGE_WIDTH - t.x - 56.6)).toEqual([t.text]);
        }
      // No two lines overlap on a page (the address and office columns sit side by side).
      for (const p of pages) {
        const left = p.texts.filter((t) => t.x < PAGE_WIDTH / 2).sort((a, b) => b.y - a.y);
        for (let i = 1; i < left.length; i++)
          expect(left[i - 1]!.y - left[i]!.y).toBeGreaterThanOrEqual(Math.min(left[i]!.size, sizes.small));
      }
    }
    const pages = layoutLetter(long);
    expect(pages.length).toBeGreaterThanOrEqual(3);
    const all = pages.flatMap((p) => p.texts.map((t) => t.text)).join(' ');
    expect(all).toContain('Paragraph 40.');
    expect(pages[0]!.texts.at(-1)!.text).toBe(`Page 1 of ${pages.length}`);
  });

  it('puts the service instruction on a cover line in a box for braille, audio and untranslated letters', async () => {
    for (const letter of [
      letterIn('braille'),
      letterIn('audio'),
      letterIn('translated', { kind: 'result_normal' }, 'Polish'),
    ]) {
      const layout = layoutLetter(letter);
      expect(layout[0]!.boxes).toHaveLength(1);
      const { pages } = await open(await renderLetterPdf(letter));
      expect(pages[0]!.join(' ')).toContain(letter.coverLine!);
      expect(pages[0]![0]).toMatch(/^For the (transcription|translation) service/);
    }
    expect(layoutLetter(letterIn('standard'))[0]!.boxes).toHaveLength(0);
  });

  it('prints a provided translation with the English version on a new page', async () => {
    const letter = letterIn('translated', { kind: 'result_normal' }, 'Portuguese');
    const { doc, pages } = await open(await renderLetterPdf(letter));
    expect(doc.getPageCount()).toBe(2);
    const first = pages[0]!.join(' ');
    expect(first).toContain('O resultado do seu rastreio do cancro da mama');
    expect(first).toContain('Data: 23 de novembro de 2026');
    expect(first).toContain('Número do NHS: 999 123 4567');
    expect(first).toContain('não mostrou sinais de cancro');
    expect(first).toContain('Página 1 de 2');
    const second = pages[1]!.join(' ');
    expect(second).toContain('English version of this letter');
    expect(second).toContain('showed no signs of cancer');
  });
});

describe('renderLettersPdf', () => {
  it('puts letters one after another, each starting on a new page', async () => {
    const letters = [letterIn('standard'), letterIn('large_print'), letterIn('easy_read', { givenName: 'Joan' })];
    const counts = letters.map((l) => layoutLetter(l).length);
    const { doc, pages } = await open(await renderLettersPdf(letters, { title: 'Print run' }));
    expect(doc.getPageCount()).toBe(counts.reduce((a, b) => a + b, 0));
    expect(doc.getTitle()).toBe('Print run');
    // Each letter's first page has its own address block.
    expect(pages[0]!).toContain('Jane Testwoman');
    expect(pages[counts[0]!]!).toContain('Jane Testwoman');
    expect(pages[counts[0]! + counts[1]!]!).toContain('Joan Testwoman');
    expect(pages[counts[0]!]!.join('\n')).toContain(`Page 1 of ${counts[1]}`);
    await expect(renderLettersPdf([])).rejects.toThrow(RangeError);
  });
});
