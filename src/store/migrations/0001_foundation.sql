-- Screening Hub foundation: offices, places, people, the whole-person record, clinics, appointments, audit.
-- One dialect: PostgreSQL (the same file runs on PGlite and on a PostgreSQL server).

create function forbid_change() returns trigger language plpgsql as $$
begin
  raise exception '% is append-only: % is not allowed', tg_table_name, tg_op;
end $$;

create table screening_office (
  code text primary key check (code ~ '^[A-Z0-9]{3,5}$'),
  name text not null
);

create table gp_practice (
  ods_code text primary key check (ods_code ~ '^[A-Z][0-9A-Z]{4,5}$'),
  name text not null,
  postcode text not null,
  bso_code text not null references screening_office
);

create table site (
  id text primary key,
  bso_code text not null references screening_office,
  name text not null,
  kind text not null check (kind in ('static', 'mobile')),
  ae_title text check (ae_title ~ '^[ -~]{1,16}$')
);

create table location (
  id text primary key,
  bso_code text not null references screening_office,
  name text not null,
  address text not null,
  postcode text not null,
  wheelchair_accessible boolean not null,
  -- set for the location that is a static site's own building
  static_site_id text references site
);

create table app_user (
  id uuid primary key default gen_random_uuid(),
  username text not null unique check (username ~ '^[a-z0-9._-]{3,40}$'),
  display_name text not null,
  role text not null check (role in ('admin', 'mammographer', 'film_reader', 'programme_manager', 'support')),
  password_hash text not null,
  active boolean not null default true,
  created_at timestamptz not null default now()
);

create table user_session (
  token_hash text primary key,
  user_id uuid not null references app_user on delete cascade,
  kind text not null check (kind in ('web', 'api')),
  created_at timestamptz not null default now(),
  last_seen_at timestamptz not null default now(),
  expires_at timestamptz not null,
  ip text
);
create index user_session_expiry on user_session (expires_at);

create table participant (
  id uuid primary key default gen_random_uuid(),
  nhs_number text not null unique check (nhs_number ~ '^[0-9]{10}$'),
  given_name text not null check (length(given_name) between 1 and 100),
  family_name text not null check (length(family_name) between 1 and 100),
  date_of_birth date not null,
  date_of_death date check (date_of_death is null or date_of_death >= date_of_birth),
  sex text not null default 'female' check (sex in ('female', 'male', 'other', 'unknown')),
  address_line1 text not null,
  address_line2 text,
  town text,
  postcode text not null,
  postcode_key text generated always as (upper(replace(postcode, ' ', ''))) stored,
  phone text,
  email text,
  gp_practice_code text references gp_practice,
  bso_code text not null references screening_office,
  ceased_reason text,
  ceased_on date,
  very_high_risk boolean not null default false,
  -- per-field provenance of the current values: {"postcode": {"source": "bs_select", "on": "2026-01-02", "at": "..."}}
  provenance jsonb not null default '{}',
  version integer not null default 1,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  check ((ceased_reason is null) = (ceased_on is null))
);
create index participant_dob_name on participant (date_of_birth, lower(family_name));
create index participant_postcode on participant (postcode_key);
create index participant_gp on participant (gp_practice_code);

-- Every change to a participant's demographic fields, with its source: the history behind provenance.
create table participant_change (
  id bigserial primary key,
  participant_id uuid not null references participant,
  field text not null,
  old_value text,
  new_value text,
  source text not null,
  source_date date not null,
  reason text,
  changed_at timestamptz not null default now(),
  changed_by uuid references app_user
);
create index participant_change_participant on participant_change (participant_id, changed_at);
create trigger participant_change_append_only before update or delete on participant_change
  for each row execute function forbid_change();

-- Clinical history, access needs and communication preferences. A correction adds a row that replaces the old
-- one (the old row keeps its values and gets superseded_at); nothing is overwritten.
create table record_item (
  id uuid primary key default gen_random_uuid(),
  participant_id uuid not null references participant,
  category text not null check (category in ('clinical', 'access', 'communication')),
  kind text not null,
  side text check (side in ('left', 'right', 'bilateral')),
  value text,
  details text not null default '',
  temporary_until date,
  source text not null check (source in ('bs_select', 'gp', 'epr', 'participant', 'staff', 'gateway')),
  source_date date not null,
  recorded_at timestamptz not null default now(),
  recorded_by uuid references app_user,
  replaces_id uuid references record_item,
  superseded_at timestamptz,
  removed_at timestamptz,
  removed_reason text,
  check ((removed_at is null) = (removed_reason is null))
);
create index record_item_current on record_item (participant_id) where superseded_at is null and removed_at is null;
create index record_item_participant on record_item (participant_id, recorded_at);
create index record_item_kind on record_item (kind) where superseded_at is null and removed_at is null;

create table episode (
  id uuid primary key default gen_random_uuid(),
  participant_id uuid not null references participant,
  bso_code text not null references screening_office,
  episode_type char(1) not null check (episode_type in ('C', 'R', 'E', 'H', 'T', 'G', 'S')),
  opened_on date not null,
  screened_on date,
  closed_on date,
  end_code text check (end_code in ('SC', 'DNA', 'CEASED', 'NR', 'WITHDRAWN')),
  final_action text check (final_action in ('RR', 'EC', 'MT', 'FP')),
  check (closed_on is null or closed_on >= opened_on)
);
create index episode_participant on episode (participant_id, opened_on desc);
create index episode_screened on episode (participant_id, screened_on desc) where screened_on is not null;

create table clinic (
  id uuid primary key default gen_random_uuid(),
  site_id text not null references site,
  location_id text not null references location,
  clinic_date date not null,
  starts_at time not null,
  ends_at time not null,
  slot_minutes integer not null check (slot_minutes between 3 and 60),
  status text not null default 'open' check (status in ('open', 'closed', 'cancelled')),
  created_at timestamptz not null default now(),
  check (ends_at > starts_at),
  unique (site_id, clinic_date, starts_at)
);
create index clinic_date on clinic (clinic_date, site_id);

create sequence accession_number_seq;

create table appointment (
  id uuid primary key default gen_random_uuid(),
  clinic_id uuid not null references clinic,
  participant_id uuid not null references participant,
  episode_id uuid references episode,
  slot_index integer not null check (slot_index >= 0),
  slot_count integer not null check (slot_count between 1 and 4),
  status text not null check (status in ('scheduled', 'checked_in', 'in_progress', 'paused', 'cancelled',
    'did_not_attend', 'screened', 'partially_screened', 'attended_not_screened')),
  status_reason text,
  accession_number text not null unique,
  rescheduled_from uuid references appointment,
  booked_at timestamptz not null default now(),
  booked_by uuid references app_user,
  version integer not null default 1
);
create index appointment_participant on appointment (participant_id);
create index appointment_clinic on appointment (clinic_id, slot_index);

-- A slot is held by at most one live appointment: the primary key is the double-booking rule.
create table appointment_slot (
  clinic_id uuid not null references clinic,
  slot_index integer not null,
  appointment_id uuid not null references appointment on delete cascade,
  primary key (clinic_id, slot_index)
);

create table appointment_status_event (
  id bigserial primary key,
  appointment_id uuid not null references appointment,
  status text not null,
  reason text,
  re_invite boolean,
  at timestamptz not null default now(),
  by_user uuid references app_user,
  via text not null default 'hub' check (via in ('hub', 'api', 'gateway', 'seed'))
);
create index appointment_status_event_appointment on appointment_status_event (appointment_id, at);
create trigger appointment_status_event_append_only before update or delete on appointment_status_event
  for each row execute function forbid_change();

create table audit_event (
  id bigserial primary key,
  at timestamptz not null default now(),
  user_id uuid references app_user,
  username text,
  action text not null,
  entity_type text not null,
  entity_id text,
  participant_id uuid references participant,
  ip text,
  detail jsonb not null default '{}'
);
create index audit_event_at on audit_event (at desc);
create index audit_event_participant on audit_event (participant_id, at desc);
create index audit_event_user on audit_event (user_id, at desc);
create trigger audit_event_append_only before update or delete on audit_event
  for each row execute function forbid_change();
create trigger audit_event_no_truncate before truncate on audit_event
  for each statement execute function forbid_change();
