import type { ColumnType, Generated } from 'kysely';
import type { AppointmentStatus } from '../pathway/appointment-status.js';
import type { ItemCategory, Side, Source } from '../pathway/record-items.js';
import type { Role } from '../pathway/staff-roles.js';
import type { TransferPriority } from '../pathway/transfer-priority.js';
import type { OutboxReport, UploadState } from '../protocol/transfer.js';

/** Kysely's view of the tables in migrations/*.sql. Calendar dates are 'YYYY-MM-DD' strings. */
type CreatedAt = ColumnType<Date, Date | string | undefined, never>;
type Timestamp = ColumnType<Date, Date | string, Date | string>;
type Json<T> = ColumnType<T, string, string>;

export interface FieldProvenance {
  source: Source;
  on: string;
  at: string;
}

export interface Tables {
  screening_office: { code: string; name: string };
  gp_practice: { ods_code: string; name: string; postcode: string; bso_code: string };
  site: { id: string; bso_code: string; name: string; kind: 'static' | 'mobile'; ae_title: string | null };
  location: {
    id: string;
    bso_code: string;
    name: string;
    address: string;
    postcode: string;
    wheelchair_accessible: boolean;
    static_site_id: string | null;
  };
  app_user: {
    id: Generated<string>;
    username: string;
    display_name: string;
    role: Role;
    password_hash: string;
    active: Generated<boolean>;
    created_at: CreatedAt;
  };
  user_session: {
    token_hash: string;
    user_id: string;
    kind: 'web' | 'api';
    created_at: CreatedAt;
    last_seen_at: ColumnType<Date, Date | string | undefined, Date | string>;
    expires_at: Timestamp;
    ip: string | null;
  };
  participant: {
    id: Generated<string>;
    nhs_number: string;
    given_name: string;
    family_name: string;
    date_of_birth: string;
    date_of_death: string | null;
    sex: Generated<'female' | 'male' | 'other' | 'unknown'>;
    address_line1: string;
    address_line2: string | null;
    town: string | null;
    postcode: string;
    postcode_key: ColumnType<string, never, never>;
    phone: string | null;
    email: string | null;
    gp_practice_code: string | null;
    bso_code: string;
    ceased_reason: string | null;
    ceased_on: string | null;
    very_high_risk: Generated<boolean>;
    provenance: Json<Record<string, FieldProvenance>>;
    version: Generated<number>;
    created_at: CreatedAt;
    updated_at: ColumnType<Date, Date | string | undefined, Date | string>;
  };
  participant_change: {
    id: Generated<number>;
    participant_id: string;
    field: string;
    old_value: string | null;
    new_value: string | null;
    source: Source;
    source_date: string;
    reason: string | null;
    changed_at: CreatedAt;
    changed_by: string | null;
  };
  record_item: {
    id: Generated<string>;
    participant_id: string;
    category: ItemCategory;
    kind: string;
    side: Side | null;
    value: string | null;
    details: Generated<string>;
    temporary_until: string | null;
    source: Source;
    source_date: string;
    recorded_at: CreatedAt;
    recorded_by: string | null;
    replaces_id: string | null;
    superseded_at: ColumnType<Date | null, never, Date | string>;
    removed_at: ColumnType<Date | null, never, Date | string>;
    removed_reason: string | null;
  };
  episode: {
    id: Generated<string>;
    participant_id: string;
    bso_code: string;
    episode_type: 'C' | 'R' | 'E' | 'H' | 'T' | 'G' | 'S';
    opened_on: string;
    screened_on: string | null;
    closed_on: string | null;
    end_code: 'SC' | 'DNA' | 'CEASED' | 'NR' | 'WITHDRAWN' | null;
    final_action: 'RR' | 'EC' | 'MT' | 'FP' | null;
  };
  clinic: {
    id: Generated<string>;
    site_id: string;
    location_id: string;
    clinic_date: string;
    starts_at: string;
    ends_at: string;
    slot_minutes: number;
    status: Generated<'open' | 'closed' | 'cancelled'>;
    created_at: CreatedAt;
  };
  appointment: {
    id: Generated<string>;
    clinic_id: string;
    participant_id: string;
    episode_id: string | null;
    slot_index: number;
    slot_count: number;
    status: AppointmentStatus;
    status_reason: string | null;
    accession_number: string;
    rescheduled_from: string | null;
    booked_at: CreatedAt;
    booked_by: string | null;
    version: Generated<number>;
    study_instance_uid: ColumnType<string | null, string | null | undefined, string | null>;
    images_available_at: ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
  };
  appointment_slot: { clinic_id: string; slot_index: number; appointment_id: string };
  appointment_status_event: {
    id: Generated<number>;
    appointment_id: string;
    status: AppointmentStatus;
    reason: string | null;
    re_invite: boolean | null;
    at: CreatedAt;
    by_user: string | null;
    via: ColumnType<'hub' | 'api' | 'gateway' | 'seed', 'hub' | 'api' | 'gateway' | 'seed' | undefined, never>;
  };
  audit_event: {
    id: Generated<number>;
    at: CreatedAt;
    user_id: string | null;
    username: string | null;
    action: string;
    entity_type: string;
    entity_id: string | null;
    participant_id: string | null;
    ip: string | null;
    detail: Json<Record<string, unknown>>;
  };
  gateway_authority: { id: number; certificate_pem: string; private_key_pem: string; created_at: CreatedAt };
  gateway: {
    id: Generated<string>;
    site_id: string;
    status: 'awaiting_enrolment' | 'enrolled' | 'revoked';
    enrolment_code_hash: string | null;
    enrolment_expires_at: Date | string | null;
    certificate_serial: string | null;
    certificate_fingerprint: string | null;
    certificate_expires_at: Date | string | null;
    created_at: CreatedAt;
    created_by: string | null;
    enrolled_at: Date | string | null;
    revoked_at: Date | string | null;
    revoked_by: string | null;
    revoked_reason: string | null;
    last_contact_at: Date | string | null;
    last_contact_ip: string | null;
    outbox: ColumnType<OutboxReport | null, string | null | undefined, string | null>;
    outbox_reported_at: ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
  };
  gateway_change: {
    id: string;
    gateway_id: string;
    kind: 'attendance' | 'demographics' | 'procedure_step';
    appointment_id: string | null;
    participant_id: string | null;
    made_at: Timestamp;
    made_by: string;
    payload: Json<Record<string, unknown>>;
    received_at: CreatedAt;
    outcome: 'applied' | 'conflict' | 'rejected';
    message: string;
  };
  data_conflict: {
    id: Generated<string>;
    gateway_change_id: string;
    participant_id: string;
    appointment_id: string | null;
    summary: string;
    trailer: Json<Record<string, unknown>>;
    hub: Json<Record<string, unknown>>;
    raised_at: CreatedAt;
    status: Generated<'open' | 'resolved'>;
    resolution: 'kept_hub' | 'applied_trailer' | null;
    resolved_by: string | null;
    resolved_at: Date | string | null;
    version: Generated<number>;
  };
  transfer_key: { id: number; private_key: Buffer; public_key: Buffer; created_at: CreatedAt };
  transfer_upload: {
    id: string;
    gateway_id: string;
    sop_instance_uid: string;
    accession_number: string;
    priority: TransferPriority;
    /** Null until the gateway says it (an upload begun while its package was still being sealed). */
    length: number | null;
    received_bytes: Generated<number>;
    state: UploadState;
    message: Generated<string>;
    waited_seconds: Generated<number>;
    created_at: CreatedAt;
    updated_at: Timestamp;
    finished_at: Date | string | null;
  };
  transfer_image: {
    sop_instance_uid: string;
    sop_class_uid: string;
    study_instance_uid: string;
    accession_number: string;
    patient_id: string;
    appointment_id: string | null;
    gateway_id: string | null;
    upload_id: string | null;
    original_bytes: number;
    packed_bytes: number;
    original_sha256: string;
    pixel_sha256: string;
    codec: string;
    pacs: string;
    stored_at: CreatedAt;
  };
}
