/**
 * The failsafe checks in the store: who is waiting at each step of the pathway for one screening office, since
 * when, who owns the next step and where to act (src/pathway/failsafes.ts defines the checks and their
 * thresholds); the tally staff used to keep by hand (screened = images received = read twice = resulted = letters
 * sent, per clinic day and site); and the daily run that records the counts in failsafe_run.
 *
 * Bulk: one query a check (three checks share the exams query, two the results query, two the outcome
 * communications query) whatever the number of women, and the reading decision comes from src/pathway/reading.ts so
 * the policy lives in one place. The office of an exam or appointment is the office of the site it was at; of an
 * assessment outcome, its episode's office; of a data conflict, her office; of a move, either side that has not
 * acknowledged it. A closed episode (she died, moved before screening, or it was closed by hand) takes an exam
 * without images, a technical recall or a recall to assessment off the checks; an exam whose images are at the hub
 * stays on the reading checks until it is resulted, whatever became of the episode (saying so when she has died);
 * a letter or GP message is followed whether or not the episode is closed.
 */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { sql, type RawBuilder } from 'kysely';
import { REPLACED_BY_CORRECTION } from '../pathway/assessment.js';
import { addDays, formatLongDate, type IsoDate } from '../pathway/dates.js';
import {
  FAILSAFE_CHECKS,
  FAILSAFE_DEFINITIONS,
  FailsafeThresholdsError,
  ageInDays,
  failsafeStatus,
  parseThresholds,
  summarise,
  type CheckSummary,
  type FailsafeCheck,
  type FailsafeCheckId,
  type FailsafeStatus,
  type TallyCounts,
  type Threshold,
  type Thresholds,
} from '../pathway/failsafes.js';
import { needsArbitration, readingOutcome, type ArbitrationPolicy, type ReadSummary } from '../pathway/reading.js';
import {
  OPINION_LABELS,
  RESULT_COMMUNICATION,
  type CommunicationStatus,
  type Opinion,
} from '../pathway/screening-outcomes.js';
import { packageRoot } from '../paths.js';
import type { Db } from './database.js';

// --- Thresholds -----------------------------------------------------------------------------------------------

/** The thresholds file shipped with the hub. */
export const SHIPPED_THRESHOLDS_FILE = join(packageRoot, 'config', 'failsafe-thresholds.json');

/** The thresholds file in use: $FAILSAFE_THRESHOLDS_FILE when set (relative to the working folder), else the shipped one. */
export function thresholdsFile(env: NodeJS.ProcessEnv = process.env): string {
  const chosen = env.FAILSAFE_THRESHOLDS_FILE?.trim();
  return chosen ? resolve(chosen) : SHIPPED_THRESHOLDS_FILE;
}

/** Reads and checks the thresholds file; a bad one throws FailsafeThresholdsError naming the file and each bad key. */
export function loadFailsafeThresholds(env: NodeJS.ProcessEnv = process.env): { file: string; thresholds: Thresholds } {
  const file = thresholdsFile(env);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new FailsafeThresholdsError(file, [`the file cannot be read (${(error as Error).message})`]);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new FailsafeThresholdsError(file, [`the file is not valid JSON (${(error as Error).message})`]);
  }
  return { file, thresholds: parseThresholds(json, file) };
}

// --- What each check lists -------------------------------------------------------------------------------------

export interface FailsafeItem {
  /** What is waiting (an appointment, a communication, an episode, a conflict or a move): unique within its check. */
  key: string;
  participantId: string;
  nhsNumber: string;
  givenName: string;
  familyName: string;
  dateOfDeath: string | null;
  /** The day the step that started the wait happened (in England). */
  since: IsoDate;
  ageDays: number;
  status: FailsafeStatus;
  /** Who does the next step: the site or unit by name where it is one, else the team. */
  owner: string;
  /** What exactly is missing. */
  detail: string;
  action: { href: string; text: string };
}

type RawItem = Omit<FailsafeItem, 'ageDays' | 'status'>;

export interface FailsafeOptions {
  /** When reads go to arbitration (default 'discordant'). */
  policy?: ArbitrationPolicy | undefined;
  /** Default: the thresholds file (loadFailsafeThresholds). */
  thresholds?: Thresholds | undefined;
}

/** Where staff act on each check (the pages of issue 6; her record is linked from her name). */
export const ACTION_PAGES = {
  reading: '/reading',
  results: '/results',
  assessment: '/assessment',
  communications: '/communications',
  gpMessages: '/communications/gp-messages',
  conflicts: '/conflicts',
  movers: '/movers',
} as const;

interface Person {
  participant_id: string;
  nhs_number: string;
  given_name: string;
  family_name: string;
  date_of_death: string | null;
}

const person = (r: Person) => ({
  participantId: r.participant_id,
  nhsNumber: r.nhs_number,
  givenName: r.given_name,
  familyName: r.family_name,
  dateOfDeath: r.date_of_death,
});

/** The calendar day in England of a timestamp column, as 'YYYY-MM-DD'. */
const londonDay = (column: string) => sql<string | null>`(${sql.ref(column)} at time zone 'Europe/London')::date`;

const SCREENED = sql`('screened', 'partially_screened')`;
/** An appointment that still stands, or happened: neither cancelled nor missed. */
const NOT_CANCELLED_OR_MISSED = sql`('cancelled', 'did_not_attend')`;

/**
 * The query every appointment-based check shares: the appointment a (reached from `from` when the check starts
 * elsewhere, e.g. at an exam result x), its clinic c, site s and woman p, her columns (Person), and only the
 * office's sites: an exam or appointment belongs to the office of the site it was at. `joins` come after these.
 */
function appointmentsQuery<R>(
  ctx: Pick<Context, 'db' | 'office'>,
  query: {
    columns: RawBuilder<unknown>;
    from?: RawBuilder<unknown>;
    joins?: RawBuilder<unknown>;
    where: RawBuilder<unknown>;
  },
) {
  return sql<Person & R>`
    select a.participant_id, p.nhs_number, p.given_name, p.family_name, p.date_of_death, ${query.columns}
    from ${query.from ?? sql`appointment a`}
    join clinic c on c.id = a.clinic_id
    join site s on s.id = c.site_id
    join participant p on p.id = a.participant_id
    ${query.joins ?? sql``}
    where s.bso_code = ${ctx.office} and ${query.where}`.execute(ctx.db);
}

/** The exam result x and its appointment a: where the result-based checks start. */
const FROM_RESULTS = sql`exam_result x join appointment a on a.id = x.appointment_id`;
/** A result's episode e, and the follow-up appointment f it booked (or tried to) with its clinic fc. */
const FOLLOW_UP_JOINS = sql`left join episode e on e.id = x.episode_id
    left join appointment f on f.id = x.follow_up_appointment_id
    left join clinic fc on fc.id = f.clinic_id`;

interface JsonRead {
  readNumber: 1 | 2 | 3;
  readerId: string;
  opinion: Opinion;
  readAt: string;
  /** The day of the read in England. */
  readOn: string;
}

const readsOf = sql<JsonRead[]>`coalesce((
    select json_agg(json_build_object('readNumber', r.read_number, 'readerId', r.reader_id, 'opinion', r.opinion,
      'readAt', r.read_at, 'readOn', (r.read_at at time zone 'Europe/London')::date))
    from reading_opinion r where r.appointment_id = a.id), '[]'::json)`;

interface Decision {
  decided: boolean;
  /** When decided: the day of the read that decided it (the later of the two reads, or the arbiter's). */
  decidedOn: string | null;
  opinion: Opinion | null;
  stage: ReturnType<typeof readingOutcome>['stage'];
}

function decide(reads: readonly JsonRead[], policy: ArbitrationPolicy): Decision {
  const summaries: ReadSummary[] = reads.map((r) => ({
    readNumber: r.readNumber,
    readerId: r.readerId,
    opinion: r.opinion,
  }));
  const outcome = readingOutcome(summaries, policy);
  if (outcome.stage !== 'decided') return { decided: false, decidedOn: null, opinion: null, stage: outcome.stage };
  const byNumber = (n: number) => reads.find((r) => r.readNumber === n)!;
  const [first, second] = [byNumber(1), byNumber(2)];
  const decider = needsArbitration(first.opinion, second.opinion, policy)
    ? byNumber(3)
    : new Date(first.readAt) > new Date(second.readAt)
      ? first
      : second;
  return { decided: true, decidedOn: decider.readOn, opinion: outcome.opinion, stage: outcome.stage };
}

interface Context {
  db: Db;
  office: string;
  asOf: IsoDate;
  policy: ArbitrationPolicy;
}

type Collected = Partial<Record<FailsafeCheckId, RawItem[]>>;

/** Checks 1 to 3: exams not yet resulted, by where they stand. */
async function exams(ctx: Context): Promise<Collected> {
  const { rows } = await appointmentsQuery<{
    appointment_id: string;
    clinic_date: string;
    site_name: string;
    status: string;
    images_on: string | null;
    reads: JsonRead[];
    deferred: boolean;
    held_locally: boolean;
  }>(ctx, {
    columns: sql`a.id as appointment_id,
      c.clinic_date, s.name as site_name, a.status, ${londonDay('a.images_available_at')} as images_on,
      ${readsOf} as reads,
      exists (select 1 from reading_deferral d where d.appointment_id = a.id and d.resolved_at is null) as deferred,
      -- issue 8 (manual images mode, migration 0013): screened while the unit kept images on the machine.
      exists (select 1 from appointment_images_held h where h.appointment_id = a.id) as held_locally`,
    where: sql`c.purpose = 'screening' and a.status in ${SCREENED}
      and c.clinic_date <= ${ctx.asOf}
      and (a.images_available_at is not null
        or not exists (select 1 from episode e where e.id = a.episode_id and e.closed_on is not null))
      and not exists (select 1 from exam_result x where x.appointment_id = a.id)`,
  });
  const out: Required<Pick<Collected, 'screened_no_images' | 'images_not_read' | 'read_no_result'>> = {
    screened_no_images: [],
    images_not_read: [],
    read_no_result: [],
  };
  for (const r of rows) {
    const base = { key: r.appointment_id, ...person(r) };
    if (!r.images_on) {
      out.screened_no_images.push({
        ...base,
        since: r.clinic_date,
        owner: r.site_name,
        // issue 8: images held locally are not lost: listed until they arrive, but saying where they are.
        detail: r.held_locally
          ? `${r.status === 'partially_screened' ? 'Partially screened' : 'Screened'} at ${r.site_name} in manual images mode: images held locally, to be sent from the machine`
          : `${r.status === 'partially_screened' ? 'Partially screened' : 'Screened'} at ${r.site_name}: no images at the hub yet`,
        action: { href: `/appointments/${r.appointment_id}`, text: 'See the appointment' },
      });
      continue;
    }
    const decision = decide(r.reads, ctx.policy);
    // Images at the hub are read and resulted whatever became of her episode; when she has died, the list says so.
    const died = r.date_of_death ? `; she died on ${formatLongDate(r.date_of_death)}` : '';
    if (!decision.decided) {
      const waiting =
        decision.stage === 'first_read'
          ? 'Waiting for the first read'
          : decision.stage === 'second_read'
            ? 'Read once: waiting for the second read'
            : 'The two reads need arbitration';
      out.images_not_read.push({
        ...base,
        since: r.images_on,
        owner: FAILSAFE_DEFINITIONS.images_not_read.owner,
        detail: `${r.deferred ? `${waiting} (set aside by a reader)` : waiting}${died}`,
        action: { href: ACTION_PAGES.reading, text: 'Reading' },
      });
    } else {
      out.read_no_result.push({
        ...base,
        since: decision.decidedOn!,
        owner: FAILSAFE_DEFINITIONS.read_no_result.owner,
        detail: `Reading decided: ${OPINION_LABELS[decision.opinion!]}${died}`,
        action: { href: ACTION_PAGES.results, text: 'Issue the result' },
      });
    }
  }
  return out;
}

/** The columns of her letter (l) and GP message (g) about a result or outcome, as the two checks of each select them. */
interface CommunicationColumns {
  gp_practice_code: string | null;
  letter_id: string | null;
  letter_status: CommunicationStatus | null;
  letter_error: string | null;
  gp_id: string | null;
  gp_status: CommunicationStatus | null;
  gp_sent_on: string | null;
  gp_error: string | null;
  gp_message_practice: string | null;
}

const resultKinds = sql.join(Object.entries(RESULT_COMMUNICATION).map(([result, kind]) => sql`(${result}, ${kind})`));
const DONE_LETTER: readonly CommunicationStatus[] = ['sent', 'delivered', 'acknowledged'];

/** Check 4, in two: results whose letter to her has not gone, or whose GP message is not acknowledged. */
async function results(ctx: Context): Promise<Collected> {
  const { rows } = await appointmentsQuery<
    CommunicationColumns & { appointment_id: string; clinic_date: string; issued_on: string }
  >(ctx, {
    columns: sql`x.appointment_id, p.gp_practice_code, c.clinic_date, ${londonDay('x.issued_at')} as issued_on,
      l.id as letter_id, l.status as letter_status, l.last_error as letter_error,
      g.id as gp_id, g.status as gp_status, ${londonDay('g.sent_at')} as gp_sent_on, g.last_error as gp_error,
      g.gp_practice_code as gp_message_practice`,
    from: FROM_RESULTS,
    joins: sql`join (values ${resultKinds}) as k(result, kind) on k.result = x.result
    left join communication l on l.appointment_id = x.appointment_id and l.recipient = 'participant' and l.kind = k.kind
    left join communication g on g.appointment_id = x.appointment_id and g.recipient = 'gp' and g.kind = k.kind`,
    where: sql`((l.id is null and p.date_of_death is null) or l.status in ('queued', 'failed')
        or (g.id is null and p.gp_practice_code is not null) or g.status <> 'acknowledged')`,
  });
  const letters: RawItem[] = [];
  const gp: RawItem[] = [];
  for (const r of rows) {
    const base = { ...person(r) };
    // No letter goes to a woman who has died (results queues none); one made before she died is still followed.
    const letterDue = r.letter_status === null ? r.date_of_death === null : !DONE_LETTER.includes(r.letter_status);
    if (letterDue) {
      letters.push({
        ...base,
        key: r.letter_id ?? `${r.appointment_id}:letter`,
        since: r.clinic_date,
        owner: FAILSAFE_DEFINITIONS.result_letter_not_sent.owner,
        detail:
          r.letter_status === null
            ? 'No result letter has been made'
            : r.letter_status === 'failed'
              ? `Her letter failed${r.letter_error ? `: ${r.letter_error}` : ''}`
              : 'Her letter is waiting to be sent',
        action: { href: ACTION_PAGES.communications, text: 'Letters' },
      });
    }
    const gpMissing = r.gp_status === null && r.gp_practice_code !== null;
    if (gpMissing || (r.gp_status !== null && r.gp_status !== 'acknowledged')) {
      const sent = r.gp_status === 'sent' || r.gp_status === 'delivered';
      gp.push({
        ...base,
        key: r.gp_id ?? `${r.appointment_id}:gp`,
        since: sent && r.gp_sent_on ? r.gp_sent_on : r.issued_on,
        owner: FAILSAFE_DEFINITIONS.result_gp_not_acknowledged.owner,
        detail:
          r.gp_status === null
            ? `No message has been made for her GP practice (${r.gp_practice_code})`
            : r.gp_status === 'queued'
              ? `The message to ${r.gp_message_practice ?? 'her GP'} is waiting to be sent`
              : r.gp_status === 'failed'
                ? `The message to ${r.gp_message_practice ?? 'her GP'} failed${r.gp_error ? `: ${r.gp_error}` : ''}`
                : r.gp_status === 'sent'
                  ? `Sent to ${r.gp_message_practice ?? 'her GP'}: not yet delivered or acknowledged`
                  : `Delivered to ${r.gp_message_practice ?? 'her GP'}: not yet acknowledged`,
        action: { href: ACTION_PAGES.gpMessages, text: 'GP messages' },
      });
    }
  }
  return { result_letter_not_sent: letters, result_gp_not_acknowledged: gp };
}

/** Statuses of a screening appointment that will be, or was, the repeat exam. */
const LIVE_OR_SCREENED = sql`('scheduled', 'checked_in', 'in_progress', 'paused', 'screened', 'partially_screened')`;

/**
 * Technical recall with no repeat exam: the result's repeat appointment was never booked (follow_up_problem), or was
 * cancelled, missed or ended without screening, and no other screening appointment in her episode stands or was
 * screened since. Off the list once her episode is closed (the office decided), or a repeat is booked or done.
 */
async function technicalRecalls(ctx: Context): Promise<Collected> {
  const { rows } = await appointmentsQuery<{
    appointment_id: string;
    issued_on: string;
    follow_up_problem: string | null;
    follow_up_status: string | null;
    follow_up_date: string | null;
  }>(ctx, {
    columns: sql`x.appointment_id, ${londonDay('x.issued_at')} as issued_on, x.follow_up_problem,
      f.status as follow_up_status, fc.clinic_date as follow_up_date`,
    from: FROM_RESULTS,
    joins: FOLLOW_UP_JOINS,
    where: sql`x.result = 'technical_recall' and e.closed_on is null
      and not exists (
        select 1 from appointment b join clinic bc on bc.id = b.clinic_id
        where b.episode_id = x.episode_id and b.id <> x.appointment_id and bc.purpose = 'screening'
          and bc.clinic_date >= c.clinic_date and b.status in ${LIVE_OR_SCREENED})`,
  });
  return {
    technical_recall_no_repeat: rows.map((r) => {
      const on = r.follow_up_date ? formatLongDate(r.follow_up_date) : '';
      const what =
        r.follow_up_status === 'cancelled'
          ? `Her repeat appointment on ${on} was cancelled and no new one is booked`
          : r.follow_up_status === 'did_not_attend'
            ? `She did not attend her repeat appointment on ${on} and no new one is booked`
            : r.follow_up_status === 'attended_not_screened'
              ? `She came to her repeat appointment on ${on} but was not screened, and no new one is booked`
              : `No repeat appointment is booked${r.follow_up_problem ? `: ${r.follow_up_problem}` : ''}`;
      return {
        ...person(r),
        key: r.appointment_id,
        since: r.issued_on,
        owner: FAILSAFE_DEFINITIONS.technical_recall_no_repeat.owner,
        detail: r.date_of_death ? `${what}; she died on ${formatLongDate(r.date_of_death)}` : what,
        action: { href: `/participants/${r.participant_id}/book`, text: 'Book her repeat exam' },
      };
    }),
  };
}

/** Check 5: recalled for assessment with no assessment appointment that stands. */
async function recalled(ctx: Context): Promise<Collected> {
  const { rows } = await appointmentsQuery<{
    appointment_id: string;
    clinic_date: string;
    follow_up_problem: string | null;
    follow_up_status: string | null;
    follow_up_date: string | null;
  }>(ctx, {
    columns: sql`x.appointment_id, c.clinic_date, x.follow_up_problem, f.status as follow_up_status,
      fc.clinic_date as follow_up_date`,
    from: FROM_RESULTS,
    joins: FOLLOW_UP_JOINS,
    where: sql`x.result = 'recall_assessment' and e.closed_on is null
      and (f.id is null or f.status in ${NOT_CANCELLED_OR_MISSED})
      and not exists (select 1 from assessment_outcome o where o.episode_id = x.episode_id and o.superseded_at is null)
      and not exists (select 1 from assessment_procedure pr where pr.episode_id = x.episode_id)
      and not exists (
        select 1 from appointment b join clinic bc on bc.id = b.clinic_id
        where b.participant_id = a.participant_id and bc.purpose = 'assessment' and bc.clinic_date >= c.clinic_date
          and b.status not in ${NOT_CANCELLED_OR_MISSED})`,
  });
  return {
    recalled_no_assessment: rows.map((r) => ({
      ...person(r),
      key: r.appointment_id,
      since: r.clinic_date,
      owner: FAILSAFE_DEFINITIONS.recalled_no_assessment.owner,
      detail:
        r.follow_up_status === 'cancelled'
          ? `Her assessment appointment on ${formatLongDate(r.follow_up_date!)} was cancelled and no new one is booked`
          : r.follow_up_status === 'did_not_attend'
            ? `She did not attend assessment on ${formatLongDate(r.follow_up_date!)} and no new appointment is booked`
            : `No assessment appointment is booked${r.follow_up_problem ? `: ${r.follow_up_problem}` : ''}`,
      action: { href: ACTION_PAGES.assessment, text: 'Book assessment' },
    })),
  };
}

/** Check 6: assessed (an assessment appointment has passed, or procedures are recorded) with no current outcome. */
async function assessedNoOutcome(ctx: Context): Promise<Collected> {
  const { rows } = await sql<Person & { episode_id: string; since: string; procedures: number; appointments: number }>`
    with started as (
      select b.episode_id, min(bc.clinic_date) as since, 0 as procedures, count(*)::int as appointments
      from appointment b
      join clinic bc on bc.id = b.clinic_id
      join site bs on bs.id = bc.site_id
      where bc.purpose = 'assessment' and bs.bso_code = ${ctx.office} and bc.clinic_date < ${ctx.asOf}
        and b.status not in ${NOT_CANCELLED_OR_MISSED} and b.episode_id is not null
      group by b.episode_id
      union all
      select pr.episode_id, min(pr.performed_on), count(*)::int, 0
      from assessment_procedure pr
      join episode pe on pe.id = pr.episode_id
      where pe.bso_code = ${ctx.office}
      group by pr.episode_id
    )
    select st.episode_id, min(st.since) as since, sum(st.procedures)::int as procedures,
      sum(st.appointments)::int as appointments,
      e.participant_id, p.nhs_number, p.given_name, p.family_name, p.date_of_death
    from started st
    join episode e on e.id = st.episode_id
    join participant p on p.id = e.participant_id
    where e.closed_on is null
      and not exists (select 1 from assessment_outcome o where o.episode_id = st.episode_id and o.superseded_at is null)
    group by st.episode_id, e.participant_id, p.nhs_number, p.given_name, p.family_name, p.date_of_death`.execute(
    ctx.db,
  );
  return {
    assessment_no_outcome: rows.map((r) => ({
      ...person(r),
      key: r.episode_id,
      since: r.since,
      owner: FAILSAFE_DEFINITIONS.assessment_no_outcome.owner,
      detail:
        r.procedures > 0
          ? `${r.procedures} assessment procedure${r.procedures === 1 ? '' : 's'} recorded: no outcome`
          : 'Assessment appointment passed: no procedures or outcome recorded',
      action: { href: `${ACTION_PAGES.assessment}/${r.episode_id}`, text: 'Record the outcome' },
    })),
  };
}

/**
 * Assessment outcomes whose letter to her has not gone, or whose GP message is not acknowledged: the current outcome
 * of each episode of this office, and the latest letter and GP message about it (a row failed because the outcome
 * was corrected, REPLACED_BY_CORRECTION, is not one: the new pair is). Followed whether or not the episode is closed.
 */
async function outcomeCommunications(ctx: Context): Promise<Collected> {
  const { rows } = await sql<Person & CommunicationColumns & { episode_id: string; decided_on: string }>`
    with latest as (
      select distinct on (m.episode_id, m.recipient) m.episode_id, m.recipient, m.id, m.status, m.last_error,
        ${londonDay('m.sent_at')} as sent_on, m.gp_practice_code
      from communication m
      join episode me on me.id = m.episode_id
      where m.kind = 'assessment_outcome' and m.appointment_id is null and me.bso_code = ${ctx.office}
        and not (m.status = 'failed' and m.last_error is not distinct from ${REPLACED_BY_CORRECTION})
      order by m.episode_id, m.recipient, m.created_at desc, m.id desc
    )
    select o.episode_id, o.decided_on, e.participant_id, p.nhs_number, p.given_name, p.family_name,
      p.date_of_death, p.gp_practice_code,
      l.id as letter_id, l.status as letter_status, l.last_error as letter_error,
      g.id as gp_id, g.status as gp_status, g.sent_on as gp_sent_on, g.last_error as gp_error,
      g.gp_practice_code as gp_message_practice
    from assessment_outcome o
    join episode e on e.id = o.episode_id
    join participant p on p.id = e.participant_id
    left join latest l on l.episode_id = o.episode_id and l.recipient = 'participant'
    left join latest g on g.episode_id = o.episode_id and g.recipient = 'gp'
    where o.superseded_at is null and e.bso_code = ${ctx.office}
      and ((l.id is null and p.date_of_death is null) or l.status in ('queued', 'failed')
        or (g.id is null and p.gp_practice_code is not null) or g.status <> 'acknowledged')`.execute(ctx.db);
  const letters: RawItem[] = [];
  const gp: RawItem[] = [];
  for (const r of rows) {
    const letterDue = r.letter_status === null ? r.date_of_death === null : !DONE_LETTER.includes(r.letter_status);
    if (letterDue) {
      letters.push({
        ...person(r),
        key: r.letter_id ?? `${r.episode_id}:letter`,
        since: r.decided_on,
        owner: FAILSAFE_DEFINITIONS.outcome_letter_not_sent.owner,
        detail:
          r.letter_status === null
            ? 'No outcome letter has been made'
            : r.letter_status === 'failed'
              ? `Her outcome letter failed${r.letter_error ? `: ${r.letter_error}` : ''}`
              : 'Her outcome letter is waiting to be sent',
        action: { href: ACTION_PAGES.communications, text: 'Letters' },
      });
    }
    const gpMissing = r.gp_status === null && r.gp_practice_code !== null;
    if (gpMissing || (r.gp_status !== null && r.gp_status !== 'acknowledged')) {
      const sent = r.gp_status === 'sent' || r.gp_status === 'delivered';
      const practice = r.gp_message_practice ?? 'her GP';
      gp.push({
        ...person(r),
        key: r.gp_id ?? `${r.episode_id}:gp`,
        since: sent && r.gp_sent_on ? r.gp_sent_on : r.decided_on,
        owner: FAILSAFE_DEFINITIONS.outcome_gp_not_acknowledged.owner,
        detail:
          r.gp_status === null
            ? `No outcome message has been made for her GP practice (${r.gp_practice_code})`
            : r.gp_status === 'queued'
              ? `The outcome message to ${practice} is waiting to be sent`
              : r.gp_status === 'failed'
                ? `The outcome message to ${practice} failed${r.gp_error ? `: ${r.gp_error}` : ''}`
                : r.gp_status === 'sent'
                  ? `Outcome sent to ${practice}: not yet delivered or acknowledged`
                  : `Outcome delivered to ${practice}: not yet acknowledged`,
        action: { href: ACTION_PAGES.gpMessages, text: 'GP messages' },
      });
    }
  }
  return { outcome_letter_not_sent: letters, outcome_gp_not_acknowledged: gp };
}

const STATUS_WORDS: Record<string, string> = {
  scheduled: 'still scheduled',
  checked_in: 'checked in, never finished',
  in_progress: 'still in progress',
  paused: 'paused, never finished',
};

/** Check 7: screening appointments whose day has passed with nothing recorded. */
async function appointmentsNotClosed(ctx: Context): Promise<Collected> {
  const { rows } = await appointmentsQuery<{
    appointment_id: string;
    clinic_date: string;
    site_name: string;
    status: string;
  }>(ctx, {
    columns: sql`a.id as appointment_id, c.clinic_date, s.name as site_name, a.status`,
    where: sql`c.purpose = 'screening' and c.clinic_date < ${ctx.asOf}
      and a.status in ('scheduled', 'checked_in', 'in_progress', 'paused')`,
  });
  return {
    appointment_not_closed: rows.map((r) => ({
      ...person(r),
      key: r.appointment_id,
      since: r.clinic_date,
      owner: r.site_name,
      detail: `Appointment at ${r.site_name}: ${STATUS_WORDS[r.status] ?? r.status}`,
      action: { href: `/appointments/${r.appointment_id}`, text: 'Record what happened' },
    })),
  };
}

/** The queue of open data conflicts about women of this office. */
async function conflicts(ctx: Context): Promise<Collected> {
  const { rows } = await sql<Person & { id: string; raised_on: string; summary: string }>`
    select d.id, d.participant_id, p.nhs_number, p.given_name, p.family_name, p.date_of_death,
      ${londonDay('d.raised_at')} as raised_on, d.summary
    from data_conflict d
    join participant p on p.id = d.participant_id
    where d.status = 'open' and p.bso_code = ${ctx.office}`.execute(ctx.db);
  return {
    open_conflicts: rows.map((r) => ({
      ...person(r),
      key: r.id,
      since: r.raised_on,
      owner: FAILSAFE_DEFINITIONS.open_conflicts.owner,
      detail: r.summary,
      action: { href: ACTION_PAGES.conflicts, text: 'Resolve' },
    })),
  };
}

/** Moves into or out of this office it has not acknowledged. */
async function movers(ctx: Context): Promise<Collected> {
  const { rows } = await sql<
    Person & { id: string; recorded_on: string; from_bso_code: string; to_bso_code: string; other_office: string }
  >`
    select m.id, m.participant_id, p.nhs_number, p.given_name, p.family_name, p.date_of_death,
      ${londonDay('m.recorded_at')} as recorded_on,
      m.from_bso_code, m.to_bso_code, o.name as other_office
    from participant_move m
    join participant p on p.id = m.participant_id
    join screening_office o on o.code = (case when m.to_bso_code = ${ctx.office} then m.from_bso_code else m.to_bso_code end)
    where (m.to_bso_code = ${ctx.office} or m.from_bso_code = ${ctx.office})
      and not exists (select 1 from participant_move_seen s where s.move_id = m.id and s.bso_code = ${ctx.office})`.execute(
    ctx.db,
  );
  return {
    movers_not_acknowledged: rows.map((r) => ({
      ...person(r),
      key: r.id,
      since: r.recorded_on,
      owner: FAILSAFE_DEFINITIONS.movers_not_acknowledged.owner,
      detail: r.to_bso_code === ctx.office ? `Moved in from ${r.other_office}` : `Moved out to ${r.other_office}`,
      action: { href: `${ACTION_PAGES.movers}?office=${encodeURIComponent(ctx.office)}`, text: 'Acknowledge' },
    })),
  };
}

/** Which query answers which checks (the exams query three, the results and outcome queries two each). */
const COLLECTORS: { checks: readonly FailsafeCheckId[]; collect: (ctx: Context) => Promise<Collected> }[] = [
  { checks: ['screened_no_images', 'images_not_read', 'read_no_result'], collect: exams },
  { checks: ['result_letter_not_sent', 'result_gp_not_acknowledged'], collect: results },
  { checks: ['technical_recall_no_repeat'], collect: technicalRecalls },
  { checks: ['recalled_no_assessment'], collect: recalled },
  { checks: ['assessment_no_outcome'], collect: assessedNoOutcome },
  { checks: ['outcome_letter_not_sent', 'outcome_gp_not_acknowledged'], collect: outcomeCommunications },
  { checks: ['appointment_not_closed'], collect: appointmentsNotClosed },
  { checks: ['open_conflicts'], collect: conflicts },
  { checks: ['movers_not_acknowledged'], collect: movers },
];

export interface CheckReport {
  check: FailsafeCheck;
  threshold: Threshold;
  summary: CheckSummary;
  /** Oldest first. */
  items: FailsafeItem[];
}

const byName = new Intl.Collator('en-GB');

function finish(raw: RawItem[], asOf: IsoDate, threshold: Threshold): FailsafeItem[] {
  return raw
    .map((r) => {
      const ageDays = ageInDays(r.since, asOf);
      return { ...r, ageDays, status: failsafeStatus(ageDays, threshold) };
    })
    .sort(
      (a, b) =>
        b.ageDays - a.ageDays ||
        byName.compare(a.familyName, b.familyName) ||
        byName.compare(a.givenName, b.givenName) ||
        (a.key < b.key ? -1 : a.key > b.key ? 1 : 0),
    );
}

function settings(options: FailsafeOptions) {
  return {
    policy: options.policy ?? 'discordant',
    thresholds: options.thresholds ?? loadFailsafeThresholds().thresholds,
  };
}

/** The checks asked for (default all), each with everyone on it, for one office as of a day. */
export async function failsafeReport(
  db: Db,
  office: string,
  asOf: IsoDate,
  options: FailsafeOptions & { checks?: readonly FailsafeCheckId[] } = {},
): Promise<CheckReport[]> {
  const { policy, thresholds } = settings(options);
  const wanted = new Set(options.checks ?? FAILSAFE_CHECKS);
  const ctx: Context = { db, office, asOf, policy };
  // One after another: PGlite has one connection, and a server's pool is shared with the pages.
  const collected: Collected = {};
  for (const c of COLLECTORS) {
    if (c.checks.some((id) => wanted.has(id))) Object.assign(collected, await c.collect(ctx));
  }
  return FAILSAFE_CHECKS.filter((id) => wanted.has(id)).map((id) => {
    const threshold = thresholds[id];
    const items = finish(collected[id] ?? [], asOf, threshold);
    return {
      check: FAILSAFE_DEFINITIONS[id],
      threshold,
      summary: summarise(
        items.map((i) => i.ageDays),
        threshold,
      ),
      items,
    };
  });
}

// --- The tally -------------------------------------------------------------------------------------------------

/** Days the tally covers, today included. */
export const TALLY_DAYS = 14;

export interface TallyRow extends TallyCounts {
  clinicDate: IsoDate;
  siteId: string;
  siteName: string;
}

/** Per clinic day (the last TALLY_DAYS days to asOf) and site: screened, images received, read twice, resulted, letters sent. */
export async function failsafeTally(
  db: Db,
  office: string,
  asOf: IsoDate,
  options: Pick<FailsafeOptions, 'policy'> = {},
): Promise<TallyRow[]> {
  const policy = options.policy ?? 'discordant';
  const from = addDays(asOf, -(TALLY_DAYS - 1));
  const { rows } = await appointmentsQuery<{
    clinic_date: string;
    site_id: string;
    site_name: string;
    images: boolean;
    resulted: boolean;
    letter_sent: boolean;
    reads: JsonRead[];
  }>(
    { db, office },
    {
      columns: sql`c.clinic_date, s.id as site_id, s.name as site_name, a.images_available_at is not null as images,
      exists (select 1 from exam_result x where x.appointment_id = a.id) as resulted,
      exists (select 1 from communication l where l.appointment_id = a.id and l.recipient = 'participant'
        and l.kind in ('result_normal', 'result_technical_recall', 'result_assessment')
        and l.status in ('sent', 'delivered', 'acknowledged')) as letter_sent,
      ${readsOf} as reads`,
      where: sql`c.purpose = 'screening' and a.status in ${SCREENED} and c.clinic_date between ${from} and ${asOf}`,
    },
  );
  const tally = new Map<string, TallyRow>();
  for (const r of rows) {
    const key = `${r.clinic_date} ${r.site_id}`;
    let row = tally.get(key);
    if (!row) {
      row = {
        clinicDate: r.clinic_date,
        siteId: r.site_id,
        siteName: r.site_name,
        screened: 0,
        imagesReceived: 0,
        readTwice: 0,
        resulted: 0,
        lettersSent: 0,
      };
      tally.set(key, row);
    }
    row.screened++;
    if (r.images) row.imagesReceived++;
    if (decide(r.reads, policy).decided) row.readTwice++;
    if (r.resulted) row.resulted++;
    if (r.letter_sent) row.lettersSent++;
  }
  return [...tally.values()].sort(
    (a, b) => b.clinicDate.localeCompare(a.clinicDate) || a.siteName.localeCompare(b.siteName),
  );
}

// --- The daily run ---------------------------------------------------------------------------------------------

export type RunCounts = Partial<
  Record<FailsafeCheckId, { count: number; overdue: number; dueSoon: number; oldestDays: number | null }>
>;

/**
 * Runs every check for one office as of a day and records the counts (failsafe_run): the daily job calls it, and
 * so can a command line. Returns the run.
 */
export async function runFailsafes(
  db: Db,
  office: string,
  asOf: IsoDate,
  options: FailsafeOptions = {},
): Promise<{ id: string; ranAt: Date; asOf: IsoDate; counts: RunCounts }> {
  const report = await failsafeReport(db, office, asOf, options);
  const counts: RunCounts = {};
  for (const r of report) {
    const { count, overdue, dueSoon, oldestDays } = r.summary;
    counts[r.check.id] = { count, overdue, dueSoon, oldestDays };
  }
  const row = await db
    .insertInto('failsafe_run')
    .values({ bso_code: office, as_of: asOf, counts: JSON.stringify(counts) })
    .returning(['id', 'ran_at'])
    .executeTakeFirstOrThrow();
  return { id: String(row.id), ranAt: row.ran_at, asOf, counts };
}

export interface DailyRunOutcome {
  office: string;
  outcome: 'ran' | 'already_ran' | 'failed';
  error?: string;
}

/**
 * The daily job: runs the checks for every office (only those without a run for asOf when onlyIfMissing). One
 * office failing does not stop the others; each outcome is returned for the caller to log.
 */
export async function runDailyFailsafes(
  db: Db,
  asOf: IsoDate,
  options: FailsafeOptions & { onlyIfMissing?: boolean } = {},
): Promise<DailyRunOutcome[]> {
  const offices = await db.selectFrom('screening_office').select('code').orderBy('code').execute();
  const done = options.onlyIfMissing
    ? new Set(
        (await db.selectFrom('failsafe_run').select('bso_code').distinct().where('as_of', '=', asOf).execute()).map(
          (r) => r.bso_code,
        ),
      )
    : new Set<string>();
  const outcomes: DailyRunOutcome[] = [];
  for (const { code } of offices) {
    if (done.has(code)) {
      outcomes.push({ office: code, outcome: 'already_ran' });
      continue;
    }
    try {
      await runFailsafes(db, code, asOf, options);
      outcomes.push({ office: code, outcome: 'ran' });
    } catch (error) {
      outcomes.push({ office: code, outcome: 'failed', error: (error as Error).message });
    }
  }
  return outcomes;
}

export interface RecordedRun {
  id: string;
  ranAt: Date;
  asOf: IsoDate;
  counts: RunCounts;
}

/** The latest run of each of the office's last `days` run days, newest first. */
export async function recentFailsafeRuns(db: Db, office: string, days = 14): Promise<RecordedRun[]> {
  const { rows } = await sql<{ id: string; ran_at: Date; as_of: string; counts: RunCounts }>`
    select distinct on (as_of) id, ran_at, as_of, counts
    from failsafe_run
    where bso_code = ${office}
    order by as_of desc, ran_at desc
    limit ${days}`.execute(db);
  return rows.map((r) => ({ id: String(r.id), ranAt: r.ran_at, asOf: r.as_of, counts: r.counts }));
}

/** The office's most recent run, or null. */
export async function lastFailsafeRun(db: Db, office: string): Promise<RecordedRun | null> {
  const row = await db
    .selectFrom('failsafe_run')
    .select(['id', 'ran_at', 'as_of', 'counts'])
    .where('bso_code', '=', office)
    .orderBy('ran_at', 'desc')
    .orderBy('id', 'desc')
    .limit(1)
    .executeTakeFirst();
  return row ? { id: String(row.id), ranAt: row.ran_at, asOf: row.as_of, counts: row.counts } : null;
}
