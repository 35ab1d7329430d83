-- Liveness by round trip and manual images mode (issue 8, ADR 0011).

-- Per gateway: the last ping the hub sent on its push stream that came back answered (POST /gateway/v1/heartbeat),
-- how long that took, the stream it went on, and the small status report that came with it. One row a gateway, overwritten: a health
-- reading, not a record; the support page shows the latest.
create table gateway_health (
  gateway_id uuid primary key references gateway,
  last_round_trip_at timestamptz,
  last_round_trip_ms integer check (last_round_trip_ms >= 0),
  -- Which push stream that ping went on: a stream whose own pings stop being answered is closed, even while the
  -- gateway answers on a newer one (the old one is a dead link the hub has not noticed yet).
  last_ping_stream text,
  report jsonb,
  reported_at timestamptz
);

-- How a site (a mobile unit or static site) takes its images, as an append-only history: the latest row is the
-- mode now. A site with no row is in normal mode. Who switched, when and why stays for good.
create table site_image_mode (
  id uuid primary key default gen_random_uuid(),
  seq bigint generated always as identity unique,
  site_id text not null references site,
  mode text not null check (mode in ('normal', 'manual_images')),
  reason text not null check (length(btrim(reason)) > 0),
  changed_at timestamptz not null default now(),
  changed_by uuid references app_user,
  changed_by_name text not null
);
create index site_image_mode_site on site_image_mode (site_id, seq desc);
create trigger site_image_mode_append_only before update or delete on site_image_mode
  for each row execute function forbid_change();

-- An appointment screened at a site while it was in manual images mode: her images were kept on the machine, to
-- be sent later. The failsafe for screened women with no images says so rather than calling them lost, and keeps
-- listing her until the images arrive (appointment.images_available_at). Append-only: switching back keeps it.
create table appointment_images_held (
  appointment_id uuid primary key references appointment,
  site_id text not null references site,
  site_image_mode_id uuid not null references site_image_mode,
  marked_at timestamptz not null default now()
);
create trigger appointment_images_held_append_only before update or delete on appointment_images_held
  for each row execute function forbid_change();

-- Marked where every status change is recorded, so screening recorded at the hub, through the API or by the
-- gateway (check-in, MPPS) is caught alike. The mode is the site's when the hub records the screening.
create function mark_images_held() returns trigger language plpgsql as $$
declare
  held record;
begin
  if new.status not in ('screened', 'partially_screened') then
    return null;
  end if;
  select m.id, m.site_id, m.mode into held
    from appointment a
    join clinic c on c.id = a.clinic_id
    join lateral (select * from site_image_mode s where s.site_id = c.site_id order by s.seq desc limit 1) m on true
    where a.id = new.appointment_id;
  if found and held.mode = 'manual_images' then
    insert into appointment_images_held (appointment_id, site_id, site_image_mode_id)
      values (new.appointment_id, held.site_id, held.id)
      on conflict (appointment_id) do nothing;
  end if;
  return null;
end $$;
create trigger appointment_status_event_images_held after insert on appointment_status_event
  for each row execute function mark_images_held();
