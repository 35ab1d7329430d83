import { sql } from 'kysely';
import {
  createAuthority,
  enrolmentCodeHash,
  issueGatewayCertificate,
  newEnrolmentCode,
  type KeyAndCertificate,
} from '../tls/certificates.js';
import { recordAudit, type Actor } from './audit.js';
import type { Db } from './database.js';
import { NotFoundError, RuleError } from './errors.js';

/** How long an enrolment code can be used for. */
export const ENROLMENT_CODE_HOURS = 72;

/** The hub's gateway certificate authority, made on first use (two hubs starting at once agree on one). */
export async function gatewayAuthority(db: Db): Promise<KeyAndCertificate> {
  const existing = await db.selectFrom('gateway_authority').selectAll().where('id', '=', 1).executeTakeFirst();
  if (existing) return { certificatePem: existing.certificate_pem, privateKeyPem: existing.private_key_pem };
  const made = await createAuthority('Screening Hub gateway authority');
  await db
    .insertInto('gateway_authority')
    .values({ id: 1, certificate_pem: made.certificatePem, private_key_pem: made.privateKeyPem })
    .onConflict((c) => c.column('id').doNothing())
    .execute();
  return gatewayAuthority(db);
}

/** Registers a gateway for a site or mobile unit and returns its one-time enrolment code (shown once). */
export async function addGateway(db: Db, siteId: string, actor: Actor, now = new Date()) {
  const site = await db.selectFrom('site').select(['id', 'name']).where('id', '=', siteId).executeTakeFirst();
  if (!site) throw new RuleError('siteId', 'Choose the mobile unit or site the gateway is for');
  const code = newEnrolmentCode();
  const expiresAt = new Date(now.getTime() + ENROLMENT_CODE_HOURS * 60 * 60 * 1000);
  return db.transaction().execute(async (tx) => {
    const { id } = await tx
      .insertInto('gateway')
      .values({
        site_id: siteId,
        status: 'awaiting_enrolment',
        enrolment_code_hash: enrolmentCodeHash(code),
        enrolment_expires_at: expiresAt,
        created_by: actor.userId,
      })
      .returning('id')
      .executeTakeFirstOrThrow();
    await recordAudit(tx, actor, { action: 'gateway.add', entityType: 'gateway', entityId: id, detail: { siteId } });
    return { gatewayId: id, siteId, siteName: site.name, code, expiresAt };
  });
}

export class EnrolmentRefused extends Error {}

/**
 * Enrols a gateway: a valid, unused, unexpired code and the gateway's certificate request give it a client
 * certificate naming it. The code is spent.
 */
export async function enrolGateway(db: Db, code: string, requestPem: string, ip: string | null, now = new Date()) {
  const authority = await gatewayAuthority(db);
  return db.transaction().execute(async (tx) => {
    const gateway = await tx
      .selectFrom('gateway')
      .select(['id', 'site_id', 'enrolment_expires_at'])
      .where('enrolment_code_hash', '=', enrolmentCodeHash(code))
      .where('status', '=', 'awaiting_enrolment')
      .forUpdate()
      .executeTakeFirst();
    if (!gateway || new Date(gateway.enrolment_expires_at ?? 0) < now)
      throw new EnrolmentRefused(
        'That enrolment code is not valid: it may be mistyped, used already or expired. Ask the support team for a new one.',
      );
    let issued;
    try {
      issued = await issueGatewayCertificate(authority, requestPem, gateway.id, gateway.site_id);
    } catch (error) {
      throw new EnrolmentRefused((error as Error).message);
    }
    await tx
      .updateTable('gateway')
      .set({
        status: 'enrolled',
        enrolment_code_hash: null,
        enrolment_expires_at: null,
        certificate_serial: issued.serial,
        certificate_fingerprint: issued.fingerprint,
        certificate_expires_at: issued.notAfter,
        enrolled_at: now,
        last_contact_at: now,
        last_contact_ip: ip,
      })
      .where('id', '=', gateway.id)
      .execute();
    await recordAudit(tx, gatewayActor(gateway.site_id, ip), {
      action: 'gateway.enrol',
      entityType: 'gateway',
      entityId: gateway.id,
      detail: { serial: issued.serial, fingerprint: issued.fingerprint },
    });
    return {
      gatewayId: gateway.id,
      unitId: gateway.site_id,
      certificatePem: issued.certificatePem,
      authorityPem: authority.certificatePem,
    };
  });
}

/** Stops a gateway's certificate working at once: its next request, and any open push stream, is refused. */
export async function revokeGateway(db: Db, gatewayId: string, reason: string, actor: Actor): Promise<void> {
  if (!reason.trim()) throw new RuleError('reason', 'Give a reason for revoking the gateway');
  await db.transaction().execute(async (tx) => {
    const updated = await tx
      .updateTable('gateway')
      .set({
        status: 'revoked',
        revoked_at: new Date(),
        revoked_by: actor.userId,
        revoked_reason: reason.trim(),
        enrolment_code_hash: null,
      })
      .where('id', '=', gatewayId)
      .where('status', '<>', 'revoked')
      .returning('site_id')
      .executeTakeFirst();
    if (!updated) throw new NotFoundError('That gateway does not exist or is already revoked');
    // Open push streams of this gateway close when this commits (GatewayPush).
    await sql`select pg_notify('gateway_revoked', ${gatewayId})`.execute(tx);
    await recordAudit(tx, actor, {
      action: 'gateway.revoke',
      entityType: 'gateway',
      entityId: gatewayId,
      detail: { reason: reason.trim(), siteId: updated.site_id },
    });
  });
}

export interface EnrolledGateway {
  id: string;
  unitId: string;
  status: 'awaiting_enrolment' | 'enrolled' | 'revoked';
  lastContactAt: Date | null;
}

/** The gateway a client certificate belongs to (by serial number), revoked or not; undefined if unknown. */
export async function gatewayByCertificate(db: Db, serial: string): Promise<EnrolledGateway | undefined> {
  const row = await db
    .selectFrom('gateway')
    .select(['id', 'site_id', 'status', 'last_contact_at'])
    .where('certificate_serial', '=', serial.toUpperCase())
    .executeTakeFirst();
  return row
    ? {
        id: row.id,
        unitId: row.site_id,
        status: row.status,
        lastContactAt: row.last_contact_at ? new Date(row.last_contact_at) : null,
      }
    : undefined;
}

export async function recordGatewayContact(db: Db, gatewayId: string, ip: string | null): Promise<void> {
  await db
    .updateTable('gateway')
    .set({ last_contact_at: new Date(), last_contact_ip: ip })
    .where('id', '=', gatewayId)
    .execute();
}

export async function listGateways(db: Db) {
  return db
    .selectFrom('gateway as g')
    .innerJoin('site as s', 's.id', 'g.site_id')
    .leftJoin('app_user as r', 'r.id', 'g.revoked_by')
    .select([
      'g.id',
      'g.site_id',
      's.name as site_name',
      'g.status',
      'g.enrolment_expires_at',
      'g.certificate_fingerprint',
      'g.certificate_expires_at',
      'g.created_at',
      'g.enrolled_at',
      'g.revoked_at',
      'g.revoked_reason',
      'r.display_name as revoked_by_name',
      'g.last_contact_at',
      'g.last_contact_ip',
    ])
    .orderBy('s.name')
    .orderBy('g.created_at', 'desc')
    .execute();
}

/** How a gateway appears in the audit log and in status history. */
export function gatewayActor(unitId: string, ip: string | null, enteredBy?: string): Actor {
  return { userId: null, username: `gateway ${unitId}${enteredBy ? ` (${enteredBy})` : ''}`, ip };
}
