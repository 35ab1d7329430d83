-- Image transfer from mobile units (issue 4, ADR 0007): the hub's transfer key, resumable uploads of sealed
-- packages, the images delivered to the PACS (each once), each gateway's reported outbox, and images available
-- on the appointment (the exam) they belong to.

-- The hub's X25519 transfer key: gateways seal every package for its public half. One row, made on first start.
-- (Production keeps the private half in a KMS/HSM, as it does the gateway authority's key.)
create table transfer_key (
  id integer primary key check (id = 1),
  private_key bytea not null check (length(private_key) = 32),
  public_key bytea not null check (length(public_key) = 32),
  created_at timestamptz not null default now()
);

-- One resumable upload of one sealed package (tus 1.0 creation, docs/transfer-protocol.md). The id is the
-- package id the gateway chose, so a gateway that lost its answer and asks again gets the same upload back.
create table transfer_upload (
  id uuid primary key,
  gateway_id uuid not null references gateway,
  sop_instance_uid text not null,
  accession_number text not null default '',
  priority text not null check (priority in ('urgent', 'routine')),
  length bigint not null check (length > 0),
  -- Bytes fsynced at the hub: where a resumed upload continues from.
  received_bytes bigint not null default 0 check (received_bytes between 0 and length),
  state text not null check (state in ('receiving', 'received', 'stored', 'rejected')),
  message text not null default '',
  -- How long the image had waited on the gateway when the upload began (seconds, so box and hub clocks need not agree).
  waited_seconds integer not null default 0,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  finished_at timestamptz
);
create index transfer_upload_gateway on transfer_upload (gateway_id, updated_at desc);
create index transfer_upload_pending on transfer_upload (updated_at) where state = 'received';

-- Every image delivered to the PACS, once: the SOP Instance UID is the idempotency key.
create table transfer_image (
  sop_instance_uid text primary key,
  sop_class_uid text not null,
  study_instance_uid text not null,
  accession_number text not null default '',
  patient_id text not null default '',
  appointment_id uuid references appointment,
  gateway_id uuid references gateway,
  upload_id uuid references transfer_upload,
  original_bytes bigint not null,
  packed_bytes bigint not null,
  original_sha256 text not null,
  pixel_sha256 text not null,
  codec text not null,
  pacs text not null,
  stored_at timestamptz not null default now()
);
create index transfer_image_appointment on transfer_image (appointment_id);
create index transfer_image_stored on transfer_image (stored_at desc);
create trigger transfer_image_append_only before update or delete on transfer_image
  for each row execute function forbid_change();

-- The exam's images, as the PACS holds them: set when the first image of the appointment is stored there.
alter table appointment add column study_instance_uid text;
alter table appointment add column images_available_at timestamptz;

-- What each gateway last said of its outbox (images and bytes waiting, the longest wait, its send rate).
alter table gateway add column outbox jsonb;
alter table gateway add column outbox_reported_at timestamptz;
