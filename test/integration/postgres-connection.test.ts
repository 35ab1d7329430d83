import { sql } from 'kysely';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { COHORT_HEADER, cohortCsvLine } from '../../src/cohort/cohort-csv.js';
import { importCohort } from '../../src/store/cohort-import.js';
import { GOOD_COHORT_ROW } from '../support/cohort-rows.js';
import { freshDatabase } from '../support/database.js';
import { nextNhsNumber, smallOffice, TODAY } from '../support/fixtures.js';

describe.skipIf(!process.env.DATABASE_URL)('PostgreSQL connections', () => {
  it('survives the server ending an idle connection, and the next query gets a new one', async () => {
    const database = await freshDatabase('postgres');
    try {
      const pid = (await sql<{ pid: number }>`select pg_backend_pid() as pid`.execute(database.db)).rows[0]!.pid;
      const admin = new pg.Client({ connectionString: process.env.DATABASE_URL });
      await admin.connect();
      await admin.query('select pg_terminate_backend($1)', [pid]);
      await admin.end();
      await new Promise((r) => setTimeout(r, 300));
      const again = await sql<{ pid: number }>`select pg_backend_pid() as pid`.execute(database.db);
      expect(again.rows[0]!.pid).not.toBe(pid);
    } finally {
      await database.drop();
    }
  });

  it('a cohort import whose connection is cut mid-batch stops, keeps whole batches, and a re-run completes it', async () => {
    const database = await freshDatabase('postgres');
    try {
      const office = await smallOffice(database.db);
      const numbers = Array.from({ length: 25 }, () => nextNhsNumber());
      const killer = numbers[17]!;
      // The server ends the connection in the middle of the transaction that inserts this one person.
      await sql`
        create function cut_connection() returns trigger language plpgsql as $$
        begin
          if new.nhs_number = ${sql.lit(killer)} then perform pg_terminate_backend(pg_backend_pid()); end if;
          return new;
        end $$`.execute(database.db);
      await sql`create trigger cut_connection before insert on participant
        for each row execute function cut_connection()`.execute(database.db);
      const file = COHORT_HEADER + numbers.map((n) => cohortCsvLine({ ...GOOD_COHORT_ROW, nhsNumber: n })).join('');
      const run = () =>
        importCohort(database.db, [file], { actor: office.actor, today: TODAY, sourceName: 'cut.csv', batchRows: 10 });

      await expect(run()).rejects.toThrow(/terminat/i);
      const count = async () =>
        Number(
          (
            await database.db
              .selectFrom('participant')
              .select((eb) => eb.fn.countAll().as('n'))
              .executeTakeFirstOrThrow()
          ).n,
        );
      // The first batch committed; the batch that was cut was rolled back whole (a lost connection is not a refused
      // row, so it is not retried row by row), and nothing after it was read. The audit log says it stopped, and why.
      expect(await count()).toBe(10);
      const audit = await database.db
        .selectFrom('audit_event')
        .select('detail')
        .where('action', '=', 'cohort.import')
        .executeTakeFirstOrThrow();
      expect(audit.detail).toMatchObject({ added: 10, stopped: expect.stringMatching(/terminat/i) });

      await sql`drop trigger cut_connection on participant`.execute(database.db);
      const again = await run();
      expect(again).toMatchObject({ added: 15, unchanged: 10, rejected: 0 });
      expect(await count()).toBe(25);
    } finally {
      await database.drop();
    }
  });
});
