/**
 * The reporting year of a date in SQL: the twin of reportingYearOf in src/pathway/reporting-year.ts (1 April to
 * 31 March, named by the year it starts), for queries that group by year.
 */
import { sql, type RawBuilder } from 'kysely';

/** The reporting year (named by the year it starts) of a date column or expression. */
export const reportingYearOfSql = (d: RawBuilder<unknown>) =>
  sql<number>`(extract(year from ${d})::int - case when extract(month from ${d}) < 4 then 1 else 0 end)`;
