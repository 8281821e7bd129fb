-- 0017 A baseline for the vitals processor's first start after a restore or an upgrade
-- (monitoring/baseline.py): readings older than its horizon are scored as history, their alerts
-- recorded without a notification or an escalation; newer ones alert as usual.
create table if not exists monitoring.baseline_requests (
    request_id bigint generated always as identity primary key,
    reason text not null check (reason in ('restore', 'upgrade')),
    requested_at timestamptz not null default now(),
    started_at timestamptz,           -- the processor's start that took it
    history_before timestamptz,       -- readings older than this were scored without notifying
    finished_at timestamptz,          -- when the processor had caught up
    readings_as_history bigint not null default 0,
    alerts_without_notification integer not null default 0
);

-- an alert raised by a reading older than a baseline's horizon: recorded, never notified nor
-- escalated (history, not news)
alter table monitoring.alerts add column if not exists raised_in_baseline boolean not null default false;
-- the processor's scoring version: another one at a start is an upgrade (a baseline)
alter table monitoring.processor_status add column if not exists scoring_version text;

grant select, insert, update on monitoring.baseline_requests to monitor;
grant select on monitoring.baseline_requests to clinical_ops, steward;
grant select (raised_in_baseline) on monitoring.alerts to clinical_ops;
