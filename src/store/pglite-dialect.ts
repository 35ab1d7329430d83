import type { PGlite } from '@electric-sql/pglite';
import { PostgresDialect, type PostgresPool, type PostgresPoolClient, type PostgresQueryResult } from 'kysely';

type Command = PostgresQueryResult<unknown>['command'];

/** The statement's verb as PostgreSQL's command tag would name it (PGlite does not report the tag). */
function commandOf(sql: string): Command {
  const verb = /^\s*(\w+)/.exec(sql)?.[1]?.toUpperCase();
  return verb === 'INSERT' || verb === 'UPDATE' || verb === 'DELETE' || verb === 'MERGE' ? verb : 'SELECT';
}

/**
 * Kysely's PostgreSQL dialect over one embedded PGlite. PGlite is a single connection, so the "pool" hands it to
 * one borrower at a time: a transaction holds it from BEGIN to COMMIT and other queries wait their turn.
 */
export function pgliteDialect(pglite: PGlite): PostgresDialect {
  let queue: Promise<void> = Promise.resolve();
  const pool: PostgresPool = {
    async connect(): Promise<PostgresPoolClient> {
      let release!: () => void;
      const previous = queue;
      queue = new Promise<void>((resolve) => (release = resolve));
      await previous;
      const client = {
        async query<R>(sql: string, parameters: readonly unknown[]): Promise<PostgresQueryResult<R>> {
          const result = await pglite.query<R>(sql, [...parameters]);
          return { command: commandOf(sql), rowCount: result.affectedRows ?? result.rows.length, rows: result.rows };
        },
        release,
      };
      return client as PostgresPoolClient;
    },
    async end() {
      await queue;
      await pglite.close();
    },
  };
  return new PostgresDialect({ pool });
}
