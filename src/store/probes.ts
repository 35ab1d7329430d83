import { sql } from 'kysely';
import type { WorklistEntry } from '../dicom/worklist-item.js';
import type { ChangeOutcome, GatewayChange } from '../protocol/gateway-changes.js';
import {
  isProbeAccession,
  PROBE_ACCESSION_PREFIX,
  PROBE_AE_TITLE,
  PROBE_FAMILY_NAME,
  PROBE_GIVEN_NAME,
  PROBE_NHS_NUMBER,
  PROBE_STEP_ORDER,
  type PreClinicAnswer,
  type ProbeStep,
} from '../protocol/probe.js';
import { recordAudit, type Actor } from './audit.js';
import type { Db } from './database.js';
import { NotFoundError, RuleError, isUniqueViolation } from './errors.js';
import type { EnrolledGateway } from './gateways.js';

/**
 * Synthetic test participant probes (issue 8, migration 0014). A probe is kept in its own tables, never as a
 * participant, episode or appointment: everything clinical (reports, KC62, uptake, failsafes, reading, other units'
 * worklists, participant search) reads those tables and so cannot see a probe. Only the gateway listener's worklist
 * route adds a unit's running probes to what it sends that unit's gateways.
 */

/** A probe with no answer for this long is failed at the step it was waiting for. */
export const PROBE_TIMEOUT_MS = 10 * 60_000;

export type ProbeKind = 'manual' | 'pre_clinic';
export type ProbeStatus = 'running' | 'passed' | 'failed';

export interface ProbeStepRecord {
  step: string;
  ok: boolean;
  durationMs: number;
  message: string;
  at: Date;
}

export interface Probe {
  id: string;
  siteId: string;
  siteName: string;
  kind: ProbeKind;
  probeDate: string;
  accessionNumber: string;
  status: ProbeStatus;
  failedStep: string | null;
  message: string;
  requestedBy: string;
  createdAt: Date;
  finishedAt: Date | null;
  /** In the order they were recorded. */
  steps: ProbeStepRecord[];
  /** From creation to the last step recorded, or to now while running. */
  totalMs: number;
}

/**
 * Creates a probe for one unit: a test appointment on today's worklist of that unit only (the insert notifies the
 * unit's gateways, migration 0014), with the "created" step recorded.
 */
export async function createProbe(
  db: Db,
  siteId: string,
  kind: ProbeKind,
  today: string,
  actor: Actor,
): Promise<{ id: string; accessionNumber: string }> {
  const site = await db.selectFrom('site').select(['id', 'name']).where('id', '=', siteId).executeTakeFirst();
  if (!site) throw new NotFoundError('That unit does not exist');
  const gateway = await db
    .selectFrom('gateway')
    .select('id')
    .where('site_id', '=', siteId)
    .where('status', '=', 'enrolled')
    .executeTakeFirst();
  if (!gateway) throw new RuleError('siteId', `${site.name} has no enrolled gateway to send a probe through`);
  return db.transaction().execute(async (tx) => {
    const { rows } = await sql<{ n: string }>`select nextval('probe_accession_seq')::text as n`.execute(tx);
    const accessionNumber = PROBE_ACCESSION_PREFIX + String(rows[0]!.n).padStart(9, '0');
    const probe = await tx
      .insertInto('probe')
      .values({
        site_id: siteId,
        kind,
        probe_date: today,
        accession_number: accessionNumber,
        requested_by: actor.username,
      })
      .returning('id')
      .executeTakeFirstOrThrow();
    await tx
      .insertInto('probe_step')
      .values({ probe_id: probe.id, step: 'created', ok: true, duration_ms: 0 })
      .execute();
    await recordAudit(tx, actor, {
      action: 'probe.create',
      entityType: 'site',
      entityId: siteId,
      detail: { probeId: probe.id, kind, accessionNumber },
    });
    return { id: probe.id, accessionNumber };
  });
}

/**
 * Today's pre-clinic probe for a gateway's unit: made on the first ask of the day, the same one on every later ask
 * (a restarted gateway does not send another).
 */
export async function preClinicProbe(db: Db, gateway: EnrolledGateway, today: string): Promise<PreClinicAnswer> {
  const existing = await db
    .selectFrom('probe')
    .select('id')
    .where('site_id', '=', gateway.unitId)
    .where('probe_date', '=', today)
    .where('kind', '=', 'pre_clinic')
    .executeTakeFirst();
  if (existing) return { probeId: existing.id, created: false };
  try {
    const made = await createProbe(db, gateway.unitId, 'pre_clinic', today, {
      userId: null,
      username: `gateway ${gateway.unitId} (pre-clinic check)`,
      ip: null,
    });
    return { probeId: made.id, created: true };
  } catch (error) {
    // Two asks at once: the second finds the first's probe.
    if (isUniqueViolation(error)) return preClinicProbe(db, gateway, today);
    throw error;
  }
}

/** The worklist entries of a unit's running probes in a date range (added by the gateway listener only). */
export async function probeWorklistEntries(db: Db, siteId: string, from: string, to: string): Promise<WorklistEntry[]> {
  const rows = await db
    .selectFrom('probe')
    .select(['id', 'accession_number', 'probe_date', 'created_at'])
    .where('site_id', '=', siteId)
    .where('status', '=', 'running')
    .where('probe_date', '>=', from)
    .where('probe_date', '<=', to)
    .orderBy('created_at')
    .execute();
  return rows.map((r) => ({
    appointmentId: r.id,
    // Not a participant: the probe's own id stands in, so a change naming it can only be the probe's.
    participantId: r.id,
    status: 'scheduled' as const,
    accessionNumber: r.accession_number,
    nhsNumber: PROBE_NHS_NUMBER,
    givenName: PROBE_GIVEN_NAME,
    familyName: PROBE_FAMILY_NAME,
    dateOfBirth: '1970-01-01',
    sex: 'female' as const,
    clinicDate: r.probe_date,
    startTime: new Date(r.created_at).toISOString().slice(11, 16),
    stationAeTitle: PROBE_AE_TITLE,
    locationName: 'Synthetic test probe',
    adjustments: [],
    priority: 'routine' as const,
  }));
}

/**
 * Records one step of a probe, once (a resend changes nothing), and settles the probe: failed at the first step
 * that fails, passed when every step has succeeded. Without `durationMs`, the step is timed from the step before.
 */
export async function recordProbeStep(
  db: Db,
  probeId: string,
  step: ProbeStep,
  result: { ok: boolean; durationMs?: number; message?: string },
): Promise<void> {
  await db.transaction().execute(async (tx) => {
    const probe = await tx
      .selectFrom('probe')
      .select(['id', 'status'])
      .where('id', '=', probeId)
      .forUpdate()
      .executeTakeFirst();
    if (!probe) throw new NotFoundError('That probe does not exist');
    const last = await tx
      .selectFrom('probe_step')
      .select((eb) => eb.fn.max('at').as('at'))
      .where('probe_id', '=', probeId)
      .executeTakeFirst();
    const since = last?.at ? Date.now() - new Date(last.at).getTime() : 0;
    const inserted = await tx
      .insertInto('probe_step')
      .values({
        probe_id: probeId,
        step,
        ok: result.ok,
        duration_ms: Math.max(0, Math.round(result.durationMs ?? since)),
        message: (result.message ?? '').slice(0, 500),
      })
      .onConflict((c) => c.columns(['probe_id', 'step']).doNothing())
      .executeTakeFirst();
    if (Number(inserted.numInsertedOrUpdatedRows ?? 0n) === 0 || probe.status !== 'running') return;
    if (!result.ok) {
      await tx
        .updateTable('probe')
        .set({ status: 'failed', failed_step: step, message: result.message ?? '', finished_at: new Date() })
        .where('id', '=', probeId)
        .execute();
      return;
    }
    const done = await tx
      .selectFrom('probe_step')
      .select('step')
      .where('probe_id', '=', probeId)
      .where('ok', '=', true)
      .execute();
    const have = new Set(done.map((d) => d.step));
    if (PROBE_STEP_ORDER.every((s) => have.has(s)))
      await tx
        .updateTable('probe')
        .set({ status: 'passed', finished_at: new Date() })
        .where('id', '=', probeId)
        .execute();
  });
}

/** A step reported by a gateway: only for a probe of its own unit (false if the probe is not one). */
export async function recordGatewayProbeStep(
  db: Db,
  gateway: EnrolledGateway,
  probeId: string,
  report: { step: ProbeStep; ok: boolean; durationMs?: number | undefined; message: string },
): Promise<boolean> {
  const probe = await db.selectFrom('probe').select('site_id').where('id', '=', probeId).executeTakeFirst();
  if (!probe || probe.site_id !== gateway.unitId) return false;
  await recordProbeStep(db, probeId, report.step, report);
  return true;
}

/**
 * A change from a gateway that names a probe (its worklist entry's appointment id is the probe's id): recorded
 * against the probe, never an appointment. Undefined when the change does not name a probe (the caller applies it
 * as a clinical change).
 */
export async function recordProbeChange(
  db: Db,
  gateway: EnrolledGateway,
  change: GatewayChange,
): Promise<ChangeOutcome | undefined> {
  const probe = await db
    .selectFrom('probe')
    .select(['id', 'site_id'])
    .where('id', '=', change.appointmentId)
    .executeTakeFirst();
  if (!probe) return undefined;
  if (probe.site_id !== gateway.unitId)
    return { id: change.id, outcome: 'rejected', message: 'That probe was not sent to this unit' };
  if (change.kind !== 'procedure_step')
    return { id: change.id, outcome: 'rejected', message: 'A probe takes no changes from the trailer' };
  if (change.step === 'completed') await recordProbeStep(db, probe.id, 'mpps_at_hub', { ok: true });
  if (change.step === 'discontinued')
    await recordProbeStep(db, probe.id, 'mpps_at_hub', {
      ok: false,
      message: `The procedure step was discontinued: ${change.reason ?? 'no reason given'}`,
    });
  return { id: change.id, outcome: 'applied', message: `Recorded against probe ${probe.id}` };
}

/**
 * The hub's steps for a probe's image, by upload (transfer intake): received at the hub, stored in the PACS, or
 * failed there. Nothing is done for an upload that is not a probe's.
 */
export async function recordProbeUpload(
  db: Db,
  uploadId: string,
  step: 'received_at_hub' | 'stored_in_pacs',
  failure?: string,
): Promise<void> {
  const upload = await db
    .selectFrom('transfer_upload')
    .select('accession_number')
    .where('id', '=', uploadId)
    .executeTakeFirst();
  if (!upload || !isProbeAccession(upload.accession_number)) return;
  const probe = await db
    .selectFrom('probe')
    .select('id')
    .where('accession_number', '=', upload.accession_number)
    .executeTakeFirst();
  if (!probe) return;
  await recordProbeStep(db, probe.id, step, failure === undefined ? { ok: true } : { ok: false, message: failure });
}

/** Fails running probes that have waited too long, at the first step not yet recorded. */
export async function expireProbes(db: Db, now = new Date(), timeoutMs = PROBE_TIMEOUT_MS): Promise<number> {
  const stale = await db
    .selectFrom('probe')
    .select('id')
    .where('status', '=', 'running')
    .where('created_at', '<', new Date(now.getTime() - timeoutMs))
    .execute();
  for (const { id } of stale) {
    const done = await db.selectFrom('probe_step').select('step').where('probe_id', '=', id).execute();
    const have = new Set(done.map((d) => d.step));
    const waiting = PROBE_STEP_ORDER.find((s) => !have.has(s)) ?? 'pacs_confirmed';
    await recordProbeStep(db, id, waiting, {
      ok: false,
      message: `No answer for this step within ${Math.round(timeoutMs / 60_000)} minutes`,
    });
  }
  return stale.length;
}

/** Probes, newest first, with their steps (running ones past their time are failed first). */
export async function listProbes(
  db: Db,
  options: { limit?: number; id?: string; siteId?: string } = {},
): Promise<Probe[]> {
  await expireProbes(db);
  let query = db
    .selectFrom('probe as p')
    .innerJoin('site as s', 's.id', 'p.site_id')
    .selectAll('p')
    .select('s.name as site_name')
    .orderBy('p.created_at', 'desc')
    .limit(options.limit ?? 50);
  if (options.id) query = query.where('p.id', '=', options.id);
  if (options.siteId) query = query.where('p.site_id', '=', options.siteId);
  const rows = await query.execute();
  const steps = rows.length
    ? await db
        .selectFrom('probe_step')
        .selectAll()
        .where(
          'probe_id',
          'in',
          rows.map((r) => r.id),
        )
        .orderBy('at')
        .execute()
    : [];
  const order = (step: string) => PROBE_STEP_ORDER.indexOf(step as ProbeStep);
  return rows.map((r) => {
    const own = steps
      .filter((s) => s.probe_id === r.id)
      // Recorded in the same instant (one transaction): the pipeline's order decides.
      .sort((a, b) => new Date(a.at).getTime() - new Date(b.at).getTime() || order(a.step) - order(b.step))
      .map((s) => ({ step: s.step, ok: s.ok, durationMs: s.duration_ms, message: s.message, at: new Date(s.at) }));
    const end = r.finished_at ? new Date(r.finished_at).getTime() : Date.now();
    return {
      id: r.id,
      siteId: r.site_id,
      siteName: r.site_name,
      kind: r.kind,
      probeDate: r.probe_date,
      accessionNumber: r.accession_number,
      status: r.status,
      failedStep: r.failed_step,
      message: r.message,
      requestedBy: r.requested_by,
      createdAt: new Date(r.created_at),
      finishedAt: r.finished_at ? new Date(r.finished_at) : null,
      steps: own,
      totalMs: Math.max(0, end - new Date(r.created_at).getTime()),
    };
  });
}

export async function findProbe(db: Db, id: string): Promise<Probe | undefined> {
  return (await listProbes(db, { id, limit: 1 }))[0];
}

export interface PreClinicCheck {
  siteId: string;
  siteName: string;
  /** Clinics at the unit that day (cancelled ones not counted). */
  clinics: number;
  hasGateway: boolean;
  probe: { id: string; status: ProbeStatus; at: Date; failedStep: string | null; message: string } | null;
  /** Green: the day's pre-clinic probe passed. Red: it failed, or has not run. Waiting: it is running now. */
  state: 'green' | 'red' | 'waiting';
}

/** For each unit with clinics on `date`: its clinics and that day's latest pre-clinic probe, green or red. */
export async function preClinicChecks(db: Db, date: string): Promise<PreClinicCheck[]> {
  await expireProbes(db);
  const sites = await db
    .selectFrom('clinic as c')
    .innerJoin('site as s', 's.id', 'c.site_id')
    .select(['s.id', 's.name', (eb) => eb.fn.countAll<string>().as('clinics')])
    .where('c.clinic_date', '=', date)
    .where('c.status', '!=', 'cancelled')
    .groupBy(['s.id', 's.name'])
    .orderBy('s.name')
    .execute();
  if (sites.length === 0) return [];
  const ids = sites.map((s) => s.id);
  const [gateways, probes] = await Promise.all([
    db
      .selectFrom('gateway')
      .select('site_id')
      .distinct()
      .where('site_id', 'in', ids)
      .where('status', '=', 'enrolled')
      .execute(),
    db
      .selectFrom('probe')
      .select(['id', 'site_id', 'status', 'created_at', 'finished_at', 'failed_step', 'message'])
      .where('site_id', 'in', ids)
      .where('probe_date', '=', date)
      .where('kind', '=', 'pre_clinic')
      .orderBy('created_at', 'desc')
      .execute(),
  ]);
  const withGateway = new Set(gateways.map((g) => g.site_id));
  return sites.map((s) => {
    const p = probes.find((r) => r.site_id === s.id);
    return {
      siteId: s.id,
      siteName: s.name,
      clinics: Number(s.clinics),
      hasGateway: withGateway.has(s.id),
      probe: p
        ? {
            id: p.id,
            status: p.status,
            at: new Date(p.finished_at ?? p.created_at),
            failedStep: p.failed_step,
            message: p.message,
          }
        : null,
      state: p?.status === 'passed' ? 'green' : p?.status === 'running' ? 'waiting' : 'red',
    };
  });
}
