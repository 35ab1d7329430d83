import type { Db } from './database.js';

/** Who did something, and from where: every store call that changes or reveals personal data takes one. */
export interface Actor {
  userId: string | null;
  username: string;
  ip: string | null;
}

export const SYSTEM_ACTOR: Actor = { userId: null, username: 'system', ip: null };

export interface AuditEntry {
  action: string;
  entityType: string;
  entityId?: string | null;
  participantId?: string | null;
  detail?: Record<string, unknown>;
}

/** Appends to the audit log (the table refuses updates and deletes). Call inside the change's transaction. */
export async function recordAudit(db: Db, actor: Actor, entry: AuditEntry): Promise<void> {
  await db
    .insertInto('audit_event')
    .values({
      user_id: actor.userId,
      username: actor.username,
      ip: actor.ip,
      action: entry.action,
      entity_type: entry.entityType,
      entity_id: entry.entityId ?? null,
      participant_id: entry.participantId ?? null,
      detail: JSON.stringify(entry.detail ?? {}),
    })
    .execute();
}

export interface AuditQuery {
  nhsNumber?: string;
  username?: string;
  beforeId?: number;
  limit: number;
}

export async function listAudit(db: Db, query: AuditQuery) {
  let q = db
    .selectFrom('audit_event as a')
    .leftJoin('participant as p', 'p.id', 'a.participant_id')
    .select([
      'a.id',
      'a.at',
      'a.username',
      'a.action',
      'a.entity_type',
      'a.entity_id',
      'a.ip',
      'a.detail',
      'p.nhs_number',
      'p.given_name',
      'p.family_name',
    ])
    .orderBy('a.id', 'desc')
    .limit(query.limit);
  if (query.nhsNumber) q = q.where('p.nhs_number', '=', query.nhsNumber);
  if (query.username) q = q.where('a.username', '=', query.username);
  if (query.beforeId !== undefined) q = q.where('a.id', '<', query.beforeId);
  return q.execute();
}
