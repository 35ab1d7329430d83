import { z } from 'zod';

/**
 * Image transfer between a gateway and the hub (docs/transfer-protocol.md): resumable uploads of sealed packages
 * in the tus 1.0.0 protocol (core, creation and creation-defer-length), the state of each upload, and the gateway's outbox report.
 */
export const TUS_VERSION = '1.0.0';
export const UPLOADS_PATH = '/gateway/v1/uploads';
/** The hub's X25519 public key for sealing, base64 of the raw 32 bytes. */
export const TRANSFER_KEY_PATH = '/gateway/v1/transfer-key';
export const OUTBOX_PATH = '/gateway/v1/outbox';
/** Largest package the hub takes: a tomosynthesis object is about 1.8 GB; this leaves room. */
export const MAX_PACKAGE_BYTES = 8 * 1024 ** 3;

const UID = /^[0-9]+(\.[0-9]+)*$/;

/** What the gateway says of a package when it creates its upload (tus Upload-Metadata). */
export const uploadMetadataSchema = z.object({
  sop: z.string().max(64).regex(UID, 'must be a DICOM UID'),
  accession: z.string().max(16).default(''),
  priority: z.enum(['urgent', 'routine']).default('routine'),
  /** Seconds the image had waited on the gateway: an age, not a time, so the two clocks need not agree. */
  waited: z.coerce
    .number()
    .int()
    .min(0)
    .max(10 * 365 * 86_400)
    .default(0),
});
export type UploadMetadata = z.infer<typeof uploadMetadataSchema>;

/** tus Upload-Metadata: comma-separated "key base64(value)" pairs. */
export function encodeUploadMetadata(values: Record<string, string | number>): string {
  return Object.entries(values)
    .map(([key, value]) => `${key} ${Buffer.from(String(value), 'utf8').toString('base64')}`)
    .join(',');
}

export function decodeUploadMetadata(header: string): Record<string, string> {
  const values: Record<string, string> = {};
  for (const pair of header.split(',')) {
    const [key, value = ''] = pair.trim().split(' ');
    if (key) values[key] = Buffer.from(value, 'base64').toString('utf8');
  }
  return values;
}

/** superseded: begun while its package was sealed, left unfinished, and its image since stored by another upload. */
export const UPLOAD_STATES = ['receiving', 'received', 'stored', 'rejected', 'superseded'] as const;
export type UploadState = (typeof UPLOAD_STATES)[number];

/** GET /gateway/v1/uploads/:id: where an upload stands at the hub. */
export interface UploadStatus {
  id: string;
  state: UploadState;
  offset: number;
  /** Null while the gateway has not said it (creation-defer-length). */
  length: number | null;
  message: string;
}

/** What a gateway reports of its outbox (POST /gateway/v1/outbox), for the hub's support dashboard. */
export const outboxReportSchema = z.object({
  /** Images received from the modality and not yet confirmed in the PACS. */
  images: z.number().int().min(0),
  /** Bytes still to send (sealed packages not yet at the hub, plus an estimate for images not yet sealed). */
  bytes: z.number().int().min(0),
  /** Seconds the longest-waiting image has waited (an age, so clock skew does not matter). */
  oldestWaitingSeconds: z.number().int().min(0),
  /** Bytes per second the hub acknowledged over the last ten minutes of sending. */
  sendBytesPerSecond: z.number().min(0),
  /** The bandwidth cap in force now, if any (bits per second). */
  capBitsPerSecond: z.number().min(0).nullable(),
  /** Images the hub rejected twice: the modality must send them again. */
  damaged: z.number().int().min(0),
});
export type OutboxReport = z.infer<typeof outboxReportSchema>;
