/**
 * Modality Worklist matching and return keys, as DICOM PS3.4 C.2.2.2 defines them for C-FIND:
 * - Universal matching: an empty key (or one of only '*') matches every entry.
 * - Single value matching: any other value without wildcards matches equal values. Person names match without
 *   regard to case (PS3.4 lets the SCP choose; staff type names in any case); other strings match exactly.
 * - Wildcard matching: '*' matches any run of characters (also none), '?' exactly one; not for dates, times or UIDs.
 * - Range matching for DA and TM: 'from-to', '-to' and 'from-' are inclusive.
 * - List of UID matching: UIDs separated by '\'.
 * - Sequence matching: a query sequence's one item matches if some item of the entry's sequence matches all of it.
 * - Keys the gateway does not support as matching keys (e.g. Pregnancy Status, which some SCUs send with a default
 *   value) are treated as universal, as PS3.4 allows for optional keys; they are returned empty.
 * The response holds exactly the keys the query asked for, with the entry's values (empty when it has none).
 * Pure: the datasets are plain "naturalized" objects keyed by DICOM keyword, as dcmjs gives them.
 */
export type DicomValue = string | number | null | undefined | DicomItem | DicomValue[];
export interface DicomItem {
  [keyword: string]: DicomValue;
}

type MatchVr = 'DA' | 'TM' | 'PN' | 'UI' | 'SQ' | 'text';

/** VRs of the worklist keys whose matching differs from plain text. */
const VR: Record<string, MatchVr> = {
  PatientName: 'PN',
  ReferringPhysicianName: 'PN',
  ScheduledPerformingPhysicianName: 'PN',
  PatientBirthDate: 'DA',
  ScheduledProcedureStepStartDate: 'DA',
  ScheduledProcedureStepStartTime: 'TM',
  StudyInstanceUID: 'UI',
  SOPInstanceUID: 'UI',
  ScheduledProcedureStepSequence: 'SQ',
  ReferencedStudySequence: 'SQ',
  ScheduledProtocolCodeSequence: 'SQ',
  RequestedProcedureCodeSequence: 'SQ',
  IssuerOfPatientIDQualifiersSequence: 'SQ',
};

/** The matching keys the gateway supports (docs/dicom-conformance-gateway.md); any other key matches everything. */
export const MATCHING_KEYS: ReadonlySet<string> = new Set([
  'AccessionNumber',
  'ReferringPhysicianName',
  'PatientName',
  'PatientID',
  'IssuerOfPatientID',
  'PatientBirthDate',
  'PatientSex',
  'StudyInstanceUID',
  'RequestedProcedureID',
  'RequestedProcedureDescription',
  'ScheduledProcedureStepSequence',
  'Modality',
  'ScheduledStationAETitle',
  'ScheduledProcedureStepStartDate',
  'ScheduledProcedureStepStartTime',
  'ScheduledProcedureStepID',
  'ScheduledProcedureStepDescription',
  'ScheduledProcedureStepLocation',
  'ScheduledPerformingPhysicianName',
]);

/** dcmjs keeps its own bookkeeping (`_vrMap`) beside the attributes: not DICOM keys. */
const isAttribute = (keyword: string) => !keyword.startsWith('_');

/** A value as text: numbers as digits, person names in their alphabetic form (dcmjs gives `{ Alphabetic }`). */
export function textOf(value: DicomValue): string {
  if (value === null || value === undefined) return '';
  if (Array.isArray(value)) return value.length === 0 ? '' : value.map(textOf).join('\\');
  if (typeof value === 'object') return typeof value.Alphabetic === 'string' ? value.Alphabetic : '';
  return String(value);
}

const trimmed = (s: string) => s.replace(/[\s\0]+$/, '').replace(/^\s+/, '');

function wildcardRegExp(pattern: string, flags: string): RegExp {
  const body = pattern
    .split('')
    .map((c) => (c === '*' ? '.*' : c === '?' ? '.' : c.replace(/[.+^${}()|[\]\\]/g, '\\$&')))
    .join('');
  return new RegExp(`^${body}$`, flags);
}

/** Inclusive range matching for DA (YYYYMMDD) and TM (HHMMSS.frac, compared on the digits given). */
function inRange(value: string, range: string, vr: 'DA' | 'TM'): boolean {
  const dash = range.indexOf('-');
  if (dash < 0) return vr === 'TM' ? value.startsWith(range) || value === range : value === range;
  const [from, to] = [range.slice(0, dash), range.slice(dash + 1)];
  if (vr === 'TM') {
    const width = Math.max(from.length, to.length);
    const v = value.replace(':', '').padEnd(width, '0').slice(0, width);
    return (!from || v >= from.padEnd(width, '0')) && (!to || v <= to.padEnd(width, '9'));
  }
  return (!from || value >= from) && (!to || value <= to);
}

type Test = (entry: DicomItem) => boolean;

/** The test of one matching key, its query value read once; undefined for universal matching. */
function keyTest(keyword: string, queryValue: DicomValue): Test | undefined {
  const vr = VR[keyword] ?? 'text';
  if (vr === 'SQ') {
    const [queryItem] = itemsOf(queryValue);
    if (!queryItem) return undefined; // an empty sequence is universal matching
    const itemMatches = matcher(queryItem);
    return (entry) => itemsOf(entry[keyword]).some(itemMatches);
  }
  const query = trimmed(textOf(queryValue));
  if (query === '' || /^\*+$/.test(query)) return undefined;
  const valueOf = (entry: DicomItem) => trimmed(textOf(entry[keyword]));
  if (vr === 'DA' || vr === 'TM') return (entry) => inRange(valueOf(entry), query, vr);
  if (vr === 'UI') {
    const uids = query.split('\\');
    return (entry) => uids.includes(valueOf(entry));
  }
  const caseInsensitive = vr === 'PN';
  if (/[*?]/.test(query)) {
    const pattern = wildcardRegExp(query, caseInsensitive ? 'is' : 's');
    return (entry) => pattern.test(valueOf(entry));
  }
  if (caseInsensitive) {
    const upper = query.toUpperCase();
    return (entry) => upper === valueOf(entry).toUpperCase();
  }
  return (entry) => query === valueOf(entry);
}

function itemsOf(value: DicomValue): DicomItem[] {
  if (Array.isArray(value))
    return value.filter((v): v is DicomItem => typeof v === 'object' && v !== null && !Array.isArray(v));
  return typeof value === 'object' && value !== null ? [value] : [];
}

/**
 * matches(query, ·) with the query read once (its values trimmed, its wildcards made regular expressions), for
 * testing one query against many entries.
 */
export function matcher(query: DicomItem): Test {
  const tests: Test[] = [];
  for (const [keyword, value] of Object.entries(query)) {
    if (!MATCHING_KEYS.has(keyword)) continue;
    const test = keyTest(keyword, value);
    if (test) tests.push(test);
  }
  return (entry) => tests.every((test) => test(entry));
}

/** Whether an entry matches every matching key of the query. */
export function matches(query: DicomItem, entry: DicomItem): boolean {
  return matcher(query)(entry);
}

/** The response for one matching entry: the keys the query asked for, with the entry's values. */
export function responseFor(query: DicomItem, entry: DicomItem): DicomItem {
  const response: DicomItem = {};
  for (const [keyword, queryValue] of Object.entries(query)) {
    if (keyword === 'QueryRetrieveLevel' || !isAttribute(keyword)) continue;
    if (VR[keyword] === 'SQ') {
      const [queryItem] = itemsOf(queryValue);
      const items = itemsOf(entry[keyword]).filter((item) => !queryItem || matches(queryItem, item));
      response[keyword] = queryItem ? items.map((item) => responseFor(queryItem, item)) : items;
    } else {
      response[keyword] = entry[keyword] ?? '';
    }
  }
  return response;
}

/**
 * What a response to the query is made of, apart from the entry's values: the return keys and, within each sequence
 * key, the return keys of its items (null: the whole items). The same for two queries that ask for the same keys,
 * whatever values they match on; a text, to use as a key.
 */
export function returnKeyShape(query: DicomItem): string {
  return JSON.stringify(shapeOf(query));
}

type Shape = [keyword: string, items?: Shape | null][];

function shapeOf(query: DicomItem): Shape {
  const shape: Shape = [];
  for (const [keyword, queryValue] of Object.entries(query)) {
    if (keyword === 'QueryRetrieveLevel' || !isAttribute(keyword)) continue;
    if (VR[keyword] === 'SQ') {
      const [queryItem] = itemsOf(queryValue);
      shape.push([keyword, queryItem ? shapeOf(queryItem) : null]);
    } else {
      shape.push([keyword]);
    }
  }
  return shape.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

/**
 * Whether the response to the query keeps every item of the entry's sequences (responseFor drops the items that do
 * not match the query's sequence item). When it does, the response depends only on the entry and the query's
 * return keys (returnKeyShape), not on the values the query matches on.
 */
export function keepsEverySequenceItem(query: DicomItem, entry: DicomItem): boolean {
  return sequenceItemsKept(query)(entry);
}

/** keepsEverySequenceItem(query, ·) with the query read once. */
export function sequenceItemsKept(query: DicomItem): Test {
  const tests: Test[] = [];
  for (const [keyword, queryValue] of Object.entries(query)) {
    if (keyword === 'QueryRetrieveLevel' || !isAttribute(keyword) || VR[keyword] !== 'SQ') continue;
    const [queryItem] = itemsOf(queryValue);
    if (!queryItem) continue;
    const [itemMatches, itemKeeps] = [matcher(queryItem), sequenceItemsKept(queryItem)];
    tests.push((entry) => itemsOf(entry[keyword]).every((item) => itemMatches(item) && itemKeeps(item)));
  }
  return (entry) => tests.every((test) => test(entry));
}

/** The C-FIND answer: one response per matching entry, in the worklist's order. */
export function findWorklist(query: DicomItem, entries: readonly DicomItem[]): DicomItem[] {
  const matching = matcher(query);
  return entries.filter(matching).map((entry) => responseFor(query, entry));
}
