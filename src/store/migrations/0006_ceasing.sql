-- Ceasing women from screening and reinstating them (issue 5, item 2), and the facts very high risk (VHR)
-- surveillance needs. participant.ceased_reason / ceased_on stay the ceasing in force (the cohort import and
-- invitation batches read them); this history says who ceased and reinstated her, when, why and on what evidence.

-- Very high risk surveillance: her protocol's risk group (pathway/eligibility.ts VHR_RISK_GROUPS), the day she joined
-- surveillance, and for the radiotherapy groups the day of her first radiotherapy to breast tissue. All optional:
-- records from before (and the cohort feed) have only very_high_risk.
alter table participant
  add column vhr_risk_group text check (vhr_risk_group in (
    'brca_palb2', 'other_high_risk_gene', 'untested_equivalent', 'tp53', 'atm_biallelic',
    'radiotherapy_aged_10_to_19', 'radiotherapy_aged_20_to_35')),
  add column vhr_since date,
  add column vhr_radiotherapy_on date;

-- Every ceasing and reinstatement recorded in the hub. Append-only: a reinstatement is a new row naming the ceasing
-- it ends, never a change to it.
create table ceasing_event (
  id uuid primary key default gen_random_uuid(),
  participant_id uuid not null references participant,
  kind text not null check (kind in ('cease', 'reinstate')),
  -- The ceasing's reason (pathway/ceasing.ts CEASING_REASONS). For a reinstatement, the reason of the ceasing it
  -- ends, which for one from an older system (through the cohort feed) is that system's text.
  ceasing_reason text not null check (length(ceasing_reason) between 1 and 200),
  -- The day she was ceased (for a reinstatement, the day of the ceasing it ends).
  ceased_on date not null,
  -- A ceasing: what is on record for the rule's evidence (a letter's reference, who confirmed it).
  evidence text check (length(evidence) <= 2000),
  -- A reinstatement: the ceasing it ends (null for a ceasing from before the hub, which has no row here), the day,
  -- who decided (her, her attorney, a clinician) and why.
  reinstates_id uuid references ceasing_event,
  reinstated_on date,
  decided_by text check (length(decided_by) <= 500),
  reinstatement_reason text check (length(reinstatement_reason) <= 2000),
  recorded_at timestamptz not null default now(),
  recorded_by uuid references app_user,
  recorded_by_name text not null,
  check (kind = 'reinstate' or ceasing_reason in (
    'informed_choice', 'bilateral_mastectomy', 'best_interests', 'lasting_power_of_attorney',
    'very_high_risk_withdrawal')),
  check ((kind = 'cease') = (evidence is not null and length(trim(evidence)) > 0)),
  check (kind = 'reinstate' or (reinstates_id is null and reinstated_on is null and decided_by is null
    and reinstatement_reason is null)),
  check (kind = 'cease' or (reinstated_on >= ceased_on and length(trim(decided_by)) > 0
    and length(trim(reinstatement_reason)) > 0))
);
-- A ceasing is ended once.
create unique index ceasing_event_reinstates on ceasing_event (reinstates_id) where reinstates_id is not null;
create index ceasing_event_participant on ceasing_event (participant_id, recorded_at);
create trigger ceasing_event_append_only before update or delete on ceasing_event
  for each row execute function forbid_change();
