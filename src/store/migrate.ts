import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { sql } from 'kysely';
import { migrationsDir } from '../paths.js';
import type { Database } from './database.js';

/** Applies the committed SQL migrations in name order, each once, each inside its own transaction. */
export async function migrate(database: Database): Promise<string[]> {
  await database.exec(
    'create table if not exists schema_migration (name text primary key, applied_at timestamptz not null default now())',
  );
  const applied = new Set(
    (await sql<{ name: string }>`select name from schema_migration`.execute(database.db)).rows.map((r) => r.name),
  );
  const pending = readdirSync(migrationsDir)
    .filter((name) => name.endsWith('.sql') && !applied.has(name))
    .sort();
  for (const name of pending) {
    const text = readFileSync(join(migrationsDir, name), 'utf8');
    const quotedName = name.replaceAll("'", "''");
    try {
      await database.exec(`begin;\n${text}\n;insert into schema_migration (name) values ('${quotedName}');\ncommit;`);
    } catch (error) {
      await database.exec('rollback').catch(() => undefined);
      throw new Error(`Migration ${name} failed and was rolled back: ${(error as Error).message}`, { cause: error });
    }
  }
  return pending;
}
