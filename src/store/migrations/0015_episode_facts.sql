-- KC62's per-episode facts, kept up to date as the records change (issue 7, ADR 0010): the return for one office
-- or the whole country is then a grouped read of one narrow table, not a join of six large ones each time.
--
-- episode_fact_source says what each fact is (the rules that use them are in src/pathway/kc62.ts):
-- - rel: the relevant date. Referrals (S, G): the screening date. Others: the first screening appointment's clinic
--   date, else the day the episode opened.
-- - age: her age at the relevant date (PostgreSQL age(): a 29 February birthday is reached on 1 March).
-- - prev_screened_on: her latest screen before the relevant date in any other episode.
-- - screened, referred (an exam result of recall to assessment), needle and open biopsy, whether a B5 needle biopsy
--   came before any open biopsy, and the current assessment outcome (size, early recall).
create view episode_fact_source as
select e.id as episode_id, e.bso_code, e.participant_id, e.episode_type, e.opened_on, x.rel,
  date_part('year', age(x.rel, p.date_of_birth))::int as age,
  prev.prev_on as prev_screened_on,
  e.screened_on is not null as screened,
  coalesce(r.referred, false) as referred,
  coalesce(pr.needle, false) as needle,
  coalesce(pr.open, false) as open,
  o.outcome,
  o.size_mm::float8 as size_mm,
  coalesce(o.early_recall_months is not null, false) as early_recall,
  coalesce(pr.b5_on is not null and (pr.open_on is null or pr.b5_on <= pr.open_on), false) as b5_first
from episode e
join participant p on p.id = e.participant_id
left join lateral (
  select min(c.clinic_date) as first_on
  from appointment a join clinic c on c.id = a.clinic_id
  where a.episode_id = e.id and c.purpose = 'screening'
) offered on true
cross join lateral (
  select case when e.episode_type in ('S', 'G') then e.screened_on else coalesce(offered.first_on, e.opened_on) end as rel
) x
left join lateral (
  select max(y.screened_on) as prev_on from episode y
  where y.participant_id = e.participant_id and y.screened_on < x.rel and y.id <> e.id
) prev on true
left join lateral (
  select bool_or(er.result = 'recall_assessment') as referred from exam_result er where er.episode_id = e.id
) r on true
left join lateral (
  select bool_or(ap.procedure in ('core_biopsy', 'vacuum_biopsy')) as needle,
    bool_or(ap.procedure = 'open_biopsy') as open,
    min(ap.performed_on) filter (where ap.procedure in ('core_biopsy', 'vacuum_biopsy') and ap.b_code like 'B5%') as b5_on,
    min(ap.performed_on) filter (where ap.procedure = 'open_biopsy') as open_on
  from assessment_procedure ap where ap.episode_id = e.id
) pr on true
left join assessment_outcome o on o.episode_id = e.id and o.superseded_at is null;

create table episode_fact (
  episode_id uuid primary key references episode on delete cascade,
  bso_code text not null,
  participant_id uuid not null,
  episode_type char(1) not null,
  opened_on date not null,
  rel date,
  age integer,
  prev_screened_on date,
  screened boolean not null,
  referred boolean not null,
  needle boolean not null,
  open boolean not null,
  outcome text,
  size_mm float8,
  early_recall boolean not null,
  b5_first boolean not null
);
-- Covering: one office's year is read from the index alone (its episodes are spread over the whole table).
create index episode_fact_office_rel on episode_fact (bso_code, rel)
  include (episode_type, opened_on, age, prev_screened_on, screened, referred, needle, open, outcome, size_mm,
    early_recall, b5_first);
create index episode_fact_rel on episode_fact (rel);
-- KC63 coverage and uptake look for one office's women of an age.
create index participant_office_dob on participant (bso_code, date_of_birth) include (id, date_of_death, ceased_on);

create function refresh_episode_facts(ids uuid[]) returns void language sql as $$
  delete from episode_fact where episode_id = any(ids);
  insert into episode_fact select * from episode_fact_source where episode_id = any(ids);
$$;

-- What to refresh when a table changes: its rows' episodes; for an episode, every episode of the same woman (her
-- previous screen is another episode's screening date); for a participant, her episodes (age); for a clinic, the
-- episodes booked into it (relevant date). One statement's rows are refreshed together.
create function episode_facts_changed() returns trigger language plpgsql as $$
declare
  ids uuid[];
begin
  if TG_TABLE_NAME = 'episode' then
    select array_agg(distinct y.id) into ids from episode y
      where y.participant_id in (select participant_id from changed_rows);
  elsif TG_TABLE_NAME = 'participant' then
    select array_agg(y.id) into ids from episode y where y.participant_id in (select id from changed_rows);
  elsif TG_TABLE_NAME = 'clinic' then
    select array_agg(distinct a.episode_id) into ids from appointment a
      where a.clinic_id in (select id from changed_rows) and a.episode_id is not null;
  else
    select array_agg(distinct episode_id) into ids from changed_rows where episode_id is not null;
  end if;
  if ids is not null then
    perform refresh_episode_facts(ids);
  end if;
  return null;
end $$;

-- A trigger with transition tables has one event: inserts and updates are followed through their new rows, deletes
-- through the old (a deleted episode's facts go with it, by the foreign key).
create trigger episode_facts_insert after insert on episode
  referencing new table as changed_rows for each statement execute function episode_facts_changed();
create trigger episode_facts_update after update on episode
  referencing new table as changed_rows for each statement execute function episode_facts_changed();
create trigger episode_facts_delete after delete on episode
  referencing old table as changed_rows for each statement execute function episode_facts_changed();
create trigger episode_facts_participant after update on participant
  referencing new table as changed_rows for each statement execute function episode_facts_changed();
create trigger episode_facts_clinic after update on clinic
  referencing new table as changed_rows for each statement execute function episode_facts_changed();
create trigger episode_facts_appointment_insert after insert on appointment
  referencing new table as changed_rows for each statement execute function episode_facts_changed();
create trigger episode_facts_appointment_update after update on appointment
  referencing new table as changed_rows for each statement execute function episode_facts_changed();
create trigger episode_facts_appointment_delete after delete on appointment
  referencing old table as changed_rows for each statement execute function episode_facts_changed();
create trigger episode_facts_result_insert after insert on exam_result
  referencing new table as changed_rows for each statement execute function episode_facts_changed();
create trigger episode_facts_result_update after update on exam_result
  referencing new table as changed_rows for each statement execute function episode_facts_changed();
create trigger episode_facts_result_delete after delete on exam_result
  referencing old table as changed_rows for each statement execute function episode_facts_changed();
create trigger episode_facts_procedure_insert after insert on assessment_procedure
  referencing new table as changed_rows for each statement execute function episode_facts_changed();
create trigger episode_facts_procedure_update after update on assessment_procedure
  referencing new table as changed_rows for each statement execute function episode_facts_changed();
create trigger episode_facts_procedure_delete after delete on assessment_procedure
  referencing old table as changed_rows for each statement execute function episode_facts_changed();
create trigger episode_facts_outcome_insert after insert on assessment_outcome
  referencing new table as changed_rows for each statement execute function episode_facts_changed();
create trigger episode_facts_outcome_update after update on assessment_outcome
  referencing new table as changed_rows for each statement execute function episode_facts_changed();
create trigger episode_facts_outcome_delete after delete on assessment_outcome
  referencing old table as changed_rows for each statement execute function episode_facts_changed();

insert into episode_fact select * from episode_fact_source;
