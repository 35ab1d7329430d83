import { sql } from 'kysely';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { freshDatabase } from '../support/database.js';

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
});
