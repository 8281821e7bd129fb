-- 0020 Nothing stops quietly (monitoring/operational.py): files set aside, vitals readings
-- quarantined, device clocks ahead of the host, notifications unsent and files or checkpoints the
-- processor cannot land or score each have a threshold (monitoring.yml, `operational`); crossing
-- one raises an operational alert to clinical operations (the clinical channel) and fails
-- `vitals_feed`'s check (which emails on-call). It resolves once the measure is back under.
create table if not exists monitoring.operational_alerts (
    operational_alert_key uuid primary key default gen_random_uuid(),
    condition text not null check (condition in ('files_set_aside', 'readings_quarantined',
        'clock_ahead', 'notifications_unsent', 'landing_failing', 'scoring_failing')),
    raised_at timestamptz not null default now(),
    measure double precision not null,      -- what crossed the threshold: a count or seconds
    threshold double precision not null,
    detail text not null,                   -- what to look at; never a patient's identity
    resolved_at timestamptz
);
create unique index if not exists operational_alerts_open
    on monitoring.operational_alerts (condition) where resolved_at is null;

-- an operational alert's notification goes through the same outbox as a clinical one
alter table monitoring.notifications alter column alert_key drop not null;
alter table monitoring.notifications add column if not exists operational_alert_key uuid
    references monitoring.operational_alerts;
alter table monitoring.notifications drop constraint if exists notifications_kind_check;
alter table monitoring.notifications add constraint notifications_kind_check
    check (kind in ('raised', 'escalated', 'operational'));
alter table monitoring.notifications add constraint notifications_one_alert
    check (num_nonnulls(alert_key, operational_alert_key) = 1);

-- per checkpoint: how far ahead of the host's clock (when the file was found) its newest reading
-- was, and the devices whose readings were ahead by more than the threshold
alter table monitoring.processed_files
    add column if not exists clock_ahead_seconds double precision,
    add column if not exists devices_ahead text[] not null default '{}';

grant select, insert, update on monitoring.operational_alerts to monitor;
grant select on monitoring.operational_alerts to clinical_ops, steward;
