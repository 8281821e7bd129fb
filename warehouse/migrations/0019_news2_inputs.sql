-- 0019 NEWS2 with what the hospital knows (monitoring/news2_inputs.py): consciousness (ACVPU),
-- supplemental oxygen and the SpO2 scale from the device payload when it sends them, else from
-- the patient's setting below, else assumed (alert, air, scale 1); every reading and alert says
-- which were assumed. NEWS2 is not validated under 16 nor in pregnancy: such a patient's alerts
-- stay, labelled so.

-- Clinical operations' settings per patient (hcw news2 set), kept as a history: each row changes
-- the fields it holds (null: unchanged) from `valid_from`, never before it was recorded, so a
-- replay of the same readings scores them with the same settings the live run had.
create table if not exists monitoring.news2_settings (
    setting_key bigint generated always as identity primary key,
    patient_id text not null,            -- as dbt reads it: trimmed, upper case
    on_oxygen boolean,
    spo2_scale smallint check (spo2_scale in (1, 2)),
    pregnant boolean,
    under_16 boolean,
    valid_from timestamptz not null default now(),
    recorded_at timestamptz not null default now(),
    recorded_by text not null check (btrim(recorded_by) <> ''),
    reason text,
    constraint held_from_when_recorded check (valid_from >= recorded_at),
    constraint sets_something check (num_nonnulls(on_oxygen, spo2_scale, pregnant, under_16) > 0),
    constraint patient_id_as_dbt_reads_it check (patient_id = upper(btrim(patient_id)))
);
create index if not exists news2_settings_patient on monitoring.news2_settings (patient_id, valid_from);

alter table monitoring.readings
    add column if not exists consciousness text check (consciousness in ('A', 'C', 'V', 'P', 'U')),
    add column if not exists on_oxygen boolean,
    add column if not exists spo2_scale smallint,
    -- the inputs neither the device nor a setting gave: scored as alert, air, scale 1
    add column if not exists news2_assumed text[] not null default '{}',
    -- 'under 16' or 'pregnant': NEWS2 is not validated for this patient
    add column if not exists news2_not_validated text;

-- what the raising reading's score rested on: each input's value and where it came from
alter table monitoring.alerts
    add column if not exists news2_inputs jsonb not null default '{}',
    add column if not exists news2_not_validated text;

-- the processor reads the settings; clinical operations record them (recorded_at is always now)
-- and read them back; nobody rewrites one: a change is a new row
grant select on monitoring.news2_settings to monitor;
revoke insert, update, delete on monitoring.news2_settings from monitor;
grant select on monitoring.news2_settings to clinical_ops;
grant insert (patient_id, on_oxygen, spo2_scale, pregnant, under_16, valid_from, recorded_by,
    reason) on monitoring.news2_settings to clinical_ops;
grant update (news2_inputs, news2_not_validated) on monitoring.alerts to monitor;
grant select (news2_inputs, news2_not_validated) on monitoring.alerts to clinical_ops;
