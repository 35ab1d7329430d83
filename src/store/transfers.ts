import { sql } from 'kysely';
import type { TransferPriority } from '../pathway/transfer-priority.js';
import type { OutboxReport, UploadState, UploadStatus } from '../protocol/transfer.js';
import { newTransferKeyPair, rawPrivateKey, rawPublicKey, x25519PrivateKey } from '../transfer/sealed-package.js';
import { recordAudit, type Actor } from './audit.js';
import type { Db } from './database.js';

/** The hub's transfer key pair (made on first use; two hubs starting at once agree on one). */
export async function transferKey(db: Db) {
  const row = await db.selectFrom('transfer_key').selectAll().where('id', '=', 1).executeTakeFirst();
  if (row)
    return { privateKey: x25519PrivateKey(Buffer.from(row.private_key)), publicKey: Buffer.from(row.public_key) };
  const made = newTransferKeyPair();
  await db
    .insertInto('transfer_key')
    .values({ id: 1, private_key: rawPrivateKey(made.privateKey), public_key: rawPublicKey(made.publicKey) })
    .onConflict((c) => c.column('id').doNothing())
    .execute();
  return transferKey(db);
}

export interface NewUpload {
  id: string;
  gatewayId: string;
  sopInstanceUid: string;
  accessionNumber: string;
  priority: TransferPriority;
  /** Undefined: told later (the gateway is still sealing the package). */
  length: number | undefined;
  waitedSeconds: number;
}

const uploadColumns = ['id', 'gateway_id', 'state', 'received_bytes', 'length', 'message', 'sop_instance_uid'] as const;

export type UploadRow = Awaited<ReturnType<typeof findUpload>>;

export async function findUpload(db: Db, id: string) {
  return db.selectFrom('transfer_upload').select(uploadColumns).where('id', '=', id).executeTakeFirst();
}

/**
 * Creates the upload for a package, or returns the one already made for it (the gateway may ask again after
 * losing the answer). A package id belongs to the gateway that made it, with the length it gave first.
 */
export async function createUpload(db: Db, upload: NewUpload) {
  await db
    .insertInto('transfer_upload')
    .values({
      id: upload.id,
      gateway_id: upload.gatewayId,
      sop_instance_uid: upload.sopInstanceUid,
      accession_number: upload.accessionNumber,
      priority: upload.priority,
      length: upload.length ?? null,
      state: 'receiving',
      waited_seconds: upload.waitedSeconds,
      updated_at: new Date(),
    })
    .onConflict((c) => c.column('id').doNothing())
    .execute();
  return (await findUpload(db, upload.id))!;
}

/**
 * Sets the length of an upload begun without one, once. Returns the row as it now stands (its length may be
 * another, given first: the caller refuses that).
 */
export async function setUploadLength(db: Db, id: string, length: number) {
  await db
    .updateTable('transfer_upload')
    .set({ length, updated_at: new Date() })
    .where('id', '=', id)
    .where('length', 'is', null)
    .where('received_bytes', '<=', length)
    .execute();
  return (await findUpload(db, id))!;
}

/** Records the bytes now durable at the hub; the whole package (its length known) makes the upload 'received'. */
export async function recordUploadProgress(db: Db, id: string, receivedBytes: number, length: number | null) {
  const complete = receivedBytes === length;
  await db
    .updateTable('transfer_upload')
    .set({
      received_bytes: receivedBytes,
      updated_at: new Date(),
      ...(complete ? { state: 'received' as const } : {}),
    })
    .where('id', '=', id)
    .where('state', '=', 'receiving')
    .execute();
}

export async function finishUpload(
  db: Db,
  id: string,
  state: Extract<UploadState, 'stored' | 'rejected'>,
  message = '',
) {
  await db
    .updateTable('transfer_upload')
    .set({ state, message, updated_at: new Date(), finished_at: new Date() })
    .where('id', '=', id)
    .execute();
}

/**
 * Uploads of a stored image, from the same gateway, begun while their package was sealed and never finished (the
 * sealing stopped: the image was sealed again as a new package): superseded now. Returns their ids.
 */
export async function supersedeUploads(db: Db, stored: { id: string; gatewayId: string; sopInstanceUid: string }) {
  const rows = await db
    .updateTable('transfer_upload')
    .set({
      state: 'superseded',
      message: `Its image arrived by upload ${stored.id}`,
      updated_at: new Date(),
      finished_at: new Date(),
    })
    .where('gateway_id', '=', stored.gatewayId)
    .where('sop_instance_uid', '=', stored.sopInstanceUid)
    .where('state', '=', 'receiving')
    .where('length', 'is', null)
    .where('id', '!=', stored.id)
    .returning('id')
    .execute();
  return rows.map((r) => r.id);
}

/** Uploads whose package is whole at the hub but not yet opened and stored (after a restart, say). */
export async function receivedUploads(db: Db): Promise<string[]> {
  const rows = await db
    .selectFrom('transfer_upload')
    .select('id')
    .where('state', '=', 'received')
    .orderBy('updated_at')
    .execute();
  return rows.map((r) => r.id);
}

export function uploadStatus(row: NonNullable<UploadRow>): UploadStatus {
  return {
    id: row.id,
    state: row.state,
    offset: Number(row.received_bytes),
    length: row.length === null ? null : Number(row.length),
    message: row.message,
  };
}

export interface StoredImage {
  sopInstanceUid: string;
  sopClassUid: string;
  studyInstanceUid: string;
  accessionNumber: string;
  patientId: string;
  originalBytes: number;
  packedBytes: number;
  originalSha256: string;
  pixelSha256: string;
  codec: string;
}

/**
 * Records an image the PACS now holds, once (the SOP Instance UID is the key), and marks its exam's images
 * available on the appointment with the same accession number. Returns false when it was already recorded.
 */
export async function recordStoredImage(
  db: Db,
  image: StoredImage,
  upload: { id: string; gatewayId: string },
  pacs: string,
  actor: Actor,
): Promise<boolean> {
  return db.transaction().execute(async (tx) => {
    const appointment = image.accessionNumber
      ? await tx
          .selectFrom('appointment')
          .select(['id', 'participant_id', 'images_available_at'])
          .where('accession_number', '=', image.accessionNumber)
          .executeTakeFirst()
      : undefined;
    const inserted = await tx
      .insertInto('transfer_image')
      .values({
        sop_instance_uid: image.sopInstanceUid,
        sop_class_uid: image.sopClassUid,
        study_instance_uid: image.studyInstanceUid,
        accession_number: image.accessionNumber,
        patient_id: image.patientId,
        appointment_id: appointment?.id ?? null,
        gateway_id: upload.gatewayId,
        upload_id: upload.id,
        original_bytes: image.originalBytes,
        packed_bytes: image.packedBytes,
        original_sha256: image.originalSha256,
        pixel_sha256: image.pixelSha256,
        codec: image.codec,
        pacs,
      })
      .onConflict((c) => c.column('sop_instance_uid').doNothing())
      .returning('sop_instance_uid')
      .executeTakeFirst();
    await tx
      .updateTable('transfer_upload')
      .set({ state: 'stored', message: '', updated_at: new Date(), finished_at: new Date() })
      .where('id', '=', upload.id)
      .execute();
    if (!inserted) return false;
    if (appointment && !appointment.images_available_at)
      await tx
        .updateTable('appointment')
        .set({ images_available_at: new Date(), study_instance_uid: image.studyInstanceUid })
        .where('id', '=', appointment.id)
        .execute();
    await recordAudit(tx, actor, {
      action: 'image.store',
      entityType: 'appointment',
      entityId: appointment?.id ?? null,
      participantId: appointment?.participant_id ?? null,
      detail: {
        sopInstanceUid: image.sopInstanceUid,
        accessionNumber: image.accessionNumber,
        pacs,
        originalSha256: image.originalSha256,
      },
    });
    return true;
  });
}

export async function recordOutboxReport(db: Db, gatewayId: string, report: OutboxReport): Promise<void> {
  await db
    .updateTable('gateway')
    .set({ outbox: JSON.stringify(report), outbox_reported_at: new Date() })
    .where('id', '=', gatewayId)
    .execute();
}

/** The images the PACS holds for an appointment (the record page, the reading worklist later). */
export async function imagesOfAppointment(db: Db, appointmentId: string) {
  return db
    .selectFrom('transfer_image')
    .select(['sop_instance_uid', 'sop_class_uid', 'study_instance_uid', 'original_bytes', 'stored_at', 'pacs'])
    .where('appointment_id', '=', appointmentId)
    .orderBy('stored_at')
    .execute();
}

/** Per gateway: what it last reported of its outbox, and what the hub stored from it in the last hour. */
export async function transferOverview(db: Db, since: Date) {
  const gateways = await db
    .selectFrom('gateway as g')
    .innerJoin('site as s', 's.id', 'g.site_id')
    .select([
      'g.id',
      'g.site_id',
      's.name as site_name',
      'g.status',
      'g.last_contact_at',
      'g.last_contact_ip',
      'g.outbox',
      'g.outbox_reported_at',
    ])
    .where('g.status', '=', 'enrolled')
    .orderBy('s.name')
    .execute();
  const stored = await db
    .selectFrom('transfer_image')
    .select([
      'gateway_id',
      sql<number>`count(*)::int`.as('images'),
      sql<number>`coalesce(sum(packed_bytes), 0)::bigint`.as('packed_bytes'),
    ])
    .where('stored_at', '>=', since)
    .groupBy('gateway_id')
    .execute();
  const rejected = await db
    .selectFrom('transfer_upload')
    .select(['gateway_id', sql<number>`count(*)::int`.as('n')])
    .where('state', '=', 'rejected')
    .where('updated_at', '>=', since)
    .groupBy('gateway_id')
    .execute();
  const storedBy = new Map(stored.map((r) => [r.gateway_id, r]));
  const rejectedBy = new Map(rejected.map((r) => [r.gateway_id, r.n]));
  return gateways.map((g) => ({
    ...g,
    storedImages: storedBy.get(g.id)?.images ?? 0,
    storedPackedBytes: Number(storedBy.get(g.id)?.packed_bytes ?? 0),
    rejectedUploads: rejectedBy.get(g.id) ?? 0,
  }));
}

/** Totals since the hub's database began, for /metrics. */
export async function transferTotals(db: Db) {
  const images = await db
    .selectFrom('transfer_image')
    .select([
      sql<number>`count(*)::int`.as('images'),
      sql<number>`coalesce(sum(original_bytes), 0)::bigint`.as('original_bytes'),
      sql<number>`coalesce(sum(packed_bytes), 0)::bigint`.as('packed_bytes'),
    ])
    .executeTakeFirstOrThrow();
  const uploads = await db
    .selectFrom('transfer_upload')
    .select(['state', sql<number>`count(*)::int`.as('n')])
    .groupBy('state')
    .execute();
  return {
    images: images.images,
    originalBytes: Number(images.original_bytes),
    packedBytes: Number(images.packed_bytes),
    uploads: Object.fromEntries(uploads.map((u) => [u.state, u.n])) as Partial<Record<UploadState, number>>,
  };
}
