import type { ColumnType, Generated } from 'kysely';
import type { AppointmentStatus } from '../pathway/appointment-status.js';
import type { LetterFormat } from '../pathway/invitation-letters.js';
import type { EpisodeOutcome, MoveSource } from '../pathway/movers.js';
import type { ItemCategory, Side, Source } from '../pathway/record-items.js';
import type {
  AssessmentOutcome,
  AssessmentProcedure,
  BCode,
  BreastSide,
  ClinicPurpose,
  CommunicationChannel,
  CommunicationKind,
  CommunicationRecipient,
  CommunicationStatus,
  ExamResult,
  Opinion,
  OpinionDetails,
  PriorImages,
  ReadNumber,
} from '../pathway/screening-outcomes.js';
import type { Role } from '../pathway/staff-roles.js';
import type { TransferPriority } from '../pathway/transfer-priority.js';
import type { OutboxReport, UploadState } from '../protocol/transfer.js';
import type { GatewayReport, ImageMode } from '../protocol/liveness.js';

/** Kysely's view of the tables in migrations/*.sql. Calendar dates are 'YYYY-MM-DD' strings. */
type CreatedAt = ColumnType<Date, Date | string | undefined, never>;
type Timestamp = ColumnType<Date, Date | string, Date | string>;
type Json<T> = ColumnType<T, string, string>;

export interface FieldProvenance {
  source: Source;
  on: string;
  at: string;
  /** A value from another source that staff decided against when they kept this one (src/store/data-conflicts.ts). */
  declined?: { value: string | null; source: Source; on: string };
}

export type DataConflictKind = 'trailer' | 'field' | 'record_item';
export type ConflictResolution = 'kept_current' | 'applied_incoming';

/** How the FHIR symptomatic endpoint answered a resource (migration 0010). */
export type FhirSymptomaticOutcome =
  'applied' | 'no_action' | 'review' | 'duplicate' | 'superseded' | 'rejected' | 'unprocessable' | 'error';

export interface Tables {
  screening_office: { code: string; name: string; phone: Generated<string | null> };
  gp_practice: { ods_code: string; name: string; postcode: string; bso_code: string; mesh_mailbox: string | null };
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
    /** Very high risk surveillance (migration 0006): risk group code (VHR_RISK_GROUPS), joined on, radiotherapy on. */
    vhr_risk_group: ColumnType<string | null, string | null | undefined, string | null>;
    vhr_since: ColumnType<string | null, string | null | undefined, string | null>;
    vhr_radiotherapy_on: ColumnType<string | null, string | null | undefined, string | null>;
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
    prior_images: PriorImages | null;
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
    purpose: Generated<ClinicPurpose>;
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
    kind: Generated<DataConflictKind>;
    gateway_change_id: string | null;
    participant_id: string;
    appointment_id: string | null;
    /** The participant detail (kind 'field') or record item kind (kind 'record_item'). */
    subject: string | null;
    summary: string;
    trailer: ColumnType<Record<string, unknown> | null, string | null | undefined, string | null>;
    hub: ColumnType<Record<string, unknown> | null, string | null | undefined, string | null>;
    current_value: ColumnType<unknown, string | null | undefined, string | null>;
    current_source: Source | null;
    current_on: string | null;
    incoming_value: ColumnType<unknown, string | null | undefined, string | null>;
    incoming_source: Source | null;
    incoming_on: string | null;
    precedence: Generated<string>;
    raised_at: CreatedAt;
    updated_at: ColumnType<Date, Date | string | undefined, Date | string>;
    status: Generated<'open' | 'resolved'>;
    resolution: ConflictResolution | null;
    resolution_reason: string | null;
    resolved_by: string | null;
    resolved_at: Date | string | null;
    version: Generated<number>;
  };
  participant_move: {
    id: Generated<string>;
    seq: ColumnType<number, never, never>;
    participant_id: string;
    from_bso_code: string;
    to_bso_code: string;
    effective_date: string;
    source: MoveSource;
    gp_practice_from: string | null;
    gp_practice_to: string;
    episode_id: string | null;
    episode_outcome: EpisodeOutcome | null;
    /** Appointment ids. */
    appointments_at_old_office: ColumnType<string[], string | undefined, never>;
    recorded_at: CreatedAt;
    recorded_by: string | null;
  };
  participant_move_seen: { move_id: string; bso_code: string; seen_at: CreatedAt; seen_by: string };
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
  /** Liveness by round trip and manual images mode (migration 0013, issue 8). */
  gateway_health: {
    gateway_id: string;
    last_round_trip_at: Date | string | null;
    last_round_trip_ms: number | null;
    last_ping_stream: string | null;
    report: ColumnType<GatewayReport | null, string | null | undefined, string | null>;
    reported_at: Date | string | null;
  };
  site_image_mode: {
    id: Generated<string>;
    seq: ColumnType<string, never, never>;
    site_id: string;
    mode: ImageMode;
    reason: string;
    changed_at: CreatedAt;
    changed_by: string | null;
    changed_by_name: string;
  };
  appointment_images_held: {
    appointment_id: string;
    site_id: string;
    site_image_mode_id: string;
    marked_at: CreatedAt;
  };
  invitation_suspension: {
    id: Generated<string>;
    participant_id: string;
    reason: string;
    source: 'hl7' | 'fhir';
    source_reference: string;
    source_event_date: string;
    started_at: CreatedAt;
    record_item_id: string | null;
    lifted_at: Date | string | null;
    lifted_on: string | null;
    lifted_by: string | null;
    lifted_by_name: string | null;
    lift_reason: string | null;
  };
  ceasing_event: {
    id: Generated<string>;
    participant_id: string;
    kind: 'cease' | 'reinstate';
    ceasing_reason: string;
    ceased_on: string;
    evidence: string | null;
    reinstates_id: string | null;
    reinstated_on: string | null;
    decided_by: string | null;
    reinstatement_reason: string | null;
    recorded_at: CreatedAt;
    recorded_by: string | null;
    recorded_by_name: string;
  };
  hl7_message: {
    id: Generated<number>;
    received_at: CreatedAt;
    peer: string | null;
    sending_application: string | null;
    sending_facility: string | null;
    control_id: string | null;
    message_type: string | null;
    event_date: string | null;
    sha256: string;
    size_bytes: number;
    ack_code: 'AA' | 'AE' | 'AR';
    outcome: 'applied' | 'no_action' | 'duplicate' | 'error' | 'rejected';
    reason: Generated<string>;
    participant_id: string | null;
    suspension_id: string | null;
  };
  fhir_symptomatic_message: {
    id: Generated<number>;
    received_at: CreatedAt;
    request_id: string;
    entry_index: number | null;
    peer: string | null;
    username: string | null;
    resource_type: string | null;
    resource_key: string | null;
    version_id: string | null;
    last_updated: Date | string | null;
    sha256: string;
    size_bytes: number;
    http_status: number;
    outcome: FhirSymptomaticOutcome;
    reason: Generated<string>;
    participant_id: string | null;
    suspension_id: string | null;
  };
  invitation_batch: {
    id: Generated<string>;
    bso_code: string;
    criterion_kind: 'gp_practice' | 'outcode' | 'birth_month';
    criterion_value: string;
    batch_date: string;
    horizon_date: string;
    request_key: string;
    created_by: string | null;
    created_by_name: string;
    created_at: CreatedAt;
    sent_at: Date | string | null;
    offered_count: Generated<number>;
    no_clinic_count: Generated<number>;
    excluded_count: Generated<number>;
    letters_issued_at: Date | string | null;
  };
  invitation: {
    id: Generated<string>;
    batch_id: string;
    participant_id: string;
    episode_id: string | null;
    episode_type: 'C' | 'R' | null;
    status: 'offered' | 'confirmed' | 'cancelled' | 'contact_requested' | 'no_suitable_clinic';
    appointment_id: string | null;
    no_clinic_reason: string | null;
    letter_format: LetterFormat;
    letter_language: string | null;
    interpreter: Generated<boolean>;
    code_hash: string | null;
    code_issued_at: Date | string | null;
    failed_attempts: Generated<number>;
    locked_until: Date | string | null;
    contact_note: string | null;
    created_at: CreatedAt;
    updated_at: ColumnType<Date, Date | string | undefined, Date | string>;
  };
  reading_opinion: {
    id: Generated<string>;
    appointment_id: string;
    episode_id: string;
    read_number: ReadNumber;
    reader_id: string;
    opinion: Opinion;
    details: ColumnType<OpinionDetails, string | undefined, string>;
    comment: Generated<string>;
    read_at: CreatedAt;
  };
  reading_deferral: {
    id: Generated<string>;
    appointment_id: string;
    reader_id: string;
    reason: string;
    deferred_at: CreatedAt;
    resolved_at: Date | string | null;
  };
  exam_result: {
    appointment_id: string;
    episode_id: string;
    result: ExamResult;
    next_test_due: string | null;
    follow_up_appointment_id: string | null;
    follow_up_problem: string | null;
    issued_at: CreatedAt;
    issued_by: string | null;
  };
  assessment_procedure: {
    id: Generated<string>;
    episode_id: string;
    procedure: AssessmentProcedure;
    side: BreastSide | null;
    performed_on: string;
    b_code: BCode | null;
    notes: Generated<string>;
    recorded_at: CreatedAt;
    recorded_by: string | null;
  };
  assessment_outcome: {
    id: Generated<string>;
    episode_id: string;
    outcome: AssessmentOutcome;
    side: BreastSide | null;
    /** numeric(5,1): pg returns a string. */
    size_mm: ColumnType<string | null, number | string | null, number | string | null>;
    grade: number | null;
    early_recall_months: number | null;
    referred_to_treatment: Generated<boolean>;
    treatment_provider: string | null;
    decided_on: string;
    recorded_at: CreatedAt;
    recorded_by: string | null;
    replaces_id: string | null;
    superseded_at: Date | string | null;
  };
  communication: {
    id: Generated<string>;
    participant_id: string;
    episode_id: string | null;
    appointment_id: string | null;
    recipient: CommunicationRecipient;
    kind: CommunicationKind;
    channel: CommunicationChannel;
    gp_practice_code: string | null;
    format: LetterFormat | null;
    language: string | null;
    content: ColumnType<unknown, string | null, string | null>;
    content_sha256: string | null;
    status: Generated<CommunicationStatus>;
    mesh_message_id: string | null;
    attempts: Generated<number>;
    next_attempt_at: Date | string | null;
    last_error: string | null;
    created_at: CreatedAt;
    sent_at: Date | string | null;
    delivered_at: Date | string | null;
    acknowledged_at: Date | string | null;
  };
  failsafe_run: {
    id: Generated<string>;
    bso_code: string;
    ran_at: CreatedAt;
    as_of: string;
    counts: Json<Record<string, unknown>>;
  };
  postcode_lsoa: { postcode_key: string; lsoa_code: string };
  lsoa_imd: { lsoa_code: string; imd_decile: number; imd_quintile: Generated<number>; source: Generated<string> };
  intervention: {
    id: Generated<string>;
    bso_code: string;
    gp_practice_code: string | null;
    label: string;
    description: Generated<string>;
    starts_on: string;
    ends_on: string | null;
    created_by: string | null;
    created_at: CreatedAt;
  };
  /** Synthetic test participant probes and their steps (migration 0014, issue 8): apart from clinical data. */
  probe: {
    id: Generated<string>;
    site_id: string;
    kind: 'manual' | 'pre_clinic';
    probe_date: string;
    accession_number: string;
    status: Generated<'running' | 'passed' | 'failed'>;
    failed_step: string | null;
    message: Generated<string>;
    requested_by: string;
    created_at: CreatedAt;
    finished_at: Date | null;
  };
  probe_step: {
    probe_id: string;
    step: string;
    ok: boolean;
    duration_ms: number;
    message: Generated<string>;
    at: CreatedAt;
  };
}
