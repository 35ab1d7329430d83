/**
 * Results to GP practices by MESH (issue 6, item 5): the worker that sends the communication rows the results module
 * queues (recipient 'gp', channel 'mesh') as FHIR messages (src/fhir/gp-result-message.ts), follows each through
 * MESH to the practice's acknowledgement, and the lists the GP messages page shows.
 *
 * A message's life: queued → sent (MESH took it: mesh_message_id) → delivered (MESH tracking: the practice
 * downloaded it) → acknowledged (the practice's system answered "ok"). Or failed, with the
 * reason in last_error: no practice or no mailbox, MESH refused it (an unknown mailbox), it could not be sent after
 * maxAttempts tries, MESH could not deliver it, or the practice's system answered "fatal-error". Staff can retry a
 * failed message (a new message if the old one had reached MESH) or one waiting for its next try.
 *
 * Sending is safe with several hub processes: each run claims its rows with FOR UPDATE SKIP LOCKED and a lease
 * (next_attempt_at a few minutes ahead, last_error cleared) before any network call, so no transaction is held across
 * HTTP and a crashed run's rows come back after the lease. A claimed row (queued, tried, no last_error, its lease
 * still ahead) is being sent now: staff cannot retry it, which would end the lease and let another run send it too.
 * The bytes sent are stored (content, content_sha256) on the first attempt and every retry sends the same bytes with
 * the same Mex-LocalID (the MessageHeader id); a retry first asks MESH whether a message with that local id already
 * went (the answer to a send can be lost), so the practice never gets two.
 * Every change of state is audited (SYSTEM_ACTOR for the worker).
 */
import { REPLACED_BY_CORRECTION } from '../pathway/assessment.js';
import { createHash } from 'node:crypto';
import { sql } from 'kysely';
import {
  buildGpResultMessage,
  isUuid,
  parseGpResponseMessage,
  type MessageBundle,
  type ResultFinding,
} from '../fhir/gp-result-message.js';
import { MESH_DEFAULTS, MeshError, parseMeshTime, type MeshClient } from '../mesh/mesh-client.js';
import type { CommunicationStatus } from '../pathway/screening-outcomes.js';
import { recordAudit, SYSTEM_ACTOR, type Actor } from './audit.js';
import type { Db } from './database.js';
import { NotFoundError, RuleError } from './errors.js';

/** How long a run holds the rows it claimed before another may take them (longer than any request). */
const LEASE_MS = 5 * 60 * 1000;

/** Wait before the next try after `attempts` tries: 2, 4, 8… minutes, at most 6 hours. */
export function retryDelayMs(attempts: number): number {
  return Math.min(2 ** Math.max(0, attempts - 1) * 2 * 60 * 1000, 6 * 60 * 60 * 1000);
}

/** JSON with object keys sorted: the same value gives the same bytes however it was stored (jsonb reorders keys). */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(
          Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
        )
      : v,
  );
}

const sha256 = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex');

/** The id of the MessageHeader in a stored message (our Mex-LocalID, and what a response names). */
const headerIdOf = (content: unknown): string | null => {
  const id = (content as MessageBundle | null)?.entry?.[0]?.resource?.id;
  return typeof id === 'string' ? id : null;
};
const destinationOf = (content: unknown): string | null => {
  const destination = (content as MessageBundle | null)?.entry?.[0]?.resource?.destination;
  const endpoint = Array.isArray(destination) ? (destination[0] as { endpoint?: unknown } | undefined)?.endpoint : null;
  return typeof endpoint === 'string' ? endpoint : null;
};

type Change = Partial<{
  status: CommunicationStatus;
  mesh_message_id: string | null;
  attempts: number;
  next_attempt_at: Date | null;
  last_error: string | null;
  content: string | null;
  content_sha256: string | null;
  sent_at: Date | null;
  delivered_at: Date | null;
  acknowledged_at: Date | null;
}>;

/**
 * Changes one GP message if it is still in one of `from` (someone else may have moved it on), and audits the change
 * in the same transaction. Returns whether it changed.
 */
async function transition(
  db: Db,
  id: string,
  from: readonly CommunicationStatus[],
  change: Change,
  audit: { action: string; detail?: Record<string, unknown> },
  actor: Actor = SYSTEM_ACTOR,
): Promise<boolean> {
  return db.transaction().execute(async (tx) => {
    const row = await tx
      .updateTable('communication')
      .set(change)
      .where('id', '=', id)
      .where('channel', '=', 'mesh')
      .where('status', 'in', [...from])
      .returning(['participant_id', 'status', 'attempts'])
      .executeTakeFirst();
    if (!row) return false;
    await recordAudit(tx, actor, {
      action: audit.action,
      entityType: 'communication',
      entityId: id,
      participantId: row.participant_id,
      detail: { status: row.status, ...audit.detail },
    });
    return true;
  });
}

/** A reason a message cannot be made or sent that no retry will fix until someone changes something. */
class CannotSend extends Error {}

/** Everything the message says, read from the record. */
async function resultFacts(db: Db, id: string) {
  const c = await db
    .selectFrom('communication as c')
    .innerJoin('participant as p', 'p.id', 'c.participant_id')
    .leftJoin('episode as e', 'e.id', 'c.episode_id')
    .leftJoin('gp_practice as g', 'g.ods_code', 'c.gp_practice_code')
    .leftJoin('screening_office as o', (join) => join.on(sql<boolean>`o.code = coalesce(e.bso_code, p.bso_code)`))
    .select([
      'c.id',
      'c.kind',
      'c.episode_id',
      'c.appointment_id',
      'c.gp_practice_code',
      'p.nhs_number',
      'p.given_name',
      'p.family_name',
      'p.date_of_birth',
      'p.sex',
      'g.name as practice_name',
      'g.mesh_mailbox',
      'o.code as office_code',
      'o.name as office_name',
      'e.screened_on',
    ])
    .where('c.id', '=', id)
    .executeTakeFirstOrThrow();
  if (!c.gp_practice_code || !c.practice_name) {
    throw new CannotSend('She has no GP practice recorded, so there is nowhere to send the result');
  }
  if (!c.mesh_mailbox) {
    throw new CannotSend(
      `${c.practice_name} (${c.gp_practice_code}) has no MESH mailbox recorded: add the practice's mailbox, ` +
        'then retry, or send the result another way',
    );
  }
  let finding: ResultFinding;
  let effectiveDate: string;
  let accessionNumber: string | null = null;
  if (c.kind === 'assessment_outcome') {
    if (!c.episode_id) throw new CannotSend('The assessment outcome message is not linked to an episode');
    const o = await db
      .selectFrom('assessment_outcome')
      .selectAll()
      .where('episode_id', '=', c.episode_id)
      .where('superseded_at', 'is', null)
      .executeTakeFirst();
    if (!o) throw new CannotSend('No assessment outcome is recorded for this episode');
    finding = {
      type: 'assessment',
      outcome: o.outcome,
      side: o.side,
      sizeMm: o.size_mm === null ? null : Number(o.size_mm),
      grade: o.grade,
      earlyRecallMonths: o.early_recall_months,
      referredToTreatment: o.referred_to_treatment,
      treatmentProvider: o.treatment_provider,
      decidedOn: o.decided_on,
    };
    effectiveDate = o.decided_on;
  } else {
    if (!c.appointment_id) throw new CannotSend('The result message is not linked to an exam');
    const r = await db
      .selectFrom('exam_result as r')
      .innerJoin('appointment as a', 'a.id', 'r.appointment_id')
      .innerJoin('clinic as k', 'k.id', 'a.clinic_id')
      .leftJoin('appointment as f', 'f.id', 'r.follow_up_appointment_id')
      .leftJoin('clinic as fk', 'fk.id', 'f.clinic_id')
      .leftJoin('location as fl', 'fl.id', 'fk.location_id')
      .select([
        'r.result',
        'r.next_test_due',
        'r.follow_up_problem',
        'a.accession_number',
        'k.clinic_date',
        'fk.clinic_date as follow_up_date',
        'fl.name as follow_up_place',
      ])
      .where('r.appointment_id', '=', c.appointment_id)
      .executeTakeFirst();
    if (!r) throw new CannotSend('No result has been issued for this exam');
    finding = {
      type: 'exam',
      result: r.result,
      nextTestDue: r.next_test_due,
      followUp: r.follow_up_date && r.follow_up_place ? { date: r.follow_up_date, place: r.follow_up_place } : null,
      followUpProblem: r.follow_up_problem,
    };
    effectiveDate = r.clinic_date;
    accessionNumber = r.accession_number;
  }
  return { c, finding, effectiveDate, accessionNumber, mailbox: c.mesh_mailbox };
}

/** How many times staff asked for a failed message to go again as a new message (its generation). */
async function resends(db: Db, id: string): Promise<number> {
  const row = await db
    .selectFrom('audit_event')
    .select(sql<number>`count(*)::int`.as('n'))
    .where('action', '=', 'gp_message.retry')
    .where('entity_type', '=', 'communication')
    .where('entity_id', '=', id)
    .where(sql<boolean>`detail->>'resend' = 'true'`)
    .executeTakeFirstOrThrow();
  return row.n;
}

export interface SendOptions {
  now?: Date;
  /** Rows a run claims (default 50). */
  limit?: number;
  maxAttempts?: number;
  hub?: { name?: string; version?: string };
}

export interface SendSummary {
  sent: number;
  retrying: number;
  failed: number;
}

/**
 * Sends the queued GP messages whose time has come: builds (once) and stores each Bundle, posts it to the practice's
 * mailbox, and records what happened. Transient errors wait and try again (retryDelayMs) up to maxAttempts; other
 * errors fail the message with the reason.
 */
export async function sendQueuedGpMessages(db: Db, mesh: MeshClient, options: SendOptions = {}): Promise<SendSummary> {
  const now = options.now ?? new Date();
  const maxAttempts = options.maxAttempts ?? mesh.settings.maxAttempts ?? MESH_DEFAULTS.maxAttempts;
  const due = db
    .selectFrom('communication')
    .select('id')
    .where('channel', '=', 'mesh')
    .where('status', '=', 'queued')
    .where((eb) => eb.or([eb('next_attempt_at', 'is', null), eb('next_attempt_at', '<=', now)]))
    .orderBy('created_at')
    .limit(options.limit ?? 50)
    .forUpdate()
    .skipLocked();
  const claimed = await db
    .updateTable('communication')
    // Clearing last_error marks the lease (a row waiting for its next try always has one): see retryGpMessage.
    .set((eb) => ({
      attempts: eb('attempts', '+', 1),
      next_attempt_at: new Date(now.getTime() + LEASE_MS),
      last_error: null,
    }))
    .where('id', 'in', due)
    .where('status', '=', 'queued')
    .returning(['id', 'participant_id', 'attempts', 'content'])
    .execute();
  const summary: SendSummary = { sent: 0, retrying: 0, failed: 0 };
  for (const row of claimed) {
    const outcome = await sendOne(db, mesh, row, now, maxAttempts, options.hub);
    summary[outcome] += 1;
  }
  return summary;
}

async function sendOne(
  db: Db,
  mesh: MeshClient,
  row: { id: string; participant_id: string; attempts: number; content: unknown },
  now: Date,
  maxAttempts: number,
  hub: SendOptions['hub'],
): Promise<keyof SendSummary> {
  const fail = async (reason: string) => {
    await transition(
      db,
      row.id,
      ['queued'],
      { status: 'failed', next_attempt_at: null, last_error: reason },
      { action: 'gp_message.failed', detail: { reason, attempts: row.attempts } },
    );
    return 'failed' as const;
  };
  let mailbox = '';
  try {
    let content = row.content;
    if (content) {
      // Already made on an earlier try: send the same bytes to the same mailbox.
      mailbox = destinationOf(content) ?? '';
    } else {
      const facts = await resultFacts(db, row.id);
      mailbox = facts.mailbox;
      content = buildGpResultMessage({
        communicationId: row.id,
        generation: await resends(db, row.id),
        kind: facts.c.kind,
        at: now,
        hub: { mailbox: mesh.mailbox, ...hub },
        office: { code: facts.c.office_code ?? '', name: facts.c.office_name ?? 'Breast screening office' },
        practice: { odsCode: facts.c.gp_practice_code!, name: facts.c.practice_name!, mailbox },
        patient: {
          nhsNumber: facts.c.nhs_number,
          givenName: facts.c.given_name,
          familyName: facts.c.family_name,
          birthDate: facts.c.date_of_birth,
          sex: facts.c.sex,
        },
        effectiveDate: facts.effectiveDate,
        accessionNumber: facts.accessionNumber,
        finding: facts.finding,
      });
      const body = canonicalJson(content);
      await db
        .updateTable('communication')
        .set({ content: body, content_sha256: sha256(body) })
        .where('id', '=', row.id)
        .where('status', '=', 'queued')
        .execute();
    }
    const body = canonicalJson(content);
    const localId = headerIdOf(content);
    if (!mailbox || !localId) throw new CannotSend('The stored message has no destination mailbox or id');
    // An earlier try may have reached MESH without us hearing back: if so, that message is the one.
    const earlier = row.content ? await mesh.trackLocalId(localId) : null;
    const meshMessageId =
      earlier?.messageId ??
      (await mesh.send({
        to: mailbox,
        workflowId: mesh.workflowId,
        body,
        localId,
        subject: 'Breast screening result',
        contentType: 'application/fhir+json',
        fileName: `${localId}.json`,
      }));
    const recorded = await transition(
      db,
      row.id,
      ['queued'],
      { status: 'sent', mesh_message_id: meshMessageId, sent_at: now, next_attempt_at: null, last_error: null },
      {
        action: 'gp_message.sent',
        detail: { meshMessageId, mailbox, attempts: row.attempts, ...(earlier ? { foundByLocalId: true } : {}) },
      },
    );
    // Replaced (a corrected outcome) while it was on its way: it reached the practice all the same, and the
    // record must say so, for the practice will also get the corrected one.
    if (!recorded)
      await recordAudit(db, SYSTEM_ACTOR, {
        action: 'gp_message.sent_after_replaced',
        entityType: 'communication',
        entityId: row.id,
        participantId: row.participant_id,
        detail: { meshMessageId, mailbox },
      });
    return 'sent';
  } catch (error) {
    if (error instanceof CannotSend) return fail(error.message);
    const transient = !(error instanceof MeshError) || error.kind === 'transient';
    const message = (error instanceof Error ? error.message : String(error)) || 'unknown error';
    if (!transient) {
      return fail(
        error instanceof MeshError && error.status === 417
          ? `MESH will not deliver it to the mailbox ${mailbox}: check the practice's mailbox ID, ` +
              `then retry (${message})`
          : `MESH refused the message: ${message}`,
      );
    }
    if (row.attempts >= maxAttempts) return fail(`Not sent after ${row.attempts} attempts: ${message}`);
    const next = new Date(now.getTime() + retryDelayMs(row.attempts));
    await transition(
      db,
      row.id,
      ['queued'],
      { next_attempt_at: next, last_error: message },
      {
        action: 'gp_message.retry_scheduled',
        detail: { attempts: row.attempts, nextAttemptAt: next.toISOString(), error: message },
      },
    );
    return 'retrying';
  }
}

export interface PollSummary {
  delivered: number;
  acknowledged: number;
  failed: number;
  ignored: number;
}

/** The GP message a response names (by its MessageHeader id, in the message as stored). */
async function messageAnswered(db: Db, headerId: string) {
  const columns = ['id', 'status', 'participant_id', 'content'] as const;
  const byId = isUuid(headerId)
    ? await db
        .selectFrom('communication')
        .select(columns)
        .where('id', '=', headerId)
        .where('channel', '=', 'mesh')
        .executeTakeFirst()
    : undefined;
  if (byId && headerIdOf(byId.content) === headerId) return byId;
  // A message sent again after a refusal has a new MessageHeader id.
  return db
    .selectFrom('communication')
    .select(columns)
    .where('channel', '=', 'mesh')
    .where('status', 'in', ['sent', 'delivered', 'acknowledged', 'failed'])
    .where(sql<string>`content->'entry'->0->'resource'->>'id'`, '=', headerId)
    .executeTakeFirst();
}

/**
 * Follows sent messages: MESH tracking says when the practice has downloaded one (delivered); the hub's inbox holds
 * the practices' responses (acknowledged, or failed for fatal-error) and MESH's error reports (failed). Each inbox
 * message is acknowledged at MESH once dealt with; one that names no message of ours, or comes from the wrong
 * mailbox, or repeats an answer already taken, changes nothing.
 */
export async function pollGpMessageUpdates(
  db: Db,
  mesh: MeshClient,
  options: { now?: Date; limit?: number } = {},
): Promise<PollSummary> {
  const now = options.now ?? new Date();
  const summary: PollSummary = { delivered: 0, acknowledged: 0, failed: 0, ignored: 0 };
  const sent = await db
    .selectFrom('communication')
    .select(['id', 'mesh_message_id'])
    .where('channel', '=', 'mesh')
    .where('status', '=', 'sent')
    .where('mesh_message_id', 'is not', null)
    .orderBy('sent_at')
    .limit(options.limit ?? 200)
    .execute();
  for (const row of sent) {
    let tracking;
    try {
      tracking = await mesh.trackMessage(row.mesh_message_id!);
    } catch (error) {
      // One message MESH will not say anything about must not stop the others; an outage stops the run.
      if (error instanceof MeshError && error.kind === 'permanent') continue;
      throw error;
    }
    if (!tracking) continue;
    // Downloaded by the practice (MESH gives the time), or acknowledged there.
    if (tracking.status === 'Acknowledged' || tracking.downloadTimestamp) {
      const at = parseMeshTime(tracking.downloadTimestamp) ?? now;
      if (
        await transition(
          db,
          row.id,
          ['sent'],
          { status: 'delivered', delivered_at: at },
          { action: 'gp_message.delivered', detail: { meshMessageId: row.mesh_message_id } },
        )
      )
        summary.delivered += 1;
    } else if (/undeliver|expired|error|rejected/i.test(tracking.status)) {
      const reason = `MESH could not deliver it: ${tracking.statusDescription ?? tracking.status}`;
      if (
        await transition(
          db,
          row.id,
          ['sent'],
          { status: 'failed', last_error: reason },
          { action: 'gp_message.failed', detail: { reason, meshMessageId: row.mesh_message_id } },
        )
      )
        summary.failed += 1;
    }
  }

  const ignore = async (meshMessageId: string, reason: string) => {
    summary.ignored += 1;
    await recordAudit(db, SYSTEM_ACTOR, {
      action: 'gp_message.response_ignored',
      entityType: 'mesh_message',
      entityId: meshMessageId,
      detail: { reason },
    });
  };
  for (const id of await mesh.listInbox()) {
    const message = await mesh.download(id);
    if (!message) continue;
    if (message.messageType === 'REPORT') {
      // MESH's own error report about a message we sent.
      const linked = message.linkedMessageId
        ? await db
            .selectFrom('communication')
            .select('id')
            .where('channel', '=', 'mesh')
            .where('mesh_message_id', '=', message.linkedMessageId)
            .executeTakeFirst()
        : undefined;
      const reason = `MESH could not deliver it: ${message.statusDescription ?? 'error report'}`;
      if (
        linked &&
        (await transition(
          db,
          linked.id,
          ['sent', 'delivered'],
          { status: 'failed', last_error: reason },
          { action: 'gp_message.failed', detail: { reason, meshMessageId: message.linkedMessageId } },
        ))
      )
        summary.failed += 1;
      else await ignore(id, `MESH's error report about ${message.linkedMessageId ?? 'no message'}: nothing to change`);
      await mesh.acknowledge(id);
      continue;
    }
    let json: unknown;
    try {
      json = JSON.parse(message.body.toString('utf8'));
    } catch {
      json = undefined;
    }
    const response = parseGpResponseMessage(json);
    if (!response.ok) {
      await ignore(id, `Not a response message: ${response.problem}`);
      await mesh.acknowledge(id);
      continue;
    }
    const original = await messageAnswered(db, response.originalMessageId);
    const from = message.from?.toUpperCase() ?? '';
    if (!original) {
      await ignore(id, `A response to ${response.originalMessageId}, which is no message of ours`);
    } else if (from !== destinationOf(original.content)?.toUpperCase()) {
      await ignore(id, `A response from ${from || 'an unknown mailbox'}, not the practice the message went to`);
    } else if (response.code === 'ok') {
      const done = await transition(
        db,
        original.id,
        ['sent', 'delivered'],
        {
          status: 'acknowledged',
          acknowledged_at: now,
          delivered_at: sql<Date>`coalesce(delivered_at, ${now})` as unknown as Date,
        },
        { action: 'gp_message.acknowledged', detail: { responseMessageId: response.messageId } },
      );
      if (done) summary.acknowledged += 1;
      else await ignore(id, `A repeated or late acknowledgement (the message is ${original.status})`);
    } else if (response.code === 'fatal-error') {
      const reason = `The practice's system could not accept it: ${response.details ?? 'no reason given'}`;
      if (
        await transition(
          db,
          original.id,
          ['sent', 'delivered'],
          { status: 'failed', last_error: reason },
          { action: 'gp_message.failed', detail: { reason, responseMessageId: response.messageId } },
        )
      )
        summary.failed += 1;
      else await ignore(id, `A repeated or late error response (the message is ${original.status})`);
    } else {
      // transient-error: the practice's system will try again; note it for staff.
      const reason = `The practice's system had a temporary problem: ${response.details ?? 'no reason given'}`;
      await transition(
        db,
        original.id,
        ['sent', 'delivered'],
        { last_error: reason },
        { action: 'gp_message.practice_problem', detail: { reason, responseMessageId: response.messageId } },
      );
    }
    await mesh.acknowledge(id);
  }
  return summary;
}

/** One run of the worker: send what is due, then follow up what was sent. */
export async function runGpMessageWorker(
  db: Db,
  mesh: MeshClient,
  now: Date = new Date(),
): Promise<{ send: SendSummary; poll: PollSummary }> {
  const send = await sendQueuedGpMessages(db, mesh, { now });
  const poll = await pollGpMessageUpdates(db, mesh, { now });
  return { send, poll };
}

const listColumns = [
  'c.id',
  'c.participant_id',
  'c.kind',
  'c.status',
  'c.gp_practice_code',
  'c.mesh_message_id',
  'c.attempts',
  'c.next_attempt_at',
  'c.last_error',
  'c.created_at',
  'c.sent_at',
  'c.delivered_at',
  'c.acknowledged_at',
  'p.nhs_number',
  'p.given_name',
  'p.family_name',
  'g.name as practice_name',
  'g.mesh_mailbox',
] as const;

function gpMessages(db: Db) {
  return db
    .selectFrom('communication as c')
    .innerJoin('participant as p', 'p.id', 'c.participant_id')
    .leftJoin('gp_practice as g', 'g.ods_code', 'c.gp_practice_code')
    .select(listColumns)
    .where('c.channel', '=', 'mesh');
}

export type GpMessageRow = Awaited<ReturnType<ReturnType<typeof gpMessages>['execute']>>[number];

/** Sent (or delivered) but not acknowledged by the practice within `hours` of sending: oldest first. */
export async function unacknowledgedAlerts(
  db: Db,
  now: Date = new Date(),
  hours: number = MESH_DEFAULTS.acknowledgementLimitHours,
): Promise<(GpMessageRow & { hoursWaiting: number })[]> {
  const before = new Date(now.getTime() - hours * 60 * 60 * 1000);
  const rows = await gpMessages(db)
    .where('c.status', 'in', ['sent', 'delivered'])
    .where('c.sent_at', '<', before)
    .orderBy('c.sent_at')
    .execute();
  return rows.map((r) => ({
    ...r,
    hoursWaiting: Math.floor((now.getTime() - new Date(r.sent_at!).getTime()) / 3_600_000),
  }));
}

/** GP messages that failed (newest first), and those waiting to try again after a failed attempt. */
export async function gpMessageProblems(db: Db, limit = 100) {
  const [failed, waiting] = await Promise.all([
    gpMessages(db).where('c.status', '=', 'failed').orderBy('c.created_at', 'desc').limit(limit).execute(),
    gpMessages(db)
      .where('c.status', '=', 'queued')
      .where('c.attempts', '>', 0)
      .where('c.last_error', 'is not', null)
      .orderBy('c.next_attempt_at')
      .limit(limit)
      .execute(),
  ]);
  return { failed, waiting };
}

export async function gpMessageCounts(db: Db): Promise<Record<CommunicationStatus, number>> {
  const rows = await db
    .selectFrom('communication')
    .select(['status', sql<number>`count(*)::int`.as('n')])
    .where('channel', '=', 'mesh')
    .groupBy('status')
    .execute();
  const counts: Record<CommunicationStatus, number> = { queued: 0, sent: 0, delivered: 0, acknowledged: 0, failed: 0 };
  for (const r of rows) counts[r.status] = r.n;
  return counts;
}

/** The latest GP messages (newest first), optionally of one status. */
export function recentGpMessages(db: Db, options: { status?: CommunicationStatus; limit?: number } = {}) {
  let q = gpMessages(db)
    .orderBy('c.created_at', 'desc')
    .orderBy('c.id')
    .limit(options.limit ?? 50);
  if (options.status) q = q.where('c.status', '=', options.status);
  return q.execute();
}

/**
 * Staff ask for a failed message, or one waiting for its next try, to go now. A failed one that had reached MESH
 * (refused by the practice, undeliverable) goes as a new message, made again from the record as it is now; one that
 * never left goes as it was (same bytes, same local id), unless the practice's mailbox has been corrected since it
 * was made. Refused while a worker holds it mid-send (its lease is current): ending the lease then would let another
 * hub process claim it and send it a second time. Audited with the previous attempts and error.
 */
export async function retryGpMessage(
  db: Db,
  id: string,
  actor: Actor,
  now: Date = new Date(),
): Promise<{ resend: boolean }> {
  return db.transaction().execute(async (tx) => {
    const row = await tx
      .selectFrom('communication as c')
      .leftJoin('gp_practice as g', 'g.ods_code', 'c.gp_practice_code')
      .select([
        'c.id',
        'c.participant_id',
        'c.status',
        'c.attempts',
        'c.last_error',
        'c.next_attempt_at',
        'c.mesh_message_id',
        'c.content',
        'g.mesh_mailbox',
      ])
      .where('c.id', '=', id)
      .where('c.channel', '=', 'mesh')
      .forUpdate('c')
      .executeTakeFirst();
    if (!row) throw new NotFoundError('No such GP message');
    // Its outcome was corrected: the corrected outcome has its own message, and this one must never go.
    if (row.last_error === REPLACED_BY_CORRECTION)
      throw new RuleError('form', 'This message was replaced by a corrected outcome: its new message is sent instead.');
    const waiting = row.status === 'queued' && row.attempts > 0;
    if (row.status !== 'failed' && !waiting) {
      throw new RuleError(
        'form',
        `This message cannot be retried: it is ${row.status === 'queued' ? 'waiting to be sent' : row.status}.`,
      );
    }
    // Claimed by a run (sendQueuedGpMessages clears last_error with the lease) and the lease not over: mid-send.
    const beingSent =
      waiting &&
      row.last_error === null &&
      row.next_attempt_at !== null &&
      new Date(row.next_attempt_at).getTime() > now.getTime();
    if (beingSent) throw new RuleError('form', 'This message is being sent now: try again in a few minutes');
    const resend = row.status === 'failed' && row.mesh_message_id !== null;
    // Made for a mailbox the practice no longer has (staff corrected it): make it again for the one it has now.
    const remake =
      resend || (row.content !== null && destinationOf(row.content)?.toUpperCase() !== row.mesh_mailbox?.toUpperCase());
    await tx
      .updateTable('communication')
      .set({
        status: 'queued',
        next_attempt_at: null,
        ...(row.status === 'failed' ? { attempts: 0 } : {}),
        ...(remake ? { content: null, content_sha256: null } : {}),
        ...(resend ? { mesh_message_id: null, sent_at: null, delivered_at: null } : {}),
      })
      .where('id', '=', id)
      .execute();
    await recordAudit(tx, actor, {
      action: 'gp_message.retry',
      entityType: 'communication',
      entityId: id,
      participantId: row.participant_id,
      detail: {
        resend,
        remade: remake,
        previousStatus: row.status,
        previousAttempts: row.attempts,
        previousError: row.last_error,
      },
    });
    return { resend };
  });
}
