/**
 * The reading history of the demo office's screened exams: when the images reached the PACS, the two blind reads
 * (and arbitration where they disagreed), the result, and for women recalled, their assessment. Made up from the
 * seeded generator with rates close to the programme's (about 4 in 100 recalled to assessment, 1 in 100
 * technical recalls, about 1 in 5 women assessed found to have cancer). Pure apart from the generator.
 */
import { addDays, addMonths, daysBetween, type IsoDate } from '../pathway/dates.js';
import { readingOutcome, type ReadSummary } from '../pathway/reading.js';
import {
  LESIONS,
  TECHNICAL_REASONS,
  VIEWS,
  type AssessmentOutcome,
  type AssessmentProcedure,
  type ExamResult,
  type Opinion,
  type OpinionDetails,
  type ReadNumber,
} from '../pathway/screening-outcomes.js';

/** The seeded generator's methods this module uses. */
export interface DemoRandom {
  next(): number;
  int(min: number, max: number): number;
  chance(p: number): boolean;
  pick<T>(items: readonly T[]): T;
}

export interface PlannedRead {
  readNumber: ReadNumber;
  /** Index into the demo's film readers. */
  reader: number;
  opinion: Opinion;
  details: OpinionDetails;
  on: IsoDate;
}

export interface ExamPlan {
  /** The day the images reached the PACS, or null: still on the mobile unit. */
  imagesOn: IsoDate | null;
  reads: PlannedRead[];
  result: { result: ExamResult; issuedOn: IsoDate; nextTestDue: IsoDate | null } | null;
}

const RECALL_INTERVAL_MONTHS = 36;

function opinionOf(rng: DemoRandom, truth: Opinion): Opinion {
  if (truth !== 'normal') return rng.chance(0.9) ? truth : 'normal';
  const r = rng.next();
  return r < 0.985 ? 'normal' : r < 0.997 ? 'recall_assessment' : 'technical_recall';
}

function detailsOf(rng: DemoRandom, opinion: Opinion): OpinionDetails {
  if (opinion === 'technical_recall') return { views: [rng.pick(VIEWS)], reason: rng.pick(TECHNICAL_REASONS) };
  if (opinion === 'recall_assessment') {
    return {
      findings: [
        {
          side: rng.chance(0.5) ? 'left' : 'right',
          lesion: rng.pick(LESIONS),
          location: rng.pick(['upper outer quadrant', 'upper inner quadrant', 'lower outer quadrant', 'retroareolar']),
          concern: rng.pick([2, 3, 3, 4, 4, 5] as const),
        },
      ],
    };
  }
  return {};
}

/**
 * An exam screened on `screenedOn` at a static or mobile site, as it stands on `today` (a day not yet over: reads
 * and results happen on earlier days only). `readers` is how many film readers there are (at least 3).
 */
export function planExam(
  rng: DemoRandom,
  screenedOn: IsoDate,
  mobile: boolean,
  today: IsoDate,
  readers: number,
): ExamPlan {
  const age = daysBetween(screenedOn, today);
  // Mobile units send their images that evening or the next day; one in a hundred recent exams is still on its way.
  const imagesOn = mobile ? addDays(screenedOn, rng.int(0, 1)) : screenedOn;
  if ((mobile && age <= 2 && rng.chance(0.01)) || imagesOn >= today) return { imagesOn: null, reads: [], result: null };
  const r = rng.next();
  const truth: Opinion = r < 0.01 ? 'technical_recall' : r < 0.055 ? 'recall_assessment' : 'normal';
  const first = rng.int(0, readers - 1);
  const second = (first + rng.int(1, readers - 1)) % readers;
  let arbiter = 0;
  while (arbiter === first || arbiter === second) arbiter++;
  const reads: PlannedRead[] = [];
  const read = (readNumber: ReadNumber, reader: number, on: IsoDate, opinion = opinionOf(rng, truth)) => {
    if (on >= today) return false;
    reads.push({ readNumber, reader, opinion, details: detailsOf(rng, opinion), on });
    return true;
  };
  const firstOn = addDays(imagesOn, rng.int(1, 4));
  const secondOn = addDays(firstOn, rng.int(0, 3));
  if (!read(1, first, firstOn) || !read(2, second, secondOn)) return { imagesOn, reads, result: null };
  const summaries: ReadSummary[] = reads.map((x) => ({
    readNumber: x.readNumber,
    readerId: String(x.reader),
    opinion: x.opinion,
  }));
  let decidedOn = secondOn;
  if (readingOutcome(summaries, 'discordant').stage === 'arbitration') {
    decidedOn = addDays(secondOn, rng.int(1, 3));
    if (!read(3, arbiter, decidedOn, truth)) return { imagesOn, reads, result: null };
    summaries.push({ readNumber: 3, readerId: String(arbiter), opinion: truth });
  }
  const opinion = readingOutcome(summaries, 'discordant').opinion!;
  const issuedOn = addDays(decidedOn, rng.int(1, 3));
  if (issuedOn >= today) return { imagesOn, reads, result: null };
  const result: ExamResult =
    opinion === 'normal' ? 'routine_recall' : opinion === 'technical_recall' ? 'technical_recall' : 'recall_assessment';
  return {
    imagesOn,
    reads,
    result: {
      result,
      issuedOn,
      nextTestDue: result === 'routine_recall' ? addMonths(screenedOn, RECALL_INTERVAL_MONTHS) : null,
    },
  };
}

export interface AssessmentPlan {
  procedures: { procedure: AssessmentProcedure; side: 'left' | 'right'; bCode: 'B2' | 'B5a' | 'B5b' | null }[];
  outcome: AssessmentOutcome;
  side: 'left' | 'right';
  sizeMm: number | null;
  grade: number | null;
  earlyRecallMonths: number | null;
  decidedOn: IsoDate;
  /** The episode's final action: routine recall, early recall, or medical treatment. */
  finalAction: 'RR' | 'EC' | 'MT';
}

/** What assessment on `assessedOn` found, or null while the multidisciplinary meeting has not yet met. */
export function planAssessment(rng: DemoRandom, assessedOn: IsoDate, today: IsoDate): AssessmentPlan | null {
  const decidedOn = addDays(assessedOn, rng.int(5, 9));
  if (decidedOn >= today) return null;
  const side = rng.chance(0.5) ? 'left' : 'right';
  const r = rng.next();
  const outcome: AssessmentOutcome =
    r < 0.4 ? 'normal' : r < 0.8 ? 'benign' : r < 0.96 ? 'malignant_invasive' : 'malignant_non_invasive';
  const procedures: AssessmentPlan['procedures'] = [
    { procedure: 'clinical_examination', side, bCode: null },
    { procedure: 'further_mammography', side, bCode: null },
  ];
  if (outcome !== 'normal' || rng.chance(0.6)) procedures.push({ procedure: 'ultrasound', side, bCode: null });
  if (outcome.startsWith('malignant'))
    procedures.push({ procedure: 'core_biopsy', side, bCode: outcome === 'malignant_invasive' ? 'B5b' : 'B5a' });
  else if (outcome === 'benign' && rng.chance(0.5))
    procedures.push({ procedure: rng.chance(0.8) ? 'core_biopsy' : 'vacuum_biopsy', side, bCode: 'B2' });
  const invasive = outcome === 'malignant_invasive';
  const earlyRecallMonths = outcome === 'benign' && rng.chance(0.1) ? 12 : null;
  return {
    procedures,
    outcome,
    side,
    sizeMm: invasive ? rng.int(4, 45) : null,
    grade: invasive ? rng.int(1, 3) : null,
    earlyRecallMonths,
    decidedOn,
    finalAction: outcome.startsWith('malignant') ? 'MT' : earlyRecallMonths ? 'EC' : 'RR',
  };
}
