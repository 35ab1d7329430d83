-- Gateways on mobile units (issue 3, ADR 0006): enrolment with a one-time code, client certificates issued by
-- the hub's own authority, revocation, the changes gateways send back, and the data conflicts those can raise.

-- The hub's gateway certificate authority: one row, made on first start. (Production keeps the key in a KMS/HSM.)
create table gateway_authority (
  id integer primary key check (id = 1),
  certificate_pem text not null,
  private_key_pem text not null,
  created_at timestamptz not null default now()
);

create table gateway (
  id uuid primary key default gen_random_uuid(),
  site_id text not null references site,
  status text not null check (status in ('awaiting_enrolment', 'enrolled', 'revoked')),
  enrolment_code_hash text unique,
  enrolment_expires_at timestamptz,
  certificate_serial text unique,
  certificate_fingerprint text,
  certificate_expires_at timestamptz,
  created_at timestamptz not null default now(),
  created_by uuid references app_user,
  enrolled_at timestamptz,
  revoked_at timestamptz,
  revoked_by uuid references app_user,
  revoked_reason text,
  last_contact_at timestamptz,
  last_contact_ip text,
  check (status <> 'enrolled' or certificate_serial is not null),
  check ((status = 'revoked') = (revoked_at is not null))
);
create index gateway_site on gateway (site_id);

-- Every change a gateway sends, kept once under the id the gateway gave it: a resend gets the first outcome back.
create table gateway_change (
  id uuid primary key,
  gateway_id uuid not null references gateway,
  kind text not null check (kind in ('attendance', 'demographics', 'procedure_step')),
  appointment_id uuid references appointment,
  participant_id uuid references participant,
  made_at timestamptz not null,
  made_by text not null,
  payload jsonb not null,
  received_at timestamptz not null default now(),
  outcome text not null check (outcome in ('applied', 'conflict', 'rejected')),
  message text not null default ''
);
create index gateway_change_gateway on gateway_change (gateway_id, received_at desc);
create trigger gateway_change_append_only before update or delete on gateway_change
  for each row execute function forbid_change();

-- A change from a trailer that disagrees with a newer one made at the hub: neither is dropped; staff decide.
create table data_conflict (
  id uuid primary key default gen_random_uuid(),
  gateway_change_id uuid not null unique references gateway_change,
  participant_id uuid not null references participant,
  appointment_id uuid references appointment,
  summary text not null,
  trailer jsonb not null,
  hub jsonb not null,
  raised_at timestamptz not null default now(),
  status text not null default 'open' check (status in ('open', 'resolved')),
  resolution text check (resolution in ('kept_hub', 'applied_trailer')),
  resolved_by uuid references app_user,
  resolved_at timestamptz,
  version integer not null default 1,
  check ((status = 'resolved') = (resolution is not null))
);
create index data_conflict_open on data_conflict (raised_at) where status = 'open';

-- Tells the hub's gateway push which unit's worklist may have changed (channel worklist_change). Identical
-- payloads in one transaction are delivered once, so a bulk load sends one per site.
create function notify_appointment_change() returns trigger language plpgsql as $$
begin
  perform pg_notify('worklist_change', json_build_object('site', c.site_id)::text)
    from clinic c where c.id = new.clinic_id;
  return null;
end $$;
create trigger appointment_notify after insert or update on appointment
  for each row execute function notify_appointment_change();

-- The participant is the row's own id (participant) or its participant_id column (record_item): the trigger names it.
create function notify_participant_change() returns trigger language plpgsql as $$
begin
  perform pg_notify('worklist_change', json_build_object('participant', to_jsonb(new) ->> tg_argv[0])::text);
  return null;
end $$;
create trigger record_item_notify after insert or update on record_item
  for each row execute function notify_participant_change('participant_id');
create trigger participant_notify after update on participant
  for each row execute function notify_participant_change('id');
