-- Synthetic test participant probes (issue 8): a probe sends a test appointment through one unit's real pipeline
-- (worklist push, the gateway's DICOM services, MPPS, image transfer, the PACS) and records each step's timing.
-- Probes live in their own tables: no participant, episode or appointment row is ever made for one, so reports,
-- KC62, uptake, failsafes, reading and other units' worklists (which all start from those tables) cannot see them.

create sequence probe_accession_seq;

create table probe (
  id uuid primary key default gen_random_uuid(),
  site_id text not null references site,
  -- 'manual': sent by support staff (hub page or CLI); 'pre_clinic': asked for by the gateway before a clinic day.
  kind text not null check (kind in ('manual', 'pre_clinic')),
  probe_date date not null,
  -- ZZPROBE + 9 digits: real accession numbers are SH + 8 digits, and appointments may not use the prefix (below).
  accession_number text not null unique check (accession_number ~ '^ZZPROBE[0-9]{9}$'),
  status text not null default 'running' check (status in ('running', 'passed', 'failed')),
  failed_step text,
  message text not null default '',
  requested_by text not null,
  created_at timestamptz not null default now(),
  finished_at timestamptz,
  check ((status = 'running') = (finished_at is null))
);
-- One pre-clinic probe per unit per day: a gateway that restarts, or asks twice, gets the same one.
create unique index probe_pre_clinic_once on probe (site_id, probe_date) where kind = 'pre_clinic';
create index probe_recent on probe (created_at desc);
create index probe_running on probe (site_id) where status = 'running';

-- Each step of a probe, once: when the hub recorded it and how long it took (the gateway measures its own DICOM
-- operations; other steps are timed from the step before, on the hub's clock).
create table probe_step (
  probe_id uuid not null references probe on delete cascade,
  step text not null,
  ok boolean not null,
  duration_ms integer not null check (duration_ms >= 0),
  message text not null default '',
  at timestamptz not null default now(),
  primary key (probe_id, step)
);

-- A running probe is on its unit's gateway worklist: starting and finishing one is a worklist change, pushed to the
-- unit's gateways like an appointment's.
create function notify_probe_change() returns trigger language plpgsql as $$
begin
  perform pg_notify('worklist_change', json_build_object('site', new.site_id)::text);
  return null;
end $$;
create trigger probe_notify after insert or update of status on probe
  for each row execute function notify_probe_change();

-- The probe's identifiers can never be a real person's or a real exam's.
alter table appointment add constraint appointment_accession_not_probe check (accession_number not like 'ZZPROBE%');
alter table participant add constraint participant_not_probe check (nhs_number <> '9999999999');
