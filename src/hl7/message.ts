/**
 * A small HL7 v2 reader and writer (ER7, the "pipe and hat" encoding). No I/O.
 *
 * - Segments end with CR (a lone LF or CR LF is tolerated: some interface engines send them).
 * - The first segment is MSH. MSH-1 is the field separator (the character after "MSH"); MSH-2 holds the
 *   component, repetition, escape and sub-component characters, in that order (usually `^~\&`).
 * - Fields split by the field separator, then repetitions, components and sub-components.
 * - Escape sequences are decoded in each sub-component: \F\ \S\ \T\ \R\ \E\ (the encoding characters), \Xhh…\
 *   (hexadecimal bytes, read as UTF-8), \.br\ (a line break); \H\ and \N\ (highlighting) are dropped. An escape
 *   that is not understood is kept as it is.
 *
 * Positions are numbered as HL7 numbers them, from 1: `value(segment, 3, 1)` is PID-3.1. For MSH, field 1 is the
 * field separator itself and field 2 the encoding characters, so MSH-9 is `value(msh, 9)` as in the standard.
 */

export class Hl7ParseError extends Error {
  override readonly name = 'Hl7ParseError';
}

export interface Encoding {
  field: string;
  component: string;
  repetition: string;
  escape: string;
  subcomponent: string;
}

export const DEFAULT_ENCODING: Encoding = {
  field: '|',
  component: '^',
  repetition: '~',
  escape: '\\',
  subcomponent: '&',
};

/** One field: its repetitions, each a list of components, each a list of sub-components (decoded text). */
export type Field = string[][][];

export interface Segment {
  name: string;
  /** fields[n] is field n (fields[0] is unused); a field that was not sent is []. */
  fields: Field[];
}

export interface Hl7Message {
  encoding: Encoding;
  segments: Segment[];
}

const SEGMENT_NAME = /^[A-Z][A-Z0-9]{2}$/;

/** Reads a message. Throws Hl7ParseError for text that is not an HL7 v2 message with a usable MSH. */
export function parseMessage(text: string): Hl7Message {
  const lines = text
    .split(/\r\n|\r|\n/)
    .map((line) => line.replace(/^\s+/, ''))
    .filter((line) => line.length > 0);
  const first = lines[0];
  if (!first?.startsWith('MSH')) throw new Hl7ParseError('The message does not begin with an MSH segment');
  const encoding = encodingOf(first);
  const segments = lines.map((line, index) => parseSegment(line, encoding, index + 1));
  return { encoding, segments };
}

function encodingOf(msh: string): Encoding {
  const field = msh[3];
  if (field === undefined || /[A-Za-z0-9\s]/.test(field))
    throw new Hl7ParseError('MSH-1 (the field separator) is missing or is a letter, digit or space');
  const end = msh.indexOf(field, 4);
  const chars = end < 0 ? msh.slice(4) : msh.slice(4, end);
  // Two (component, repetition) at the least; a fifth (truncation, HL7 2.7) is allowed and not used.
  if (chars.length < 2 || chars.length > 5)
    throw new Hl7ParseError(`MSH-2 (the encoding characters) must be 2 to 5 characters, not "${chars}"`);
  const [component = '^', repetition = '~', escape = '\\', subcomponent = '&'] = chars;
  const all = [field, component, repetition, escape, subcomponent];
  if (new Set(all).size !== all.length || all.some((c) => /[A-Za-z0-9\s]/.test(c)))
    throw new Hl7ParseError(`MSH-1 and MSH-2 must be distinct punctuation characters, not "${field}${chars}"`);
  return { field, component, repetition, escape, subcomponent };
}

function parseSegment(line: string, encoding: Encoding, position: number): Segment {
  const parts = line.split(encoding.field);
  const name = parts[0] ?? '';
  if (!SEGMENT_NAME.test(name))
    throw new Hl7ParseError(`Segment ${position} has no valid name (three capital letters or digits): "${name}"`);
  if (name === 'MSH') {
    // MSH-1 is the separator; MSH-2 the encoding characters, not split or unescaped.
    const rest = parts.slice(2).map((f) => parseField(f, encoding));
    return { name, fields: [[], [[[encoding.field]]], [[[parts[1] ?? '']]], ...rest] };
  }
  return { name, fields: [[], ...parts.slice(1).map((f) => parseField(f, encoding))] };
}

function parseField(text: string, encoding: Encoding): Field {
  if (text === '') return [];
  return text
    .split(encoding.repetition)
    .map((rep) =>
      rep.split(encoding.component).map((comp) => comp.split(encoding.subcomponent).map((s) => unescape(s, encoding))),
    );
}

/** Decodes HL7 escape sequences in one sub-component. */
export function unescape(text: string, encoding: Encoding = DEFAULT_ENCODING): string {
  const e = encoding.escape;
  if (!text.includes(e)) return text;
  let out = '';
  let i = 0;
  while (i < text.length) {
    const ch = text[i] as string;
    if (ch !== e) {
      out += ch;
      i++;
      continue;
    }
    const close = text.indexOf(e, i + 1);
    if (close < 0) {
      out += text.slice(i);
      break;
    }
    const code = text.slice(i + 1, close);
    const decoded = decodeEscape(code, encoding);
    out += decoded ?? text.slice(i, close + 1);
    i = close + 1;
  }
  return out;
}

function decodeEscape(code: string, encoding: Encoding): string | undefined {
  switch (code) {
    case 'F':
      return encoding.field;
    case 'S':
      return encoding.component;
    case 'T':
      return encoding.subcomponent;
    case 'R':
      return encoding.repetition;
    case 'E':
      return encoding.escape;
    case 'H':
    case 'N':
      return '';
    case '.br':
      return '\n';
  }
  if (/^X([0-9A-Fa-f]{2})+$/.test(code)) return Buffer.from(code.slice(1), 'hex').toString('utf8');
  return undefined;
}

/** Encodes text so that it survives as one sub-component: the encoding characters and line breaks escaped. */
export function escape(text: string, encoding: Encoding = DEFAULT_ENCODING): string {
  const e = encoding.escape;
  let out = '';
  for (const ch of text) {
    if (ch === e) out += `${e}E${e}`;
    else if (ch === encoding.field) out += `${e}F${e}`;
    else if (ch === encoding.component) out += `${e}S${e}`;
    else if (ch === encoding.subcomponent) out += `${e}T${e}`;
    else if (ch === encoding.repetition) out += `${e}R${e}`;
    else if (ch === '\r') out += `${e}X0D${e}`;
    else if (ch === '\n') out += `${e}.br${e}`;
    else out += ch;
  }
  return out;
}

/** All segments with this name, in message order. */
export function segmentsNamed(message: Hl7Message, name: string): Segment[] {
  return message.segments.filter((s) => s.name === name);
}

/** The first segment with this name. */
export function firstSegment(message: Hl7Message, name: string): Segment | undefined {
  return message.segments.find((s) => s.name === name);
}

/** The repetitions of a field ([] when it was not sent). */
export function repetitions(segment: Segment | undefined, field: number): string[][][] {
  return segment?.fields[field] ?? [];
}

/** One sub-component's text ('' when absent): field, component, sub-component and repetition from 1 / 0. */
export function value(segment: Segment | undefined, field: number, component = 1, subcomponent = 1, repetition = 0) {
  return segment?.fields[field]?.[repetition]?.[component - 1]?.[subcomponent - 1] ?? '';
}

/** A field value to write: text (one component), or components, each text or sub-components. */
export type FieldInput = string | readonly (string | readonly string[])[];

export interface SegmentInput {
  name: string;
  /** fields[0] is field 1 (for MSH: field 3, MSH-1 and MSH-2 come from the encoding). */
  fields: readonly FieldInput[];
}

/** Writes segments as an ER7 message, CR after each segment, every value escaped. */
export function writeMessage(segments: readonly SegmentInput[], encoding: Encoding = DEFAULT_ENCODING): string {
  const chars = encoding.component + encoding.repetition + encoding.escape + encoding.subcomponent;
  const writeField = (field: FieldInput): string =>
    typeof field === 'string'
      ? escape(field, encoding)
      : field
          .map((comp) =>
            typeof comp === 'string'
              ? escape(comp, encoding)
              : comp.map((s) => escape(s, encoding)).join(encoding.subcomponent),
          )
          .join(encoding.component)
          .replace(new RegExp(`[${escapeRegExp(encoding.component)}]+$`), '');
  return segments
    .map((segment) => {
      if (!SEGMENT_NAME.test(segment.name)) throw new RangeError(`Not a segment name: ${segment.name}`);
      const fields = segment.fields.map(writeField);
      while (fields.length && fields[fields.length - 1] === '') fields.pop();
      const head = segment.name === 'MSH' ? `MSH${encoding.field}${chars}` : segment.name;
      return [head, ...fields].join(encoding.field) + '\r';
    })
    .join('');
}

function escapeRegExp(text: string): string {
  return text.replace(/[\\^$.*+?()[\]{}|-]/g, '\\$&');
}
