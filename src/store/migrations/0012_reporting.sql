-- Reporting (issue 7): deprivation by postcode, and interventions offices track (e.g. text reminders at a practice).

-- Postcode → LSOA (ONS National Statistics Postcode Lookup) and LSOA → IMD decile (MHCLG English Indices of
-- Deprivation). The demo area's rows ship with the hub; docs/imd-lookup.md says how to load the full files.
create table postcode_lsoa (
  postcode_key text primary key check (postcode_key ~ '^[A-Z0-9]{5,7}$'),
  lsoa_code text not null check (lsoa_code ~ '^E0[0-9]{7}$')
);
create index postcode_lsoa_lsoa on postcode_lsoa (lsoa_code);

create table lsoa_imd (
  lsoa_code text primary key check (lsoa_code ~ '^E0[0-9]{7}$'),
  -- 1 = most deprived 10 % of LSOAs in England .. 10 = least deprived.
  imd_decile smallint not null check (imd_decile between 1 and 10),
  imd_quintile smallint generated always as ((imd_decile + 1) / 2) stored,
  source text not null default 'English Indices of Deprivation 2019'
);

-- A change an office made, to see uptake before and after against comparable practices.
create table intervention (
  id uuid primary key default gen_random_uuid(),
  bso_code text not null references screening_office,
  gp_practice_code text references gp_practice,
  label text not null check (length(label) between 1 and 200),
  description text not null default '' check (length(description) <= 2000),
  starts_on date not null,
  ends_on date check (ends_on is null or ends_on >= starts_on),
  created_by uuid references app_user,
  created_at timestamptz not null default now()
);
create index intervention_office on intervention (bso_code, starts_on desc);

-- Reports read episodes by office and date, and an episode's appointments (KC62: ≈ 250,000 women in one office).
create index episode_office_opened on episode (bso_code, opened_on);
create index appointment_episode on appointment (episode_id);
