-- 0022 The partition functions the processor's role may call (0021) bounded in the warehouse
-- itself, whatever their caller asks: no drop of a day newer than a week ago (retention is days
-- to weeks; what the processor may delete row by row it may not drop as DDL), no partitions made
-- for days more than two days ahead, and neither waits more than 5 s for a lock (a long reader of
-- the minute windows makes the processor try again, not stall). Replaced, the functions keep their
-- owner and grants.
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
