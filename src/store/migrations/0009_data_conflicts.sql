-- Data conflicts of every kind (issue 5, item 6; docs/data-precedence.md): besides a trailer's change that crossed
-- a newer one at the hub ('trailer'), a detail where a feed row disagrees with what the record holds from another
-- source ('field': the detail is 'address', 'family_name', ...) and sources disagreeing about a record item such as
-- breast implants ('record_item'). Each keeps both sides with where they came from; staff decide.

alter table data_conflict
  add column kind text not null default 'trailer' check (kind in ('trailer', 'field', 'record_item')),
  -- The participant detail (kind 'field') or record item kind (kind 'record_item') in dispute.
  add column subject text,
  -- The record's value when the conflict was raised, and where it came from (null source: the hub, for 'trailer').
  add column current_value jsonb,
  add column current_source text,
  add column current_on date,
  -- The value that disagrees, from which source, known on which date. A newer one replaces it while it is open.
  add column incoming_value jsonb,
  add column incoming_source text,
  add column incoming_on date,
  -- What the precedence rules say about it, for the person deciding.
  add column precedence text not null default '',
  add column resolution_reason text,
  add column updated_at timestamptz not null default now();

-- Trailer conflicts keep their gateway change and their trailer/hub pair; the others have neither.
alter table data_conflict alter column gateway_change_id drop not null;
alter table data_conflict alter column trailer drop not null;
alter table data_conflict alter column hub drop not null;
update data_conflict set current_value = hub, incoming_value = trailer, incoming_source = 'gateway',
  incoming_on = (select (g.made_at at time zone 'Europe/London')::date from gateway_change g where g.id = gateway_change_id);
alter table data_conflict add constraint data_conflict_kind_shape check (
  case kind
    when 'trailer' then gateway_change_id is not null and trailer is not null and hub is not null
    else gateway_change_id is null and subject is not null and current_value is not null
      and incoming_value is not null and incoming_source is not null and incoming_on is not null
  end);

-- Resolutions that fit every kind: the record's value kept, or the incoming one applied (for a trailer conflict
-- the hub's record is the current one and the trailer's the incoming one).
alter table data_conflict drop constraint data_conflict_resolution_check;
update data_conflict set resolution = case resolution when 'kept_hub' then 'kept_current' else 'applied_incoming' end
  where resolution is not null;
alter table data_conflict add constraint data_conflict_resolution_check
  check (resolution in ('kept_current', 'applied_incoming'));

-- One open conflict per participant and detail (or item kind): a newer disagreeing value updates it.
create unique index data_conflict_open_subject on data_conflict (participant_id, kind, subject)
  where status = 'open' and kind <> 'trailer';
create index data_conflict_participant_open on data_conflict (participant_id) where status = 'open';
