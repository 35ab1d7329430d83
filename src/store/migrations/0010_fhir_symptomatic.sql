-- The symptomatic link's FHIR R4 endpoint (issue 5, item 5; docs/fhir-symptomatic-link.md): a Trust EPR posts
-- Condition, Procedure and Encounter resources (or a Bundle of them) with the token of an EPR feed account.

-- A role for the feed's system account: it may post to the symptomatic link and do nothing else (no reading of
-- records, no pages). The role list is the one 0001 made, plus epr_feed.
alter table app_user drop constraint app_user_role_check;
alter table app_user add constraint app_user_role_check
  check (role in ('admin', 'mammographer', 'film_reader', 'programme_manager', 'support', 'epr_feed'));

-- Every resource received (one row per resource; a Bundle's entries share request_id), with the answer it got.
-- The resource itself is not kept (the Trust's EPR keeps it): its SHA-256 and size are.
create table fhir_symptomatic_message (
  id bigserial primary key,
  received_at timestamptz not null default now(),
  request_id uuid not null,
  -- Position in the Bundle; null for a resource posted on its own or a request that could not be read.
  entry_index integer check (entry_index >= 0),
  peer text,
  username text,
  resource_type text,
  -- What a resource is applied once under: "Condition/<id>", the Bundle entry's fullUrl, or "Idempotency-Key:<key>".
  resource_key text,
  -- meta.versionId ('' when the resource has none).
  version_id text,
  -- meta.lastUpdated: versions are put in order by it.
  last_updated timestamptz,
  sha256 text not null check (sha256 ~ '^[0-9a-f]{64}$'),
  size_bytes integer not null check (size_bytes >= 0),
  http_status integer not null check (http_status between 200 and 599),
  -- applied: it changed the record; no_action: nothing in it for screening; review: withdrawn (entered in error,
  -- refuted) after it suspended her, reported for staff; duplicate: a copy of a version already accepted;
  -- superseded: older than a version already accepted; rejected: malformed (400); unprocessable: well-formed but
  -- unusable (422), nothing applied; error: the hub failed, nothing applied.
  outcome text not null check (outcome in ('applied', 'no_action', 'review', 'duplicate', 'superseded', 'rejected',
                                           'unprocessable', 'error')),
  reason text not null default '',
  participant_id uuid references participant,
  suspension_id uuid references invitation_suspension,
  check (outcome not in ('applied', 'no_action', 'review') or (resource_key is not null and http_status < 300))
);
-- A resource version is accepted once; refused attempts may be sent again.
create unique index fhir_symptomatic_accepted on fhir_symptomatic_message (resource_key, version_id)
  where outcome in ('applied', 'no_action', 'review');
create index fhir_symptomatic_resource on fhir_symptomatic_message (resource_key, last_updated desc)
  where outcome in ('applied', 'no_action', 'review');
create index fhir_symptomatic_received on fhir_symptomatic_message (received_at desc);
create index fhir_symptomatic_suspension on fhir_symptomatic_message (suspension_id) where suspension_id is not null;
create trigger fhir_symptomatic_message_append_only before update or delete on fhir_symptomatic_message
  for each row execute function forbid_change();
