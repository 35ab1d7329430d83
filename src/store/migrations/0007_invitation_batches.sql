-- Sending invitation batches (issue 5, item 3): a batch drawn by GP practice, outcode or month of birth is sent;
-- each selected woman is offered an appointment at a suitable clinic (or listed with the reason there is none)
-- and gets a letter in her format with a code for the self-booking pages.

create table invitation_batch (
  id uuid primary key default gen_random_uuid(),
  bso_code text not null references screening_office,
  criterion_kind text not null check (criterion_kind in ('gp_practice', 'outcode', 'birth_month')),
  -- The ODS code, the outcode, or the month number.
  criterion_value text not null check (length(criterion_value) between 1 and 10),
  -- Appointments are offered at clinics from the batch date to the horizon.
  batch_date date not null,
  horizon_date date not null check (horizon_date >= batch_date),
  -- The confirm form's one-off key: the same form sent twice finds this batch rather than making another.
  request_key text not null unique check (length(request_key) between 16 and 100),
  created_by uuid references app_user,
  created_by_name text not null,
  created_at timestamptz not null default now(),
  sent_at timestamptz,
  offered_count integer not null default 0 check (offered_count >= 0),
  no_clinic_count integer not null default 0 check (no_clinic_count >= 0),
  excluded_count integer not null default 0 check (excluded_count >= 0),
  letters_issued_at timestamptz
);
create index invitation_batch_created on invitation_batch (created_at desc);

-- One woman in one sent batch: her offer, or why there is none. Sending a batch again skips who it already has.
create table invitation (
  id uuid primary key default gen_random_uuid(),
  batch_id uuid not null references invitation_batch,
  participant_id uuid not null references participant,
  episode_id uuid references episode,
  episode_type char(1) check (episode_type in ('C', 'R')),
  -- offered: booked and letter due; confirmed: she kept or chose an offered time online; cancelled: she cancelled
  -- online; contact_requested: she asked the office to contact her; no_suitable_clinic: not booked (see reason).
  status text not null check (status in ('offered', 'confirmed', 'cancelled', 'contact_requested', 'no_suitable_clinic')),
  appointment_id uuid references appointment,
  no_clinic_reason text,
  letter_format text not null
    check (letter_format in ('standard', 'large_print', 'braille', 'easy_read', 'audio', 'translated')),
  letter_language text,
  interpreter boolean not null default false,
  -- The self-booking code, only as a salted scrypt hash; the code itself is printed on the letter and not kept.
  code_hash text,
  code_issued_at timestamptz,
  failed_attempts integer not null default 0 check (failed_attempts >= 0),
  locked_until timestamptz,
  contact_note text check (length(contact_note) <= 1000),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  unique (batch_id, participant_id),
  check ((status = 'no_suitable_clinic') = (no_clinic_reason is not null)),
  check ((status = 'no_suitable_clinic') = (appointment_id is null))
);
create index invitation_participant on invitation (participant_id, created_at desc);
create index invitation_appointment on invitation (appointment_id) where appointment_id is not null;
