-- Movers (issue 5, item 4): a woman whose GP practice moves to another screening office's area moves with it. The
-- national record (one participant row a NHS number) is not copied: participant.bso_code changes, her open episode
-- may move with her (src/pathway/movers.ts), and each move is kept here, append-only, for both offices to see.

create table participant_move (
  id uuid primary key default gen_random_uuid(),
  -- the order moves were recorded in (several in one transaction share its timestamp)
  seq bigint generated always as identity unique,
  participant_id uuid not null references participant,
  from_bso_code text not null references screening_office,
  to_bso_code text not null references screening_office,
  effective_date date not null,
  source text not null check (source in ('bs_select', 'staff')),
  gp_practice_from text references gp_practice,
  gp_practice_to text not null references gp_practice,
  -- her open episode at the move, if the old office held one: moved to the new office, or left to be finished
  episode_id uuid references episode,
  episode_outcome text check (episode_outcome in ('moved', 'stays_to_finish')),
  -- appointments still booked at the old office's clinics when she moved (ids; they stay valid)
  appointments_at_old_office jsonb not null default '[]',
  recorded_at timestamptz not null default now(),
  recorded_by uuid references app_user,
  check (from_bso_code <> to_bso_code),
  check ((episode_id is null) = (episode_outcome is null)),
  check (jsonb_typeof(appointments_at_old_office) = 'array')
);
create index participant_move_participant on participant_move (participant_id, seq);
create index participant_move_from on participant_move (from_bso_code, seq);
create index participant_move_to on participant_move (to_bso_code, seq);
create trigger participant_move_append_only before update or delete on participant_move
  for each row execute function forbid_change();

-- Each office marks a move seen once: the office she left and the office she joined, with who and when.
create table participant_move_seen (
  move_id uuid not null references participant_move,
  bso_code text not null references screening_office,
  seen_at timestamptz not null default now(),
  seen_by uuid not null references app_user,
  primary key (move_id, bso_code)
);
create trigger participant_move_seen_append_only before update or delete on participant_move_seen
  for each row execute function forbid_change();

-- Only the two offices of the move can mark it seen.
create function participant_move_seen_by_its_offices() returns trigger language plpgsql as $$
begin
  if not exists (select 1 from participant_move m where m.id = new.move_id
                 and new.bso_code in (m.from_bso_code, m.to_bso_code)) then
    raise exception 'office % is not one of the offices of move %', new.bso_code, new.move_id
      using errcode = 'check_violation';
  end if;
  return new;
end $$;
create trigger participant_move_seen_office before insert on participant_move_seen
  for each row execute function participant_move_seen_by_its_offices();
