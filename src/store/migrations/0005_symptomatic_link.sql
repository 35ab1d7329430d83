-- The symptomatic link (issue 5, item 5): a Trust EPR tells the hub of breast cancer diagnoses and breast surgery
-- (HL7 v2 over MLLP, docs/hl7-symptomatic-link.md); routine invitations are suspended and the record says why;
-- staff lift a suspension with a reason.

-- A suspension of routine invitations. Nothing is deleted and nothing changes but the lift, once.
create table invitation_suspension (
  id uuid primary key default gen_random_uuid(),
  participant_id uuid not null references participant,
  reason text not null check (length(reason) between 1 and 2000),
  source text not null check (source in ('hl7', 'fhir')),
  -- What suspended her: for HL7 "FACILITY/CONTROL-ID" of the message.
  source_reference text not null,
  -- The date of the event that suspended her (diagnosis, surgery), as the Trust gave it.
  source_event_date date not null,
  started_at timestamptz not null default now(),
  -- The "in symptomatic treatment" item put on her record with the suspension (removed when it is lifted).
  record_item_id uuid references record_item,
  lifted_at timestamptz,
  -- The calendar day the lift takes effect (London): events on or before it do not suspend her again.
  lifted_on date,
  lifted_by uuid references app_user,
  lifted_by_name text,
  lift_reason text,
  check ((lifted_at is null) = (lifted_on is null)),
  check ((lifted_at is null) = (lift_reason is null)),
  check ((lifted_at is null) = (lifted_by_name is null))
);
-- At most one suspension in force per participant.
create unique index invitation_suspension_active on invitation_suspension (participant_id) where lifted_at is null;
create index invitation_suspension_participant on invitation_suspension (participant_id, started_at desc);

create function invitation_suspension_lift_only() returns trigger language plpgsql as $$
begin
  if tg_op <> 'UPDATE' or old.lifted_at is not null
     or (new.id, new.participant_id, new.reason, new.source, new.source_reference, new.source_event_date,
         new.started_at, new.record_item_id)
        is distinct from
        (old.id, old.participant_id, old.reason, old.source, old.source_reference, old.source_event_date,
         old.started_at, old.record_item_id) then
    raise exception 'invitation_suspension only changes by being lifted, once: % is not allowed', tg_op;
  end if;
  return new;
end $$;
create trigger invitation_suspension_lift_once before update or delete on invitation_suspension
  for each row execute function invitation_suspension_lift_only();

-- Every HL7 message received, with the answer it got. The message text is not kept (it holds more personal data
-- than the hub needs; the Trust's engine keeps it): its SHA-256 and size are.
create table hl7_message (
  id bigserial primary key,
  received_at timestamptz not null default now(),
  peer text,
  sending_application text,
  sending_facility text,
  control_id text,
  message_type text,
  event_date date,
  sha256 text not null check (sha256 ~ '^[0-9a-f]{64}$'),
  size_bytes integer not null check (size_bytes >= 0),
  ack_code text not null check (ack_code in ('AA', 'AE', 'AR')),
  -- applied: it changed the record; no_action: nothing in it for screening; duplicate: a copy of one already
  -- accepted (not applied again); error: AE, may be sent again; rejected: AR.
  outcome text not null check (outcome in ('applied', 'no_action', 'duplicate', 'error', 'rejected')),
  reason text not null default '',
  participant_id uuid references participant,
  suspension_id uuid references invitation_suspension,
  check ((ack_code = 'AA') = (outcome in ('applied', 'no_action', 'duplicate'))),
  check ((ack_code = 'AR') = (outcome = 'rejected'))
);
-- A message is accepted once under its sending facility and control id; refused attempts may be sent again.
create unique index hl7_message_accepted on hl7_message (sending_facility, control_id)
  where outcome in ('applied', 'no_action');
create index hl7_message_received on hl7_message (received_at desc);
create index hl7_message_participant on hl7_message (participant_id, received_at desc) where participant_id is not null;
create trigger hl7_message_append_only before update or delete on hl7_message
  for each row execute function forbid_change();
