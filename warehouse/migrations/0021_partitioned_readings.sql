-- 0021 Volume: monitoring.readings and monitoring.vitals_minute partitioned by time, one
-- partition per UTC day, so retention drops whole days (monitoring/partitions.py) instead of
-- deleting rows: at 10,000 readings a second that is 864 million rows a day.
--
-- A partition is made when the first row of its day is written: the processor asks
-- monitoring.ensure_partitions, which runs as this migration's owner (the processor may not
-- create or drop tables: least privilege) and can do nothing else. Retention (the processor, once
-- an hour, through monitoring.drop_partitions_before) drops the whole days older than the
-- configured number of days (monitoring.yml, `retention`). Both are bounded here, whatever their
-- caller asks: no drop of a day newer than a week ago (what the processor may delete row by row it
-- may not drop as DDL), no partition more than two days ahead, no lock waited for over 5 s (a long
-- reader of the minute windows makes the processor try again, not stall).
--
-- The tables are rebuilt: their rows are copied into the partitioned ones, day by day.

create or replace function monitoring.ensure_partitions(first_day date, last_day date)
returns integer
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
set lock_timeout = '5s'
as $$
declare
    day date;
    parent text;
    made integer := 0;
begin
    if last_day < first_day or last_day - first_day > 366 then
        raise exception 'ensure_partitions: % to % is no range of at most a year of days',
            first_day, last_day;
    end if;
    if last_day > current_date + 2 then
        raise exception 'ensure_partitions: % is more than two days ahead', last_day;
    end if;
    for day in select generate_series(first_day, last_day, interval '1 day')::date loop
        foreach parent in array array['readings', 'vitals_minute'] loop
            if to_regclass(format('monitoring.%I', parent || '_' || to_char(day, 'YYYYMMDD'))) is null then
                execute format(
                    'create table monitoring.%I partition of monitoring.%I'
                    ' for values from (%L) to (%L)',
                    parent || '_' || to_char(day, 'YYYYMMDD'), parent,
                    (day::timestamp at time zone 'UTC'), ((day + 1)::timestamp at time zone 'UTC')
                );
                made := made + 1;
            end if;
        end loop;
    end loop;
    return made;
end
$$;

create or replace function monitoring.drop_partitions_before(parent text, cutoff date)
returns setof text
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
set lock_timeout = '5s'
as $$
declare
    partition_name text;
begin
    if parent not in ('readings', 'vitals_minute') then
        raise exception 'drop_partitions_before: % is not a partitioned monitoring table', parent;
    end if;
    if cutoff > current_date - 7 then
        raise exception 'drop_partitions_before: % is within the last week: no retention drops it',
            cutoff;
    end if;
    for partition_name in
        select child.relname from pg_inherits
        join pg_class as child on child.oid = pg_inherits.inhrelid
        join pg_class as parent_table on parent_table.oid = pg_inherits.inhparent
        join pg_namespace on pg_namespace.oid = parent_table.relnamespace
        where pg_namespace.nspname = 'monitoring' and parent_table.relname = parent
            and child.relname ~ ('^' || parent || '_\d{8}$')
            and to_date(right(child.relname, 8), 'YYYYMMDD') < cutoff
        order by child.relname
    loop
        execute format('drop table monitoring.%I', partition_name);
        return next partition_name;
    end loop;
end
$$;

revoke all on function monitoring.ensure_partitions(date, date) from public;
revoke all on function monitoring.drop_partitions_before(text, date) from public;
grant execute on function monitoring.ensure_partitions(date, date) to monitor;
grant execute on function monitoring.drop_partitions_before(text, date) to monitor;

-- readings ----------------------------------------------------------------------------------------
alter table monitoring.readings rename to readings_unpartitioned;
alter index monitoring.readings_pkey rename to readings_unpartitioned_pkey;
alter index monitoring.readings_patient_time rename to readings_unpartitioned_patient_time;
alter index monitoring.readings_sequence rename to readings_unpartitioned_sequence;
alter index monitoring.readings_measured_at rename to readings_unpartitioned_measured_at;
alter index monitoring.readings_patient_device_time
    rename to readings_unpartitioned_patient_device_time;

create table monitoring.readings (
    like monitoring.readings_unpartitioned including defaults including constraints
) partition by range (measured_at);
-- a reading's key is its device and time, so one key is one partition: unique across them all
alter table monitoring.readings add primary key (reading_key, measured_at);
create index readings_patient_time on monitoring.readings (patient_key, measured_at);
create index readings_sequence on monitoring.readings (sequence);
create index readings_measured_at on monitoring.readings (measured_at);
create index readings_patient_device_time on monitoring.readings (patient_key, device_id, measured_at);

-- vitals_minute ----------------------------------------------------------------------------------
drop view monitoring.vitals_sliding_5min;
alter table monitoring.vitals_minute rename to vitals_minute_unpartitioned;
alter index monitoring.vitals_minute_pkey rename to vitals_minute_unpartitioned_pkey;
create table monitoring.vitals_minute (
    like monitoring.vitals_minute_unpartitioned including defaults including constraints
) partition by range (window_start);
alter table monitoring.vitals_minute add primary key (patient_key, window_start, vital);

-- Five-minute windows sliding by a minute, made of the tumbling ones: the window ending at
-- window_end (exclusive) covers the five minutes before it.
create view monitoring.vitals_sliding_5min as
select
    patient_key,
    vital,
    window_start + interval '1 minute' as window_end,
    sum(readings) over five_minutes as readings,
    sum(total) over five_minutes / sum(readings) over five_minutes as mean,
    min(minimum) over five_minutes as minimum,
    max(maximum) over five_minutes as maximum
from monitoring.vitals_minute
window five_minutes as (
    partition by patient_key, vital order by window_start
    range between interval '4 minutes' preceding and current row
);

-- the rows, day by day -----------------------------------------------------------------------------
do $$
declare
    day date;
begin
    for day in
        select (measured_at at time zone 'UTC')::date from monitoring.readings_unpartitioned
        union
        select (window_start at time zone 'UTC')::date from monitoring.vitals_minute_unpartitioned
    loop
        perform monitoring.ensure_partitions(day, day);
    end loop;
end
$$;
insert into monitoring.readings select * from monitoring.readings_unpartitioned;
insert into monitoring.vitals_minute select * from monitoring.vitals_minute_unpartitioned;
drop table monitoring.readings_unpartitioned;
drop table monitoring.vitals_minute_unpartitioned;

-- the same grants as the tables had
grant select, insert, update, delete on monitoring.readings to monitor;
grant select, insert, update on monitoring.vitals_minute to monitor;
grant select on monitoring.vitals_minute, monitoring.vitals_sliding_5min to clinical_ops;
grant select on monitoring.vitals_sliding_5min to monitor;
