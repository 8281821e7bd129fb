-- 0016 Lateness and the anomaly window are each device's own (monitoring/alert_rules.py,
-- monitoring/windows.py): a device whose clock runs ahead no longer makes another device's
-- readings of the same patient late. Readings scored before this have no device (null): a
-- patient's next reading from any device is then judged against that device's own readings only.
alter table monitoring.readings add column if not exists device_id text;
-- a restart finds each patient's devices and each one's newest reading through it
create index if not exists readings_patient_device_time
    on monitoring.readings (patient_key, device_id, measured_at);
