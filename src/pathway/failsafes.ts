/**
 * Failsafes: the checks that account for every woman between screening and her result (and, when recalled, her
 * assessment outcome), so nobody is lost between steps. Each check lists the women waiting at one step, with how
 * long they have waited, who owns the next step and the threshold past which the wait is overdue. Pure: the
 * thresholds are read from config/failsafe-thresholds.json by the store and checked here.
 */
import { z } from 'zod';
import { addDays, daysBetween, isoDateInLondon, type IsoDate } from './dates.js';

export const FAILSAFE_CHECKS = [
  'screened_no_images',
  'images_not_read',
  'read_no_result',
  'result_letter_not_sent',
  'result_gp_not_acknowledged',
  'technical_recall_no_repeat',
  'recalled_no_assessment',
  'assessment_no_outcome',
  'outcome_letter_not_sent',
  'outcome_gp_not_acknowledged',
  'appointment_not_closed',
  'open_conflicts',
  'movers_not_acknowledged',
] as const;
export type FailsafeCheckId = (typeof FAILSAFE_CHECKS)[number];

export const isFailsafeCheck = (value: unknown): value is FailsafeCheckId =>
  typeof value === 'string' && (FAILSAFE_CHECKS as readonly string[]).includes(value);

export interface FailsafeCheck {
  id: FailsafeCheckId;
  title: string;
  /** A few words, for the chart and the trend table. */
  short: string;
  /** What being on this list means, in a sentence or two. */
  meaning: string;
  /** Who does the next step. */
  owner: string;
  /** The step that starts the clock (the age is counted from it). */
  counts: string;
  /** The pathway's failsafes, or the queues staff also tally (data conflicts, movers). */
  group: 'pathway' | 'queue';
}

export const OWNERS = {
  site: 'The screening site or mobile unit',
  reading: 'The reading team',
  office: 'The screening office admin team',
  assessment: 'The assessment team',
  gpMessaging: 'The GP messaging and support team',
} as const;

export const FAILSAFE_DEFINITIONS: Record<FailsafeCheckId, FailsafeCheck> = {
  screened_no_images: {
    id: 'screened_no_images',
    title: 'Screened, but no images at the hub',
    short: 'No images at the hub',
    meaning:
      'She was screened (or partially screened) but her images have not reached the hub and the PACS, so nobody can read them.',
    owner: OWNERS.site,
    counts: 'the day she was screened',
    group: 'pathway',
  },
  images_not_read: {
    id: 'images_not_read',
    title: 'Images at the hub, but not read twice',
    short: 'Not read twice',
    meaning:
      'Her images are in the PACS but the two blind reads (and arbitration, when the reads need it) are not finished.',
    owner: OWNERS.reading,
    counts: 'the day her images reached the hub',
    group: 'pathway',
  },
  read_no_result: {
    id: 'read_no_result',
    title: 'Read, but no result issued',
    short: 'No result issued',
    meaning: 'The reading is decided but no result has been issued, so no letter can go to her or her GP.',
    owner: OWNERS.office,
    counts: 'the day the reading was decided',
    group: 'pathway',
  },
  result_letter_not_sent: {
    id: 'result_letter_not_sent',
    title: 'Result issued, but her letter not sent',
    short: 'Letter not sent',
    meaning: 'Her result is issued but her result letter is missing, still waiting to be sent, or failed.',
    owner: OWNERS.office,
    counts: 'the day she was screened',
    group: 'pathway',
  },
  result_gp_not_acknowledged: {
    id: 'result_gp_not_acknowledged',
    title: 'Result issued, but her GP has not acknowledged it',
    short: 'GP not acknowledged',
    meaning:
      'The electronic result message to her GP practice is missing, not sent, failed, or sent but not yet acknowledged by the practice.',
    owner: OWNERS.gpMessaging,
    counts: 'the day the message was sent (or the result was issued, when it has not been sent)',
    group: 'pathway',
  },
  technical_recall_no_repeat: {
    id: 'technical_recall_no_repeat',
    title: 'Technical recall, but no repeat exam',
    short: 'No repeat exam',
    meaning:
      'Her result is technical recall, but no repeat screening appointment stands: none could be booked, or it was cancelled, she did not attend or she was not screened, and no new one is booked.',
    owner: OWNERS.office,
    counts: 'the day the result was issued',
    group: 'pathway',
  },
  recalled_no_assessment: {
    id: 'recalled_no_assessment',
    title: 'Recalled for assessment, but no assessment appointment',
    short: 'No assessment appointment',
    meaning:
      'Her result is recall to assessment, but she has no assessment appointment booked, or it was cancelled or she did not attend and no new one is booked.',
    owner: OWNERS.assessment,
    counts: 'the day she was screened',
    group: 'pathway',
  },
  assessment_no_outcome: {
    id: 'assessment_no_outcome',
    title: 'Assessed, but no outcome recorded',
    short: 'No assessment outcome',
    meaning:
      'Her assessment appointment has passed, or assessment procedures are recorded, but no multidisciplinary outcome is recorded.',
    owner: OWNERS.assessment,
    counts: 'the day of her first assessment appointment or procedure',
    group: 'pathway',
  },
  outcome_letter_not_sent: {
    id: 'outcome_letter_not_sent',
    title: 'Assessment outcome recorded, but her letter not sent',
    short: 'Outcome letter not sent',
    meaning:
      'Her assessment outcome is recorded but the letter telling her is missing, still waiting to be sent, or failed.',
    owner: OWNERS.office,
    counts: 'the day the outcome was decided',
    group: 'pathway',
  },
  outcome_gp_not_acknowledged: {
    id: 'outcome_gp_not_acknowledged',
    title: 'Assessment outcome recorded, but her GP has not acknowledged it',
    short: 'Outcome: GP not acknowledged',
    meaning:
      'The electronic message telling her GP practice her assessment outcome is missing, not sent, failed, or sent but not yet acknowledged by the practice.',
    owner: OWNERS.gpMessaging,
    counts: 'the day the message was sent (or the outcome was decided, when it has not been sent)',
    group: 'pathway',
  },
  appointment_not_closed: {
    id: 'appointment_not_closed',
    title: 'Appointment passed, but neither screened nor did not attend recorded',
    short: 'Attendance not recorded',
    meaning:
      'Her screening appointment date has passed but it is still scheduled, checked in, in progress or paused: record what happened.',
    owner: OWNERS.site,
    counts: 'the day of the appointment',
    group: 'pathway',
  },
  open_conflicts: {
    id: 'open_conflicts',
    title: 'Data conflicts to resolve',
    short: 'Data conflicts',
    meaning: 'Two sources disagree about her details and someone has to decide which is right.',
    owner: OWNERS.office,
    counts: 'the day the conflict was raised',
    group: 'queue',
  },
  movers_not_acknowledged: {
    id: 'movers_not_acknowledged',
    title: 'Movers not acknowledged',
    short: 'Movers to acknowledge',
    meaning: 'She moved into or out of this office’s area and the office has not yet marked the move as seen.',
    owner: OWNERS.office,
    counts: 'the day the move was recorded',
    group: 'queue',
  },
};

/** Days allowed at one step, and where that figure comes from. */
export interface Threshold {
  /** Overdue once the wait is longer than this many days. */
  days: number;
  /** Due soon (amber) from this many days before the limit. */
  dueSoonDays: number;
  /** A national NHSBSP standard, or a setting this service chose. */
  scope: 'national' | 'local';
  /** The national target, for example "95% or more", when there is one. */
  target?: string | undefined;
  /** Where the figure comes from, shown on the page. */
  source: string;
}

export type Thresholds = Record<FailsafeCheckId, Threshold>;

const MAX_DAYS = 365;

const thresholdSchema = z
  .object(
    {
      days: z
        .number({ error: `must be a whole number of days from 0 to ${MAX_DAYS}` })
        .int({ error: `must be a whole number of days from 0 to ${MAX_DAYS}` })
        .min(0, { error: `must be a whole number of days from 0 to ${MAX_DAYS}` })
        .max(MAX_DAYS, { error: `must be a whole number of days from 0 to ${MAX_DAYS}` }),
      dueSoonDays: z
        .number({ error: 'must be a whole number of days, not more than "days"' })
        .int({ error: 'must be a whole number of days, not more than "days"' })
        .min(0, { error: 'must be a whole number of days, not more than "days"' }),
      scope: z.enum(['national', 'local'], { error: 'must be "national" or "local"' }),
      target: z.string({ error: 'must be text, for example "95% or more"' }).trim().min(1).max(200).optional(),
      source: z
        .string({ error: 'must say where the figure comes from (text)' })
        .trim()
        .min(1, { error: 'must say where the figure comes from' })
        .max(1000, { error: 'must be at most 1000 characters' }),
    },
    { error: (issue) => (issue.input === undefined ? 'is missing' : 'must be an object') },
  )
  .strict()
  .superRefine((t, ctx) => {
    if (t.dueSoonDays > t.days)
      ctx.addIssue({ code: 'custom', path: ['dueSoonDays'], message: 'must not be more than "days"' });
    if (t.scope === 'national' && !t.target)
      ctx.addIssue({ code: 'custom', path: ['target'], message: 'is needed for a national standard' });
  });

const configSchema = z
  .object(
    {
      about: z.string().optional(),
      thresholds: z
        .object(
          Object.fromEntries(FAILSAFE_CHECKS.map((id) => [id, thresholdSchema])) as Record<
            FailsafeCheckId,
            typeof thresholdSchema
          >,
          { error: (issue) => (issue.input === undefined ? 'is missing' : 'must be an object') },
        )
        .strict(),
    },
    { error: 'must be a JSON object with "thresholds"' },
  )
  .strict();

/** A thresholds file that cannot be used: the message names the file and each bad key. */
export class FailsafeThresholdsError extends Error {
  constructor(
    where: string,
    readonly problems: string[],
  ) {
    super(`Failsafe thresholds in ${where} are not valid: ${problems.join('; ')}`);
    this.name = 'FailsafeThresholdsError';
  }
}

function keyPath(path: readonly PropertyKey[]): string {
  return path.map(String).join('.');
}

/** Checks a parsed thresholds file (every check needs its threshold); throws FailsafeThresholdsError naming the bad keys. */
export function parseThresholds(json: unknown, where: string): Thresholds {
  const result = configSchema.safeParse(json);
  if (result.success) return result.data.thresholds;
  const problems = result.error.issues.flatMap((issue) => {
    if (issue.code === 'unrecognized_keys') {
      const known =
        issue.path.length === 0
          ? '"about", "thresholds"'
          : issue.path.length === 1
            ? `one of ${FAILSAFE_CHECKS.join(', ')}`
            : '"days", "dueSoonDays", "scope", "target", "source"';
      return issue.keys.map((k) => `${keyPath([...issue.path, k])}: not a known setting (expected ${known})`);
    }
    return [`${keyPath(issue.path) || '(the file)'}: ${issue.message}`];
  });
  throw new FailsafeThresholdsError(where, problems);
}

export type FailsafeStatus = 'ok' | 'due_soon' | 'overdue';

export const FAILSAFE_STATUS_LABELS: Record<FailsafeStatus, string> = {
  ok: 'Within time',
  due_soon: 'Due soon',
  overdue: 'Overdue',
};

/** Whole days waited from the day the step started to `asOf` (0 on the day itself; never negative). */
export function ageInDays(since: IsoDate, asOf: IsoDate): number {
  return Math.max(0, daysBetween(since, asOf));
}

/** Overdue once the wait is longer than the threshold: a letter sent on day 14 is within 14 days. */
export function isOverdue(ageDays: number, threshold: Pick<Threshold, 'days'>): boolean {
  return ageDays > threshold.days;
}

/** Within time, due soon (the last dueSoonDays days before the limit, the limit day included), or overdue. */
export function failsafeStatus(ageDays: number, threshold: Pick<Threshold, 'days' | 'dueSoonDays'>): FailsafeStatus {
  if (isOverdue(ageDays, threshold)) return 'overdue';
  if (ageDays >= threshold.days - threshold.dueSoonDays) return 'due_soon';
  return 'ok';
}

export interface CheckSummary {
  count: number;
  overdue: number;
  dueSoon: number;
  oldestDays: number | null;
  /** Red when anyone is overdue, amber when anyone is due soon, else green. */
  status: FailsafeStatus;
}

export function summarise(ages: readonly number[], threshold: Pick<Threshold, 'days' | 'dueSoonDays'>): CheckSummary {
  let overdue = 0;
  let dueSoon = 0;
  let oldest: number | null = null;
  for (const age of ages) {
    const status = failsafeStatus(age, threshold);
    if (status === 'overdue') overdue++;
    else if (status === 'due_soon') dueSoon++;
    if (oldest === null || age > oldest) oldest = age;
  }
  return {
    count: ages.length,
    overdue,
    dueSoon,
    oldestDays: oldest,
    status: overdue > 0 ? 'overdue' : dueSoon > 0 ? 'due_soon' : 'ok',
  };
}

/** The tally staff used to keep by hand, for one clinic day at one site. */
export interface TallyCounts {
  screened: number;
  imagesReceived: number;
  readTwice: number;
  resulted: number;
  lettersSent: number;
}

export const TALLY_STEPS = ['imagesReceived', 'readTwice', 'resulted', 'lettersSent'] as const;
export type TallyStep = (typeof TALLY_STEPS)[number];

/** The steps whose count does not match the number screened (each should equal it once the day is done). */
export function tallyMismatches(counts: TallyCounts): TallyStep[] {
  return TALLY_STEPS.filter((step) => counts[step] !== counts.screened);
}

const LONDON_PARTS = new Intl.DateTimeFormat('en-GB', {
  timeZone: 'Europe/London',
  year: 'numeric',
  month: '2-digit',
  day: '2-digit',
  hour: '2-digit',
  minute: '2-digit',
  second: '2-digit',
  hourCycle: 'h23',
});

/** The instant at which the clock in England shows `date` at `hour`:00 (correct across the clock changes). */
export function londonTime(date: IsoDate, hour: number): Date {
  const [y, m, d] = date.split('-').map(Number) as [number, number, number];
  const guess = Date.UTC(y, m - 1, d, hour);
  const parts = LONDON_PARTS.formatToParts(new Date(guess));
  const part = (type: Intl.DateTimeFormatPartTypes) => Number(parts.find((p) => p.type === type)?.value);
  const shown = Date.UTC(part('year'), part('month') - 1, part('day'), part('hour'), part('minute'), part('second'));
  return new Date(guess - (shown - guess));
}

/** The next time the daily job runs after `now`: `hour`:00 in England today if still to come, else tomorrow. */
export function nextDailyRun(now: Date, hour: number): Date {
  const today = isoDateInLondon(now);
  const todays = londonTime(today, hour);
  return todays.getTime() > now.getTime() ? todays : londonTime(addDays(today, 1), hour);
}
