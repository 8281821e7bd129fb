-- 0015 Each vital of a reading classified on its own (monitoring/vital_validity.py, the limits in
-- seeds/vital_sign_limits.csv): a reading lands whole; an artefact is kept as null and named, an
-- extreme value is scored and raises an `extreme` alert (severity critical: verify the patient
-- now) naming the vitals; the processor counts the artefacts it saw.
alter table monitoring.readings
    add column if not exists artefact_vitals text[] not null default '{}',
    add column if not exists extreme_vitals text[] not null default '{}';

alter table monitoring.alerts drop constraint if exists alerts_condition_check;
alter table monitoring.alerts add constraint alerts_condition_check
    check (condition in ('warning', 'critical', 'extreme'));
alter table monitoring.alerts add column if not exists extreme_vitals text[] not null default '{}';

alter table monitoring.processor_status
    add column if not exists artefact_values bigint not null default 0;

-- a replay rewrites what a raised alert says (write_alert_changes); clinical operations read it
grant update (extreme_vitals) on monitoring.alerts to monitor;
grant select (extreme_vitals) on monitoring.alerts to clinical_ops;
