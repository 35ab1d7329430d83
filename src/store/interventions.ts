/**
 * Interventions an office tags (a change such as text reminders at one GP practice from a date), and uptake before
 * and after each one at that practice against comparable practices (src/pathway/kpis.ts does the arithmetic).
 *
 * Uptake here is the KPI's: C and R invitations (episodes opened) to women 50 to under 71, screened within 6 months;
 * a woman's practice is the one she is registered with today (participant.gp_practice_code). Comparable practices are
 * the office's other practices in the same IMD quintile as the practice (its postcode → LSOA → IMD), when the lookup
 * knows the practice and at least one other practice shares its quintile; otherwise all the office's other practices.
 */
import { sql } from 'kysely';
import type { IsoDate } from '../pathway/dates.js';
import {
  beforeAfter,
  differenceInDifferences,
  interventionWindows,
  type BeforeAfter,
  type Interval,
  type InterventionInput,
  type UptakeCount,
  type Window,
} from '../pathway/kpis.js';
import { recordAudit, type Actor } from './audit.js';
import type { Db } from './database.js';

export interface Intervention {
  id: string;
  bsoCode: string;
  gpPracticeCode: string | null;
  practiceName: string | null;
  label: string;
  description: string;
  startsOn: IsoDate;
  endsOn: IsoDate | null;
  createdBy: string | null;
  createdAt: Date;
}

/** Records an intervention and audits it. */
export async function createIntervention(
  db: Db,
  office: string,
  input: InterventionInput,
  actor: Actor,
): Promise<string> {
  return db.transaction().execute(async (tx) => {
    const row = await tx
      .insertInto('intervention')
      .values({
        bso_code: office,
        gp_practice_code: input.gpPracticeCode,
        label: input.label,
        description: input.description,
        starts_on: input.startsOn,
        ends_on: input.endsOn,
        created_by: actor.userId,
      })
      .returning('id')
      .executeTakeFirstOrThrow();
    await recordAudit(tx, actor, {
      action: 'intervention.create',
      entityType: 'intervention',
      entityId: row.id,
      detail: { office, ...input },
    });
    return row.id;
  });
}

export async function listInterventions(db: Db, office: string): Promise<Intervention[]> {
  const rows = await db
    .selectFrom('intervention as i')
    .leftJoin('gp_practice as g', 'g.ods_code', 'i.gp_practice_code')
    .leftJoin('app_user as u', 'u.id', 'i.created_by')
    .select([
      'i.id',
      'i.bso_code',
      'i.gp_practice_code',
      'g.name as practice_name',
      'i.label',
      'i.description',
      sql<string>`to_char(i.starts_on, 'YYYY-MM-DD')`.as('starts_on'),
      sql<string | null>`to_char(i.ends_on, 'YYYY-MM-DD')`.as('ends_on'),
      'u.display_name as created_by',
      'i.created_at',
    ])
    .where('i.bso_code', '=', office)
    .orderBy('i.starts_on', 'desc')
    .orderBy('i.created_at', 'desc')
    .execute();
  return rows.map((r) => ({
    id: r.id,
    bsoCode: r.bso_code,
    gpPracticeCode: r.gp_practice_code,
    practiceName: r.practice_name,
    label: r.label,
    description: r.description,
    startsOn: r.starts_on,
    endsOn: r.ends_on,
    createdBy: r.created_by,
    createdAt: new Date(r.created_at as unknown as string),
  }));
}

/** Invitations and women screened within 6 months, per GP practice (null: no practice), in a window of opening dates. */
export async function uptakeByPractice(
  db: Db,
  office: string,
  window: Window,
  asOf: IsoDate,
): Promise<Map<string | null, UptakeCount>> {
  const result = await sql<{ practice: string | null; invited: string; screened: string }>`
    select x.practice,
      count(*) filter (where x.screened_in_time or x.time_up) as invited,
      count(*) filter (where x.screened_in_time) as screened
    from (
      select p.gp_practice_code as practice,
        (e.screened_on is not null and e.screened_on <= ${asOf}::date
          and e.screened_on <= (e.opened_on + interval '6 months')::date) as screened_in_time,
        ((e.opened_on + interval '6 months')::date <= ${asOf}::date) as time_up
      from episode e join participant p on p.id = e.participant_id
      where e.bso_code = ${office} and e.episode_type in ('C', 'R')
        and e.opened_on between ${window.from}::date and ${window.to}::date
        and p.date_of_birth <= (e.opened_on - interval '50 years')::date
        and p.date_of_birth > (e.opened_on - interval '71 years')::date
    ) x
    group by 1`.execute(db);
  return new Map(
    result.rows.map((r) => [r.practice, { invited: Number(r.invited), screened: Number(r.screened) }] as const),
  );
}

export interface OfficePractice {
  code: string;
  name: string;
  imdQuintile: number | null;
}

/** The office's GP practices with the IMD quintile of their postcode where the lookup has it. */
export async function officePractices(db: Db, office: string): Promise<OfficePractice[]> {
  const rows = await db
    .selectFrom('gp_practice as g')
    .leftJoin('postcode_lsoa as pl', (join) =>
      join.on(sql`pl.postcode_key`, '=', sql`upper(replace(g.postcode, ' ', ''))`),
    )
    .leftJoin('lsoa_imd as li', 'li.lsoa_code', 'pl.lsoa_code')
    .select(['g.ods_code', 'g.name', 'li.imd_quintile'])
    .where('g.bso_code', '=', office)
    .orderBy('g.name')
    .execute();
  return rows.map((r) => ({ code: r.ods_code, name: r.name, imdQuintile: r.imd_quintile ?? null }));
}

const sum = (counts: (UptakeCount | undefined)[]): UptakeCount =>
  counts.reduce<UptakeCount>(
    (t, c) => ({ invited: t.invited + (c?.invited ?? 0), screened: t.screened + (c?.screened ?? 0) }),
    { invited: 0, screened: 0 },
  );

export interface InterventionImpact {
  windows: { before: Window; after: Window | null };
  /** The practice (or the whole office, for an office-wide intervention). */
  target: { name: string; before: UptakeCount; after: UptakeCount | null } & BeforeAfter;
  comparison: {
    basis: 'imd_quintile' | 'other_practices';
    imdQuintile: number | null;
    practices: OfficePractice[];
    before: UptakeCount;
    after: UptakeCount | null;
  } & BeforeAfter;
  /** The practice's change less the comparison's, in percentage points; null for office-wide or without data. */
  difference: { value: number; interval: Interval } | null;
}

/** Uptake before and after an intervention at its practice (or office-wide) against comparable practices. */
export async function interventionImpact(
  db: Db,
  intervention: Pick<Intervention, 'bsoCode' | 'gpPracticeCode' | 'practiceName' | 'startsOn' | 'endsOn'>,
  asOf: IsoDate,
): Promise<InterventionImpact> {
  const windows = interventionWindows(intervention.startsOn, intervention.endsOn, asOf);
  const office = intervention.bsoCode;
  const before = await uptakeByPractice(db, office, windows.before, asOf);
  const after = windows.after ? await uptakeByPractice(db, office, windows.after, asOf) : null;
  const practices = await officePractices(db, office);

  if (!intervention.gpPracticeCode) {
    const b = sum([...before.values()]);
    const a = after ? sum([...after.values()]) : null;
    return {
      windows,
      target: { name: 'The whole office', before: b, after: a, ...beforeAfter(b, a) },
      comparison: {
        basis: 'other_practices',
        imdQuintile: null,
        practices: [],
        before: { invited: 0, screened: 0 },
        after: null,
        ...beforeAfter({ invited: 0, screened: 0 }, null),
      },
      difference: null,
    };
  }
  const code = intervention.gpPracticeCode;
  const practice = practices.find((p) => p.code === code);
  const others = practices.filter((p) => p.code !== code);
  const quintile = practice?.imdQuintile ?? null;
  const sameQuintile = quintile === null ? [] : others.filter((p) => p.imdQuintile === quintile);
  const comparable = sameQuintile.length > 0 ? sameQuintile : others;
  const tb = before.get(code) ?? { invited: 0, screened: 0 };
  const ta = after ? (after.get(code) ?? { invited: 0, screened: 0 }) : null;
  const cb = sum(comparable.map((p) => before.get(p.code)));
  const ca = after ? sum(comparable.map((p) => after.get(p.code))) : null;
  const did = differenceInDifferences({ before: tb, after: ta }, { before: cb, after: ca });
  return {
    windows,
    target: { name: intervention.practiceName ?? code, before: tb, after: ta, ...beforeAfter(tb, ta) },
    comparison: {
      basis: sameQuintile.length > 0 ? 'imd_quintile' : 'other_practices',
      imdQuintile: sameQuintile.length > 0 ? quintile : null,
      practices: comparable,
      before: cb,
      after: ca,
      ...beforeAfter(cb, ca),
    },
    difference: did && { value: did.difference, interval: did.interval },
  };
}
