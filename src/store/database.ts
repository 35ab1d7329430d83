import { mkdirSync } from 'node:fs';
import { PGlite } from '@electric-sql/pglite';
import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import { pgliteDialect } from './pglite-dialect.js';
import type { Tables } from './tables.js';

export type Db = Kysely<Tables>;

/** Where the data lives: an embedded PGlite (a folder, or memory) or a PostgreSQL server. */
export type DatabaseTarget = { kind: 'pglite'; dataDir?: string } | { kind: 'postgres'; url: string };

export interface Database {
  readonly db: Db;
  readonly target: DatabaseTarget;
  /** Runs SQL text that may hold several statements (migrations); no parameters. */
  exec(sqlText: string): Promise<void>;
  /**
   * Calls `onPayload` for each NOTIFY on a channel, from any connection or process (PostgreSQL: one dedicated
   * connection, made again after it drops). Returns a function that stops listening.
   */
  listen(channel: string, onPayload: (payload: string) => void): Promise<() => Promise<void>>;
  close(): Promise<void>;
}

const CHANNEL = /^[a-z_][a-z0-9_]*$/;

const OID = { int8: 20, date: 1082 } as const;
/** Calendar dates stay 'YYYY-MM-DD' strings (no time zone shifts); counts come back as numbers. */
const keepDate = (value: string): string => value;
const int8AsNumber = (value: string): number => Number(value);

export function databaseTargetFromEnv(env: NodeJS.ProcessEnv, defaultDataDir?: string): DatabaseTarget {
  if (env.DATABASE_URL) return { kind: 'postgres', url: env.DATABASE_URL };
  return defaultDataDir === undefined ? { kind: 'pglite' } : { kind: 'pglite', dataDir: defaultDataDir };
}

export async function openDatabase(target: DatabaseTarget): Promise<Database> {
  if (target.kind === 'postgres') {
    const types = {
      getTypeParser: (oid: number, format?: 'text' | 'binary') => {
        if (oid === OID.date) return keepDate;
        if (oid === OID.int8) return int8AsNumber;
        // eslint-disable-next-line @typescript-eslint/no-unsafe-return
        return pg.types.getTypeParser(oid, format);
      },
    };
    const pool = new pg.Pool({ connectionString: target.url, types, max: 10 });
    // A connection can be cut by the server (restart, failover, a dropped database, pg_terminate_backend). An idle
    // one the pool replaces on next use; one in use fails its query, and its caller gets the error. Without these
    // listeners the client's 'error' event would end the process.
    const lost = (error: Error & { code?: string }) => {
      console.error(`PostgreSQL connection lost (${error.code ?? 'no code'}): ${error.message}; it will be replaced`);
    };
    pool.on('error', lost);
    pool.on('connect', (client) => client.on('error', lost));
    const db = new Kysely<Tables>({ dialect: new PostgresDialect({ pool }) });
    return {
      db,
      target,
      async exec(sqlText) {
        await pool.query(sqlText);
      },
      listen: (channel, onPayload) => listenOnServer(target.url, types, channel, onPayload),
      close: () => db.destroy(),
    };
  }
  if (target.dataDir) mkdirSync(target.dataDir, { recursive: true });
  const pglite = await PGlite.create({
    ...(target.dataDir ? { dataDir: target.dataDir } : {}),
    parsers: { [OID.date]: keepDate, [OID.int8]: int8AsNumber },
  });
  const db = new Kysely<Tables>({ dialect: pgliteDialect(pglite) });
  return {
    db,
    target,
    async exec(sqlText) {
      await pglite.exec(sqlText);
    },
    async listen(channel, onPayload) {
      if (!CHANNEL.test(channel)) throw new Error(`Not a channel name: ${channel}`);
      const stop = await pglite.listen(channel, onPayload);
      return async () => {
        if (!pglite.closed) await stop();
      };
    },
    close: () => db.destroy(),
  };
}

async function listenOnServer(
  url: string,
  types: pg.CustomTypesConfig,
  channel: string,
  onPayload: (payload: string) => void,
): Promise<() => Promise<void>> {
  if (!CHANNEL.test(channel)) throw new Error(`Not a channel name: ${channel}`);
  let client: pg.Client | undefined;
  let stopped = false;
  let retry: NodeJS.Timeout | undefined;
  const reconnect = (): void => {
    if (!stopped) retry = setTimeout(() => void connect().catch(reconnect), 1000);
  };
  const connect = async (): Promise<void> => {
    const next = new pg.Client({ connectionString: url, types });
    next.on('notification', (message) => {
      if (message.channel === channel) onPayload(message.payload ?? '');
    });
    next.on('error', (error) => {
      console.error(`PostgreSQL listener for ${channel} lost (${error.message}); reconnecting`);
      void next.end().catch(() => undefined);
      reconnect();
    });
    await next.connect();
    await next.query(`listen ${channel}`);
    client = next;
  };
  await connect();
  return async () => {
    stopped = true;
    if (retry) clearTimeout(retry);
    await client?.end().catch(() => undefined);
  };
}
