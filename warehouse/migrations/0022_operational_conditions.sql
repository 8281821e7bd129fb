-- 0022 A landed vitals file whose scoring fails for a reason of its own (its content breaks the
-- scoring: not the warehouse's nor the disk's) no longer stops the processor and every later
-- file behind it: it is put by and tried again with a backoff while the next files are scored,
-- and the condition `files_unscorable` (monitoring/operational.py) raises an operational alert
-- naming the file and the error's type and place in the code, until it is scored. Scored at
-- last, its readings may be older than their devices' newest by then; nobody saw them, so they
-- may raise an alert (never calm one): the checkpoint says so (held_back), and a replay scores
-- them the same way. And a vitals
-- reading held at landing because its time could not be read or placed (a local time of the
-- autumn's repeated hour that its device's order did not settle) raises `times_unsettled` by
-- default from the first one, not only past the quarantined readings' limit.
alter table monitoring.operational_alerts drop constraint if exists operational_alerts_condition_check;
alter table monitoring.operational_alerts add constraint operational_alerts_condition_check
    check (condition in ('files_set_aside', 'readings_quarantined', 'clock_ahead',
        'notifications_unsent', 'landing_failing', 'scoring_failing', 'files_unscorable',
        'times_unsettled'));

alter table monitoring.processed_files
    add column if not exists held_back boolean not null default false;
