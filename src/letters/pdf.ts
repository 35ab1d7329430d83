/**
 * Result letters as PDF (pdf-lib, its standard Helvetica fonts: WinAnsi text only). A4, the office's address top
 * right with the date and her NHS number, her name and address where a window envelope shows it, the heading, the
 * words wrapped to the page and carried over to more pages when long, and "Page 1 of 2" at the foot. Large print
 * letters are set at 16 point or more throughout, easy read at 14.
 *
 * Deterministic: the same letter gives the same bytes (the document's dates are the letter's date, nothing random),
 * so the communication row's content_sha256 proves a letter shown again is the letter that was sent.
 */
import { PageSizes, PDFDocument, rgb, StandardFontEmbedder, StandardFonts, type PDFFont } from 'pdf-lib';
import type { LetterFormat } from '../pathway/invitation-letters.js';
import { winAnsiText, type LetterText, type ResultLetter } from '../pathway/result-letters.js';

export const [PAGE_WIDTH, PAGE_HEIGHT] = PageSizes.A4;
const MM = 72 / 25.4;
const MARGIN = 20 * MM;
const TOP = 15 * MM;
/** Her address starts 45 mm down, in a DL or C5 envelope's window. */
const ADDRESS_TOP = 45 * MM;
const TEXT_WIDTH = PAGE_WIDTH - 2 * MARGIN;
const GUTTER = 12;
const COLUMN = (TEXT_WIDTH - GUTTER) / 2;
/** Text stops here; the page number sits below. */
const BOTTOM = 22 * MM;
const FOOTER_BASELINE = 12 * MM;

export interface TypeSizes {
  body: number;
  heading: number;
  /** The page number, the continuation header and the cover line. */
  small: number;
}

export const TYPE_SIZES: Record<LetterFormat, TypeSizes> = {
  standard: { body: 11, heading: 14, small: 9 },
  braille: { body: 11, heading: 14, small: 9 },
  audio: { body: 11, heading: 14, small: 9 },
  translated: { body: 11, heading: 14, small: 9 },
  easy_read: { body: 14, heading: 18, small: 11 },
  large_print: { body: 16, heading: 20, small: 16 },
};

const LEADING = 1.35;

export interface PlacedText {
  text: string;
  /** PDF points from the bottom left corner; y is the baseline. */
  x: number;
  y: number;
  size: number;
  bold: boolean;
}

export interface PageLayout {
  texts: PlacedText[];
  boxes: { x: number; y: number; width: number; height: number }[];
}

/** The fonts' metrics, for wrapping (the same metrics the embedded fonts use). */
type FontName = Parameters<typeof StandardFontEmbedder.for>[0];
const REGULAR = StandardFontEmbedder.for(StandardFonts.Helvetica as string as FontName);
const BOLD = StandardFontEmbedder.for(StandardFonts.HelveticaBold as string as FontName);
const widthOf = (text: string, size: number, bold: boolean) => (bold ? BOLD : REGULAR).widthOfTextAtSize(text, size);

/** Greedy word wrap; a word too long for a line is broken where it must be. */
export function wrap(text: string, size: number, bold: boolean, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/ +/).filter(Boolean)) {
    const candidate = line ? `${line} ${word}` : word;
    if (widthOf(candidate, size, bold) <= width) {
      line = candidate;
      continue;
    }
    if (line) lines.push(line);
    line = word;
    while (widthOf(line, size, bold) > width) {
      let cut = line.length - 1;
      while (cut > 1 && widthOf(line.slice(0, cut), size, bold) > width) cut--;
      lines.push(line.slice(0, cut));
      line = line.slice(cut);
    }
  }
  if (line || lines.length === 0) lines.push(line);
  return lines;
}

/** Where every line of one letter goes, page by page. */
export function layoutLetter(letter: ResultLetter): PageLayout[] {
  const sizes = TYPE_SIZES[letter.format];
  const pages: PageLayout[] = [];
  let page: PageLayout = { texts: [], boxes: [] };
  pages.push(page);
  /** Distance from the top of the page to the top of the next line. */
  let cursor = TOP;
  const lineHeight = (size: number) => size * LEADING;
  const place = (text: string, x: number, top: number, size: number, bold: boolean) =>
    page.texts.push({ text, x, y: PAGE_HEIGHT - top - size, size, bold });

  const newPage = (text: LetterText) => {
    page = { texts: [], boxes: [] };
    pages.push(page);
    cursor = TOP;
    place(`${letter.to[0] ?? ''}, ${text.labels.nhsNumber}: ${letter.nhsNumber}`, MARGIN, cursor, sizes.small, false);
    cursor += lineHeight(sizes.small) * 2;
  };
  const flow = (text: LetterText, words: string, size: number, bold: boolean, gapAfter: number) => {
    for (const line of wrap(words, size, bold, TEXT_WIDTH)) {
      if (PAGE_HEIGHT - cursor - lineHeight(size) < BOTTOM) newPage(text);
      place(line, MARGIN, cursor, size, bold);
      cursor += lineHeight(size);
    }
    cursor += gapAfter;
  };

  const text = letter.text;
  // The cover line, for the service that makes her letter from this one.
  if (letter.coverLine) {
    const size = Math.max(sizes.small, 10);
    const lines = wrap(letter.coverLine, size, true, TEXT_WIDTH - 12);
    const height = lines.length * lineHeight(size) + 8;
    page.boxes.push({ x: MARGIN, y: PAGE_HEIGHT - cursor - height, width: TEXT_WIDTH, height });
    cursor += 4;
    for (const line of lines) {
      place(line, MARGIN + 6, cursor, size, true);
      cursor += lineHeight(size);
    }
    cursor += 4 + 10;
  }
  // The office, the date and her NHS number on the right; her name and address on the left.
  let right = cursor;
  const rightX = MARGIN + COLUMN + GUTTER;
  const rightLine = (words: string, bold: boolean) => {
    for (const line of wrap(words, sizes.body, bold, COLUMN)) {
      place(line, rightX, right, sizes.body, bold);
      right += lineHeight(sizes.body);
    }
  };
  letter.from.forEach((line, n) => rightLine(line, n === 0));
  right += lineHeight(sizes.body) / 2;
  rightLine(`${text.labels.date}: ${text.dateText}`, false);
  rightLine(`${text.labels.nhsNumber}: ${letter.nhsNumber}`, false);
  let left = Math.max(cursor, ADDRESS_TOP);
  for (const part of letter.to)
    for (const line of wrap(part, sizes.body, false, COLUMN)) {
      place(line, MARGIN, left, sizes.body, false);
      left += lineHeight(sizes.body);
    }
  cursor = Math.max(left, right) + lineHeight(sizes.body) * 1.5;

  const body = (words: LetterText) => {
    flow(words, words.heading, sizes.heading, true, sizes.body * 0.8);
    flow(words, words.salutation, sizes.body, false, sizes.body * 0.6);
    for (const paragraph of words.paragraphs) flow(words, paragraph, sizes.body, false, sizes.body * 0.6);
    words.closing.forEach((line, n) => flow(words, line, sizes.body, false, n === 0 ? sizes.body * 1.5 : 0));
  };
  body(text);
  if (letter.english) {
    newPage(text);
    flow(letter.english, 'English version of this letter', sizes.body, true, sizes.body * 0.8);
    body(letter.english);
  }
  // Page numbers, once the count is known.
  pages.forEach((p, n) => {
    const label = text.labels.page.replace('{n}', String(n + 1)).replace('{total}', String(pages.length));
    p.texts.push({ text: label, x: MARGIN, y: FOOTER_BASELINE, size: sizes.small, bold: false });
  });
  for (const p of pages) for (const t of p.texts) t.text = winAnsiText(t.text);
  return pages;
}

function draw(doc: PDFDocument, fonts: { regular: PDFFont; bold: PDFFont }, layout: PageLayout[]) {
  for (const p of layout) {
    const page = doc.addPage(PageSizes.A4);
    for (const b of p.boxes)
      page.drawRectangle({ ...b, borderColor: rgb(0, 0, 0), borderWidth: 1.5, color: rgb(0.95, 0.95, 0.95) });
    for (const t of p.texts)
      page.drawText(t.text, { x: t.x, y: t.y, size: t.size, font: t.bold ? fonts.bold : fonts.regular });
  }
}

/** One PDF of these letters, one after another, each starting on a new page. */
export async function renderLettersPdf(
  letters: readonly ResultLetter[],
  options: { title?: string; lang?: string } = {},
): Promise<Uint8Array> {
  const first = letters[0];
  if (!first) throw new RangeError('No letters to render');
  const doc = await PDFDocument.create({ updateMetadata: false });
  const fonts = {
    regular: await doc.embedFont(StandardFonts.Helvetica),
    bold: await doc.embedFont(StandardFonts.HelveticaBold),
  };
  for (const letter of letters) draw(doc, fonts, layoutLetter(letter));
  const at = new Date(`${first.date}T00:00:00Z`);
  doc.setTitle(winAnsiText(options.title ?? first.text.heading));
  doc.setAuthor('NHS Breast Screening Programme');
  doc.setCreator('Screening Hub');
  doc.setProducer('Screening Hub');
  doc.setLanguage(options.lang ?? first.text.lang);
  doc.setCreationDate(at);
  doc.setModificationDate(at);
  // A classic cross-reference table (no object streams) is several times quicker to write; a single letter is
  // written in one go, a print run lets other requests in every few hundred objects. Neither changes the bytes.
  return doc.save({ useObjectStreams: false, objectsPerTick: letters.length === 1 ? Infinity : 500 });
}

/** Her letter as a PDF. */
export async function renderLetterPdf(letter: ResultLetter): Promise<Uint8Array> {
  return renderLettersPdf([letter]);
}
