/**
 * Double reading: each exam is read twice, blind, and arbitrated when the office's policy says so. Pure.
 */
import { addDays, addYears } from './dates.js';
import {
  LESION_LABELS,
  LESIONS,
  OPINION_LABELS,
  OPINIONS,
  TECHNICAL_REASON_LABELS,
  TECHNICAL_REASONS,
  VIEWS,
  type Finding,
  type Lesion,
  type Opinion,
  type OpinionDetails,
  type PriorImages,
  type ReadNumber,
  type TechnicalReason,
  type View,
} from './screening-outcomes.js';

/** When an exam goes to arbitration: only when the two reads disagree, whenever either recalls, or whenever either is not normal. */
export type ArbitrationPolicy = 'discordant' | 'all_recalls' | 'all_non_normal';

export const ARBITRATION_POLICY_LABELS: Record<ArbitrationPolicy, string> = {
  discordant: 'When the two readers disagree',
  all_recalls: 'When the readers disagree, and every recall for assessment',
  all_non_normal: 'When the readers disagree, and every opinion that is not normal',
};

export interface ReadSummary {
  readNumber: ReadNumber;
  readerId: string;
  opinion: Opinion;
}

export type ReadingStage = 'first_read' | 'second_read' | 'arbitration' | 'decided';

export interface ReadingOutcome {
  /** What the exam waits for next, or 'decided'. */
  stage: ReadingStage;
  /** The exam's opinion once decided: the two reads' when they agree and no arbitration is needed, else the arbiter's. */
  opinion: Opinion | null;
}

/** Whether two reads need an arbiter under the policy. */
export function needsArbitration(first: Opinion, second: Opinion, policy: ArbitrationPolicy): boolean {
  if (first !== second) return true;
  if (policy === 'all_recalls') return first === 'recall_assessment';
  if (policy === 'all_non_normal') return first !== 'normal';
  return false;
}

/** Where an exam's reading stands, from the reads it has (in any order). */
export function readingOutcome(reads: readonly ReadSummary[], policy: ArbitrationPolicy): ReadingOutcome {
  const byNumber = (n: ReadNumber) => reads.find((r) => r.readNumber === n);
  const [first, second, arbiter] = [byNumber(1), byNumber(2), byNumber(3)];
  if (!first) return { stage: 'first_read', opinion: null };
  if (!second) return { stage: 'second_read', opinion: null };
  if (!needsArbitration(first.opinion, second.opinion, policy)) return { stage: 'decided', opinion: first.opinion };
  if (!arbiter) return { stage: 'arbitration', opinion: null };
  return { stage: 'decided', opinion: arbiter.opinion };
}

// ---------------------------------------------------------------------------------------------------------------
// Who may read an exam next, and what each reader may see of the other reads (blind double reading).

/** Why a reader may not record an opinion on an exam (the store says so in words: READ_REFUSALS). */
export type ReadRefusal = 'already_read' | 'decided';

export const READ_REFUSALS: Record<ReadRefusal, string> = {
  already_read: 'You have already read this exam. A reader never reads the same exam twice',
  decided: 'This exam has had all the reads it needs',
};

/**
 * The read this reader would record next: read 1 or 2 (blind), or 3 (arbitration, only by a reader who did neither
 * read). A reader never reads the same exam twice, and nobody reads an exam whose reading is decided.
 */
export function nextRead(
  reads: readonly ReadSummary[],
  readerId: string,
  policy: ArbitrationPolicy,
): { readNumber: ReadNumber } | { refused: ReadRefusal } {
  if (reads.some((r) => r.readerId === readerId)) return { refused: 'already_read' };
  const { stage } = readingOutcome(reads, policy);
  if (stage === 'first_read') return { readNumber: 1 };
  if (stage === 'second_read') return { readNumber: 2 };
  if (stage === 'arbitration') return { readNumber: 3 };
  return { refused: 'decided' };
}

/**
 * The reads this reader may see. Read 1 and read 2 are blind to each other, before and after: each of those readers
 * sees only their own opinion. The arbiter sees both (that is arbitration) once the exam waits for them, and keeps
 * seeing them after. Anyone else sees none.
 */
export function visibleReads(
  reads: readonly ReadSummary[],
  readerId: string,
  policy: ArbitrationPolicy,
): ReadSummary[] {
  const mine = reads.find((r) => r.readerId === readerId);
  const sorted = [...reads].sort((a, b) => a.readNumber - b.readNumber);
  if (mine?.readNumber === 3) return sorted;
  if (mine) return [mine];
  return readingOutcome(reads, policy).stage === 'arbitration' ? sorted.filter((r) => r.readNumber !== 3) : [];
}

/** The (read 1, read 2) opinion pairs that go to arbitration under a policy: the store's query uses this list. */
export function arbitrationPairs(policy: ArbitrationPolicy): [Opinion, Opinion][] {
  return OPINIONS.flatMap((a) =>
    OPINIONS.filter((b) => needsArbitration(a, b, policy)).map((b): [Opinion, Opinion] => [a, b]),
  );
}

// ---------------------------------------------------------------------------------------------------------------
// The exam's context on the worklist: episode type and prior images.

export type EpisodeType = 'C' | 'R' | 'E' | 'H' | 'T' | 'G' | 'S';

export const EPISODE_TYPE_LABELS: Record<EpisodeType, string> = {
  C: 'First call (C)',
  R: 'Routine recall (R)',
  E: 'Early recall (E)',
  H: 'Higher risk (H)',
  T: 'Higher risk short-term recall (T)',
  G: 'GP referral (G)',
  S: 'Self-referral (S)',
};

/** Prior images as the reader needs to know them: unrecorded means not needed at a first call, else not requested. */
export function priorImagesStatus(recorded: PriorImages | null, episodeType: EpisodeType): PriorImages {
  if (recorded) return recorded;
  return episodeType === 'C' ? 'not_needed' : 'not_requested';
}

// ---------------------------------------------------------------------------------------------------------------
// The PACS viewer link: image viewing stays in the PACS.

/** An Orthanc-style DICOMweb (WADO-RS) study URL on the same host; PACS_VIEWER_URL overrides it. */
export const DEFAULT_PACS_VIEWER_URL = '/dicom-web/studies/{studyInstanceUid}';

/**
 * The study's link in the PACS viewer: the template with {studyInstanceUid} and {accessionNumber} filled in (each
 * URL-encoded). Null when the template needs a value the exam does not have, or is not an http(s) URL or a path.
 */
export function pacsViewerUrl(
  template: string,
  study: { studyInstanceUid: string | null; accessionNumber: string | null },
): string | null {
  if (!/^(https?:\/\/|\/)/i.test(template)) return null;
  let missing = false;
  const url = template.replace(
    /\{(studyInstanceUid|accessionNumber)\}/g,
    (_, key: 'studyInstanceUid' | 'accessionNumber') => {
      const value = study[key];
      if (!value) missing = true;
      return encodeURIComponent(value ?? '');
    },
  );
  return missing ? null : url;
}

// ---------------------------------------------------------------------------------------------------------------
// An opinion's details: what the store accepts, and the reading form that makes them.

export const COMMENT_MAX = 2000;
export const LOCATION_MAX = 200;
export const DEFERRAL_REASON_MAX = 500;
/** Findings a recall for assessment records: one a breast. */
export const BREASTS = ['right', 'left'] as const;

export interface OpinionInput {
  opinion: Opinion;
  details: OpinionDetails;
  comment: string;
}

/** A problem with an opinion, keyed by the reading form's field it concerns. */
export interface OpinionProblem {
  field: string;
  message: string;
}

const isOneOf = <T extends string>(list: readonly T[], value: unknown): value is T =>
  typeof value === 'string' && (list as readonly string[]).includes(value);

/**
 * Checks an opinion as the store receives it (from the form, or any other caller): the details must be the
 * opinion's own shape. Normal has none; technical recall names the views to repeat and why; recall for assessment
 * has one or two findings, at most one a breast.
 */
export function opinionProblems(opinion: unknown, details: unknown, comment: unknown): OpinionProblem[] {
  const problems: OpinionProblem[] = [];
  const add = (field: string, message: string) => problems.push({ field, message });
  if (typeof comment !== 'string' || comment.length > COMMENT_MAX)
    add('comment', `The comment must be ${COMMENT_MAX} characters or fewer`);
  if (!isOneOf(OPINIONS, opinion)) {
    add('opinion', 'Choose normal, technical recall or recall for assessment');
    return problems;
  }
  const d = (typeof details === 'object' && details !== null ? details : { invalid: true }) as Record<string, unknown>;
  const keys = Object.keys(d);
  if (opinion === 'normal') {
    if (keys.length > 0) add('opinion', 'A normal opinion has no views or findings');
  } else if (opinion === 'technical_recall') {
    const views = d.views;
    if (keys.some((k) => k !== 'views' && k !== 'reason'))
      add('opinion', 'A technical recall has only views and a reason');
    if (!Array.isArray(views) || views.length === 0 || !views.every((v) => isOneOf(VIEWS, v)))
      add('views', 'Choose the views to repeat');
    else if (new Set(views).size !== views.length) add('views', 'Choose each view once');
    if (!isOneOf(TECHNICAL_REASONS, d.reason)) add('technicalReason', 'Choose why the images need repeating');
  } else {
    const findings = d.findings;
    if (keys.some((k) => k !== 'findings')) add('opinion', 'A recall for assessment has only findings');
    if (!Array.isArray(findings) || findings.length === 0 || findings.length > 2) {
      add('findings', 'Record a finding in one or both breasts');
    } else {
      const sides = new Set<unknown>();
      for (const f of findings as Record<string, unknown>[]) {
        const side = isOneOf(BREASTS, f?.side) ? f.side : null;
        if (!side) {
          add('findings', 'Each finding must be in the right or left breast');
          continue;
        }
        if (sides.has(side)) add(`${side}-lesion`, `Record one finding in the ${side} breast`);
        sides.add(side);
        if (!isOneOf(LESIONS, f.lesion)) add(`${side}-lesion`, `Choose the lesion type in the ${side} breast`);
        const location = typeof f.location === 'string' ? f.location.trim() : '';
        if (!location) add(`${side}-location`, `Enter where in the ${side} breast the finding is`);
        else if (location.length > LOCATION_MAX)
          add(`${side}-location`, `The location must be ${LOCATION_MAX} characters or fewer`);
        if (!(Number.isInteger(f.concern) && (f.concern as number) >= 1 && (f.concern as number) <= 5))
          add(`${side}-concern`, `Choose the level of concern for the ${side} breast, from 1 to 5`);
      }
    }
  }
  return problems;
}

type FormBody = Record<string, string | string[] | undefined>;

const text = (body: FormBody, name: string): string => {
  const value = body[name];
  return (Array.isArray(value) ? (value[0] ?? '') : (value ?? '')).trim();
};
const list = (body: FormBody, name: string): string[] => {
  const value = body[name];
  return (Array.isArray(value) ? value : value ? [value] : []).map((v) => v.trim()).filter(Boolean);
};

/**
 * The reading form (opinion; views and technicalReason; right-/left- lesion, location and concern; comment) as an
 * opinion, or every problem at once. Details entered under another opinion are not silently dropped: a finding
 * recorded with a normal opinion is a problem to put right, never a lost finding.
 */
export function opinionFromForm(body: FormBody): { input: OpinionInput | null; problems: OpinionProblem[] } {
  const opinion = text(body, 'opinion');
  const comment = text(body, 'comment');
  const views = list(body, 'views');
  const reason = text(body, 'technicalReason');
  const breasts = BREASTS.map((side) => ({
    side,
    lesion: text(body, `${side}-lesion`),
    location: text(body, `${side}-location`),
    concern: text(body, `${side}-concern`),
  }));
  const started = breasts.filter((b) => b.lesion || b.location || b.concern);
  const problems: OpinionProblem[] = [];
  if (!isOneOf(OPINIONS, opinion)) {
    problems.push({ field: 'opinion', message: 'Choose normal, technical recall or recall for assessment' });
    return { input: null, problems };
  }
  if (opinion !== 'technical_recall' && (views.length > 0 || reason))
    problems.push({
      field: 'views',
      message: `You chose views to repeat but your opinion is ${OPINION_LABELS[opinion].toLowerCase()}: choose technical recall, or clear the views and reason`,
    });
  if (opinion !== 'recall_assessment')
    for (const b of started)
      problems.push({
        field: `${b.side}-lesion`,
        message: `You recorded a finding in the ${b.side} breast but your opinion is ${OPINION_LABELS[opinion].toLowerCase()}: choose recall for assessment, or clear the finding`,
      });
  let details: OpinionDetails = {};
  if (opinion === 'technical_recall') details = { views: views as View[], reason: reason as TechnicalReason };
  if (opinion === 'recall_assessment') {
    if (started.length === 0)
      problems.push({
        field: 'right-lesion',
        message: 'Record a finding in one or both breasts: choose the lesion type',
      });
    details = {
      findings: started.map((b) => ({
        side: b.side,
        lesion: b.lesion as Lesion,
        location: b.location,
        concern: (/^[1-5]$/.test(b.concern) ? Number(b.concern) : NaN) as Finding['concern'],
      })),
    };
  }
  const structural = opinionProblems(opinion, details, comment).filter(
    (p) => !(started.length === 0 && p.field === 'findings'),
  );
  problems.push(...structural);
  const seen = new Set<string>();
  const unique = problems.filter((p) => (seen.has(p.field) ? false : (seen.add(p.field), true)));
  return unique.length > 0 ? { input: null, problems: unique } : { input: { opinion, details, comment }, problems: [] };
}

/** A reader's opinion in words, with its details, for the reading page. */
export function describeOpinion(opinion: Opinion, details: OpinionDetails): string[] {
  const lines = [OPINION_LABELS[opinion]];
  if ('views' in details) lines.push(`Repeat ${details.views.join(', ')}: ${TECHNICAL_REASON_LABELS[details.reason]}`);
  if ('findings' in details)
    for (const f of details.findings)
      lines.push(
        `${f.side === 'right' ? 'Right' : 'Left'} breast: ${LESION_LABELS[f.lesion]}, ${f.location}, level of concern ${f.concern}`,
      );
  return lines;
}

// ---------------------------------------------------------------------------------------------------------------
// Readers' own figures.

/** NHSBSP quality assurance: each film reader reads at least 5,000 cases a year. */
export const READER_QA_ANNUAL_READS = 5000;

/** The periods a reader's figures cover: this calendar year, and the 12 months to today (both up to today). */
export function statisticsPeriods(today: string): { yearFrom: string; twelveMonthsFrom: string } {
  return { yearFrom: `${today.slice(0, 4)}-01-01`, twelveMonthsFrom: addDays(addYears(today, -1), 1) };
}

/** A rate as a fraction, or null with nothing to divide by. */
export const rate = (count: number, of: number): number | null => (of > 0 ? count / of : null);
