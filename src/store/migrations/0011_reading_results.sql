-- Reading, results, assessment, communications and failsafes (issue 6).
-- An exam is an appointment whose images reached the PACS (appointment.images_available_at). Each exam is read
-- twice, blind, and arbitrated when the reads disagree; its result books what comes next and queues a letter to
-- her and a FHIR message to her GP. Assessment is recorded on the episode.

-- Clinics are for screening, or for assessment (at a static site, run by the assessment team).
alter table clinic add column purpose text not null default 'screening' check (purpose in ('screening', 'assessment'));

-- Whether the reader has her previous screening images to compare with.
alter table episode add column prior_images text
  check (prior_images in ('not_requested', 'requested', 'received', 'not_available', 'not_needed'));

-- The office's phone number, for "who to call" in letters.
alter table screening_office add column phone text check (phone ~ '^[0-9][0-9 ]{8,14}$');

-- The GP practice's MESH mailbox: results reach it electronically.
alter table gp_practice add column mesh_mailbox text check (mesh_mailbox ~ '^[A-Z0-9]{6,20}$');

-- One opinion on one exam: read 1 and 2 are blind to each other, read 3 is arbitration. Opinions are never changed
-- or removed (a reader who got one wrong asks for arbitration); a reader never reads the same exam twice.
create table reading_opinion (
  id uuid primary key default gen_random_uuid(),
  appointment_id uuid not null references appointment,
  episode_id uuid not null references episode,
  read_number smallint not null check (read_number in (1, 2, 3)),
  reader_id uuid not null references app_user,
  opinion text not null check (opinion in ('normal', 'technical_recall', 'recall_assessment')),
  -- technical_recall: {"views": ["RCC", ...], "reason": "positioning"}; recall_assessment: {"findings": [{"side":
  -- "left", "lesion": "mass_ill_defined", "location": "upper outer quadrant", "concern": 4}, ...]}
  details jsonb not null default '{}',
  comment text not null default '' check (length(comment) <= 2000),
  read_at timestamptz not null default now(),
  unique (appointment_id, read_number),
  unique (appointment_id, reader_id)
);
create index reading_opinion_reader on reading_opinion (reader_id, read_at desc);
create index reading_opinion_episode on reading_opinion (episode_id);
create trigger reading_opinion_append_only before update or delete on reading_opinion
  for each row execute function forbid_change();

-- A reader set an exam aside (for priors, a colleague's view); it stays on everyone else's list.
create table reading_deferral (
  id bigserial primary key,
  appointment_id uuid not null references appointment,
  reader_id uuid not null references app_user,
  reason text not null check (length(reason) between 1 and 500),
  deferred_at timestamptz not null default now(),
  resolved_at timestamptz
);
create index reading_deferral_open on reading_deferral (appointment_id) where resolved_at is null;

-- The result of one exam, issued once: routine recall (next test due), technical recall (a new screening
-- appointment in the same episode) or recall to assessment (an assessment clinic appointment).
create table exam_result (
  appointment_id uuid primary key references appointment,
  episode_id uuid not null references episode,
  result text not null check (result in ('routine_recall', 'technical_recall', 'recall_assessment')),
  next_test_due date,
  follow_up_appointment_id uuid references appointment,
  -- Why no follow-up appointment could be booked (no clinic with room): the failsafe page lists these.
  follow_up_problem text,
  issued_at timestamptz not null default now(),
  issued_by uuid references app_user,
  check ((result = 'routine_recall') = (next_test_due is not null))
);
create index exam_result_episode on exam_result (episode_id);
create index exam_result_issued on exam_result (issued_at desc);

-- Assessment: each procedure done, and the multidisciplinary outcome (one a episode, corrected by replacing it).
create table assessment_procedure (
  id uuid primary key default gen_random_uuid(),
  episode_id uuid not null references episode,
  procedure text not null check (procedure in ('clinical_examination', 'further_mammography', 'ultrasound',
    'core_biopsy', 'vacuum_biopsy', 'open_biopsy')),
  side text check (side in ('left', 'right', 'bilateral')),
  performed_on date not null,
  -- For a biopsy: B1 normal .. B5 malignant (B5a in situ, B5b invasive), when known.
  b_code text check (b_code in ('B1', 'B2', 'B3', 'B4', 'B5a', 'B5b', 'B5c')),
  notes text not null default '' check (length(notes) <= 2000),
  recorded_at timestamptz not null default now(),
  recorded_by uuid references app_user
);
create index assessment_procedure_episode on assessment_procedure (episode_id, performed_on);

create table assessment_outcome (
  id uuid primary key default gen_random_uuid(),
  episode_id uuid not null references episode,
  outcome text not null check (outcome in ('normal', 'benign', 'malignant_invasive', 'malignant_micro_invasive',
    'malignant_non_invasive')),
  side text check (side in ('left', 'right', 'bilateral')),
  -- Invasive size (whole tumour, mm) and grade 1-3, for a malignant outcome when known.
  size_mm numeric(5, 1) check (size_mm > 0 and size_mm < 500),
  grade smallint check (grade between 1 and 3),
  -- Early (short-term) recall instead of routine recall, in months.
  early_recall_months smallint check (early_recall_months in (6, 12, 18, 24)),
  referred_to_treatment boolean not null default false,
  treatment_provider text check (length(treatment_provider) <= 200),
  decided_on date not null,
  recorded_at timestamptz not null default now(),
  recorded_by uuid references app_user,
  replaces_id uuid references assessment_outcome,
  superseded_at timestamptz,
  check (outcome like 'malignant%' or (size_mm is null and grade is null)),
  check (not referred_to_treatment or outcome like 'malignant%')
);
create unique index assessment_outcome_current on assessment_outcome (episode_id) where superseded_at is null;

-- Letters to her and messages to her GP, with format, channel and what became of each.
create table communication (
  id uuid primary key default gen_random_uuid(),
  participant_id uuid not null references participant,
  episode_id uuid references episode,
  appointment_id uuid references appointment,
  recipient text not null check (recipient in ('participant', 'gp')),
  kind text not null check (kind in ('result_normal', 'result_technical_recall', 'result_assessment',
    'assessment_outcome')),
  -- letter: printed (or sent to a transcription/translation service first, see format); mesh: a FHIR message to
  -- the GP practice's mailbox.
  channel text not null check (channel in ('letter', 'mesh')),
  gp_practice_code text references gp_practice,
  format text check (format in ('standard', 'large_print', 'braille', 'easy_read', 'audio', 'translated')),
  language text,
  -- What was rendered (the letter's words, or the FHIR Bundle), so it can be shown again exactly as sent.
  content jsonb,
  content_sha256 text,
  status text not null default 'queued'
    check (status in ('queued', 'sent', 'delivered', 'acknowledged', 'failed')),
  -- MESH: the mailbox's id for the message, attempts, the next retry and the last error.
  mesh_message_id text,
  attempts integer not null default 0 check (attempts >= 0),
  next_attempt_at timestamptz,
  last_error text,
  created_at timestamptz not null default now(),
  sent_at timestamptz,
  delivered_at timestamptz,
  acknowledged_at timestamptz,
  check ((recipient = 'gp') = (channel = 'mesh'))
);
create index communication_participant on communication (participant_id, created_at desc);
create index communication_appointment on communication (appointment_id);
create index communication_pending on communication (channel, status) where status in ('queued', 'sent', 'delivered');
create unique index communication_once on communication (appointment_id, recipient, kind) where appointment_id is not null;

-- What the daily failsafe job found: one row a run and office, for the trend and for proof it ran.
create table failsafe_run (
  id bigserial primary key,
  bso_code text not null references screening_office,
  ran_at timestamptz not null default now(),
  as_of date not null,
  -- {"screened_no_images": {"count": 3, "overdue": 1, "oldestDays": 5}, ...}
  counts jsonb not null
);
create index failsafe_run_office on failsafe_run (bso_code, ran_at desc);
