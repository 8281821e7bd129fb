-- 0018 Whether a reading could calm its patient (monitoring/alert_rules.py, is_behind): one older
-- than the patient's newest reading from another device (a delayed backlog) may raise an alert
-- or restart a hold, never resolve an alert, start a hold or end a spell. Kept so that a restart
-- or a replay rebuilds the same state, in the order the readings were scored.
alter table monitoring.readings add column if not exists settles boolean not null default true;
